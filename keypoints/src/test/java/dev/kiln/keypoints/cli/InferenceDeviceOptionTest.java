package dev.kiln.keypoints.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import dev.kiln.core.backend.cuda.CachingAllocator;
import dev.kiln.core.backend.cuda.CudaAvailability;
import dev.kiln.core.backend.device.DeviceKernels;
import dev.kiln.core.tensor.Device;
import dev.kiln.keypoints.data.TestData;
import dev.kiln.keypoints.predict.TestCheckpoints;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@code --device} option of {@code evaluate} and {@code predict}: an unusable or invalid
 * device is rejected before any file is read, with the same messages as {@code train}, {@code auto}
 * prints its choice, and {@code emulated} gives the CPU's results. The emulated runs use a small
 * model and a few faces, because the emulator takes milliseconds per kernel launch.
 */
class InferenceDeviceOptionTest {

  private static final Pattern NME = Pattern.compile("\"nme\": ([-0-9.Ee]+),");

  private static final Pattern DEVICE = Pattern.compile("\"device\": \"([^\"]*)\"");

  private static final Pattern COORDINATE = Pattern.compile("-?[0-9]+\\.[0-9]{2}");

  @TempDir Path folder;

  private final StringWriter out = new StringWriter();
  private final StringWriter err = new StringWriter();

  /** Runs the command line with its failure handler and returns the exit status. */
  private int kiln(String... arguments) {
    var commandLine = Main.newCommandLine();
    commandLine.setOut(new PrintWriter(out, true));
    commandLine.setErr(new PrintWriter(err, true));
    return commandLine.execute(arguments);
  }

  /** Writes a CSV of the first {@code faces} rows of the test split and returns it. */
  private Path testCsv(int faces) throws IOException {
    Path data = TestData.facialKeypoints();
    List<String> rows =
        Files.readAllLines(data.resolve("test_frames_keypoints.csv"), StandardCharsets.UTF_8);
    return Files.write(
        folder.resolve("faces.csv"), rows.subList(0, faces + 1), StandardCharsets.UTF_8);
  }

  /** Runs {@code kiln evaluate} of the small model on {@code csv} into {@code output}. */
  private int evaluate(Path csv, Path output, String device) throws IOException {
    return kiln(
        "evaluate",
        "--checkpoint",
        TestCheckpoints.writeSmall(folder).toString(),
        "--csv",
        csv.toString(),
        "--images",
        TestData.facialKeypoints().resolve("test").toString(),
        "--output",
        output.toString(),
        "--device",
        device);
  }

  /** Returns the emulated device's allocator, whose allocation count shows that work ran there. */
  private static CachingAllocator emulatedAllocator() {
    return DeviceKernels.of(Device.parse("emulated")).runtime().allocator();
  }

  private static String group(Pattern pattern, String text) {
    Matcher matcher = pattern.matcher(text);
    assertTrue(matcher.find(), pattern + " not found in " + text);
    return matcher.group(1);
  }

  @Test
  void evaluateRejectsUnusableCuda() {
    CudaAvailability gpu = CudaAvailability.check(0);
    assumeFalse(gpu.usable(), "cuda:0 is usable here, so evaluating on it is not rejected");
    Path output = folder.resolve("report");

    int status =
        kiln(
            "evaluate",
            "--checkpoint",
            folder.resolve("absent.safetensors").toString(),
            "--output",
            output.toString(),
            "--device",
            "cuda");

    assertEquals(2, status);
    String message = err.toString();
    assertTrue(message.contains("kiln evaluate: cannot evaluate on cuda:0: "), message);
    assertTrue(message.contains(gpu.message().replaceAll("\\.$", "")), message);
    assertTrue(message.contains("To evaluate on the CPU instead, use --device cpu."), message);
    assertFalse(message.contains("absent.safetensors"), "the checkpoint is not read first");
    assertFalse(Files.exists(output), "a rejected device leaves no output folder");
  }

  @Test
  void predictRejectsUnusableCuda() {
    CudaAvailability gpu = CudaAvailability.check(0);
    assumeFalse(gpu.usable(), "cuda:0 is usable here, so predicting on it is not rejected");
    Path output = folder.resolve("predictions");

    int status =
        kiln(
            "predict",
            "--checkpoint",
            folder.resolve("absent.safetensors").toString(),
            "--output",
            output.toString(),
            "--device",
            "cuda:0",
            folder.resolve("absent.jpg").toString());

    assertEquals(2, status);
    String message = err.toString();
    assertTrue(message.contains("kiln predict: cannot predict on cuda:0: "), message);
    assertTrue(message.contains(gpu.message().replaceAll("\\.$", "")), message);
    assertTrue(message.contains("To predict on the CPU instead, use --device cpu."), message);
    assertFalse(message.contains("absent"), "no file is read first: " + message);
    assertFalse(Files.exists(output), "a rejected device leaves no output folder");
  }

  @Test
  void invalidDeviceNamedByEachCommand() {
    int evaluateStatus = kiln("evaluate", "--checkpoint", "x.safetensors", "--device", "gpu7");
    String evaluateErr = err.toString();
    err.getBuffer().setLength(0);
    int predictStatus = kiln("predict", "--checkpoint", "x.safetensors", "--device", "gpu7", "a");
    String predictErr = err.toString();

    assertEquals(2, evaluateStatus);
    assertTrue(evaluateErr.contains("kiln evaluate: invalid device 'gpu7'"), evaluateErr);
    assertTrue(evaluateErr.contains("--device also accepts auto."), evaluateErr);
    assertEquals(2, predictStatus);
    assertTrue(predictErr.contains("kiln predict: invalid device 'gpu7'"), predictErr);
    assertTrue(predictErr.contains("--device also accepts auto."), predictErr);
  }

  @Test
  void evaluateAutoRecordsChoice() throws IOException {
    CudaAvailability gpu = CudaAvailability.check(0);
    Path output = folder.resolve("report");

    int status = evaluate(testCsv(2), output, "auto");

    assertEquals(0, status, err.toString());
    String expected =
        gpu.usable()
            ? "device auto: using cuda:0, which is usable: " + gpu.message()
            : "device auto: using the CPU, because " + gpu.message();
    assertTrue(out.toString().contains(expected), out.toString());
    String json = Files.readString(output.resolve("evaluation.json"));
    assertEquals(gpu.usable() ? "cuda:0" : "cpu", group(DEVICE, json));
  }

  @Test
  void evaluateOnEmulatedMatchesCpu() throws IOException {
    Path csv = testCsv(3);

    int cpuStatus = evaluate(csv, folder.resolve("cpu"), "cpu");
    long allocations = emulatedAllocator().stats().allocations();
    int emulatedStatus = evaluate(csv, folder.resolve("emulated"), "emulated");

    assertEquals(0, cpuStatus, err.toString());
    assertEquals(0, emulatedStatus, err.toString());
    assertTrue(out.toString().contains("device emulated: "), out.toString());
    assertTrue(emulatedAllocator().stats().allocations() > allocations, "no work on emulated");
    String cpuJson = Files.readString(folder.resolve("cpu/evaluation.json"));
    String emulatedJson = Files.readString(folder.resolve("emulated/evaluation.json"));
    assertEquals("cpu", group(DEVICE, cpuJson));
    assertEquals("emulated", group(DEVICE, emulatedJson));
    double cpuNme = Double.parseDouble(group(NME, cpuJson));
    double emulatedNme = Double.parseDouble(group(NME, emulatedJson));
    assertTrue(cpuNme > 0.01, "an untrained model has a large NME, got " + cpuNme);
    // Moving every point by d pixels moves the NME by at most d over the outer-eye distance, which
    // is over 20 pixels for these faces. d stays under 0.01 pixels (see
    // KeypointDetectorDeviceTest),
    // so the NMEs differ by under 5e-4.
    assertEquals(cpuNme, emulatedNme, 5e-4);
  }

  @Test
  void predictOnEmulatedMatchesCpu() throws IOException {
    Path image = TestData.facialKeypoints().resolve("test").resolve("James_Wolfensohn_00.jpg");
    Path checkpoint = TestCheckpoints.writeSmall(folder);
    String[] common = {"predict", "--checkpoint", checkpoint.toString(), image.toString()};

    int cpuStatus = kiln(append(common, "--output", folder.resolve("cpu").toString()));
    long allocations = emulatedAllocator().stats().allocations();
    int emulatedStatus =
        kiln(
            append(
                common, "--output", folder.resolve("emulated").toString(), "--device", "emulated"));

    assertEquals(0, cpuStatus, err.toString());
    assertEquals(0, emulatedStatus, err.toString());
    assertTrue(emulatedAllocator().stats().allocations() > allocations, "no work on emulated");
    List<Double> cpu = coordinates(folder.resolve("cpu/predictions.json"));
    List<Double> emulated = coordinates(folder.resolve("emulated/predictions.json"));
    assertEquals(136, cpu.size());
    assertEquals(136, emulated.size());
    for (int i = 0; i < cpu.size(); i++) {
      // predictions.json rounds to 0.01 pixels, so values that differ by float32 rounding can
      // round one step apart.
      assertEquals(cpu.get(i), emulated.get(i), 0.0100001, "coordinate " + i);
    }
    assertTrue(Files.isRegularFile(folder.resolve("emulated/James_Wolfensohn_00.png")));
    String cpuJson = Files.readString(folder.resolve("cpu/predictions.json"));
    String emulatedJson = Files.readString(folder.resolve("emulated/predictions.json"));
    assertTrue(cpuJson.contains("\"device\": \"cpu\""), cpuJson);
    assertTrue(emulatedJson.contains("\"device\": \"emulated\""), emulatedJson);
  }

  @Test
  void helpDescribesDevice() {
    int evaluateStatus = kiln("evaluate", "--help");
    String evaluateHelp = out.toString().replaceAll("\\s+", " ");
    out.getBuffer().setLength(0);
    int predictStatus = kiln("predict", "--help");
    String predictHelp = out.toString().replaceAll("\\s+", " ");

    String expected =
        "--device=<device> Device that runs the model (default: cpu): cpu, cuda (the same as"
            + " cuda:0), cuda:N, auto";
    assertEquals(0, evaluateStatus);
    assertTrue(evaluateHelp.contains(expected), evaluateHelp);
    assertTrue(evaluateHelp.contains("a test device, far slower than cpu)."), evaluateHelp);
    assertEquals(0, predictStatus);
    assertTrue(predictHelp.contains(expected), predictHelp);
  }

  /** Returns the keypoint coordinates of the one image in a predictions.json. */
  private static List<Double> coordinates(Path predictions) throws IOException {
    String json = Files.readString(predictions);
    String keypoints = json.substring(json.indexOf("\"keypoints\""));
    return COORDINATE.matcher(keypoints).results().map(m -> Double.valueOf(m.group())).toList();
  }

  private static String[] append(String[] first, String... more) {
    String[] all = Arrays.copyOf(first, first.length + more.length);
    System.arraycopy(more, 0, all, first.length, more.length);
    return all;
  }
}
