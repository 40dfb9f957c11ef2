package dev.kiln.core.backend.cuda.libraries;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import dev.kiln.core.backend.cuda.libraries.VendorSelection.Provider;
import dev.kiln.core.backend.cuda.libraries.VendorSelection.Selected;
import dev.kiln.core.backend.cuda.libraries.VendorSelection.Setting;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Tests the order JCuda, direct, kiln, the forcing setting, the short log line and its details,
 * with fakes.
 */
class VendorSelectionTest {

  /** A binding that only describes itself. */
  private record FakeBinding(String description) implements VendorBinding {
    @Override
    public void close() {}
  }

  private final List<String> log = new ArrayList<>();
  private final VendorSelection selection = new VendorSelection(log::add);

  private static VendorSelection.Loader<FakeBinding> loads(String description) {
    return () -> new FakeBinding(description);
  }

  private static VendorSelection.Loader<FakeBinding> fails(RuntimeException e) {
    return () -> {
      throw e;
    };
  }

  private static VendorSelection.Loader<FakeBinding> unlinked(String message) {
    return () -> {
      throw new UnsatisfiedLinkError(message);
    };
  }

  @Test
  void jcudaWinsWhereItLoads() {
    Selected<FakeBinding> selected =
        selection.select("cuBLAS", Setting.AUTO, loads("cuBLAS 12 via JCublas"), loads("direct"));

    assertEquals(Provider.JCUDA, selected.provider());
    assertEquals("cuBLAS 12 via JCublas", selected.binding().description());
    assertEquals(List.of("cuBLAS: using cuBLAS 12 via JCublas"), log);
  }

  @Test
  void directServesWhereJcudaFailsToLink() {
    Selected<FakeBinding> selected =
        selection.select(
            "cuDNN",
            Setting.AUTO,
            unlinked("libcudnn.so.8: cannot open shared object file"),
            loads("cuDNN 9.10.2 through java.lang.foreign"));

    assertEquals(Provider.DIRECT, selected.provider());
    assertEquals(
        "cuDNN: using cuDNN 9.10.2 through java.lang.foreign, because JCuda failed to load it",
        selected.reason());
    assertEquals(
        "cuDNN: using cuDNN 9.10.2 through java.lang.foreign, because JCuda failed:"
            + " java.lang.UnsatisfiedLinkError: libcudnn.so.8: cannot open shared object file",
        selected.details());
    assertEquals(List.of(selected.reason()), log);
  }

  @Test
  void kilnKernelsWhenNothingLoads() {
    Selected<FakeBinding> selected =
        selection.select(
            "cuBLAS",
            Setting.AUTO,
            fails(new LibraryLoadException("JCublas 12.6 failed to load")),
            fails(
                new LibraryLoadException(
                    "no libcublas.so.13 or libcublas.so.12 was found",
                    "no libcublas.so.13 or libcublas.so.12 was found in 1 folder (/opt/lib)")));

    assertEquals(Provider.KILN, selected.provider());
    assertNull(selected.binding());
    assertEquals(
        "cuBLAS: using kiln's own kernels, because JCuda failed to load it and no"
            + " libcublas.so.13 or libcublas.so.12 was found",
        selected.reason());
    assertEquals(
        "cuBLAS: using kiln's own kernels, because JCuda failed: JCublas 12.6 failed to load;"
            + " and the direct binding failed: no libcublas.so.13 or libcublas.so.12 was found"
            + " in 1 folder (/opt/lib)",
        selected.details());
  }

  @Test
  void detailsGoToSecondLogOnce() {
    List<String> details = new ArrayList<>();
    VendorSelection twoLogs = new VendorSelection(log::add, details::add);

    Selected<FakeBinding> selected =
        twoLogs.select(
            "cuBLAS",
            Setting.AUTO,
            fails(new LibraryLoadException("JCublas 12.6 failed to load")),
            fails(new LibraryLoadException("none found", "none found in /a, /b")));
    twoLogs.select("cuBLAS", Setting.AUTO, loads("a"), loads("b"));
    twoLogs.select("cuDNN", Setting.AUTO, loads("c"), loads("d"));

    assertEquals(List.of(selected.reason(), "cuDNN: using c"), log);
    assertEquals(List.of(selected.details()), details);
    assertTrue(selected.details().contains("none found in /a, /b"), selected.details());
  }

  @Test
  void directFailureOtherThanLoadIsNamed() {
    VendorException status = new VendorException("cublasCreate_v2", 1, "not initialized", "");

    Selected<FakeBinding> selected =
        selection.select(
            "cuBLAS",
            Setting.AUTO,
            fails(new LibraryLoadException("JCublas 12.6 failed to load")),
            fails(status));

    assertEquals(Provider.KILN, selected.provider());
    assertTrue(
        selected.reason().endsWith("the direct binding failed: " + status.toString()),
        selected.reason());
  }

  @Test
  void failingHandleCreationIsAReason() {
    VendorException status = new VendorException("cudnnCreate", 1001, "not initialized", "");

    Selected<FakeBinding> selected =
        selection.select("cuDNN", Setting.AUTO, fails(status), loads("direct cuDNN"));

    assertEquals(Provider.DIRECT, selected.provider());
    assertTrue(
        selected.details().contains("cudnnCreate failed with status 1001"), selected.details());
  }

  @Test
  void forcedKilnLoadsNothing() {
    Selected<FakeBinding> selected =
        selection.select(
            "cuDNN",
            Setting.KILN,
            () -> {
              throw new AssertionError("JCuda must not be loaded");
            },
            () -> {
              throw new AssertionError("the direct binding must not be loaded");
            });

    assertEquals(Provider.KILN, selected.provider());
    assertEquals("cuDNN: using kiln's own kernels, forced by -Dkiln.cuda.vendor=kiln", log.get(0));
  }

  @Test
  void forcedDirectSkipsJcuda() {
    Selected<FakeBinding> selected =
        selection.select(
            "cuBLAS",
            Setting.DIRECT,
            () -> {
              throw new AssertionError("JCuda must not be loaded");
            },
            loads("cuBLAS 13"));

    assertEquals(Provider.DIRECT, selected.provider());
    assertEquals("cuBLAS: using cuBLAS 13, forced by -Dkiln.cuda.vendor=direct", selected.reason());
  }

  @Test
  void forcedPathThatFailsThrows() {
    LibraryLoadException e =
        assertThrows(
            LibraryLoadException.class,
            () ->
                selection.select(
                    "cuDNN", Setting.JCUDA, unlinked("no libcudnn.so.8"), loads("direct")));

    assertTrue(e.getMessage().contains("-Dkiln.cuda.vendor=jcuda"), e.getMessage());
    assertTrue(e.getMessage().contains("no libcudnn.so.8"), e.getMessage());
    assertTrue(e.getMessage().contains("Use -Dkiln.cuda.vendor=direct"), e.getMessage());
    assertTrue(log.isEmpty());
  }

  @Test
  void forcedDirectThatFailsAdvisesRemoval() {
    LibraryLoadException e =
        assertThrows(
            LibraryLoadException.class,
            () ->
                selection.select(
                    "cuDNN",
                    Setting.DIRECT,
                    loads("jcuda"),
                    fails(new LibraryLoadException("no libcudnn.so.9 or libcudnn.so.8"))));

    assertTrue(e.getMessage().contains("-Dkiln.cuda.vendor=direct forces"), e.getMessage());
    assertTrue(e.getMessage().endsWith("Remove the setting to fall back automatically"));
  }

  @Test
  void eachLibraryIsLoggedOnce() {
    selection.select("cuBLAS", Setting.AUTO, loads("a"), loads("b"));
    selection.select("cuBLAS", Setting.AUTO, loads("a"), loads("b"));
    selection.select("cuDNN", Setting.AUTO, loads("c"), loads("d"));

    assertEquals(List.of("cuBLAS: using a", "cuDNN: using c"), log);
  }

  @Test
  void settingParsesValuesAndRejectsOthers() {
    assertEquals(Setting.AUTO, Setting.parse(null));
    assertEquals(Setting.AUTO, Setting.parse(" "));
    assertEquals(Setting.DIRECT, Setting.parse(" Direct "));
    assertEquals(Setting.KILN, Setting.parse("kiln"));

    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> Setting.parse("cudnn"));
    assertTrue(e.getMessage().contains("kiln.cuda.vendor=cudnn is invalid"), e.getMessage());
  }

  @Test
  void realLoadersFallBackToKilnWithoutLibraries(
      @org.junit.jupiter.api.io.TempDir java.nio.file.Path root) throws java.io.IOException {
    // This machine's real JCuda jars, and a fake tree with an invalid cuDNN. No handle is ever
    // created, so the device needs no stream or allocator.
    FakeLibraries.file(root.resolve("usr/lib64"), "libcudnn.so.9", new byte[0]);
    LibraryDiscovery discovery = new LibraryDiscovery(Map.of(), root, root);
    VendorDevice device = new VendorDevice("cuda:0", 0, null, null, () -> {});
    assumeFalse(
        Files.exists(Path.of("/dev/nvidia0")), "this machine has a GPU, where JCuda may load");

    VendorBindings bindings = VendorBindings.select(device, Setting.AUTO, selection, discovery);

    assertFalse(bindings.blas().isPresent());
    assertFalse(bindings.dnn().isPresent());
    String blas = bindings.blasSelection().details();
    String dnn = bindings.dnnSelection().details();
    assertTrue(blas.startsWith("cuBLAS: using kiln's own kernels"), blas);
    assertTrue(blas.contains("JCublas 12.6 failed to load"), blas);
    assertTrue(blas.contains("libcublas.so.12: cannot open shared object file"), blas);
    assertTrue(blas.contains("no libcublas.so.13 or libcublas.so.12 was found"), blas);
    assertTrue(dnn.contains("JCudnn 11.7.0 failed to load"), dnn);
    assertTrue(dnn.contains("cannot load next to JCuda 12.6.0"), dnn);
    assertTrue(dnn.contains("libcudnn.so.9 is empty"), dnn);
    String blasLine = bindings.blasSelection().reason();
    String dnnLine = bindings.dnnSelection().reason();
    assertEquals(
        "cuBLAS: using kiln's own kernels, because JCuda failed to load it and no"
            + " libcublas.so.13 or libcublas.so.12 was found",
        blasLine);
    assertEquals(
        "cuDNN: using kiln's own kernels, because JCuda failed to load it and no usable"
            + " libcudnn.so.9 or libcudnn.so.8 was found: "
            + root.resolve("usr/lib64/libcudnn.so.9")
            + " is empty (0 bytes), so the installation is incomplete",
        dnnLine);
    assertEquals(List.of(blasLine, dnnLine), log);
    assertNull(bindings.dnnSelection().binding());
  }
}
