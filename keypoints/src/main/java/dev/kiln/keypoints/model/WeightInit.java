package dev.kiln.keypoints.model;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.init.Init;
import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * Initialization scheme of a conv or linear layer's weight, set with {@code init=NAME} in a model
 * file. Every scheme other than {@link #DEFAULT} fills the bias with zeros.
 */
public enum WeightInit {
  /** PyTorch's default: weight and bias uniform in ±1/sqrt(fanIn). */
  DEFAULT("default"),

  /** Glorot uniform: uniform in ±sqrt(6 / (fanIn + fanOut)). */
  XAVIER_UNIFORM("xavier_uniform"),

  /** Glorot normal: standard deviation sqrt(2 / (fanIn + fanOut)). */
  XAVIER_NORMAL("xavier_normal"),

  /** He uniform with the ReLU gain: uniform in ±sqrt(6 / fanIn). */
  KAIMING_UNIFORM("kaiming_uniform"),

  /** He normal with the ReLU gain: standard deviation sqrt(2 / fanIn). */
  KAIMING_NORMAL("kaiming_normal");

  private final String textName;

  WeightInit(String textName) {
    this.textName = textName;
  }

  /** Returns the name used in model files, such as {@code xavier_uniform}. */
  public String textName() {
    return textName;
  }

  /** Returns the scheme called {@code name} in model files, or null if there is none. */
  public static WeightInit byTextName(String name) {
    for (WeightInit scheme : values()) {
      if (scheme.textName.equals(name)) {
        return scheme;
      }
    }
    return null;
  }

  /** Returns the valid names, comma-separated, for error messages. */
  public static String textNames() {
    return Arrays.stream(values()).map(WeightInit::textName).collect(Collectors.joining(", "));
  }

  /**
   * Fills {@code weight} and {@code bias} (which may be null) in place. {@link #DEFAULT} leaves
   * both as they are, because the nn layers already start with PyTorch's default.
   */
  void apply(Tensor weight, Tensor bias, Generator generator) {
    switch (this) {
      case DEFAULT -> {
        return;
      }
      case XAVIER_UNIFORM -> Init.xavierUniform(weight, 1.0, generator);
      case XAVIER_NORMAL -> Init.xavierNormal(weight, 1.0, generator);
      case KAIMING_UNIFORM -> Init.kaimingUniform(weight, Init.Nonlinearity.RELU, 0, generator);
      case KAIMING_NORMAL -> Init.kaimingNormal(weight, Init.Nonlinearity.RELU, 0, generator);
    }
    if (bias != null) {
      Init.constant(bias, 0);
    }
  }
}
