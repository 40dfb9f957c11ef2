package dev.kiln.core.backend.cuda.libraries;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Loading cuDNN with the cuBLASLt and NVRTC of the CUDA version that it was built for, over fake
 * libraries in the layout of NVIDIA's Python wheels: cuDNN, cuBLAS and NVRTC each in a folder of
 * their own.
 */
class CudnnDependenciesTest {

  @TempDir Path root;

  /** Compiles a fake cuDNN that reports CUDA {@code cudart} into {@code nvidia/cudnn/lib}. */
  private Path fakeCudnn(int cudart) throws IOException, InterruptedException {
    Path folder = root.resolve("nvidia/cudnn/lib");
    FakeNativeLibraries.compile(
        folder,
        "libcudnn.so.9",
        "#define FAKE_CUDART_VERSION " + cudart + "\n" + CudnnDirectFakeTest.SOURCE);
    return folder;
  }

  /** Compiles an empty fake library {@code lib<baseName>.so.<version>} into {@code folder}. */
  private Path fakeLibrary(String folder, String baseName, int version)
      throws IOException, InterruptedException {
    String name = VendorLibrary.fileName(baseName, version);
    return FakeNativeLibraries.compile(
        root.resolve(folder),
        name,
        "int fake_" + baseName + "_" + version + "(void) { return 0; }");
  }

  /** Returns a discovery whose library path lists the given folders under the root. */
  private LibraryDiscovery discovery(String... folders) {
    String path =
        String.join(
            ":", Arrays.stream(folders).map(folder -> root.resolve(folder).toString()).toList());
    return new LibraryDiscovery(Map.of("LD_LIBRARY_PATH", path), root, root);
  }

  private static CudnnDirect load(LibraryDiscovery discovery) {
    return CudnnDirect.load(
        discovery, FakeNativeLibraries.device(new FakeNativeLibraries.CountingMemory()));
  }

  @Test
  void cudaMajorReadsCudartNumbers() {
    assertEquals(12, CudnnDependencies.cudaMajor(12080));
    assertEquals(13, CudnnDependencies.cudaMajor(13000));
    assertEquals(11, CudnnDependencies.cudaMajor(11080));
  }

  @Test
  void cudnnGetsCublasLtOfItsOwnCuda() throws Exception {
    fakeCudnn(12080);
    Path lt12 = fakeLibrary("nvidia/cublas/lib", "cublasLt", 12);
    Path lt13 = fakeLibrary("nvidia/cu13/lib", "cublasLt", 13);

    try (CudnnDirect dnn =
        load(discovery("nvidia/cudnn/lib", "nvidia/cu13/lib", "nvidia/cublas/lib"))) {
      assertTrue(dnn.description().contains(", with " + lt12), dnn.description());
      assertFalse(dnn.description().contains(lt13.toString()), dnn.description());
    }
  }

  @Test
  void missingCublasLtRejectsCudnn() throws Exception {
    fakeCudnn(12080);
    fakeLibrary("nvidia/cu13/lib", "cublasLt", 13);

    LibraryLoadException e =
        assertThrows(
            LibraryLoadException.class,
            () -> load(discovery("nvidia/cudnn/lib", "nvidia/cu13/lib")));

    String message = e.getMessage();
    assertTrue(message.contains("libcudnn.so.9 was built for CUDA 12"), message);
    assertTrue(message.contains("opens libcublasLt.so.12 for its convolutions"), message);
    assertTrue(message.contains("no libcublasLt.so.12 was found"), message);
    assertTrue(message.contains(LibraryDiscovery.PATH_VARIABLE), message);
  }

  @Test
  void nvrtcLoadsWhereFound() throws Exception {
    fakeCudnn(13000);
    Path lt = fakeLibrary("nvidia/cu13/lib", "cublasLt", 13);
    Path nvrtc = fakeLibrary("nvidia/cu13/lib", "nvrtc", 13);

    try (CudnnDirect dnn = load(discovery("nvidia/cudnn/lib", "nvidia/cu13/lib"))) {
      assertTrue(dnn.description().endsWith(", with " + lt + ", with " + nvrtc), dnn.description());
    }
  }
}
