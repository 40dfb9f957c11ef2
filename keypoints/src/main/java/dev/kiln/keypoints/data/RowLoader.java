package dev.kiln.keypoints.data;

import java.io.IOException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Locale;

/** Turns one valid CSV row into a {@link Sample}, or into a {@link BadRow} with the reason. */
final class RowLoader {

  private RowLoader() {}

  /** Exactly one of {@code sample} and {@code badRow} is non-null. */
  record Outcome(Sample sample, BadRow badRow) {}

  static Outcome load(Path csv, Path imageDir, KeypointsCsv.Row row, LoadOptions options) {
    Path folder = imageDir.toAbsolutePath().normalize();
    Path file = folder.resolve(row.fileName()).normalize();
    if (!file.startsWith(folder) || file.equals(folder)) {
      return bad(csv, row, "the file name points outside the image folder " + folder);
    }

    GrayImage image;
    try {
      image = ImageDecoder.decode(file);
    } catch (NoSuchFileException e) {
      return bad(csv, row, "image not found: " + file + "; add the image or remove the row");
    } catch (IOException e) {
      return bad(csv, row, "unreadable image: " + e.getMessage());
    }

    if (image.width() < options.minSize() || image.height() < options.minSize()) {
      return bad(
          csv,
          row,
          "the image is "
              + image.width()
              + "x"
              + image.height()
              + ", smaller than the minimum "
              + options.minSize()
              + "x"
              + options.minSize()
              + " pixels");
    }

    String outside = findFarOutside(row.keypoints(), image, options.maxOutsideFraction());
    if (outside != null) {
      return bad(csv, row, outside);
    }

    double[] keypoints = row.keypoints().clone();
    if (options.shorterSide() > 0) {
      int[] size =
          ImageResize.sizeForShorterSide(image.width(), image.height(), options.shorterSide());
      double scaleX = (double) size[0] / image.width();
      double scaleY = (double) size[1] / image.height();
      image = ImageResize.resize(image, size[0], size[1]);
      for (int i = 0; i < Sample.POINTS; i++) {
        keypoints[2 * i] *= scaleX;
        keypoints[2 * i + 1] *= scaleY;
      }
    }
    return new Outcome(new Sample(row.fileName(), image, keypoints), null);
  }

  /** Returns a reason naming the first keypoint too far beyond an edge, or null if none is. */
  private static String findFarOutside(double[] keypoints, GrayImage image, double fraction) {
    double marginX = fraction * image.width();
    double marginY = fraction * image.height();

    for (int i = 0; i < Sample.POINTS; i++) {
      double x = keypoints[2 * i];
      double y = keypoints[2 * i + 1];
      boolean farX = x < -marginX || x > image.width() + marginX;
      boolean farY = y < -marginY || y > image.height() + marginY;
      if (farX || farY) {
        return String.format(
            Locale.ROOT,
            "keypoint %d at (%s, %s) lies more than %.0f%% of the image size outside the"
                + " %dx%d image; check the row's coordinates (they are pixels of the original"
                + " image)",
            i,
            coordinate(x),
            coordinate(y),
            fraction * 100,
            image.width(),
            image.height());
      }
    }
    return null;
  }

  /** Formats a pixel coordinate with one decimal, or in scientific notation when it is huge. */
  static String coordinate(double value) {
    return Math.abs(value) < 1e7
        ? String.format(Locale.ROOT, "%.1f", value)
        : String.format(Locale.ROOT, "%.3e", value);
  }

  private static Outcome bad(Path csv, KeypointsCsv.Row row, String reason) {
    return new Outcome(null, new BadRow(csv, row.lineNumber(), row.fileName(), reason));
  }
}
