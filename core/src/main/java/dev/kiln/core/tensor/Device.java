package dev.kiln.core.tensor;

import java.util.Locale;
import java.util.Objects;

/**
 * Place where a tensor's storage lives: {@code cpu}, {@code cuda:N} or {@code emulated}.
 *
 * @param kind the kind of device
 * @param index the device number; 0 for the CPU and the emulated device
 */
public record Device(Kind kind, int index) {

  /** Kinds of device that kiln knows. */
  public enum Kind {
    CPU,
    CUDA,
    EMULATED
  }

  /** The host CPU. */
  public static final Device CPU = new Device(Kind.CPU, 0);

  public Device {
    if (index < 0) {
      throw new IllegalArgumentException("device index must be 0 or more, got " + index);
    }
    if (kind != Kind.CUDA && index != 0) {
      throw new IllegalArgumentException(
          kind.name().toLowerCase(Locale.ROOT)
              + " is a single device, so its index must be 0, got "
              + index);
    }
  }

  /**
   * Parses a device name such as {@code cpu}, {@code cuda}, {@code cuda:1} or {@code emulated}.
   *
   * @throws IllegalArgumentException naming the text and the accepted forms
   * @throws NullPointerException if {@code name} is null, with the accepted forms
   */
  public static Device parse(String name) {
    Objects.requireNonNull(
        name, "device name is null: use cpu, cuda, cuda:N (N = 0, 1, ...) or emulated");
    String text = name.trim().toLowerCase(Locale.ROOT);
    if (text.equals("cpu")) {
      return CPU;
    }
    if (text.equals("emulated")) {
      return new Device(Kind.EMULATED, 0);
    }
    if (text.equals("cuda")) {
      return new Device(Kind.CUDA, 0);
    }
    if (text.startsWith("cuda:")) {
      try {
        return new Device(Kind.CUDA, Integer.parseInt(text.substring(5)));
      } catch (IllegalArgumentException e) {
        // A number that does not parse, or a negative one: the error below names the accepted
        // forms.
      }
    }
    throw new IllegalArgumentException(
        "invalid device '" + name + "': use cpu, cuda, cuda:N (N = 0, 1, ...) or emulated");
  }

  /** Returns whether this is the host CPU, where tensors live in Java arrays. */
  public boolean isCpu() {
    return kind == Kind.CPU;
  }

  @Override
  public String toString() {
    return switch (kind) {
      case CPU -> "cpu";
      case CUDA -> "cuda:" + index;
      case EMULATED -> "emulated";
    };
  }
}
