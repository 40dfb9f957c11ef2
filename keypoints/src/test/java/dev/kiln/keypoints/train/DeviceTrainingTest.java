package dev.kiln.keypoints.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.keypoints.data.TestData;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A short training run on the {@code emulated} device, which runs kiln's CUDA kernels on the CPU.
 * The run trains, validates and saves checkpoints from a model that lives on the device, and its
 * losses match a CPU run of the same seed. Model and data are tiny because the emulator runs each
 * CUDA thread of a block on an OS thread, so every kernel launch costs milliseconds, and far more
 * on a busy machine.
 */
class DeviceTrainingTest {
  private static final Device EMULATED = Device.parse("emulated");

  /** Faces read from the CSV, one per person: 8 for training (2 steps) and 4 for validation. */
  private static final int ROWS = 12;

  /** Largest relative difference between the emulated and the CPU losses and NME. */
  private static final double TOLERANCE = 1e-3;

  /**
   * One conv block and a linear layer on 16x16 crops. Batch norm brings buffers, which move with
   * the model and go into the checkpoint. Dropout is left out because the emulated device draws its
   * masks differently from the CPU, and the test compares the two.
   */
  private static final String TINY_MODEL =
      """
      input 1x16x16
      conv 2 kernel=3 padding=1 bias=false
      batchnorm
      relu
      maxpool 4
      flatten
      linear 136
      """;

  @TempDir Path folder;

  private TrainOptions options(Path data) throws IOException {
    Path model = folder.resolve("tiny.txt");
    Files.writeString(model, TINY_MODEL);
    return new TrainOptions(
        data, model.toString(), 1, 4, "adam", 1e-3, 0, "l1", "none", 7, 0.34, 1, ROWS, 0, false);
  }

  private static PrintWriter quiet() {
    return new PrintWriter(new StringWriter());
  }

  @Test
  void emulatedRunMatchesCpuAndSaves() throws IOException {
    Path data = TestData.facialKeypoints();
    Path run = folder.resolve("emulated");

    EpochRecord cpu =
        Trainer.start(options(data), Device.CPU, folder.resolve("cpu"), quiet(), false)
            .run()
            .getFirst();
    List<EpochRecord> history = Trainer.start(options(data), EMULATED, run, quiet(), false).run();

    assertEquals(1, history.size());
    EpochRecord emulated = history.getFirst();
    assertTrue(Double.isFinite(emulated.trainLoss()), "train loss " + emulated);
    assertClose(cpu.trainLoss(), emulated.trainLoss(), "train loss");
    assertClose(cpu.validationLoss(), emulated.validationLoss(), "validation loss");
    assertClose(cpu.validationNme(), emulated.validationNme(), "validation NME");

    assertTrue(Files.isRegularFile(run.resolve(Trainer.BEST)), "missing " + Trainer.BEST);
    Checkpoint last = Checkpoint.read(run.resolve(Trainer.LAST));
    assertEquals(
        Set.of(
            "0.weight",
            "1.weight",
            "1.bias",
            "1.running_mean",
            "1.running_var",
            "5.weight",
            "5.bias"),
        last.model().keySet());
    Map<String, Tensor> cpuWeights = Checkpoint.read(folder.resolve("cpu/" + Trainer.LAST)).model();
    for (Map.Entry<String, Tensor> entry : last.model().entrySet()) {
      float[] values = entry.getValue().toFloatArray();
      float[] expected = cpuWeights.get(entry.getKey()).toFloatArray();
      // Two Adam steps of 1e-3 move each weight by up to about 2e-3, so a weight that the device
      // did not update, or updated twice, fails this check.
      for (int i = 0; i < values.length; i++) {
        assertEquals(expected[i], values[i], 1e-4, entry.getKey() + "[" + i + "]");
      }
    }
    assertEquals(
        Checkpoint.read(folder.resolve("cpu/" + Trainer.LAST)).optimizer().keySet(),
        last.optimizer().keySet(),
        "the optimizer's state is saved");
  }

  @Test
  void stalledEmulatedRunGetsTheDoctor() throws IOException {
    Path data = TestData.facialKeypoints();
    Path model = folder.resolve("tiny.txt");
    Files.writeString(model, TINY_MODEL);
    // Adam moves each weight by about 1e-9 per step at this learning rate, so the loss stalls
    // from the start and the doctor runs after the third epoch. The fourth epoch trains on the
    // device again.
    TrainOptions stalled =
        new TrainOptions(
            data,
            model.toString(),
            4,
            4,
            "adam",
            1e-9,
            0,
            "l1",
            "none",
            7,
            0.34,
            1,
            ROWS,
            0,
            false);
    Path run = folder.resolve("stalled");
    StringWriter text = new StringWriter();

    List<EpochRecord> history =
        Trainer.start(stalled, EMULATED, run, new PrintWriter(text, true), false).run();

    String output = text.toString();
    assertTrue(output.contains("running the doctor on the CPU"), output);
    assertTrue(Files.isRegularFile(run.resolve("doctor.md")), "missing doctor.md in " + run);
    assertEquals(4, history.size(), "the run must go on after the doctor");
    assertTrue(Double.isFinite(history.getLast().trainLoss()), "last epoch " + history.getLast());
  }

  private static void assertClose(double expected, double actual, String quantity) {
    assertEquals(expected, actual, TOLERANCE * Math.abs(expected), quantity);
  }
}
