package dev.kiln.keypoints.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import dev.kiln.keypoints.data.TestData;
import dev.kiln.keypoints.train.History;
import dev.kiln.keypoints.train.TrainOptions;
import dev.kiln.keypoints.train.Trainer;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
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
      {"--loader-threads", "-3", "--loader-threads must be from 0 to 1024"},
      {"--loader-threads", "100000", "--loader-threads must be from 0 to 1024"},
      {"--weight-decay", "1e400", "--weight-decay must be a finite number, 0 or more, got Inf"},
      {"--loss", "huber", "unknown loss 'huber'"},
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
  void resumeRejectsInvalidReplacements() throws IOException {
    Path run = folder.resolve("run");
    assertEquals(0, train(tinyRun(run, "--epochs", "1")), err.toString());
    String options = Files.readString(run.resolve(TrainOptions.FILE_NAME));

    err.getBuffer().setLength(0);
    int epochsStatus = train("--resume", run.toString(), "--epochs", "0");
    String epochsMessage = err.toString();
    err.getBuffer().setLength(0);
    int limitStatus = train("--resume", run.toString(), "--time-limit", "-1");
    String limitMessage = err.toString();

    assertEquals(1, epochsStatus, epochsMessage);
    assertEquals("kiln train: --epochs must be at least 1, got 0", epochsMessage.strip());
    assertEquals(1, limitStatus, limitMessage);
    assertEquals(
        "kiln train: --time-limit must be 0 (no limit) or a positive number of minutes, got -1.0",
        limitMessage.strip(),
        "the message blames the command line, not options.properties");
    assertEquals(options, Files.readString(run.resolve(TrainOptions.FILE_NAME)), "file unchanged");
  }

  @Test
  void moreLoaderThreadsThanProcessorsNoted() {
    int threads = Runtime.getRuntime().availableProcessors() + 1;

    train(
        "--data",
        "no-such-folder",
        "--loader-threads",
        String.valueOf(threads),
        "--output",
        folder.resolve("run").toString());

    assertTrue(
        out.toString().contains("note: --loader-threads " + threads + " is more than the"),
        out.toString());
  }

  @Test
  void helpDescribesZeroLoaderThreads() {
    CommandLine commandLine = Main.newCommandLine();
    // The usage message wraps long descriptions, so the test compares words.
    String usage =
        commandLine.getSubcommands().get("train").getUsageMessage().replaceAll("\\s+", " ");

    assertTrue(usage.contains("from 0 to 1024"), usage);
    assertTrue(usage.contains("0 prepares each batch on the training"), usage);
  }

  @Test
  void invalidOutputNamedBeforeData() throws IOException {
    Path file = Files.writeString(folder.resolve("file"), "not a folder");
    Path dangling = Files.createSymbolicLink(folder.resolve("dangling"), folder.resolve("none"));
    String notFolder = "--output is not a folder; pass another --output";
    String underFile =
        "--output cannot be created because " + file + " is not a folder; pass another --output";
    Object[][] cases = {
      {file, notFolder}, {dangling, notFolder}, {file.resolve("sub"), underFile},
    };
    for (Object[] c : cases) {
      err.getBuffer().setLength(0);

      int status = train("--data", "no-such-folder", "--output", c[0].toString());

      String message = err.toString();
      assertEquals(1, status, message);
      assertEquals("kiln train: " + c[0] + ": " + c[1], message.strip());
    }
    assertEquals("not a folder", Files.readString(file), "the file is left as it was");
    assertTrue(Files.isSymbolicLink(dangling), "the link is left as it was");
  }

  @Test
  void readOnlyOutputRejectedBeforeData() throws IOException {
    Path readOnly = Files.createDirectory(folder.resolve("read-only"));
    Files.setPosixFilePermissions(readOnly, PosixFilePermissions.fromString("r-xr-xr-x"));
    assumeFalse(
        Files.isWritable(readOnly), "skipped: this user (root) may write to read-only folders");

    int status = train("--data", "no-such-folder", "--output", readOnly.toString());

    assertEquals(1, status, err.toString());
    assertTrue(err.toString().contains("permission denied: cannot write to"), err.toString());
    assertFalse(err.toString().contains("training_frames_keypoints.csv"), err.toString());
  }

  @Test
  void nanLossRemovesRunAndAllowsRerun() throws IOException {
    Path run = folder.resolve("run");

    int failed = train(tinyRun(run, "--epochs", "2", "--lr", "1e30", "--loss", "mse"));

    assertEquals(1, failed, err.toString());
    assertTrue(err.toString().contains("at epoch 1: lower --lr"), err.toString());
    assertFalse(Files.exists(run), "the run saved no checkpoint, so its folder is removed");
    assertTrue(out.toString().contains("run folder: " + run), out.toString());
    assertTrue(out.toString().contains("removed " + run), out.toString());

    err.getBuffer().setLength(0);
    // Loader threads 0 prepare the batches on the training thread.
    int rerun = train(tinyRun(run, "--epochs", "1", "--loader-threads", "0"));

    assertEquals(0, rerun, err.toString());
    assertTrue(Files.isRegularFile(run.resolve(Trainer.LAST)), "the rerun trained");
  }

  @Test
  void failedRunEmptiesGivenFolder() throws IOException {
    Path run = Files.createDirectory(folder.resolve("given"));

    int failed = train(tinyRun(run, "--epochs", "1", "--lr", "1e30", "--loss", "mse"));

    assertEquals(1, failed, err.toString());
    assertTrue(Files.isDirectory(run), "the folder the user made stays");
    assertEquals(List.of(), children(run), "and is left empty");
    assertTrue(out.toString().contains("emptied " + run), out.toString());
  }

  @Test
  void failedRunKeepsFilesItDidNotWrite() throws IOException {
    Path run = folder.resolve("run");
    Path notes = run.resolve("notes.txt");
    // The user writes notes into the run folder once it is announced, before the run fails.
    Writer writer =
        new Writer() {
          @Override
          public void write(char[] text, int offset, int length) {
            out.write(text, offset, length);
            if (out.toString().contains("run folder: ") && !Files.exists(notes)) {
              try {
                Files.writeString(notes, "my notes");
              } catch (IOException e) {
                throw new UncheckedIOException(e);
              }
            }
          }

          @Override
          public void flush() {}

          @Override
          public void close() {}
        };

    int failed =
        train(
            new PrintWriter(writer, true),
            tinyRun(run, "--epochs", "1", "--lr", "1e30", "--loss", "mse"));

    assertEquals(1, failed, err.toString());
    assertEquals(List.of(notes), children(run), "only the user's file is left");
    assertEquals("my notes", Files.readString(notes));
    assertTrue(
        out.toString().contains("kept it for what the run did not write: notes.txt"),
        out.toString());
  }

  /**
   * Returns a writer that copies to {@link #out} and throws OutOfMemoryError where the trainer
   * prints the line of epoch {@code epoch} of 2, after that epoch's training and before its
   * checkpoint, as a heap too small for the model would.
   */
  private PrintWriter exhaustingAtEpoch(int epoch) {
    String line = "epoch " + epoch + "/2: ";
    Writer writer =
        new Writer() {
          private boolean thrown;

          @Override
          public void write(char[] text, int offset, int length) {
            out.write(text, offset, length);
            // printf writes a line in pieces, so the check looks at everything written so far.
            if (!thrown && out.toString().contains(line)) {
              thrown = true;
              throw new OutOfMemoryError("Java heap space");
            }
          }

          @Override
          public void flush() {}

          @Override
          public void close() {}
        };
    return new PrintWriter(writer, true);
  }

  @Test
  void heapExhaustionReportedInOneLine() throws IOException {
    Path run = folder.resolve("run");

    int status = train(exhaustingAtEpoch(1), tinyRun(run, "--epochs", "2"));

    String message = err.toString();
    assertEquals(1, status, message);
    assertEquals(1, message.strip().lines().count(), message);
    assertTrue(message.startsWith("kiln train: out of Java heap memory (Java heap space): "));
    assertTrue(message.contains("use a smaller --model"), message);
    assertTrue(message.contains("lower --batch-size (now 8)"), message);
    assertTrue(message.contains("KILN_JAVA_OPTIONS=-Xmx"), message);
    assertFalse(Files.exists(run), "the run saved no checkpoint, so its folder is removed");
  }

  @Test
  void failureAfterCheckpointKeepsRun() throws IOException {
    Path run = folder.resolve("run");

    int status = train(exhaustingAtEpoch(2), tinyRun(run, "--epochs", "2"));

    assertEquals(1, status, err.toString());
    assertTrue(Files.isRegularFile(run.resolve(Trainer.LAST)), "epoch 1's checkpoint stays");
    assertTrue(Files.isRegularFile(run.resolve(Trainer.BEST)));
    assertTrue(Files.isRegularFile(run.resolve(TrainOptions.FILE_NAME)));
    assertFalse(out.toString().contains("removed "), out.toString());

    // The run resumes from epoch 2.
    out = new StringWriter();
    assertEquals(0, train("--resume", run.toString()), err.toString());
    assertTrue(out.toString().contains("resuming at epoch 2, batch 0"), out.toString());
  }

  private int train(PrintWriter output, List<String> args) {
    return train(output, args.toArray(String[]::new));
  }

  @Test
  void failedLoadPrintsNoRunFolder() throws IOException {
    Path data = Files.createDirectory(folder.resolve("data"));
    Files.createDirectory(data.resolve("training"));
    List<String> header =
        Files.readAllLines(TestData.facialKeypoints().resolve("training_frames_keypoints.csv"))
            .subList(0, 2);
    Files.write(data.resolve("training_frames_keypoints.csv"), header);
    Path run = folder.resolve("runs").resolve("run");

    int status = train("--data", data.toString(), "--output", run.toString());

    assertEquals(1, status, err.toString());
    assertFalse(out.toString().contains("run folder: "), out.toString());
    assertFalse(Files.exists(folder.resolve("runs")), "the parent made for the run is removed");
  }

  @Test
  void resumeTakesNewTimeLimit() throws IOException {
    Path run = folder.resolve("run");
    // A limit of a few microseconds strikes after the first batch of each invocation.
    assertEquals(0, train(tinyRun(run, "--epochs", "2", "--time-limit", "1e-7")), err.toString());
    assertTrue(out.toString().contains("time limit of 0.0000001 minutes reached"), out.toString());

    // Without --time-limit, the resume keeps the run's limit and stops again.
    out = new StringWriter();
    assertEquals(0, train("--resume", run.toString()), err.toString());
    assertTrue(out.toString().contains("time limit of 0.0000001 minutes reached"), out.toString());
    assertEquals(List.of(), History.open(run.resolve("history.csv")).records());

    out = new StringWriter();
    assertEquals(0, train("--resume", run.toString(), "--time-limit", "0"), err.toString());
    assertFalse(out.toString().contains("time limit"), out.toString());
    assertEquals(2, History.open(run.resolve("history.csv")).records().size());
    assertEquals(0, TrainOptions.read(run).timeLimitMinutes());
  }

  @Test
  void resumeReplacesSavedValueNowRejected() throws IOException {
    Path run = folder.resolve("run");
    assertEquals(0, train(tinyRun(run, "--epochs", "1")), err.toString());
    // An older version saved --time-limit unchecked, so a run may hold a negative one.
    Path options = run.resolve(TrainOptions.FILE_NAME);
    Files.writeString(
        options,
        Files.readString(options)
            .replaceAll("(?m)^time_limit_minutes=.*$", "time_limit_minutes=-1.0"));

    err.getBuffer().setLength(0);
    int savedValueStatus = train("--resume", run.toString(), "--epochs", "2");
    String message = err.toString();
    int replaced = train("--resume", run.toString(), "--epochs", "2", "--time-limit", "0");

    assertEquals(1, savedValueStatus, message);
    assertTrue(message.contains("--time-limit must be 0 (no limit)"), message);
    assertTrue(message.contains("Set a valid value in that file"), message);
    assertEquals(0, replaced, err.toString());
    assertEquals(2, History.open(run.resolve("history.csv")).records().size());
  }
}
