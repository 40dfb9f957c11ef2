package dev.kiln.core.backend.cuda.libraries;

import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.backend.cpu.Conv2dGeometry;
import dev.kiln.core.backend.cpu.Pool2dGeometry;
import dev.kiln.core.backend.cuda.AllocatorStats;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs {@link CudnnDirect} against a fake {@code libcudnn.so.9} compiled from C. The fake keeps the
 * values set into each descriptor and computes convolution output sizes from them. It returns a
 * fixed algorithm list and records the arguments of every layer call. So the tests check the whole
 * call path from Java to C: descriptors, algorithm choice, workspaces, alpha and beta, and error
 * translation.
 */
class CudnnDirectFakeTest {

  /** Slots of the fake's {@code recorded} array, one per recorded value. */
  private static final int DESTROYED_HANDLE = 0;

  private static final int STREAM = 1;
  private static final int FILTER_FORMAT = 2;
  private static final int CONVOLUTION_MODE = 3;
  private static final int MATH_TYPE = 4;
  private static final int POOLING_MODE = 5;
  private static final int DROPOUT_PROBABILITY = 14;
  private static final int DROPOUT_STATES = 15;
  private static final int DROPOUT_STATE_BYTES = 16;
  private static final int DROPOUT_SEED = 17;
  private static final int DROPOUT_SETS = 18;
  private static final int RANK_CALLS = 19;
  private static final int FORWARD_ALGO = 20;
  private static final int FORWARD_WORKSPACE = 21;
  private static final int FORWARD_WORKSPACE_BYTES = 22;
  private static final int FORWARD_ALPHA = 23;
  private static final int FORWARD_BETA = 24;
  private static final int FORWARD_X = 25;
  private static final int FORWARD_W = 26;
  private static final int FORWARD_Y = 27;
  private static final int BACKWARD_DATA_BETA = 28;
  private static final int BACKWARD_FILTER_BETA = 31;
  private static final int BIAS_BETA = 33;
  private static final int BIAS_CHANNELS = 34;
  private static final int POOLING_OUTPUT_HEIGHT = 35;
  private static final int BATCHNORM_MODE = 36;
  private static final int BATCHNORM_FACTOR = 37;
  private static final int BATCHNORM_EPSILON = 38;
  private static final int BATCHNORM_CHANNELS = 39;
  private static final int DROPOUT_RESERVE_BYTES = 44;
  private static final int DROPOUT_ELEMENTS = 45;
  private static final int ACTIVATION_ELEMENTS = 47;
  private static final int ACTIVATION_MODE = 48;
  private static final int POOLING_NAN = 49;
  private static final int ACTIVATION_NAN = 50;

  /** {@code CUDNN_PROPAGATE_NAN}, from cuDNN's header. */
  private static final int CUDNN_PROPAGATE_NAN = 1;

  /**
   * The fake's C source. {@code cudnnGetCudartVersion} returns {@code FAKE_CUDART_VERSION}, which
   * is CUDA 13.0 unless a test defines it before the source.
   */
  static final String SOURCE =
      """
      #ifndef FAKE_CUDART_VERSION
      #define FAKE_CUDART_VERSION 13000
      #endif
      #include <stdint.h>
      #include <stddef.h>
      typedef struct { int dims[4]; int params[8]; } Desc;
      typedef struct {
        int algo; int status; float time; size_t memory; int determinism; int math; int r[3];
      } Perf;
      static Desc descs[4096];
      static int created = 0, live = 0;
      static double rec[64];
      double fake_recorded(int i) { return rec[i]; }
      int fake_live_descriptors(void) { return live; }
      static Desc* get(void* d) { return &descs[(intptr_t) d]; }
      static int make(void** d) { *d = (void*) (intptr_t) ++created; live++; return 0; }
      static int drop(void* d) { live--; return 0; }
      size_t cudnnGetVersion(void) { return 90100; }
      size_t cudnnGetCudartVersion(void) { return FAKE_CUDART_VERSION; }
      const char* cudnnGetErrorString(int s) {
        return s == 2000 ? "CUDNN_STATUS_BAD_PARAM (fake)" : "fake status";
      }
      int cudnnCreate(void** h) { *h = (void*) 0xD00D; return 0; }
      int cudnnDestroy(void* h) { rec[0] = (double) (intptr_t) h; return 0; }
      int cudnnSetStream(void* h, void* s) { rec[1] = (double) (intptr_t) s; return 0; }
      int cudnnCreateTensorDescriptor(void** d) { return make(d); }
      int cudnnCreateFilterDescriptor(void** d) { return make(d); }
      int cudnnCreateConvolutionDescriptor(void** d) { return make(d); }
      int cudnnCreatePoolingDescriptor(void** d) { return make(d); }
      int cudnnCreateActivationDescriptor(void** d) { return make(d); }
      int cudnnCreateDropoutDescriptor(void** d) { return make(d); }
      int cudnnDestroyTensorDescriptor(void* d) { return drop(d); }
      int cudnnDestroyFilterDescriptor(void* d) { return drop(d); }
      int cudnnDestroyConvolutionDescriptor(void* d) { return drop(d); }
      int cudnnDestroyPoolingDescriptor(void* d) { return drop(d); }
      int cudnnDestroyActivationDescriptor(void* d) { return drop(d); }
      int cudnnDestroyDropoutDescriptor(void* d) { return drop(d); }
      int cudnnSetTensorNdDescriptor(void* d, int type, int nb, const int* dims, const int* st) {
        if (type != 0 || nb != 4) return 2000;
        for (int i = 0; i < 4; i++) get(d)->dims[i] = dims[i];
        // Only packed NCHW strides are accepted, as kiln always sends them.
        if (st[3] != 1 || st[2] != dims[3] || st[1] != dims[2] * dims[3]
            || st[0] != dims[1] * dims[2] * dims[3]) return 2000;
        return 0;
      }
      int cudnnSetFilter4dDescriptor(void* d, int type, int format, int k, int c, int h, int w) {
        Desc* f = get(d); f->dims[0] = k; f->dims[1] = c; f->dims[2] = h; f->dims[3] = w;
        rec[2] = format; return 0;
      }
      int cudnnSetConvolution2dDescriptor(void* d, int ph, int pw, int sh, int sw, int dh, int dw,
          int mode, int type) {
        int* p = get(d)->params; p[0] = ph; p[1] = pw; p[2] = sh; p[3] = sw; p[4] = dh; p[5] = dw;
        rec[3] = mode; return 0;
      }
      int cudnnSetConvolutionMathType(void* d, int m) { rec[4] = m; return 0; }
      int cudnnGetConvolution2dForwardOutputDim(void* cd, void* xd, void* wd, int* n, int* c,
          int* h, int* w) {
        Desc* x = get(xd); Desc* f = get(wd); int* p = get(cd)->params;
        *n = x->dims[0]; *c = f->dims[0];
        *h = 1 + (x->dims[2] + 2 * p[0] - ((f->dims[2] - 1) * p[4] + 1)) / p[2];
        *w = 1 + (x->dims[3] + 2 * p[1] - ((f->dims[3] - 1) * p[5] + 1)) / p[3];
        return 0;
      }
      int cudnnSetPooling2dDescriptor(void* d, int mode, int nan, int wh, int ww, int pv, int ph,
          int sv, int sh) {
        rec[5] = mode; rec[6] = wh; rec[7] = ww; rec[8] = pv; rec[9] = ph; rec[10] = sv;
        rec[11] = sh; rec[49] = nan; return 0;
      }
      int cudnnSetActivationDescriptor(void* d, int mode, int nan, double coef) {
        rec[48] = mode; rec[50] = nan; rec[13] = coef; return 0;
      }
      int cudnnDropoutGetStatesSize(void* h, size_t* s) { *s = 4096; return 0; }
      int cudnnDropoutGetReserveSpaceSize(void* x, size_t* s) {
        *s = (size_t) get(x)->dims[3] / 8 + 16; return 0;
      }
      int cudnnSetDropoutDescriptor(void* d, void* h, float p, void* states, size_t bytes,
          unsigned long long seed) {
        rec[14] = p; rec[15] = (double) (intptr_t) states; rec[16] = (double) bytes;
        rec[17] = (double) seed; rec[18] += 1; return 0;
      }
      // Algorithm 1 needs 2 GiB, above kiln's default limit of 1 GiB, and algorithm 6 is listed
      // with CUDNN_TENSOR_OP_MATH (1) instead of CUDNN_FMA_MATH (3), so algorithm 2 is chosen.
      static int rank(int* ret, Perf* p) {
        Perf big = {1, 0, -1.f, (size_t) 1 << 31, 1, 3, {0}};
        Perf tensor = {6, 0, -1.f, 0, 1, 1, {0}};
        Perf small = {2, 0, -1.f, 2048, 1, 3, {0}};
        Perf none = {0, 0, -1.f, 0, 1, 3, {0}};
        p[0] = big; p[1] = tensor; p[2] = small; p[3] = none; *ret = 4; rec[19] += 1; return 0;
      }
      int cudnnGetConvolutionForwardAlgorithm_v7(void* h, void* a, void* b, void* c, void* d,
          int req, int* ret, Perf* p) { return rank(ret, p); }
      int cudnnGetConvolutionBackwardDataAlgorithm_v7(void* h, void* a, void* b, void* c, void* d,
          int req, int* ret, Perf* p) { return rank(ret, p); }
      int cudnnGetConvolutionBackwardFilterAlgorithm_v7(void* h, void* a, void* b, void* c,
          void* d, int req, int* ret, Perf* p) { return rank(ret, p); }
      static int size(int algo, size_t* s) { *s = algo == 2 ? 3000 : 0; return 0; }
      int cudnnGetConvolutionForwardWorkspaceSize(void* h, void* a, void* b, void* c, void* d,
          int algo, size_t* s) { return size(algo, s); }
      int cudnnGetConvolutionBackwardDataWorkspaceSize(void* h, void* a, void* b, void* c,
          void* d, int algo, size_t* s) { return size(algo, s); }
      int cudnnGetConvolutionBackwardFilterWorkspaceSize(void* h, void* a, void* b, void* c,
          void* d, int algo, size_t* s) { return size(algo, s); }
      int cudnnConvolutionForward(void* h, const float* alpha, void* xd, const void* x, void* wd,
          const void* w, void* cd, int algo, void* ws, size_t wsb, const float* beta, void* yd,
          void* y) {
        rec[20] = algo; rec[21] = (double) (intptr_t) ws; rec[22] = (double) wsb;
        rec[23] = *alpha; rec[24] = *beta; rec[25] = (double) (intptr_t) x;
        rec[26] = (double) (intptr_t) w; rec[27] = (double) (intptr_t) y; return 0;
      }
      int cudnnConvolutionBackwardData(void* h, const float* alpha, void* wd, const void* w,
          void* dyd, const void* dy, void* cd, int algo, void* ws, size_t wsb, const float* beta,
          void* dxd, void* dx) { rec[28] = *beta; return 0; }
      int cudnnConvolutionBackwardFilter(void* h, const float* alpha, void* xd, const void* x,
          void* dyd, const void* dy, void* cd, int algo, void* ws, size_t wsb, const float* beta,
          void* dwd, void* dw) { rec[31] = *beta; return 0; }
      int cudnnConvolutionBackwardBias(void* h, const float* alpha, void* dyd, const void* dy,
          const float* beta, void* dbd, void* db) {
        rec[33] = *beta; rec[34] = get(dbd)->dims[1]; return 0;
      }
      int cudnnPoolingForward(void* h, void* pd, const float* alpha, void* xd, const void* x,
          const float* beta, void* yd, void* y) { rec[35] = get(yd)->dims[2]; return 0; }
      int cudnnPoolingBackward(void* h, void* pd, const float* alpha, void* yd, const void* y,
          void* dyd, const void* dy, void* xd, const void* x, const float* beta, void* dxd,
          void* dx) { return 2000; }
      int cudnnDeriveBNTensorDescriptor(void* d, void* xd, int mode) {
        Desc* out = get(d); out->dims[0] = 1; out->dims[1] = get(xd)->dims[1];
        out->dims[2] = 1; out->dims[3] = 1; rec[36] = mode; return 0;
      }
      int cudnnBatchNormalizationForwardTraining(void* h, int mode, const float* alpha,
          const float* beta, void* xd, const void* x, void* yd, void* y, void* bnd,
          const void* scale, const void* bias, double factor, void* mean, void* var, double eps,
          void* saveMean, void* saveInv) {
        rec[37] = factor; rec[38] = eps; rec[39] = get(bnd)->dims[1]; return 0;
      }
      int cudnnBatchNormalizationForwardInference(void* h, int mode, const float* alpha,
          const float* beta, void* xd, const void* x, void* yd, void* y, void* bnd,
          const void* scale, const void* bias, const void* mean, const void* var, double eps) {
        rec[40] = eps; return 0;
      }
      int cudnnBatchNormalizationBackward(void* h, int mode, const float* ad, const float* bd,
          const float* ap, const float* bp, void* xd, const void* x, void* dyd, const void* dy,
          void* dxd, void* dx, void* bnd, const void* scale, void* dscale, void* dbias,
          double eps, const void* saveMean, const void* saveInv) {
        rec[41] = *ad; rec[42] = *bp; rec[43] = eps; return 0;
      }
      int cudnnDropoutForward(void* h, void* dd, void* xd, const void* x, void* yd, void* y,
          void* reserve, size_t bytes) {
        rec[44] = (double) bytes; rec[45] = get(xd)->dims[3]; return 0;
      }
      int cudnnDropoutBackward(void* h, void* dd, void* dyd, const void* dy, void* dxd,
          void* dx, void* reserve, size_t bytes) { rec[46] = (double) bytes; return 0; }
      int cudnnActivationForward(void* h, void* ad, const float* alpha, void* xd, const void* x,
          const float* beta, void* yd, void* y) { rec[47] = get(xd)->dims[3]; return 0; }
      int cudnnActivationBackward(void* h, void* ad, const float* alpha, void* yd, const void* y,
          void* dyd, const void* dy, void* xd, const void* x, const float* beta, void* dxd,
          void* dx) { return 0; }
      """;

  /** A 3x3 convolution with padding 1, stride 2 and dilation 1 over [2, 3, 9, 8] into 4 maps. */
  private static final Conv2dGeometry CONVOLUTION =
      new Conv2dGeometry(2, 3, 9, 8, 4, 3, 3, 2, 2, 1, 1, 1, 1);

  @TempDir Path root;

  private FakeNativeLibraries.CountingMemory memory;
  private VendorDevice device;
  private CudnnDirect dnn;
  private Arena arena;
  private MethodHandle recorded;
  private MethodHandle liveDescriptors;

  @BeforeEach
  void loadFake() throws Exception {
    Path folder = root.resolve("fake");
    Path library = FakeNativeLibraries.compile(folder, "libcudnn.so.9", SOURCE);
    FakeNativeLibraries.compile(
        folder, "libcublasLt.so.13", "int fake_cublas_lt(void) { return 13; }");
    LibraryDiscovery discovery =
        new LibraryDiscovery(Map.of(LibraryDiscovery.PATH_VARIABLE, folder.toString()), root, root);
    memory = new FakeNativeLibraries.CountingMemory();
    device = FakeNativeLibraries.device(memory);
    dnn = CudnnDirect.load(discovery, device);
    arena = Arena.ofShared();
    SymbolLookup lookup = SymbolLookup.libraryLookup(library, arena);
    Linker linker = Linker.nativeLinker();
    recorded =
        linker.downcallHandle(
            lookup.find("fake_recorded").orElseThrow(),
            FunctionDescriptor.of(JAVA_DOUBLE, JAVA_INT));
    liveDescriptors =
        linker.downcallHandle(
            lookup.find("fake_live_descriptors").orElseThrow(), FunctionDescriptor.of(JAVA_INT));
  }

  @AfterEach
  void closeLookup() {
    arena.close();
  }

  private double recorded(int slot) throws Throwable {
    return (double) recorded.invokeExact(slot);
  }

  private int liveDescriptors() throws Throwable {
    return (int) liveDescriptors.invokeExact();
  }

  private AllocatorStats allocator() {
    return device.allocator().stats();
  }

  @Test
  void loadBindsStreamAndReadsVersion() throws Throwable {
    assertEquals(0x5000, recorded(STREAM), "stream handle passed to cudnnSetStream");
    assertEquals(90100, dnn.version());
    assertTrue(
        dnn.description().startsWith("cuDNN 9.1.0 through java.lang.foreign"), dnn.description());
    assertTrue(
        dnn.description().endsWith(", with " + root.resolve("fake/libcublasLt.so.13")),
        dnn.description());
    assertEquals("8.9.7", CudnnDirect.versionText(8907), "cuDNN 8 numbering");
    assertEquals("9.10.2", CudnnDirect.versionText(91002), "cuDNN 9 numbering");
  }

  @Test
  void forwardChoosesFittingAlgorithmAndWorkspace() throws Throwable {
    dnn.convolutionForward(CONVOLUTION, 0xA000, 0xB000, 0xC000);

    assertEquals(
        2, recorded(FORWARD_ALGO), "algorithm 1 is over the limit and 6 is not CUDNN_FMA_MATH");
    assertEquals(3000, recorded(FORWARD_WORKSPACE_BYTES), "exact workspace size");
    assertTrue(recorded(FORWARD_WORKSPACE) >= 0x100000, "workspace from kiln's allocator");
    assertEquals(1, allocator().allocations(), "one workspace allocation");
    assertEquals(0, allocator().bytesInUse(), "workspace returned after the call");
    assertEquals(1, recorded(FORWARD_ALPHA));
    assertEquals(0, recorded(FORWARD_BETA));
    assertEquals(0xA000, recorded(FORWARD_X));
    assertEquals(0xB000, recorded(FORWARD_W));
    assertEquals(0xC000, recorded(FORWARD_Y));
    assertEquals(CudnnDescriptors.CROSS_CORRELATION, recorded(CONVOLUTION_MODE));
    assertEquals(CudnnDescriptors.FMA_MATH, recorded(MATH_TYPE));
    assertEquals(CudnnDescriptors.TENSOR_NCHW, recorded(FILTER_FORMAT));
    assertEquals(0, liveDescriptors(), "every descriptor destroyed after the call");
  }

  @Test
  void algorithmIsChosenOncePerShapeAndDirection() throws Throwable {
    dnn.convolutionForward(CONVOLUTION, 0xA000, 0xB000, 0xC000);
    dnn.convolutionForward(CONVOLUTION, 0xA000, 0xB000, 0xC000);
    assertEquals(1, recorded(RANK_CALLS), "second forward uses the cached choice");

    dnn.convolutionBackwardData(CONVOLUTION, 0xB000, 0xC000, 0xA000, false);
    assertEquals(2, recorded(RANK_CALLS), "backward data chooses its own algorithm");
  }

  @Test
  void backwardAccumulateSetsBeta() throws Throwable {
    dnn.convolutionBackwardData(CONVOLUTION, 0xB000, 0xC000, 0xA000, true);
    dnn.convolutionBackwardFilter(CONVOLUTION, 0xA000, 0xC000, 0xB000, false);
    dnn.convolutionBackwardBias(CONVOLUTION, 0xC000, 0xD000, true);

    assertEquals(1, recorded(BACKWARD_DATA_BETA), "accumulate adds into dx");
    assertEquals(0, recorded(BACKWARD_FILTER_BETA), "no accumulate overwrites dw");
    assertEquals(1, recorded(BIAS_BETA));
    assertEquals(4, recorded(BIAS_CHANNELS), "bias descriptor [1, outChannels, 1, 1]");
    assertEquals(0, liveDescriptors());
  }

  @Test
  void poolingSetsWindowInCudnnOrder() throws Throwable {
    Pool2dGeometry g = new Pool2dGeometry(2, 3, 9, 8, 3, 2, 2, 1, 1, 1);

    dnn.poolingForward(VendorDnn.PoolingMode.MAX, g, 0xA000, 0xB000);

    assertEquals(VendorDnn.PoolingMode.MAX.cudnnValue, recorded(POOLING_MODE));
    double[] window = {3, 2, 1, 1, 2, 1};
    for (int i = 0; i < window.length; i++) {
      assertEquals(window[i], recorded(6 + i), "window, padding, stride argument " + i);
    }
    assertEquals(g.outHeight(), recorded(POOLING_OUTPUT_HEIGHT));
    // kiln's own max pooling and PyTorch's let a NaN through, so cuDNN must too.
    assertEquals(CUDNN_PROPAGATE_NAN, recorded(POOLING_NAN), "NaN propagation");
  }

  @Test
  void failedStatusNamesCallAndLibraryString() throws Throwable {
    Pool2dGeometry g = new Pool2dGeometry(1, 1, 4, 4, 2, 2, 2, 2, 0, 0);

    VendorException e =
        assertThrows(
            VendorException.class,
            () ->
                dnn.poolingBackward(VendorDnn.PoolingMode.AVERAGE_INCLUDE_PADDING, g, 1, 2, 3, 4));

    assertEquals("cudnnPoolingBackward", e.call());
    assertEquals(2000, e.status());
    assertTrue(e.getMessage().contains("CUDNN_STATUS_BAD_PARAM (fake)"), e.getMessage());
    assertEquals(0, liveDescriptors(), "descriptors destroyed after a failure too");
  }

  @Test
  void batchNormPassesMomentumEpsilonAndChannels() throws Throwable {
    Nchw shape = new Nchw(4, 16, 5, 5);

    dnn.batchNormForwardTraining(shape, 1, 2, 3, 4, 0.1, 1e-5, 5, 6, 7, 8);

    assertEquals(CudnnDirectLayers.BATCHNORM_SPATIAL, recorded(BATCHNORM_MODE));
    assertEquals(0.1, recorded(BATCHNORM_FACTOR));
    assertEquals(1e-5, recorded(BATCHNORM_EPSILON));
    assertEquals(16, recorded(BATCHNORM_CHANNELS), "derived [1, C, 1, 1] descriptor");
  }

  @Test
  void dropoutStateIsCreatedOncePerProbabilityAndSeed() throws Throwable {
    long reserve = dnn.dropoutReserveBytes(800);

    dnn.dropoutForward(0.25f, 42, 800, 1, 2, 3, reserve);
    dnn.dropoutBackward(0.25f, 42, 800, 4, 5, 3, reserve);

    assertEquals(116, reserve, "fake reserve: elements / 8 + 16");
    assertEquals(1, recorded(DROPOUT_SETS), "one cudnnSetDropoutDescriptor");
    assertEquals(0.25, recorded(DROPOUT_PROBABILITY));
    assertEquals(42, recorded(DROPOUT_SEED));
    assertEquals(4096, recorded(DROPOUT_STATE_BYTES));
    assertTrue(recorded(DROPOUT_STATES) >= 0x100000, "states from kiln's allocator");
    assertEquals(116, recorded(DROPOUT_RESERVE_BYTES));
    assertEquals(800, recorded(DROPOUT_ELEMENTS), "flat [1, 1, 1, 800] tensor");
    assertEquals(4096, allocator().bytesInUse(), "states stay allocated until close");

    dnn.close();
    assertEquals(0, allocator().bytesInUse(), "close returns the states");
    assertEquals(0xD00D, recorded(DESTROYED_HANDLE));
  }

  @Test
  void activationPassesModeAndElements() throws Throwable {
    dnn.activationForward(VendorDnn.ActivationMode.RELU, 1000, 1, 2);

    assertEquals(VendorDnn.ActivationMode.RELU.cudnnValue, recorded(ACTIVATION_MODE));
    assertEquals(CUDNN_PROPAGATE_NAN, recorded(ACTIVATION_NAN), "NaN propagation");
    assertEquals(1000, recorded(ACTIVATION_ELEMENTS));
    assertEquals(0, liveDescriptors());
  }
}
