package dev.kiln.benchmarks;

import dev.kiln.benchmarks.GpuReport.Verdict;
import dev.kiln.nn.io.Json;
import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The verdict on {@code kiln evaluate} of one checkpoint on a GPU, judged against the same
 * evaluation on the CPU, from the two {@code evaluation.json} files.
 *
 * <p>It passes when both files name the device that they were asked for, list the same faces in the
 * same order, and agree within {@link #TOLERANCE} on the mean NME, the mean NME of every region and
 * every face's NME. It fails when any of these does not hold, or when the GPU's file is missing or
 * invalid. It is unmeasured when the CPU's file is missing or invalid, because then there is
 * nothing to compare against. The failure rates and the CED curve are counts of per-face NMEs
 * against thresholds, so a face within the tolerance of a threshold may flip them. The per-face
 * check covers them instead.
 *
 * @param verdict pass, fail or unmeasured
 * @param detail the checks with their values, or the reason for the verdict
 */
record EvaluationComparison(Verdict verdict, String detail) {

  /**
   * Largest allowed difference between the two devices' NMEs, per face and for the means, as a
   * fraction of the inter-ocular distance: 5e-4 is 0.05 percentage points.
   *
   * <p>Both runs compute the same float32 model, and only the order of the sums differs. Reordering
   * a float32 sum of n terms moves it by at most about n × 2^-24 times the sum of the terms'
   * magnitudes. In preset {@code default}, the sum with the most terms is in its first linear
   * layer: 2304 of them. With magnitudes that add up to 1, an output there moves by up to 1.4e-4.
   * An output of 1 is 48 crop pixels, and a crop pixel covers at most 160 / 110.4 = 1.45 pixels of
   * a {@code SyntheticFaces} image (sides up to 160, shorter side rescaled to 110.4), so a keypoint
   * moves by up to 9.6e-3 pixels. A face's NME is the mean of its point distances over its
   * inter-ocular distance, so it moves by at most the largest point's shift over that distance,
   * which is at least 21.8 pixels in the check's test faces: 4.4e-4. The means move by at most as
   * much as the faces. On a 2-core x86-64 machine on 2026-12-05, {@code emulated}, which runs
   * kiln's CUDA kernels on the CPU, differed from the CPU by at most 5.0e-8 per face for the
   * check's checkpoint. A wrong kernel moves NMEs by whole percentage points.
   *
   * <p>NOTE: this bound covers the sums of the last layer, and relies on the earlier layers' errors
   * staying as small after the layers that follow them. cuDNN may choose Winograd or FFT
   * convolutions on a GPU, whose float32 errors are larger than a reordered sum's. No GPU has run
   * this comparison yet.
   */
  static final double TOLERANCE = 5e-4;

  /** One face of an {@code evaluation.json}: its image name and its NME. */
  record Face(String name, double nme) {}

  /**
   * The values of an {@code evaluation.json} that the comparison reads.
   *
   * @param device the device that ran the model
   * @param nme the mean NME over all faces
   * @param regions the mean NME of each region, by its label
   * @param faces every face in the order that the evaluation added them
   */
  record Evaluation(String device, double nme, Map<String, Double> regions, List<Face> faces) {

    /**
     * Parses the text of an {@code evaluation.json}.
     *
     * @throws IllegalArgumentException where the text is not JSON, lacks a key that the comparison
     *     reads, has a value of the wrong type, or has a face count other than the faces listed
     */
    static Evaluation parse(String json) {
      Object parsed;
      try {
        parsed = Json.parse(json);
      } catch (Json.ParseException e) {
        throw new IllegalArgumentException("invalid JSON: " + e.getMessage(), e);
      }
      if (!(parsed instanceof Map<?, ?> root)) {
        throw new IllegalArgumentException("the top level is not a JSON object");
      }
      String device = text(root, "device");
      double nme = number(root, "nme");
      Map<String, Double> regions = new LinkedHashMap<>();
      if (!(root.get("nme_by_region") instanceof Map<?, ?> byRegion)) {
        throw new IllegalArgumentException("\"nme_by_region\" is missing or not an object");
      }
      for (Object label : byRegion.keySet()) {
        regions.put((String) label, number(byRegion, (String) label));
      }
      List<Face> faces = faces(root);
      double count = number(root, "faces");
      if (count != faces.size()) {
        throw new IllegalArgumentException(
            "\"faces\" is " + count + ", but \"per_face\" lists " + faces.size() + " faces");
      }
      return new Evaluation(device, nme, regions, faces);
    }

    /** Returns the faces of "per_face", which must list at least one. */
    private static List<Face> faces(Map<?, ?> root) {
      if (!(root.get("per_face") instanceof List<?> entries)) {
        throw new IllegalArgumentException("\"per_face\" is missing or not an array");
      }
      List<Face> faces = new ArrayList<>();
      for (Object entry : entries) {
        if (!(entry instanceof Map<?, ?> face)) {
          throw new IllegalArgumentException(
              "entry " + (faces.size() + 1) + " of \"per_face\" is not an object");
        }
        faces.add(new Face(text(face, "name"), number(face, "nme")));
      }
      if (faces.isEmpty()) {
        throw new IllegalArgumentException(
            "\"per_face\" lists no faces, so there is nothing to compare");
      }
      return faces;
    }

    private static String text(Map<?, ?> object, String key) {
      if (!(object.get(key) instanceof String value)) {
        throw new IllegalArgumentException("\"" + key + "\" is missing or not a string");
      }
      return value;
    }

    private static double number(Map<?, ?> object, String key) {
      // The parser gives a Long for a whole number and a Double for any other.
      if (!(object.get(key) instanceof Number value)) {
        throw new IllegalArgumentException("\"" + key + "\" is missing or not a number");
      }
      return value.doubleValue();
    }
  }

  /**
   * Reads and compares the two files.
   *
   * @param gpuDevice the device that the GPU evaluation was asked for, such as {@code cuda:0}
   * @throws IOException where a file exists but cannot be read
   */
  static EvaluationComparison of(Path gpuFile, Path cpuFile, String gpuDevice) throws IOException {
    Evaluation cpu;
    try {
      cpu = Evaluation.parse(readUtf8(cpuFile));
    } catch (NoSuchFileException e) {
      return new EvaluationComparison(
          Verdict.UNMEASURED,
          "the cpu evaluation wrote no " + cpuFile + ", so there is nothing to compare against");
    } catch (IllegalArgumentException e) {
      return new EvaluationComparison(
          Verdict.UNMEASURED,
          "the cpu evaluation's "
              + cpuFile
              + " is invalid, so there is nothing to compare against: "
              + e.getMessage());
    }

    Evaluation gpu;
    try {
      gpu = Evaluation.parse(readUtf8(gpuFile));
    } catch (NoSuchFileException e) {
      return new EvaluationComparison(
          Verdict.FAIL, "the " + gpuDevice + " evaluation wrote no " + gpuFile);
    } catch (IllegalArgumentException e) {
      return new EvaluationComparison(
          Verdict.FAIL,
          "the " + gpuDevice + " evaluation's " + gpuFile + " is invalid: " + e.getMessage());
    }
    return of(gpu, cpu, gpuDevice);
  }

  /**
   * Returns the text of {@code file}, or throws an IllegalArgumentException, which the callers
   * report as an invalid file, where its bytes are not UTF-8.
   */
  private static String readUtf8(Path file) throws IOException {
    try {
      return Files.readString(file);
    } catch (CharacterCodingException e) {
      throw new IllegalArgumentException("the file is not UTF-8 text (" + e + ")", e);
    }
  }

  /** Compares the GPU's evaluation with the CPU's, which must name device {@code cpu}. */
  static EvaluationComparison of(Evaluation gpu, Evaluation cpu, String gpuDevice) {
    if (!cpu.device().equals("cpu")) {
      return new EvaluationComparison(
          Verdict.UNMEASURED,
          "the cpu evaluation ran on "
              + cpu.device()
              + " instead of cpu, so there is nothing to compare against");
    }
    if (!gpu.device().equals(gpuDevice)) {
      return new EvaluationComparison(
          Verdict.FAIL,
          "the " + gpuDevice + " evaluation's evaluation.json names device " + gpu.device());
    }
    List<String> gpuNames = gpu.faces().stream().map(Face::name).toList();
    List<String> cpuNames = cpu.faces().stream().map(Face::name).toList();
    if (!gpuNames.equals(cpuNames)) {
      return new EvaluationComparison(
          Verdict.FAIL,
          "the two evaluations list other faces: "
              + gpuNames.size()
              + " on "
              + gpuDevice
              + " and "
              + cpuNames.size()
              + " on cpu, first "
              + gpuNames.stream().findFirst().orElse("none")
              + " and "
              + cpuNames.stream().findFirst().orElse("none"));
    }
    if (!gpu.regions().keySet().equals(cpu.regions().keySet())) {
      return new EvaluationComparison(
          Verdict.FAIL,
          "the two evaluations list other regions: "
              + gpu.regions().keySet()
              + " on "
              + gpuDevice
              + " and "
              + cpu.regions().keySet()
              + " on cpu");
    }
    return compareValues(gpu, cpu, gpuDevice);
  }

  /** Compares the means and every face's NME of two evaluations of the same faces and regions. */
  private static EvaluationComparison compareValues(
      Evaluation gpu, Evaluation cpu, String gpuDevice) {
    List<String> failures = new ArrayList<>();
    double nmeDifference = Math.abs(gpu.nme() - cpu.nme());
    String means =
        "NME "
            + percent(gpu.nme())
            + " on "
            + gpuDevice
            + " and "
            + percent(cpu.nme())
            + " on cpu, a difference of "
            + scientific(nmeDifference);
    if (!(nmeDifference <= TOLERANCE)) {
      failures.add(means);
    }

    double largestRegion = 0;
    for (Map.Entry<String, Double> region : cpu.regions().entrySet()) {
      double difference = Math.abs(gpu.regions().get(region.getKey()) - region.getValue());
      largestRegion = Math.max(largestRegion, difference);
      if (!(difference <= TOLERANCE)) {
        failures.add(
            "region "
                + region.getKey()
                + ": "
                + percent(gpu.regions().get(region.getKey()))
                + " against "
                + percent(region.getValue())
                + ", a difference of "
                + scientific(difference));
      }
    }

    double largestFace = -1;
    String largestFaceName = "none";
    int facesOver = 0;
    String firstFaceOver = "";
    for (int i = 0; i < cpu.faces().size(); i++) {
      Face onCpu = cpu.faces().get(i);
      double difference = Math.abs(gpu.faces().get(i).nme() - onCpu.nme());
      if (difference > largestFace) {
        largestFace = difference;
        largestFaceName = onCpu.name();
      }
      if (!(difference <= TOLERANCE)) {
        facesOver++;
        if (firstFaceOver.isEmpty()) {
          firstFaceOver =
              ", first "
                  + onCpu.name()
                  + " at "
                  + percent(gpu.faces().get(i).nme())
                  + " against "
                  + percent(onCpu.nme());
        }
      }
    }
    String faces =
        "the largest difference of a face's NME is "
            + scientific(Math.max(largestFace, 0))
            + " ("
            + largestFaceName
            + ") over "
            + cpu.faces().size()
            + " faces, and of a region's mean "
            + scientific(largestRegion);
    if (facesOver > 0) {
      failures.add(
          facesOver + " of " + cpu.faces().size() + " faces differ by more" + firstFaceOver);
    }

    String tolerance = "the tolerance of " + scientific(TOLERANCE);
    if (!failures.isEmpty()) {
      return new EvaluationComparison(
          Verdict.FAIL, "over " + tolerance + ": " + String.join("; ", failures) + "; " + faces);
    }
    return new EvaluationComparison(
        Verdict.PASS, means + "; " + faces + ", all within " + tolerance);
  }

  /** Formats an NME as a percentage with enough digits to show float32 differences in context. */
  private static String percent(double nme) {
    return String.format(Locale.ROOT, "%.4f%%", 100 * nme);
  }

  private static String scientific(double value) {
    return String.format(Locale.ROOT, "%.1e", value);
  }
}
