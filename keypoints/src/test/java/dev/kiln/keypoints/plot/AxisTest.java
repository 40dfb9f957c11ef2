package dev.kiln.keypoints.plot;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.Objects;
import org.junit.jupiter.api.Test;

class AxisTest {

  static List<String> labels(Axis axis) {
    return axis.ticks().stream().map(Axis.Tick::label).filter(Objects::nonNull).toList();
  }

  @Test
  void roundStepPicksOneTwoFive() {
    assertEquals(0.02, Axis.roundStep(0.013), 1e-15);
    assertEquals(0.05, Axis.roundStep(0.03), 1e-15);
    assertEquals(10, Axis.roundStep(7), 1e-12);
    assertEquals(1, Axis.roundStep(1), 1e-12);
  }

  @Test
  void linearTicksAreRound() {
    assertEquals(List.of("0.00", "0.05", "0.10", "0.15"), labels(Axis.linear(0, 0.15, false)));
  }

  @Test
  void linearTicksForEpochs() {
    assertEquals(List.of("5", "10", "15", "20", "25", "30"), labels(Axis.linear(1, 30, false)));
  }

  @Test
  void linearRoundOutExtendsEnds() {
    Axis axis = Axis.linear(0.013, 0.087, true);

    assertEquals(0.0, axis.min(), 1e-12);
    assertEquals(0.1, axis.max(), 1e-12);
  }

  @Test
  void logTicksAtPowersOfTen() {
    assertEquals(List.of("0.001", "0.01", "0.1", "1"), labels(Axis.log(0.002, 0.6)));
  }

  @Test
  void logNarrowRangeLabelsTwoAndFive() {
    assertEquals(List.of("0.01", "0.02", "0.05", "0.1"), labels(Axis.log(0.012, 0.09)));
  }

  @Test
  void logFractionIsLogarithmic() {
    assertEquals(0.5, Axis.log(0.01, 1).fraction(0.1), 1e-12);
  }
}
