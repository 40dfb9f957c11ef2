package dev.kiln.core.backend.cuda.libraries;

import dev.kiln.core.backend.cuda.CudaContext;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The cuBLAS and cuDNN bindings of one device, chosen once by {@link VendorSelection}.
 *
 * <p>Layers ask {@link #blas()} and {@link #dnn()}; an empty result means that kiln's own kernels
 * serve that layer. {@link #of(CudaContext)} returns one shared instance per device, so the
 * libraries are loaded and the choice is logged once.
 */
public final class VendorBindings implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(VendorBindings.class);

  private static final VendorSelection SELECTION = new VendorSelection(LOG::info, LOG::debug);

  private static final Map<Integer, VendorBindings> OPEN = new HashMap<>();

  private final VendorSelection.Selected<VendorBlas> blas;
  private final VendorSelection.Selected<VendorDnn> dnn;

  private VendorBindings(
      VendorSelection.Selected<VendorBlas> blas, VendorSelection.Selected<VendorDnn> dnn) {
    this.blas = blas;
    this.dnn = dnn;
  }

  /**
   * Returns the bindings of a device, selecting them on first use with this process's {@value
   * VendorSelection#PROPERTY} and library search.
   *
   * @throws LibraryLoadException if the setting forces a path that fails to load
   */
  public static synchronized VendorBindings of(CudaContext context) {
    VendorBindings bindings = OPEN.get(context.deviceIndex());
    if (bindings == null) {
      bindings =
          select(
              VendorDevice.of(context),
              VendorSelection.Setting.fromSystemProperty(),
              SELECTION,
              LibraryDiscovery.system());
      OPEN.put(context.deviceIndex(), bindings);
    }
    return bindings;
  }

  /**
   * Selects both libraries' bindings for a device. Tests call this with a fake file tree and their
   * own log.
   */
  static VendorBindings select(
      VendorDevice device,
      VendorSelection.Setting setting,
      VendorSelection selection,
      LibraryDiscovery discovery) {
    VendorSelection.Selected<VendorBlas> blas =
        selection.select(
            "cuBLAS",
            setting,
            () -> JcublasBlas.load(device),
            () -> CublasDirect.load(discovery.find(VendorLibrary.CUBLAS), device));
    VendorSelection.Selected<VendorDnn> dnn =
        selection.select(
            "cuDNN",
            setting,
            () -> JcudnnDnn.load(device),
            () -> CudnnDirect.load(discovery, device));
    return new VendorBindings(blas, dnn);
  }

  /** Returns the cuBLAS binding, or empty where kiln's own GEMM serves. */
  public Optional<VendorBlas> blas() {
    return Optional.ofNullable(blas.binding());
  }

  /** Returns the cuDNN binding, or empty where kiln's own kernels serve. */
  public Optional<VendorDnn> dnn() {
    return Optional.ofNullable(dnn.binding());
  }

  /** Returns the cuBLAS choice with its reason. */
  public VendorSelection.Selected<VendorBlas> blasSelection() {
    return blas;
  }

  /** Returns the cuDNN choice with its reason. */
  public VendorSelection.Selected<VendorDnn> dnnSelection() {
    return dnn;
  }

  /** Closes both bindings' handles. */
  @Override
  public void close() {
    synchronized (VendorBindings.class) {
      OPEN.values().remove(this);
    }
    if (dnn.binding() != null) {
      dnn.binding().close();
    }
    if (blas.binding() != null) {
      blas.binding().close();
    }
  }
}
