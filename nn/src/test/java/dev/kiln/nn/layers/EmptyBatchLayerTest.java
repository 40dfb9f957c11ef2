package dev.kiln.nn.layers;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.Module;
import dev.kiln.nn.Sequential;
import dev.kiln.nn.init.Init;
import dev.kiln.nn.loss.Loss;
import dev.kiln.nn.loss.MSELoss;
import dev.kiln.nn.loss.SmoothL1Loss;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A small CNN run on a batch of 0 images, compared with PyTorch 1.13. The output and the input
 * gradient are empty, a mean loss is NaN and every parameter gradient is zero. The batch norm
 * running statistics stay as they were, in training and in evaluation mode.
 */
class EmptyBatchLayerTest {
  private static final int OUTPUTS = 3;

  static Stream<Arguments> placements() {
    Device emulated = Device.parse("emulated");
    return Stream.of(
        Arguments.of(Named.of("cpu", Device.CPU), DType.FLOAT32, true),
        Arguments.of(Named.of("cpu", Device.CPU), DType.FLOAT64, true),
        Arguments.of(Named.of("emulated", emulated), DType.FLOAT32, true),
        Arguments.of(Named.of("cpu", Device.CPU), DType.FLOAT32, false),
        Arguments.of(Named.of("cpu", Device.CPU), DType.FLOAT64, false),
        Arguments.of(Named.of("emulated", emulated), DType.FLOAT32, false));
  }

  private static Sequential smallCnn() {
    Generator g = new Generator(11);
    int[] ones = {1, 1};
    return new Sequential(
        new Conv2d(2, 4, new int[] {3, 3}, ones, ones, ones, true, DType.FLOAT32, g),
        new BatchNorm2d(4),
        new ReLU(),
        new MaxPool2d(2),
        new Conv2d(4, 4, new int[] {3, 3}, ones, ones, ones, false, DType.FLOAT32, g),
        new AvgPool2d(2),
        new Flatten(),
        new Dropout(0.5, new Generator(12)),
        new Linear(4 * 2 * 2, 6, true, DType.FLOAT32, g),
        new BatchNorm1d(6),
        new Linear(6, OUTPUTS, true, DType.FLOAT32, g));
  }

  private static Map<String, double[]> buffers(Module model) {
    Map<String, double[]> values = new LinkedHashMap<>();
    model.namedBuffers().forEach((name, t) -> values.put(name, t.to(Device.CPU).toDoubleArray()));
    return values;
  }

  @ParameterizedTest(name = "{0} {1} training={2}")
  @MethodSource("placements")
  void emptyBatchThroughSmallCnn(Device device, DType dtype, boolean training) {
    Sequential model = smallCnn();
    model.to(dtype);
    model.to(device);
    // A training-mode forward pass on a non-empty batch moves the running statistics away from
    // their defaults, so that an unchanged value means something.
    Tensor warmUp = Init.uniform(Tensor.zeros(dtype, 3, 2, 8, 8), -1, 1, new Generator(13));
    model.train();
    model.forward(warmUp.to(device));
    Map<String, double[]> before = buffers(model);
    model.train(training);

    Tensor x = Tensor.zeros(dtype, 0, 2, 8, 8).to(device).requiresGrad(true);
    Tensor out = model.forward(x);
    Tensor target = Tensor.zeros(dtype, 0, OUTPUTS).to(device);
    model.zeroGrad();
    for (Loss loss : new Loss[] {new MSELoss(), new SmoothL1Loss()}) {
      Tensor value = loss.compute(out, target);
      assertArrayEquals(new int[0], value.shape(), loss + " shape");
      assertEquals(Double.NaN, value.to(Device.CPU).item(), 0.0, loss + " value");
      value.backward(null, true);
    }

    assertArrayEquals(new int[] {0, OUTPUTS}, out.shape(), "output shape");
    assertEquals(device, out.device(), "output device");
    assertArrayEquals(new int[] {0, 2, 8, 8}, x.grad().shape(), "input gradient shape");
    model
        .namedParameters()
        .forEach(
            (name, parameter) -> {
              Tensor grad = parameter.grad();
              assertNotNull(grad, name + " gradient");
              assertArrayEquals(parameter.shape(), grad.shape(), name + " gradient shape");
              for (double value : grad.to(Device.CPU).toDoubleArray()) {
                assertEquals(0.0, value, 0.0, name + " gradient");
              }
            });
    Map<String, double[]> after = buffers(model);
    assertEquals(before.keySet(), after.keySet());
    before.forEach(
        (name, values) -> assertArrayEquals(values, after.get(name), 0.0, name + " changed"));
  }
}
