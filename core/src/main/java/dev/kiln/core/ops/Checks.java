package dev.kiln.core.ops;

import dev.kiln.core.tensor.Shapes;
import dev.kiln.core.tensor.Tensor;

/** Argument checks shared by the ops; each message names the op and shows both operands. */
public final class Checks {
  private Checks() {}

  /** Requires both tensors to share a dtype and a device. */
  public static void sameDTypeAndDevice(String op, Tensor a, Tensor b) {
    if (a.dtype() != b.dtype()) {
      throw new IllegalArgumentException(
          op
              + ": dtype mismatch, "
              + describe(a)
              + " and "
              + describe(b)
              + ": convert one with to(DType)");
    }
    if (!a.device().equals(b.device())) {
      throw new IllegalArgumentException(
          op
              + ": device mismatch, "
              + describe(a)
              + " and "
              + describe(b)
              + ": move one with to(Device)");
    }
  }

  /** Requires {@code tensor} to have {@code rank} dimensions. */
  public static void rank(String op, Tensor tensor, int rank, String layout) {
    if (tensor.dim() != rank) {
      throw new IllegalArgumentException(
          op
              + ": expected a "
              + rank
              + "-dimensional input "
              + layout
              + " but got shape "
              + Shapes.format(tensor.shape()));
    }
  }

  /** Formats a tensor for messages, e.g. {@code float32 [2, 3] on cpu}. */
  public static String describe(Tensor t) {
    return t.dtype() + " " + Shapes.format(t.shape()) + " on " + t.device();
  }
}
