package dev.kiln.nn.layers;

import dev.kiln.nn.Module;

/**
 * Factory for the activation layers, for code that picks one by name (model files, the command
 * line): {@code relu}, {@code leaky_relu}, {@code elu}, {@code tanh}, {@code sigmoid}.
 */
public final class Activations {
  private Activations() {}

  /** Returns a new activation layer for {@code name}, with PyTorch's default settings. */
  public static Module byName(String name) {
    return switch (name) {
      case "relu" -> new ReLU();
      case "leaky_relu" -> new LeakyReLU();
      case "elu" -> new ELU();
      case "tanh" -> new Tanh();
      case "sigmoid" -> new Sigmoid();
      default ->
          throw new IllegalArgumentException(
              "unknown activation '" + name + "': use one of relu, leaky_relu, elu, tanh, sigmoid");
    };
  }
}
