package dev.kiln.core.backend.device;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.kiln.core.backend.cuda.CudaAvailability;
import dev.kiln.core.backend.cuda.CudaContext;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import dev.kiln.core.backend.cuda.libraries.CublasDirect;
import dev.kiln.core.backend.cuda.libraries.CudnnDirect;
import dev.kiln.core.backend.cuda.libraries.JcublasBlas;
import dev.kiln.core.backend.cuda.libraries.JcudnnDnn;
import dev.kiln.core.backend.cuda.libraries.LibraryDiscovery;
import dev.kiln.core.backend.cuda.libraries.LibraryLoadException;
import dev.kiln.core.backend.cuda.libraries.VendorBinding;
import dev.kiln.core.backend.cuda.libraries.VendorBlas;
import dev.kiln.core.backend.cuda.libraries.VendorDevice;
import dev.kiln.core.backend.cuda.libraries.VendorDnn;
import dev.kiln.core.backend.cuda.libraries.VendorLibrary;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The bindings, buffers, tolerances and helpers shared by the vendor contract tests. Those tests
 * check every call of {@link VendorBlas} and {@link VendorDnn} against float64 loops written in the
 * tests themselves, one class per family of calls: {@link VendorBlasGpuTest}, {@link
 * VendorConvolutionGpuTest}, {@link VendorPoolingGpuTest}, {@link VendorBatchNormGpuTest} and
 * {@link VendorDropoutActivationGpuTest}. Each test runs once per binding: the host stand-ins of
 * {@link HostStandInVendors} on the emulated device, JCublas and JCudnn on {@code cuda:0}, and the
 * direct {@code java.lang.foreign} bindings on {@code cuda:0}.
 *
 * <p>The stand-in run needs no GPU, so it runs everywhere and checks the tests themselves: their
 * references, their checks and their tolerances. The two GPU runs then hold cuBLAS and cuDNN to the
 * same contract. A GPU binding that cannot run is skipped with the reason, which is the CUDA
 * availability check's message or the loader's {@link LibraryLoadException} message, and the reason
 * is also printed once per test class.
 *
 * <p>The references never share code with the stand-ins, which compute with kiln's CPU kernels.
 * Every output buffer starts as NaN, so an element that a call forgot to write fails the
 * comparison, except where {@code accumulate} or beta = 1 requires a real starting value.
 *
 * <h2>Tolerances</h2>
 *
 * <p>Each tolerance is |actual - expected| &lt;= relative * |expected| + absolute, against a
 * float64 reference computed from the same float32 inputs. The inputs have magnitude at most 1,
 * except the activation inputs (up to 4) and the batch norm input (up to 1.75).
 *
 * <ul>
 *   <li>{@link DeviceTestSupport#ROUNDED}: one or two rounded float32 operations, as in dropout's x
 *       / (1 - p) and its gradient.
 *   <li>{@link DeviceTestSupport#SUMMED}: float32 sums of at most a few hundred terms, which drift
 *       by about (terms * 6e-8) of the terms' magnitude: the products, the pooling windows and the
 *       bias gradient.
 *   <li>{@link #CONVOLUTION}, {@link #BATCH_NORM} and {@link #ACTIVATION}: see their comments.
 * </ul>
 */
final class VendorContractSupport {

  /**
   * Tolerance of cuDNN's convolutions. kiln requests {@code CUDNN_FMA_MATH}, so nothing is rounded
   * to TF32, but cuDNN may choose an implicit GEMM, a Winograd or an FFT algorithm. Winograd and
   * FFT transform the operands before they sum, and their float32 error grows with the transform's
   * constants rather than with the number of terms. The sums here have at most 72 terms of
   * magnitude below 1, so plain summation errs by less than about 5e-6. 1e-4 leaves room for the
   * transforms, while a wrong index or a missing accumulate moves most results by more than 1e-2.
   * NOTE: the 1e-4 is an estimate until these tests run on a GPU.
   */
  static final DeviceTestSupport.Tolerance CONVOLUTION =
      new DeviceTestSupport.Tolerance(1e-4, 1e-4);

  /**
   * Tolerance of batch normalization. The mean and variance are float32 sums over the 60 elements
   * of a channel (error about 60 * 6e-8 = 4e-6 relative), and every output is that error scaled by
   * the inverse standard deviation (below 2 here) and the scale. 5e-5 covers it with room and still
   * detects an epsilon of 1e-3 that was left out (1.5e-3 relative) or an unbiased variance in place
   * of the biased one (8e-3 relative).
   */
  static final DeviceTestSupport.Tolerance BATCH_NORM = new DeviceTestSupport.Tolerance(5e-5, 5e-5);

  /**
   * Tolerance of the activations. A GPU library may evaluate exp and tanh with fast intrinsics that
   * err by a few units in the last place (about 3e-7 relative). It may also build tanh from exp,
   * which near 0 leaves an absolute error of a few units in the last place of 1 (6e-8 each).
   */
  static final DeviceTestSupport.Tolerance ACTIVATION = new DeviceTestSupport.Tolerance(1e-5, 1e-6);

  static final String STAND_IN = "stand-in on emulated";
  static final String JCUDA = "jcuda on cuda:0";
  static final String DIRECT = "direct on cuda:0";

  private VendorContractSupport() {}

  /**
   * Marks a test that runs once per binding. The binding's name is the test's only argument and the
   * run's JUnit display name, such as "jcuda on cuda:0" in place of "[2]".
   */
  @Target(ElementType.METHOD)
  @Retention(RetentionPolicy.RUNTIME)
  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.kiln.core.backend.device.VendorContractSupport#bindings")
  @interface ForEachBinding {}

  /** Returns the binding names, in the order the tests run them. */
  static Stream<Named<String>> bindings() {
    return Stream.of(STAND_IN, JCUDA, DIRECT).map(name -> Named.of(name, name));
  }

  // Helpers.

  /** Returns random start values for an accumulating call, or NaN where the call overwrites. */
  static float[] startOf(Random random, boolean accumulate, int count) {
    return accumulate ? DeviceTestSupport.randomFloats(random, count) : nans(count);
  }

  /** Returns the expected output of a call that adds {@code result} when it accumulates. */
  static double[] plus(boolean accumulate, float[] start, double[] result) {
    double[] expected = result.clone();
    if (accumulate) {
      for (int i = 0; i < expected.length; i++) {
        expected[i] += start[i];
      }
    }
    return expected;
  }

  /** Returns random floats in [-1, 1) with magnitude at least 0.05, so that none is 0. */
  static float[] nonZeroFloats(Random random, int count) {
    float[] values = DeviceTestSupport.randomFloats(random, count);
    for (int i = 0; i < count; i++) {
      if (Math.abs(values[i]) < 0.05f) {
        values[i] = Math.copySign(0.05f, values[i]) + values[i];
      }
    }
    return values;
  }

  static float[] nans(int count) {
    float[] values = new float[count];
    Arrays.fill(values, Float.NaN);
    return values;
  }

  static float[] toFloats(double[] values) {
    float[] result = new float[values.length];
    for (int i = 0; i < values.length; i++) {
      result[i] = (float) values[i];
    }
    return result;
  }

  static double[] toDoubles(float[] values) {
    double[] result = new double[values.length];
    for (int i = 0; i < values.length; i++) {
      result[i] = values[i];
    }
    return result;
  }

  // Bindings and memory.

  /**
   * The bindings of one test class, each opened on first use and kept until the class's
   * {@code @AfterAll} calls {@link #close()}.
   */
  static final class Bindings implements AutoCloseable {
    private final String owner;
    private final Map<String, Opened> opened = new LinkedHashMap<>();

    /** Creates the bindings of {@code testClass}, whose name prefixes each printed skip reason. */
    Bindings(Class<?> testClass) {
      this.owner = testClass.getSimpleName();
    }

    /** Returns a binding, opening it on first use. A binding that cannot run skips each test. */
    synchronized Opened open(String binding) {
      return opened.computeIfAbsent(binding, this::load);
    }

    private Opened load(String binding) {
      if (binding.equals(STAND_IN)) {
        return new Opened(
            Memory.of(DeviceTestSupport.runtime("emulated")),
            new Loaded<>(new HostStandInVendors.Blas(), null),
            new Loaded<>(new HostStandInVendors.Dnn(), null));
      }

      // The libraries need no kiln kernels, so a device whose only missing piece is kiln's fatbin
      // counts as usable here.
      CudaAvailability cuda = CudaAvailability.check(0);
      boolean onlyFatbinMissing = cuda.message().contains(CudaAvailability.FATBIN_RESOURCE);
      if (!cuda.usable() && !onlyFatbinMissing) {
        return Opened.skipped(owner, binding + " skipped: " + cuda.message());
      }
      CudaContext context = CudaContext.of(0);
      VendorDevice device = VendorDevice.of(context);
      Memory memory = Memory.of(context);
      if (binding.equals(JCUDA)) {
        return new Opened(
            memory,
            Loaded.attempt(owner, binding, () -> JcublasBlas.load(device)),
            Loaded.attempt(owner, binding, () -> JcudnnDnn.load(device)));
      }
      LibraryDiscovery discovery = LibraryDiscovery.system();
      return new Opened(
          memory,
          Loaded.attempt(
              owner,
              binding,
              () -> CublasDirect.load(discovery.find(VendorLibrary.CUBLAS), device)),
          Loaded.attempt(owner, binding, () -> CudnnDirect.load(discovery, device)));
    }

    /** Closes every library that loaded. A CUDA context stays open for the other GPU tests. */
    @Override
    public synchronized void close() {
      for (Opened binding : opened.values()) {
        for (Loaded<?> loaded : List.of(binding.blasLoad(), binding.dnnLoad())) {
          if (loaded.library() != null) {
            loaded.library().close();
          }
        }
      }
      opened.clear();
    }
  }

  /** The memory that a binding's pointers address, with the copies that the test needs. */
  interface Memory {

    DeviceBuffer allocate(int floats);

    void copyToDevice(float[] values, DeviceBuffer buffer);

    /** Copies {@code count} floats back after all work issued before has finished. */
    float[] copyToHost(long address, int count);

    void free(DeviceBuffer buffer);

    /** Waits for all work issued before. */
    void synchronize();

    /** Returns the emulated device's memory: host memory, which the stand-ins address directly. */
    static Memory of(DeviceRuntime runtime) {
      return new Memory() {
        @Override
        public DeviceBuffer allocate(int floats) {
          return runtime.allocateFloats(floats);
        }

        @Override
        public void copyToDevice(float[] values, DeviceBuffer buffer) {
          runtime.copyToDevice(values, buffer);
        }

        @Override
        public float[] copyToHost(long address, int count) {
          float[] values = new float[count];
          runtime.copyToHost(new DeviceBuffer(address, (long) count * Float.BYTES), values);
          return values;
        }

        @Override
        public void free(DeviceBuffer buffer) {
          runtime.free(buffer);
        }

        @Override
        public void synchronize() {
          runtime.synchronize();
        }
      };
    }

    /**
     * Returns a GPU's memory through its context alone, without kiln's kernels, so that a machine
     * whose only missing piece is kiln's fatbin still tests the libraries.
     */
    static Memory of(CudaContext context) {
      return new Memory() {
        @Override
        public DeviceBuffer allocate(int floats) {
          return context.allocator().allocate((long) floats * Float.BYTES);
        }

        @Override
        public void copyToDevice(float[] values, DeviceBuffer buffer) {
          context.copies().toDevice(values, 0, buffer, 0, values.length);
        }

        @Override
        public float[] copyToHost(long address, int count) {
          float[] values = new float[count];
          context.synchronize();
          context
              .copies()
              .toHost(new DeviceBuffer(address, (long) count * Float.BYTES), 0, values, 0, count);
          return values;
        }

        @Override
        public void free(DeviceBuffer buffer) {
          context.allocator().free(buffer);
        }

        @Override
        public void synchronize() {
          context.synchronize();
        }
      };
    }
  }

  /** The buffers of one test, addressed as the bindings take them and freed together. */
  static final class Buffers implements AutoCloseable {
    private final Memory memory;
    private final List<DeviceBuffer> owned = new ArrayList<>();

    Buffers(Memory memory) {
      this.memory = memory;
    }

    /** Returns the address of a new buffer holding {@code values}. */
    long of(float[] values) {
      DeviceBuffer buffer = memory.allocate(Math.max(1, values.length));
      owned.add(buffer);
      memory.copyToDevice(values, buffer);
      return buffer.address();
    }

    float[] read(long address, int count) {
      return memory.copyToHost(address, count);
    }

    @Override
    public void close() {
      // No call that is still running may see its buffers handed out again.
      memory.synchronize();
      for (DeviceBuffer buffer : owned) {
        memory.free(buffer);
      }
    }
  }

  /** A library that loaded, or the reason that it did not. */
  record Loaded<T extends VendorBinding>(T library, String skipReason) {

    /** Loads a library, or prints and keeps the reason it failed, prefixed with {@code owner}. */
    static <T extends VendorBinding> Loaded<T> attempt(
        String owner, String binding, Supplier<T> loader) {
      try {
        return new Loaded<>(loader.get(), null);
      } catch (LibraryLoadException e) {
        String reason = binding + " skipped: " + e.getMessage();
        System.out.println(owner + ": " + reason);
        return new Loaded<>(null, reason);
      }
    }

    /** Returns the library, or skips the calling test with the reason it did not load. */
    T orSkip() {
      assumeTrue(library != null, skipReason);
      return library;
    }
  }

  /** One binding opened for a whole test class: its memory and its two libraries. */
  record Opened(Memory memory, Loaded<VendorBlas> blasLoad, Loaded<VendorDnn> dnnLoad) {

    VendorBlas blas() {
      return blasLoad.orSkip();
    }

    VendorDnn dnn() {
      return dnnLoad.orSkip();
    }

    static Opened skipped(String owner, String reason) {
      System.out.println(owner + ": " + reason);
      return new Opened(null, new Loaded<>(null, reason), new Loaded<>(null, reason));
    }
  }
}
