package dev.kiln.core.backend.cuda.libraries;

import java.util.List;

/**
 * One of NVIDIA's libraries that kiln can bind: its base name, the major versions that kiln
 * supports, newest first, and the companion libraries that must be loaded before it.
 *
 * <p>Companions matter for the Python wheels. There, {@code libcublas.so.13} needs {@code
 * libcublasLt.so.13}, and cuDNN 9 loads its sub-libraries ({@code libcudnn_ops.so.9} and others)
 * with {@code dlopen} by name. Neither folder is on the system's library path, so the loader opens
 * the companions from the main library's folder first. The dynamic linker then finds them by their
 * {@code SONAME} among the libraries already loaded.
 *
 * @param baseName the name between {@code lib} and {@code .so}, such as {@code cublas}
 * @param versions the major versions to try, newest first
 * @param companions base names of companion libraries in dependency order, each loaded with the
 *     same major version where its file exists in the same folder
 */
public record VendorLibrary(String baseName, List<Integer> versions, List<String> companions) {

  /** cuBLAS 13 (CUDA 13) and 12 (CUDA 12), with its GEMM kernels in cuBLASLt. */
  public static final VendorLibrary CUBLAS =
      new VendorLibrary("cublas", List.of(13, 12), List.of("cublasLt"));

  /**
   * cuDNN 9 and 8. In cuDNN 9, {@code libcudnn.so.9} is a small front library, and the legacy calls
   * live in sub-libraries, listed here so that each one's dependencies load before it. {@code
   * libcudnn_ext}, added in cuDNN 9.24, is one that cuDNN opens by bare name at run time (see
   * JuliaPackaging/Yggdrasil pull request 14741), so it comes last, after everything it may need.
   *
   * <p>{@code libcudnn_engines_tensor_ir}, which came with it, is left out on purpose: cuDNN loads
   * it itself, and a copy linked ahead of cuDNN was initialized incorrectly before cuDNN 9.26
   * (google-ml-infra/rules_ml_toolchain pull request 292).
   */
  public static final VendorLibrary CUDNN =
      new VendorLibrary(
          "cudnn",
          List.of(9, 8),
          List.of(
              "cudnn_graph",
              "cudnn_engines_precompiled",
              "cudnn_engines_runtime_compiled",
              "cudnn_heuristic",
              "cudnn_ops",
              "cudnn_cnn",
              "cudnn_ext",
              "cudnn_ops_infer",
              "cudnn_ops_train",
              "cudnn_cnn_infer",
              "cudnn_cnn_train"));

  /** Copies the lists and rejects an empty version list. */
  public VendorLibrary {
    versions = List.copyOf(versions);
    companions = List.copyOf(companions);
    if (versions.isEmpty()) {
      throw new IllegalArgumentException("library " + baseName + " needs at least one version");
    }
  }

  /** Returns the versioned file name, such as {@code libcudnn.so.9}. */
  public String fileName(int version) {
    return fileName(baseName, version);
  }

  /** Returns the versioned file name of any base name, such as {@code libcublasLt.so.13}. */
  public static String fileName(String baseName, int version) {
    return "lib" + baseName + ".so." + version;
  }
}
