package dev.kiln.keypoints.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.kiln.keypoints.data.ImageDecoder;
import dev.kiln.keypoints.data.TestData;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * {@code kiln predict} on real face images: inputs that name the same file more than once, output
 * folders that contain inputs or cannot be written, files in the way of the outputs, a bad image
 * among good ones, and an image that changes between the prediction and the writing of outputs.
 */
class PredictCommandTest {

  private static final Pattern FILE_ENTRY = Pattern.compile("\"file\": \"([^\"]*)\"");

  @TempDir Path folder;

  private final StringWriter out = new StringWriter();
  private final StringWriter err = new StringWriter();

  /**
   * Runs {@code kiln predict} with the untrained checkpoint, {@code --output} and {@code inputs}.
   */
  private int predict(Path output, Path... inputs) throws IOException {
    return predict(ImageDecoder::decode, output, inputs);
  }

  /** Runs {@code kiln predict} as above, with {@code images} as its image decoder. */
  private int predict(PredictCommand.ImageSource images, Path output, Path... inputs)
      throws IOException {
    Path checkpoint = UntrainedCheckpoint.write(folder);
    CommandLine commandLine = Main.newCommandLine();
    PredictCommand command = commandLine.getSubcommands().get("predict").getCommand();
    command.images = images;
    commandLine.setOut(new PrintWriter(out, true));
    commandLine.setErr(new PrintWriter(err, true));
    List<String> args = new ArrayList<>();
    args.addAll(List.of("predict", "--checkpoint", checkpoint.toString()));
    args.addAll(List.of("--output", output.toString()));
    for (Path input : inputs) {
      args.add(input.toString());
    }
    return commandLine.execute(args.toArray(String[]::new));
  }

  private static Path face(String name) {
    return TestData.facialKeypoints().resolve("test").resolve(name);
  }

  /** Writes a gray PNG whose pixel pattern depends on {@code seed}. */
  private static void writeImage(Path file, int width, int height, int seed) throws IOException {
    BufferedImage image = new BufferedImage(width, height, BufferedImage.TYPE_BYTE_GRAY);
    for (int y = 0; y < height; y++) {
      for (int x = 0; x < width; x++) {
        image.getRaster().setSample(x, y, 0, (x * seed + y * 7 + seed * 31) % 256);
      }
    }
    assertTrue(ImageIO.write(image, "png", file.toFile()), "no PNG writer");
  }

  /** Returns the bytes of every entry in {@code dir}, by name. */
  private static Map<String, byte[]> contentsOf(Path dir) throws IOException {
    Map<String, byte[]> contents = new TreeMap<>();
    try (Stream<Path> children = Files.list(dir)) {
      for (Path child : children.toList()) {
        contents.put(child.getFileName().toString(), Files.readAllBytes(child));
      }
    }
    return contents;
  }

  @Test
  void fileAndItsFolderPredictedOnce() throws IOException {
    Path test = TestData.facialKeypoints().resolve("test");
    Path faces = Files.createDirectory(folder.resolve("faces"));
    Path first = faces.resolve("a.jpg");
    Path second = faces.resolve("b.jpg");
    Files.copy(test.resolve("James_Wolfensohn_00.jpg"), first);
    Files.copy(test.resolve("Kristen_Breitweiser_11.jpg"), second);
    Path checkpoint = UntrainedCheckpoint.write(folder);
    Path output = folder.resolve("predictions");
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    CommandLine commandLine = new CommandLine(new Main());
    commandLine.setOut(new PrintWriter(out, true));
    commandLine.setErr(new PrintWriter(err, true));

    // b.jpg comes first on its own, then again through its folder, which also lists a.jpg, and
    // a.jpg a second time under another spelling of the same path.
    int status =
        commandLine.execute(
            "predict",
            "--checkpoint",
            checkpoint.toString(),
            "--output",
            output.toString(),
            second.toString(),
            faces.toString(),
            faces.resolve("..").resolve("faces").resolve("a.jpg").toString());

    assertEquals(0, status, err.toString());
    Matcher entries = FILE_ENTRY.matcher(Files.readString(output.resolve("predictions.json")));
    List<String> files = entries.results().map(match -> match.group(1)).toList();
    assertEquals(List.of(second.toString(), first.toString()), files, "files in predictions.json");
    long printed = out.toString().lines().filter(line -> line.contains(" -> ")).count();
    assertEquals(2, printed, out.toString());
  }

  @Test
  void folderEntriesLeftOutAreCounted() throws IOException {
    Path faces = Files.createDirectory(folder.resolve("faces"));
    Files.copy(face("James_Wolfensohn_00.jpg"), faces.resolve("a.JPEG"));
    Files.copy(face("Kristen_Breitweiser_11.jpg"), faces.resolve("line\nbreak.jpg"));
    Files.writeString(faces.resolve("notes.txt"), "not an image");
    Files.writeString(faces.resolve("anim.gif"), "GIF89a");
    Files.createDirectory(faces.resolve("more"));
    Path output = folder.resolve("predictions");

    int status = predict(output, faces);

    assertEquals(0, status, err.toString());
    assertTrue(
        out.toString()
            .contains(
                "skipped 3 entries of "
                    + faces
                    + " that are not .png, .jpg or .jpeg files (subfolders are not searched):"
                    + " anim.gif, more/, notes.txt"),
        out.toString());
    assertTrue(Files.exists(output.resolve("a.png")), "overlay of a.JPEG");
    assertTrue(Files.exists(output.resolve("line\nbreak.png")), "overlay of a name with a newline");
    assertTrue(
        out.toString().contains(faces.resolve("line\\nbreak.jpg") + " -> "),
        "the newline is printed as an escape: " + out);
    assertEquals(4, out.toString().lines().count(), out.toString());
  }

  @Test
  void tinyImageErrorNamesFile() throws IOException {
    Path tiny = folder.resolve("tiny.png");
    writeImage(tiny, 8, 8, 3);

    int status = predict(folder.resolve("predictions"), tiny);

    assertEquals(1, status, err.toString());
    assertTrue(err.toString().contains(tiny + ": the image is 8x8 pixels"), err.toString());
  }

  @Test
  void printableEscapesControlCharacters() {
    assertEquals(
        "a\\nb\\tc\\rd\\u0001e\\u007ff é\\u202eg\\u2028h\\\\n",
        PredictCommand.printable(Path.of("a\nb\tc\rd\u0001e\u007ff é\u202eg\u2028h\\n")));
  }

  @Test
  void errorMessageEscapesControlCharacters() throws IOException {
    Path missing = folder.resolve("no\u001b[2Jsuch.png");

    int status = predict(folder.resolve("predictions"), missing);

    assertEquals(1, status, err.toString());
    assertTrue(err.toString().contains("no\\u001b[2Jsuch.png not found"), err.toString());
    assertFalse(err.toString().contains("\u001b"), err.toString());
  }

  @Test
  void skippedLineNamesFiveEntries() {
    Path faces = Path.of("faces");
    List<Path> skipped = new ArrayList<>();
    for (int i = 1; i <= 7; i++) {
      skipped.add(faces.resolve("f" + i + ".gif"));
    }

    String line = PredictCommand.skippedLine(faces, skipped);

    assertTrue(line.startsWith("skipped 7 entries of faces "), line);
    assertTrue(line.endsWith(": f1.gif, f2.gif, f3.gif, f4.gif, f5.gif and 2 more"), line);
    assertEquals(
        "skipped 1 entry of faces that is not a .png, .jpg or .jpeg file (subfolders are not"
            + " searched): f1.gif",
        PredictCommand.skippedLine(faces, skipped.subList(0, 1)));
  }

  @Test
  void emptyFolderNamesItWithoutBrackets() throws IOException {
    Path empty = Files.createDirectory(folder.resolve("empty"));

    int status = predict(folder.resolve("predictions"), empty);

    assertEquals(1, status, err.toString());
    assertTrue(
        err.toString()
            .contains(
                "no .png, .jpg or .jpeg files in "
                    + empty
                    + ": pass image files or folders that contain them"),
        err.toString());
  }

  @Test
  void sameNamesGetDistinctOverlays() throws IOException {
    Path test = TestData.facialKeypoints().resolve("test");
    Path left = Files.createDirectories(folder.resolve("x"));
    Path right = Files.createDirectories(folder.resolve("y"));
    Files.copy(test.resolve("James_Wolfensohn_00.jpg"), left.resolve("a.jpg"));
    Files.copy(test.resolve("Kristen_Breitweiser_11.jpg"), right.resolve("a.jpg"));
    Path checkpoint = UntrainedCheckpoint.write(folder);
    Path output = folder.resolve("predictions");
    StringWriter err = new StringWriter();
    CommandLine commandLine = new CommandLine(new Main());
    commandLine.setOut(new PrintWriter(new StringWriter(), true));
    commandLine.setErr(new PrintWriter(err, true));

    int status =
        commandLine.execute(
            "predict",
            "--checkpoint",
            checkpoint.toString(),
            "--output",
            output.toString(),
            left.resolve("a.jpg").toString(),
            right.resolve("a.jpg").toString());

    assertEquals(0, status, err.toString());
    assertTrue(Files.isRegularFile(output.resolve("a.png")), "missing a.png");
    assertTrue(Files.isRegularFile(output.resolve("a-2.png")), "missing a-2.png");
    String json = Files.readString(output.resolve("predictions.json"));
    assertTrue(json.contains("\"overlay\": \"a-2.png\""), json);
  }

  @Test
  void outputWithInputsRejected() throws IOException {
    Path faces = Files.createDirectory(folder.resolve("faces"));
    Files.copy(face("James_Wolfensohn_00.jpg"), faces.resolve("a.jpg"));
    Files.copy(face("Kristen_Breitweiser_11.jpg"), faces.resolve("a.png"));
    byte[] original = Files.readAllBytes(faces.resolve("a.png"));

    // The same folder under another spelling, so that only a comparison of real paths finds it.
    int status = predict(faces.resolve("..").resolve("faces"), faces);

    assertEquals(1, status, out.toString());
    String message = err.toString();
    assertTrue(message.contains(faces.resolve("a.jpg").toString()), message);
    assertTrue(message.contains("pass another --output"), message);
    // a.jpg is the input named, and no .png overlay could replace a .jpg file.
    assertFalse(message.contains("an overlay could replace"), message);
    assertTrue(message.contains("overlays would mix with the inputs"), message);
    assertArrayEquals(original, Files.readAllBytes(faces.resolve("a.png")), "a.png was replaced");
    assertFalse(Files.exists(faces.resolve("predictions.json")), "predictions.json was written");
  }

  @Test
  void linkedInputInOutputRejected() throws IOException {
    Path output = Files.createDirectory(folder.resolve("predictions"));
    Path link = output.resolve("a.png");
    // A copy, because an overlay written through the link would overwrite its target.
    Path image = Files.copy(face("James_Wolfensohn_00.jpg"), folder.resolve("a-copy.jpg"));
    byte[] original = Files.readAllBytes(image);
    Files.createSymbolicLink(link, image);

    // The link's target is elsewhere, but a.png's overlay would land on the input.
    int status = predict(output, link);

    assertEquals(1, status, out.toString());
    assertTrue(err.toString().contains(link.toString()), err.toString());
    assertTrue(Files.isSymbolicLink(link), "the input link was replaced");
    assertArrayEquals(original, Files.readAllBytes(image), "the linked image was replaced");
  }

  @Test
  void badImageWritesNothing() throws IOException {
    Path faces = Files.createDirectory(folder.resolve("faces"));
    Files.copy(face("James_Wolfensohn_00.jpg"), faces.resolve("a.jpg"));
    Files.writeString(faces.resolve("b.jpg"), "not a JPEG");
    Files.copy(face("Kristen_Breitweiser_11.jpg"), faces.resolve("c.jpg"));
    Path output = Files.createDirectory(folder.resolve("predictions"));
    Files.writeString(output.resolve("predictions.json"), "previous run");

    int status = predict(output, faces);

    assertEquals(1, status, out.toString());
    assertTrue(err.toString().contains("b.jpg"), err.toString());
    assertEquals("previous run", Files.readString(output.resolve("predictions.json")));
    assertFalse(Files.exists(output.resolve("a.png")), "a.png was written");
    assertFalse(Files.exists(output.resolve("c.png")), "c.png was written");
  }

  @Test
  void uncreatableOutputRejectedFirst() throws IOException {
    Path file = Files.writeString(folder.resolve("afile"), "");
    Path bad = Files.writeString(folder.resolve("b.jpg"), "not a JPEG");
    Path output = file.resolve("predictions");

    // The bad image would fail too, so the message shows which check ran first.
    int status = predict(output, bad);

    assertEquals(1, status, out.toString());
    assertEquals(
        "kiln predict: "
            + output
            + ": --output cannot be created because "
            + file
            + " is not a folder; pass another --output",
        err.toString().strip());
  }

  @Test
  void readOnlyOutputRejectedFirst() throws IOException {
    Path output = Files.createDirectory(folder.resolve("predictions"));
    Path bad = Files.writeString(folder.resolve("b.jpg"), "not a JPEG");
    Files.setPosixFilePermissions(output, PosixFilePermissions.fromString("r-xr-xr-x"));
    try {
      assumeFalse(
          Files.isWritable(output), "skipped: this user (root) may write to read-only folders");

      int status = predict(output, bad);

      assertEquals(1, status, out.toString());
      String message = err.toString();
      assertTrue(message.contains("permission denied"), message);
      assertFalse(message.contains("b.jpg"), message);
    } finally {
      Files.setPosixFilePermissions(output, PosixFilePermissions.fromString("rwxr-xr-x"));
    }
  }

  @Test
  void folderInOverlayPlaceRejectedFirst() throws IOException {
    Path faces = Files.createDirectory(folder.resolve("faces"));
    Files.copy(face("James_Wolfensohn_00.jpg"), faces.resolve("a.jpg"));
    Files.copy(face("Kristen_Breitweiser_11.jpg"), faces.resolve("b.jpg"));
    Path output = Files.createDirectory(folder.resolve("predictions"));
    Files.writeString(output.resolve("predictions.json"), "previous run");
    Path blocking = Files.createDirectory(output.resolve("b.png"));

    int status = predict(output, faces);

    assertEquals(1, status, out.toString());
    assertEquals(
        "kiln predict: "
            + blocking
            + ": is a folder, but kiln writes a file of that name into --output; move or"
            + " remove it, or pass another --output",
        err.toString().strip());
    assertFalse(Files.exists(output.resolve("a.png")), "a.png was written");
    assertEquals("previous run", Files.readString(output.resolve("predictions.json")));
  }

  @Test
  void folderInJsonPlaceRejected() throws IOException {
    Path output = Files.createDirectory(folder.resolve("predictions"));
    Path blocking = Files.createDirectory(output.resolve("predictions.json"));

    int status = predict(output, face("James_Wolfensohn_00.jpg"));

    assertEquals(1, status, out.toString());
    assertTrue(err.toString().contains(blocking + ": is a folder"), err.toString());
    assertFalse(Files.exists(output.resolve("James_Wolfensohn_00.png")), "the overlay was written");
  }

  @Test
  void linksInOutputPlacesRejected() throws IOException {
    // A copy, so that a regression overwrites no file of the dataset.
    Path input = Files.copy(face("James_Wolfensohn_00.jpg"), folder.resolve("face.jpg"));
    byte[] original = Files.readAllBytes(input);
    Path elsewhere = Files.writeString(folder.resolve("elsewhere.txt"), "keep");
    Path checkpoint = UntrainedCheckpoint.write(folder);
    byte[] checkpointBytes = Files.readAllBytes(checkpoint);
    record Case(String label, String name, Path linked) {}

    List<Case> cases =
        List.of(
            new Case("outside", "face.png", elsewhere),
            new Case("input", "face.png", input),
            new Case("checkpoint", "predictions.json", checkpoint),
            new Case("another output", "predictions.json", Path.of("face.png")),
            new Case("dangling", "face.png", folder.resolve("missing").resolve("face.png")),
            new Case("loop", "face.png", Path.of("face.png")));
    for (Case linkCase : cases) {
      Path output =
          Files.createDirectories(folder.resolve("predictions-" + cases.indexOf(linkCase)));
      Path link = Files.createSymbolicLink(output.resolve(linkCase.name()), linkCase.linked());
      err.getBuffer().setLength(0);

      int status = predict(output, input);

      assertEquals(1, status, linkCase.label() + ": " + out);
      assertTrue(err.toString().contains(link + ": is a symbolic link"), err.toString());
      assertTrue(Files.isSymbolicLink(link), linkCase.label() + ": the link was replaced");
      try (var entries = Files.list(output)) {
        assertEquals(List.of(link), entries.toList(), linkCase.label() + ": a file was written");
      }
    }
    assertArrayEquals(original, Files.readAllBytes(input), "the input image was replaced");
    assertArrayEquals(checkpointBytes, Files.readAllBytes(checkpoint), "the checkpoint changed");
    assertEquals("keep", Files.readString(elsewhere), "the file outside --output changed");
  }

  @Test
  void dotDotOutputWithInputsRejected() throws IOException {
    Path inputs = Files.createDirectory(folder.resolve("pngin"));
    Files.copy(face("James_Wolfensohn_00.jpg"), inputs.resolve("a.png"));
    byte[] original = Files.readAllBytes(inputs.resolve("a.png"));

    // "nothere" does not exist, so only a normalized path shows that this is the input folder.
    int status = predict(folder.resolve("nothere").resolve("..").resolve("pngin"), inputs);

    assertEquals(1, status, out.toString());
    assertTrue(err.toString().contains("contains the input image"), err.toString());
    assertArrayEquals(original, Files.readAllBytes(inputs.resolve("a.png")), "a.png was replaced");
    assertFalse(Files.exists(folder.resolve("nothere")), "nothere was created");
  }

  @Test
  void dotDotOutputWritten() throws IOException {
    int status =
        predict(
            folder.resolve("nothere").resolve("..").resolve("out"),
            face("James_Wolfensohn_00.jpg"));

    assertEquals(0, status, err.toString());
    assertTrue(Files.isRegularFile(folder.resolve("out").resolve("predictions.json")));
    assertTrue(Files.isRegularFile(folder.resolve("out").resolve("James_Wolfensohn_00.png")));
    assertFalse(Files.exists(folder.resolve("nothere")), "nothere was created");
  }

  @Test
  void longImageNamePredicted() throws IOException {
    // A 250-byte name, within the 255 bytes that common file systems allow.
    Path faces = Files.createDirectory(folder.resolve("faces"));
    String stem = "x".repeat(246);
    Files.copy(face("James_Wolfensohn_00.jpg"), faces.resolve(stem + ".jpg"));
    Path output = folder.resolve("predictions");

    int status = predict(output, faces);

    assertEquals(0, status, err.toString());
    assertTrue(Files.isRegularFile(output.resolve(stem + ".png")), "missing the overlay");
  }

  @Test
  void fifoInputNotRegular() throws Exception {
    Path fifo = folder.resolve("face.png");
    Process mkfifo = new ProcessBuilder("mkfifo", fifo.toString()).inheritIO().start();
    assumeTrue(mkfifo.waitFor() == 0, "skipped: mkfifo failed");

    int status = predict(folder.resolve("predictions"), fifo);

    assertEquals(1, status, out.toString());
    assertEquals(
        "kiln predict: "
            + fifo
            + ": is not a regular file (a FIFO, socket or device); pass image files or folders of"
            + " images",
        err.toString().strip());
  }

  @Test
  void failedWriteKeepsPreviousRun() throws IOException {
    Path faces = Files.createDirectory(folder.resolve("faces"));
    Path second = faces.resolve("b.png");
    for (String name : List.of("a.png", "b.png", "c.png")) {
      writeImage(faces.resolve(name), 96, 96, 3);
    }
    Path output = folder.resolve("predictions");
    assertEquals(0, predict(output, faces), err.toString());
    Map<String, byte[]> previous = contentsOf(output);
    assertEquals(
        List.of("a.png", "b.png", "c.png", "predictions.json"), List.copyOf(previous.keySet()));
    // New pixels, so that every overlay of the second run differs from the first run's.
    for (String name : List.of("a.png", "b.png", "c.png")) {
      writeImage(faces.resolve(name), 96, 96, 5);
    }
    int[] secondReads = {0};
    PredictCommand.ImageSource images =
        file -> {
          // The second read of b.png is the one for its overlay, so replace the file by a smaller
          // image first.
          if (file.equals(second) && ++secondReads[0] == 2) {
            writeImage(second, 80, 64, 5);
          }
          return ImageDecoder.decode(file);
        };

    int status = predict(images, output, faces);

    assertEquals(1, status, out.toString());
    assertEquals(2, secondReads[0], "reads of b.png");
    assertTrue(err.toString().contains(second + ": changed while predict ran"), err.toString());
    Map<String, byte[]> after = contentsOf(output);
    assertEquals(previous.keySet(), after.keySet(), "files in --output");
    for (String name : previous.keySet()) {
      assertArrayEquals(previous.get(name), after.get(name), name + " changed");
    }
  }

  /**
   * Two inputs of one 251-byte stem get the overlay names stem.png and stem-2.png, and the second,
   * 257 bytes, is too long for the file system: the run stops before any work.
   */
  @Test
  void overlayNameTooLongStopsBeforeWriting() throws IOException {
    String stem = "f".repeat(251);
    Path first = Files.createDirectory(folder.resolve("one")).resolve(stem + ".png");
    Path second = Files.createDirectory(folder.resolve("two")).resolve(stem + ".png");
    writeImage(first, 96, 96, 3);
    writeImage(second, 96, 96, 4);
    Path output = folder.resolve("predictions");

    int status = predict(output, first, second);

    assertEquals(1, status, out.toString());
    assertTrue(
        err.toString().contains(stem + "-2.png: the name is 257 bytes long, more than the 255"),
        err.toString());
    assertFalse(Files.exists(output.resolve(stem + ".png")), "first overlay written");
  }

  /** An input that cannot be decoded a second time is named in the error, not its overlay. */
  @Test
  void unreadableSecondReadNamesTheInput() throws IOException {
    Path faces = Files.createDirectory(folder.resolve("faces"));
    Path image = faces.resolve("a.png");
    writeImage(image, 96, 96, 3);
    Path output = folder.resolve("predictions");
    int[] reads = {0};
    PredictCommand.ImageSource images =
        file -> {
          if (++reads[0] == 2) {
            throw new IOException("truncated data");
          }
          return ImageDecoder.decode(file);
        };

    int status = predict(images, output, faces);

    assertEquals(1, status, out.toString());
    assertTrue(
        err.toString().contains(image + ": could not be read again to draw its overlay"),
        err.toString());
    assertFalse(Files.exists(output.resolve("a.png")), "overlay written");
  }
}
