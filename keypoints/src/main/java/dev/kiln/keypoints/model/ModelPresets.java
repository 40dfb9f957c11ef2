package dev.kiln.keypoints.model;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Built-in models, kept as model-format text so that each one is also an example of the format.
 * Every preset outputs the 136 keypoint coordinates.
 */
public final class ModelPresets {
  private static final String DEFAULT =
      """
      # Compact model for 96x96 gray faces, cheap enough to train on two CPU cores.
      # Five 3x3 conv blocks halve the image each time: 96 -> 48 -> 24 -> 12 -> 6 -> 3.
      # The convs have no bias because the batch norm after each one adds its own shift.
      # In 10-epoch trials, the fifth block lowered the validation NME from 16.8% to 13.7%.
      input 1x96x96
      conv 16 kernel=3 padding=1 bias=false
      batchnorm
      relu
      maxpool 2
      conv 32 kernel=3 padding=1 bias=false
      batchnorm
      relu
      maxpool 2
      conv 64 kernel=3 padding=1 bias=false
      batchnorm
      relu
      maxpool 2
      conv 128 kernel=3 padding=1 bias=false
      batchnorm
      relu
      maxpool 2
      conv 256 kernel=3 padding=1 bias=false
      batchnorm
      relu
      maxpool 2
      flatten                  # 256 x 3 x 3 = 2304 features
      dropout 0.2
      linear 256
      relu
      linear 136
      """;

  private static final String NAIMISHNET =
      """
      # NaimishNet: four conv blocks of growing depth, each with more dropout than the last,
      # then two dense layers of 1000. The three linear layers start Glorot uniform.
      input 1x96x96
      conv 32 kernel=4         # 96 -> 93, pooled to 46
      elu
      maxpool 2
      dropout 0.1
      conv 64 kernel=3         # 46 -> 44, pooled to 22
      elu
      maxpool 2
      dropout 0.2
      conv 128 kernel=2        # 22 -> 21, pooled to 10
      elu
      maxpool 2
      dropout 0.3
      conv 256 kernel=1        # 10 -> 10, pooled to 5
      elu
      maxpool 2
      dropout 0.4
      flatten                  # 256 x 5 x 5 = 6400 features
      linear 1000 init=xavier_uniform
      elu
      dropout 0.5
      linear 1000 init=xavier_uniform
      elu
      dropout 0.6
      linear 136 init=xavier_uniform
      """;

  private static final String LENET_20M =
      """
      # LeNet-style model for 224x224 gray faces with a 9216-feature dense input.
      # Unpadded stride-1 convs give 224 -> 220 -> 110 -> 106 -> 53 -> 51 -> 25 -> 23 -> 11,
      # so 256 x 11 x 11 = 30976 features. A stride of 2 on the last conv gives
      # floor((25 - 3) / 2) + 1 = 12, pooled to 6, so 256 x 6 x 6 = 9216. Among unpadded
      # models, stride 2 on a single conv reaches 9216 only on the last one. The stride leaves
      # that conv's weights as they are but shrinks the first linear layer, which brings the
      # model from 63.4 M to 19.9 M parameters.
      input 1x224x224
      conv 32 kernel=5         # 224 -> 220, pooled to 110
      relu
      maxpool 2
      conv 64 kernel=5         # 110 -> 106, pooled to 53
      relu
      maxpool 2
      conv 128 kernel=3        # 53 -> 51, pooled to 25
      relu
      maxpool 2
      conv 256 kernel=3 stride=2   # 25 -> 12, pooled to 6
      relu
      maxpool 2
      flatten                  # 256 x 6 x 6 = 9216 features
      linear 2000
      relu
      dropout 0.5
      linear 500
      relu
      dropout 0.5
      linear 136
      """;

  private static final String LENET_48M =
      """
      # LeNet-style model for 224x224 gray faces with a wide 4096-unit dense layer.
      # 224 -> 220 -> 110 -> 108 -> 54 -> 52 -> 26 -> 26 -> 13, so 64 x 13 x 13 = 10816 features.
      input 1x224x224
      conv 32 kernel=5         # 224 -> 220, pooled to 110
      relu
      maxpool 2
      conv 32 kernel=3         # 110 -> 108, pooled to 54
      relu
      maxpool 2
      conv 64 kernel=3         # 54 -> 52, pooled to 26
      relu
      maxpool 2
      conv 64 kernel=1         # 26 -> 26, pooled to 13
      relu
      maxpool 2
      flatten                  # 64 x 13 x 13 = 10816 features
      linear 4096
      relu
      dropout 0.5
      linear 1024
      relu
      dropout 0.5
      linear 136
      """;

  private static final Map<String, String> PRESETS = new LinkedHashMap<>();

  static {
    PRESETS.put("default", DEFAULT);
    PRESETS.put("naimishnet", NAIMISHNET);
    PRESETS.put("lenet-20m", LENET_20M);
    PRESETS.put("lenet-48m", LENET_48M);
  }

  private ModelPresets() {}

  /** Returns the preset names, in a fixed order with {@code default} first. */
  public static List<String> names() {
    return List.copyOf(PRESETS.keySet());
  }

  /**
   * Returns the model-format text of a preset, comments included.
   *
   * @throws IllegalArgumentException if there is no preset of that name
   */
  public static String text(String name) {
    String text = PRESETS.get(name);
    if (text == null) {
      throw new IllegalArgumentException(
          "unknown model preset '"
              + name
              + "': use one of "
              + String.join(", ", PRESETS.keySet())
              + ", or give the path of a model file");
    }
    return text;
  }

  /**
   * Parses a preset.
   *
   * @throws IllegalArgumentException if there is no preset of that name; the message lists them
   */
  public static ModelSpec byName(String name) {
    return ModelSpec.parse(text(name), "preset " + name);
  }

  /**
   * Returns the preset called {@code nameOrPath}, or else parses the model file at that path. A
   * file whose name is also a preset name needs a path with a folder, such as {@code ./default}.
   *
   * @throws IllegalArgumentException if it is neither a preset nor an existing file
   * @throws IOException if the file exists but cannot be read
   */
  public static ModelSpec resolve(String nameOrPath) throws IOException {
    if (PRESETS.containsKey(nameOrPath)) {
      return byName(nameOrPath);
    }
    Path file = Path.of(nameOrPath);
    if (!Files.isRegularFile(file)) {
      throw new IllegalArgumentException(
          "unknown model '"
              + nameOrPath
              + "': it is not a preset ("
              + String.join(", ", PRESETS.keySet())
              + ") and no model file exists at "
              + file.toAbsolutePath());
    }
    return ModelSpec.read(file);
  }
}
