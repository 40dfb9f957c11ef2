package dev.kiln.keypoints.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.keypoints.data.TestData;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * The {@code train} command's checks and clean-up: invalid options and --output values are rejected
 * before any data is read, a run that fails before its first checkpoint leaves nothing that blocks
 * a rerun, a Java heap that runs out is reported in one line, and a resume may change its time
 * limit.
 */
class TrainCommandTest {
  /** CSV rows that each training run reads, few enough that a run takes seconds. */
  private static final String ROWS = "24";

  private StringWriter out = new StringWriter();
  private final StringWriter err = new StringWriter();

  @TempDir Path folder;

  private int train(String... args) {
    return train(new PrintWriter(out, true), args);
  }

  private int train(PrintWriter output, String... args) {
    CommandLine commandLine = Main.newCommandLine();
    commandLine.setOut(output);
    commandLine.setErr(new PrintWriter(err, true));
    List<String> all = new ArrayList<>(List.of("train"));
    all.addAll(List.of(args));
    return commandLine.execute(all.toArray(String[]::new));
  }

  /** Writes a model file of a tiny network, which trains an epoch of a few faces in a second. */
  private Path tinyModel() throws IOException {
    return Files.writeString(
        folder.resolve("tiny.txt"),
        """
        input 1x16x16
        conv 2 kernel=3 padding=1
        relu
        maxpool 4
        flatten
        linear 136
        """);
  }

  /**
   * Returns the arguments of a training run of the tiny model on a few real faces. With {@code --lr
   * 1e30 --loss mse} its loss overflows in the second batch.
   */
  private List<String> tinyRun(Path run, String... more) throws IOException {
    List<String> args =
        new ArrayList<>(
            List.of(
                "--data",
                TestData.facialKeypoints().toString(),
                "--model",
                tinyModel().toString(),
                "--limit",
                ROWS,
                "--batch-size",
                "8",
                "--output",
                run.toString()));
    args.addAll(List.of(more));
    return args;
  }

  private int train(List<String> args) {
    return train(args.toArray(String[]::new));
  }

  private static List<Path> children(Path folder) throws IOException {
    try (Stream<Path> entries = Files.list(folder)) {
      return entries.toList();
    }
  }

  @Test
  void invalidOptionsRejectedBeforeData() {
    String[][] cases = {
      {"--time-limit", "-1", "--time-limit must be 0 (no limit) or a positive number of minutes"},
      {"--time-limit", "NaN", "--time-limit must be 0 (no limit) or a positive number of minutes"},
      {"--time-limit", "Infinity", "--time-limit must be 0 (no limit) or a positive number"},
      {"--limit", "-5", "--limit must be 0 (all rows) or at least 1 row, got -5"},
      {"--loader-threads", "-3", "--loader-threads must be from 0 to 32"},
      {"--loader-threads", "100000", "--loader-threads must be from 0 to 32"},
      {"--weight-decay", "1e400", "--weight-decay must be a finite number, 0 or more, got Inf"},
      {"--loss", "huber", "unknown loss \"huber\""},
      {"--optimizer", "rmsprop", "unknown optimizer 'rmsprop'"},
      {"--schedule", "linear", "unknown schedule 'linear'"},
    };
    for (String[] c : cases) {
      err.getBuffer().setLength(0);
      Path run = folder.resolve("run");

      int status = train("--data", "no-such-folder", "--output", run.toString(), c[0], c[1]);

      String message = err.toString();
      assertEquals(1, status, c[0] + " " + c[1] + ": " + message);
      assertTrue(message.startsWith("kiln train: "), message);
      assertTrue(message.contains(c[2]), c[0] + " " + c[1] + ": " + message);
      assertFalse(message.contains("training_frames_keypoints.csv"), "no data is read first");
      assertFalse(Files.exists(run), "no run folder is made");
    }
  }

  @Test
  void helpDescribesZeroLoaderThreads() {
    CommandLine commandLine = Main.newCommandLine();
    // The usage message wraps long descriptions, so the test compares words.
    String usage =
        commandLine.getSubcommands().get("train").getUsageMessage().replaceAll("\\s+", " ");

    assertTrue(usage.contains("from 0 to 32"), usage);
    assertTrue(usage.contains("0 prepares each batch on the training"), usage);
  }
}
