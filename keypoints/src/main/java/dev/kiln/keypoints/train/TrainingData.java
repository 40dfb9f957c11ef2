package dev.kiln.keypoints.train;

import dev.kiln.keypoints.data.FaceDataset;
import dev.kiln.keypoints.data.IdentitySplit;
import dev.kiln.keypoints.data.LoadOptions;
import dev.kiln.keypoints.data.Sample;
import dev.kiln.keypoints.transform.Pipelines;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The faces of a run, split by identity into training and validation sets. A new run writes the
 * split to {@code split.txt} in its folder, and a resumed run reads it back, so that no face
 * changes sides.
 *
 * @param trainingFaces the training faces
 * @param validationFaces the held-out faces
 * @param split the identity split that divides them
 */
record TrainingData(List<Sample> trainingFaces, List<Sample> validationFaces, IdentitySplit split) {
  /** File in the run folder with the identity split. */
  static final String SPLIT_FILE = "split.txt";

  /**
   * Loads the dataset that {@code options} names, rescaled for a model input of {@code inputSize}
   * pixels, and splits it, printing the counts to {@code out}. A resumed run reads the split from
   * {@code split.txt}. Nothing is written to {@code run}.
   *
   * @throws IOException if the dataset is missing or unreadable, or if the split leaves either set
   *     empty
   */
  static TrainingData load(
      TrainOptions options, int inputSize, Path run, boolean resuming, PrintWriter out)
      throws IOException {
    List<Sample> samples = loadSamples(options, inputSize, out);
    IdentitySplit split = split(options, samples, run.resolve(SPLIT_FILE), resuming);
    List<Sample> train = new ArrayList<>();
    List<Sample> validation = new ArrayList<>();
    for (Sample s : samples) {
      (split.isValidation(s.name()) ? validation : train).add(s);
    }
    out.println(
        "split by identity: "
            + faces(train.size(), "training")
            + " of "
            + people(split.trainIdentities().size())
            + ", "
            + faces(validation.size(), "validation")
            + " of "
            + people(split.validationIdentities().size()));
    if (train.isEmpty() || validation.isEmpty()) {
      throw new IOException(
          "the split left no training or no validation faces: use a CSV with faces of more"
              + " people, a larger --limit if one was given, or another --val-fraction");
    }
    return new TrainingData(train, validation, split);
  }

  /** Returns "1 training face" or "N training faces". */
  private static String faces(int count, String set) {
    return count + " " + set + (count == 1 ? " face" : " faces");
  }

  /** Returns "1 person" or "N people". */
  private static String people(int count) {
    return count == 1 ? "1 person" : count + " people";
  }

  /**
   * Returns the training CSV of the dataset folder {@code data}.
   *
   * @throws IOException if it is missing, with how to get the dataset
   */
  static Path requireDataset(Path data) throws IOException {
    Path csv = data.resolve("training_frames_keypoints.csv");
    if (!Files.isRegularFile(csv)) {
      throw new IOException(
          csv
              + " not found: run `./kiln fetch-data` to download the dataset, or point --data at a"
              + " folder with training_frames_keypoints.csv and training/");
    }
    return csv;
  }

  private static List<Sample> loadSamples(TrainOptions options, int inputSize, PrintWriter out)
      throws IOException {
    LoadOptions load =
        LoadOptions.defaults()
            .withOnBadRow(
                options.skipBadRows() ? FaceDataset.OnBadRow.SKIP : FaceDataset.OnBadRow.FAIL)
            .withShorterSide(Pipelines.rescaledSide(inputSize))
            .withLimit(options.limit() > 0 ? options.limit() : Integer.MAX_VALUE);
    Path csv = requireDataset(options.data());
    Path images = options.data().resolve("training");
    long start = System.nanoTime();
    FaceDataset.Loaded loaded = FaceDataset.load(csv, images, load);
    out.printf(
        Locale.ROOT,
        "loaded %d %s from %s in %.1f s%n",
        loaded.samples().size(),
        loaded.samples().size() == 1 ? "face" : "faces",
        csv,
        (System.nanoTime() - start) / 1e9);
    if (loaded.report().skippedCount() > 0) {
      out.println(loaded.report().summary());
    }
    return loaded.samples();
  }

  private static IdentitySplit split(
      TrainOptions options, List<Sample> samples, Path file, boolean resuming) throws IOException {
    if (resuming && Files.exists(file)) {
      return IdentitySplit.read(file);
    }
    return IdentitySplit.of(samples, options.validationFraction(), options.seed());
  }
}
