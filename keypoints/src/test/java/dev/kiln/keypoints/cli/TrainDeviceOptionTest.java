package dev.kiln.keypoints.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import dev.kiln.core.backend.cuda.CudaAvailability;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * The {@code --device} option of {@code train}: an unusable CUDA device is rejected with the reason
 * before any data is read, {@code auto} prints which device it chose and why, {@code emulated} is
 * accepted, and an invalid name is named.
 */
class TrainDeviceOptionTest {

  private final StringWriter out = new StringWriter();
  private final StringWriter err = new StringWriter();

  @TempDir Path folder;

  private int train(String... args) {
    CommandLine commandLine = new CommandLine(new Main());
    commandLine.setOut(new PrintWriter(out, true));
    commandLine.setErr(new PrintWriter(err, true));
    String[] all = new String[args.length + 1];
    all[0] = "train";
    System.arraycopy(args, 0, all, 1, args.length);
    return commandLine.execute(all);
  }

  @Test
  void unusableCudaRejectedWithReason() {
    CudaAvailability gpu = CudaAvailability.check(0);
    assumeFalse(gpu.usable(), "cuda:0 is usable here, so training on it is not rejected");

    int status = train("--device", "cuda:0", "--data", "no-such-folder");

    assertEquals(2, status);
    String message = err.toString();
    assertTrue(message.contains("kiln train: cannot train on cuda:0: "), message);
    assertTrue(message.contains(gpu.message()), message);
    assertTrue(message.contains("To train on the CPU instead, use --device cpu."), message);
    assertFalse(message.contains("training_frames_keypoints.csv"), "no data is read first");
  }

  @Test
  void autoDevicePrintsChoiceAndReason() {
    CudaAvailability gpu = CudaAvailability.check(0);

    // Device names ignore case and surrounding spaces, and so does auto.
    train("--device", " AUTO", "--data", "no-such-folder", "--output", folder + "/run");

    String expected =
        gpu.usable()
            ? "device auto: using cuda:0, which is usable: " + gpu.message()
            : "device auto: using the CPU, because " + gpu.message();
    assertTrue(out.toString().contains(expected), out.toString());
  }

  @Test
  void emulatedDeviceAccepted() {
    Path run = folder.resolve("run");

    int status = train("--device", "emulated", "--data", "no-such-folder", "--output", "" + run);

    // The command gets past the device to the data, which this test leaves missing.
    assertEquals(1, status, err.toString());
    assertTrue(out.toString().contains("device emulated: "), out.toString());
    assertTrue(err.toString().contains("training_frames_keypoints.csv not found"), err.toString());
    assertFalse(Files.exists(run), "a failed start leaves no run folder behind");
  }

  @Test
  void invalidDeviceNamed() {
    int status = train("--device", "gpu7", "--data", "no-such-folder");

    assertEquals(2, status);
    assertTrue(err.toString().contains("invalid device 'gpu7'"), err.toString());
    assertTrue(err.toString().contains("--device also accepts auto."), err.toString());
  }

  @Test
  void resumeRejectsStartOptions() {
    Path run = folder.resolve("run");

    int status = train("--resume", "" + run, "--epochs", "3", "--lr", "5", "--batch-size", "7");

    assertEquals(1, status, err.toString());
    assertTrue(
        err.toString().contains("only --epochs, --device and --time-limit can change"),
        err.toString());
    assertTrue(err.toString().contains("drop --lr, --batch-size"), err.toString());
    assertFalse(Files.exists(run));
  }
}
