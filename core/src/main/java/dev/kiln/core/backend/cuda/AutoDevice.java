package dev.kiln.core.backend.cuda;

import dev.kiln.core.tensor.Device;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Resolves the device name {@code auto}: {@code cuda:0} where it is usable, else {@code cpu}, with
 * the reason either way. The choice is logged once per process.
 */
public final class AutoDevice {

  private static final Logger LOG = LoggerFactory.getLogger(AutoDevice.class);

  /**
   * The device that {@code auto} resolves to, and the reason for the choice.
   *
   * @param device {@code cuda:0} or {@code cpu}
   * @param reason the GPU's description, or why it is not usable
   */
  public record Choice(Device device, String reason) {}

  private static Choice resolved;

  private AutoDevice() {}

  /**
   * Returns the device for {@code auto}. The first call checks the GPU (see {@link
   * CudaAvailability#check(int)}) and logs the choice. Later calls return the same choice.
   */
  public static synchronized Choice resolve() {
    if (resolved == null) {
      resolved = choose(CudaAvailability.check(0));
      LOG.info("device auto resolves to {}: {}", resolved.device(), resolved.reason());
    }
    return resolved;
  }

  /** Returns the choice for a checked GPU: that GPU where usable, else the CPU. */
  static Choice choose(CudaAvailability availability) {
    if (availability.usable()) {
      return new Choice(availability.device(), availability.message());
    }
    return new Choice(Device.CPU, availability.message());
  }
}
