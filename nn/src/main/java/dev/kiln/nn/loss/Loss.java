package dev.kiln.nn.loss;

import dev.kiln.core.tensor.Tensor;

/** A training objective that compares a model's prediction with its target. */
public interface Loss {

  /**
   * Computes the loss of {@code prediction} against {@code target}, which must have the same shape,
   * dtype and device. Returns a zero-dimensional tensor whose {@code backward()} fills the
   * gradients of both inputs, where they require one.
   */
  Tensor compute(Tensor prediction, Tensor target);

  /** Returns the short name that {@link Losses#parse} accepts, such as {@code "smoothl1"}. */
  String name();
}
