package dev.kiln.keypoints.doctor;

import dev.kiln.core.tensor.Tensor;
import dev.kiln.keypoints.train.Batch;
import dev.kiln.nn.optim.Optimizer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Checks how the model, the loss and the optimizer are connected: which parameters get a gradient,
 * which ones the optimizer holds, which ones one step changes, and how large the step is against
 * the weights, layer by layer.
 */
public final class WiringCheck {
  /**
   * Update-to-weight ratio of one step above which a layer's step counts as too large. Adam's first
   * step moves every weight by about the learning rate, so the ratio is about lr·sqrt(3·fan-in) for
   * the default init. DoctorCaseBookTest measured 0.05 for the default preset at lr 5e-4, and 0.5
   * to 3.6 for a small model at lr 0.1.
   */
  static final double HIGH_UPDATE_RATIO = 0.3;

  /** Update-to-weight ratio above which a too-large step is critical. */
  static final double CRITICAL_UPDATE_RATIO = 1;

  /** Update-to-weight ratio of one step below which a layer's step counts as too small. */
  static final double LOW_UPDATE_RATIO = 1e-6;

  /**
   * Share of the largest weight gradient norm below which a layer's gradient counts as vanished.
   * Measured with kiln doctor --limit 300: the LeNet-like student model with sigmoid in place of
   * every ReLU had 0.000319 at its first layer against 1.43 at its last, 2.2e-4 of it. Healthy
   * setups had 0.04 to 0.4 of the largest norm at their smallest layer: the default preset before
   * and after training, the student model with ReLU, and a small batch-norm model. The limit lies
   * between, about 5 times above the sigmoid model and 40 times below the healthy ones.
   */
  static final double VANISHED_GRADIENT_SHARE = 1e-3;

  private WiringCheck() {}

  /** Runs one forward, backward and step on a training batch, then restores the model. */
  static List<Finding> run(Workbench bench) {
    DoctorInput input = bench.input();
    Batch batch = bench.trainBatches().getFirst();
    ModelState state = ModelState.capture(input.model(), input.optimizer());
    try {
      return examine(input, batch);
    } finally {
      state.restore();
    }
  }

  private static List<Finding> examine(DoctorInput input, Batch batch) {
    Optimizer optimizer = input.optimizer();
    Map<String, Tensor> named = input.model().namedParameters();
    Set<Tensor> inModel = identitySet(named.values());
    Set<Tensor> inOptimizer = identitySet(optimizer.parameters());

    input.model().zeroGrad();
    optimizer.zeroGrad();
    Tensor loss = input.loss().compute(input.model().forward(batch.images()), batch.targets());
    loss.backward();

    List<Finding> findings = new ArrayList<>();
    long shared = optimizer.parameters().stream().filter(inModel::contains).count();
    long withGradient = optimizer.parameters().stream().filter(p -> p.grad() != null).count();
    String counts =
        "the optimizer holds "
            + optimizer.parameters().size()
            + " tensors and the model has "
            + named.size()
            + " parameters; they share "
            + shared
            + ". After backward, "
            + withGradient
            + " of the optimizer's tensors have a gradient";
    if (shared == 0) {
      findings.add(
          new Finding(
              Severity.CRITICAL,
              "optimizer-other-model",
              Finding.CAUSE,
              "The optimizer holds none of this model's parameters, so its steps never change the"
                  + " model that computes the loss. It was built for another instance of the model.",
              counts,
              "Create the model once, then build the optimizer from that same object,"
                  + " new Adam(model.parameters()), and train that model.",
              null));
      return findings;
    }
    List<String> notHeld = new ArrayList<>();
    named.forEach(
        (name, tensor) -> {
          if (!inOptimizer.contains(tensor)) {
            notHeld.add(name);
          }
        });
    if (!notHeld.isEmpty()) {
      findings.add(
          new Finding(
              Severity.CRITICAL,
              "parameters-not-in-optimizer",
              Finding.CAUSE,
              notHeld.size()
                  + " of the model's parameters are not in the optimizer, so they never train.",
              counts + "; missing: " + abbreviate(notHeld),
              "Build the optimizer from model.parameters() after the model is complete.",
              null));
    }
    List<String> noGradient = new ArrayList<>();
    named.forEach(
        (name, tensor) -> {
          if (inOptimizer.contains(tensor) && tensor.grad() == null) {
            noGradient.add(name);
          }
        });
    if (!noGradient.isEmpty()) {
      findings.add(
          new Finding(
              Severity.WARNING,
              "parameters-without-gradient",
              Finding.CAUSE,
              noGradient.size() + " parameters get no gradient: the loss does not depend on them.",
              counts + "; without a gradient: " + abbreviate(noGradient),
              "Make sure forward() uses these layers, or remove them from the model.",
              null));
    }
    findings.addAll(stepRatios(input, named));
    return findings;
  }

  /** Steps once and compares each layer's update with its weights. */
  private static List<Finding> stepRatios(DoctorInput input, Map<String, Tensor> named) {
    Map<String, float[]> before = new LinkedHashMap<>();
    Map<String, Double> gradNorms = new LinkedHashMap<>();
    named.forEach(
        (name, tensor) -> {
          before.put(name, tensor.toFloatArray());
          gradNorms.put(name, tensor.grad() == null ? 0 : Stats.norm(tensor.grad().toFloatArray()));
        });
    input.optimizer().step();

    List<String> unchanged = new ArrayList<>();
    List<String> high = new ArrayList<>();
    double maxRatio = 0;
    List<String> low = new ArrayList<>();
    List<String> table = new ArrayList<>();
    for (Map.Entry<String, Tensor> entry : named.entrySet()) {
      String name = entry.getKey();
      Tensor tensor = entry.getValue();
      float[] old = before.get(name);
      float[] now = tensor.toFloatArray();
      double update = 0;
      for (int i = 0; i < now.length; i++) {
        update += (double) (now[i] - old[i]) * (now[i] - old[i]);
      }
      update = Math.sqrt(update);
      if (update == 0 && tensor.grad() != null) {
        unchanged.add(name);
      }
      if (tensor.dim() < 2) {
        continue;
      }
      double ratio = update / Math.max(Stats.norm(old), 1e-12);
      table.add(
          String.format(
              java.util.Locale.ROOT,
              "%s: gradient norm %s, update/weight %s",
              name,
              Stats.format(gradNorms.get(name)),
              Stats.format(ratio)));
      maxRatio = Math.max(maxRatio, ratio);
      if (ratio > HIGH_UPDATE_RATIO) {
        high.add(name + " " + Stats.format(ratio));
      } else if (ratio < LOW_UPDATE_RATIO && update > 0) {
        low.add(name + " " + Stats.format(ratio));
      }
    }
    String evidence = String.join("; ", table);
    List<Finding> findings =
        new ArrayList<>(vanishedGradients(weightGradientNorms(named, gradNorms)));
    double lr = input.optimizer().learningRate();
    if (!high.isEmpty()) {
      findings.add(
          new Finding(
              maxRatio > CRITICAL_UPDATE_RATIO ? Severity.CRITICAL : Severity.WARNING,
              "learning-rate-too-high",
              Finding.CAUSE,
              "One step changes the weights of "
                  + Stats.count(high.size(), "layer")
                  + " by more than "
                  + Stats.percent(HIGH_UPDATE_RATIO)
                  + " of their size, so the learning rate "
                  + Stats.format(lr)
                  + " is too high.",
              "ratios above " + HIGH_UPDATE_RATIO + ": " + String.join(", ", high),
              "A step this large overshoots the minimum, so the loss bounces around its"
                  + " starting value instead of falling. Lower the learning rate to about "
                  + Stats.format(lr * 0.03 / maxRatio)
                  + ", so that one step changes each layer by a few percent of its size at most.",
              null));
    }
    if (!low.isEmpty()) {
      findings.add(
          new Finding(
              Severity.WARNING,
              "update-ratio-low",
              Finding.MEASURED,
              "One step hardly changes the weights of " + Stats.count(low.size(), "layer") + ".",
              "ratios below " + LOW_UPDATE_RATIO + ": " + String.join(", ", low),
              "Raise the learning rate " + Stats.format(lr) + ", or check for vanishing gradients.",
              null));
    }
    if (!unchanged.isEmpty()) {
      findings.add(
          new Finding(
              Severity.WARNING,
              "parameters-unchanged",
              Finding.MEASURED,
              unchanged.size() + " parameters have a gradient but did not change after a step.",
              "unchanged: " + abbreviate(unchanged),
              "Check that the gradients are not all zero and that the learning rate is above 0.",
              null));
    }
    findings.add(Finding.info("updates", "Gradient norms and update ratios per layer.", evidence));
    return findings;
  }

  /** Returns the gradient norms of the weights, the parameters of two or more dimensions. */
  private static Map<String, Double> weightGradientNorms(
      Map<String, Tensor> named, Map<String, Double> gradNorms) {
    Map<String, Double> weights = new LinkedHashMap<>();
    named.forEach(
        (name, tensor) -> {
          if (tensor.dim() >= 2) {
            weights.put(name, gradNorms.get(name));
          }
        });
    return weights;
  }

  /**
   * Flags the weights whose gradient norm is below {@link #VANISHED_GRADIENT_SHARE} of the largest
   * one. Backward multiplies the gradient by each layer's local derivative on its way to the input,
   * and sigmoid's derivative is at most 0.25, so a deep stack of them leaves the first layers with
   * almost no gradient, and they stop learning. {@code norms} lists the weights in model order.
   */
  static List<Finding> vanishedGradients(Map<String, Double> norms) {
    double largest = norms.values().stream().mapToDouble(Double::doubleValue).max().orElse(0);
    if (!(largest > 0)) {
      return List.of();
    }
    List<String> vanished = new ArrayList<>();
    norms.forEach(
        (name, norm) -> {
          if (norm < VANISHED_GRADIENT_SHARE * largest) {
            vanished.add(name + " " + Stats.format(norm));
          }
        });
    if (vanished.isEmpty()) {
      return List.of();
    }
    return List.of(
        new Finding(
            Severity.WARNING,
            "vanishing-gradients",
            Finding.MEASURED,
            "The gradient vanishes on its way to the input: at "
                + Stats.count(vanished.size(), "layer")
                + " it is below "
                + Stats.percent(VANISHED_GRADIENT_SHARE)
                + " of the largest layer's gradient, and such a layer barely learns.",
            "gradient norms below "
                + Stats.format(VANISHED_GRADIENT_SHARE * largest)
                + ": "
                + String.join(", ", vanished)
                + "; largest "
                + Stats.format(largest),
            "Use relu or leaky_relu between hidden layers in place of sigmoid or tanh, whose"
                + " derivatives shrink the gradient at every layer, or add batch norm.",
            null));
  }

  private static Set<Tensor> identitySet(Iterable<Tensor> tensors) {
    Set<Tensor> set = Collections.newSetFromMap(new IdentityHashMap<>());
    tensors.forEach(set::add);
    return set;
  }

  private static String abbreviate(List<String> names) {
    if (names.size() <= 6) {
      return String.join(", ", names);
    }
    return String.join(", ", names.subList(0, 6)) + " and " + (names.size() - 6) + " more";
  }
}
