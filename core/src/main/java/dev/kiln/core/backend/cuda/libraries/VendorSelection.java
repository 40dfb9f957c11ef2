package dev.kiln.core.backend.cuda.libraries;

import java.util.Locale;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;

/**
 * Chooses how kiln reaches cuBLAS and cuDNN: through JCuda, through the direct bindings, or not at
 * all, in which case the layers use kiln's own kernels.
 *
 * <h2>Order</h2>
 *
 * <ol>
 *   <li><b>JCuda</b> (JCublas, JCudnn) first, because it is a maintained binding that many Java
 *       projects use, so where it loads it is the best-tested path. It loads only where its JNI
 *       libraries find the versions they were built for: {@code libcublas.so.12} and {@code
 *       libcudnn.so.8}.
 *   <li><b>Direct</b> bindings ({@link CublasDirect}, {@link CudnnDirect}) next. They serve CUDA 13
 *       and cuDNN 9 machines, where JCuda cannot load, and also CUDA 12 ones.
 *   <li><b>kiln's own kernels</b> last. They are slower than the vendor libraries but always
 *       present, and they are the reference that the vendor paths are tested against.
 * </ol>
 *
 * <p>The system property {@value #PROPERTY} forces one path: {@code auto} (the default), {@code
 * jcuda}, {@code direct} or {@code kiln}. A forced path that fails to load is an error rather than
 * a silent fallback, so that a benchmark never measures a path other than the one it names.
 *
 * <p>Each library's choice is logged once per process, with the reason for every path that was
 * passed over.
 */
public final class VendorSelection {

  /** The system property that forces a path. */
  public static final String PROPERTY = "kiln.cuda.vendor";

  /** The values of {@value #PROPERTY}. */
  public enum Setting {
    /** Try JCuda, then the direct bindings, then kiln's kernels. */
    AUTO,
    /** Use JCuda or fail. */
    JCUDA,
    /** Use the direct bindings or fail. */
    DIRECT,
    /** Use kiln's own kernels. */
    KILN;

    /**
     * Parses a property value, ignoring case and surrounding blanks; null or blank means {@link
     * #AUTO}.
     *
     * @throws IllegalArgumentException naming the valid values
     */
    public static Setting parse(String value) {
      if (value == null || value.isBlank()) {
        return AUTO;
      }
      try {
        return valueOf(value.strip().toUpperCase(Locale.ROOT));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException(
            "system property "
                + PROPERTY
                + "="
                + value
                + " is invalid: use auto, jcuda, direct or kiln");
      }
    }

    /** Returns the setting of this process's {@value #PROPERTY}. */
    public static Setting fromSystemProperty() {
      return parse(System.getProperty(PROPERTY));
    }
  }

  /** The provider that serves a library: a binding, or kiln's own kernels. */
  public enum Provider {
    /** JCublas or JCudnn. */
    JCUDA,
    /** {@link CublasDirect} or {@link CudnnDirect}. */
    DIRECT,
    /** kiln's own kernels; no binding is loaded. */
    KILN
  }

  /**
   * The outcome for one library.
   *
   * @param library the library's name, such as {@code cuBLAS}
   * @param provider the chosen provider
   * @param binding the loaded binding, or null for {@link Provider#KILN}
   * @param reason the log line: what was chosen and why the paths before it were passed over
   */
  public record Selected<T extends VendorBinding>(
      String library, Provider provider, T binding, String reason) {}

  /** Loads one binding, throwing where it cannot. */
  @FunctionalInterface
  public interface Loader<T> {
    /**
     * Loads the binding.
     *
     * @throws LibraryLoadException or any other unchecked exception or {@link LinkageError}, all of
     *     which become the reason that this path was passed over
     */
    T load();
  }

  private final Consumer<String> log;
  private final Set<String> logged = ConcurrentHashMap.newKeySet();

  /**
   * Creates a selection that sends its log lines to {@code log}.
   *
   * @param log receives each library's line once, such as an SLF4J logger's {@code info}
   */
  public VendorSelection(Consumer<String> log) {
    this.log = log;
  }

  /**
   * Chooses the path for one library and logs the choice, once per library name.
   *
   * @param library the library's name for messages, such as {@code cuDNN}
   * @param setting the forced path, or {@link Setting#AUTO}
   * @param jcuda loads the JCuda binding
   * @param direct loads the direct binding
   * @throws LibraryLoadException if the setting forces a path that fails to load
   */
  public <T extends VendorBinding> Selected<T> select(
      String library, Setting setting, Loader<? extends T> jcuda, Loader<? extends T> direct) {
    Selected<T> selected =
        switch (setting) {
          case KILN ->
              new Selected<>(
                  library,
                  Provider.KILN,
                  null,
                  library + ": using kiln's own kernels, forced by -D" + PROPERTY + "=kiln");
          case JCUDA -> forced(library, Provider.JCUDA, jcuda);
          case DIRECT -> forced(library, Provider.DIRECT, direct);
          case AUTO -> automatic(library, jcuda, direct);
        };
    if (logged.add(library)) {
      log.accept(selected.reason());
    }
    return selected;
  }

  private static <T extends VendorBinding> Selected<T> forced(
      String library, Provider provider, Loader<? extends T> loader) {
    String name = provider.name().toLowerCase(Locale.ROOT);
    try {
      T binding = loader.load();
      return new Selected<>(
          library,
          provider,
          binding,
          library + ": using " + binding.description() + ", forced by -D" + PROPERTY + "=" + name);
    } catch (RuntimeException | LinkageError e) {
      throw new LibraryLoadException(
          "-D"
              + PROPERTY
              + "="
              + name
              + " forces the "
              + name
              + " path for "
              + library
              + ", but it failed to load: "
              + reason(e)
              + ". Remove the setting to fall back automatically");
    }
  }

  private static <T extends VendorBinding> Selected<T> automatic(
      String library, Loader<? extends T> jcuda, Loader<? extends T> direct) {
    String jcudaFailure;
    try {
      T binding = jcuda.load();
      return new Selected<>(
          library, Provider.JCUDA, binding, library + ": using " + binding.description());
    } catch (RuntimeException | LinkageError e) {
      jcudaFailure = reason(e);
    }
    String directFailure;
    try {
      T binding = direct.load();
      return new Selected<>(
          library,
          Provider.DIRECT,
          binding,
          library + ": using " + binding.description() + ", because JCuda failed: " + jcudaFailure);
    } catch (RuntimeException | LinkageError e) {
      directFailure = reason(e);
    }
    return new Selected<>(
        library,
        Provider.KILN,
        null,
        library
            + ": using kiln's own kernels, because JCuda failed: "
            + jcudaFailure
            + "; and the direct binding failed: "
            + directFailure);
  }

  /** Returns the message of a load failure, or its class where it has none. */
  private static String reason(Throwable e) {
    if (e instanceof LibraryLoadException && e.getMessage() != null) {
      return e.getMessage();
    }
    return e.toString();
  }
}
