package dev.kiln.core.backend.cpu;

import java.util.Objects;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The check whether this JVM has the Vector API, the incubator module jdk.incubator.vector, which a
 * JVM resolves for class-path code only when started with {@code --add-modules
 * jdk.incubator.vector}.
 *
 * <p>The classes that name Vector API types are {@link VectorGemm}, {@link FewRowsGemm}, {@link
 * VectorMath}, {@link VectorElementwise}, {@link VectorPool2d}, {@link ConvPanels} and {@link
 * StridedPanels}, and {@link Conv2dImplicit} reads {@link VectorGemm#NR}. Without the module, the
 * first use of any of them throws {@link NoClassDefFoundError}. So every dispatch to them checks
 * {@link #available()} first and otherwise runs a plain Java path that loads none of them, which
 * {@code NoVectorModuleTest} checks in a JVM without the module. No other class may name a Vector
 * API type, because initializing or verifying that class could then load the missing classes.
 *
 * <p>One read skips the check: {@link Conv2dKernels} reads {@link FewRowsGemm#MAX_ROWS} for every
 * weight gradient. That is safe only because MAX_ROWS is a compile-time constant, which javac
 * copies into the reading class, so FewRowsGemm is never loaded for it. A constant computed at run
 * time, such as {@link VectorGemm#NR}, would load its class.
 */
final class VectorSupport {

  private static final Logger LOG = LoggerFactory.getLogger(VectorSupport.class);

  static final String MODULE = "jdk.incubator.vector";

  private static final boolean AVAILABLE = detect();

  private VectorSupport() {}

  /** Returns true when the Vector API classes can be loaded and used from this class's module. */
  static boolean available() {
    return AVAILABLE;
  }

  private static boolean detect() {
    // This queries the module graph instead of loading a Vector API class, so the check itself
    // loads nothing from the module. The JVM resolves kiln's references through the same graph.
    // A class of jdk.incubator.vector loads only when its module is resolved in kiln's layer or a
    // parent of it, which is what findModule searches, and kiln's code links to it only when
    // kiln's module reads it. Class-path code is in the unnamed module, which reads every module.
    Module own = VectorSupport.class.getModule();
    ModuleLayer layer = Objects.requireNonNullElse(own.getLayer(), ModuleLayer.boot());
    Optional<Module> vector = layer.findModule(MODULE);
    boolean available = vector.isPresent() && own.canRead(vector.get());
    if (!available) {
      LOG.warn(
          "The Vector API module {} is missing, so kiln's CPU backend runs plain Java loops, with"
              + " matrix products and convolutions several times slower. Start the JVM with"
              + " --add-modules {} to enable it.",
          MODULE,
          MODULE);
    }
    return available;
  }
}
