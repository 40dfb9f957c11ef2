package dev.kiln.core.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Tests the search for a library in the dynamic linker's folders, over a temporary tree. */
class LinkerFoldersTest {

  @TempDir Path root;

  private Path library(String folder) throws IOException {
    Path directory = Files.createDirectories(root.resolve(folder));
    return Files.writeString(directory.resolve("libcuda.so.1"), "x");
  }

  @Test
  void ldLibraryPathComesFirst() throws IOException {
    Path first = library("first");
    library("default");
    Path conf = Files.writeString(root.resolve("ld.so.conf"), root.resolve("default") + "\n");

    Path found =
        LinkerFolders.find(
            "libcuda.so.1",
            ":" + root.resolve("missing") + ":" + first.getParent(),
            conf,
            List.of());

    assertEquals(first, found);
  }

  @Test
  void includedConfigurationIsRead() throws IOException {
    Path driver = library("opt/nvidia/lib");
    Path confFolder = Files.createDirectories(root.resolve("ld.so.conf.d"));
    Files.writeString(confFolder.resolve("a.conf"), "# comment\n" + root.resolve("none") + "\n");
    Files.writeString(confFolder.resolve("b.conf"), driver.getParent() + "  # the driver\n");
    Files.writeString(confFolder.resolve("c.txt"), root.resolve("ignored") + "\n");
    Path conf = Files.writeString(root.resolve("ld.so.conf"), "include ld.so.conf.d/*.conf\n");

    assertEquals(
        List.of(root.resolve("none"), driver.getParent()), LinkerFolders.configured(conf, 0));
    assertEquals(driver, LinkerFolders.find("libcuda.so.1", null, conf, List.of()));
  }

  @Test
  void defaultFoldersComeLast() throws IOException {
    Path configured = library("configured");
    library("default");
    Path conf = Files.writeString(root.resolve("ld.so.conf"), configured.getParent() + "\n");

    Path found = LinkerFolders.find("libcuda.so.1", null, conf, List.of(root.resolve("default")));

    assertEquals(configured, found);
  }

  @Test
  void danglingLinkIsFound() throws IOException {
    Path folder = Files.createDirectories(root.resolve("lib"));
    Path link =
        Files.createSymbolicLink(folder.resolve("libcuda.so.1"), folder.resolve("libcuda.so.550"));

    assertEquals(
        link, LinkerFolders.find("libcuda.so.1", null, root.resolve("none"), List.of(folder)));
  }

  @Test
  void includeCycleEnds() throws IOException {
    Path conf = root.resolve("ld.so.conf");
    Files.writeString(conf, "include " + conf + "\n" + root.resolve("lib") + "\n");

    List<Path> folders = LinkerFolders.configured(conf, 0);

    assertEquals(root.resolve("lib"), folders.getFirst());
    assertNull(LinkerFolders.find("libcuda.so.1", null, conf, List.of()));
  }
}
