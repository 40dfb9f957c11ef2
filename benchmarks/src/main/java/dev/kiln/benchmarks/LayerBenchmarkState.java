package dev.kiln.benchmarks;

import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.Module;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Parameters and layer shared by {@link LayerForwardBenchmark} and {@link LayerBackwardBenchmark}:
 * one layer of a keypoint preset at the input shape the layer receives in its model (see {@link
 * LayerCase}), in training mode with gradient recording on, as in a training step. The input
 * requires a gradient, so the backward pass of a conv or linear layer computes both the input and
 * the weight gradient.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 4, time = 1)
@Fork(
    value = 1,
    jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public abstract class LayerBenchmarkState {
  /** Every entry of {@link LayerCase#all()}; a unit test checks that the two lists agree. */
  @Param({
    "default/0-conv",
    "default/1-batchnorm",
    "default/2-relu",
    "default/3-maxpool",
    "default/4-conv",
    "default/5-batchnorm",
    "default/6-relu",
    "default/7-maxpool",
    "default/8-conv",
    "default/9-batchnorm",
    "default/10-relu",
    "default/11-maxpool",
    "default/12-conv",
    "default/13-batchnorm",
    "default/14-relu",
    "default/15-maxpool",
    "default/16-conv",
    "default/17-batchnorm",
    "default/18-relu",
    "default/19-maxpool",
    "default/21-dropout",
    "default/22-linear",
    "default/23-relu",
    "default/24-linear",
    "naimishnet/0-conv",
    "naimishnet/1-elu",
    "naimishnet/2-maxpool",
    "naimishnet/3-dropout",
    "naimishnet/4-conv",
    "naimishnet/5-elu",
    "naimishnet/6-maxpool",
    "naimishnet/7-dropout",
    "naimishnet/8-conv",
    "naimishnet/9-elu",
    "naimishnet/10-maxpool",
    "naimishnet/11-dropout",
    "naimishnet/12-conv",
    "naimishnet/13-elu",
    "naimishnet/14-maxpool",
    "naimishnet/15-dropout",
    "naimishnet/17-linear",
    "naimishnet/18-elu",
    "naimishnet/19-dropout",
    "naimishnet/20-linear",
    "naimishnet/22-dropout",
    "naimishnet/23-linear",
    "lenet-20m/0-conv",
    "lenet-20m/1-relu",
    "lenet-20m/2-maxpool",
    "lenet-20m/3-conv",
    "lenet-20m/4-relu",
    "lenet-20m/5-maxpool",
    "lenet-20m/6-conv",
    "lenet-20m/7-relu",
    "lenet-20m/8-maxpool",
    "lenet-20m/9-conv",
    "lenet-20m/10-relu",
    "lenet-20m/11-maxpool",
    "lenet-20m/13-linear",
    "lenet-20m/14-relu",
    "lenet-20m/15-dropout",
    "lenet-20m/16-linear",
    "lenet-20m/17-relu",
    "lenet-20m/18-dropout",
    "lenet-20m/19-linear",
    "lenet-48m/3-conv",
    "lenet-48m/4-relu",
    "lenet-48m/5-maxpool",
    "lenet-48m/6-conv",
    "lenet-48m/7-relu",
    "lenet-48m/8-maxpool",
    "lenet-48m/9-conv",
    "lenet-48m/10-relu",
    "lenet-48m/11-maxpool",
    "lenet-48m/13-linear",
    "lenet-48m/14-relu",
    "lenet-48m/15-dropout",
    "lenet-48m/16-linear",
    "lenet-48m/17-relu",
    "lenet-48m/18-dropout",
    "lenet-48m/19-linear",
    "default/3-avgpool",
    "default/7-avgpool",
    "default/11-avgpool",
    "default/15-avgpool",
    "default/19-avgpool",
    "default/21-batchnorm1d",
    "default/22-batchnorm1d",
    "default/23-batchnorm1d",
    "default/24-batchnorm1d",
  })
  public String layer;

  @Param({"32"})
  public int batch;

  /** Device to run on; see {@link BenchDevice} for the devices accepted today. */
  @Param({"cpu"})
  public String device;

  protected Device target;
  protected LayerCase layerCase;
  protected Module module;
  protected Tensor input;
  protected Tensor gradOutput;

  /** Builds the layer, a standard normal input batch and an all-ones output gradient. */
  @Setup(Level.Trial)
  public void buildLayer() {
    layerCase = LayerCase.parse(layer);
    target = BenchDevice.resolve(device);
    Generator generator = new Generator(42);
    module = layerCase.build(generator).to(target);
    int[] sample = layerCase.inputShape();
    int[] shape = new int[sample.length + 1];
    shape[0] = batch;
    System.arraycopy(sample, 0, shape, 1, sample.length);
    input = KeypointWorkload.gaussian(generator, shape).to(target);
    input.requiresGrad(true);
    gradOutput = Tensor.full(1.0, DType.FLOAT32, target, module.forward(input).shape());
  }
}
