package dev.kiln.benchmarks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.benchmarks.EvaluationComparison.Evaluation;
import dev.kiln.benchmarks.GpuReport.Verdict;
import dev.kiln.keypoints.eval.Evaluator;
import dev.kiln.keypoints.eval.Nme;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class EvaluationComparisonTest {

  /** Inter-ocular distance of the faces below, in pixels. */
  private static final double EYES = 40;

  /** Shift of every predicted point on the CPU, in pixels: an NME of 2 / 40 = 5% per face. */
  private static final double CPU_SHIFT = 2;

  @TempDir Path folder;

  @Test
  void passesWithinTolerance() throws IOException {
    // 2.004 px over 40 px is an NME of 5.01%, 1e-4 above the CPU's 5%.
    EvaluationComparison comparison = compare(json("cuda:0", 2.004, 2.004, 2.004), cpuJson());

    assertEquals(Verdict.PASS, comparison.verdict(), comparison.detail());
    assertEquals(
        "NME 5.0100% on cuda:0 and 5.0000% on cpu, a difference of 1.0e-04; the largest"
            + " difference of a face's NME is 1.0e-04 (face-1) over 3 faces, and of a region's"
            + " mean 1.0e-04, all within the tolerance of 5.0e-04",
        comparison.detail());
  }

  @Test
  void failsBeyondTolerance() throws IOException {
    // 2.04 px over 40 px is an NME of 5.1%, 1e-3 above the CPU's 5%.
    EvaluationComparison comparison = compare(json("cuda:0", 2.04, 2.04, 2.04), cpuJson());

    assertEquals(Verdict.FAIL, comparison.verdict());
    assertTrue(
        comparison
            .detail()
            .startsWith(
                "over the tolerance of 5.0e-04: NME 5.1000% on cuda:0 and 5.0000% on cpu, a"
                    + " difference of 1.0e-03; region jaw: 5.1000% against 5.0000%"),
        comparison.detail());
    assertTrue(
        comparison
            .detail()
            .contains("3 of 3 faces differ by more, first face-1 at 5.1000% against 5.0000%"),
        comparison.detail());
  }

  @Test
  void failsOnOneFaceWhenMeanAgrees() throws IOException {
    // Face 3 is 1e-3 off, which moves the mean by only 3.3e-4.
    EvaluationComparison comparison = compare(json("cuda:0", 2, 2, 2.04), cpuJson());

    assertEquals(Verdict.FAIL, comparison.verdict());
    assertEquals(
        "over the tolerance of 5.0e-04: 1 of 3 faces differ by more, first face-3 at 5.1000%"
            + " against 5.0000%; the largest difference of a face's NME is 1.0e-03 (face-3) over"
            + " 3 faces, and of a region's mean 3.3e-04",
        comparison.detail());
  }

  @Test
  void failsWhenGpuRanElsewhere() throws IOException {
    EvaluationComparison comparison = compare(json("cpu", 2, 2, 2), cpuJson());

    assertEquals(Verdict.FAIL, comparison.verdict());
    assertEquals("the cuda:0 evaluation's evaluation.json names device cpu", comparison.detail());
  }

  @Test
  void failsOnOtherFaces() throws IOException {
    EvaluationComparison comparison = compare(json("cuda:0", 2, 2), cpuJson());

    assertEquals(Verdict.FAIL, comparison.verdict());
    assertEquals(
        "the two evaluations list other faces: 2 on cuda:0 and 3 on cpu, first face-1 and face-1",
        comparison.detail());
  }

  @Test
  void unmeasuredWithoutCpuFile() throws IOException {
    Path gpu = write("gpu.json", json("cuda:0", 2, 2, 2));

    EvaluationComparison comparison =
        EvaluationComparison.of(gpu, folder.resolve("none.json"), "cuda:0");

    assertEquals(Verdict.UNMEASURED, comparison.verdict());
    assertEquals(
        "the cpu evaluation wrote no "
            + folder.resolve("none.json")
            + ", so there is nothing to compare against",
        comparison.detail());
  }

  @Test
  void unmeasuredWhenCpuFileInvalid() throws IOException {
    String truncated = cpuJson().substring(0, cpuJson().length() / 2);

    EvaluationComparison comparison = compare(json("cuda:0", 2, 2, 2), truncated);

    assertEquals(Verdict.UNMEASURED, comparison.verdict());
    assertTrue(
        comparison.detail().contains("is invalid, so there is nothing to compare against: invalid"),
        comparison.detail());
  }

  @Test
  void failsWithoutGpuFile() throws IOException {
    Path cpu = write("cpu.json", cpuJson());

    EvaluationComparison comparison =
        EvaluationComparison.of(folder.resolve("none.json"), cpu, "cuda:0");

    assertEquals(Verdict.FAIL, comparison.verdict());
    assertEquals(
        "the cuda:0 evaluation wrote no " + folder.resolve("none.json"), comparison.detail());
  }

  @Test
  void failsWhenGpuFileMalformed() throws IOException {
    String wrongCount = json("cuda:0", 2, 2, 2).replace("\"faces\": 3", "\"faces\": 4");
    String noFaces = json("cuda:0", 2, 2, 2).replaceFirst("\"per_face\"", "\"faces_list\"");

    EvaluationComparison counted = compare(wrongCount, cpuJson());
    EvaluationComparison listed = compare(noFaces, cpuJson());
    EvaluationComparison text = compare("NME: 5.00%", cpuJson());

    assertEquals(Verdict.FAIL, counted.verdict());
    assertTrue(
        counted.detail().endsWith("is invalid: \"faces\" is 4.0, but \"per_face\" lists 3 faces"),
        counted.detail());
    assertEquals(Verdict.FAIL, listed.verdict());
    assertTrue(
        listed.detail().endsWith("is invalid: \"per_face\" is missing or not an array"),
        listed.detail());
    assertEquals(Verdict.FAIL, text.verdict());
    assertTrue(
        text.detail()
            .endsWith(
                "is invalid: invalid JSON: unexpected character 'N', expected a value at"
                    + " character 0"),
        text.detail());
  }

  @Test
  void failsWhenGpuFileNotUtf8OrEmpty() throws IOException {
    // "é" in Latin-1 is the single byte 0xE9, which is not valid UTF-8.
    Path latin1 = folder.resolve("latin1.json");
    Files.write(
        latin1,
        json("cuda:0", 2, 2, 2)
            .replace("face-1", "fac\u00e9")
            .getBytes(StandardCharsets.ISO_8859_1));
    String emptyCpu =
        "{\"device\": \"cpu\", \"nme\": 0.0, \"nme_by_region\": {}, \"per_face\": [],"
            + " \"faces\": 0}";

    EvaluationComparison notUtf8 =
        EvaluationComparison.of(latin1, write("cpu.json", cpuJson()), "cuda:0");
    EvaluationComparison noFaces = compare(json("cuda:0", 2, 2, 2), emptyCpu);

    assertEquals(Verdict.FAIL, notUtf8.verdict());
    assertTrue(
        notUtf8.detail().contains("is invalid: the file is not UTF-8 text"), notUtf8.detail());
    assertEquals(Verdict.UNMEASURED, noFaces.verdict());
    assertTrue(noFaces.detail().contains("\"per_face\" lists no faces"), noFaces.detail());
  }

  @Test
  void parsesEvaluatorJson() {
    Evaluation evaluation = Evaluation.parse(json("cuda:1", 2, 4));

    assertEquals("cuda:1", evaluation.device());
    assertEquals(0.075, evaluation.nme(), 1e-15);
    assertEquals(
        List.of("jaw", "brows", "nose", "eyes", "mouth"),
        List.copyOf(evaluation.regions().keySet()));
    assertEquals(0.075, evaluation.regions().get("eyes"), 1e-15);
    assertEquals(
        List.of(
            new EvaluationComparison.Face("face-1", 0.05),
            new EvaluationComparison.Face("face-2", 0.1)),
        evaluation.faces());
  }

  @Test
  void compareEvaluationPrintsVerdict() throws IOException {
    Path gpu = write("gpu.json", json("cuda:0", 2, 2, 2));
    Path cpu = write("cpu.json", cpuJson());

    String output =
        GpuReportTest.printed("compare-evaluation", gpu.toString(), cpu.toString(), "cuda:0");

    assertEquals(
        List.of(
            "comparison=pass",
            "detail=NME 5.0000% on cuda:0 and 5.0000% on cpu, a difference of 0.0e+00; the"
                + " largest difference of a face's NME is 0.0e+00 (face-1) over 3 faces, and of a"
                + " region's mean 0.0e+00, all within the tolerance of 5.0e-04"),
        output.lines().toList());
  }

  private EvaluationComparison compare(String gpuJson, String cpuJson) throws IOException {
    return EvaluationComparison.of(
        write("gpu.json", gpuJson), write("cpu.json", cpuJson), "cuda:0");
  }

  private Path write(String name, String text) throws IOException {
    return Files.writeString(folder.resolve(name), text);
  }

  private static String cpuJson() {
    return json("cpu", CPU_SHIFT, CPU_SHIFT, CPU_SHIFT);
  }

  /**
   * Returns the evaluation.json that {@code kiln evaluate} writes for faces face-1, face-2, ...,
   * whose predicted points all sit {@code shifts[i]} pixels right of the true ones, so face i's
   * NME, and each of its regions', is {@code shifts[i] / EYES}.
   */
  private static String json(String device, double... shifts) {
    Evaluator evaluator = new Evaluator("best.safetensors", "faces.csv", device);
    for (int i = 0; i < shifts.length; i++) {
      double[] truth = new double[136];
      double[] predicted = new double[136];
      for (int point = 0; point < 68; point++) {
        // Points 36 and 45, the outer eye corners, end up EYES pixels apart.
        truth[2 * point] = point * EYES / 9;
        truth[2 * point + 1] = 10;
        predicted[2 * point] = truth[2 * point] + shifts[i];
        predicted[2 * point + 1] = 10;
      }
      evaluator.add(Nme.of("face-" + (i + 1), predicted, truth));
    }
    return evaluator.result().toJson();
  }
}
