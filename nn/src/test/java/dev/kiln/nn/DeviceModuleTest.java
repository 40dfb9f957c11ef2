package dev.kiln.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.init.Init;
import dev.kiln.nn.io.ModelWeights;
import dev.kiln.nn.layers.BatchNorm2d;
import dev.kiln.nn.layers.Conv2d;
import dev.kiln.nn.layers.Flatten;
import dev.kiln.nn.layers.Linear;
import dev.kiln.nn.layers.ReLU;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Modules on the {@code emulated} device: moving parameters and buffers there and back in place,
 * the errors for float64, and state dicts that cross between the CPU and the device, directly and
 * through a safetensors file.
 */
class DeviceModuleTest {
  private static final Device EMULATED = Device.parse("emulated");

  /**
   * Largest difference allowed between a CPU forward pass and the emulated one. The two sum in
   * different orders and precisions, so the outputs (of order 1) differ by a few float32 ulps.
   */
  private static final double FORWARD_TOLERANCE = 1e-5;

  @TempDir Path folder;

  private static Sequential smallCnn(long seed) {
    Generator g = new Generator(seed);
    int[] one = {1, 1};
    return new Sequential(
        new Conv2d(1, 2, new int[] {3, 3}, one, one, one, true, DType.FLOAT32, g),
        new BatchNorm2d(2),
        new ReLU(),
        new Flatten(),
        new Linear(2 * 4 * 4, 3, true, DType.FLOAT32, g));
  }

  private static Sequential smallCnnOn(Device device, long seed) {
    Sequential model = smallCnn(seed);
    model.to(device);
    return model;
  }

  private static Tensor input(long seed) {
    return Init.uniform(Tensor.zeros(DType.FLOAT32, 2, 1, 4, 4), -1, 1, new Generator(seed));
  }

  private static Map<String, float[]> valuesOf(Module model) {
    Map<String, float[]> values = new LinkedHashMap<>();
    model.stateDict().forEach((name, tensor) -> values.put(name, tensor.toFloatArray()));
    return values;
  }

  private static void assertSameValues(Map<String, float[]> expected, Module model) {
    Map<String, Tensor> state = model.stateDict();
    assertEquals(expected.keySet(), state.keySet());
    expected.forEach(
        (name, values) -> assertArrayEquals(values, state.get(name).toFloatArray(), name));
  }

  private static void assertAllOn(Device device, Module model) {
    model
        .stateDict()
        .forEach((name, tensor) -> assertEquals(device, tensor.device(), name + " device"));
  }

  @Test
  void moveToDeviceAndBackKeepsValues() {
    Sequential model = smallCnn(1);
    // Running statistics that differ from their 0 and 1 defaults show that buffers move too.
    model.forward(input(2));
    Map<String, float[]> before = valuesOf(model);
    List<Tensor> parameters = model.parameters();

    assertSame(model, model.to(EMULATED));
    assertAllOn(EMULATED, model);
    assertSameValues(before, model);
    assertEquals(EMULATED, model.device());

    model.to(Device.CPU);
    assertAllOn(Device.CPU, model);
    assertSameValues(before, model);
    assertEquals(Device.CPU, model.device());
    for (int i = 0; i < parameters.size(); i++) {
      assertSame(parameters.get(i), model.parameters().get(i), "parameter " + i + " was replaced");
      assertTrue(parameters.get(i).requiresGrad(), "parameter " + i + " lost requiresGrad");
    }
  }

  @Test
  void layersKeepTheirTensorsAfterMove() {
    Sequential model = smallCnn(1);
    Conv2d conv = (Conv2d) model.get(0);
    Tensor weight = conv.weight();

    model.to(EMULATED);

    assertSame(weight, conv.weight());
    assertSame(weight, model.stateDict().get("0.weight"));
    assertEquals(EMULATED, conv.weight().device());
  }

  @Test
  void moveDropsGradients() {
    Sequential model = smallCnn(1);
    model.forward(input(2)).sum().backward();
    assertNotNull(model.parameters().get(0).grad());

    model.to(EMULATED);

    for (Tensor parameter : model.parameters()) {
      assertNull(parameter.grad());
    }
  }

  @Test
  void forwardOnDeviceMatchesCpu() {
    Sequential onCpu = smallCnn(1);
    Sequential onDevice = smallCnnOn(EMULATED, 1);
    Tensor x = input(2);

    float[] expected = onCpu.forward(x).toFloatArray();
    Tensor actual = onDevice.forward(x.to(EMULATED));

    assertEquals(EMULATED, actual.device());
    float[] values = actual.toFloatArray();
    assertEquals(expected.length, values.length);
    for (int i = 0; i < expected.length; i++) {
      assertEquals(expected[i], values[i], FORWARD_TOLERANCE, "output " + i);
    }
    // Training-mode batch norm updated the running statistics on the device as on the CPU.
    float[] cpuMean = ((BatchNorm2d) onCpu.get(1)).runningMean().toFloatArray();
    float[] deviceMean = ((BatchNorm2d) onDevice.get(1)).runningMean().toFloatArray();
    for (int i = 0; i < cpuMean.length; i++) {
      assertEquals(cpuMean[i], deviceMean[i], FORWARD_TOLERANCE, "running_mean " + i);
    }
  }

  @Test
  void moduleWithoutTensorsIsOnCpu() {
    ReLU relu = new ReLU();
    assertEquals(Device.CPU, relu.device());
    assertSame(relu, relu.to(EMULATED));
    assertEquals(Device.CPU, relu.device());
  }

  @Test
  void float64ModuleCannotMoveAndStaysPut() {
    Sequential model = smallCnn(1);
    model.to(DType.FLOAT64);

    IllegalArgumentException error =
        assertThrows(IllegalArgumentException.class, () -> model.to(EMULATED));

    assertTrue(error.getMessage().contains("'0.weight'"), error.getMessage());
    assertTrue(error.getMessage().contains("to(DType.FLOAT32)"), error.getMessage());
    assertAllOn(Device.CPU, model);
  }

  @Test
  void float64ConversionOnDeviceFailsClearly() {
    Sequential model = smallCnnOn(EMULATED, 1);
    Map<String, float[]> before = valuesOf(model);

    IllegalArgumentException error =
        assertThrows(IllegalArgumentException.class, () -> model.to(DType.FLOAT64));

    assertTrue(error.getMessage().contains("to(Device.CPU)"), error.getMessage());
    assertAllOn(EMULATED, model);
    assertSameValues(before, model);
  }

  @Test
  void float32ConversionOnDeviceIsANoOp() {
    Sequential model = smallCnnOn(EMULATED, 1);
    Map<String, float[]> before = valuesOf(model);

    assertSame(model, model.to(DType.FLOAT32));

    assertAllOn(EMULATED, model);
    assertSameValues(before, model);
  }

  @Test
  void cpuStateLoadsIntoDeviceModule() {
    Sequential source = smallCnn(1);
    source.forward(input(2));
    Sequential target = smallCnnOn(EMULATED, 7);

    Module.LoadResult result = target.loadStateDict(source.stateDict(), true);

    assertTrue(result.missing().isEmpty());
    assertTrue(result.unexpected().isEmpty());
    assertAllOn(EMULATED, target);
    assertSameValues(valuesOf(source), target);
  }

  @Test
  void float64CpuStateLoadsIntoDeviceModule() {
    Sequential source = smallCnn(1);
    source.to(DType.FLOAT64);
    Sequential target = smallCnnOn(EMULATED, 7);

    target.loadStateDict(source.stateDict(), true);

    assertAllOn(EMULATED, target);
    source.to(DType.FLOAT32);
    assertSameValues(valuesOf(source), target);
  }

  @Test
  void deviceStateLoadsIntoCpuModule() {
    Sequential source = smallCnnOn(EMULATED, 1);
    Sequential target = smallCnn(7);

    target.loadStateDict(source.stateDict(), true);

    assertAllOn(Device.CPU, target);
    assertSameValues(valuesOf(source), target);
  }

  @Test
  void loadIntoDeviceModuleUpdatesViews() {
    Sequential source = smallCnn(1);
    Sequential target = smallCnnOn(EMULATED, 7);
    Tensor weight = target.stateDict().get("4.weight");
    Tensor view = weight.view(-1);

    target.loadStateDict(source.stateDict(), true);

    assertSame(weight, target.stateDict().get("4.weight"));
    assertEquals(EMULATED, view.device());
    assertArrayEquals(source.stateDict().get("4.weight").toFloatArray(), view.toFloatArray());
  }

  @Test
  void loadedDeviceStateIsACopy() {
    Sequential source = smallCnnOn(EMULATED, 1);
    Sequential target = smallCnnOn(EMULATED, 7);
    target.loadStateDict(source.stateDict(), true);
    float[] loaded = target.stateDict().get("4.bias").toFloatArray();

    Init.constant(source.stateDict().get("4.bias"), 5);

    assertArrayEquals(loaded, target.stateDict().get("4.bias").toFloatArray());
  }

  @Test
  void deviceModuleWeightsRoundTripThroughFile() throws IOException {
    Sequential saved = smallCnn(1);
    saved.forward(input(2));
    Map<String, float[]> expected = valuesOf(saved);
    saved.to(EMULATED);
    Path file = folder.resolve("weights.safetensors");

    ModelWeights.save(saved, file, Map.of());
    Sequential onCpu = smallCnn(7);
    ModelWeights.load(onCpu, file, true);
    Sequential onDevice = smallCnnOn(EMULATED, 8);
    ModelWeights.load(onDevice, file, true);

    assertSameValues(expected, onCpu);
    assertAllOn(Device.CPU, onCpu);
    assertSameValues(expected, onDevice);
    assertAllOn(EMULATED, onDevice);
  }
}
