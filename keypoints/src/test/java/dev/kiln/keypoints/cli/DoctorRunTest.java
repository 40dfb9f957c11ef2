package dev.kiln.keypoints.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.keypoints.data.TestData;
import dev.kiln.keypoints.doctor.Report;
import dev.kiln.keypoints.train.TrainOptions;
import dev.kiln.keypoints.train.Trainer;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * {@code kiln doctor --run} on a finished one-epoch run with the cosine schedule, whose checkpoint
 * contains the schedule's last rate, 1% of {@code --lr}, and the doctor's errors and exit codes.
 */
class DoctorRunTest {
  /** A model for color images, which the keypoint pipelines, making gray crops, cannot feed. */
  private static final String RGB_MODEL = "input 3x96x96\nconv 32 kernel=3\nflatten\nlinear 136\n";

  /** A model whose second layer needs a weight of 2,000,000 x 9,216 values. */
  private static final String HUGE_MODEL = "input 1x96x96\nflatten\nlinear 2000000\nlinear 136\n";

  @TempDir Path folder;

  private final StringWriter out = new StringWriter();
  private final StringWriter err = new StringWriter();

  private int kiln(String... args) {
    CommandLine commandLine = Main.newCommandLine();
    commandLine.setOut(new PrintWriter(out, true));
    commandLine.setErr(new PrintWriter(err, true));
    return commandLine.execute(args);
  }

  /**
   * Trains one epoch of the default model on 60 rows at batch size 8, with {@code options} added,
   * into the folder {@code run}, and returns that folder.
   */
  private Path trainOneEpoch(String... options) {
    Path run = folder.resolve("run");
    List<String> arguments =
        new ArrayList<>(
            List.of(
                "train",
                "--data",
                TestData.facialKeypoints().toString(),
                "--limit",
                "60",
                "--epochs",
                "1",
                "--batch-size",
                "8",
                "--output",
                run.toString()));
    arguments.addAll(List.of(options));
    assertEquals(0, kiln(arguments.toArray(String[]::new)), err.toString());
    return run;
  }

  /**
   * Runs a short {@code kiln doctor --run} on {@code run} into {@code doctor}, or into its default
   * folder where {@code doctor} is null; returns the status.
   */
  private int examine(Path run, Path doctor) {
    List<String> arguments =
        new ArrayList<>(
            List.of(
                "doctor",
                "--run",
                run.toString(),
                "--limit",
                "60",
                "--batch-size",
                "4",
                "--overfit-steps",
                "5",
                "--range-steps",
                "10"));
    if (doctor != null) {
      arguments.addAll(List.of("--output", doctor.toString()));
    }
    return kiln(arguments.toArray(String[]::new));
  }

  @Test
  void learningRateFindingNamesRunLr() throws IOException {
    Path run = trainOneEpoch("--lr", "1e-3", "--schedule", "cosine");
    Path doctor = folder.resolve("doctor");

    int examined = examine(run, doctor);

    // The exit code is 1 when the doctor finds a problem, which a one-epoch run may have.
    assertTrue(examined == 0 || examined == 1, "exit code " + examined + ": " + err);
    String rangeTest =
        Files.readAllLines(doctor.resolve(Report.FILE_NAME)).stream()
            .filter(line -> line.contains("range test over"))
            .findFirst()
            .orElseThrow(() -> new AssertionError("no range test in the report: " + out));
    String options = run.resolve(TrainOptions.FILE_NAME).toString();
    String expected =
        "learning rate 0.00100 (--lr of the run in "
            + options
            + "; its cosine schedule stood at 1.00e-05 when "
            + Trainer.LAST
            + " was saved)";
    assertTrue(rangeTest.endsWith(expected), rangeTest);
    assertFalse(rangeTest.contains("learning rate 1.00e-05"), rangeTest);
  }

  /** The run's weight decay goes into the doctor's optimizer, which the report names. */
  @Test
  void runExaminedWithItsWeightDecay() throws IOException {
    Path run = trainOneEpoch("--weight-decay", "100");
    Path doctor = folder.resolve("doctor");

    int examined = examine(run, doctor);

    assertTrue(examined == 0 || examined == 1, "exit code " + examined + ": " + err);
    String report = Files.readString(doctor.resolve(Report.FILE_NAME));
    assertTrue(report.contains("weight decay 100 (Adam)"), report);
  }

  /** Without --output, the report goes to doctor/ in the run, beside the automatic one. */
  @Test
  void runReportKeepsAutomaticOne() throws IOException {
    Path run = trainOneEpoch();
    Path automatic = run.resolve(Report.FILE_NAME);
    Files.writeString(automatic, "examined during training");

    int examined = examine(run, null);

    assertTrue(examined == 0 || examined == 1, "exit code " + examined + ": " + err);
    assertEquals("examined during training", Files.readString(automatic));
    Path report = run.resolve(DoctorCommand.RUN_REPORT_FOLDER).resolve(Report.FILE_NAME);
    assertTrue(Files.readString(report).contains("range test over"), report.toString());
    assertTrue(out.toString().contains("wrote " + report), out.toString());
  }

  /**
   * A file in place of the report folder, or a folder in place of doctor.md, stops the command
   * before the examination, which would otherwise run to its end and then fail to write.
   */
  @Test
  void reportPlacesCheckedBeforeExamining() throws IOException {
    Path run = trainOneEpoch();
    Path file = run.resolve(DoctorCommand.RUN_REPORT_FOLDER);
    Files.writeString(file, "not a folder");
    Path output = folder.resolve("elsewhere");
    Files.createDirectories(output.resolve(Report.FILE_NAME));

    int fileStatus = kiln("doctor", "--run", run.toString());
    String fileErr = err.toString();
    err.getBuffer().setLength(0);
    int folderStatus = examine(run, output);

    assertEquals(DoctorCommand.NOT_EXAMINED, fileStatus, fileErr);
    assertTrue(fileErr.contains(file + ": "), fileErr);
    assertTrue(fileErr.contains("--output"), fileErr);
    assertEquals("not a folder", Files.readString(file));
    assertEquals(DoctorCommand.NOT_EXAMINED, folderStatus, err.toString());
    assertTrue(
        err.toString().contains(output.resolve(Report.FILE_NAME) + ": is a folder"),
        err.toString());
    assertFalse(out.toString().contains("examining"), out.toString());
  }

  @Test
  void weightDecayCheckedBeforeData() {
    int status =
        kiln("doctor", "--data", folder.resolve("no-data").toString(), "--weight-decay", "-1");

    assertEquals(2, status, out.toString());
    assertTrue(
        err.toString().contains("--weight-decay must be a finite number, 0 or more, got -1.0"),
        err.toString());
  }

  @Test
  void lossAndOptimizerNamesCheckedBeforeData() {
    String data = folder.resolve("no-data").toString();

    int loss = kiln("doctor", "--data", data, "--loss", "huber");
    int optimizer = kiln("doctor", "--data", data, "--optimizer", "rmsprop");

    assertEquals(2, loss, err.toString());
    assertEquals(2, optimizer, err.toString());
    assertTrue(err.toString().contains("unknown loss 'huber'"), err.toString());
    assertTrue(err.toString().contains("unknown optimizer 'rmsprop'"), err.toString());
    assertFalse(err.toString().contains("no-data"), "the data is not read first: " + err);
  }

  @Test
  void runRejectsSettingsOfItsOwn() {
    int status = kiln("doctor", "--run", folder.toString(), "--lr", "0.01", "--loss", "mse");

    assertEquals(2, status, out.toString());
    assertTrue(err.toString().contains("so drop --lr, --loss"), err.toString());
  }

  @Test
  void missingRunFolderNamed() throws IOException {
    Path missing = folder.resolve("no-such-run");
    Path file = Files.writeString(folder.resolve("notes.txt"), "kept");

    int missingStatus = kiln("doctor", "--run", missing.toString());
    int fileStatus = kiln("doctor", "--run", file.toString());

    assertEquals(2, missingStatus, out.toString());
    assertEquals(2, fileStatus, out.toString());
    assertTrue(
        err.toString().contains(missing + ": run folder not found: pass --run"), err.toString());
    assertTrue(err.toString().contains(file + " is not a folder: pass --run"), err.toString());
  }

  @Test
  void stepOptionsCheckedBeforeData() {
    int status =
        kiln("doctor", "--data", folder.resolve("no-data").toString(), "--range-steps", "5");

    assertEquals(2, status, out.toString());
    assertTrue(err.toString().contains("--range-steps must be at least 10, got 5"), err.toString());
  }

  @Test
  void colorModelRejectedBeforeData() throws IOException {
    Path model = Files.writeString(folder.resolve("rgb.txt"), RGB_MODEL);

    // The missing data folder would be the error if the data were read before the model check.
    int status = kiln("doctor", "--model", model.toString(), "--data", noData());

    assertEquals(2, status, out.toString());
    assertTrue(
        err.toString().startsWith("kiln doctor: " + model + ":1: the model takes 3x96x96"),
        err.toString());
    assertTrue(err.toString().contains("change this line to 'input 1x96x96'"), err.toString());
    assertFalse(out.toString().contains("examining"), out.toString());
  }

  @Test
  void layerTooLargeRejectedBeforeData() throws IOException {
    Path model = Files.writeString(folder.resolve("huge.txt"), HUGE_MODEL);

    int status = kiln("doctor", "--model", model.toString(), "--data", noData());

    assertEquals(2, status, out.toString());
    assertTrue(
        err.toString().startsWith("kiln doctor: " + model + ":3: the weight of linear 2000000"),
        err.toString());
    assertTrue(err.toString().contains("more than the 2,147,483,647"), err.toString());
  }

  @Test
  void invalidInputExitsTwo() throws IOException {
    Path unknownLayer = Files.writeString(folder.resolve("typo.txt"), "input 1x96x96\nflaten\n");
    Path missingModel = folder.resolve("missing.txt");

    int unknownLayerStatus = kiln("doctor", "--model", unknownLayer.toString(), "--data", noData());
    int missingModelStatus = kiln("doctor", "--model", missingModel.toString(), "--data", noData());
    int missingDataStatus = kiln("doctor", "--data", noData());

    assertEquals(2, unknownLayerStatus, err.toString());
    assertEquals(2, missingModelStatus, err.toString());
    assertEquals(2, missingDataStatus, err.toString());
    assertTrue(
        err.toString().contains(unknownLayer + ":2: unknown layer 'flaten'"), err.toString());
    assertTrue(err.toString().contains("unknown model '" + missingModel + "'"), err.toString());
    assertTrue(err.toString().contains("training_frames_keypoints.csv not found"), err.toString());
  }

  @Test
  void helpListsExitCodes() {
    int status = kiln("doctor", "--help");

    assertEquals(0, status);
    assertTrue(out.toString().contains("Exit codes:"), out.toString());
    assertTrue(out.toString().contains("1   problems found"), out.toString());
    assertTrue(out.toString().contains("2   nothing examined"), out.toString());
  }

  private String noData() {
    return folder.resolve("no-data").toString();
  }
}
