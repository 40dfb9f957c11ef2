package dev.kiln.keypoints.transform;

import dev.kiln.core.random.Generator;
import dev.kiln.keypoints.data.GrayImage;
import dev.kiln.keypoints.data.Sample;

/**
 * Rotates and scales a sample about the image centre by a random angle in [−maxDegrees, maxDegrees]
 * and a random factor in [minScale, maxScale], both uniform. The output has the input's size.
 *
 * <p>A point p moves to c + s·R(θ)·(p − c), where c = (width / 2, height / 2) and R(θ) = [[cos θ,
 * −sin θ], [sin θ, cos θ]]. Because y points down, a positive angle turns the content clockwise on
 * screen. Keypoints go through this forward map. Each output pixel centre goes through the inverse
 * map and takes the bilinear interpolation of the four source pixels around it. Source pixels
 * outside the image count as 0 (black), so corners uncovered by the rotation or a zoom-out turn
 * black.
 */
public final class RandomAffine implements Transform {
  private final double maxDegrees;
  private final double minScale;
  private final double maxScale;

  /** Creates an affine augmentation; {@code maxDegrees ≥ 0} and {@code 0 < minScale ≤ maxScale}. */
  public RandomAffine(double maxDegrees, double minScale, double maxScale) {
    if (!(maxDegrees >= 0 && maxDegrees <= 180)) {
      throw new IllegalArgumentException("maxDegrees must be in [0, 180], got " + maxDegrees);
    }
    if (!(minScale > 0 && minScale <= maxScale && Double.isFinite(maxScale))) {
      throw new IllegalArgumentException(
          "scales must satisfy 0 < minScale <= maxScale, got minScale "
              + minScale
              + " and maxScale "
              + maxScale);
    }
    this.maxDegrees = maxDegrees;
    this.minScale = minScale;
    this.maxScale = maxScale;
  }

  /** Returns the warped sample; draws the angle, then the scale. */
  @Override
  public Sample apply(Sample sample, Generator random) {
    double degrees = maxDegrees * (2 * random.nextDouble() - 1);
    double scale = minScale + (maxScale - minScale) * random.nextDouble();
    return warp(sample, degrees, scale);
  }

  /** Returns the sample rotated by {@code degrees} and scaled by {@code scale} about its centre. */
  public static Sample warp(Sample sample, double degrees, double scale) {
    GrayImage image = sample.image();
    int width = image.width();
    int height = image.height();
    double centreX = width / 2.0;
    double centreY = height / 2.0;
    double radians = Math.toRadians(degrees);
    double cos = Math.cos(radians);
    double sin = Math.sin(radians);

    // Forward map for the keypoints.
    double[] keypoints = new double[sample.keypoints().length];
    for (int i = 0; i < Sample.POINTS; i++) {
      double dx = sample.x(i) - centreX;
      double dy = sample.y(i) - centreY;
      keypoints[2 * i] = centreX + scale * (cos * dx - sin * dy);
      keypoints[2 * i + 1] = centreY + scale * (sin * dx + cos * dy);
    }

    // Inverse map for the pixels. Pixel (x, y) has its centre at (x + 0.5, y + 0.5), so the
    // position between pixel indices is the source point minus 0.5. It moves linearly along a row.
    float[] source = image.pixels();
    float[] target = new float[width * height];
    double stepX = cos / scale;
    double stepY = -sin / scale;
    for (int v = 0; v < height; v++) {
      double dy = v + 0.5 - centreY;
      double dx = 0.5 - centreX;
      double sourceX = centreX - 0.5 + (cos * dx + sin * dy) / scale;
      double sourceY = centreY - 0.5 + (-sin * dx + cos * dy) / scale;
      int row = v * width;
      for (int u = 0; u < width; u++) {
        target[row + u] = sampleBilinear(source, width, height, sourceX, sourceY);
        sourceX += stepX;
        sourceY += stepY;
      }
    }
    return sample.with(new GrayImage(width, height, target), keypoints);
  }

  /** Interpolates at sample position (x, y), where integers are pixel centres; 0 outside. */
  private static float sampleBilinear(float[] pixels, int width, int height, double x, double y) {
    double floorX = Math.floor(x);
    double floorY = Math.floor(y);
    if (floorX < -1 || floorY < -1 || floorX >= width || floorY >= height) {
      return 0f;
    }
    int left = (int) floorX;
    int top = (int) floorY;
    float fractionX = (float) (x - floorX);
    float fractionY = (float) (y - floorY);

    float topLeft;
    float topRight;
    float bottomLeft;
    float bottomRight;
    if (left >= 0 && top >= 0 && left + 1 < width && top + 1 < height) {
      int index = top * width + left;
      topLeft = pixels[index];
      topRight = pixels[index + 1];
      bottomLeft = pixels[index + width];
      bottomRight = pixels[index + width + 1];
    } else {
      topLeft = pixelOrZero(pixels, width, height, left, top);
      topRight = pixelOrZero(pixels, width, height, left + 1, top);
      bottomLeft = pixelOrZero(pixels, width, height, left, top + 1);
      bottomRight = pixelOrZero(pixels, width, height, left + 1, top + 1);
    }

    float upper = topLeft + fractionX * (topRight - topLeft);
    float lower = bottomLeft + fractionX * (bottomRight - bottomLeft);
    return upper + fractionY * (lower - upper);
  }

  private static float pixelOrZero(float[] pixels, int width, int height, int x, int y) {
    if (x < 0 || y < 0 || x >= width || y >= height) {
      return 0f;
    }
    return pixels[y * width + x];
  }
}
