package dev.kiln.keypoints.data;

import dev.kiln.keypoints.io.AtomicFiles;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.SortedSet;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * A split of people into a training set and a validation set, so that no person's face appears in
 * both. A sample's identity is its file name up to the last {@code _} ({@code Abdel_Aziz_Al-Hakim}
 * for {@code Abdel_Aziz_Al-Hakim_00.jpg}).
 *
 * <p>The split file written by {@link #write} has one line per identity, {@code train} or {@code
 * validation}, a tab and the identity, after comment lines starting with {@code #}.
 *
 * @param trainIdentities identities in the training set
 * @param validationIdentities identities in the validation set, disjoint from the training set
 */
public record IdentitySplit(
    SortedSet<String> trainIdentities, SortedSet<String> validationIdentities) {

  /** Default share of samples held out for validation. */
  public static final double DEFAULT_VALIDATION_FRACTION = 0.15;

  private static final String TRAIN = "train";
  private static final String VALIDATION = "validation";

  public IdentitySplit {
    trainIdentities = Collections.unmodifiableSortedSet(new TreeSet<>(trainIdentities));
    validationIdentities = Collections.unmodifiableSortedSet(new TreeSet<>(validationIdentities));
    for (String identity : validationIdentities) {
      if (trainIdentities.contains(identity)) {
        throw new IllegalArgumentException(
            "identity " + identity + " is in both the training and the validation set");
      }
    }
  }

  /** Returns the identity of an image file name: the part before the last {@code _}. */
  public static String identityOf(String fileName) {
    int underscore = fileName.lastIndexOf('_');
    if (underscore > 0) {
      return fileName.substring(0, underscore);
    }
    // NOTE: a name without '_' is its own identity, extension included.
    return fileName;
  }

  /**
   * Splits the identities of {@code samples}. The identities are sorted, shuffled with {@code
   * seed}, and taken in that order into the validation set while that brings its sample count
   * closer to {@code validationFraction} of all samples, so the fraction holds for samples, not
   * identities, up to the size of one identity's group.
   *
   * @param validationFraction share of samples to hold out, in [0, 1)
   */
  public static IdentitySplit of(Collection<Sample> samples, double validationFraction, long seed) {
    return ofNames(samples.stream().map(Sample::name).toList(), validationFraction, seed);
  }

  /** Same as {@link #of}, from image file names. */
  public static IdentitySplit ofNames(
      Collection<String> fileNames, double validationFraction, long seed) {
    if (!(validationFraction >= 0 && validationFraction < 1)) {
      throw new IllegalArgumentException(
          "validationFraction must be in [0, 1), got " + validationFraction);
    }

    Map<String, Integer> counts = new TreeMap<>();
    for (String name : fileNames) {
      counts.merge(identityOf(name), 1, Integer::sum);
    }
    List<String> shuffled = new ArrayList<>(counts.keySet());
    Collections.shuffle(shuffled, new Random(seed));

    double target = validationFraction * fileNames.size();
    int held = 0;
    TreeSet<String> validation = new TreeSet<>();
    TreeSet<String> train = new TreeSet<>();
    for (String identity : shuffled) {
      int count = counts.get(identity);
      if (Math.abs(held + count - target) < Math.abs(held - target)) {
        validation.add(identity);
        held += count;
      } else {
        train.add(identity);
      }
    }
    return new IdentitySplit(train, validation);
  }

  /** Returns whether the sample with this file name belongs to the validation set. */
  public boolean isValidation(String fileName) {
    return validationIdentities.contains(identityOf(fileName));
  }

  /** Returns the samples whose identity is in the training set, in their order. */
  public List<Sample> train(List<Sample> samples) {
    return samples.stream().filter(s -> trainIdentities.contains(identityOf(s.name()))).toList();
  }

  /** Returns the samples whose identity is in the validation set, in their order. */
  public List<Sample> validation(List<Sample> samples) {
    return samples.stream().filter(s -> isValidation(s.name())).toList();
  }

  /**
   * Writes the split as text, one {@code set<TAB>identity} line per identity, atomically, so that a
   * failed write leaves no partial file in its place.
   */
  public void write(Path file) throws IOException {
    AtomicFiles.write(file, this::writeLines);
  }

  private void writeLines(Path file) throws IOException {
    try (BufferedWriter out = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
      out.write("# kiln identity split: set<TAB>identity, ");
      out.write(trainIdentities.size() + " train and " + validationIdentities.size());
      out.write(" validation identities");
      out.newLine();
      for (String identity : trainIdentities) {
        out.write(TRAIN + "\t" + identity);
        out.newLine();
      }
      for (String identity : validationIdentities) {
        out.write(VALIDATION + "\t" + identity);
        out.newLine();
      }
    }
  }

  /** Reads a split written by {@link #write}. */
  public static IdentitySplit read(Path file) throws IOException {
    List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
    TreeSet<String> train = new TreeSet<>();
    TreeSet<String> validation = new TreeSet<>();

    for (int i = 0; i < lines.size(); i++) {
      String line = lines.get(i);
      if (line.isBlank() || line.startsWith("#")) {
        continue;
      }

      int tab = line.indexOf('\t');
      String set = tab < 0 ? line : line.substring(0, tab);
      String identity = tab < 0 ? "" : line.substring(tab + 1);
      boolean added =
          switch (set) {
            case TRAIN ->
                !identity.isEmpty() && !validation.contains(identity) && train.add(identity);
            case VALIDATION ->
                !identity.isEmpty() && !train.contains(identity) && validation.add(identity);
            default -> false;
          };
      if (!added) {
        throw new IOException(
            file
                + " line "
                + (i + 1)
                + ": expected \"train<TAB>identity\" or \"validation<TAB>identity\" with each"
                + " identity once, found \""
                + line
                + "\"; write the split again with IdentitySplit.write");
      }
    }
    return new IdentitySplit(train, validation);
  }
}
