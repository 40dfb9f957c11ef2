package dev.kiln.keypoints.fetch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class FetchDataCommandTest {

  @Test
  void commandInstallsLocalArchive(@TempDir Path folder) throws IOException {
    Path archive = folder.resolve("a.zip");
    Files.write(archive, TestArchives.zip(TestArchives.dataset("data/")));
    Path data = folder.resolve("data");

    int code =
        new CommandLine(new FetchDataCommand())
            .execute("--archive", archive.toString(), "--data", data.toString());

    assertEquals(0, code);
    assertTrue(DataFetcher.isDataset(data));
  }

  @Test
  void commandFailureExitsWithOne(@TempDir Path folder) {
    StringWriter err = new StringWriter();
    CommandLine command = new CommandLine(new FetchDataCommand());
    command.setErr(new PrintWriter(err));

    int code =
        command.execute(
            "--archive",
            folder.resolve("none.zip").toString(),
            "--data",
            folder.resolve("d").toString());

    assertEquals(1, code);
    assertTrue(err.toString().contains("none.zip not found"), err.toString());
  }

  @Test
  void commandRejectsBadSha256(@TempDir Path folder) {
    int code =
        new CommandLine(new FetchDataCommand())
            .execute("--archive", "x.zip", "--sha256", "abc", "--data", folder.toString());

    assertEquals(2, code);
  }
}
