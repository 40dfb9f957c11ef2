package dev.kiln.benchmarks;

import dev.kiln.keypoints.model.Layer;
import dev.kiln.keypoints.model.ModelPresets;
import dev.kiln.keypoints.model.ModelSpec;
import java.util.ArrayList;
import java.util.List;

/**
 * One matrix product C = op(A) op(B) of the GEMM benchmark, with op(A) m x k and op(B) k x n.
 *
 * <p>A case is named either {@code MxNxK}, a plain product without transposes, or {@code
 * PRESET/INDEX-conv:PASS}, one of the three per-image products that kiln's conv kernel runs for
 * that layer (im2col, then GEMM). With P output positions and T = in channels x kernel area taps:
 *
 * <ul>
 *   <li>{@code forward}: weight (out x T) times columns (T x P).
 *   <li>{@code input-grad}: transposed weight (T x out) times output gradient (out x P).
 *   <li>{@code weight-grad}: output gradient (out x P) times transposed columns (P x T).
 * </ul>
 *
 * @param name the case name
 * @param transA whether A is stored transposed, as k x m
 * @param transB whether B is stored transposed, as n x k
 */
public record GemmCase(String name, boolean transA, boolean transB, int m, int n, int k) {

  /** Floating-point operations of the product: one multiply and one add per multiply-accumulate. */
  public long flop() {
    return 2L * m * n * k;
  }

  /**
   * Parses a case name.
   *
   * @throws IllegalArgumentException for a malformed name or a layer that is not a conv
   */
  public static GemmCase parse(String name) {
    int colon = name.indexOf(':');
    if (colon < 0) {
      String[] sizes = name.split("x", -1);
      if (sizes.length != 3) {
        throw new IllegalArgumentException(
            "invalid GEMM case '"
                + name
                + "': expected MxNxK such as 1024x1024x1024, or PRESET/INDEX-conv:PASS");
      }
      try {
        return new GemmCase(
            name,
            false,
            false,
            Integer.parseInt(sizes[0]),
            Integer.parseInt(sizes[1]),
            Integer.parseInt(sizes[2]));
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException(
            "invalid GEMM case '" + name + "': M, N and K must be whole numbers", e);
      }
    }

    LayerCase layer = LayerCase.parse(name.substring(0, colon));
    if (!layer.kind().equals("conv")) {
      throw new IllegalArgumentException(
          "invalid GEMM case '" + name + "': layer " + layer.name() + " is not a conv");
    }
    ModelSpec spec = ModelPresets.byName(layer.preset());
    Layer.Conv conv = (Layer.Conv) spec.layers().get(layer.index());
    int[] input = spec.inputShapeOf(layer.index());
    int[] output = conv.outputShape(input);
    int out = conv.outChannels();
    int taps = input[0] * conv.kernel() * conv.kernel();
    int positions = output[1] * output[2];
    String pass = name.substring(colon + 1);
    return switch (pass) {
      case "forward" -> new GemmCase(name, false, false, out, positions, taps);
      case "input-grad" -> new GemmCase(name, true, false, taps, positions, out);
      case "weight-grad" -> new GemmCase(name, false, true, out, taps, positions);
      default ->
          throw new IllegalArgumentException(
              "invalid GEMM case '"
                  + name
                  + "': the pass after ':' must be forward, input-grad or weight-grad");
    };
  }

  /** Returns 1024x1024x1024, then the three products of every conv case of {@link LayerCase}. */
  public static List<GemmCase> all() {
    List<GemmCase> cases = new ArrayList<>();
    cases.add(parse("1024x1024x1024"));
    for (LayerCase layer : LayerCase.all()) {
      if (layer.kind().equals("conv")) {
        for (String pass : List.of("forward", "input-grad", "weight-grad")) {
          cases.add(parse(layer.name() + ":" + pass));
        }
      }
    }
    return cases;
  }

  /** Number of elements of A, B and C, in that order. */
  public int[] sizes() {
    return new int[] {Math.multiplyExact(m, k), Math.multiplyExact(k, n), Math.multiplyExact(m, n)};
  }
}
