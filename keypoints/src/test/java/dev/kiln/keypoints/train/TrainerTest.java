package dev.kiln.keypoints.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.keypoints.data.BadRowException;
import dev.kiln.keypoints.data.Sample;
import dev.kiln.keypoints.data.TestData;
import dev.kiln.keypoints.doctor.Deadline;
import dev.kiln.keypoints.doctor.DoctorInput;
import dev.kiln.keypoints.doctor.DoctorOptions;
import dev.kiln.keypoints.doctor.Report;
import dev.kiln.nn.Sequential;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Training runs on a few dozen real faces: the run folder's contents, an exact resume after a stop
 * in the middle of an epoch, and the refusal to overwrite a run.
 */
class TrainerTest {
  /** Faces read from the CSV; small, so each run takes seconds. */
  private static final int ROWS = 60;

  @TempDir Path folder;

  private static TrainOptions options(Path data, int epochs) {
    return new TrainOptions(
        data, "default", epochs, 16, "adam", 5e-4, 0, "l1", "cosine", 7, 0.2, 1, ROWS, 0, false);
  }

  private static TrainOptions withModel(TrainOptions o, Path model) {
    return changed(o, model.toString(), o.optimizer(), o.schedule());
  }

  private static TrainOptions withOptimizer(TrainOptions o, String optimizer) {
    return changed(o, o.model(), optimizer, o.schedule());
  }

  private static TrainOptions withSchedule(TrainOptions o, String schedule) {
    return changed(o, o.model(), o.optimizer(), schedule);
  }

  /** Returns a copy of {@code o} with another model, optimizer and schedule. */
  private static TrainOptions changed(
      TrainOptions o, String model, String optimizer, String schedule) {
    return new TrainOptions(
        o.data(),
        model,
        o.epochs(),
        o.batchSize(),
        optimizer,
        o.learningRate(),
        o.weightDecay(),
        o.loss(),
        schedule,
        o.seed(),
        o.validationFraction(),
        o.loaderThreads(),
        o.limit(),
        o.timeLimitMinutes(),
        o.skipBadRows());
  }

  private static PrintWriter quiet() {
    return new PrintWriter(new StringWriter());
  }

  @Test
  void runFolderHasEveryArtifact() throws IOException {
    Path data = TestData.facialKeypoints();
    Path run = folder.resolve("run");

    List<EpochRecord> history =
        Trainer.start(options(data, 1), Device.CPU, run, quiet(), false).run();

    assertEquals(1, history.size());
    for (String name :
        List.of(
            "options.properties",
            "split.txt",
            "model.txt",
            "devices.txt",
            "history.csv",
            "curves.png",
            Trainer.BEST,
            Trainer.LAST)) {
      assertTrue(Files.isRegularFile(run.resolve(name)), "missing " + name);
    }
  }

  @Test
  void plotFailureDoesNotStopTraining() throws IOException {
    Path data = TestData.facialKeypoints();
    Path run = folder.resolve("run");
    StringWriter log = new StringWriter();
    Trainer trainer = Trainer.start(options(data, 2), Device.CPU, run, new PrintWriter(log), false);
    // A folder where the picture should go makes every attempt to draw it fail.
    Files.createDirectories(run.resolve("curves.png"));

    List<EpochRecord> history = trainer.run();

    assertEquals(2, history.size());
    assertTrue(Files.isRegularFile(run.resolve(Trainer.LAST)));
    String text = log.toString();
    int warning = text.indexOf("warning: cannot draw");
    assertTrue(warning >= 0, text);
    assertEquals(-1, text.indexOf("warning: cannot draw", warning + 1), "warned twice: " + text);
  }

  @Test
  void timeLimitInsideAnEpochSavesTheBatch() throws IOException {
    Path data = TestData.facialKeypoints();
    Path run = folder.resolve("run");
    // A limit of a few microseconds strikes after the first batch of each invocation.
    TrainOptions limited =
        new TrainOptions(
            data, "default", 2, 16, "adam", 5e-4, 0, "l1", "cosine", 7, 0.2, 1, ROWS, 1e-7, false);

    List<EpochRecord> history = Trainer.start(limited, Device.CPU, run, quiet(), false).run();
    Position first = Position.fromMetadata(Checkpoint.read(run.resolve(Trainer.LAST)).metadata());
    Trainer.resume(run, 0, Device.CPU, quiet(), false).run();
    Position second = Position.fromMetadata(Checkpoint.read(run.resolve(Trainer.LAST)).metadata());

    assertEquals(List.of(), history, "a partial epoch is no epoch");
    assertEquals(1, first.epoch());
    assertEquals(1, first.batch());
    assertEquals(1, second.epoch());
    assertEquals(2, second.batch(), "the resumed run gets its own time limit");
  }

  @Test
  void resumeOfAFinishedRunChangesNothing() throws IOException {
    Path data = TestData.facialKeypoints();
    Path run = folder.resolve("run");
    Trainer.start(options(data, 1), Device.CPU, run, quiet(), false).run();
    byte[] options = Files.readAllBytes(run.resolve("options.properties"));
    byte[] devices = Files.readAllBytes(run.resolve("devices.txt"));

    IllegalArgumentException sameCount =
        assertThrows(
            IllegalArgumentException.class,
            () -> Trainer.resume(run, 0, Device.CPU, quiet(), false));
    IllegalArgumentException fewer =
        assertThrows(
            IllegalArgumentException.class,
            () -> Trainer.resume(run, 1, Device.CPU, quiet(), false));

    assertTrue(sameCount.getMessage().contains("has finished 1 epochs"), sameCount.getMessage());
    assertTrue(fewer.getMessage().contains("--epochs greater than 1"), fewer.getMessage());
    assertArrayEquals(options, Files.readAllBytes(run.resolve("options.properties")));
    assertArrayEquals(devices, Files.readAllBytes(run.resolve("devices.txt")));
  }

  @Test
  void stopAndResumeMatchesStraightRun() throws IOException {
    Path data = TestData.facialKeypoints();
    Path straight = folder.resolve("straight");
    Path interrupted = folder.resolve("interrupted");
    Trainer.start(options(data, 2), Device.CPU, straight, quiet(), false).run();

    // Stop after the first batch of epoch 1 through the same path that Ctrl-C takes.
    Trainer first = Trainer.start(options(data, 2), Device.CPU, interrupted, quiet(), false);
    first.requestStop();
    first.run();
    Position stopped =
        Position.fromMetadata(Checkpoint.read(interrupted.resolve(Trainer.LAST)).metadata());
    Trainer.resume(interrupted, 0, Device.CPU, quiet(), false).run();

    assertEquals(1, stopped.epoch());
    assertEquals(1, stopped.batch());
    // One line for the start and one for the resume, each ending with the device.
    List<String> devices = Files.readAllLines(interrupted.resolve("devices.txt"));
    assertEquals(2, devices.size());
    for (String line : devices) {
      assertTrue(line.endsWith(" cpu"), line);
    }
    Map<String, Tensor> a = Checkpoint.read(straight.resolve(Trainer.LAST)).model();
    Map<String, Tensor> b = Checkpoint.read(interrupted.resolve(Trainer.LAST)).model();
    for (String name : a.keySet()) {
      assertArrayEquals(a.get(name).toFloatArray(), b.get(name).toFloatArray(), name);
    }
    assertEquals(
        Files.readString(straight.resolve("history.csv"))
            .lines()
            .map(TrainerTest::lossColumns)
            .toList(),
        Files.readString(interrupted.resolve("history.csv"))
            .lines()
            .map(TrainerTest::lossColumns)
            .toList());
  }

  /** The epoch, loss and NME columns of a history row; timings differ between runs. */
  private static String lossColumns(String row) {
    String[] columns = row.split(",");
    return String.join(",", columns[0], columns[1], columns[2], columns[3], columns[4]);
  }

  @Test
  void nonEmptyOutputFolderIsRejected() throws IOException {
    Path run = Files.createDirectories(folder.resolve("run"));
    Files.writeString(run.resolve("keep.txt"), "precious");

    IOException error =
        assertThrows(
            IOException.class,
            () -> Trainer.start(options(folder, 1), Device.CPU, run, quiet(), false));

    assertTrue(error.getMessage().contains("not empty"), error.getMessage());
    assertTrue(error.getMessage().contains("no finished epoch"), error.getMessage());
    assertTrue(error.getMessage().contains("another --output"), error.getMessage());
    assertFalse(error.getMessage().contains("--resume"), error.getMessage());
    assertEquals("precious", Files.readString(run.resolve("keep.txt")));
  }

  @Test
  void folderWithCheckpointSuggestsResume() throws IOException {
    Path run = Files.createDirectories(folder.resolve("run"));
    Files.writeString(run.resolve(Trainer.LAST), "checkpoint");

    IOException error =
        assertThrows(
            IOException.class,
            () -> Trainer.start(options(folder, 1), Device.CPU, run, quiet(), false));

    assertTrue(error.getMessage().contains("not empty"), error.getMessage());
    assertTrue(error.getMessage().contains("--resume " + run), error.getMessage());
    assertEquals("checkpoint", Files.readString(run.resolve(Trainer.LAST)));
  }

  @Test
  void startOnlyClaimsFolder() throws IOException {
    Path data = TestData.facialKeypoints();
    Path run = folder.resolve("run");

    Trainer.start(options(data, 1), Device.CPU, run, quiet(), false);

    assertTrue(Files.isDirectory(run), "start creates the folder");
    try (var entries = Files.list(run)) {
      assertEquals(
          List.of(run.resolve(FolderClaim.FILE_NAME)),
          entries.toList(),
          "and writes only the empty claim file");
    }
    assertEquals(0, Files.size(run.resolve(FolderClaim.FILE_NAME)));
  }

  /**
   * A new run's folder holds only its claim file while the data loads, so that a failure then
   * leaves nothing of the run's own to remove. The output lines mark the steps: the folder is
   * listed each time the trainer prints.
   */
  @Test
  void newRunWritesNothingWhileLoading() throws IOException {
    Path data = TestData.facialKeypoints();
    Path run = folder.resolve("run");
    StringBuilder printed = new StringBuilder();
    StringBuilder printedBeforeFiles = new StringBuilder();
    Writer watcher =
        new Writer() {
          @Override
          public void write(char[] text, int offset, int length) {
            try (var entries = Files.list(run)) {
              if (entries.allMatch(p -> p.getFileName().toString().equals(FolderClaim.FILE_NAME))) {
                printedBeforeFiles.setLength(0);
                printedBeforeFiles.append(printed).append(text, offset, length);
              }
            } catch (IOException e) {
              throw new UncheckedIOException(e);
            }
            printed.append(text, offset, length);
          }

          @Override
          public void flush() {}

          @Override
          public void close() {}
        };

    Trainer.start(options(data, 1), Device.CPU, run, new PrintWriter(watcher), false).run();

    String loading = printedBeforeFiles.toString();
    assertTrue(loading.contains("model: "), loading);
    assertTrue(loading.contains("loaded " + ROWS + " faces"), loading);
    assertTrue(loading.contains("split by identity"), loading);
    assertTrue(printed.toString().contains("epoch 1/1: "), printed.toString());
    assertFalse(loading.contains("epoch 1/1: "), "files were written by the end of the epoch");
    assertTrue(Files.isRegularFile(run.resolve(TrainOptions.FILE_NAME)), "options written");
    assertFalse(Files.exists(run.resolve(FolderClaim.FILE_NAME)), "claim gone at the run's end");
  }

  @Test
  void missingDatasetSaysHowToGetIt() throws IOException {
    Path run = folder.resolve("run");

    IOException error =
        assertThrows(
            IOException.class,
            () ->
                Trainer.start(
                        options(folder.resolve("nowhere"), 1), Device.CPU, run, quiet(), false)
                    .run());

    assertTrue(error.getMessage().contains("fetch-data"), error.getMessage());
    assertFalse(Files.exists(run), "a failed start leaves no run folder behind");
  }

  /**
   * Writes a dataset folder with the first {@link #ROWS} rows of the real training CSV, where the
   * row on line {@code line} has point 45 moved onto point 36, and links the real image folder.
   */
  private Path datasetWithCoincidentEyeCorners(int line) throws IOException {
    Path real = TestData.facialKeypoints();
    List<String> lines =
        new ArrayList<>(
            Files.readAllLines(real.resolve("training_frames_keypoints.csv")).subList(0, ROWS + 1));
    String[] fields = lines.get(line - 1).split(",");
    fields[1 + 2 * 45] = fields[1 + 2 * 36];
    fields[1 + 2 * 45 + 1] = fields[1 + 2 * 36 + 1];
    lines.set(line - 1, String.join(",", fields));

    Path data = Files.createDirectory(folder.resolve("data"));
    Files.write(data.resolve("training_frames_keypoints.csv"), lines);
    Files.createSymbolicLink(data.resolve("training"), real.resolve("training").toAbsolutePath());
    return data;
  }

  @Test
  void coincidentEyeCornersStopRunBeforeTraining() throws IOException {
    Path data = datasetWithCoincidentEyeCorners(5);
    Path run = folder.resolve("run");

    BadRowException error =
        assertThrows(
            BadRowException.class,
            () -> Trainer.start(options(data, 1), Device.CPU, run, quiet(), false).run());

    String message = error.getMessage();
    assertTrue(message.contains("training_frames_keypoints.csv line 5 ("), message);
    assertTrue(message.contains("points 36 and 45"), message);
    assertTrue(message.contains("--skip-bad-rows"), message);
    assertFalse(Files.exists(run), "the failed start removed the folder it created");
  }

  @Test
  void failedLoadKeepsGivenFolderReusable() throws IOException {
    Path data = datasetWithCoincidentEyeCorners(5);
    Path run = Files.createDirectory(folder.resolve("given"));
    assertThrows(
        BadRowException.class,
        () -> Trainer.start(options(data, 1), Device.CPU, run, quiet(), false).run());
    assertTrue(Files.isDirectory(run), "the folder given with --output stays");
    try (var entries = Files.list(run)) {
      assertEquals(List.of(), entries.toList(), "options.properties was removed");
    }

    // The same folder takes the next attempt, which skips the bad row.
    TrainOptions skipping =
        new TrainOptions(
            data, "default", 1, 16, "adam", 5e-4, 0, "l1", "cosine", 7, 0.2, 1, ROWS, 0, true);
    List<EpochRecord> history = Trainer.start(skipping, Device.CPU, run, quiet(), false).run();
    assertEquals(1, history.size());
  }

  @Test
  void failedLoadRemovesCreatedParents() throws IOException {
    Path data = datasetWithCoincidentEyeCorners(5);
    Path run = folder.resolve("runs").resolve("nested").resolve("run");

    assertThrows(
        BadRowException.class,
        () -> Trainer.start(options(data, 1), Device.CPU, run, quiet(), false).run());

    assertFalse(Files.exists(folder.resolve("runs")), "the parents that start made are removed");
    assertTrue(Files.isDirectory(data), "a folder that existed before stays");
  }

  @Test
  void secondStartInClaimedFolderRejected() throws IOException {
    Path data = datasetWithCoincidentEyeCorners(5);
    Path run = folder.resolve("run");
    Trainer first = Trainer.start(options(data, 1), Device.CPU, run, quiet(), false);

    IOException error =
        assertThrows(
            IOException.class,
            () -> Trainer.start(options(data, 1), Device.CPU, run, quiet(), false));

    assertTrue(error.getMessage().contains("is claimed by another kiln train"), error.getMessage());
    assertTrue(Files.exists(run.resolve(FolderClaim.FILE_NAME)), "the first run keeps its claim");
    assertThrows(BadRowException.class, first::run);
    assertFalse(Files.exists(run), "the first run's clean-up removes the claim and the folder");
  }

  @Test
  void staleClaimTakenOver() throws IOException {
    Path data = TestData.facialKeypoints();
    Path run = Files.createDirectory(folder.resolve("run"));
    // Left by a run that was killed while its data loaded: no process holds its lock.
    Files.createFile(run.resolve(FolderClaim.FILE_NAME));

    List<EpochRecord> history =
        Trainer.start(options(data, 1), Device.CPU, run, quiet(), false).run();

    assertEquals(1, history.size());
    assertFalse(Files.exists(run.resolve(FolderClaim.FILE_NAME)), "claim gone at the run's end");
  }

  @Test
  void oldClaimFileCountsAsEmpty() throws IOException {
    Path data = TestData.facialKeypoints();
    Path run = Files.createDirectory(folder.resolve("run"));
    // Left by an earlier version's run that was killed before its first checkpoint.
    Files.createFile(run.resolve(FolderClaim.OLD_FILE_NAME));

    List<EpochRecord> history =
        Trainer.start(options(data, 1), Device.CPU, run, quiet(), false).run();

    assertEquals(1, history.size());
  }

  /**
   * Locks the claim file of {@code run} as a live run in another process holds it. The trainer's
   * own lock attempt in this JVM then fails as it would against that process.
   */
  private static FileChannel holdClaim(Path run) throws IOException {
    FileChannel channel =
        FileChannel.open(
            run.resolve(FolderClaim.FILE_NAME),
            StandardOpenOption.CREATE,
            StandardOpenOption.WRITE);
    channel.lock();
    return channel;
  }

  @Test
  void startBeforeOthersCheckpointGetsClaimed() throws IOException {
    Path run = Files.createDirectory(folder.resolve("run"));
    // A live run that has written its first files but no checkpoint yet.
    Files.writeString(run.resolve(TrainOptions.FILE_NAME), "epochs=1\n");

    IOException error;
    try (FileChannel _ = holdClaim(run)) {
      error =
          assertThrows(
              IOException.class,
              () -> Trainer.start(options(folder, 1), Device.CPU, run, quiet(), false));
    }

    String message = error.getMessage();
    assertTrue(message.contains("output folder " + run + " is claimed"), message);
    assertTrue(message.contains("running there"), message);
    assertTrue(message.contains("wait for it to end or stop it"), message);
    assertFalse(message.contains("delete the folder"), message);
    assertEquals("epochs=1\n", Files.readString(run.resolve(TrainOptions.FILE_NAME)));
  }

  @Test
  void startAfterOthersCheckpointGetsClaimed() throws IOException {
    Path run = Files.createDirectory(folder.resolve("run"));
    Files.writeString(run.resolve(Trainer.LAST), "checkpoint");

    IOException error;
    try (FileChannel _ = holdClaim(run)) {
      error =
          assertThrows(
              IOException.class,
              () -> Trainer.start(options(folder, 1), Device.CPU, run, quiet(), false));
    }

    String message = error.getMessage();
    assertTrue(message.contains("output folder " + run + " is claimed"), message);
    assertFalse(message.contains("--resume"), "no advice to resume a live run: " + message);
    assertEquals("checkpoint", Files.readString(run.resolve(Trainer.LAST)));
  }

  @Test
  void resumeNamesMissingFolderOrFile() throws IOException {
    Path missing = folder.resolve("no-such-run");
    Path file = Files.writeString(folder.resolve("notes.txt"), "not a run");

    IOException noFolder =
        assertThrows(
            IOException.class, () -> Trainer.resume(missing, 2, Device.CPU, quiet(), false));
    IOException notFolder =
        assertThrows(IOException.class, () -> Trainer.resume(file, 2, Device.CPU, quiet(), false));

    assertTrue(
        noFolder.getMessage().startsWith(missing + ": run folder not found"),
        noFolder.getMessage());
    assertTrue(
        notFolder.getMessage().startsWith(file + ": is not a folder"), notFolder.getMessage());
    assertTrue(notFolder.getMessage().contains("pass --resume the folder"), notFolder.getMessage());
    assertFalse(Files.exists(missing), "the resume created the folder");
  }

  @Test
  void resumeRejectedWhileClaimHeld() throws IOException {
    Path run = folder.resolve("run");
    Trainer.start(stalledRun(1), Device.CPU, run, quiet(), false).run();
    Map<String, byte[]> before = contents(run);

    IOException error;
    try (FileChannel _ = holdClaim(run)) {
      error =
          assertThrows(IOException.class, () -> Trainer.resume(run, 2, Device.CPU, quiet(), false));
      assertTrue(Files.exists(run.resolve(FolderClaim.FILE_NAME)), "the live claim stays");
    }

    String message = error.getMessage();
    assertTrue(message.contains("run folder " + run + " is claimed"), message);
    assertTrue(message.contains("another kiln train that is running there"), message);
    assertTrue(message.contains("wait for it to end or stop it"), message);
    Files.delete(run.resolve(FolderClaim.FILE_NAME));
    Map<String, byte[]> after = contents(run);
    assertEquals(before.keySet(), after.keySet());
    for (String name : before.keySet()) {
      assertArrayEquals(before.get(name), after.get(name), name);
    }
  }

  /**
   * A run keeps its folder claimed after its checkpoints: a resume and a new run started while it
   * trains, here from inside its stall examination after epoch 3, are both rejected.
   */
  @Test
  void liveRunRejectsResumeAndStart() throws IOException {
    Path run = folder.resolve("run");
    List<Exception> errors = new ArrayList<>();
    Function<DoctorInput, Report> intruding =
        input -> {
          try {
            Trainer.resume(run, 5, Device.CPU, quiet(), false).run();
          } catch (IOException | RuntimeException e) {
            errors.add(e);
          }
          try {
            Trainer.start(stalledRun(1), Device.CPU, run, quiet(), false).run();
          } catch (IOException | RuntimeException e) {
            errors.add(e);
          }
          return new Report(List.of(), 0);
        };

    List<EpochRecord> history =
        Trainer.start(stalledRun(3), Device.CPU, run, quiet(), false).withDoctor(intruding).run();

    assertEquals(3, history.size());
    assertEquals(2, errors.size(), "both intruders rejected: " + errors);
    String resumeMessage = errors.get(0).getMessage();
    assertTrue(resumeMessage.contains("run folder " + run + " is claimed"), resumeMessage);
    String startMessage = errors.get(1).getMessage();
    assertTrue(startMessage.contains("output folder " + run + " is claimed"), startMessage);
    assertFalse(startMessage.contains("--resume"), startMessage);
    List<EpochRecord> saved = History.open(run.resolve(TrainingParts.HISTORY_FILE)).records();
    assertEquals(3, saved.size(), "history.csv has the run's epochs");
    assertEquals(3, TrainOptions.read(run).epochs(), "options.properties keeps the epoch count");
    Position last = Position.fromMetadata(Checkpoint.read(run.resolve(Trainer.LAST)).metadata());
    assertEquals(4, last.epoch(), "last.safetensors is the run's own");
    assertFalse(Files.exists(run.resolve(FolderClaim.FILE_NAME)), "claim gone at the run's end");
  }

  @Test
  void resumeTakesOverStaleClaim() throws IOException {
    Path run = folder.resolve("run");
    Trainer.start(stalledRun(1), Device.CPU, run, quiet(), false).run();
    // Left by a resume that was killed: no process holds its lock.
    Files.createFile(run.resolve(FolderClaim.FILE_NAME));

    List<EpochRecord> history = Trainer.resume(run, 2, Device.CPU, quiet(), false).run();

    assertEquals(2, history.size());
    assertFalse(Files.exists(run.resolve(FolderClaim.FILE_NAME)), "claim gone at the run's end");
  }

  @Test
  void resumeReleasesClaimWhenItEnds() throws IOException {
    Path run = folder.resolve("run");
    Trainer.start(stalledRun(1), Device.CPU, run, quiet(), false).run();
    Trainer stopped = Trainer.resume(run, 3, Device.CPU, quiet(), false);
    stopped.requestStop();

    stopped.run();
    assertFalse(Files.exists(run.resolve(FolderClaim.FILE_NAME)), "claim gone after a stop");
    // In this JVM, a claim that the stopped resume still held would reject this one.
    List<EpochRecord> history = Trainer.resume(run, 3, Device.CPU, quiet(), false).run();

    assertEquals(3, history.size());
    assertFalse(Files.exists(run.resolve(FolderClaim.FILE_NAME)), "claim gone at the run's end");
  }

  @Test
  void failedLoadKeepsParentInUse() throws IOException {
    Path data = datasetWithCoincidentEyeCorners(5);
    Path runs = folder.resolve("runs");
    Path run = runs.resolve("run");
    Trainer trainer = Trainer.start(options(data, 1), Device.CPU, run, quiet(), false);
    // Another run puts its folder into runs/ while this one loads.
    Files.createDirectory(runs.resolve("other"));

    assertThrows(BadRowException.class, trainer::run);

    assertFalse(Files.exists(run), "the run folder is removed");
    assertTrue(Files.isDirectory(runs.resolve("other")), "the other run's folder stays");
  }

  @Test
  void coincidentEyeCornersSkippedWhenAsked() throws IOException {
    Path data = datasetWithCoincidentEyeCorners(5);
    Path run = folder.resolve("run");
    TrainOptions skipping =
        new TrainOptions(
            data, "default", 1, 16, "adam", 5e-4, 0, "l1", "cosine", 7, 0.2, 1, ROWS, 0, true);
    StringWriter log = new StringWriter();

    List<EpochRecord> history =
        Trainer.start(skipping, Device.CPU, run, new PrintWriter(log, true), false).run();

    assertEquals(1, history.size());
    assertTrue(Double.isFinite(history.getFirst().validationNme()), history.toString());
    assertTrue(Files.isRegularFile(run.resolve(Trainer.LAST)), "last checkpoint");
    assertTrue(log.toString().contains("Loaded " + (ROWS - 1) + " of " + ROWS), log.toString());
    assertTrue(log.toString().contains("training_frames_keypoints.csv line 5 ("), log.toString());
  }

  @Test
  void failedStartKeepsEmptyGivenFolder() throws IOException {
    Path run = Files.createDirectory(folder.resolve("given"));

    assertThrows(
        IOException.class,
        () ->
            Trainer.start(options(folder.resolve("nowhere"), 1), Device.CPU, run, quiet(), false));

    assertTrue(Files.isDirectory(run), "the folder the user made is kept");
    try (var entries = Files.list(run)) {
      assertEquals(0, entries.count(), "and left empty");
    }
  }

  @Test
  void unknownModelLeavesNoRunFolder() throws IOException {
    Path data = TestData.facialKeypoints();
    Path run = folder.resolve("run");
    TrainOptions options =
        new TrainOptions(
            data, "nosuch", 1, 16, "adam", 5e-4, 0, "l1", "cosine", 7, 0.2, 1, ROWS, 0, false);

    IllegalArgumentException error =
        assertThrows(
            IllegalArgumentException.class,
            () -> Trainer.start(options, Device.CPU, run, quiet(), false));

    assertTrue(error.getMessage().contains("unknown model 'nosuch'"), error.getMessage());
    assertFalse(Files.exists(run), "a rejected model leaves no run folder behind");
  }

  /**
   * Options for a run of a tiny model whose loss stalls at once: Adam moves each weight by about
   * 1e-9 per step at this rate, so the doctor runs after the third epoch.
   */
  private TrainOptions stalledRun(int epochs) throws IOException {
    return stalledRun(epochs, 8, 0);
  }

  /** Like {@link #stalledRun(int)}, with another batch size and time limit in minutes. */
  private TrainOptions stalledRun(int epochs, int batchSize, double timeLimitMinutes)
      throws IOException {
    Path model = folder.resolve("tiny.txt");
    Files.writeString(
        model,
        """
        input 1x16x16
        conv 2 kernel=3 padding=1
        relu
        maxpool 4
        flatten
        linear 136
        """);
    return new TrainOptions(
        TestData.facialKeypoints(),
        model.toString(),
        epochs,
        batchSize,
        "adam",
        1e-9,
        0,
        "l1",
        "none",
        7,
        0.2,
        1,
        24,
        timeLimitMinutes,
        false);
  }

  @Test
  void doctorLeavesTheRunAsItWas() throws IOException {
    Path examined = folder.resolve("examined");
    Path plain = folder.resolve("plain");
    StringWriter text = new StringWriter();
    List<EpochRecord> withDoctor =
        Trainer.start(stalledRun(4), Device.CPU, examined, new PrintWriter(text, true), false)
            .run();
    assertTrue(text.toString().contains("running the doctor"), text.toString());
    // A doctor.md that is already there marks the run as examined, so this one trains without it.
    Trainer trainer = Trainer.start(stalledRun(4), Device.CPU, plain, quiet(), false);
    Files.writeString(plain.resolve(Report.FILE_NAME), "examined elsewhere");
    List<EpochRecord> withoutDoctor = trainer.run();

    // The doctor trains copies at other learning rates; the run must not keep any of that.
    assertEquals(4, withDoctor.size());
    for (int i = 0; i < 4; i++) {
      assertEquals(withoutDoctor.get(i).trainLoss(), withDoctor.get(i).trainLoss(), "epoch " + i);
      assertEquals(
          withoutDoctor.get(i).validationNme(), withDoctor.get(i).validationNme(), "epoch " + i);
    }
    Map<String, Tensor> expected = Checkpoint.read(plain.resolve(Trainer.LAST)).model();
    Map<String, Tensor> actual = Checkpoint.read(examined.resolve(Trainer.LAST)).model();
    for (String name : expected.keySet()) {
      assertArrayEquals(
          expected.get(name).toFloatArray(), actual.get(name).toFloatArray(), 0f, name);
    }
  }

  @Test
  void failedDoctorLeavesTheRunAsItWas() throws IOException {
    Path examined = folder.resolve("examined");
    Path plain = folder.resolve("plain");
    StringWriter text = new StringWriter();
    // A doctor that takes an optimizer step and zeroes the weights before it fails, as a check
    // that throws half way through its restore would leave them.
    Function<DoctorInput, Report> failing =
        input -> {
          input.optimizer().zeroGrad();
          List<Sample> faces =
              input.trainingFaces().subList(0, 4).stream()
                  .map(face -> input.validationPipeline().apply(face, input.generator()))
                  .toList();
          Batch batch = input.collate().apply(faces);
          input.loss().compute(input.model().forward(batch.images()), batch.targets()).backward();
          input.optimizer().step();
          for (Tensor parameter : input.model().parameters()) {
            parameter.copyFrom(Tensor.zerosLike(parameter));
          }
          throw new IllegalStateException("check failed on purpose");
        };
    List<EpochRecord> withFailure =
        Trainer.start(stalledRun(4), Device.CPU, examined, new PrintWriter(text, true), false)
            .withDoctor(failing)
            .run();
    Trainer trainer = Trainer.start(stalledRun(4), Device.CPU, plain, quiet(), false);
    Files.writeString(plain.resolve(Report.FILE_NAME), "examined elsewhere");
    List<EpochRecord> withoutDoctor = trainer.run();

    assertTrue(
        text.toString().contains("the doctor failed, and training goes on: "), text.toString());
    String report = Files.readString(examined.resolve(Report.FILE_NAME));
    assertTrue(report.contains("after epoch 3 failed: "), report);
    assertTrue(report.contains("check failed on purpose"), report);
    assertTrue(report.contains("kiln doctor --run " + examined), report);
    assertEquals(4, withFailure.size());
    for (int i = 0; i < 4; i++) {
      assertEquals(withoutDoctor.get(i).trainLoss(), withFailure.get(i).trainLoss(), "epoch " + i);
    }
    Checkpoint expected = Checkpoint.read(plain.resolve(Trainer.LAST));
    Checkpoint actual = Checkpoint.read(examined.resolve(Trainer.LAST));
    for (String name : expected.model().keySet()) {
      assertArrayEquals(
          expected.model().get(name).toFloatArray(),
          actual.model().get(name).toFloatArray(),
          0f,
          name);
    }
    for (String name : expected.optimizer().keySet()) {
      assertArrayEquals(
          expected.optimizer().get(name).toFloatArray(),
          actual.optimizer().get(name).toFloatArray(),
          0f,
          name);
    }
  }

  @Test
  void doctorGetsTimeLimitAndUsableBatch() throws IOException {
    List<DoctorOptions> seen = new ArrayList<>();
    Function<DoctorInput, Report> recording =
        input -> {
          seen.add(input.options());
          return new Report(List.of(), 0);
        };

    Trainer.start(stalledRun(3, 1, 30), Device.CPU, folder.resolve("limited"), quiet(), false)
        .withDoctor(recording)
        .run();
    Duration left = seen.get(0).deadline().remaining();
    Trainer.start(stalledRun(3, 8, 0), Device.CPU, folder.resolve("unlimited"), quiet(), false)
        .withDoctor(recording)
        .run();

    assertEquals(2, seen.size());
    assertEquals(2, seen.get(0).batchSize(), "a batch of 1 is raised to the doctor's minimum");
    Deadline deadline = seen.get(0).deadline();
    assertNotNull(deadline, "a run with a time limit gives the doctor a deadline");
    // The 30-minute limit counts from the start of run(), a few seconds before this check.
    assertTrue(left.compareTo(Duration.ofMinutes(29)) > 0, left.toString());
    assertTrue(left.compareTo(Duration.ofMinutes(30)) < 0, left.toString());
    assertNull(seen.get(1).deadline(), "no time limit, no deadline");
    assertEquals(8, seen.get(1).batchSize());
  }

  @Test
  void startRejectsInputsPredictRejects() throws IOException {
    Path large = folder.resolve("large.txt");
    Files.writeString(
        large, "input 1x1040x1040\nconv 2 kernel=3 padding=1\nmaxpool 8\nflatten\nlinear 136\n");
    Path color = folder.resolve("color.txt");
    Files.writeString(color, "input 3x16x16\nflatten\nlinear 136\n");
    Path data = TestData.facialKeypoints();

    for (Path model : List.of(large, color)) {
      TrainOptions options = withModel(options(data, 1), model);
      Path run = folder.resolve("run-" + model.getFileName());
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class,
              () -> Trainer.start(options, Device.CPU, run, quiet(), false));

      assertTrue(
          e.getMessage().startsWith(model + ":1: the model takes "),
          "names the file and its input line: " + e.getMessage());
      assertTrue(e.getMessage().contains("change this line to "), e.getMessage());
      assertFalse(Files.exists(run), "no run folder for a rejected model");
    }
  }

  @Test
  void resumeRejectsOtherRunsCheckpoint() throws IOException {
    Path run = folder.resolve("run");
    Path other = folder.resolve("other");
    Trainer.start(stalledRun(1), Device.CPU, run, quiet(), false).run();
    Path wider = folder.resolve("wider.txt");
    Files.writeString(
        wider, "input 1x16x16\nconv 3 kernel=3 padding=1\nmaxpool 4\nflatten\nlinear 136\n");
    Trainer.start(withModel(stalledRun(1), wider), Device.CPU, other, quiet(), false).run();
    Files.copy(
        other.resolve(Trainer.LAST),
        run.resolve(Trainer.LAST),
        StandardCopyOption.REPLACE_EXISTING);

    IOException e =
        assertThrows(IOException.class, () -> Trainer.resume(run, 3, Device.CPU, quiet(), false));

    assertTrue(e.getMessage().startsWith(run.resolve(Trainer.LAST).toString()), e.getMessage());
    assertTrue(e.getMessage().contains("holds another model"), e.getMessage());
    assertTrue(e.getMessage().contains("comes from another run"), e.getMessage());
  }

  @Test
  void resumeRejectsEditedModelFile() throws IOException {
    Path run = folder.resolve("run");
    Trainer.start(stalledRun(1), Device.CPU, run, quiet(), false).run();
    Files.writeString(
        folder.resolve("tiny.txt"),
        "input 1x16x16\nconv 3 kernel=3 padding=1\nmaxpool 4\nflatten\nlinear 136\n");

    IOException e =
        assertThrows(IOException.class, () -> Trainer.resume(run, 3, Device.CPU, quiet(), false));

    assertTrue(e.getMessage().contains("now describes"), e.getMessage());
    assertTrue(e.getMessage().contains("(its model.txt)"), e.getMessage());
    assertTrue(e.getMessage().contains("restore the model file"), e.getMessage());
  }

  /**
   * A resume that fails, whether in {@link Trainer#resume} or in {@link Trainer#run} while it loads
   * the data, the history or the checkpoint's state, leaves every file of the run unchanged, byte
   * for byte.
   */
  @Test
  void failedResumeLeavesRunFolderAsItWas() throws IOException {
    Path base = folder.resolve("base");
    Trainer.start(withOptimizer(stalledRun(1), "sgd"), Device.CPU, base, quiet(), false).run();
    Path adam = folder.resolve("adam");
    Trainer.start(stalledRun(1), Device.CPU, adam, quiet(), false).run();
    Path wider = folder.resolve("wider");
    Path widerModel = folder.resolve("wider.txt");
    Files.writeString(
        widerModel, "input 1x16x16\nconv 3 kernel=3 padding=1\nmaxpool 4\nflatten\nlinear 136\n");
    Trainer.start(withModel(stalledRun(1), widerModel), Device.CPU, wider, quiet(), false).run();
    Map<String, RunDamage> cases = new LinkedHashMap<>();
    cases.put(
        "an unreadable history row",
        run -> Files.writeString(run.resolve("history.csv"), "1,2,3\n", StandardOpenOption.APPEND));
    cases.put(
        "an invalid split.txt line",
        run -> Files.writeString(run.resolve("split.txt"), "neither\n", StandardOpenOption.APPEND));
    cases.put(
        "the checkpoint of an Adam run",
        run ->
            Files.copy(
                adam.resolve(Trainer.LAST),
                run.resolve(Trainer.LAST),
                StandardCopyOption.REPLACE_EXISTING));
    cases.put(
        "the checkpoint of another model",
        run ->
            Files.copy(
                wider.resolve(Trainer.LAST),
                run.resolve(Trainer.LAST),
                StandardCopyOption.REPLACE_EXISTING));
    cases.put(
        "a truncated checkpoint",
        run -> {
          Path last = run.resolve(Trainer.LAST);
          byte[] bytes = Files.readAllBytes(last);
          Files.write(last, Arrays.copyOf(bytes, bytes.length / 2));
        });

    for (var entry : cases.entrySet()) {
      Path run = folder.resolve("case-" + entry.getKey().replace(' ', '-'));
      copyFolder(base, run);
      entry.getValue().apply(run);
      Map<String, byte[]> before = contents(run);

      // --epochs 3 changes the saved epoch count, which a failed resume must not write either.
      assertThrows(
          Exception.class,
          () -> Trainer.resume(run, 3, Device.CPU, quiet(), false).run(),
          entry.getKey());

      Map<String, byte[]> after = contents(run);
      assertEquals(before.keySet(), after.keySet(), entry.getKey() + ": files added or removed");
      for (String name : before.keySet()) {
        assertArrayEquals(before.get(name), after.get(name), entry.getKey() + ": " + name);
      }
    }
  }

  @Test
  void resumeOfLinkedRunLeavesOriginalAlone() throws IOException {
    Path original = folder.resolve("original");
    Trainer.start(stalledRun(1), Device.CPU, original, quiet(), false).run();
    Map<String, byte[]> before = contents(original);
    // A fork of the run made of links to each of its files.
    Path fork = Files.createDirectory(folder.resolve("fork"));
    try (var files = Files.list(original)) {
      for (Path file : files.toList()) {
        Files.createSymbolicLink(fork.resolve(file.getFileName()), file);
      }
    }

    List<EpochRecord> history = Trainer.resume(fork, 2, Device.CPU, quiet(), false).run();

    assertEquals(2, history.size());
    Map<String, byte[]> after = contents(original);
    assertEquals(before.keySet(), after.keySet(), "files added to or removed from the original");
    for (String name : before.keySet()) {
      assertArrayEquals(before.get(name), after.get(name), "the original's " + name + " changed");
    }
    assertFalse(Files.isSymbolicLink(fork.resolve("devices.txt")), "devices.txt is still a link");
  }

  /** A change to a run folder that makes its resume fail. */
  private interface RunDamage {
    void apply(Path run) throws IOException;
  }

  /** Returns every file under {@code run} by its relative path, with its bytes. */
  private static Map<String, byte[]> contents(Path run) throws IOException {
    Map<String, byte[]> files = new TreeMap<>();
    try (var paths = Files.walk(run)) {
      for (Path path : paths.filter(Files::isRegularFile).toList()) {
        files.put(run.relativize(path).toString(), Files.readAllBytes(path));
      }
    }
    return files;
  }

  private static void copyFolder(Path source, Path target) throws IOException {
    try (var paths = Files.walk(source)) {
      for (Path path : paths.toList()) {
        Files.copy(path, target.resolve(source.relativize(path).toString()));
      }
    }
  }

  /**
   * The automatic doctor judges the run's --lr, as kiln doctor --run does, not the lower rate that
   * the cosine schedule reached, and training goes on at the scheduled rate afterwards.
   */
  @Test
  void stallDoctorJudgesRunLearningRate() throws IOException {
    Path examined = folder.resolve("examined");
    Path plain = folder.resolve("plain");
    TrainOptions cosine = withSchedule(stalledRun(4), "cosine");
    double[] seenRate = {Double.NaN};
    String[] seenSource = {null};
    Function<DoctorInput, Report> recording =
        input -> {
          seenRate[0] = input.optimizer().learningRate();
          seenSource[0] = input.options().learningRateSource();
          return new Report(List.of(), 0);
        };

    List<EpochRecord> withDoctor =
        Trainer.start(cosine, Device.CPU, examined, quiet(), false).withDoctor(recording).run();
    Trainer trainer = Trainer.start(cosine, Device.CPU, plain, quiet(), false);
    Files.writeString(plain.resolve(Report.FILE_NAME), "examined elsewhere");
    List<EpochRecord> withoutDoctor = trainer.run();

    assertEquals(cosine.learningRate(), seenRate[0]);
    assertTrue(
        seenSource[0].startsWith("--lr of this run; its cosine schedule stands at "),
        seenSource[0]);
    assertEquals(withoutDoctor.getLast().learningRate(), withDoctor.getLast().learningRate());
    assertTrue(withDoctor.getLast().learningRate() < cosine.learningRate());
  }

  /** 12 rows with a validation fraction of 0.1 leave one validation face of one person. */
  @Test
  void splitLineCountsOneFaceInSingular() throws IOException {
    TrainOptions one =
        new TrainOptions(
            TestData.facialKeypoints(),
            "default",
            1,
            4,
            "adam",
            5e-4,
            0,
            "l1",
            "none",
            7,
            0.1,
            1,
            12,
            0,
            false);
    StringWriter text = new StringWriter();

    Trainer.start(one, Device.CPU, folder.resolve("one"), new PrintWriter(text, true), false).run();

    assertTrue(
        text.toString().contains("training faces of 11 people, 1 validation face of 1 person"),
        text.toString());
  }

  @Test
  void doctorRunsOncePerRunFolder() throws IOException {
    TrainOptions stalled = stalledRun(3);
    Path run = folder.resolve("run");
    StringWriter first = new StringWriter();
    Trainer.start(stalled, Device.CPU, run, new PrintWriter(first, true), false).run();
    assertTrue(first.toString().contains("running the doctor"), first.toString());
    Path report = run.resolve(Report.FILE_NAME);
    String examined = Files.readString(report);

    StringWriter resumed = new StringWriter();
    List<EpochRecord> history =
        Trainer.resume(run, 4, Device.CPU, new PrintWriter(resumed, true), false).run();

    assertEquals(4, history.size());
    assertFalse(resumed.toString().contains("running the doctor"), resumed.toString());
    assertEquals(examined, Files.readString(report), "the first examination is kept");
  }

  @Test
  void epochTrainsInTrainingModeAfterEvalMode() throws IOException {
    Path model = folder.resolve("batchnorm.txt");
    Files.writeString(
        model,
        """
        input 1x16x16
        conv 2 kernel=3 padding=1
        batchnorm
        relu
        maxpool 4
        flatten
        linear 136
        """);
    Path run = folder.resolve("run");
    List<Sequential> examined = new ArrayList<>();
    List<Map<String, Tensor>> beforeEpoch4 = new ArrayList<>();
    // A doctor that leaves the model in evaluation mode after epoch 3, as a check that fails
    // before it restores the modes would.
    Function<DoctorInput, Report> leavesEvalMode =
        input -> {
          input.model().eval();
          examined.add(input.model());
          try {
            beforeEpoch4.add(Checkpoint.read(run.resolve(Trainer.LAST)).model());
          } catch (IOException e) {
            throw new UncheckedIOException(e);
          }
          return new Report(List.of(), 0);
        };

    Trainer.start(withModel(stalledRun(4), model), Device.CPU, run, quiet(), false)
        .withDoctor(leavesEvalMode)
        .run();

    assertEquals(1, examined.size(), "the doctor ran once, after epoch 3");
    // Validation puts back the mode that training left, so this is the mode of epoch 4.
    assertTrue(examined.getFirst().isTraining(), "epoch 4 trained in training mode");
    Map<String, Tensor> afterEpoch4 = Checkpoint.read(run.resolve(Trainer.LAST)).model();
    int runningStats = 0;
    for (String name : afterEpoch4.keySet()) {
      if (name.endsWith("running_mean") || name.endsWith("running_var")) {
        runningStats++;
        assertFalse(
            Arrays.equals(
                beforeEpoch4.getFirst().get(name).toFloatArray(),
                afterEpoch4.get(name).toFloatArray()),
            name + " was not updated in epoch 4, so batch norm ran in evaluation mode");
      }
    }
    assertEquals(2, runningStats, "the model's batch norm statistics");
  }

  @Test
  void runFileNamesRecognized() {
    assertTrue(Trainer.writtenBeforeCheckpoint("options.properties"));
    assertTrue(Trainer.writtenBeforeCheckpoint("history.csv"));
    assertTrue(Trainer.writtenBeforeCheckpoint(".history.csv.1234567.tmp"));
    assertTrue(Trainer.writtenBeforeCheckpoint(".last.safetensors.99.tmp"));
    assertTrue(Trainer.writtenBeforeCheckpoint(FolderClaim.FILE_NAME));
    assertTrue(Trainer.writtenBeforeCheckpoint(FolderClaim.OLD_FILE_NAME));
    assertFalse(Trainer.writtenBeforeCheckpoint("notes.txt"));
    assertFalse(Trainer.writtenBeforeCheckpoint(".history.csv.bak"));
    assertFalse(Trainer.writtenBeforeCheckpoint("best.safetensors"));
  }
}
