package dev.kiln.keypoints.doctor;

import dev.kiln.core.autograd.GradMode;
import dev.kiln.core.random.Generator;
import dev.kiln.core.tensor.Tensor;
import dev.kiln.nn.Module;
import dev.kiln.nn.layers.Dropout;
import dev.kiln.nn.optim.Optimizer;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A copy of everything that decides what a model's next training steps do, so that a check can
 * train and then put it all back. It covers the parameters, the buffers such as batch norm's
 * running statistics, each module's mode, the optimizer's state (Adam's moments and step counts)
 * and learning rate, and the state of the generators that the dropout layers draw their masks from.
 *
 * <p>The generators matter as much as the weights. Without them, a check would draw other dropout
 * masks depending on how many training passes the checks before it ran, and so give another result.
 *
 * <p>NOTE: only the generators of {@link Dropout} layers are saved. A layer of another kind that
 * draws random numbers in {@code forward} would need its generator added here. On a GPU where cuDNN
 * draws the masks, cuDNN's own random state advances whatever the generator's state, so the masks
 * do not repeat there. The doctor runs its checks on the CPU.
 */
final class ModelState {
  private final Module model;
  private final Optimizer optimizer;
  private final Map<Tensor, Tensor> values = new IdentityHashMap<>();
  private final Map<Module, Boolean> modes = new LinkedHashMap<>();
  private final Map<Generator, long[]> generators = new IdentityHashMap<>();
  private final Map<String, Tensor> optimizerState;
  private final double learningRate;

  private ModelState(Module model, Optimizer optimizer) {
    this.model = model;
    this.optimizer = optimizer;
    try (var _ = GradMode.noGrad()) {
      for (Tensor tensor : model.stateDict().values()) {
        values.put(tensor, tensor.detach().copy());
      }
      if (optimizer != null) {
        for (Tensor tensor : optimizer.parameters()) {
          values.computeIfAbsent(tensor, t -> t.detach().copy());
        }
      }
    }
    for (Module module : modules(model)) {
      modes.put(module, module.isTraining());
      if (module instanceof Dropout dropout) {
        // Several layers may share one generator, so each generator is saved once.
        generators.computeIfAbsent(dropout.generator(), Generator::state);
      }
    }
    this.optimizerState = optimizer == null ? null : optimizer.stateDict();
    this.learningRate = optimizer == null ? 0 : optimizer.learningRate();
  }

  /** Copies the current state of {@code model} and of {@code optimizer}, which may be null. */
  static ModelState capture(Module model, Optimizer optimizer) {
    return new ModelState(model, optimizer);
  }

  /** Puts back the values, modes, generator states and optimizer state of the moment of capture. */
  void restore() {
    values.forEach(Tensor::copyFrom);
    modes.forEach((module, training) -> setOwnMode(module, training));
    generators.forEach(Generator::setState);
    if (optimizer != null) {
      optimizer.loadStateDict(optimizerState);
      optimizer.setLearningRate(learningRate);
      optimizer.zeroGrad();
    }
    model.zeroGrad();
  }

  /** Sets the mode of {@code module} and its descendants, then the saved modes below it. */
  private void setOwnMode(Module module, boolean training) {
    if (module.isTraining() != training) {
      module.train(training);
      for (Module child : module.namedChildren().values()) {
        setOwnMode(child, modes.getOrDefault(child, training));
      }
    }
  }

  /** Returns {@code root} and all its descendants, parents before children. */
  static List<Module> modules(Module root) {
    List<Module> result = new ArrayList<>();
    result.add(root);
    for (Module child : root.namedChildren().values()) {
      result.addAll(modules(child));
    }
    return result;
  }
}
