package dev.kiln.keypoints.cli;

import static dev.kiln.keypoints.io.JsonText.quote;

import dev.kiln.keypoints.data.GrayImage;
import dev.kiln.keypoints.data.ImageDecoder;
import dev.kiln.keypoints.io.AtomicFiles;
import dev.kiln.keypoints.plot.KeypointOverlay;
import dev.kiln.keypoints.predict.KeypointDetector;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.AccessDeniedException;
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

  @Parameters(arity = "1..*", paramLabel = "IMAGE", description = "Images or folders of images.")
  List<Path> inputs;

  @Override
  public Integer call() throws Exception {
    PrintWriter out = spec.commandLine().getOut();
    if (Files.isDirectory(checkpoint)) {
      throw new FileSystemException(
          checkpoint.toString(),
          null,
          "--checkpoint is a folder; pass a checkpoint file such as best.safetensors from a"
              + " training run folder");
    }
    List<Path> files = expand(inputs);
    checkOutputFolder(output, files);
    KeypointDetector detector = KeypointDetector.load(checkpoint);

    // Every image is decoded and predicted before anything is written, so a bad image leaves the
    // output folder as it was. The decoded images stay in memory for the overlays, at 4 bytes a
    // pixel: 1,000 crops of 300 × 300 pixels take about 360 MB.
    List<GrayImage> images = new ArrayList<>();
    List<double[]> predictions = new ArrayList<>();
    for (Path file : files) {
      GrayImage image = ImageDecoder.decode(file);
      images.add(image);
      predictions.add(detector.predict(image));
    }

    // Two images with the same name in different folders get a.png and a-2.png, so that neither
    // overlay replaces the other.
    Set<String> pngNames = new HashSet<>();
    StringBuilder json = new StringBuilder("{\n  \"checkpoint\": ");
    json.append(quote(checkpoint.toString())).append(",\n  \"images\": [");
    for (int n = 0; n < files.size(); n++) {
      Path file = files.get(n);
      GrayImage image = images.get(n);
      double[] points = predictions.get(n);
      String pngName = uniquePngName(file, pngNames);
      KeypointOverlay.write(image, points, output.resolve(pngName));

      json.append(n == 0 ? "\n" : ",\n").append("    {\"file\": ").append(quote(file.toString()));
      json.append(", \"overlay\": ").append(quote(pngName));
      json.append(", \"width\": ").append(image.width());
      json.append(", \"height\": ").append(image.height());
      json.append(", \"keypoints\": [");
      for (int i = 0; i < points.length; i += 2) {
        json.append(i == 0 ? "" : ", ");
        json.append(String.format(Locale.ROOT, "[%.2f, %.2f]", points[i], points[i + 1]));
      }
      json.append("]}");
      out.println(file + " -> " + output.resolve(pngName));
    }
    json.append("\n  ]\n}\n");

    Path target = output.resolve("predictions.json");
    AtomicFiles.writeString(target, json);
    out.println("wrote " + target);
    return 0;
  }

  /**
   * Checks, before any work, that {@code output} is a writable folder or can be created, and that
   * it contains none of the input {@code files}. An overlay is named after its image with {@code
   * .png}, so in a folder of inputs it could replace an input image. A file counts as in the folder
   * when either its own folder entry or the file that entry leads to is there, compared by real
   * paths.
   */
  private static void checkOutputFolder(Path output, List<Path> files) throws IOException {
    // The nearest folder that exists is the one where writing begins: output itself, or the
    // ancestor in which createDirectories makes the missing folders.
    Path absolute = output.toAbsolutePath();
    Path existing = absolute;
    while (!Files.exists(existing, LinkOption.NOFOLLOW_LINKS)) {
      existing = existing.getParent();
    }
    if (!Files.isDirectory(existing)) {
      String problem =
          existing.equals(absolute)
              ? "--output is not a folder"
              : "--output cannot be created because " + existing + " is not a folder";
      throw new FileSystemException(output.toString(), null, problem + "; pass another --output");
    }
    if (!Files.isWritable(existing)) {
      throw new AccessDeniedException(
          output.toString(),
          null,
          "permission denied: cannot write to "
              + existing
              + "; make it writable or pass another --output");
    }
    if (!existing.equals(absolute)) {
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
                + ", which an overlay could replace; pass another --output");
      }
    }
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
   * first place and under its first name.
   */
  private static List<Path> expand(List<Path> inputs) throws IOException {
    List<Path> files = new ArrayList<>();
    for (Path input : inputs) {
      if (Files.isDirectory(input)) {
        try (Stream<Path> children = Files.list(input)) {
          children
              .filter(Files::isRegularFile)
              .filter(p -> p.toString().toLowerCase(Locale.ROOT).matches(".*\\.(png|jpe?g)$"))
              .sorted()
              .forEach(files::add);
        }
      } else if (Files.isRegularFile(input)) {
        files.add(input);
      } else {
        throw new IOException(input + " not found: pass image files or folders of images");
      }
    }
    if (files.isEmpty()) {
      throw new IOException("no .png, .jpg or .jpeg files in " + inputs);
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
