package dev.kiln.keypoints.fetch;

import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import javax.imageio.ImageIO;

/** Small zip archives shaped like the keypoint dataset, built in memory for the fetch tests. */
final class TestArchives {
  private TestArchives() {}

  /** Returns a keypoint table with a header and two rows of an image name and 136 numbers. */
  static byte[] csv(String firstImage, String secondImage) {
    StringBuilder text = new StringBuilder("image");
    for (int i = 0; i < 136; i++) {
      text.append(',').append(i);
    }
    text.append('\n');
    for (String image : new String[] {firstImage, secondImage}) {
      text.append(image);
      for (int i = 0; i < 136; i++) {
        text.append(',').append(10 + i * 0.5);
      }
      text.append('\n');
    }
    return text.toString().getBytes(StandardCharsets.UTF_8);
  }

  /** Returns a 4x3 grey PNG. */
  static byte[] png() {
    BufferedImage image = new BufferedImage(4, 3, BufferedImage.TYPE_BYTE_GRAY);
    image.getRaster().setSample(1, 1, 0, 200);
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try {
      ImageIO.write(image, "png", bytes);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return bytes.toByteArray();
  }

  /** Returns the entries of a complete dataset under {@code prefix}, which is "" or "data/". */
  static Map<String, byte[]> dataset(String prefix) {
    Map<String, byte[]> entries = new LinkedHashMap<>();
    entries.put(prefix + "training_frames_keypoints.csv", csv("a.jpg", "b.jpg"));
    entries.put(prefix + "test_frames_keypoints.csv", csv("c.jpg", "d.jpg"));
    entries.put(prefix + "training/", new byte[0]);
    entries.put(prefix + "training/a.png", png());
    entries.put(prefix + "test/", new byte[0]);
    entries.put(prefix + "test/c.png", png());
    return entries;
  }

  /** Returns a zip of {@code entries}; names ending in '/' become folder entries. */
  static byte[] zip(Map<String, byte[]> entries) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (ZipOutputStream zip = new ZipOutputStream(bytes)) {
      for (Map.Entry<String, byte[]> entry : entries.entrySet()) {
        zip.putNextEntry(new ZipEntry(entry.getKey()));
        zip.write(entry.getValue());
        zip.closeEntry();
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return bytes.toByteArray();
  }
}
