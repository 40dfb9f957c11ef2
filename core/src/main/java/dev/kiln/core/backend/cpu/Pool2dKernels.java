package dev.kiln.core.backend.cpu;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Storage;
import java.util.Arrays;

/**
 * 2d max and average pooling on NCHW storage, with the defaults of PyTorch's {@code MaxPool2d} and
 * {@code AvgPool2d}: floor-mode output sizes, no dilation, and padding included in the average.
 *
 * <p>Shapes: x and gradInput are [batch, channels, inHeight, inWidth], out and gradOut are [batch,
 * channels, outHeight, outWidth], row-major. Every kernel overwrites its output storage. Window
 * (oy, ox) covers input rows oy * strideHeight - padHeight + [0, kernelHeight) and the matching
 * columns.
 */
public final class Pool2dKernels {

  /**
   * Maximum input size, in elements, whose indices fit in an argmax slot. It is 0x7F800000, the
   * bits of +infinity, so every index below it is the bit pattern of a finite float and never of a
   * NaN.
   */
  static final int MAX_ENCODED_INPUT = Float.floatToRawIntBits(Float.POSITIVE_INFINITY);

  private Pool2dKernels() {}

  /**
   * Overwrites {@code out} with the maximum of each window and {@code argmax} with the flat index
   * into x (over the whole batch) of the chosen element. {@code argmax} is float32 storage with one
   * slot per output. Each slot contains the index's int bits ({@link #encodeIndex}), so that a
   * memory scope owns and recycles it like any tensor storage, and {@link #argmaxIndices} reads the
   * indices back.
   *
   * <p>Padding is -infinity and never chosen, because every window contains at least one input
   * element (see {@link Pool2dGeometry}). Among equal maxima the first in row-major window order
   * wins. A NaN is larger than everything, so NaN propagates; with several NaNs the last one in
   * window order is chosen, as in PyTorch's CPU kernel.
   *
   * <p>Float32 input with 2x2 windows, stride 2 and no padding runs in {@link VectorPool2d} on
   * threads, with the same results, when the JVM has the Vector API (see {@link VectorSupport}).
   * Everything else runs in {@link #maxForwardPlain}.
   */
  public static void maxForward(Storage x, Pool2dGeometry g, Storage out, Storage argmax) {
    requireSize("input", x, g.inputSize());
    requireSize("output", out, g.outputSize());
    requireSameDtype(x, out);
    requireArgmax(argmax, g, "output");
    if (g.inputSize() > MAX_ENCODED_INPUT) {
      throw new IllegalArgumentException(
          "max pooling input has "
              + g.inputSize()
              + " elements, but the argmax can store indices only below "
              + MAX_ENCODED_INPUT
              + ": split the batch into smaller ones");
    }

    if (x instanceof Storage.F32 && FastPool2d.isTwoByTwo(g) && VectorSupport.available()) {
      VectorPool2d.maxForwardTwoByTwo(x.floats(), g, out.floats(), argmax.floats());
      return;
    }
    maxForwardPlain(x, g, out, argmax.floats());
  }

  /** The reference loop of {@link #maxForward}, serial, for every geometry and dtype. */
  static void maxForwardPlain(Storage x, Pool2dGeometry g, Storage out, float[] argmax) {
    int planeSize = g.inHeight() * g.inWidth();
    int outWidth = g.outWidth();
    int o = 0;
    for (int plane = 0; plane < g.batch() * g.channels(); plane++) {
      int planeStart = plane * planeSize;
      for (int oy = 0; oy < g.outHeight(); oy++) {
        int y0 = Math.max(0, oy * g.strideHeight() - g.padHeight());
        int y1 = Math.min(g.inHeight(), oy * g.strideHeight() - g.padHeight() + g.kernelHeight());
        for (int ox = 0; ox < outWidth; ox++) {
          int x0 = Math.max(0, ox * g.strideWidth() - g.padWidth());
          int x1 = Math.min(g.inWidth(), ox * g.strideWidth() - g.padWidth() + g.kernelWidth());
          int best = planeStart + y0 * g.inWidth() + x0;
          best =
              x instanceof Storage.F32
                  ? argmaxWindow(x.floats(), best, planeStart, g.inWidth(), y0, y1, x0, x1)
                  : argmaxWindow(x.doubles(), best, planeStart, g.inWidth(), y0, y1, x0, x1);
          argmax[o] = encodeIndex(best);
          out.set(o, x.get(best));
          o++;
        }
      }
    }
  }

  /**
   * Overwrites {@code gradInput} with the gradient of max pooling: zeros, then gradInput[argmax[o]]
   * += gradOut[o] for every output element o. Overlapping windows that chose the same element add
   * up. Float32 runs in {@link FastPool2d} on threads over the planes, with the same results.
   *
   * @throws IllegalStateException if a memory scope has released {@code argmax}
   */
  public static void maxBackward(
      Storage gradOut, Storage argmax, Pool2dGeometry g, Storage gradInput) {
    requireSize("output gradient", gradOut, g.outputSize());
    requireSize("input gradient", gradInput, g.inputSize());
    requireSameDtype(gradOut, gradInput);
    requireArgmax(argmax, g, "output gradient");

    if (gradInput instanceof Storage.F32) {
      FastPool2d.maxBackward(gradOut.floats(), argmax.floats(), g, gradInput.floats());
      return;
    }
    maxBackwardPlain(gradOut, argmax.floats(), gradInput);
  }

  /** The reference loop of {@link #maxBackward}, serial, for every dtype. */
  static void maxBackwardPlain(Storage gradOut, float[] argmax, Storage gradInput) {
    fillZero(gradInput);
    for (int o = 0; o < argmax.length; o++) {
      int index = decodeIndex(argmax[o]);
      if (index < 0 || index >= gradInput.size()) {
        throw new IllegalArgumentException(
            "max pooling argmax["
                + o
                + "] = "
                + index
                + " is outside the input of "
                + gradInput.size()
                + " elements");
      }
      gradInput.add(index, gradOut.get(o));
    }
  }

  /**
   * Overwrites {@code out} with the mean of each window, zeros of the padding included, so the
   * divisor is always kernelHeight * kernelWidth (PyTorch's count_include_pad=True; in floor mode
   * no window reaches past the padding).
   */
  public static void avgForward(Storage x, Pool2dGeometry g, Storage out) {
    requireSize("input", x, g.inputSize());
    requireSize("output", out, g.outputSize());
    requireSameDtype(x, out);

    int planeSize = g.inHeight() * g.inWidth();
    double divisor = (double) g.kernelHeight() * g.kernelWidth();
    int o = 0;
    for (int plane = 0; plane < g.batch() * g.channels(); plane++) {
      int planeStart = plane * planeSize;
      for (int oy = 0; oy < g.outHeight(); oy++) {
        int y0 = Math.max(0, oy * g.strideHeight() - g.padHeight());
        int y1 = Math.min(g.inHeight(), oy * g.strideHeight() - g.padHeight() + g.kernelHeight());
        for (int ox = 0; ox < g.outWidth(); ox++) {
          int x0 = Math.max(0, ox * g.strideWidth() - g.padWidth());
          int x1 = Math.min(g.inWidth(), ox * g.strideWidth() - g.padWidth() + g.kernelWidth());
          double sum =
              x instanceof Storage.F32
                  ? sumWindow(x.floats(), planeStart, g.inWidth(), y0, y1, x0, x1)
                  : sumWindow(x.doubles(), planeStart, g.inWidth(), y0, y1, x0, x1);
          out.set(o, sum / divisor);
          o++;
        }
      }
    }
  }

  /**
   * Overwrites {@code gradInput} with the gradient of average pooling.
   *
   * <p>Math: gradX[i] = sum over the windows w that contain i of gradOut[w] / (kernelHeight *
   * kernelWidth); the share that falls on padding is dropped.
   */
  public static void avgBackward(Storage gradOut, Pool2dGeometry g, Storage gradInput) {
    requireSize("output gradient", gradOut, g.outputSize());
    requireSize("input gradient", gradInput, g.inputSize());
    requireSameDtype(gradOut, gradInput);

    fillZero(gradInput);

    int planeSize = g.inHeight() * g.inWidth();
    double divisor = (double) g.kernelHeight() * g.kernelWidth();
    int o = 0;
    for (int plane = 0; plane < g.batch() * g.channels(); plane++) {
      int planeStart = plane * planeSize;
      for (int oy = 0; oy < g.outHeight(); oy++) {
        int y0 = Math.max(0, oy * g.strideHeight() - g.padHeight());
        int y1 = Math.min(g.inHeight(), oy * g.strideHeight() - g.padHeight() + g.kernelHeight());
        for (int ox = 0; ox < g.outWidth(); ox++) {
          int x0 = Math.max(0, ox * g.strideWidth() - g.padWidth());
          int x1 = Math.min(g.inWidth(), ox * g.strideWidth() - g.padWidth() + g.kernelWidth());
          double share = gradOut.get(o) / divisor;
          if (gradInput instanceof Storage.F32) {
            addWindow(gradInput.floats(), planeStart, g.inWidth(), y0, y1, x0, x1, (float) share);
          } else {
            addWindow(gradInput.doubles(), planeStart, g.inWidth(), y0, y1, x0, x1, share);
          }
          o++;
        }
      }
    }
  }

  /**
   * Converts a flat input index to an argmax slot, the float whose bits are the index. No
   * arithmetic ever touches a slot, so the bits come back unchanged. An index below {@link
   * #MAX_ENCODED_INPUT} is never a NaN pattern, whose bits a JVM may change, as the Javadoc of
   * {@link Float#intBitsToFloat} warns. HotSpot compiles both conversions as intrinsics, to at most
   * a register move, so the kernels lose no speed to them.
   */
  static float encodeIndex(int index) {
    return Float.intBitsToFloat(index);
  }

  /** Converts an argmax slot that {@link #encodeIndex} wrote back to the flat input index. */
  static int decodeIndex(float slot) {
    return Float.floatToRawIntBits(slot);
  }

  /**
   * Returns the flat input indices that {@link #maxForward} stored in {@code argmax}, one per
   * output element.
   *
   * @throws IllegalStateException if a memory scope has released {@code argmax}
   */
  public static int[] argmaxIndices(Storage argmax) {
    float[] slots = argmax.floats();
    int[] indices = new int[slots.length];
    for (int o = 0; o < slots.length; o++) {
      indices[o] = decodeIndex(slots[o]);
    }
    return indices;
  }

  /**
   * Returns the flat index of the maximum of rows [y0, y1) and columns [x0, x1) of the plane at
   * {@code planeStart}, starting from the candidate {@code first}, which is the window's first
   * element. Strict {@code >} keeps the first of equal maxima; any NaN replaces the candidate.
   */
  private static int argmaxWindow(
      float[] x, int first, int planeStart, int width, int y0, int y1, int x0, int x1) {
    int best = first;
    float bestValue = x[first];
    for (int y = y0; y < y1; y++) {
      int row = planeStart + y * width;
      for (int col = x0; col < x1; col++) {
        float value = x[row + col];
        if (value > bestValue || Float.isNaN(value)) {
          bestValue = value;
          best = row + col;
        }
      }
    }
    return best;
  }

  private static int argmaxWindow(
      double[] x, int first, int planeStart, int width, int y0, int y1, int x0, int x1) {
    int best = first;
    double bestValue = x[first];
    for (int y = y0; y < y1; y++) {
      int row = planeStart + y * width;
      for (int col = x0; col < x1; col++) {
        double value = x[row + col];
        if (value > bestValue || Double.isNaN(value)) {
          bestValue = value;
          best = row + col;
        }
      }
    }
    return best;
  }

  /** Sums a float32 window in double, so the mean rounds once when stored. */
  private static double sumWindow(
      float[] x, int planeStart, int width, int y0, int y1, int x0, int x1) {
    double sum = 0;
    for (int y = y0; y < y1; y++) {
      int row = planeStart + y * width;
      for (int col = x0; col < x1; col++) {
        sum += x[row + col];
      }
    }
    return sum;
  }

  private static double sumWindow(
      double[] x, int planeStart, int width, int y0, int y1, int x0, int x1) {
    double sum = 0;
    for (int y = y0; y < y1; y++) {
      int row = planeStart + y * width;
      for (int col = x0; col < x1; col++) {
        sum += x[row + col];
      }
    }
    return sum;
  }

  private static void addWindow(
      float[] grad, int planeStart, int width, int y0, int y1, int x0, int x1, float share) {
    for (int y = y0; y < y1; y++) {
      int row = planeStart + y * width;
      for (int col = x0; col < x1; col++) {
        grad[row + col] += share;
      }
    }
  }

  private static void addWindow(
      double[] grad, int planeStart, int width, int y0, int y1, int x0, int x1, double share) {
    for (int y = y0; y < y1; y++) {
      int row = planeStart + y * width;
      for (int col = x0; col < x1; col++) {
        grad[row + col] += share;
      }
    }
  }

  private static void fillZero(Storage storage) {
    if (storage instanceof Storage.F32) {
      Arrays.fill(storage.floats(), 0f);
    } else {
      Arrays.fill(storage.doubles(), 0.0);
    }
  }

  private static void requireSize(String name, Storage storage, int expected) {
    if (storage.size() != expected) {
      throw new IllegalArgumentException(
          "pooling "
              + name
              + " has "
              + storage.size()
              + " elements but the geometry expects "
              + expected
              + ": check the shapes against the Pool2dGeometry");
    }
  }

  private static void requireArgmax(Storage argmax, Pool2dGeometry g, String other) {
    if (argmax.dtype() != DType.FLOAT32 || argmax.size() != g.outputSize()) {
      throw new IllegalArgumentException(
          "max pooling argmax must be float32 storage of "
              + g.outputSize()
              + " elements, one per element of the "
              + other
              + ", but it has "
              + argmax.size()
              + " "
              + argmax.dtype()
              + " elements: pass the argmax that maxForward filled");
    }
  }

  private static void requireSameDtype(Storage first, Storage second) {
    if (first.dtype() != second.dtype()) {
      throw new IllegalArgumentException(
          "pooling operands must share one dtype, got " + first.dtype() + " and " + second.dtype());
    }
  }
}
