package dev.kiln.keypoints.cli;

import dev.kiln.core.tensor.Device;
import dev.kiln.keypoints.data.DataLocation;
import dev.kiln.keypoints.data.FaceDataset;
import dev.kiln.keypoints.data.GrayImage;
import dev.kiln.keypoints.data.LoadOptions;
import dev.kiln.keypoints.data.Sample;
import dev.kiln.keypoints.eval.EvaluationResult;
import dev.kiln.keypoints.eval.Evaluator;
import dev.kiln.keypoints.eval.Region;
import dev.kiln.keypoints.plot.CedPlot;
import dev.kiln.keypoints.predict.KeypointDetector;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code kiln evaluate}: measures a checkpoint on a CSV and its images. */
@Command(
    name = "evaluate",
    mixinStandardHelpOptions = true,
    description = {
      "Measure a checkpoint on a CSV of keypoints and its image folder.",
      "Reports the NME (normalized by the outer eye corners, points 36 and 45), the NME per"
          + " region, the failure rates at 8%% and 10%%, and writes evaluation.json and ced.png."
    })
final class EvaluateCommand implements Callable<Integer> {
  private static final int BATCH = 32;

  @Spec CommandSpec spec;

  @Option(
      names = "--checkpoint",
      required = true,
      description = "Checkpoint from a training run, e.g. runs/x/best.safetensors.")
  Path checkpoint;

  @Option(
      names = "--csv",
      description =
          "CSV of keypoints (default: test_frames_keypoints.csv in the default data folder).")
  Path csv;

  @Option(
      names = "--images",
      description =
          "Folder of the CSV's images (default: for NAME_frames_keypoints.csv the folder NAME/"
              + " beside it where that exists, such as training/ for"
              + " training_frames_keypoints.csv, and test/ beside the CSV otherwise).")
  Path images;

  @Option(
      names = "--output",
      description = "Folder for evaluation.json and ced.png (default: the checkpoint's folder).")
  Path output;

  @Option(
      names = "--skip-bad-rows",
      description = "Skip bad rows and list them, instead of stopping at the first.")
  boolean skipBadRows;

  @Option(
      names = "--device",
      defaultValue = "cpu",
      description = "Device that runs the model (default: ${DEFAULT-VALUE}): " + DeviceOption.NAMES)
  String device;

  @Override
  public Integer call() throws Exception {
    PrintWriter out = spec.commandLine().getOut();
    Device target = DeviceOption.resolve(spec, device);
    if (target == null) {
      return DeviceOption.UNUSABLE;
    }
    Main.requireCheckpointFile(checkpoint);
    Path data = DataLocation.defaultFolder();
    Path csvFile = csv != null ? csv : data.resolve("test_frames_keypoints.csv");
    Path imageFolder = images != null ? images : defaultImageFolder(csvFile);
    // A missing CSV, or a folder given as the CSV, gets its own message from the loader.
    if (images == null && Files.isRegularFile(csvFile) && !Files.isDirectory(imageFolder)) {
      throw new NoSuchFileException(
          imageFolder.toString(),
          null,
          "image folder not found, which is the default for " + csvFile + "; pass --images FOLDER");
    }
    Path outputFolder = output != null ? output : checkpoint.toAbsolutePath().getParent();
    Main.requireOutputFolder(outputFolder);
    Main.requireOutputFiles(outputFolder, List.of("evaluation.json", "ced.png"));

    KeypointDetector detector = KeypointDetector.load(checkpoint, target);
    // An image under the detector's minimum side is a bad row, so that the message names its CSV
    // line and file, and --skip-bad-rows skips it.
    LoadOptions load =
        LoadOptions.defaults()
            .withOnBadRow(skipBadRows ? FaceDataset.OnBadRow.SKIP : FaceDataset.OnBadRow.FAIL)
            .withMinSize(KeypointDetector.MIN_IMAGE_SIDE);
    FaceDataset.Loaded loaded = FaceDataset.load(csvFile, imageFolder, load);
    if (loaded.report().skippedCount() > 0) {
      out.println(loaded.report().summary());
    }

    Evaluator evaluator =
        new Evaluator(checkpoint.toString(), csvFile.toString(), target.toString());
    List<Sample> samples = loaded.samples();
    for (int from = 0; from < samples.size(); from += BATCH) {
      List<Sample> chunk = samples.subList(from, Math.min(samples.size(), from + BATCH));
      List<GrayImage> chunkImages = new ArrayList<>();
      chunk.forEach(s -> chunkImages.add(s.image()));
      List<double[]> predictions = detector.predict(chunkImages);
      for (int i = 0; i < chunk.size(); i++) {
        evaluator.add(chunk.get(i), predictions.get(i));
      }
    }
    EvaluationResult result = evaluator.result();

    Files.createDirectories(outputFolder);
    result.writeJson(outputFolder.resolve("evaluation.json"));
    CedPlot.write(result, outputFolder.resolve("ced.png"));
    printSummary(out, result, csvFile, imageFolder, outputFolder);
    return 0;
  }

  /**
   * Returns the image folder of a CSV that follows the dataset's naming, {@code
   * NAME_frames_keypoints.csv} beside an existing folder {@code NAME}, and {@code test} beside any
   * other CSV.
   */
  static Path defaultImageFolder(Path csvFile) {
    String name = csvFile.getFileName().toString();
    String suffix = "_frames_keypoints.csv";
    if (name.endsWith(suffix) && name.length() > suffix.length()) {
      Path named = csvFile.resolveSibling(name.substring(0, name.length() - suffix.length()));
      if (Files.isDirectory(named)) {
        return named;
      }
    }
    return csvFile.resolveSibling("test");
  }

  /** Prints the metrics after the CSV and image folder they were measured on. */
  private static void printSummary(
      PrintWriter out, EvaluationResult result, Path csvFile, Path imageFolder, Path folder) {
    out.printf(
        Locale.ROOT, "faces: %d from %s, images in %s%n", result.count(), csvFile, imageFolder);
    out.printf(Locale.ROOT, "NME: %.2f%%%n", 100 * result.meanNme());
    for (Region region : Region.values()) {
      out.printf(Locale.ROOT, "  %-6s %.2f%%%n", region.label(), 100 * result.meanNme(region));
    }
    out.printf(
        Locale.ROOT,
        "failure rate: %.1f%% above 8%%, %.1f%% above 10%%%n",
        100 * result.failureRate(0.08),
        100 * result.failureRate(0.10));
    out.println("wrote " + folder.resolve("evaluation.json") + " and " + folder.resolve("ced.png"));
  }
}
