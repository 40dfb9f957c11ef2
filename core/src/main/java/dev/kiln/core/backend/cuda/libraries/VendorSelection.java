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
 *       projects use, so where it loads it is the best-tested path. JCublas 12.6 loads where its
 *       JNI library finds {@code libcublas.so.12}. JCudnn 11.7 never loads next to JCuda 12.6,
 *       whatever cuDNN the machine has (see {@link JcudnnDnn}), so this path has no cuDNN.
 *   <li><b>Direct</b> bindings ({@link CublasDirect}, {@link CudnnDirect}) next. They load {@code
 *       libcublas.so.13} or {@code .12} and {@code libcudnn.so.9} or {@code .8}, so they serve
 *       cuDNN wherever it is installed, and cuBLAS where JCublas cannot load, such as on CUDA 13
 *       machines.
 *   <li><b>kiln's own kernels</b> last. They are slower than the vendor libraries but always
 *       present, and they are the reference that the vendor paths are tested against.
 * </ol>
 *
 * <p>The system property {@value #PROPERTY} forces one path: {@code auto} (the default), {@code
 * jcuda}, {@code direct} or {@code kiln}. A forced path that fails to load is an error rather than
 * a silent fallback, so that a benchmark never measures a path other than the one it names. So
 * {@code jcuda} fails at cuDNN on every machine.
 *
 * <p>Each library's choice is logged once per process to two consumers: one short line to the
 * first, and the full reason for every path that was passed over, with the files and folders tried,
 * to the second. {@link VendorBindings} logs the first at INFO and the second at DEBUG.
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
   * @param reason the short log line: what was chosen and why, in one sentence
   * @param details the reason with the full message of every path that was passed over, which names
   *     the files and folders tried; the same as {@code reason} where nothing was passed over
   */
  public record Selected<T extends VendorBinding>(
      String library, Provider provider, T binding, String reason, String details) {}

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
  private final Consumer<String> detailLog;
  private final Set<String> logged = ConcurrentHashMap.newKeySet();

  /**
   * Creates a selection that sends its short lines to {@code log} and drops the details.
   *
   * @param log receives each library's short line once
   */
  public VendorSelection(Consumer<String> log) {
    this(log, details -> {});
  }

  /**
   * Creates a selection that sends its short lines to {@code log} and the details to {@code
   * detailLog}.
   *
   * @param log receives each library's short line once, such as an SLF4J logger's {@code info}
   * @param detailLog receives each library's details once, where they differ from the short line,
   *     such as the same logger's {@code debug}
   */
  public VendorSelection(Consumer<String> log, Consumer<String> detailLog) {
    this.log = log;
    this.detailLog = detailLog;
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
          case KILN -> forcedKiln(library);
          case JCUDA -> forced(library, Provider.JCUDA, jcuda);
          case DIRECT -> forced(library, Provider.DIRECT, direct);
          case AUTO -> automatic(library, jcuda, direct);
        };
    if (logged.add(library)) {
      log.accept(selected.reason());
      if (!selected.details().equals(selected.reason())) {
        detailLog.accept(selected.details());
      }
    }
    return selected;
  }

  private static <T extends VendorBinding> Selected<T> forcedKiln(String library) {
    String reason = library + ": using kiln's own kernels, forced by -D" + PROPERTY + "=kiln";
    return new Selected<>(library, Provider.KILN, null, reason, reason);
  }

  private static <T extends VendorBinding> Selected<T> forced(
      String library, Provider provider, Loader<? extends T> loader) {
    String name = provider.name().toLowerCase(Locale.ROOT);
    try {
      T binding = loader.load();
      String reason =
          library + ": using " + binding.description() + ", forced by -D" + PROPERTY + "=" + name;
      return new Selected<>(library, provider, binding, reason, reason);
    } catch (RuntimeException | LinkageError e) {
      String instead =
          provider == Provider.JCUDA
              ? "Use -D"
                  + PROPERTY
                  + "=direct, which binds cuBLAS and cuDNN through java.lang.foreign, or remove"
                  + " the setting to choose automatically"
              : "Remove the setting to fall back automatically";
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
              + ". "
              + instead);
    }
  }

  private static <T extends VendorBinding> Selected<T> automatic(
      String library, Loader<? extends T> jcuda, Loader<? extends T> direct) {
    String jcudaFailure;
    try {
      T binding = jcuda.load();
      String reason = library + ": using " + binding.description();
      return new Selected<>(library, Provider.JCUDA, binding, reason, reason);
    } catch (RuntimeException | LinkageError e) {
      jcudaFailure = reason(e);
    }
    try {
      T binding = direct.load();
      String using = library + ": using " + binding.description();
      return new Selected<>(
          library,
          Provider.DIRECT,
          binding,
          using + ", because JCuda failed to load it",
          using + ", because JCuda failed: " + jcudaFailure);
    } catch (RuntimeException | LinkageError e) {
      String using = library + ": using kiln's own kernels";
      String directSummary =
          e instanceof LibraryLoadException loadError
              ? loadError.summary()
              : "the direct binding failed: " + reason(e);
      return new Selected<>(
          library,
          Provider.KILN,
          null,
          using + ", because JCuda failed to load it and " + directSummary,
          using
              + ", because JCuda failed: "
              + jcudaFailure
              + "; and the direct binding failed: "
              + reason(e));
    }
  }

  /** Returns the message of a load failure, or its class where it has none. */
  private static String reason(Throwable e) {
    if (e instanceof LibraryLoadException && e.getMessage() != null) {
      return e.getMessage();
    }
    return e.toString();
  }
}
