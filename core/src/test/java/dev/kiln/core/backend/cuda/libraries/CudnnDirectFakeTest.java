package dev.kiln.core.backend.cuda.libraries;

import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
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
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs {@link CudnnDirect} against a fake {@code libcudnn.so.9} compiled from C. The fake keeps the
 * kind and values of each descriptor and computes convolution output sizes from them. It returns a
 * fixed algorithm list and records every argument of every compute call. So the tests check the
 * whole call path from Java to C: descriptors, algorithm choice, workspaces, alpha and beta, which
 * buffer and descriptor goes into which parameter, and error translation.
 */
class CudnnDirectFakeTest {

  /** Slots of the fake's {@code rec} array that the setup functions fill, one per value. */
  private static final int DESTROYED_HANDLE = 0;

  private static final int STREAM = 1;
  private static final int FILTER_FORMAT = 2;
  private static final int CONVOLUTION_MODE = 3;
  private static final int MATH_TYPE = 4;
  private static final int POOLING_MODE = 5;
  private static final int DROPOUT_DESCRIPTOR = 12;
  private static final int DROPOUT_PROBABILITY = 14;
  private static final int DROPOUT_STATES = 15;
  private static final int DROPOUT_STATE_BYTES = 16;
  private static final int DROPOUT_SEED = 17;
  private static final int DROPOUT_SETS = 18;
  private static final int RANK_CALLS = 19;
  private static final int BATCHNORM_MODE = 20;
  private static final int ACTIVATION_MODE = 21;
  private static final int POOLING_NAN = 22;
  private static final int ACTIVATION_NAN = 23;

  /**
   * A compute function of the fake with its parameter names in the order of its prototype in cuDNN
   * 9.6's {@code cudnn_cnn.h} or {@code cudnn_ops.h}. The fake records argument i in slot {@code
   * base + i}: a pointer or descriptor as its address, alpha and beta as the float they point to,
   * and any other argument as its value.
   */
  private record FakeCall(String function, int base, List<String> parameters) {

    FakeCall(String function, int base, String... parameters) {
      this(function, base, List.of(parameters));
    }

    int slot(String parameter) {
      int index = parameters.indexOf(parameter);
      if (index < 0) {
        throw new IllegalArgumentException(function + " has no parameter named " + parameter);
      }
      return base + index;
    }
  }

  private static final FakeCall CONVOLUTION_FORWARD =
      new FakeCall(
          "cudnnConvolutionForward",
          100,
          "handle",
          "alpha",
          "xDesc",
          "x",
          "wDesc",
          "w",
          "convDesc",
          "algo",
          "workSpace",
          "workSpaceSizeInBytes",
          "beta",
          "yDesc",
          "y");

  private static final FakeCall CONVOLUTION_BACKWARD_DATA =
      new FakeCall(
          "cudnnConvolutionBackwardData",
          120,
          "handle",
          "alpha",
          "wDesc",
          "w",
          "dyDesc",
          "dy",
          "convDesc",
          "algo",
          "workSpace",
          "workSpaceSizeInBytes",
          "beta",
          "dxDesc",
          "dx");

  private static final FakeCall CONVOLUTION_BACKWARD_FILTER =
      new FakeCall(
          "cudnnConvolutionBackwardFilter",
          140,
          "handle",
          "alpha",
          "xDesc",
          "x",
          "dyDesc",
          "dy",
          "convDesc",
          "algo",
          "workSpace",
          "workSpaceSizeInBytes",
          "beta",
          "dwDesc",
          "dw");

  private static final FakeCall CONVOLUTION_BACKWARD_BIAS =
      new FakeCall(
          "cudnnConvolutionBackwardBias",
          160,
          "handle",
          "alpha",
          "dyDesc",
          "dy",
          "beta",
          "dbDesc",
          "db");

  private static final FakeCall POOLING_FORWARD =
      new FakeCall(
          "cudnnPoolingForward",
          180,
          "handle",
          "poolingDesc",
          "alpha",
          "xDesc",
          "x",
          "beta",
          "yDesc",
          "y");

  private static final FakeCall POOLING_BACKWARD =
      new FakeCall(
          "cudnnPoolingBackward",
          200,
          "handle",
          "poolingDesc",
          "alpha",
          "yDesc",
          "y",
          "dyDesc",
          "dy",
          "xDesc",
          "x",
          "beta",
          "dxDesc",
          "dx");

  private static final FakeCall BATCHNORM_FORWARD_TRAINING =
      new FakeCall(
          "cudnnBatchNormalizationForwardTraining",
          220,
          "handle",
          "mode",
          "alpha",
          "beta",
          "xDesc",
          "x",
          "yDesc",
          "y",
          "bnScaleBiasMeanVarDesc",
          "bnScale",
          "bnBias",
          "exponentialAverageFactor",
          "resultRunningMean",
          "resultRunningVariance",
          "epsilon",
          "resultSaveMean",
          "resultSaveInvVariance");

  private static final FakeCall BATCHNORM_FORWARD_INFERENCE =
      new FakeCall(
          "cudnnBatchNormalizationForwardInference",
          240,
          "handle",
          "mode",
          "alpha",
          "beta",
          "xDesc",
          "x",
          "yDesc",
          "y",
          "bnScaleBiasMeanVarDesc",
          "bnScale",
          "bnBias",
          "estimatedMean",
          "estimatedVariance",
          "epsilon");

  private static final FakeCall BATCHNORM_BACKWARD =
      new FakeCall(
          "cudnnBatchNormalizationBackward",
          260,
          "handle",
          "mode",
          "alphaDataDiff",
          "betaDataDiff",
          "alphaParamDiff",
          "betaParamDiff",
          "xDesc",
          "x",
          "dyDesc",
          "dy",
          "dxDesc",
          "dx",
          "dBnScaleBiasDesc",
          "bnScale",
          "dBnScaleResult",
          "dBnBiasResult",
          "epsilon",
          "savedMean",
          "savedInvVariance");

  private static final FakeCall DROPOUT_FORWARD =
      new FakeCall(
          "cudnnDropoutForward",
          280,
          "handle",
          "dropoutDesc",
          "xdesc",
          "x",
          "ydesc",
          "y",
          "reserveSpace",
          "reserveSpaceSizeInBytes");

  private static final FakeCall DROPOUT_BACKWARD =
      new FakeCall(
          "cudnnDropoutBackward",
          300,
          "handle",
          "dropoutDesc",
          "dydesc",
          "dy",
          "dxdesc",
          "dx",
          "reserveSpace",
          "reserveSpaceSizeInBytes");

  private static final FakeCall ACTIVATION_FORWARD =
      new FakeCall(
          "cudnnActivationForward",
          320,
          "handle",
          "activationDesc",
          "alpha",
          "xDesc",
          "x",
          "beta",
          "yDesc",
          "y");

  private static final FakeCall ACTIVATION_BACKWARD =
      new FakeCall(
          "cudnnActivationBackward",
          340,
          "handle",
          "activationDesc",
          "alpha",
          "yDesc",
          "y",
          "dyDesc",
          "dy",
          "xDesc",
          "x",
          "beta",
          "dxDesc",
          "dx");

  /** The fake's descriptor kinds. Each ordinal is the value of the fake's C enum. */
  private enum DescriptorKind {
    NONE,
    TENSOR,
    FILTER,
    CONVOLUTION,
    POOLING,
    ACTIVATION,
    DROPOUT
  }

  /** The handle that the fake's {@code cudnnCreate} returns. */
  private static final long HANDLE = 0xD00D;

  /** {@code CUDNN_PROPAGATE_NAN}, from cuDNN's header. */
  private static final int CUDNN_PROPAGATE_NAN = 1;

  /** {@code CUDNN_BATCHNORM_SPATIAL}, from cuDNN's header. */
  private static final int CUDNN_BATCHNORM_SPATIAL = 1;

  /**
   * The fake's C source. {@code cudnnGetCudartVersion} returns {@code FAKE_CUDART_VERSION}, which
   * is CUDA 13.0 unless a test defines it before the source. The compute functions keep cuDNN 9.6's
   * parameter names and order, with {@code void*} for handles and descriptors and {@code int} for
   * enums.
   */
  static final String SOURCE =
      """
      #ifndef FAKE_CUDART_VERSION
      #define FAKE_CUDART_VERSION 13000
      #endif
      #include <stdint.h>
      #include <stddef.h>
      enum { TENSOR = 1, FILTER, CONVOLUTION, POOLING, ACTIVATION, DROPOUT };
      typedef struct { int kind; int dims[4]; int params[8]; } Desc;
      typedef struct {
        int algo; int status; float time; size_t memory; int determinism; int math; int r[3];
      } Perf;
      static Desc descs[4096];
      static int created = 0, live = 0;
      static double rec[360];
      double fake_recorded(int i) { return rec[i]; }
      int fake_live_descriptors(void) { return live; }
      // Destroying a descriptor keeps its fields, so a test reads them after the call.
      int fake_descriptor_kind(int d) { return descs[d].kind; }
      int fake_descriptor_dim(int d, int i) { return descs[d].dims[i]; }
      static Desc* get(void* d) { return &descs[(intptr_t) d]; }
      static int make(void** d, int kind) {
        *d = (void*) (intptr_t) ++created; descs[created].kind = kind; live++; return 0;
      }
      static int drop(void* d) { live--; return 0; }
      // P records a pointer or descriptor as its address, F the float that alpha or beta points to.
      #define P(p) ((double) (intptr_t) (p))
      #define F(p) ((double) *(const float*) (p))
      // Records the listed values, one per parameter in the prototype's order, from slot base on.
      #define KEEP(base, ...) do { \\
          double values[] = {__VA_ARGS__}; \\
          for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) rec[base + i] = values[i]; \\
        } while (0)
      size_t cudnnGetVersion(void) { return 90100; }
      size_t cudnnGetCudartVersion(void) { return FAKE_CUDART_VERSION; }
      const char* cudnnGetErrorString(int s) {
        return s == 2000 ? "CUDNN_STATUS_BAD_PARAM (fake)" : "fake status";
      }
      int cudnnCreate(void** h) { *h = (void*) 0xD00D; return 0; }
      int cudnnDestroy(void* h) { rec[0] = (double) (intptr_t) h; return 0; }
      int cudnnSetStream(void* h, void* s) { rec[1] = (double) (intptr_t) s; return 0; }
      int cudnnCreateTensorDescriptor(void** d) { return make(d, TENSOR); }
      int cudnnCreateFilterDescriptor(void** d) { return make(d, FILTER); }
      int cudnnCreateConvolutionDescriptor(void** d) { return make(d, CONVOLUTION); }
      int cudnnCreatePoolingDescriptor(void** d) { return make(d, POOLING); }
      int cudnnCreateActivationDescriptor(void** d) { return make(d, ACTIVATION); }
      int cudnnCreateDropoutDescriptor(void** d) { return make(d, DROPOUT); }
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
        rec[11] = sh; rec[22] = nan; return 0;
      }
      int cudnnSetActivationDescriptor(void* d, int mode, int nan, double coef) {
        rec[21] = mode; rec[23] = nan; rec[13] = coef; return 0;
      }
      int cudnnDropoutGetStatesSize(void* h, size_t* s) { *s = 4096; return 0; }
      int cudnnDropoutGetReserveSpaceSize(void* x, size_t* s) {
        *s = (size_t) get(x)->dims[3] / 8 + 16; return 0;
      }
      int cudnnSetDropoutDescriptor(void* d, void* h, float p, void* states, size_t bytes,
          unsigned long long seed) {
        rec[12] = P(d); rec[14] = p; rec[15] = P(states); rec[16] = (double) bytes;
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
      int cudnnConvolutionForward(void* handle, const void* alpha, void* xDesc, const void* x,
          void* wDesc, const void* w, void* convDesc, int algo, void* workSpace,
          size_t workSpaceSizeInBytes, const void* beta, void* yDesc, void* y) {
        KEEP(100, P(handle), F(alpha), P(xDesc), P(x), P(wDesc), P(w), P(convDesc), algo,
            P(workSpace), (double) workSpaceSizeInBytes, F(beta), P(yDesc), P(y));
        return 0;
      }
      int cudnnConvolutionBackwardData(void* handle, const void* alpha, void* wDesc,
          const void* w, void* dyDesc, const void* dy, void* convDesc, int algo, void* workSpace,
          size_t workSpaceSizeInBytes, const void* beta, void* dxDesc, void* dx) {
        KEEP(120, P(handle), F(alpha), P(wDesc), P(w), P(dyDesc), P(dy), P(convDesc), algo,
            P(workSpace), (double) workSpaceSizeInBytes, F(beta), P(dxDesc), P(dx));
        return 0;
      }
      int cudnnConvolutionBackwardFilter(void* handle, const void* alpha, void* xDesc,
          const void* x, void* dyDesc, const void* dy, void* convDesc, int algo, void* workSpace,
          size_t workSpaceSizeInBytes, const void* beta, void* dwDesc, void* dw) {
        KEEP(140, P(handle), F(alpha), P(xDesc), P(x), P(dyDesc), P(dy), P(convDesc), algo,
            P(workSpace), (double) workSpaceSizeInBytes, F(beta), P(dwDesc), P(dw));
        return 0;
      }
      int cudnnConvolutionBackwardBias(void* handle, const void* alpha, void* dyDesc,
          const void* dy, const void* beta, void* dbDesc, void* db) {
        KEEP(160, P(handle), F(alpha), P(dyDesc), P(dy), F(beta), P(dbDesc), P(db));
        return 0;
      }
      int cudnnPoolingForward(void* handle, void* poolingDesc, const void* alpha, void* xDesc,
          const void* x, const void* beta, void* yDesc, void* y) {
        KEEP(180, P(handle), P(poolingDesc), F(alpha), P(xDesc), P(x), F(beta), P(yDesc), P(y));
        return 0;
      }
      // Returns CUDNN_STATUS_BAD_PARAM (2000) for a NULL dx, so that a test can make it fail.
      int cudnnPoolingBackward(void* handle, void* poolingDesc, const void* alpha, void* yDesc,
          const void* y, void* dyDesc, const void* dy, void* xDesc, const void* x,
          const void* beta, void* dxDesc, void* dx) {
        KEEP(200, P(handle), P(poolingDesc), F(alpha), P(yDesc), P(y), P(dyDesc), P(dy),
            P(xDesc), P(x), F(beta), P(dxDesc), P(dx));
        return dx == NULL ? 2000 : 0;
      }
      int cudnnDeriveBNTensorDescriptor(void* d, void* xd, int mode) {
        Desc* out = get(d); out->dims[0] = 1; out->dims[1] = get(xd)->dims[1];
        out->dims[2] = 1; out->dims[3] = 1; rec[20] = mode; return 0;
      }
      int cudnnBatchNormalizationForwardTraining(void* handle, int mode, const void* alpha,
          const void* beta, void* xDesc, const void* x, void* yDesc, void* y,
          void* bnScaleBiasMeanVarDesc, const void* bnScale, const void* bnBias,
          double exponentialAverageFactor, void* resultRunningMean, void* resultRunningVariance,
          double epsilon, void* resultSaveMean, void* resultSaveInvVariance) {
        KEEP(220, P(handle), mode, F(alpha), F(beta), P(xDesc), P(x), P(yDesc), P(y),
            P(bnScaleBiasMeanVarDesc), P(bnScale), P(bnBias), exponentialAverageFactor,
            P(resultRunningMean), P(resultRunningVariance), epsilon, P(resultSaveMean),
            P(resultSaveInvVariance));
        return 0;
      }
      int cudnnBatchNormalizationForwardInference(void* handle, int mode, const void* alpha,
          const void* beta, void* xDesc, const void* x, void* yDesc, void* y,
          void* bnScaleBiasMeanVarDesc, const void* bnScale, const void* bnBias,
          const void* estimatedMean, const void* estimatedVariance, double epsilon) {
        KEEP(240, P(handle), mode, F(alpha), F(beta), P(xDesc), P(x), P(yDesc), P(y),
            P(bnScaleBiasMeanVarDesc), P(bnScale), P(bnBias), P(estimatedMean),
            P(estimatedVariance), epsilon);
        return 0;
      }
      int cudnnBatchNormalizationBackward(void* handle, int mode, const void* alphaDataDiff,
          const void* betaDataDiff, const void* alphaParamDiff, const void* betaParamDiff,
          void* xDesc, const void* x, void* dyDesc, const void* dy, void* dxDesc, void* dx,
          void* dBnScaleBiasDesc, const void* bnScale, void* dBnScaleResult,
          void* dBnBiasResult, double epsilon, const void* savedMean,
          const void* savedInvVariance) {
        KEEP(260, P(handle), mode, F(alphaDataDiff), F(betaDataDiff), F(alphaParamDiff),
            F(betaParamDiff), P(xDesc), P(x), P(dyDesc), P(dy), P(dxDesc), P(dx),
            P(dBnScaleBiasDesc), P(bnScale), P(dBnScaleResult), P(dBnBiasResult), epsilon,
            P(savedMean), P(savedInvVariance));
        return 0;
      }
      int cudnnDropoutForward(void* handle, void* dropoutDesc, void* xdesc, const void* x,
          void* ydesc, void* y, void* reserveSpace, size_t reserveSpaceSizeInBytes) {
        KEEP(280, P(handle), P(dropoutDesc), P(xdesc), P(x), P(ydesc), P(y), P(reserveSpace),
            (double) reserveSpaceSizeInBytes);
        return 0;
      }
      int cudnnDropoutBackward(void* handle, void* dropoutDesc, void* dydesc, const void* dy,
          void* dxdesc, void* dx, void* reserveSpace, size_t reserveSpaceSizeInBytes) {
        KEEP(300, P(handle), P(dropoutDesc), P(dydesc), P(dy), P(dxdesc), P(dx),
            P(reserveSpace), (double) reserveSpaceSizeInBytes);
        return 0;
      }
      int cudnnActivationForward(void* handle, void* activationDesc, const void* alpha,
          void* xDesc, const void* x, const void* beta, void* yDesc, void* y) {
        KEEP(320, P(handle), P(activationDesc), F(alpha), P(xDesc), P(x), F(beta), P(yDesc),
            P(y));
        return 0;
      }
      int cudnnActivationBackward(void* handle, void* activationDesc, const void* alpha,
          void* yDesc, const void* y, void* dyDesc, const void* dy, void* xDesc, const void* x,
          const void* beta, void* dxDesc, void* dx) {
        KEEP(340, P(handle), P(activationDesc), F(alpha), P(yDesc), P(y), P(dyDesc), P(dy),
            P(xDesc), P(x), F(beta), P(dxDesc), P(dx));
        return 0;
      }
      """;

  /** A 3x3 convolution with padding 1, stride 2 and dilation 1 over [2, 3, 9, 8] into 4 maps. */
  private static final Conv2dGeometry CONVOLUTION =
      new Conv2dGeometry(2, 3, 9, 8, 4, 3, 3, 2, 2, 1, 1, 1, 1);

  /**
   * The shapes of {@link #CONVOLUTION}. The output height is {@code 1 + (9 + 2 - 3) / 2 = 5} and
   * the width {@code 1 + (8 + 2 - 3) / 2 = 4}.
   */
  private static final Nchw CONVOLUTION_INPUT = new Nchw(2, 3, 9, 8);

  private static final Nchw CONVOLUTION_FILTER = new Nchw(4, 3, 3, 3);
  private static final Nchw CONVOLUTION_OUTPUT = new Nchw(2, 4, 5, 4);
  private static final Nchw CONVOLUTION_BIAS = new Nchw(1, 4, 1, 1);

  /** A 3x2 window with stride 2x1 and padding 1x1 over [2, 3, 9, 8]. */
  private static final Pool2dGeometry POOLING = new Pool2dGeometry(2, 3, 9, 8, 3, 2, 2, 1, 1, 1);

  /**
   * The shapes of {@link #POOLING}. The output height is {@code 1 + (9 + 2 - 3) / 2 = 5} and the
   * width {@code 1 + (8 + 2 - 2) / 1 = 9}.
   */
  private static final Nchw POOLING_INPUT = new Nchw(2, 3, 9, 8);

  private static final Nchw POOLING_OUTPUT = new Nchw(2, 3, 5, 9);

  @TempDir Path root;

  private FakeNativeLibraries.CountingMemory memory;
  private VendorDevice device;
  private CudnnDirect dnn;
  private Arena arena;
  private MethodHandle recorded;
  private MethodHandle liveDescriptors;
  private MethodHandle descriptorKind;
  private MethodHandle descriptorDim;

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
    descriptorKind =
        linker.downcallHandle(
            lookup.find("fake_descriptor_kind").orElseThrow(),
            FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    descriptorDim =
        linker.downcallHandle(
            lookup.find("fake_descriptor_dim").orElseThrow(),
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
  }

  @AfterEach
  void closeLookup() {
    arena.close();
  }

  private double recorded(int slot) throws Throwable {
    return (double) recorded.invokeExact(slot);
  }

  private double recorded(FakeCall call, String parameter) throws Throwable {
    return recorded(call.slot(parameter));
  }

  private int liveDescriptors() throws Throwable {
    return (int) liveDescriptors.invokeExact();
  }

  private AllocatorStats allocator() {
    return device.allocator().stats();
  }

  /**
   * Asserts that the argument in {@code parameter}'s slot of the last call was {@code expected}.
   */
  private void assertArgument(FakeCall call, String parameter, double expected) throws Throwable {
    assertEquals(expected, recorded(call, parameter), call.function() + " argument " + parameter);
  }

  /** Asserts that each buffer's address arrived in the slot of the parameter it is mapped to. */
  private void assertBuffers(FakeCall call, Map<String, Long> addresses) throws Throwable {
    for (Map.Entry<String, Long> buffer : addresses.entrySet()) {
      String parameter = buffer.getKey();
      long expected = buffer.getValue();
      long actual = (long) recorded(call, parameter);
      assertEquals(
          expected,
          actual,
          call.function()
              + " argument "
              + parameter
              + ": expected address 0x"
              + Long.toHexString(expected)
              + ", got 0x"
              + Long.toHexString(actual));
    }
  }

  /** Asserts that the last call got kiln's handle, alpha 1 and the given beta. */
  private void assertHandleAlphaBeta(FakeCall call, double beta) throws Throwable {
    assertArgument(call, "handle", HANDLE);
    assertArgument(call, "alpha", 1);
    assertArgument(call, "beta", beta);
  }

  /** Asserts that {@code parameter} of the last call was a descriptor of this kind. */
  private void assertDescriptor(FakeCall call, String parameter, DescriptorKind kind)
      throws Throwable {
    int descriptor = (int) recorded(call, parameter);
    DescriptorKind actual = DescriptorKind.values()[(int) descriptorKind.invokeExact(descriptor)];
    assertEquals(kind, actual, call.function() + " argument " + parameter + ": descriptor kind");
  }

  /**
   * Asserts that {@code parameter} of the last call was a tensor or filter descriptor of {@code
   * shape}.
   */
  private void assertShape(FakeCall call, String parameter, DescriptorKind kind, Nchw shape)
      throws Throwable {
    assertDescriptor(call, parameter, kind);
    int descriptor = (int) recorded(call, parameter);
    int[] dims = new int[4];
    for (int i = 0; i < dims.length; i++) {
      dims[i] = (int) descriptorDim.invokeExact(descriptor, i);
    }
    assertArrayEquals(
        shape.dims(), dims, call.function() + " argument " + parameter + ": descriptor shape");
  }

  private void assertTensor(FakeCall call, String parameter, Nchw shape) throws Throwable {
    assertShape(call, parameter, DescriptorKind.TENSOR, shape);
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
        2,
        recorded(CONVOLUTION_FORWARD, "algo"),
        "algorithm 1 is over the limit and 6 is not CUDNN_FMA_MATH");
    assertEquals(
        3000, recorded(CONVOLUTION_FORWARD, "workSpaceSizeInBytes"), "exact workspace size");
    assertTrue(
        recorded(CONVOLUTION_FORWARD, "workSpace") >= 0x100000, "workspace from kiln's allocator");
    assertEquals(1, allocator().allocations(), "one workspace allocation");
    assertEquals(0, allocator().bytesInUse(), "workspace returned after the call");
    assertEquals(
        List.of(
            FakeNativeLibraries.CountingMemory.ALLOCATE,
            FakeNativeLibraries.CountingMemory.MAKE_CURRENT),
        memory.lastEvents(),
        "context made current again between the workspace allocation and the call");
    assertEquals(CudnnDescriptors.CROSS_CORRELATION, recorded(CONVOLUTION_MODE));
    assertEquals(CudnnDescriptors.FMA_MATH, recorded(MATH_TYPE));
    assertEquals(CudnnDescriptors.TENSOR_NCHW, recorded(FILTER_FORMAT));
    assertEquals(0, liveDescriptors(), "every descriptor destroyed after the call");
  }

  @Test
  void convolutionForwardArgumentsFollowHeader() throws Throwable {
    dnn.convolutionForward(CONVOLUTION, 0xA000, 0xB000, 0xC000);

    FakeCall call = CONVOLUTION_FORWARD;
    assertHandleAlphaBeta(call, 0);
    assertBuffers(call, Map.of("x", 0xA000L, "w", 0xB000L, "y", 0xC000L));
    assertTensor(call, "xDesc", CONVOLUTION_INPUT);
    assertShape(call, "wDesc", DescriptorKind.FILTER, CONVOLUTION_FILTER);
    assertDescriptor(call, "convDesc", DescriptorKind.CONVOLUTION);
    assertTensor(call, "yDesc", CONVOLUTION_OUTPUT);
  }

  @Test
  void convolutionBackwardDataArgumentsFollowHeader() throws Throwable {
    dnn.convolutionBackwardData(CONVOLUTION, 0xA000, 0xB000, 0xC000, false);

    FakeCall call = CONVOLUTION_BACKWARD_DATA;
    assertHandleAlphaBeta(call, 0);
    assertBuffers(call, Map.of("w", 0xA000L, "dy", 0xB000L, "dx", 0xC000L));
    assertShape(call, "wDesc", DescriptorKind.FILTER, CONVOLUTION_FILTER);
    assertTensor(call, "dyDesc", CONVOLUTION_OUTPUT);
    assertDescriptor(call, "convDesc", DescriptorKind.CONVOLUTION);
    assertTensor(call, "dxDesc", CONVOLUTION_INPUT);
    assertArgument(call, "algo", 2);
    assertTrue(recorded(call, "workSpace") >= 0x100000, "workspace from kiln's allocator");
    assertArgument(call, "workSpaceSizeInBytes", 3000);
  }

  @Test
  void convolutionBackwardFilterArgumentsFollowHeader() throws Throwable {
    dnn.convolutionBackwardFilter(CONVOLUTION, 0xA000, 0xB000, 0xC000, false);

    FakeCall call = CONVOLUTION_BACKWARD_FILTER;
    assertHandleAlphaBeta(call, 0);
    assertBuffers(call, Map.of("x", 0xA000L, "dy", 0xB000L, "dw", 0xC000L));
    assertTensor(call, "xDesc", CONVOLUTION_INPUT);
    assertTensor(call, "dyDesc", CONVOLUTION_OUTPUT);
    assertDescriptor(call, "convDesc", DescriptorKind.CONVOLUTION);
    assertShape(call, "dwDesc", DescriptorKind.FILTER, CONVOLUTION_FILTER);
    assertArgument(call, "algo", 2);
    assertTrue(recorded(call, "workSpace") >= 0x100000, "workspace from kiln's allocator");
    assertArgument(call, "workSpaceSizeInBytes", 3000);
  }

  @Test
  void convolutionBackwardBiasArgumentsFollowHeader() throws Throwable {
    dnn.convolutionBackwardBias(CONVOLUTION, 0xA000, 0xB000, false);

    FakeCall call = CONVOLUTION_BACKWARD_BIAS;
    assertHandleAlphaBeta(call, 0);
    assertBuffers(call, Map.of("dy", 0xA000L, "db", 0xB000L));
    assertTensor(call, "dyDesc", CONVOLUTION_OUTPUT);
    assertTensor(call, "dbDesc", CONVOLUTION_BIAS);
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

    assertEquals(1, recorded(CONVOLUTION_BACKWARD_DATA, "beta"), "accumulate adds into dx");
    assertEquals(0, recorded(CONVOLUTION_BACKWARD_FILTER, "beta"), "no accumulate overwrites dw");
    assertEquals(1, recorded(CONVOLUTION_BACKWARD_BIAS, "beta"), "accumulate adds into db");
    assertEquals(0, liveDescriptors());
  }

  @Test
  void poolingSetsWindowInCudnnOrder() throws Throwable {
    dnn.poolingForward(VendorDnn.PoolingMode.MAX, POOLING, 0xA000, 0xB000);

    assertEquals(VendorDnn.PoolingMode.MAX.cudnnValue, recorded(POOLING_MODE));
    double[] window = {3, 2, 1, 1, 2, 1};
    for (int i = 0; i < window.length; i++) {
      assertEquals(window[i], recorded(6 + i), "window, padding, stride argument " + i);
    }
    // kiln's own max pooling and PyTorch's let a NaN through, so cuDNN must too.
    assertEquals(CUDNN_PROPAGATE_NAN, recorded(POOLING_NAN), "NaN propagation");
  }

  @Test
  void poolingForwardArgumentsFollowHeader() throws Throwable {
    dnn.poolingForward(VendorDnn.PoolingMode.MAX, POOLING, 0xA000, 0xB000);

    FakeCall call = POOLING_FORWARD;
    assertHandleAlphaBeta(call, 0);
    assertDescriptor(call, "poolingDesc", DescriptorKind.POOLING);
    assertBuffers(call, Map.of("x", 0xA000L, "y", 0xB000L));
    assertTensor(call, "xDesc", POOLING_INPUT);
    assertTensor(call, "yDesc", POOLING_OUTPUT);
    assertEquals(0, liveDescriptors());
  }

  @Test
  void poolingBackwardArgumentsFollowHeader() throws Throwable {
    dnn.poolingBackward(VendorDnn.PoolingMode.MAX, POOLING, 0xA000, 0xB000, 0xC000, 0xD000);

    FakeCall call = POOLING_BACKWARD;
    assertHandleAlphaBeta(call, 0);
    assertDescriptor(call, "poolingDesc", DescriptorKind.POOLING);
    assertBuffers(call, Map.of("x", 0xA000L, "y", 0xB000L, "dy", 0xC000L, "dx", 0xD000L));
    assertTensor(call, "yDesc", POOLING_OUTPUT);
    assertTensor(call, "dyDesc", POOLING_OUTPUT);
    assertTensor(call, "xDesc", POOLING_INPUT);
    assertTensor(call, "dxDesc", POOLING_INPUT);
    assertEquals(0, liveDescriptors());
  }

  @Test
  void failedStatusNamesCallAndLibraryString() throws Throwable {
    Pool2dGeometry g = new Pool2dGeometry(1, 1, 4, 4, 2, 2, 2, 2, 0, 0);

    // The fake's cudnnPoolingBackward rejects a NULL dx.
    VendorException e =
        assertThrows(
            VendorException.class,
            () ->
                dnn.poolingBackward(VendorDnn.PoolingMode.AVERAGE_INCLUDE_PADDING, g, 1, 2, 3, 0));

    assertEquals("cudnnPoolingBackward", e.call());
    assertEquals(2000, e.status());
    assertTrue(e.getMessage().contains("CUDNN_STATUS_BAD_PARAM (fake)"), e.getMessage());
    assertEquals(0, liveDescriptors(), "descriptors destroyed after a failure too");
  }

  @Test
  void batchNormForwardTrainingArgumentsFollowHeader() throws Throwable {
    Nchw shape = new Nchw(4, 16, 5, 5);

    dnn.batchNormForwardTraining(
        shape, 0x1000, 0x2000, 0x3000, 0x4000, 0.1, 1e-5, 0x5000, 0x6000, 0x7000, 0x8000);

    FakeCall call = BATCHNORM_FORWARD_TRAINING;
    assertHandleAlphaBeta(call, 0);
    assertArgument(call, "mode", CUDNN_BATCHNORM_SPATIAL);
    assertEquals(CUDNN_BATCHNORM_SPATIAL, recorded(BATCHNORM_MODE), "derived descriptor mode");
    assertArgument(call, "exponentialAverageFactor", 0.1);
    assertArgument(call, "epsilon", 1e-5);
    assertBuffers(
        call,
        Map.of(
            "x", 0x1000L,
            "y", 0x2000L,
            "bnScale", 0x3000L,
            "bnBias", 0x4000L,
            "resultRunningMean", 0x5000L,
            "resultRunningVariance", 0x6000L,
            "resultSaveMean", 0x7000L,
            "resultSaveInvVariance", 0x8000L));
    assertTensor(call, "xDesc", shape);
    assertTensor(call, "yDesc", shape);
    assertTensor(call, "bnScaleBiasMeanVarDesc", new Nchw(1, 16, 1, 1));
    assertEquals(0, liveDescriptors());
  }

  @Test
  void batchNormForwardInferenceArgumentsFollowHeader() throws Throwable {
    Nchw shape = new Nchw(4, 16, 5, 5);

    dnn.batchNormForwardInference(shape, 0x1000, 0x2000, 0x3000, 0x4000, 0x5000, 0x6000, 1e-3);

    FakeCall call = BATCHNORM_FORWARD_INFERENCE;
    assertHandleAlphaBeta(call, 0);
    assertArgument(call, "mode", CUDNN_BATCHNORM_SPATIAL);
    assertArgument(call, "epsilon", 1e-3);
    assertBuffers(
        call,
        Map.of(
            "x", 0x1000L,
            "y", 0x2000L,
            "bnScale", 0x3000L,
            "bnBias", 0x4000L,
            "estimatedMean", 0x5000L,
            "estimatedVariance", 0x6000L));
    assertTensor(call, "xDesc", shape);
    assertTensor(call, "yDesc", shape);
    assertTensor(call, "bnScaleBiasMeanVarDesc", new Nchw(1, 16, 1, 1));
    assertEquals(0, liveDescriptors());
  }

  @Test
  void batchNormBackwardArgumentsFollowHeader() throws Throwable {
    Nchw shape = new Nchw(4, 16, 5, 5);

    dnn.batchNormBackward(
        shape, 0x1000, 0x2000, 0x3000, 0x4000, 0x5000, 0x6000, 1e-5, 0x7000, 0x8000);

    FakeCall call = BATCHNORM_BACKWARD;
    assertArgument(call, "handle", HANDLE);
    assertArgument(call, "mode", CUDNN_BATCHNORM_SPATIAL);
    assertArgument(call, "alphaDataDiff", 1);
    assertArgument(call, "betaDataDiff", 0);
    assertArgument(call, "alphaParamDiff", 1);
    assertArgument(call, "betaParamDiff", 0);
    assertArgument(call, "epsilon", 1e-5);
    assertBuffers(
        call,
        Map.of(
            "x", 0x1000L,
            "dy", 0x2000L,
            "dx", 0x3000L,
            "bnScale", 0x4000L,
            "dBnScaleResult", 0x5000L,
            "dBnBiasResult", 0x6000L,
            "savedMean", 0x7000L,
            "savedInvVariance", 0x8000L));
    assertTensor(call, "xDesc", shape);
    assertTensor(call, "dyDesc", shape);
    assertTensor(call, "dxDesc", shape);
    assertTensor(call, "dBnScaleBiasDesc", new Nchw(1, 16, 1, 1));
    assertEquals(0, liveDescriptors());
  }

  @Test
  void dropoutStateIsCreatedOncePerProbabilityAndSeed() throws Throwable {
    long reserve = dnn.dropoutReserveBytes(800);

    dnn.dropoutForward(0.25f, 42, 800, 0xA000, 0xB000, 0xC000, reserve);
    List<String> afterForward = memory.lastEvents();
    dnn.dropoutBackward(0.25f, 42, 800, 0xD000, 0xE000, 0xC000, reserve);

    assertEquals(
        List.of(
            FakeNativeLibraries.CountingMemory.ALLOCATE,
            FakeNativeLibraries.CountingMemory.MAKE_CURRENT),
        afterForward,
        "context made current again between the states allocation and cudnnSetDropoutDescriptor");

    assertEquals(116, reserve, "fake reserve: elements / 8 + 16");
    assertEquals(1, recorded(DROPOUT_SETS), "one cudnnSetDropoutDescriptor");
    assertEquals(0.25, recorded(DROPOUT_PROBABILITY));
    assertEquals(42, recorded(DROPOUT_SEED));
    assertEquals(4096, recorded(DROPOUT_STATE_BYTES));
    assertTrue(recorded(DROPOUT_STATES) >= 0x100000, "states from kiln's allocator");
    assertEquals(4096, allocator().bytesInUse(), "states stay allocated until close");

    dnn.close();
    assertEquals(0, allocator().bytesInUse(), "close returns the states");
    assertEquals(HANDLE, recorded(DESTROYED_HANDLE));
  }

  @Test
  void dropoutForwardArgumentsFollowHeader() throws Throwable {
    dnn.dropoutForward(0.25f, 42, 800, 0xA000, 0xB000, 0xC000, 116);

    FakeCall call = DROPOUT_FORWARD;
    assertArgument(call, "handle", HANDLE);
    assertDescriptor(call, "dropoutDesc", DescriptorKind.DROPOUT);
    assertArgument(call, "dropoutDesc", recorded(DROPOUT_DESCRIPTOR));
    assertBuffers(call, Map.of("x", 0xA000L, "y", 0xB000L, "reserveSpace", 0xC000L));
    assertArgument(call, "reserveSpaceSizeInBytes", 116);
    assertTensor(call, "xdesc", Nchw.flat(800));
    assertTensor(call, "ydesc", Nchw.flat(800));
    assertNotEquals(
        recorded(DROPOUT_STATES), recorded(call, "reserveSpace"), "states are not the reserve");
  }

  @Test
  void dropoutBackwardArgumentsFollowHeader() throws Throwable {
    dnn.dropoutBackward(0.25f, 42, 800, 0xA000, 0xB000, 0xC000, 116);

    FakeCall call = DROPOUT_BACKWARD;
    assertArgument(call, "handle", HANDLE);
    assertDescriptor(call, "dropoutDesc", DescriptorKind.DROPOUT);
    assertArgument(call, "dropoutDesc", recorded(DROPOUT_DESCRIPTOR));
    assertBuffers(call, Map.of("dy", 0xA000L, "dx", 0xB000L, "reserveSpace", 0xC000L));
    assertArgument(call, "reserveSpaceSizeInBytes", 116);
    assertTensor(call, "dydesc", Nchw.flat(800));
    assertTensor(call, "dxdesc", Nchw.flat(800));
  }

  @Test
  void activationPassesModeAndNanPropagation() throws Throwable {
    dnn.activationForward(VendorDnn.ActivationMode.RELU, 1000, 0xA000, 0xB000);

    assertEquals(VendorDnn.ActivationMode.RELU.cudnnValue, recorded(ACTIVATION_MODE));
    assertEquals(CUDNN_PROPAGATE_NAN, recorded(ACTIVATION_NAN), "NaN propagation");
    assertEquals(0, liveDescriptors());
  }

  @Test
  void activationForwardArgumentsFollowHeader() throws Throwable {
    dnn.activationForward(VendorDnn.ActivationMode.RELU, 1000, 0xA000, 0xB000);

    FakeCall call = ACTIVATION_FORWARD;
    assertHandleAlphaBeta(call, 0);
    assertDescriptor(call, "activationDesc", DescriptorKind.ACTIVATION);
    assertBuffers(call, Map.of("x", 0xA000L, "y", 0xB000L));
    assertTensor(call, "xDesc", Nchw.flat(1000));
    assertTensor(call, "yDesc", Nchw.flat(1000));
  }

  @Test
  void activationBackwardArgumentsFollowHeader() throws Throwable {
    dnn.activationBackward(VendorDnn.ActivationMode.TANH, 1000, 0xA000, 0xB000, 0xC000, 0xD000);

    FakeCall call = ACTIVATION_BACKWARD;
    assertHandleAlphaBeta(call, 0);
    assertDescriptor(call, "activationDesc", DescriptorKind.ACTIVATION);
    assertEquals(VendorDnn.ActivationMode.TANH.cudnnValue, recorded(ACTIVATION_MODE));
    assertBuffers(call, Map.of("y", 0xA000L, "dy", 0xB000L, "x", 0xC000L, "dx", 0xD000L));
    assertTensor(call, "yDesc", Nchw.flat(1000));
    assertTensor(call, "dyDesc", Nchw.flat(1000));
    assertTensor(call, "xDesc", Nchw.flat(1000));
    assertTensor(call, "dxDesc", Nchw.flat(1000));
    assertEquals(0, liveDescriptors());
  }
}
