package dev.kiln.keypoints.cli;

import static dev.kiln.keypoints.io.JsonText.quote;

import dev.kiln.core.tensor.Device;
import dev.kiln.keypoints.data.GrayImage;
import dev.kiln.keypoints.data.ImageDecoder;
import dev.kiln.keypoints.io.AtomicFiles;
import dev.kiln.keypoints.plot.KeypointOverlay;
import dev.kiln.keypoints.predict.KeypointDetector;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code kiln predict}: keypoints for face crops, as JSON and as annotated PNGs. */
@Command(
    name = "predict",
    mixinStandardHelpOptions = true,
    description = {
      "Predict the 68 keypoints of face crops: images, or folders of images (PNG or JPEG).",
      "Writes predictions.json, with keypoints in pixels of each original image, and one PNG per"
          + " image with the numbered points drawn on it."
    })
final class PredictCommand implements Callable<Integer> {
  /** Maximum number of left-out folder entries that one line names. */
  private static final int SKIPPED_NAMES = 5;

  @Spec CommandSpec spec;

  @Option(names = "--checkpoint", required = true, description = "Checkpoint from a training run.")
  Path checkpoint;

  @Option(
      names = "--output",
      defaultValue = "predictions",
      description =
          "Folder for predictions.json and the PNGs, created if missing. It must not contain any"
              + " input image (default: ${DEFAULT-VALUE}).")
  Path output;

  @Option(
      names = "--device",
      defaultValue = "cpu",
      description = "Device that runs the model (default: ${DEFAULT-VALUE}): " + DeviceOption.NAMES)
  String device;

  @Parameters(arity = "1..*", paramLabel = "IMAGE", description = "Images or folders of images.")
  List<Path> inputs;

  /** Source of an image's pixels, read once to predict and again to draw the overlay. */
  @FunctionalInterface
  interface ImageSource {
    GrayImage decode(Path file) throws IOException;
  }

  /**
   * Decoder of the input images. Tests replace it to change an image between the two reads, which
   * otherwise happen within one call.
   */
  ImageSource images = ImageDecoder::decode;

  /**
   * Size and keypoints of one image, without its pixels, which the first pass keeps so that memory
   * does not grow with the number of images.
   */
  private record Prediction(
      Path file, String overlayName, int width, int height, double[] keypoints) {}

  @Override
  public Integer call() throws Exception {
    PrintWriter out = spec.commandLine().getOut();
    Device modelDevice = DeviceOption.resolve(spec, device);
    if (modelDevice == null) {
      return DeviceOption.UNUSABLE;
    }
    Main.requireCheckpointFile(checkpoint);
    // Without inner "..", the checks below and the writes resolve the same folder.
    Path folder = output.normalize();
    if (folder.toString().isEmpty()) {
      // normalize() turns "." into the empty path, which messages would print as nothing.
      folder = Path.of(".");
    }
    List<Path> files = expand(inputs, out);
    checkOutputFolder(folder, files);
    // Two images with the same name in different folders get a.png and a-2.png, so that neither
    // overlay replaces the other.
    Set<String> usedNames = new HashSet<>();
    List<String> overlayNames = new ArrayList<>();
    for (Path file : files) {
      overlayNames.add(uniquePngName(file, usedNames));
    }
    List<String> outputs = new ArrayList<>(overlayNames);
    outputs.add("predictions.json");
    Main.requireOutputFiles(folder, outputs);
    KeypointDetector detector = KeypointDetector.load(checkpoint, modelDevice);

    // Every image is decoded and predicted before anything is written, so a bad image leaves the
    // output folder as it was. The writing pass decodes each image again for its overlay.
    List<Prediction> predictions = new ArrayList<>();
    for (int n = 0; n < files.size(); n++) {
      predictions.add(predict(detector, images, files.get(n), overlayNames.get(n)));
    }

    List<AtomicFiles.Entry> entries = new ArrayList<>();
    for (Prediction prediction : predictions) {
      entries.add(
          new AtomicFiles.Entry(
              folder.resolve(prediction.overlayName()),
              temporary -> writeOverlay(images, prediction, temporary)));
    }
    Path target = folder.resolve("predictions.json");
    String json = toJson(checkpoint, detector.device(), predictions);
    entries.add(
        new AtomicFiles.Entry(
            target, temporary -> Files.writeString(temporary, json, StandardCharsets.UTF_8)));
    // Every overlay and predictions.json go to temporary files before any is renamed over its
    // target, so a failure while writing (a full disk, or an image changed since the first pass)
    // leaves the folder as it was.
    // NOTE: where a rename itself fails (the folder removed, for example), the targets renamed
    // before it are new, the rest keep the previous run's content, and the temporary files left
    // are removed. An image replaced between the passes by another of the same size gets an overlay
    // of the new pixels with the old keypoints.
    AtomicFiles.writeAll(entries);
    for (Prediction prediction : predictions) {
      out.println(
          printable(prediction.file())
              + " -> "
              + printable(folder.resolve(prediction.overlayName())));
    }
    out.println("wrote " + target);
    return 0;
  }

  /** Decodes {@code file} and predicts its keypoints, keeping no reference to the pixels. */
  private static Prediction predict(
      KeypointDetector detector, ImageSource images, Path file, String overlayName)
      throws IOException {
    GrayImage image = images.decode(file);
    double[] points;
    try {
      points = detector.predict(image);
    } catch (IllegalArgumentException e) {
      // Decoded pixels lie in [0, 1] and within the decoder's size limits, so this is the
      // detector's minimum image side, and the message must name the file.
      throw new IOException(file + ": " + e.getMessage(), e);
    }
    return new Prediction(file, overlayName, image.width(), image.height(), points);
  }

  /** Decodes the image of {@code prediction} again and writes its overlay PNG to {@code png}. */
  private static void writeOverlay(ImageSource images, Prediction prediction, Path png)
      throws IOException {
    GrayImage image;
    try {
      image = images.decode(prediction.file());
    } catch (FileSystemException e) {
      throw e;
    } catch (IOException e) {
      // Named after the input, so that AtomicFiles does not report it as a failure to write the
      // overlay.
      FileSystemException named =
          new FileSystemException(
              prediction.file().toString(),
              null,
              "could not be read again to draw its overlay ("
                  + e.getMessage()
                  + "); run predict"
                  + " again");
      named.initCause(e);
      throw named;
    }
    if (image.width() != prediction.width() || image.height() != prediction.height()) {
      throw new FileSystemException(
          prediction.file().toString(),
          null,
          "changed while predict ran (it was "
              + prediction.width()
              + "x"
              + prediction.height()
              + " pixels, now "
              + image.width()
              + "x"
              + image.height()
              + "); run predict again");
    }
    KeypointOverlay.writeDirectly(image, prediction.keypoints(), png);
  }

  /** Returns the text of predictions.json. */
  private static String toJson(Path checkpoint, Device device, List<Prediction> predictions) {
    StringBuilder json = new StringBuilder("{\n  \"checkpoint\": ");
    json.append(quote(checkpoint.toString()));
    json.append(",\n  \"device\": ").append(quote(device.toString()));
    json.append(",\n  \"images\": [");
    for (int n = 0; n < predictions.size(); n++) {
      Prediction prediction = predictions.get(n);
      double[] points = prediction.keypoints();
      json.append(n == 0 ? "\n" : ",\n").append("    {\"file\": ");
      json.append(quote(prediction.file().toString()));
      json.append(", \"overlay\": ").append(quote(prediction.overlayName()));
      json.append(", \"width\": ").append(prediction.width());
      json.append(", \"height\": ").append(prediction.height());
      json.append(", \"keypoints\": [");
      for (int i = 0; i < points.length; i += 2) {
        json.append(i == 0 ? "" : ", ");
        json.append(String.format(Locale.ROOT, "[%.2f, %.2f]", points[i], points[i + 1]));
      }
      json.append("]}");
    }
    json.append("\n  ]\n}\n");
    return json.toString();
  }

  /**
   * Checks, before any work, that {@code output} is a writable folder or can be created, and that
   * it contains none of the input {@code files}. An overlay is named after its image with {@code
   * .png}, so in a folder of inputs it could replace an input image. A file counts as in the folder
   * when either its own folder entry or the file that entry leads to is there, compared by real
   * paths.
   */
  private static void checkOutputFolder(Path output, List<Path> files) throws IOException {
    Main.requireOutputFolder(output);
    if (!Files.exists(output.toAbsolutePath().normalize(), LinkOption.NOFOLLOW_LINKS)) {
      return;
    }

    Path folder = output.toRealPath();
    for (Path file : files) {
      Path entryFolder = file.toAbsolutePath().getParent().toRealPath();
      Path realFolder = file.toRealPath().getParent();
      if (entryFolder.equals(folder) || realFolder.equals(folder)) {
        throw new IOException(
            "--output "
                + output
                + " contains the input image "
                + file
                + ", but predict needs an output folder without input images, because the overlays"
                + " would mix with the inputs and an overlay would replace an input PNG of the"
                + " same name; pass another --output");
      }
    }
  }

  /** Tests whether a file name ends in .png, .jpg or .jpeg, in any case. */
  private static boolean isImageName(Path file) {
    String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
    return name.endsWith(".png") || name.endsWith(".jpg") || name.endsWith(".jpeg");
  }

  /** Describes the entries of {@code folder} that predict leaves out, naming the first few. */
  static String skippedLine(Path folder, List<Path> skipped) {
    int named = Math.min(skipped.size(), SKIPPED_NAMES);
    List<String> names = new ArrayList<>();
    for (Path entry : skipped.subList(0, named)) {
      names.add(printable(entry.getFileName()) + (Files.isDirectory(entry) ? "/" : ""));
    }
    String more = skipped.size() > named ? " and " + (skipped.size() - named) + " more" : "";
    String what =
        skipped.size() == 1
            ? " entry of " + printable(folder) + " that is not a .png, .jpg or .jpeg file"
            : " entries of " + printable(folder) + " that are not .png, .jpg or .jpeg files";
    return "skipped "
        + skipped.size()
        + what
        + " (subfolders are not searched): "
        + String.join(", ", names)
        + more;
  }

  /**
   * Returns {@code path} as text with each control character written as an escape, such as {@code
   * \n} for a newline, so that a file name that contains one stays on its line of the output.
   * predictions.json keeps the names exactly, in JSON's own escapes.
   */
  static String printable(Path path) {
    return TerminalText.escape(path.toString(), false);
  }

  /**
   * Returns the PNG name for {@code file}'s overlay: its name with {@code .png} in place of its
   * extension, and a number added where an earlier image of the run took that name.
   */
  private static String uniquePngName(Path file, Set<String> usedNames) {
    String stem = file.getFileName().toString().replaceFirst("\\.[^.]*$", "");
    String name = stem + ".png";
    for (int copy = 2; !usedNames.add(name); copy++) {
      name = stem + "-" + copy + ".png";
    }
    return name;
  }

  /**
   * Replaces each folder by the image files in it, sorted by name, and drops every file met before
   * under another name. Two names are the same file when their real paths match, so a file given
   * both on its own and through its folder, or through a symbolic link, is predicted once, at its
   * first place and under its first name. A folder's other entries, such as subfolders and files of
   * other types, are left out, and one line on {@code out} per folder counts them.
   */
  private static List<Path> expand(List<Path> inputs, PrintWriter out) throws IOException {
    List<Path> files = new ArrayList<>();
    for (Path input : inputs) {
      if (Files.isDirectory(input)) {
        List<Path> skipped = new ArrayList<>();
        try (Stream<Path> children = Files.list(input)) {
          children
              .sorted()
              .forEach(p -> (Files.isRegularFile(p) && isImageName(p) ? files : skipped).add(p));
        }
        if (!skipped.isEmpty()) {
          out.println(skippedLine(input, skipped));
        }
      } else if (Files.isRegularFile(input)) {
        files.add(input);
      } else if (Files.exists(input)) {
        throw new IOException(
            input
                + ": is not a regular file (a FIFO, socket or device); pass image files or"
                + " folders of images");
      } else {
        throw new IOException(input + " not found: pass image files or folders of images");
      }
    }
    if (files.isEmpty()) {
      throw new IOException(
          "no .png, .jpg or .jpeg files in "
              + String.join(", ", inputs.stream().map(Path::toString).toList())
              + ": pass image files or folders that contain them");
    }

    Set<Path> seen = new HashSet<>();
    List<Path> distinct = new ArrayList<>();
    for (Path file : files) {
      if (seen.add(file.toRealPath())) {
        distinct.add(file);
      }
    }
    return distinct;
  }
}
