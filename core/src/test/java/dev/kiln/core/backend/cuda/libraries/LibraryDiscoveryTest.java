package dev.kiln.core.backend.cuda.libraries;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Tests the library search over fake folder trees under a temporary root. */
class LibraryDiscoveryTest {

  @TempDir Path root;

  private Path home() {
    return root.resolve("home/user");
  }

  private LibraryDiscovery discovery(Map<String, String> environment) {
    return new LibraryDiscovery(environment, root, home());
  }

  private static List<Path> paths(DiscoveryResult result) {
    return result.candidates().stream().map(DiscoveryResult.Candidate::path).toList();
  }

  @Test
  void findsCudnnInUserSitePackages() throws IOException {
    Path lib = home().resolve(".local/lib/python3.12/site-packages/nvidia/cudnn/lib");
    Path file = FakeLibraries.elf(lib, "libcudnn.so.9");

    DiscoveryResult result = discovery(Map.of()).find(VendorLibrary.CUDNN);

    assertEquals(List.of(file), paths(result));
    assertEquals(9, result.best().orElseThrow().version());
    assertTrue(result.rejections().isEmpty(), result.rejections().toString());
  }

  @Test
  void badKilnPathEntriesAreReported() throws IOException {
    Path missing = root.resolve("no/such/folder");
    Path file = FakeLibraries.elf(root.resolve("opt/lib"), "libcudnn.so.9");

    DiscoveryResult result =
        discovery(Map.of(LibraryDiscovery.PATH_VARIABLE, missing + ":" + file))
            .find(VendorLibrary.CUDNN);

    String text = result.describe();
    assertTrue(text.contains(missing + " is named in KILN_CUDA_LIB_PATH but does not exist"), text);
    assertTrue(text.contains(file + " is named in KILN_CUDA_LIB_PATH but is a file"), text);
  }

  @Test
  void newerVersionWinsOverFolderOrder() throws IOException {
    // cuBLAS 12 in the toolkit folder, which is searched before the Python packages, and
    // cuBLAS 13 in the system's Python packages.
    Path toolkit = FakeLibraries.elf(root.resolve("usr/local/cuda/lib64"), "libcublas.so.12");
    Path wheel =
        FakeLibraries.elf(
            root.resolve("usr/local/lib/python3.11/dist-packages/nvidia/cu13/lib"),
            "libcublas.so.13");

    DiscoveryResult result = discovery(Map.of()).find(VendorLibrary.CUBLAS);

    assertEquals(List.of(wheel, toolkit), paths(result));
  }

  @Test
  void kilnPathWinsOverNewerVersion() throws IOException {
    Path chosen = FakeLibraries.elf(root.resolve("opt/cudnn8"), "libcudnn.so.8");
    FakeLibraries.elf(root.resolve("usr/lib/x86_64-linux-gnu"), "libcudnn.so.9");

    DiscoveryResult result =
        discovery(Map.of(LibraryDiscovery.PATH_VARIABLE, root.resolve("opt/cudnn8").toString()))
            .find(VendorLibrary.CUDNN);

    assertEquals(chosen, result.best().orElseThrow().path());
    assertEquals(2, result.candidates().size());
  }

  @Test
  void searchesLdLibraryPathAndSkipsEmptyEntries() throws IOException {
    Path folder = root.resolve("custom/lib");
    Path file = FakeLibraries.elf(folder, "libcublas.so.12");

    DiscoveryResult result =
        discovery(Map.of("LD_LIBRARY_PATH", "::" + folder + ":" + root.resolve("missing")))
            .find(VendorLibrary.CUBLAS);

    assertEquals(List.of(file), paths(result));
    assertEquals(folder, result.searchedFolders().getFirst());
  }

  @Test
  void searchesVirtualEnvAndConda() throws IOException {
    Path venv = root.resolve("venv");
    Path conda = root.resolve("conda");
    Path inVenv =
        FakeLibraries.elf(
            venv.resolve("lib/python3.12/site-packages/nvidia/cublas/lib"), "libcublas.so.13");
    Path inConda =
        FakeLibraries.elf(
            conda.resolve("lib/python3.10/site-packages/nvidia/cudnn/lib"), "libcudnn.so.9");
    Map<String, String> environment =
        Map.of("VIRTUAL_ENV", venv.toString(), "CONDA_PREFIX", conda.toString());

    assertEquals(List.of(inVenv), paths(discovery(environment).find(VendorLibrary.CUBLAS)));
    assertEquals(List.of(inConda), paths(discovery(environment).find(VendorLibrary.CUDNN)));
  }

  @Test
  void searchesCondaLibFolder() throws IOException {
    Path conda = root.resolve("conda");
    Path wheel =
        FakeLibraries.elf(
            conda.resolve("lib/python3.11/site-packages/nvidia/cudnn/lib"), "libcudnn.so.8");
    Path condaPackage = FakeLibraries.elf(conda.resolve("lib"), "libcudnn.so.9");

    DiscoveryResult result =
        discovery(Map.of("CONDA_PREFIX", conda.toString())).find(VendorLibrary.CUDNN);

    assertEquals(List.of(condaPackage, wheel), paths(result));
  }

  /**
   * A container image with {@code python3} in {@code /opt/torch/.venv/bin}, CUDA 13's wheels in
   * {@code nvidia/cu13/lib} and cuDNN's in {@code nvidia/cudnn/lib}. The environment is on the
   * PATH, but no {@code VIRTUAL_ENV} names it.
   */
  @Test
  void searchesFirstPythonEnvironmentOnPath() throws IOException {
    Path system = root.resolve("usr/bin");
    Path realPython = executable(system.resolve("python3.12"));
    Path venvBin = Files.createDirectories(root.resolve("opt/torch/.venv/bin"));
    // A virtual environment's python3 is a link to the system's. Its environment is still the one
    // whose bin contains the link.
    Files.createSymbolicLink(venvBin.resolve("python3"), realPython);
    Path packages = root.resolve("opt/torch/.venv/lib/python3.12/site-packages/nvidia");
    Path cublas = FakeLibraries.elf(packages.resolve("cu13/lib"), "libcublas.so.13");
    Path cudnn = FakeLibraries.elf(packages.resolve("cudnn/lib"), "libcudnn.so.9");
    // A later python3 on the PATH is not the one the shell runs, so its packages are left out.
    Path laterBin = Files.createDirectories(root.resolve("opt/other/bin"));
    executable(laterBin.resolve("python3"));
    FakeLibraries.elf(
        root.resolve("opt/other/lib/python3.11/site-packages/nvidia/cudnn/lib"), "libcudnn.so.8");
    // A folder named python3 is no interpreter, so the search goes on to the next entry.
    Path notPython = Files.createDirectories(root.resolve("tools/bin/python3")).getParent();
    Map<String, String> environment =
        Map.of("PATH", notPython + ":" + venvBin + ":" + system + ":" + laterBin);

    assertEquals(List.of(cublas), paths(discovery(environment).find(VendorLibrary.CUBLAS)));
    assertEquals(List.of(cudnn), paths(discovery(environment).find(VendorLibrary.CUDNN)));
  }

  @Test
  void pythonWithoutAnEnvironmentAddsNoFolder() throws IOException {
    Path bin = Files.createDirectories(root.resolve("opt/tools/bin"));
    executable(bin.resolve("python3"));

    assertEquals(
        discovery(Map.of()).searchFolders(),
        discovery(Map.of("PATH", bin.toString())).searchFolders());
  }

  /** Creates an empty file that the owner may run. */
  private static Path executable(Path file) throws IOException {
    Files.createDirectories(file.getParent());
    Files.createFile(file);
    assertTrue(file.toFile().setExecutable(true), "cannot make " + file + " executable");
    return file;
  }

  @Test
  void versionedToolkitFoldersNewestFirst() throws IOException {
    Path older = FakeLibraries.elf(root.resolve("usr/local/cuda-12.4/lib64"), "libcublas.so.12");
    Path newer = FakeLibraries.elf(root.resolve("usr/local/cuda-12.8/lib64"), "libcublas.so.12");

    DiscoveryResult result = discovery(Map.of()).find(VendorLibrary.CUBLAS);

    assertEquals(List.of(newer, older), paths(result));
  }

  @Test
  void emptyFileIsRejectedWithReason() throws IOException {
    Path lib = root.resolve("usr/local/cuda/lib64");
    FakeLibraries.file(lib, "libcudnn.so.9", new byte[0]);
    Path good = FakeLibraries.elf(lib, "libcudnn.so.8");

    DiscoveryResult result = discovery(Map.of()).find(VendorLibrary.CUDNN);

    assertEquals(List.of(good), paths(result));
    assertEquals(1, result.rejections().size());
    assertEquals(lib.resolve("libcudnn.so.9"), result.rejections().getFirst().path());
    assertTrue(
        result.rejections().getFirst().reason().contains("is empty"),
        result.rejections().toString());
  }

  @Test
  void invalidFilesAreRejectedWithReasons() throws IOException {
    Path lib = root.resolve("usr/lib/x86_64-linux-gnu");
    FakeLibraries.file(lib, "libcublas.so.13", "not a library".getBytes());
    FakeLibraries.file(lib, "libcublas.so.12", new byte[] {0x7f, 'E', 'L', 'F', 1, 1, 1, 0});
    Files.createDirectories(root.resolve("usr/lib64/libcublas.so.13"));

    DiscoveryResult result = discovery(Map.of()).find(VendorLibrary.CUBLAS);

    assertTrue(result.candidates().isEmpty(), result.candidates().toString());
    List<String> reasons =
        result.rejections().stream().map(DiscoveryResult.Rejection::reason).toList();
    assertEquals(3, reasons.size(), reasons.toString());
    assertTrue(
        reasons.contains("is not an ELF shared library (it does not start with 0x7f 'ELF')"));
    assertTrue(reasons.contains("is not a 64-bit ELF library, so a 64-bit JVM cannot load it"));
    assertTrue(reasons.contains("is not a regular file"));
  }

  @Test
  void libraryForOtherProcessorIsRejected() throws IOException {
    int other = LibraryDiscovery.elfMachineOfThisJvm() == 183 ? 62 : 183;
    Path lib = root.resolve("usr/lib64");
    Path file = FakeLibraries.file(lib, "libcudnn.so.9", FakeLibraries.elf64ForMachine(other));
    FakeLibraries.file(lib, "libcudnn.so.8", new byte[] {0x7f, 'E', 'L', 'F', 2, 1, 1, 0});

    DiscoveryResult result = discovery(Map.of()).find(VendorLibrary.CUDNN);

    assertTrue(result.candidates().isEmpty(), result.candidates().toString());
    List<String> reasons =
        result.rejections().stream().map(r -> r.path() + " " + r.reason()).toList();
    assertTrue(
        reasons.contains(
            file
                + " is a library for another processor (ELF machine "
                + other
                + "), while this JVM runs on "
                + System.getProperty("os.arch")),
        reasons.toString());
    assertTrue(
        reasons.contains(
            lib.resolve("libcudnn.so.8") + " is only 8 bytes long, too short for an ELF header"),
        reasons.toString());
  }

  @Test
  void unusablePathEntriesAreSkippedOrNamed() throws IOException {
    // A NUL character makes an entry that no JVM accepts as a file name, like a non-ASCII one under
    // the C locale.
    Path folder = root.resolve("custom/lib");
    Path file = FakeLibraries.elf(folder, "libcublas.so.12");
    Map<String, String> environment =
        Map.of(
            "LD_LIBRARY_PATH",
            "/bad\u0000entry:" + folder,
            "PATH",
            "/bad\u0000entry",
            "VIRTUAL_ENV",
            "/bad\u0000venv",
            LibraryDiscovery.PATH_VARIABLE,
            "/bad\u0000setting");

    DiscoveryResult result = discovery(environment).find(VendorLibrary.CUBLAS);

    assertEquals(List.of(file), paths(result));
    assertEquals(1, result.rejections().size(), result.rejections().toString());
    DiscoveryResult.Rejection rejection = result.rejections().getFirst();
    assertEquals(Path.of("/bad?setting"), rejection.path());
    assertTrue(
        rejection.reason().startsWith("is named in KILN_CUDA_LIB_PATH but is not a file name"),
        rejection.reason());
  }

  @Test
  void systemPythonKeepsItsPlaceAfterToolkit() throws IOException {
    executable(root.resolve("usr/bin/python3"));
    Path wheel =
        FakeLibraries.elf(
            root.resolve("usr/lib/python3.11/site-packages/nvidia/cublas/lib"), "libcublas.so.12");
    Path toolkit = FakeLibraries.elf(root.resolve("usr/local/cuda/lib64"), "libcublas.so.12");

    DiscoveryResult result =
        discovery(Map.of("PATH", root.resolve("usr/bin").toString())).find(VendorLibrary.CUBLAS);

    assertEquals(List.of(toolkit, wheel), paths(result));
  }

  @Test
  void brokenSymbolicLinkIsRejected() throws IOException {
    Path lib = Files.createDirectories(root.resolve("usr/local/cuda/lib64"));
    Files.createSymbolicLink(lib.resolve("libcudnn.so.9"), lib.resolve("libcudnn.so.9.1.0"));

    DiscoveryResult result = discovery(Map.of()).find(VendorLibrary.CUDNN);

    assertEquals(1, result.rejections().size());
    assertEquals(
        "is a broken symbolic link (its target does not exist)",
        result.rejections().getFirst().reason());
  }

  @Test
  void symbolicLinkLoopIsRejectedAsLoop() throws IOException {
    Path lib = Files.createDirectories(root.resolve("usr/local/cuda/lib64"));
    Files.createSymbolicLink(lib.resolve("libcudnn.so.9"), lib.resolve("libcudnn.so.9"));

    DiscoveryResult result = discovery(Map.of()).find(VendorLibrary.CUDNN);

    assertEquals(1, result.rejections().size());
    String reason = result.rejections().getFirst().reason();
    assertTrue(reason.startsWith("is a symbolic link that cannot be followed"), reason);
    assertTrue(reason.contains("loop"), reason);
  }

  @Test
  void kilnPathLinkLoopIsNotCalledMissing() throws IOException {
    Path loop = root.resolve("loopdir");
    Files.createSymbolicLink(loop, loop);

    String text =
        discovery(Map.of(LibraryDiscovery.PATH_VARIABLE, loop.toString()))
            .find(VendorLibrary.CUDNN)
            .describe();

    assertTrue(
        text.contains(
            loop
                + " is named in KILN_CUDA_LIB_PATH but is a symbolic link that cannot be followed"),
        text);
    assertFalse(text.contains("does not exist"), text);
  }

  @Test
  void nothingFoundNamesSearchedFolders() throws IOException {
    Path first = Files.createDirectories(root.resolve("first"));
    Path second = Files.createDirectories(root.resolve("second"));

    DiscoveryResult result =
        discovery(Map.of(LibraryDiscovery.PATH_VARIABLE, first + ":" + second))
            .find(VendorLibrary.CUBLAS);

    assertEquals("no libcublas.so.13 or libcublas.so.12 was found", result.summary());
    String text = result.describe();
    assertTrue(
        text.startsWith(
            "no libcublas.so.13 or libcublas.so.12 was found in 2 folders ("
                + first
                + ", "
                + second
                + ")"),
        text);
  }

  @Test
  void summaryNamesFirstRejection() throws IOException {
    Path empty = FakeLibraries.file(root.resolve("usr/lib64"), "libcudnn.so.9", new byte[0]);
    FakeLibraries.file(root.resolve("usr/lib64"), "libcudnn.so.8", new byte[] {1, 2, 3, 4, 5});

    DiscoveryResult result = discovery(Map.of()).find(VendorLibrary.CUDNN);

    assertEquals(
        "no usable libcudnn.so.9 or libcudnn.so.8 was found: "
            + empty
            + " is empty (0 bytes), so the installation is incomplete (and 1 more)",
        result.summary());
    assertTrue(result.describe().startsWith("no usable libcudnn.so.9"), result.describe());
  }

  @Test
  void nothingFoundWithoutFoldersSaysSo() {
    DiscoveryResult result =
        new DiscoveryResult(VendorLibrary.CUBLAS, List.of(), List.of(), List.of());

    assertTrue(
        result.describe().startsWith("no libcublas.so.13 or libcublas.so.12 was found, because"),
        result.describe());
  }

  @Test
  void nothingFoundDescribesNamesAndFix() {
    DiscoveryResult result = discovery(Map.of()).find(VendorLibrary.CUBLAS);

    assertTrue(result.best().isEmpty());
    String text = result.describe();
    assertTrue(text.contains("no libcublas.so.13 or libcublas.so.12 was found"), text);
    assertTrue(text.contains(LibraryDiscovery.PATH_VARIABLE), text);
  }

  @Test
  void describeListsRejections() throws IOException {
    FakeLibraries.file(root.resolve("usr/lib64"), "libcudnn.so.9", new byte[0]);

    String text = discovery(Map.of()).find(VendorLibrary.CUDNN).describe();

    assertTrue(text.contains("rejected: " + root.resolve("usr/lib64/libcudnn.so.9")), text);
    assertTrue(text.contains("is empty"), text);
  }

  @Test
  void splitPathListDropsBlankEntries() {
    assertEquals(
        List.of(Path.of("/a"), Path.of("/b")), LibraryDiscovery.splitPathList(":/a:: /b :"));
    assertTrue(LibraryDiscovery.splitPathList(null).isEmpty());
  }
}
