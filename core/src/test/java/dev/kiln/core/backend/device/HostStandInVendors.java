package dev.kiln.core.backend.device;

import dev.kiln.core.backend.cpu.BatchNormKernels;
import dev.kiln.core.backend.cpu.Conv2dGeometry;
import dev.kiln.core.backend.cpu.Conv2dKernels;
import dev.kiln.core.backend.cpu.Pool2dGeometry;
import dev.kiln.core.backend.cpu.Pool2dKernels;
import dev.kiln.core.backend.cuda.libraries.Nchw;
import dev.kiln.core.backend.cuda.libraries.VendorBlas;
import dev.kiln.core.backend.cuda.libraries.VendorDnn;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Storage;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Stand-ins for cuBLAS and cuDNN that compute on the host, for testing the launchers' vendor routes
 * without a GPU.
 *
 * <p>On the {@code emulated} device a buffer's address is an ordinary host address, so a stand-in
 * can read and write it the way the real library reads and writes GPU memory: through the raw
 * address alone. Each stand-in follows the library's documented contract: cuBLAS's column-major
 * layout with its alpha and beta, cuDNN's saved mean and inverse standard deviation, its dropout
 * states and reserve, and the {@code accumulate} flag of the backward calls (beta = 1). It computes
 * with kiln's CPU kernels or a plain loop and records the name of each call, so a test can check
 * that the vendor route ran and that it gives what kiln's own kernels give. The {@code
 * Vendor*GpuTest} classes (see {@link VendorContractSupport}) check these stand-ins against the
 * same contract as the real bindings.
 */
final class HostStandInVendors {
  private HostStandInVendors() {}

  /** Reads {@code count} floats at a host address. */
  static float[] read(long address, int count) {
    float[] values = new float[count];
    MemorySegment.copy(segment(address, count), ValueLayout.JAVA_FLOAT, 0, values, 0, count);
    return values;
  }

  /** Writes floats to a host address. */
  static void write(long address, float[] values) {
    MemorySegment.copy(
        values, 0, segment(address, values.length), ValueLayout.JAVA_FLOAT, 0, values.length);
  }

  private static MemorySegment segment(long address, int count) {
    return MemorySegment.ofAddress(address).reinterpret((long) count * Float.BYTES);
  }

  /** Wraps host floats at an address as float32 storage, for the CPU kernels. */
  static Storage storage(long address, int count) {
    return Storage.wrap(read(address, count));
  }

  /** cuBLAS's SGEMM, column-major, as a triple loop. */
  static final class Blas implements VendorBlas {
    final List<String> calls = new ArrayList<>();

    @Override
    public void sgemm(
        boolean transposeA,
        boolean transposeB,
        int m,
        int n,
        int k,
        float alpha,
        long a,
        int lda,
        long b,
        int ldb,
        float beta,
        long c,
        int ldc) {
      calls.add("sgemm");
      requireValidArguments(transposeA, transposeB, m, n, k, lda, ldb, ldc);
      multiply(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }

    @Override
    public void sgemmStridedBatched(
        boolean transposeA,
        boolean transposeB,
        int m,
        int n,
        int k,
        float alpha,
        long a,
        int lda,
        long strideA,
        long b,
        int ldb,
        long strideB,
        float beta,
        long c,
        int ldc,
        long strideC,
        int batchCount) {
      calls.add("sgemmStridedBatched");
      requireValidArguments(transposeA, transposeB, m, n, k, lda, ldb, ldc);
      for (int i = 0; i < batchCount; i++) {
        // The strides count elements, and the addresses count bytes.
        multiply(
            transposeA,
            transposeB,
            m,
            n,
            k,
            alpha,
            a + i * strideA * Float.BYTES,
            lda,
            b + i * strideB * Float.BYTES,
            ldb,
            beta,
            c + i * strideC * Float.BYTES,
            ldc);
      }
    }

    /**
     * Rejects the arguments that BLAS's SGEMM argument check rejects: a negative size, or a leading
     * dimension below max(1, rows of the stored matrix), which is m or k for A, k or n for B and m
     * for C. cuBLAS returns CUBLAS_STATUS_INVALID_VALUE for these even when the product is empty,
     * which is why PyTorch's CUDABlas.cpp raises each leading dimension to at least 1.
     */
    private static void requireValidArguments(
        boolean transposeA, boolean transposeB, int m, int n, int k, int lda, int ldb, int ldc) {
      if (m < 0 || n < 0 || k < 0) {
        throw new IllegalArgumentException(
            "cuBLAS sgemm: negative size m=" + m + ", n=" + n + ", k=" + k);
      }
      requireLeadingDimension("lda", lda, transposeA ? k : m);
      requireLeadingDimension("ldb", ldb, transposeB ? n : k);
      requireLeadingDimension("ldc", ldc, m);
    }

    private static void requireLeadingDimension(String name, int value, int rows) {
      if (value < Math.max(1, rows)) {
        throw new IllegalArgumentException(
            "cuBLAS sgemm: "
                + name
                + " = "
                + value
                + " is below max(1, "
                + rows
                + "), which cuBLAS rejects with CUBLAS_STATUS_INVALID_VALUE");
      }
    }

    /** Computes one column-major product C = alpha op(A) op(B) + beta C without recording it. */
    private static void multiply(
        boolean transposeA,
        boolean transposeB,
        int m,
        int n,
        int k,
        float alpha,
        long a,
        int lda,
        long b,
        int ldb,
        float beta,
        long c,
        int ldc) {
      float[] left = read(a, lda * (transposeA ? m : k));
      float[] right = read(b, ldb * (transposeB ? k : n));
      float[] out = read(c, ldc * n);
      for (int j = 0; j < n; j++) {
        for (int i = 0; i < m; i++) {
          double sum = 0;
          for (int p = 0; p < k; p++) {
            // Column-major: element (row, column) of a matrix with leading dimension ld is at
            // row + column * ld.
            float aValue = transposeA ? left[p + i * lda] : left[i + p * lda];
            float bValue = transposeB ? right[j + p * ldb] : right[p + j * ldb];
            sum += (double) aValue * bValue;
          }
          // With beta = 0 cuBLAS does not read C, so a NaN there must not leak into the result.
          double old = beta == 0 ? 0 : beta * out[i + j * ldc];
          out[i + j * ldc] = (float) (alpha * sum + old);
        }
      }
      write(c, out);
    }

    @Override
    public String description() {
      return "host stand-in for cuBLAS";
    }

    @Override
    public void close() {}
  }

  /** cuDNN's convolution, pooling, batch normalization, dropout and activations, on the host. */
  static final class Dnn implements VendorDnn {
    final List<String> calls = new ArrayList<>();

    @Override
    public void convolutionForward(Conv2dGeometry g, long x, long w, long y) {
      calls.add("convolutionForward");
      Storage out = Storage.allocate(DType.FLOAT32, g.outputSize());
      Conv2dKernels.forward(storage(x, g.inputSize()), storage(w, g.weightSize()), null, g, out);
      write(y, out.floats());
    }

    @Override
    public void convolutionBackwardData(
        Conv2dGeometry g, long w, long dy, long dx, boolean accumulate) {
      calls.add("convolutionBackwardData");
      Storage out = Storage.allocate(DType.FLOAT32, g.inputSize());
      Conv2dKernels.backwardData(storage(dy, g.outputSize()), storage(w, g.weightSize()), g, out);
      store(dx, out.floats(), accumulate);
    }

    @Override
    public void convolutionBackwardFilter(
        Conv2dGeometry g, long x, long dy, long dw, boolean accumulate) {
      calls.add("convolutionBackwardFilter");
      Storage out = Storage.allocate(DType.FLOAT32, g.weightSize());
      Conv2dKernels.backwardWeight(storage(dy, g.outputSize()), storage(x, g.inputSize()), g, out);
      store(dw, out.floats(), accumulate);
    }

    @Override
    public void convolutionBackwardBias(Conv2dGeometry g, long dy, long db, boolean accumulate) {
      calls.add("convolutionBackwardBias");
      Storage out = Storage.allocate(DType.FLOAT32, g.outChannels());
      Conv2dKernels.backwardBias(storage(dy, g.outputSize()), g, out);
      store(db, out.floats(), accumulate);
    }

    @Override
    public void poolingForward(PoolingMode mode, Pool2dGeometry g, long x, long y) {
      calls.add("poolingForward " + mode);
      Storage out = Storage.allocate(DType.FLOAT32, g.outputSize());
      Storage input = storage(x, g.inputSize());
      switch (mode) {
        case MAX ->
            Pool2dKernels.maxForward(
                input, g, out, Storage.allocate(DType.FLOAT32, g.outputSize()));
        case AVERAGE_INCLUDE_PADDING -> Pool2dKernels.avgForward(input, g, out);
        case AVERAGE_EXCLUDE_PADDING -> averageExcludingPadding(input.floats(), g, out.floats());
      }
      write(y, out.floats());
    }

    @Override
    public void poolingBackward(
        PoolingMode mode, Pool2dGeometry g, long x, long y, long dy, long dx) {
      calls.add("poolingBackward " + mode);
      Storage gradInput = Storage.allocate(DType.FLOAT32, g.inputSize());
      Storage gradOutput = storage(dy, g.outputSize());
      switch (mode) {
        case MAX -> {
          // Like cuDNN, the stand-in keeps no positions: it finds each window's maximum in x again.
          Storage argmax = Storage.allocate(DType.FLOAT32, g.outputSize());
          Pool2dKernels.maxForward(
              storage(x, g.inputSize()),
              g,
              Storage.allocate(DType.FLOAT32, g.outputSize()),
              argmax);
          Pool2dKernels.maxBackward(gradOutput, argmax, g, gradInput);
        }
        case AVERAGE_INCLUDE_PADDING -> Pool2dKernels.avgBackward(gradOutput, g, gradInput);
        case AVERAGE_EXCLUDE_PADDING ->
            averageExcludingPaddingBackward(gradOutput.floats(), g, gradInput.floats());
      }
      write(dx, gradInput.floats());
    }

    /**
     * Overwrites {@code out} with the mean of each window over the input elements it covers, so a
     * window that overlaps the padding divides by fewer than kernelHeight * kernelWidth. kiln's CPU
     * kernels have only the variant that counts the padding.
     */
    private static void averageExcludingPadding(float[] x, Pool2dGeometry g, float[] out) {
      int o = 0;
      for (int plane = 0; plane < g.batch() * g.channels(); plane++) {
        for (int oy = 0; oy < g.outHeight(); oy++) {
          for (int ox = 0; ox < g.outWidth(); ox++) {
            int[] window = window(g, oy, ox);
            double sum = 0;
            for (int iy = window[0]; iy < window[1]; iy++) {
              for (int ix = window[2]; ix < window[3]; ix++) {
                sum += x[(plane * g.inHeight() + iy) * g.inWidth() + ix];
              }
            }
            out[o++] = (float) (sum / windowCount(window));
          }
        }
      }
    }

    /** Overwrites {@code gradInput}: each window shares its gradient among its input elements. */
    private static void averageExcludingPaddingBackward(
        float[] gradOutput, Pool2dGeometry g, float[] gradInput) {
      double[] sums = new double[gradInput.length];
      int o = 0;
      for (int plane = 0; plane < g.batch() * g.channels(); plane++) {
        for (int oy = 0; oy < g.outHeight(); oy++) {
          for (int ox = 0; ox < g.outWidth(); ox++) {
            int[] window = window(g, oy, ox);
            double share = gradOutput[o++] / (double) windowCount(window);
            for (int iy = window[0]; iy < window[1]; iy++) {
              for (int ix = window[2]; ix < window[3]; ix++) {
                sums[(plane * g.inHeight() + iy) * g.inWidth() + ix] += share;
              }
            }
          }
        }
      }
      for (int i = 0; i < sums.length; i++) {
        gradInput[i] = (float) sums[i];
      }
    }

    /**
     * Returns {top, bottom, left, right}: the input rows [top, bottom) and columns [left, right)
     * that window (oy, ox) covers once the padding is clipped off.
     */
    private static int[] window(Pool2dGeometry g, int oy, int ox) {
      int top = oy * g.strideHeight() - g.padHeight();
      int left = ox * g.strideWidth() - g.padWidth();
      return new int[] {
        Math.max(0, top),
        Math.min(g.inHeight(), top + g.kernelHeight()),
        Math.max(0, left),
        Math.min(g.inWidth(), left + g.kernelWidth())
      };
    }

    private static int windowCount(int[] window) {
      return (window[1] - window[0]) * (window[3] - window[2]);
    }

    @Override
    public void batchNormForwardTraining(
        Nchw shape,
        long x,
        long y,
        long scale,
        long bias,
        double momentum,
        double epsilon,
        long runningMean,
        long runningVariance,
        long saveMean,
        long saveInvStd) {
      calls.add("batchNormForwardTraining");
      int n = shape.n();
      int c = shape.c();
      int s = shape.h() * shape.w();
      int size = n * c * s;
      Storage out = Storage.allocate(DType.FLOAT32, size);
      Storage meanRunning = storage(runningMean, c);
      Storage varRunning = storage(runningVariance, c);
      double[] mean = new double[c];
      double[] invStd = new double[c];
      BatchNormKernels.forwardTraining(
          storage(x, size),
          n,
          c,
          s,
          storage(scale, c),
          storage(bias, c),
          epsilon,
          out,
          mean,
          invStd,
          meanRunning,
          varRunning,
          momentum);
      write(y, out.floats());
      write(runningMean, meanRunning.floats());
      write(runningVariance, varRunning.floats());
      write(saveMean, toFloats(mean));
      write(saveInvStd, toFloats(invStd));
    }

    @Override
    public void batchNormForwardInference(
        Nchw shape,
        long x,
        long y,
        long scale,
        long bias,
        long runningMean,
        long runningVariance,
        double epsilon) {
      calls.add("batchNormForwardInference");
      int c = shape.c();
      int s = shape.h() * shape.w();
      int size = shape.n() * c * s;
      Storage out = Storage.allocate(DType.FLOAT32, size);
      BatchNormKernels.forwardInference(
          storage(x, size),
          shape.n(),
          c,
          s,
          storage(scale, c),
          storage(bias, c),
          storage(runningMean, c),
          storage(runningVariance, c),
          epsilon,
          out);
      write(y, out.floats());
    }

    @Override
    public void batchNormBackward(
        Nchw shape,
        long x,
        long dy,
        long dx,
        long scale,
        long dScale,
        long dBias,
        double epsilon,
        long saveMean,
        long saveInvStd) {
      calls.add("batchNormBackward");
      int c = shape.c();
      int s = shape.h() * shape.w();
      int size = shape.n() * c * s;
      Storage gradInput = Storage.allocate(DType.FLOAT32, size);
      Storage gradScale = Storage.allocate(DType.FLOAT32, c);
      Storage gradBias = Storage.allocate(DType.FLOAT32, c);
      BatchNormKernels.backwardTraining(
          storage(dy, size),
          storage(x, size),
          shape.n(),
          c,
          s,
          storage(scale, c),
          toDoubles(read(saveMean, c)),
          toDoubles(read(saveInvStd, c)),
          gradInput,
          gradScale,
          gradBias);
      write(dx, gradInput.floats());
      write(dScale, gradScale.floats());
      write(dBias, gradBias.floats());
    }

    /**
     * Random states of cuDNN's dropout contract: one per probability and seed, advanced by every
     * forward call. The reserve has one byte of mask per element for the backward pass. That is not
     * a whole number of floats, so the caller's rounding is tested.
     */
    private final Map<String, Random> dropoutStates = new HashMap<>();

    @Override
    public long dropoutReserveBytes(int elements) {
      return elements;
    }

    @Override
    public void dropoutForward(
        float probability, long seed, int elements, long x, long y, long reserve, long bytes) {
      calls.add("dropoutForward p=" + probability + " seed=" + seed);
      Random state =
          dropoutStates.computeIfAbsent(probability + "/" + seed, key -> new Random(seed));
      MemorySegment mask = MemorySegment.ofAddress(reserve).reinterpret(bytes);
      float scale = 1 / (1 - probability);
      float[] input = read(x, elements);
      float[] output = new float[elements];
      for (int i = 0; i < elements; i++) {
        boolean kept = state.nextFloat() >= probability;
        mask.set(ValueLayout.JAVA_BYTE, i, (byte) (kept ? 1 : 0));
        output[i] = kept ? input[i] * scale : 0;
      }
      write(y, output);
    }

    @Override
    public void dropoutBackward(
        float probability, long seed, int elements, long dy, long dx, long reserve, long bytes) {
      calls.add("dropoutBackward p=" + probability + " seed=" + seed);
      MemorySegment mask = MemorySegment.ofAddress(reserve).reinterpret(bytes);
      float scale = 1 / (1 - probability);
      float[] gradOutput = read(dy, elements);
      float[] gradInput = new float[elements];
      for (int i = 0; i < elements; i++) {
        gradInput[i] = mask.get(ValueLayout.JAVA_BYTE, i) == 1 ? gradOutput[i] * scale : 0;
      }
      write(dx, gradInput);
    }

    @Override
    public void activationForward(ActivationMode mode, int elements, long x, long y) {
      calls.add("activationForward " + mode);
      float[] input = read(x, elements);
      float[] output = new float[elements];
      for (int i = 0; i < elements; i++) {
        double v = input[i];
        output[i] =
            (float)
                switch (mode) {
                  case SIGMOID -> 1 / (1 + Math.exp(-v));
                  case RELU -> Math.max(0, v);
                  case TANH -> Math.tanh(v);
                };
      }
      write(y, output);
    }

    /**
     * Computes sigmoid' = y (1 - y) and tanh' = 1 - y^2 from the forward's output y, and ReLU's
     * derivative, 1 where x &gt; 0 and 0 elsewhere, from its input x.
     */
    @Override
    public void activationBackward(
        ActivationMode mode, int elements, long y, long dy, long x, long dx) {
      calls.add("activationBackward " + mode);
      float[] output = read(y, elements);
      float[] gradOutput = read(dy, elements);
      float[] input = read(x, elements);
      float[] gradInput = new float[elements];
      for (int i = 0; i < elements; i++) {
        double out = output[i];
        double slope =
            switch (mode) {
              case SIGMOID -> out * (1 - out);
              case RELU -> input[i] > 0 ? 1 : 0;
              case TANH -> 1 - out * out;
            };
        gradInput[i] = (float) (slope * gradOutput[i]);
      }
      write(dx, gradInput);
    }

    @Override
    public String description() {
      return "host stand-in for cuDNN";
    }

    @Override
    public void close() {}
  }

  /** Writes {@code values} to an address, or adds them to what is there (beta = 1). */
  private static void store(long address, float[] values, boolean accumulate) {
    if (accumulate) {
      float[] old = read(address, values.length);
      for (int i = 0; i < values.length; i++) {
        values[i] += old[i];
      }
    }
    write(address, values);
  }

  private static float[] toFloats(double[] values) {
    float[] result = new float[values.length];
    for (int i = 0; i < values.length; i++) {
      result[i] = (float) values[i];
    }
    return result;
  }

  private static double[] toDoubles(float[] values) {
    double[] result = new double[values.length];
    for (int i = 0; i < values.length; i++) {
      result[i] = values[i];
    }
    return result;
  }
}
