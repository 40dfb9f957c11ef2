package dev.kiln.nn.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.golden.GoldenCases;
import dev.kiln.nn.golden.GoldenCases.GoldenCase;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.opentest4j.AssertionFailedError;
import org.opentest4j.TestAbortedException;

/** Tests on the PyTorch reference cases, skipped when the golden folder is not configured. */
class SafetensorsGoldenTest {

  @Test
  void everyGoldenFileReads() throws Exception {
    List<Path> files;
    try (Stream<Path> paths = Files.list(GoldenCases.folder())) {
      files = paths.filter(path -> path.toString().endsWith(".safetensors")).sorted().toList();
    }

    assertFalse(files.isEmpty(), "no .safetensors files in " + GoldenCases.folder());
    for (Path file : files) {
      GoldenCase golden = GoldenCases.load(file.getFileName().toString());
      assertFalse(golden.meta("layer").isBlank(), file + " has an empty layer");
      for (String name : golden.file().names()) {
        Tensor tensor = golden.tensor(name);
        int[] shape = golden.file().shape(name);
        assertEquals(DType.FLOAT64, tensor.dtype(), file + " " + name);
        assertArrayEquals(shape, tensor.shape(), file + " " + name);
      }
    }
  }

  @Test
  void linearCaseShapesAndMetadata() {
    GoldenCase linear = GoldenCases.load("linear_3x7_to_5.safetensors");

    assertEquals("Linear", linear.meta("layer"));
    assertEquals(7, linear.metaInt("in_features"));
    assertEquals(5, linear.metaInt("out_features"));
    assertTrue(linear.metaBool("bias"));
    assertArrayEquals(new int[] {5, 7}, linear.tensor("weight").shape());
    assertArrayEquals(new int[] {3, 7}, linear.tensor("input").shape());
    assertArrayEquals(new int[] {5}, linear.tensor("bias").shape());
    assertTrue(linear.has("grad_weight"));
    assertFalse(linear.has("running_mean_before"));
  }

  @Test
  void linearCaseOutputMatchesInputs() {
    // output = input . weight^T + bias, so the stored tensors must agree to float64 rounding.
    GoldenCase linear = GoldenCases.load("linear_3x7_to_5.safetensors");
    double[] x = linear.tensor("input").toDoubleArray();
    double[] w = linear.tensor("weight").toDoubleArray();
    double[] b = linear.tensor("bias").toDoubleArray();
    double[] y = linear.tensor("output").toDoubleArray();

    for (int row = 0; row < 3; row++) {
      for (int out = 0; out < 5; out++) {
        double sum = b[out];
        for (int in = 0; in < 7; in++) {
          sum += x[row * 7 + in] * w[out * 7 + in];
        }
        assertEquals(sum, y[row * 5 + out], 1e-12, "output[" + row + "][" + out + "]");
      }
    }
  }

  @Test
  void adamCaseMetadataNumbers() {
    GoldenCase adam = GoldenCases.load("adam.safetensors");

    assertArrayEquals(new double[] {0.9, 0.999}, adam.metaDoubles("betas"));
    assertEquals(1e-8, adam.metaDouble("eps"));
    assertEquals(6, adam.metaInt("steps"));
    assertArrayEquals(new int[] {6, 4, 3}, adam.tensor("params").shape());
  }

  @Test
  void goldenMetaRejectsMissingKey() {
    GoldenCase adam = GoldenCases.load("adam.safetensors");

    var e = assertThrows(IllegalArgumentException.class, () -> adam.meta("momentum"));

    assertTrue(e.getMessage().contains("no metadata key \"momentum\""), e.getMessage());
  }

  @Test
  void goldenMetaIntRejectsFraction() {
    GoldenCase adam = GoldenCases.load("adam.safetensors");

    var e = assertThrows(IllegalArgumentException.class, () -> adam.metaInt("lr"));

    assertTrue(e.getMessage().contains("\"0.01\", expected an integer"), e.getMessage());
  }

  @Test
  void goldenResolveSkipsWhenUnset() {
    var e = assertThrows(TestAbortedException.class, () -> GoldenCases.resolve("", null));

    assertTrue(e.getMessage().contains("-Dkiln.golden=PATH"), e.getMessage());
    assertTrue(e.getMessage().contains("KILN_GOLDEN"), e.getMessage());
  }

  @Test
  void goldenResolveFailsForMissingFolder(@TempDir Path folder) {
    String missing = folder.resolve("absent").toString();

    var e = assertThrows(AssertionFailedError.class, () -> GoldenCases.resolve(missing, null));

    assertTrue(e.getMessage().contains(missing), e.getMessage());
    assertTrue(e.getMessage().contains("does not exist"), e.getMessage());
  }

  @Test
  void goldenResolveFallsBackToEnvironment(@TempDir Path folder) {
    assertEquals(folder, GoldenCases.resolve("  ", folder.toString()));
  }

  @Test
  void goldenResolvePrefersProperty(@TempDir Path folder) {
    assertEquals(folder, GoldenCases.resolve(folder.toString(), "/nonexistent"));
  }
}
