package dev.kiln.core.ops;

import static dev.kiln.core.tensor.DeviceStorage.bufferOf;
import static dev.kiln.core.tensor.DeviceStorage.kernelsOf;

import dev.kiln.core.autograd.Autograd;
import dev.kiln.core.backend.device.DeviceDropout;
import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;

/** Inverted dropout: zeroes elements with probability p and scales the rest by 1 / (1 - p). */
public final class Dropout {
  private Dropout() {}

  /**
   * Applies dropout in training; returns {@code x} unchanged when not training or when p is 0. The
   * mask comes from {@code generator}, so a seeded run drops the same elements every time.
   */
  public static Tensor dropout(Tensor x, double p, boolean training, Generator generator) {
    if (!(p >= 0 && p <= 1)) {
      throw new IllegalArgumentException("dropout probability must be in [0, 1], got " + p);
    }
    if (!training || p == 0) {
      return x;
    }
    if (!x.device().isCpu()) {
      return onDevice(x, p, generator.nextLong());
    }
    Tensor mask = Tensor.zerosLike(x);
    double scale = p == 1 ? 0 : 1.0 / (1.0 - p);
    for (int i = 0; i < mask.numel(); i++) {
      mask.storage().set(i, generator.nextDouble() < p ? 0.0 : scale);
    }
    Tensor out = Elementwise.zip("dropout", BinaryOp.MUL, x, mask);
    return Autograd.record("dropout", out, g -> new Tensor[] {g.mul(mask)}, x);
  }

  /**
   * Applies dropout on a device: with cuDNN where this device's launcher has it, else with kiln's
   * kernel. p = 1, and any p that rounds to 1 as a float, takes kiln's kernel, which writes zeros,
   * because cuDNN would scale by 1 / (1 - p).
   */
  private static Tensor onDevice(Tensor x, double p, long seed) {
    DeviceDropout kernels = kernelsOf(x).dropout();
    // An empty tensor stays on kiln's kernel, because cuDNN's descriptors need positive sizes.
    return x.numel() > 0 && kernels.cudnnTakes(p)
        ? withCudnn(kernels, x, p, seed)
        : withKiln(kernels, x, p, seed);
  }

  /**
   * Applies dropout with kiln's kernel, whose mask is a function of {@code seed} and the element's
   * index. Backward recomputes the mask from the seed instead of keeping it, so the layer keeps no
   * mask memory between the passes. The masks differ from the CPU's for the same generator.
   */
  private static Tensor withKiln(DeviceDropout kernels, Tensor x, double p, long seed) {
    Tensor out = Tensor.emptyLike(x);
    kernels.forward(bufferOf(x), bufferOf(out), null, x.numel(), p, seed, 0);
    return Autograd.record(
        "dropout",
        out,
        g -> {
          Tensor gradInput = Tensor.emptyLike(g);
          kernels.backward(bufferOf(g), bufferOf(gradInput), g.numel(), p, seed, 0);
          return new Tensor[] {gradInput};
        },
        x);
  }

  /**
   * Applies dropout with cuDNN, which writes each mask to a reserve buffer that the backward pass
   * reads. The reserve is an ordinary device tensor, so it lives as long as the graph that needs
   * it, and a memory scope releases it with the step's other tensors. cuDNN's random state is
   * seeded by the first call with each probability on the device and advances from there (see
   * {@link DeviceDropout}). So a seeded run starts from the same state in every new process, but a
   * second run in the same process continues the first one's sequence.
   */
  private static Tensor withCudnn(DeviceDropout kernels, Tensor x, double p, long seed) {
    int n = x.numel();
    Tensor out = Tensor.emptyLike(x);
    Tensor reserve = Tensor.empty(DType.FLOAT32, x.device(), kernels.cudnnReserveFloats(n));
    kernels.cudnnForward(bufferOf(x), bufferOf(out), bufferOf(reserve), n, p, seed);
    return Autograd.record(
        "dropout",
        out,
        g -> {
          Tensor gradInput = Tensor.emptyLike(g);
          kernels.cudnnBackward(bufferOf(g), bufferOf(gradInput), bufferOf(reserve), n, p);
          return new Tensor[] {gradInput};
        },
        x);
  }
}
