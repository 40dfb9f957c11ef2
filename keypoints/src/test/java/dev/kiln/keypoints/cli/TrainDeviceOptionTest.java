package dev.kiln.keypoints.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.backend.cuda.CudaAvailability;
import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * The {@code --device} option of {@code train}: training runs only on the CPU so far, so a CUDA
 * device is rejected with a reason before any data is read, and an invalid name is named.
 */
class TrainDeviceOptionTest {

  private final StringWriter out = new StringWriter();
  private final StringWriter err = new StringWriter();

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
  void cudaDeviceRejectedWithReason() {
    int status = train("--device", "cuda:0", "--data", "no-such-folder");

    assertEquals(2, status);
    String message = err.toString();
    assertTrue(message.contains("training on cuda:0 is not implemented yet"), message);
    assertTrue(message.contains("Use --device cpu or --device auto."), message);
    CudaAvailability gpu = CudaAvailability.check(0);
    if (!gpu.usable()) {
      assertTrue(message.contains(gpu.message()), message);
    }
  }

  @Test
  void autoDeviceSaysWhyCpu() {
    train("--device", "auto", "--data", "no-such-folder");

    assertTrue(out.toString().contains("device auto: using the CPU, because "), out.toString());
  }

  @Test
  void emulatedDeviceRejected() {
    int status = train("--device", "emulated", "--data", "no-such-folder");

    assertEquals(2, status);
    assertTrue(
        err.toString().contains("training on emulated is not implemented yet"), err.toString());
  }

  @Test
  void invalidDeviceNamed() {
    int status = train("--device", "gpu7", "--data", "no-such-folder");

    assertEquals(2, status);
    assertTrue(err.toString().contains("invalid device 'gpu7'"), err.toString());
    assertTrue(err.toString().contains("--device also accepts auto."), err.toString());
  }
}
