package dev.kiln.nn.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.MemoryScope;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.init.Init;
import dev.kiln.nn.io.Safetensors;
import dev.kiln.nn.io.SafetensorsFile;
import dev.kiln.nn.layers.Linear;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * SGD, Adam and AdamW on the {@code emulated} device, against the same optimizer on the CPU: the
 * parameters start equal and get equal gradients, so only the update kernels differ. Also state
 * dicts saved from the device and loaded back, parameters on two devices in one optimizer, and
 * state that follows a parameter to another device.
 */
class DeviceOptimizerTest {
  private static final Device EMULATED = Device.parse("emulated");

  /**
   * Largest difference allowed between a parameter stepped on the CPU and on the device, after
   * {@link #STEPS} steps. The CPU computes each update in double and rounds the result to float32,
   * while the device computes in float32, so each step may differ by a few ulps of values of order
   * 1 (about 1e-7 each).
   */
  private static final double PARAM_TOLERANCE = 2e-6;

  private static final int STEPS = 5;

  @TempDir Path folder;

  /** The same parameter values on the CPU and on the device. */
  private record Twins(List<Tensor> cpu, List<Tensor> device) {}

  private static Twins twins(long seed) {
    Generator g = new Generator(seed);
    List<Tensor> cpu = new ArrayList<>();
    List<Tensor> device = new ArrayList<>();
    for (int[] shape : new int[][] {{3, 4}, {5}}) {
      Tensor values = Init.uniform(Tensor.zeros(DType.FLOAT32, shape), -1, 1, g);
      cpu.add(values.copy().requiresGrad(true));
      device.add(values.to(EMULATED).requiresGrad(true));
    }
    return new Twins(cpu, device);
  }

  /** Gives each parameter of both lists the same fresh gradient, drawn from {@code g}. */
  private static void setGradients(Twins twins, Generator g) {
    for (int i = 0; i < twins.cpu().size(); i++) {
      Tensor grad = Init.uniform(Tensor.zeros(DType.FLOAT32, twins.cpu().get(i).shape()), -1, 1, g);
      twins.cpu().get(i).setGrad(grad);
      twins.device().get(i).setGrad(grad.to(twins.device().get(i).device()));
    }
  }

  private static void assertClose(List<Tensor> expected, List<Tensor> actual, String what) {
    for (int i = 0; i < expected.size(); i++) {
      float[] want = expected.get(i).toFloatArray();
      float[] got = actual.get(i).toFloatArray();
      for (int j = 0; j < want.length; j++) {
        assertEquals(want[j], got[j], PARAM_TOLERANCE, what + ": parameter " + i + "[" + j + "]");
      }
    }
  }

  /**
   * Steps an optimizer over the CPU parameters and one over the device parameters {@link #STEPS}
   * times with equal gradients, then compares the parameters. Also checks that the parameters
   * moved, so that a step that does nothing cannot pass.
   */
  private static void assertDeviceStepsMatchCpu(
      Function<List<Tensor>, Optimizer> optimizer, String what) {
    Twins twins = twins(1);
    float[] start = twins.cpu().get(0).toFloatArray();
    Optimizer onCpu = optimizer.apply(twins.cpu());
    Optimizer onDevice = optimizer.apply(twins.device());
    Generator g = new Generator(2);

    for (int step = 0; step < STEPS; step++) {
      setGradients(twins, g);
      onCpu.step();
      onDevice.step();
    }

    for (Tensor parameter : twins.device()) {
      assertEquals(EMULATED, parameter.device());
    }
    assertClose(twins.cpu(), twins.device(), what);
    float[] end = twins.device().get(0).toFloatArray();
    assertTrue(Math.abs(end[0] - start[0]) > 100 * PARAM_TOLERANCE, what + " did not move");
  }

  @Test
  void adamStepsMatchCpu() {
    assertDeviceStepsMatchCpu(p -> new Adam(p).learningRate(0.01).weightDecay(0.1), "Adam");
  }

  @Test
  void adamWStepsMatchCpu() {
    assertDeviceStepsMatchCpu(p -> new AdamW(p).learningRate(0.01).weightDecay(0.05), "AdamW");
  }

  @Test
  void sgdWithMomentumStepsMatchCpu() {
    assertDeviceStepsMatchCpu(
        p -> new SGD(p, 0.1).momentum(0.9).dampening(0.1).weightDecay(0.01), "SGD momentum");
  }

  @Test
  void sgdWithNesterovStepsMatchCpu() {
    assertDeviceStepsMatchCpu(p -> new SGD(p, 0.1).momentum(0.9).nesterov(true), "SGD Nesterov");
  }

  @Test
  void plainSgdStepsMatchCpu() {
    assertDeviceStepsMatchCpu(p -> new SGD(p, 0.1), "plain SGD");
  }

  @Test
  void parametersOnTwoDevicesStepTogether() {
    Twins twins = twins(1);
    List<Tensor> mixed = List.of(twins.cpu().get(0).detach().copy(), twins.device().get(1));
    mixed.get(0).requiresGrad(true);
    Twins cpuAndMixed = new Twins(twins.cpu(), mixed);
    Optimizer onCpu = new Adam(cpuAndMixed.cpu()).learningRate(0.01);
    Optimizer onBoth = new Adam(cpuAndMixed.device()).learningRate(0.01);
    Generator g = new Generator(2);

    for (int step = 0; step < STEPS; step++) {
      setGradients(cpuAndMixed, g);
      onCpu.step();
      onBoth.step();
    }

    assertEquals(Device.CPU, mixed.get(0).device());
    assertEquals(EMULATED, mixed.get(1).device());
    assertClose(cpuAndMixed.cpu(), mixed, "Adam over cpu and emulated");
  }

  @Test
  void stateFollowsParameterToDevice() {
    Generator init = new Generator(3);
    Linear onCpu = new Linear(4, 3, true, DType.FLOAT32, init);
    Linear moved = new Linear(4, 3, true, DType.FLOAT32, new Generator(3));
    Optimizer cpuOptimizer = new SGD(onCpu.parameters(), 0.1).momentum(0.9);
    Optimizer movedOptimizer = new SGD(moved.parameters(), 0.1).momentum(0.9);
    Twins twins = new Twins(onCpu.parameters(), moved.parameters());
    Generator g = new Generator(2);
    setGradients(twins, g);
    cpuOptimizer.step();
    movedOptimizer.step();

    // The momentum buffers were made on the CPU, so the next step must carry them to the device.
    moved.to(EMULATED);
    for (int step = 0; step < STEPS; step++) {
      setGradients(twins, g);
      cpuOptimizer.step();
      movedOptimizer.step();
    }

    assertEquals(EMULATED, moved.weight().device());
    assertClose(twins.cpu(), twins.device(), "SGD after the move");
  }

  @Test
  void float64StateFollowsParameterToDevice() {
    Linear onCpu = new Linear(4, 3, true, DType.FLOAT64, new Generator(3));
    Linear moved = new Linear(4, 3, true, DType.FLOAT64, new Generator(3));
    Optimizer cpuOptimizer = new Adam(onCpu.parameters()).learningRate(0.01);
    Optimizer movedOptimizer = new Adam(moved.parameters()).learningRate(0.01);
    Twins twins = new Twins(onCpu.parameters(), moved.parameters());
    for (Tensor parameter : twins.cpu()) {
      parameter.setGrad(Tensor.full(1.0, DType.FLOAT64, parameter.shape()));
    }
    for (Tensor parameter : twins.device()) {
      parameter.setGrad(Tensor.full(1.0, DType.FLOAT64, parameter.shape()));
    }
    cpuOptimizer.step();
    movedOptimizer.step();

    // The moments are float64 on the CPU, so the next step must convert them and move them.
    onCpu.to(DType.FLOAT32);
    moved.to(DType.FLOAT32).to(EMULATED);
    Generator g = new Generator(2);
    for (int step = 0; step < STEPS; step++) {
      setGradients(twins, g);
      cpuOptimizer.step();
      movedOptimizer.step();
    }

    assertEquals(EMULATED, moved.weight().device());
    assertEquals(DType.FLOAT32, movedOptimizer.stateDict().get("0.exp_avg").dtype());
    assertClose(twins.cpu(), twins.device(), "Adam after the conversion and the move");
  }

  @Test
  void gradientOnAnotherDeviceIsRejected() {
    Twins twins = twins(1);
    Optimizer optimizer = new Adam(twins.device());
    Tensor parameter = twins.device().get(0);
    parameter.setGrad(Tensor.zeros(DType.FLOAT32, parameter.shape()));

    IllegalStateException error = assertThrows(IllegalStateException.class, optimizer::step);

    assertTrue(error.getMessage().contains("on emulated"), error.getMessage());
    assertTrue(error.getMessage().contains("gradient is on cpu"), error.getMessage());
    assertEquals(0, optimizer.steps());
  }

  @Test
  void deviceStateDictIsOnCpu() {
    Twins twins = twins(1);
    Optimizer optimizer = new Adam(twins.device()).learningRate(0.01);
    setGradients(twins, new Generator(2));
    optimizer.step();

    Map<String, Tensor> dict = optimizer.stateDict();

    assertTrue(dict.containsKey("0.exp_avg"), dict.keySet().toString());
    dict.forEach((name, value) -> assertEquals(Device.CPU, value.device(), name));
    // After one step from zero moments, m = (1 - beta1) * g.
    float[] grad = twins.device().get(0).grad().toFloatArray();
    float[] expAvg = dict.get("0.exp_avg").toFloatArray();
    for (int i = 0; i < grad.length; i++) {
      assertEquals(0.1 * grad[i], expAvg[i], 1e-7, "exp_avg " + i);
    }
  }

  @Test
  void deviceStateRoundTripsThroughFile() throws IOException {
    Twins twins = twins(1);
    Optimizer saved = new Adam(twins.device()).learningRate(0.01);
    Generator g = new Generator(2);
    for (int step = 0; step < STEPS; step++) {
      setGradients(twins, g);
      saved.step();
    }
    Path file = folder.resolve("adam.safetensors");
    Safetensors.write(file, saved.stateDict(), Map.of());
    SafetensorsFile contents = Safetensors.read(file);
    Map<String, Tensor> dict = new LinkedHashMap<>();
    for (String name : contents.names()) {
      dict.put(name, contents.tensor(name));
    }

    // Fresh parameters with the current values: one set on the device, one on the CPU.
    List<Tensor> onDevice = new ArrayList<>();
    List<Tensor> onCpu = new ArrayList<>();
    for (Tensor parameter : twins.device()) {
      onDevice.add(parameter.detach().copy().requiresGrad(true));
      onCpu.add(parameter.detach().to(Device.CPU).requiresGrad(true));
    }
    Optimizer loadedOnDevice = new Adam(onDevice);
    loadedOnDevice.loadStateDict(dict);
    Optimizer loadedOnCpu = new Adam(onCpu);
    loadedOnCpu.loadStateDict(dict);
    assertEquals(STEPS, loadedOnDevice.steps());
    assertEquals(0.01, loadedOnDevice.learningRate());

    // One more step with the same gradients: the device copies must match the original exactly,
    // and the CPU copy within float32 tolerance.
    Twins original = new Twins(onCpu, twins.device());
    setGradients(original, g);
    for (int i = 0; i < onDevice.size(); i++) {
      onDevice.get(i).setGrad(twins.device().get(i).grad());
    }
    saved.step();
    loadedOnDevice.step();
    loadedOnCpu.step();

    for (int i = 0; i < onDevice.size(); i++) {
      assertArrayEquals(
          twins.device().get(i).toFloatArray(), onDevice.get(i).toFloatArray(), "parameter " + i);
    }
    assertClose(onCpu, twins.device(), "Adam loaded on the CPU");
  }

  @Test
  void stepAfterItsScopeFailsCleanly() {
    Tensor weight = Tensor.of(new float[] {1, 2}, 2).to(EMULATED).requiresGrad(true);
    Adam adam = new Adam(List.of(weight));
    try (var _ = MemoryScope.open()) {
      weight.mul(weight).sum().backward();
    }
    try (var _ = MemoryScope.open()) {
      IllegalStateException e = assertThrows(IllegalStateException.class, adam::step);
      assertTrue(e.getMessage().contains("call step() inside that scope"), e.getMessage());
    }

    // The failed step created no state, so correct steps afterwards work and can be saved.
    for (int i = 0; i < 2; i++) {
      try (var _ = MemoryScope.open()) {
        adam.zeroGrad();
        weight.mul(weight).sum().backward();
        adam.step();
      }
    }
    assertEquals(2, adam.steps());
    Map<String, Tensor> saved = adam.stateDict();
    assertEquals(2, saved.get("0.exp_avg").numel());
    assertTrue(saved.get("0.exp_avg_sq").get(1) > 0);
  }
}
