package dev.kiln.keypoints.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.File;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Memory of {@code kiln predict}, run in a child JVM with a small heap on several large images that
 * fit in it one at a time but not all at once.
 */
class PredictMemoryTest {
  /** Side of the square test images: 2000 × 2000 pixels take 16 MB as floats. */
  private static final int SIDE = 2000;

  /**
   * Number of images: all of them decoded at once take 128 MB, more than {@link #HEAP} less what
   * the JVM and the model need.
   */
  private static final int IMAGES = 8;

  /** Heap of the child JVM, enough for the model and one image with its overlay. */
  private static final String HEAP = "-Xmx112m";

  @TempDir Path folder;

  @Test
  void largeImagesPredictedOneAtATime() throws Exception {
    Path images = Files.createDirectory(folder.resolve("images"));
    Path first = images.resolve("face-0.png");
    ImageIO.write(gradient(), "png", first.toFile());
    for (int n = 1; n < IMAGES; n++) {
      Files.copy(first, images.resolve("face-" + n + ".png"));
    }
    Path checkpoint = UntrainedCheckpoint.write(folder);
    Path output = folder.resolve("predictions");
    Path log = folder.resolve("child.log");

    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.add(HEAP);
    // The module and native-access flags of this JVM, which the kiln backend needs too.
    for (String argument : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      if (argument.startsWith("--add-modules") || argument.startsWith("--enable-native-access")) {
        command.add(argument);
      }
    }
    command.addAll(List.of("-cp", System.getProperty("java.class.path")));
    command.addAll(List.of(Main.class.getName(), "predict"));
    command.addAll(List.of("--checkpoint", checkpoint.toString()));
    command.addAll(List.of("--output", output.toString(), images.toString()));
    Process child =
        new ProcessBuilder(command)
            .directory(new File(System.getProperty("user.dir")))
            .redirectErrorStream(true)
            .redirectOutput(log.toFile())
            .start();
    boolean finished = child.waitFor(120, TimeUnit.SECONDS);
    if (!finished) {
      child.destroyForcibly();
    }

    String childOutput = Files.readString(log, StandardCharsets.UTF_8);
    assertTrue(finished, "the child JVM did not finish in 120 s:\n" + childOutput);
    assertEquals(0, child.exitValue(), childOutput);
    assertTrue(Files.isRegularFile(output.resolve("predictions.json")), childOutput);
    for (int n = 0; n < IMAGES; n++) {
      Path overlay = output.resolve("face-" + n + ".png");
      assertTrue(Files.isRegularFile(overlay), "missing " + overlay);
    }
  }

  /** Returns a gray image with a diagonal gradient, which PNG compresses to a small file. */
  private static BufferedImage gradient() throws IOException {
    BufferedImage image = new BufferedImage(SIDE, SIDE, BufferedImage.TYPE_BYTE_GRAY);
    for (int y = 0; y < SIDE; y++) {
      for (int x = 0; x < SIDE; x++) {
        image.getRaster().setSample(x, y, 0, (x + y) / 16 % 256);
      }
    }
    return image;
  }
}
