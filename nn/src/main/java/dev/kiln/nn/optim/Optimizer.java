package dev.kiln.nn.optim;

import dev.kiln.core.autograd.GradMode;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.MemoryScope;
import dev.kiln.core.tensor.Shapes;
import dev.kiln.core.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Base of the optimizers: a fixed list of parameters, a learning rate and per-parameter state.
 *
 * <p>{@link #step()} updates each parameter's storage in place from its {@link Tensor#grad()},
 * outside autograd. Parameters without a gradient are skipped, as frozen layers are, but a step in
 * which no parameter has one fails, because the loss then cannot depend on any of them.
 *
 * <p>Subclasses keep each parameter's state in the map that {@link #step()} passes to them, under
 * the names of {@link #stateNames()}. A parameter has either all of those entries or none.
 *
 * <p>Parameters may live on any device, and one optimizer may hold parameters on several. Each
 * parameter's state lives on that parameter's device, except the step counts, which stay on the CPU
 * because the host reads them to compute bias corrections. A parameter moved to another device, or
 * converted to another dtype ({@code Module.to}), after its state was created takes its state along
 * on the next step. PyTorch 1.13 on the CPU keeps the state's old dtype instead: after {@code
 * model.double()}, SGD's momentum buffer stays float32, and Adam's next step fails an internal
 * assertion.
 */
public abstract class Optimizer {
  /** Name of the per-parameter step count, which is a zero-dimensional float64 tensor. */
  protected static final String STEP = "step";

  /** Key of the learning rate in {@link #stateDict()}. */
  private static final String LEARNING_RATE = "lr";

  private static final Logger LOG = LoggerFactory.getLogger(Optimizer.class);

  private final List<Tensor> parameters;
  private final List<Map<String, Tensor>> state;
  private double learningRate;
  private long steps;
  private List<Integer> lastSkipped = List.of();

  /**
   * Creates an optimizer over {@code parameters}: leaf tensors that require a gradient, each listed
   * once. Float32 and float64 parameters may be mixed.
   */
  protected Optimizer(List<Tensor> parameters, double learningRate) {
    Objects.requireNonNull(parameters, "parameters");
    if (parameters.isEmpty()) {
      throw new IllegalArgumentException(
          name() + " got an empty parameter list; pass the parameters of the model to train");
    }

    Map<Tensor, Integer> seen = new IdentityHashMap<>();
    for (int i = 0; i < parameters.size(); i++) {
      Tensor parameter = parameters.get(i);
      if (parameter == null) {
        throw new IllegalArgumentException(name() + ": parameter " + i + " is null");
      }
      requireTrainable(i, parameter);
      Integer first = seen.putIfAbsent(parameter, i);
      if (first != null) {
        throw new IllegalArgumentException(
            name()
                + ": parameter "
                + i
                + " is the same tensor as parameter "
                + first
                + "; list each parameter once");
      }
    }

    this.parameters = List.copyOf(parameters);
    this.state = new ArrayList<>();
    for (int i = 0; i < parameters.size(); i++) {
      state.add(new LinkedHashMap<>());
    }
    setLearningRate(learningRate);
  }

  private void requireTrainable(int index, Tensor parameter) {
    if (!parameter.isLeaf()) {
      throw new IllegalArgumentException(
          name()
              + ": parameter "
              + index
              + " is not a leaf tensor (an op produced it), so backward() stores no gradient in"
              + " it; pass the parameter tensor itself");
    }
    if (!parameter.requiresGrad()) {
      throw new IllegalArgumentException(
          name()
              + ": parameter "
              + index
              + " (shape "
              + Shapes.format(parameter.shape())
              + ") does not require a gradient, so it would never be updated; call"
              + " requiresGrad(true) on it or leave it out of the list");
    }
  }

  /**
   * Updates one parameter that has a gradient. Runs with autograd recording off.
   *
   * @param index the parameter's position in {@link #parameters()}
   * @param state this parameter's state, empty before its first update, which the method fills
   */
  protected abstract void update(
      int index, Tensor parameter, Tensor grad, Map<String, Tensor> state);

  /** Returns the names of the per-parameter state entries, such as {@code exp_avg}. */
  protected abstract List<String> stateNames();

  /** Rejects settings that are invalid only in combination; called at the start of each step. */
  protected void validateSettings() {}

  /**
   * Updates every parameter that has a gradient, skipping the others.
   *
   * @throws IllegalStateException if no parameter has a gradient, or if a gradient's shape or dtype
   *     differs from its parameter's
   */
  public final void step() {
    validateSettings();

    List<Integer> skipped = new ArrayList<>();
    for (int i = 0; i < parameters.size(); i++) {
      Tensor grad = parameters.get(i).grad();
      if (grad == null) {
        skipped.add(i);
      } else {
        requireMatchingGrad(i, parameters.get(i), grad);
      }
    }
    if (skipped.size() == parameters.size()) {
      throw new IllegalStateException(
          "none of the "
              + name()
              + " optimizer's "
              + parameters.size()
              + " parameters received a gradient in the last backward pass, so the loss does not"
              + " depend on them. Was the optimizer built for another instance of the model, or"
              + " did backward() not run before step()?");
    }

    // Frozen parameters skip every step, so log the skipped set only when it changes.
    if (!skipped.isEmpty() && !skipped.equals(lastSkipped)) {
      LOG.debug(
          "{} step {}: skipping {} of {} parameters that have no gradient: {}",
          name(),
          steps + 1,
          skipped.size(),
          parameters.size(),
          skipped);
    }
    lastSkipped = skipped;

    try (var _ = GradMode.noGrad()) {
      for (int i = 0; i < parameters.size(); i++) {
        Tensor parameter = parameters.get(i);
        if (parameter.grad() != null) {
          matchStateTo(parameter, state.get(i));
          try {
            update(i, parameter, parameter.grad(), state.get(i));
          } finally {
            // The state lives as long as the optimizer, not as long as the step's memory scope.
            state.get(i).values().forEach(MemoryScope::keep);
          }
          // A backward pass through a graph recorded before this step would now use the new
          // values, so the version count makes it fail with a clear error instead.
          parameter.storage().markModified();
        }
      }
    }
    steps++;
  }

  /**
   * Converts the state tensors, except the CPU step count, to the dtype and device of {@code
   * parameter} where they differ, as after {@code Module.to}.
   */
  private static void matchStateTo(Tensor parameter, Map<String, Tensor> parameterState) {
    for (Map.Entry<String, Tensor> entry : parameterState.entrySet()) {
      Tensor value = entry.getValue();
      if (entry.getKey().equals(STEP)) {
        continue;
      }
      if (value.dtype() != parameter.dtype()) {
        entry.setValue(value.copyAs(parameter.dtype(), parameter.device()));
      } else if (!value.device().equals(parameter.device())) {
        entry.setValue(value.to(parameter.device()));
      }
    }
  }

  private void requireMatchingGrad(int index, Tensor parameter, Tensor grad) {
    if (grad.isReleased()) {
      throw new IllegalStateException(
          name()
              + ": the gradient of parameter "
              + index
              + " was released when the memory scope of its backward pass closed: call step()"
              + " inside that scope, after backward()");
    }
    if (!grad.device().equals(parameter.device())) {
      throw new IllegalStateException(
          name()
              + ": parameter "
              + index
              + " is on "
              + parameter.device()
              + " but its gradient is on "
              + grad.device()
              + "; a gradient set by setGrad() must be on its parameter's device");
    }
    if (!Arrays.equals(grad.shape(), parameter.shape()) || grad.dtype() != parameter.dtype()) {
      throw new IllegalStateException(
          name()
              + ": parameter "
              + index
              + " is "
              + parameter.dtype()
              + " "
              + Shapes.format(parameter.shape())
              + " but its gradient is "
              + grad.dtype()
              + " "
              + Shapes.format(grad.shape())
              + "; a gradient set by setGrad() must match its parameter");
    }
  }

  /** Drops every parameter's gradient, as PyTorch's {@code zero_grad(set_to_none=True)} does. */
  public void zeroGrad() {
    for (Tensor parameter : parameters) {
      parameter.zeroGrad();
    }
  }

  /** Returns the parameters, in the order given at construction, as an unmodifiable list. */
  public List<Tensor> parameters() {
    return parameters;
  }

  /** Returns the learning rate of the next step. */
  public double learningRate() {
    return learningRate;
  }

  /** Sets the learning rate of the next steps; schedules call this once per epoch. */
  public final void setLearningRate(double learningRate) {
    requireAtLeastZero("learningRate", learningRate);
    this.learningRate = learningRate;
  }

  /** Returns the number of completed {@link #step()} calls. */
  public long steps() {
    return steps;
  }

  /**
   * Returns copies of the optimizer's state, for a checkpoint: {@code "step"} (the number of
   * completed steps) and {@code "lr"} as zero-dimensional float64 tensors, and each parameter's
   * state as {@code "<index>.<name>"}, such as {@code "0.exp_avg"}, for the parameters that have
   * been updated at least once. Every copy is on the CPU, so that it can be written to a file,
   * whichever device the state lives on.
   */
  public Map<String, Tensor> stateDict() {
    Map<String, Tensor> dict = new LinkedHashMap<>();
    dict.put(STEP, Tensor.scalar(steps, DType.FLOAT64));
    dict.put(LEARNING_RATE, Tensor.scalar(learningRate, DType.FLOAT64));
    for (int i = 0; i < parameters.size(); i++) {
      for (Map.Entry<String, Tensor> entry : state.get(i).entrySet()) {
        Tensor value = entry.getValue();
        dict.put(i + "." + entry.getKey(), value.copyAs(value.dtype(), Device.CPU));
      }
    }
    return dict;
  }

  /**
   * Replaces the optimizer's state with copies from {@code dict}, as {@link #stateDict()} wrote it
   * for an optimizer of the same kind over parameters of the same shapes. Entries for float32
   * parameters are converted to float32, and each entry is copied to its parameter's device, so a
   * state saved from the CPU loads into an optimizer whose parameters are on a GPU. Nothing changes
   * when validation fails.
   *
   * @throws IllegalArgumentException if an entry is missing, unknown or has the wrong shape
   */
  public void loadStateDict(Map<String, Tensor> dict) {
    Objects.requireNonNull(dict, "dict");
    StateDictChecks checks = new StateDictChecks(name(), stateNames(), parameters.size());
    long loadedSteps = checks.count(STEP, checks.entry(dict, STEP));
    double loadedLearningRate = checks.entry(dict, LEARNING_RATE).item();
    requireAtLeastZero("learningRate in the state dict", loadedLearningRate);

    List<Map<String, Tensor>> loaded = new ArrayList<>();
    for (int i = 0; i < parameters.size(); i++) {
      loaded.add(new LinkedHashMap<>());
    }
    for (Map.Entry<String, Tensor> entry : dict.entrySet()) {
      String key = entry.getKey();
      if (key.equals(STEP) || key.equals(LEARNING_RATE)) {
        continue;
      }
      int index = checks.parameterIndex(key);
      String stateName = key.substring(key.indexOf('.') + 1);
      Tensor parameter = parameters.get(index);
      Tensor value = entry.getValue();
      if (stateName.equals(STEP)) {
        checks.count(key, value);
        loaded.get(index).put(stateName, MemoryScope.keep(value.copyAs(DType.FLOAT64, Device.CPU)));
      } else {
        checks.requireShape(key, value, index, parameter);
        loaded
            .get(index)
            .put(stateName, MemoryScope.keep(value.copyAs(parameter.dtype(), parameter.device())));
      }
    }
    for (int i = 0; i < parameters.size(); i++) {
      checks.requireComplete(i, loaded.get(i));
    }

    for (int i = 0; i < parameters.size(); i++) {
      state.get(i).clear();
      state.get(i).putAll(loaded.get(i));
    }
    steps = loadedSteps;
    learningRate = loadedLearningRate;
    lastSkipped = List.of();
  }

  /** Returns the optimizer's class name, for messages. */
  protected final String name() {
    return getClass().getSimpleName();
  }

  /** Rejects a negative or NaN setting, naming it. */
  protected final void requireAtLeastZero(String setting, double value) {
    if (!(value >= 0)) {
      throw new IllegalArgumentException(name() + ": " + setting + " must be >= 0, got " + value);
    }
  }
}
