package dev.kiln.core.backend.cuda.libraries;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The CUDA libraries that cuDNN opens by name while it runs, which kiln loads together with cuDNN.
 *
 * <p>cuDNN's legacy convolution calls open {@code libcublasLt.so.M} with {@code dlopen}, where M is
 * the major version of the CUDA runtime that cuDNN was built for, and its runtime-compiled engines
 * open {@code libnvrtc.so.M}. NVIDIA's cuDNN installation guide lists both, in "Building and
 * Running a cuDNN Dependent Program". Such a {@code dlopen} finds a library that the process has
 * already loaded by its {@code SONAME}, and otherwise searches only the loader's path. NVIDIA's
 * Python wheels keep cuBLAS and NVRTC in folders of their own, outside that path. So kiln finds
 * both with {@link LibraryDiscovery} and loads them before cuDNN's first call.
 *
 * <p>The version comes from cuDNN itself, because a cuDNN built for CUDA 12 may sit next to a
 * cuBLAS 13 that kiln chose for its matrix products. Both majors of cuBLASLt can be loaded at once,
 * since their {@code SONAME}s differ.
 *
 * <p>cuBLASLt is required. Without it the first convolution would fail inside cuDNN, after kiln had
 * chosen and logged cuDNN, so a missing one rejects cuDNN when it loads. NVRTC is loaded where it
 * is found.
 *
 * <p>NOTE: whether cuDNN's legacy calls choose other engines when NVRTC is missing has not been
 * checked on a GPU.
 */
final class CudnnDependencies {

  /** cuBLAS's GEMM library, which cuDNN's convolutions open. */
  static final String CUBLAS_LT = "cublasLt";

  /** NVIDIA's runtime compiler, which cuDNN's runtime-compiled engines open. */
  static final String NVRTC = "nvrtc";

  private CudnnDependencies() {}

  /**
   * Returns the CUDA major version of a {@code cudnnGetCudartVersion} number, which is 1000 * major
   * + 10 * minor: 12080 is CUDA 12.8.
   */
  static int cudaMajor(long cudartVersion) {
    return (int) (cudartVersion / 1000);
  }

  /**
   * Loads cuBLASLt and, where it is found, NVRTC of CUDA {@code cudaMajor}.
   *
   * @param discovery the search that found cuDNN
   * @param cudaMajor the CUDA major version that cuDNN was built for
   * @param cudnn the cuDNN file, for the message
   * @return the loaded libraries, cuBLASLt first. kiln keeps them loaded as long as cuDNN.
   * @throws LibraryLoadException if no cuBLASLt of that version loads
   */
  static List<NativeLibrary> load(LibraryDiscovery discovery, int cudaMajor, Path cudnn) {
    List<NativeLibrary> loaded = new ArrayList<>();
    VendorLibrary cublasLt = new VendorLibrary(CUBLAS_LT, List.of(cudaMajor), List.of());
    try {
      loaded.add(NativeLibrary.open(discovery.find(cublasLt)));
    } catch (LibraryLoadException e) {
      throw new LibraryLoadException(
          cudnn
              + " was built for CUDA "
              + cudaMajor
              + " and opens "
              + cublasLt.fileName(cudaMajor)
              + " for its convolutions, but that library cannot be loaded: "
              + e.getMessage());
    }
    DiscoveryResult nvrtc = discovery.find(new VendorLibrary(NVRTC, List.of(cudaMajor), List.of()));
    if (!nvrtc.candidates().isEmpty()) {
      try {
        loaded.add(NativeLibrary.open(nvrtc));
      } catch (LibraryLoadException e) {
        // NVRTC is optional, as the class comment explains.
      }
    }
    return List.copyOf(loaded);
  }
}
