package dev.kiln.keypoints.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link ImageDecoder#decode(byte[], String)}, for images that a service keeps in memory. */
class ImageDecoderBytesTest {

  @TempDir Path dir;

  @Test
  void bytesDecodeAsTheirFile() throws IOException {
    byte[] png = TestImages.png(gradient());
    byte[] jpeg = TestImages.jpeg(gradient());

    assertEquals(
        ImageDecoder.decode(TestImages.write(dir, "a.png", png)),
        ImageDecoder.decode(png, "a.png"));
    assertEquals(
        ImageDecoder.decode(TestImages.write(dir, "a.jpg", jpeg)),
        ImageDecoder.decode(jpeg, "a.jpg"));
  }

  @Test
  void errorsStartWithSource() {
    byte[] jpeg = TestImages.jpeg(gradient());
    byte[] text = "name,x,y".getBytes(StandardCharsets.US_ASCII);

    IOException empty =
        assertThrows(IOException.class, () -> ImageDecoder.decode(new byte[0], "upload 7"));
    IOException notImage = assertThrows(IOException.class, () -> ImageDecoder.decode(text, "b"));
    IOException cut =
        assertThrows(
            IOException.class,
            () -> ImageDecoder.decode(Arrays.copyOf(jpeg, jpeg.length / 2), "c.jpg"));

    assertTrue(empty.getMessage().startsWith("upload 7: no bytes"), empty.getMessage());
    assertTrue(empty.getMessage().contains("send it again"), empty.getMessage());
    assertTrue(
        notImage.getMessage().startsWith("b: not a PNG or JPEG file"), notImage.getMessage());
    assertTrue(cut.getMessage().startsWith("c.jpg: "), cut.getMessage());
    assertTrue(cut.getMessage().contains("truncated JPEG"), cut.getMessage());
  }

  private static BufferedImage gradient() {
    BufferedImage image = new BufferedImage(40, 30, BufferedImage.TYPE_3BYTE_BGR);
    for (int y = 0; y < image.getHeight(); y++) {
      for (int x = 0; x < image.getWidth(); x++) {
        image.setRGB(x, y, ((x * 6) << 16) | ((y * 8) << 8) | ((x + y) * 3));
      }
    }
    return image;
  }
}
