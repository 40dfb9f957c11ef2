package dev.kiln.keypoints.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class EvaluationResultTest {

  /** Returns a result whose faces have the given NMEs, made by shifting every point downwards. */
  static EvaluationResult resultOf(double... nmes) {
    Evaluator evaluator = new Evaluator("epoch-7.kiln", "test", "emulated");
    double[] truth = NmeTest.face();
    for (int i = 0; i < nmes.length; i++) {
      // The inter-ocular distance is 10, so a shift of 10 * nme gives that NME.
      evaluator.add(Nme.of("face" + i, NmeTest.shifted(truth, 0, 10 * nmes[i]), truth));
    }
    return evaluator.result();
  }

  @Test
  void meanNmeOverFaces() {
    assertEquals(0.06, resultOf(0.02, 0.04, 0.12).meanNme(), 1e-12);
  }

  @Test
  void meanNmePerRegion() {
    EvaluationResult result = resultOf(0.02, 0.04, 0.12);

    for (Region region : Region.values()) {
      assertEquals(0.06, result.meanNme(region), 1e-12, region.label());
    }
  }

  @Test
  void failureRateAtEightPercent() {
    assertEquals(0.5, resultOf(0.05, 0.07, 0.09, 0.2).failureRate(0.08));
  }

  @Test
  void failureRateAtTenPercent() {
    assertEquals(0.25, resultOf(0.05, 0.07, 0.09, 0.2).failureRate(0.10));
  }

  @Test
  void failureRateExcludesEqualNme() {
    assertEquals(0.0, resultOf(0.25).failureRate(0.25));
  }

  @Test
  void cedSharesAtThresholds() {
    EvaluationResult.Ced ced = resultOf(0.0105, 0.0305, 0.0505, 0.2).ced(0.05, 0.01);

    assertEquals(6, ced.thresholds().length);
    assertEquals(0.05, ced.thresholds()[5], 1e-12);
    assertEquals(0.0, ced.shares()[0]);
    assertEquals(0.0, ced.shares()[1]);
    assertEquals(0.25, ced.shares()[2]);
    assertEquals(0.25, ced.shares()[3]);
    assertEquals(0.5, ced.shares()[4]);
    assertEquals(0.5, ced.shares()[5]);
  }

  @Test
  void cedDefaultHas151Thresholds() {
    EvaluationResult.Ced ced =
        resultOf(0.05).ced(EvaluationResult.DEFAULT_CED_MAX, EvaluationResult.DEFAULT_CED_STEP);

    assertEquals(151, ced.shares().length);
    assertEquals(0.15, ced.thresholds()[150], 1e-12);
  }

  @Test
  void cedRejectsZeroStep() {
    assertThrows(IllegalArgumentException.class, () -> resultOf(0.05).ced(0.15, 0));
  }

  @Test
  void aucOfKnownCed() {
    // The CED is 0 below 0.05, 1/2 from 0.05 to 0.10 and 1 from 0.10 to 0.15: area 0.075 of 0.15.
    assertEquals(0.5, resultOf(0.05, 0.10).auc(0.15), 1e-12);
  }

  @Test
  void aucIgnoresFacesAboveMax() {
    assertEquals(0.25, resultOf(0.04, 0.3).auc(0.08), 1e-12);
  }

  @Test
  void aucMatchesSampledCed() {
    EvaluationResult result = resultOf(0.012, 0.033, 0.071, 0.09, 0.14, 0.5);
    EvaluationResult.Ced ced = result.ced(0.15, 0.0001);
    double trapezoid = 0;
    for (int i = 1; i < ced.shares().length; i++) {
      trapezoid += (ced.shares()[i] + ced.shares()[i - 1]) / 2 * 0.0001;
    }

    assertEquals(trapezoid / 0.15, result.auc(0.15), 1e-3);
  }

  @Test
  void evaluatorWithoutFacesRejected() {
    assertThrows(IllegalStateException.class, () -> new Evaluator("c", "d", "cpu").result());
  }

  @Test
  void jsonHasNamesAndCounts() {
    String json = resultOf(0.02, 0.04).toJson();

    assertTrue(json.contains("\"checkpoint\": \"epoch-7.kiln\""), json);
    assertTrue(json.contains("\"data\": \"test\""), json);
    assertTrue(json.contains("\"device\": \"emulated\""), json);
    assertTrue(json.contains("\"faces\": 2"), json);
    assertTrue(json.contains("{\"name\": \"face1\", \"nme\": 0.0399"), json);
    assertTrue(json.contains("\"0.08\": 0.0"), json);
  }

  @Test
  void jsonIsWellFormed() {
    Evaluator evaluator = new Evaluator("run \"a\"\\b", "tab\there\nnew line", "cpu");
    double[] truth = NmeTest.face();
    evaluator.add(Nme.of("quote\"name", truth.clone(), truth));

    String json = evaluator.result().toJson();

    assertTrue(JsonCheck.isValid(json), json);
  }

  @Test
  void jsonCedHas151Values() {
    String json = resultOf(0.02).toJson();
    Matcher ced = Pattern.compile("\"ced\": \\[([^\\]]*)\\]").matcher(json);

    assertTrue(ced.find(), json);
    assertEquals(151, ced.group(1).split(",").length);
  }

  @Test
  void writeJsonReplacesAtomically(@TempDir Path folder) throws IOException {
    Path file = folder.resolve("eval.json");
    Files.writeString(file, "old");

    resultOf(0.02, 0.04).writeJson(file);

    assertEquals(resultOf(0.02, 0.04).toJson(), Files.readString(file));
    try (Stream<Path> files = Files.list(folder)) {
      assertEquals(List.of(file), files.toList());
    }
  }

  @Test
  void writeJsonCreatesMissingFolder(@TempDir Path folder) throws IOException {
    Path file = folder.resolve("reports/eval.json");

    resultOf(0.02).writeJson(file);

    assertTrue(Files.isRegularFile(file));
  }

  @Test
  void writeJsonFailureLeavesNoTemporary(@TempDir Path folder) throws IOException {
    // A non-empty folder in the place of the file makes the final rename fail.
    Path file = folder.resolve("eval.json");
    Files.createDirectories(file.resolve("inside"));

    assertThrows(IOException.class, () -> resultOf(0.02).writeJson(file));
    try (Stream<Path> files = Files.list(folder)) {
      assertFalse(files.anyMatch(p -> p.getFileName().toString().endsWith(".tmp")));
    }
  }
}
