package dev.kiln.benchmarks;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.geom.Ellipse2D;
import java.awt.geom.Path2D;
import java.awt.image.BufferedImage;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Locale;
import java.util.Random;
import javax.imageio.ImageIO;

/**
 * Writes a small synthetic face keypoint dataset in the layout that kiln's loader reads, so that
 * {@code kiln train} can run end to end where the real dataset cannot go, such as a lent GPU
 * machine.
 *
 * <p>Usage: {@code SyntheticFaces OUTDIR [trainImages] [testImages] [seed]}, with defaults {@code
 * 128 32 1}. OUTDIR must be missing or empty, so that nothing is overwritten. It gets {@code
 * training/} and {@code test/} with JPEG images, and {@code training_frames_keypoints.csv} and
 * {@code test_frames_keypoints.csv}, each with the header {@code Names,0,1,...,135} and one row per
 * image: its file name and x0, y0, ..., x67, y67 in pixels. Invalid arguments exit with status 2,
 * and a folder that is not empty or a failed write with status 1.
 *
 * <p>Each image shows a light ellipse, the face, on a darker background, with dark brows, eyes,
 * nose and mouth. The 68 keypoints follow the iBUG 300-W order of the real dataset (jaw 0-16, brows
 * 17-26, nose 27-35, eyes 36-47, mouth 48-67). They sit at fixed places of a template face that is
 * scaled and moved with the ellipse, and the features are drawn through them. So the keypoints
 * follow from the pixels, and a model can learn them. Image size, the ellipse's place and size, and
 * the background's gray level are random per image. The face's width over its height and its gray
 * level are random per person.
 *
 * <p>Images are named {@code Person_A_00.jpg}, {@code Person_A_01.jpg}, ..., {@value
 * #IMAGES_PER_PERSON} per person, so the identity split (the name before the last {@code _}) has
 * several identities. The training and test sets have different people. The same seed and counts
 * give the same CSV files and the same pixels before JPEG encoding.
 */
public final class SyntheticFaces {

  /** Images of each person, the last person's possibly fewer. */
  static final int IMAGES_PER_PERSON = 4;

  /** Minimum width and height of an image, in pixels. */
  static final int MIN_SIDE = 112;

  /** Maximum width and height of an image, in pixels. */
  static final int MAX_SIDE = 160;

  /** Number of keypoints per face, as in the real dataset. */
  static final int POINTS = 68;

  /**
   * The template face: x, y of each keypoint in units of the ellipse's half width (x) and half
   * height (y), from its centre, with y pointing down.
   */
  private static final double[] TEMPLATE = template();

  private SyntheticFaces() {}

  /**
   * The counts of a written dataset.
   *
   * @param trainImages images in {@code training/}
   * @param trainPeople distinct people among them
   * @param testImages images in {@code test/}
   * @param testPeople distinct people among them, none of them in the training set
   */
  record Summary(int trainImages, int trainPeople, int testImages, int testPeople) {}

  /** Writes the dataset that the arguments request and prints its counts. */
  public static void main(String[] args) {
    Path folder;
    int trainImages;
    int testImages;
    long seed;
    try {
      if (args.length < 1 || args.length > 4) {
        throw new IllegalArgumentException(
            "expected OUTDIR [trainImages] [testImages] [seed], got " + args.length + " arguments");
      }
      if (args[0].startsWith("-")) {
        // An option such as --help is not a folder name; this main takes no options.
        throw new IllegalArgumentException(
            "invalid OUTDIR "
                + args[0]
                + ": the first argument is the output folder, not an option");
      }
      folder = Path.of(args[0]);
      trainImages = args.length > 1 ? parseCount("trainImages", args[1], 1) : 128;
      testImages = args.length > 2 ? parseCount("testImages", args[2], 0) : 32;
      seed = args.length > 3 ? parseSeed(args[3]) : 1;
    } catch (IllegalArgumentException e) {
      System.err.println("SyntheticFaces: " + e.getMessage());
      System.err.println("usage: SyntheticFaces OUTDIR [trainImages] [testImages] [seed]");
      System.exit(2);
      return;
    }

    try {
      Summary summary = write(folder, trainImages, testImages, seed);
      System.out.printf(
          Locale.ROOT,
          "wrote %d training faces of %d people and %d test faces of %d people to %s%n",
          summary.trainImages(),
          summary.trainPeople(),
          summary.testImages(),
          summary.testPeople(),
          folder);
    } catch (IOException e) {
      System.err.println("SyntheticFaces: " + e.getMessage());
      System.exit(1);
    }
  }

  /**
   * Writes {@code trainImages} training and {@code testImages} test faces into {@code folder},
   * which is created if missing.
   *
   * @throws IllegalArgumentException if {@code trainImages} is below 1 or {@code testImages} below
   *     0
   * @throws IOException if {@code folder} is a file or a folder that is not empty, or a write fails
   */
  static Summary write(Path folder, int trainImages, int testImages, long seed) throws IOException {
    if (trainImages < 1 || testImages < 0) {
      throw new IllegalArgumentException(
          "invalid counts: trainImages must be at least 1 and testImages at least 0, got "
              + trainImages
              + " and "
              + testImages);
    }
    requireEmptyFolder(folder);
    Files.createDirectories(folder);

    int trainPeople = peopleFor(trainImages);
    // The test set draws from its own generator, so its faces do not change with trainImages.
    writeSet(folder, "training", trainImages, 0, new Random(seed));
    writeSet(folder, "test", testImages, trainPeople, new Random(~seed));
    return new Summary(trainImages, trainPeople, testImages, peopleFor(testImages));
  }

  private static void requireEmptyFolder(Path folder) throws IOException {
    if (Files.exists(folder) && !Files.isDirectory(folder)) {
      throw new IOException(
          folder + " is a file, not a folder; pass a new or empty folder for the dataset");
    }
    if (Files.isDirectory(folder)) {
      try (var entries = Files.list(folder)) {
        if (entries.findAny().isPresent()) {
          throw new IOException(
              folder
                  + " is not empty: pass a new or empty folder, because SyntheticFaces never"
                  + " overwrites files");
        }
      }
    }
  }

  /**
   * Writes {@code set}/ with {@code images} faces and {@code set}_frames_keypoints.csv. The first
   * person gets the letters of person number {@code firstPerson}.
   */
  private static void writeSet(Path folder, String set, int images, int firstPerson, Random random)
      throws IOException {
    Path imageFolder = Files.createDirectory(folder.resolve(set));
    Path csv = folder.resolve(set + "_frames_keypoints.csv");
    try (BufferedWriter out =
        Files.newBufferedWriter(csv, StandardCharsets.UTF_8, StandardOpenOption.CREATE_NEW)) {
      out.write(header());
      out.newLine();

      double aspect = 0;
      double skin = 0;
      for (int i = 0; i < images; i++) {
        if (i % IMAGES_PER_PERSON == 0) {
          aspect = uniform(random, 0.70, 0.85);
          skin = uniform(random, 0.60, 0.85);
        }
        String name =
            String.format(
                Locale.ROOT,
                "Person_%s_%02d.jpg",
                personLetters(firstPerson + i / IMAGES_PER_PERSON),
                i % IMAGES_PER_PERSON);
        double[] keypoints = drawFace(imageFolder.resolve(name), aspect, skin, random);
        out.write(csvRow(name, keypoints));
        out.newLine();
      }
    }
  }

  /**
   * Draws one face into a new JPEG file and returns its 136 keypoint coordinates in pixels, in the
   * convention of kiln's loader: pixel (x, y) covers [x, x + 1) × [y, y + 1).
   */
  private static double[] drawFace(Path file, double aspect, double skin, Random random)
      throws IOException {
    int width = MIN_SIDE + random.nextInt(MAX_SIDE - MIN_SIDE + 1);
    int height = MIN_SIDE + random.nextInt(MAX_SIDE - MIN_SIDE + 1);
    int side = Math.min(width, height);
    // Half height from 24% to 34% of the shorter side and the centre at most 6% of it off the
    // image's centre keep every keypoint and the whole ellipse inside the image.
    double halfHeight = uniform(random, 0.24, 0.34) * side;
    double halfWidth = aspect * halfHeight;
    double centreX = width / 2.0 + uniform(random, -0.06, 0.06) * side;
    double centreY = height / 2.0 + uniform(random, -0.06, 0.06) * side;
    double background = uniform(random, 0.10, 0.35);

    double[] keypoints = new double[2 * POINTS];
    for (int p = 0; p < POINTS; p++) {
      keypoints[2 * p] = centreX + TEMPLATE[2 * p] * halfWidth;
      keypoints[2 * p + 1] = centreY + TEMPLATE[2 * p + 1] * halfHeight;
    }

    BufferedImage image = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = image.createGraphics();
    try {
      g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
      // Without this, Java2D moves strokes to pixel centres, off the keypoints.
      g.setRenderingHint(RenderingHints.KEY_STROKE_CONTROL, RenderingHints.VALUE_STROKE_PURE);
      g.setColor(gray(background));
      g.fillRect(0, 0, width, height);
      g.setColor(gray(skin));
      g.fill(
          new Ellipse2D.Double(
              centreX - halfWidth, centreY - halfHeight, 2 * halfWidth, 2 * halfHeight));

      g.setColor(gray(0.08));
      g.setStroke(new BasicStroke((float) Math.max(1.5, 0.05 * halfHeight)));
      g.draw(path(keypoints, 0, 16, false)); // jaw
      g.draw(path(keypoints, 17, 21, false)); // brows
      g.draw(path(keypoints, 22, 26, false));
      g.draw(path(keypoints, 27, 30, false)); // nose bridge and base
      g.draw(path(keypoints, 31, 35, false));
      g.fill(path(keypoints, 36, 41, true)); // eyes
      g.fill(path(keypoints, 42, 47, true));
      g.fill(path(keypoints, 48, 59, true)); // outer lips
      g.setColor(gray(0.40));
      g.fill(path(keypoints, 60, 67, true)); // inner lips
    } finally {
      g.dispose();
    }

    try (OutputStream out = Files.newOutputStream(file, StandardOpenOption.CREATE_NEW)) {
      if (!ImageIO.write(image, "jpg", out)) {
        throw new IOException(
            file + ": this Java runtime has no JPEG writer; run with a JDK that has java.desktop");
      }
    }
    return keypoints;
  }

  /**
   * Builds the template face. The jaw runs along the ellipse from a little above its left end,
   * under the chin, to the right. The eyes are six-point rings (outer corner, two upper points,
   * inner corner, two lower points), the outer lips a twelve-point ring and the inner lips an
   * eight-point ring, each starting at its left corner and going over the top first.
   */
  private static double[] template() {
    double[] points = new double[2 * POINTS];
    for (int i = 0; i <= 16; i++) {
      double angle = Math.PI + 0.15 - i * (Math.PI + 0.30) / 16;
      set(points, i, 0.97 * Math.cos(angle), 0.97 * Math.sin(angle));
    }
    for (int i = 0; i < 5; i++) {
      double arch = 0.08 * Math.sin(Math.PI * i / 4);
      set(points, 17 + i, -0.65 + 0.125 * i, -0.45 - arch);
      set(points, 22 + i, 0.15 + 0.125 * i, -0.45 - arch);
    }
    for (int i = 0; i < 4; i++) {
      set(points, 27 + i, 0, -0.30 + 0.13 * i);
    }
    for (int i = 0; i < 5; i++) {
      set(points, 31 + i, -0.18 + 0.09 * i, i == 2 ? 0.24 : 0.20);
    }
    ring(points, 36, 6, -0.38, -0.25, 0.16, 0.07);
    ring(points, 42, 6, 0.38, -0.25, 0.16, 0.07);
    ring(points, 48, 12, 0, 0.50, 0.32, 0.14);
    ring(points, 60, 8, 0, 0.50, 0.22, 0.05);
    return points;
  }

  /** Places {@code count} points on an ellipse, from its left end over the top, clockwise. */
  private static void ring(
      double[] points,
      int first,
      int count,
      double centreX,
      double centreY,
      double halfWidth,
      double halfHeight) {
    for (int k = 0; k < count; k++) {
      double angle = Math.PI - k * 2 * Math.PI / count;
      set(
          points,
          first + k,
          centreX + halfWidth * Math.cos(angle),
          centreY - halfHeight * Math.sin(angle));
    }
  }

  private static void set(double[] points, int point, double x, double y) {
    points[2 * point] = x;
    points[2 * point + 1] = y;
  }

  /** Returns the line through keypoints {@code first} to {@code last}, closed if requested. */
  private static Path2D path(double[] keypoints, int first, int last, boolean closed) {
    Path2D.Double path = new Path2D.Double();
    path.moveTo(keypoints[2 * first], keypoints[2 * first + 1]);
    for (int p = first + 1; p <= last; p++) {
      path.lineTo(keypoints[2 * p], keypoints[2 * p + 1]);
    }
    if (closed) {
      path.closePath();
    }
    return path;
  }

  /** Returns the name part of person number {@code index}: A to Z, then AA, AB and so on. */
  static String personLetters(int index) {
    StringBuilder letters = new StringBuilder();
    for (int n = index + 1; n > 0; n = (n - 1) / 26) {
      letters.append((char) ('A' + (n - 1) % 26));
    }
    return letters.reverse().toString();
  }

  private static int peopleFor(int images) {
    return (images + IMAGES_PER_PERSON - 1) / IMAGES_PER_PERSON;
  }

  private static String header() {
    StringBuilder header = new StringBuilder("Names");
    for (int i = 0; i < 2 * POINTS; i++) {
      header.append(',').append(i);
    }
    return header.toString();
  }

  private static String csvRow(String name, double[] keypoints) {
    StringBuilder row = new StringBuilder(name);
    for (double value : keypoints) {
      row.append(String.format(Locale.ROOT, ",%.2f", value));
    }
    return row.toString();
  }

  private static Color gray(double level) {
    int value = (int) Math.round(255 * level);
    return new Color(value, value, value);
  }

  private static double uniform(Random random, double low, double high) {
    return low + (high - low) * random.nextDouble();
  }

  private static int parseCount(String name, String text, int minimum) {
    int value;
    try {
      value = Integer.parseInt(text);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(name + " '" + text + "' is not a whole number");
    }
    if (value < minimum) {
      throw new IllegalArgumentException(name + " must be at least " + minimum + ", got " + value);
    }
    return value;
  }

  private static long parseSeed(String text) {
    try {
      return Long.parseLong(text);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("seed '" + text + "' is not a whole number");
    }
  }
}
