package dev.kiln.nn.loss;

import java.util.List;
import java.util.Locale;

/** Builds losses from the short names that command lines and configuration files use. */
public final class Losses {

  /** The names that {@link #parse} accepts, in the order error messages list them. */
  public static final List<String> NAMES = List.of("mse", "l1", "smoothl1", "wing");

  private Losses() {}

  /**
   * Returns the loss named {@code name} with its default settings and mean reduction. The name is
   * matched ignoring case and surrounding whitespace.
   *
   * @throws IllegalArgumentException if the name is not one of {@link #NAMES}
   */
  public static Loss parse(String name) {
    String key = name == null ? "" : name.strip().toLowerCase(Locale.ROOT);
    return switch (key) {
      case "mse" -> new MSELoss();
      case "l1" -> new L1Loss();
      case "smoothl1" -> new SmoothL1Loss();
      case "wing" -> new WingLoss();
      default ->
          throw new IllegalArgumentException(
              "unknown loss '" + name + "': use one of " + String.join(", ", NAMES));
    };
  }
}
