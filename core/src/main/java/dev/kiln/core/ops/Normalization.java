package dev.kiln.core.ops;

import static dev.kiln.core.tensor.DeviceStorage.bufferOf;
import static dev.kiln.core.tensor.DeviceStorage.kernelsOf;

import dev.kiln.core.autograd.Autograd;
import dev.kiln.core.backend.cpu.BatchNormKernels;
import dev.kiln.core.backend.device.DeviceBatchNorm;
import dev.kiln.core.tensor.Shapes;
import dev.kiln.core.tensor.Storage;
import dev.kiln.core.tensor.Tensor;
import java.util.Arrays;

/** Batch normalization over the channel dimension (dimension 1) of [N, C] or [N, C, ...]. */
public final class Normalization {
  private Normalization() {}

  /**
   * Normalizes each channel. With {@code useBatchStatistics}, as in training, it uses the batch
   * statistics and, when the running tensors are non-null, updates them in place with {@code
   * momentum}. Otherwise, as in evaluation, it uses the running statistics. {@code weight} and
   * {@code bias} (gamma and beta) may be null. An input without elements, such as a batch of 0,
   * gives an empty output and leaves the running statistics unchanged in both modes, as in PyTorch
   * 1.13.
   */
  public static Tensor batchNorm(
      Tensor x,
      Tensor runningMean,
      Tensor runningVar,
      Tensor weight,
      Tensor bias,
      boolean useBatchStatistics,
      double momentum,
      double eps) {
    if (x.dim() < 2) {
      throw new IllegalArgumentException(
          "batchNorm: expected input of shape [N, C] or [N, C, ...] but got "
              + Shapes.format(x.shape()));
    }
    int[] shape = x.shape();
    int n = shape[0];
    int c = shape[1];
    int s = Shapes.numel(Arrays.copyOfRange(shape, 2, shape.length));
    for (Tensor t : new Tensor[] {runningMean, runningVar, weight, bias}) {
      if (t != null) {
        Checks.sameDTypeAndDevice("batchNorm", x, t);
      }
    }
    Tensor out = Tensor.emptyLike(x);
    if (useBatchStatistics && n * s == 1) {
      throw new IllegalArgumentException(
          "batchNorm: input of shape "
              + Shapes.format(x.shape())
              + " has one value per channel, so its batch variance is undefined: use a batch of"
              + " 2 or more"
              + (runningMean == null ? "" : ", or call eval() to use the running statistics"));
    }

    if (!useBatchStatistics && (runningMean == null || runningVar == null)) {
      throw new IllegalArgumentException(
          "batchNorm: evaluation mode needs running statistics; build the layer with"
              + " trackRunningStats=true or call train()");
    }
    if (x.numel() == 0) {
      requireOnePerChannel(c, runningMean, runningVar, weight, bias);
      // PyTorch 1.13 returns an empty output, leaves the running statistics unchanged, and gives
      // zero weight and bias gradients.
      return ZeroGradients.record("batchNorm", out, x, weight, bias);
    }
    if (useBatchStatistics) {
      // Both branches below update the running statistics in place. Counting that as a change
      // lets the backward pass of an earlier evaluation-mode forward, which read them, notice it.
      markModified(runningMean);
      markModified(runningVar);
    }
    if (!x.device().isCpu()) {
      return onDevice(
          x,
          runningMean,
          runningVar,
          weight,
          bias,
          useBatchStatistics,
          momentum,
          eps,
          out,
          n,
          c,
          s);
    }

    if (useBatchStatistics) {
      double[] mean = new double[c];
      double[] invStd = new double[c];
      BatchNormKernels.forwardTraining(
          x.storage(),
          n,
          c,
          s,
          storageOf(weight),
          storageOf(bias),
          eps,
          out.storage(),
          mean,
          invStd,
          storageOf(runningMean),
          storageOf(runningVar),
          momentum);
      return Autograd.record(
          "batchNorm",
          out,
          grad -> {
            Tensor[] grads = gradients(x, weight, bias);
            BatchNormKernels.backwardTraining(
                grad.storage(),
                x.storage(),
                n,
                c,
                s,
                storageOf(weight),
                mean,
                invStd,
                grads[0].storage(),
                storageOf(grads[1]),
                storageOf(grads[2]));
            return grads;
          },
          x,
          weight,
          bias);
    }

    RunningStatistics used = RunningStatistics.of(runningMean, runningVar);
    BatchNormKernels.forwardInference(
        x.storage(),
        n,
        c,
        s,
        storageOf(weight),
        storageOf(bias),
        runningMean.storage(),
        runningVar.storage(),
        eps,
        out.storage());
    return Autograd.record(
        "batchNorm",
        out,
        grad -> {
          used.requireUnchanged();
          Tensor[] grads = gradients(x, weight, bias);
          BatchNormKernels.backwardInference(
              grad.storage(),
              x.storage(),
              n,
              c,
              s,
              storageOf(weight),
              runningMean.storage(),
              runningVar.storage(),
              eps,
              grads[0].storage(),
              storageOf(grads[1]),
              storageOf(grads[2]));
          return grads;
        },
        x,
        weight,
        bias);
  }

  /**
   * The same op on a device. With batch statistics, the batch mean and inverse standard deviation
   * stay on the device, in two tensors of c floats that the backward pass reads.
   */
  private static Tensor onDevice(
      Tensor x,
      Tensor runningMean,
      Tensor runningVar,
      Tensor weight,
      Tensor bias,
      boolean useBatchStatistics,
      double momentum,
      double eps,
      Tensor out,
      int n,
      int c,
      int s) {
    DeviceBatchNorm kernels = kernelsOf(x).batchNorm();
    if (useBatchStatistics) {
      Tensor mean = Tensor.empty(x.dtype(), x.device(), c);
      Tensor invStd = Tensor.empty(x.dtype(), x.device(), c);
      kernels.forwardTraining(
          bufferOf(x),
          n,
          c,
          s,
          bufferOf(weight),
          bufferOf(bias),
          eps,
          momentum,
          bufferOf(out),
          bufferOf(mean),
          bufferOf(invStd),
          bufferOf(runningMean),
          bufferOf(runningVar));
      return Autograd.record(
          "batchNorm",
          out,
          grad -> {
            Tensor[] grads = gradients(x, weight, bias);
            kernels.backwardTraining(
                bufferOf(grad),
                bufferOf(x),
                n,
                c,
                s,
                bufferOf(weight),
                bufferOf(mean),
                bufferOf(invStd),
                eps,
                bufferOf(grads[0]),
                bufferOf(grads[1]),
                bufferOf(grads[2]));
            return grads;
          },
          x,
          weight,
          bias);
    }
    RunningStatistics used = RunningStatistics.of(runningMean, runningVar);
    kernels.forwardInference(
        bufferOf(x),
        n,
        c,
        s,
        bufferOf(weight),
        bufferOf(bias),
        bufferOf(runningMean),
        bufferOf(runningVar),
        eps,
        bufferOf(out));
    return Autograd.record(
        "batchNorm",
        out,
        grad -> {
          used.requireUnchanged();
          Tensor[] grads = gradients(x, weight, bias);
          kernels.backwardInference(
              bufferOf(grad),
              bufferOf(x),
              n,
              c,
              s,
              bufferOf(weight),
              bufferOf(runningMean),
              bufferOf(runningVar),
              eps,
              bufferOf(grads[0]),
              bufferOf(grads[1]),
              bufferOf(grads[2]));
          return grads;
        },
        x,
        weight,
        bias);
  }

  private static void markModified(Tensor runningStatistic) {
    if (runningStatistic != null) {
      runningStatistic.storage().markModified();
    }
  }

  /**
   * The running statistics that an evaluation-mode forward pass read, with their storage and
   * version at that time. They are no inputs of the recorded node, because they get no gradient, so
   * the node's own in-place check does not cover them.
   */
  private record RunningStatistics(
      Tensor mean,
      Tensor variance,
      Storage meanStorage,
      Storage varianceStorage,
      int meanVersion,
      int varianceVersion) {

    static RunningStatistics of(Tensor mean, Tensor variance) {
      return new RunningStatistics(
          mean,
          variance,
          mean.storage(),
          variance.storage(),
          mean.storage().version(),
          variance.storage().version());
    }

    /**
     * Throws where either statistic was replaced or changed in place since the forward pass, for
     * example by a training-mode forward pass, because the gradient would then be wrong.
     */
    void requireUnchanged() {
      if (mean.isClosed() || variance.isClosed()) {
        throw new IllegalStateException(
            "batchNorm: the running statistics that this evaluation-mode forward pass used were"
                + " closed after it, but its backward pass reads them. Close them only after"
                + " backward.");
      }
      if (mean.storage() != meanStorage
          || meanStorage.version() != meanVersion
          || variance.storage() != varianceStorage
          || varianceStorage.version() != varianceVersion) {
        throw new IllegalStateException(
            "batchNorm: the running statistics that this evaluation-mode forward pass used were"
                + " changed after it, for example by a forward pass in training mode, so its"
                + " gradient would be wrong. Run the forward pass again after the change.");
      }
    }
  }

  /**
   * Requires each non-null tensor to have one element per channel. The kernels check this for a
   * non-empty input, and an empty input reaches no kernel.
   */
  private static void requireOnePerChannel(
      int c, Tensor runningMean, Tensor runningVar, Tensor weight, Tensor bias) {
    String[] names = {"running mean", "running variance", "weight", "bias"};
    Tensor[] tensors = {runningMean, runningVar, weight, bias};
    for (int i = 0; i < tensors.length; i++) {
      if (tensors[i] != null && tensors[i].numel() != c) {
        throw new IllegalArgumentException(
            "batchNorm: "
                + names[i]
                + " has shape "
                + Shapes.format(tensors[i].shape())
                + ", expected one element per channel ("
                + c
                + ")");
      }
    }
  }

  /** Allocates the gradient tensors: always one for x, and for weight and bias when present. */
  private static Tensor[] gradients(Tensor x, Tensor weight, Tensor bias) {
    return new Tensor[] {
      Tensor.emptyLike(x),
      weight == null ? null : Tensor.emptyLike(weight),
      bias == null ? null : Tensor.emptyLike(bias)
    };
  }

  private static Storage storageOf(Tensor t) {
    return t == null ? null : t.storage();
  }
}
