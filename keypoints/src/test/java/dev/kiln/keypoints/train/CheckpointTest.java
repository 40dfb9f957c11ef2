package dev.kiln.keypoints.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.Sequential;
import dev.kiln.nn.io.Safetensors;
import dev.kiln.nn.io.SafetensorsException;
import dev.kiln.nn.layers.Linear;
import dev.kiln.nn.layers.ReLU;
import dev.kiln.nn.optim.Adam;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointTest {
  @TempDir Path folder;

  private static Sequential model(long seed) {
    Generator g = new Generator(seed);
    return new Sequential(
        new Linear(3, 4, true, DType.FLOAT32, g),
        new ReLU(),
        new Linear(4, 2, true, DType.FLOAT32, g));
  }

  @Test
  void saveAndReadRestoresModelOptimizerAndMetadata() throws IOException {
    Sequential model = model(1);
    Adam adam = new Adam(model.parameters());
    model.forward(Tensor.ones(DType.FLOAT32, 2, 3)).sum().backward();
    adam.step();
    Path file = folder.resolve("last.safetensors");

    Checkpoint.save(file, model, adam, Map.of("epoch", "3"));
    Checkpoint read = Checkpoint.read(file);
    Sequential restored = model(2);
    read.loadModel(restored);
    Adam restoredAdam = new Adam(restored.parameters());
    read.loadOptimizer(restoredAdam);

    assertArrayEquals(
        model.parameters().get(0).toFloatArray(), restored.parameters().get(0).toFloatArray());
    assertEquals(1, restoredAdam.steps());
    assertEquals("3", read.metadata().get("epoch"));
  }

  @Test
  void readModelSkipsOptimizerState() throws IOException {
    Sequential model = model(1);
    Adam adam = new Adam(model.parameters());
    model.forward(Tensor.ones(DType.FLOAT32, 2, 3)).sum().backward();
    adam.step();
    Path file = folder.resolve("best.safetensors");
    Checkpoint.save(file, model, adam, Map.of("epoch", "3"));

    Checkpoint full = Checkpoint.read(file);
    Checkpoint modelOnly = Checkpoint.readModel(file);

    assertFalse(full.optimizer().isEmpty(), "Adam's state in the full read");
    assertTrue(
        modelOnly.optimizer().isEmpty(), "optimizer part: " + modelOnly.optimizer().keySet());
    assertEquals(full.model().keySet(), modelOnly.model().keySet());
    assertEquals("3", modelOnly.metadata().get("epoch"));
  }

  @Test
  void saveReplacesLinkToAnotherRun() throws IOException {
    Path otherRun = Files.createDirectory(folder.resolve("other"));
    Path original = otherRun.resolve(Trainer.LAST);
    Checkpoint.save(original, model(1), null, Map.of("run", "other"));
    byte[] originalBytes = Files.readAllBytes(original);
    Path link = Files.createSymbolicLink(folder.resolve(Trainer.LAST), original);

    Checkpoint.save(link, model(2), null, Map.of("run", "this"));

    assertFalse(Files.isSymbolicLink(link), "the link is still there");
    assertEquals("this", Checkpoint.read(link).metadata().get("run"));
    assertArrayEquals(originalBytes, Files.readAllBytes(original), "the other run's file changed");
  }

  @Test
  void truncatedFileNamesOtherCheckpoint() throws IOException {
    Path file = folder.resolve("best.safetensors");
    Checkpoint.save(file, model(1), null, Map.of("epoch", "3"));
    byte[] bytes = Files.readAllBytes(file);
    Files.write(file, Arrays.copyOf(bytes, bytes.length - 5));

    SafetensorsException error =
        assertThrows(SafetensorsException.class, () -> Checkpoint.readModel(file));

    String message = error.getMessage();
    assertEquals(file, error.file());
    assertTrue(message.startsWith(file + ": "), message);
    assertTrue(message.contains("truncated"), message);
    assertTrue(message.contains("If this is a kiln checkpoint, it is damaged"), message);
    assertTrue(message.contains("use the run's other checkpoint"), message);
  }

  @Test
  void fileWithoutModelTensorsIsRejected() throws IOException {
    Path file = folder.resolve("other.safetensors");
    Safetensors.write(file, Map.of("weight", Tensor.zeros(DType.FLOAT32, 2)), Map.of());

    IOException error = assertThrows(IOException.class, () -> Checkpoint.read(file));

    assertTrue(error.getMessage().contains("not a kiln checkpoint"), error.getMessage());
  }

  @Test
  void historyKeepsRowsAndDropsEpochsAfterResume() throws IOException {
    Path file = folder.resolve("history.csv");
    History history = History.open(file);
    history.add(new EpochRecord(1, 0.5, 0.4, 0.3, 1e-3, 10, 100, 0.1));
    history.add(new EpochRecord(2, 0.4, 0.3, 0.2, 1e-3, 10, 100, 0.1));
    history.add(new EpochRecord(3, 0.3, 0.2, 0.1, 1e-3, 10, 100, 0.1));

    History reopened = History.open(file);
    reopened.add(new EpochRecord(2, 0.45, 0.35, 0.25, 1e-3, 10, 100, 0.1));

    List<EpochRecord> records = History.open(file).records();
    assertEquals(2, records.size());
    assertEquals(0.45, records.get(1).trainLoss(), 1e-9);
    assertTrue(Files.readString(file).startsWith(EpochRecord.HEADER));
  }

  @Test
  void positionRoundTripsThroughMetadata() throws IOException {
    Position position = new Position(4, 17, 3.25, 17, 0.071, 612.5);

    assertEquals(position, Position.fromMetadata(position.toMetadata()));
  }

  @Test
  void batchSeedsDifferByEpochAndPosition() {
    assertTrue(BatchLoader.mix(1, 1, 0) != BatchLoader.mix(1, 2, 0));
    assertTrue(BatchLoader.mix(1, 1, 0) != BatchLoader.mix(1, 1, 1));
    assertTrue(BatchLoader.mix(1, 1, 0) != BatchLoader.mix(2, 1, 0));
  }
}
