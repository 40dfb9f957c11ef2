package dev.kiln.nn;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Shapes;
import dev.kiln.core.tensor.Storage;
import dev.kiln.core.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * A node in a tree of layers that owns named parameters (trained), buffers (state that is saved but
 * not trained, such as batch norm's running statistics) and child modules.
 *
 * <p>Names follow PyTorch: a parameter's full name is the path of child names joined by dots, such
 * as {@code features.0.weight} or {@code bn1.running_var}, so that weights move both ways through
 * safetensors files.
 */
public abstract class Module {

  /**
   * What a {@link #loadStateDict} call could not match.
   *
   * @param missing names of the model's tensors that the state did not provide
   * @param unexpected names in the state that the model does not have
   */
  public record LoadResult(Set<String> missing, Set<String> unexpected) {}

  private final Map<String, Tensor> parameters = new LinkedHashMap<>();
  private final Map<String, Tensor> buffers = new LinkedHashMap<>();
  private final Map<String, Module> children = new LinkedHashMap<>();
  private boolean training = true;

  /** Computes the module's output. */
  public abstract Tensor forward(Tensor input);

  // ---- Registration ----------------------------------------------------------------------------

  /** Registers a trained tensor under {@code name} and marks it as requiring a gradient. */
  protected final Tensor registerParameter(String name, Tensor value) {
    checkNewName(name);
    parameters.put(name, value.requiresGrad(true));
    return value;
  }

  /** Registers saved, untrained state under {@code name}. */
  protected final Tensor registerBuffer(String name, Tensor value) {
    checkNewName(name);
    buffers.put(name, value);
    return value;
  }

  /** Registers a child module under {@code name}. */
  protected final <M extends Module> M registerModule(String name, M module) {
    checkNewName(name);
    children.put(name, module);
    return module;
  }

  private void checkNewName(String name) {
    if (name.isEmpty() || name.contains(".")) {
      throw new IllegalArgumentException(
          "invalid name '" + name + "': names must be non-empty and contain no dot");
    }
    if (parameters.containsKey(name) || buffers.containsKey(name) || children.containsKey(name)) {
      throw new IllegalArgumentException("name '" + name + "' is already registered");
    }
  }

  // ---- Tree access -----------------------------------------------------------------------------

  /** Direct children, by name, in registration order. */
  public Map<String, Module> namedChildren() {
    return Collections.unmodifiableMap(children);
  }

  /**
   * All parameters of this module and its descendants by full name, depth first. A parameter that
   * appears under several names (a layer used twice) is listed once, under its first name, as in
   * PyTorch, so that optimizers and parameter counts see it once.
   */
  public Map<String, Tensor> namedParameters() {
    Map<String, Tensor> all = new LinkedHashMap<>();
    collect("", all, true, false);
    Map<String, Tensor> result = new LinkedHashMap<>();
    Set<Tensor> seen = Collections.newSetFromMap(new IdentityHashMap<>());
    all.forEach(
        (name, value) -> {
          if (seen.add(value)) {
            result.put(name, value);
          }
        });
    return result;
  }

  /** All buffers of this module and its descendants by full name. */
  public Map<String, Tensor> namedBuffers() {
    Map<String, Tensor> result = new LinkedHashMap<>();
    collect("", result, false, true);
    return result;
  }

  /** All parameters, in the order that optimizers and checkpoints use. */
  public List<Tensor> parameters() {
    return new ArrayList<>(namedParameters().values());
  }

  /** Parameters and buffers by full name, as PyTorch's {@code state_dict()}. */
  public Map<String, Tensor> stateDict() {
    Map<String, Tensor> result = new LinkedHashMap<>();
    collect("", result, true, true);
    return result;
  }

  private void collect(
      String prefix, Map<String, Tensor> into, boolean withParameters, boolean withBuffers) {
    if (withParameters) {
      parameters.forEach((name, value) -> into.put(prefix + name, value));
    }
    if (withBuffers) {
      buffers.forEach((name, value) -> into.put(prefix + name, value));
    }
    children.forEach(
        (name, child) -> child.collect(prefix + name + ".", into, withParameters, withBuffers));
  }

  /** Number of trained values. */
  public long parameterCount() {
    long count = 0;
    for (Tensor p : parameters()) {
      count += p.numel();
    }
    return count;
  }

  /**
   * Copies values from {@code state} into this module's parameters and buffers, converting the
   * dtype where needed. With {@code strict}, every name must match both ways.
   *
   * @return the names that the model has but the state lacks, and the reverse; both are empty after
   *     a strict load
   * @throws IllegalArgumentException listing missing and unexpected names, or a shape mismatch;
   *     nothing is changed in that case
   */
  public LoadResult loadStateDict(Map<String, Tensor> state, boolean strict) {
    Map<String, Tensor> own = stateDict();
    Set<String> missing = new TreeSet<>(own.keySet());
    missing.removeAll(state.keySet());
    Set<String> unexpected = new TreeSet<>(state.keySet());
    unexpected.removeAll(own.keySet());
    if (strict && (!missing.isEmpty() || !unexpected.isEmpty())) {
      throw new IllegalArgumentException(
          "state does not match the model: missing "
              + missing
              + ", unexpected "
              + unexpected
              + ". Check that the weights were saved from the same architecture, or load with"
              + " strict=false");
    }
    for (Map.Entry<String, Tensor> entry : own.entrySet()) {
      Tensor source = state.get(entry.getKey());
      if (source != null && !Arrays.equals(source.shape(), entry.getValue().shape())) {
        throw new IllegalArgumentException(
            "shape mismatch for '"
                + entry.getKey()
                + "': the model has "
                + Shapes.format(entry.getValue().shape())
                + " but the state has "
                + Shapes.format(source.shape()));
      }
    }
    for (Map.Entry<String, Tensor> entry : own.entrySet()) {
      Tensor source = state.get(entry.getKey());
      if (source != null) {
        Tensor target = entry.getValue();
        target.setStorage(convert(source.storage(), target.dtype()));
      }
    }
    return new LoadResult(missing, unexpected);
  }

  /** Converts every parameter and buffer to {@code dtype} in place and returns this module. */
  public Module to(DType dtype) {
    for (Tensor t : stateDict().values()) {
      if (t.dtype() != dtype) {
        t.setStorage(convert(t.storage(), dtype));
      }
    }
    return this;
  }

  private static Storage convert(Storage source, DType dtype) {
    Storage result = Storage.allocate(dtype, source.size());
    for (int i = 0; i < source.size(); i++) {
      result.set(i, source.get(i));
    }
    return result;
  }

  // ---- Modes and gradients ---------------------------------------------------------------------

  /** Switches this module and its descendants to training mode. */
  public Module train() {
    return train(true);
  }

  /** Switches this module and its descendants to evaluation mode (dropout off, running stats). */
  public Module eval() {
    return train(false);
  }

  /** Sets training mode on this module and its descendants. */
  public Module train(boolean mode) {
    training = mode;
    for (Module child : children.values()) {
      child.train(mode);
    }
    return this;
  }

  public boolean isTraining() {
    return training;
  }

  /** Drops the gradients of all parameters. */
  public void zeroGrad() {
    for (Tensor p : parameters()) {
      p.zeroGrad();
    }
  }

  // ---- Printing --------------------------------------------------------------------------------

  /**
   * One-line description of this module's own settings, as PyTorch's {@code extra_repr}, e.g.
   * {@code 1, 32, kernel_size=(5, 5)}.
   */
  protected String extraRepr() {
    return "";
  }

  /**
   * Prints the tree with each layer's settings, parameter shapes and parameter count, and the total
   * at the end.
   */
  @Override
  public String toString() {
    StringBuilder text = new StringBuilder();
    describe(text, "");
    text.append("\nTotal parameters: ").append(String.format("%,d", parameterCount()));
    return text.toString();
  }

  private void describe(StringBuilder text, String indent) {
    text.append(getClass().getSimpleName()).append('(').append(extraRepr());
    if (children.isEmpty()) {
      text.append(')');
      appendParameters(text);
      return;
    }
    text.append('\n');
    for (Map.Entry<String, Module> child : children.entrySet()) {
      text.append(indent).append("  (").append(child.getKey()).append("): ");
      child.getValue().describe(text, indent + "  ");
      text.append('\n');
    }
    text.append(indent).append(')');
    appendParameters(text);
  }

  private void appendParameters(StringBuilder text) {
    if (parameters.isEmpty()) {
      return;
    }
    long count = 0;
    List<String> shapes = new ArrayList<>();
    for (Map.Entry<String, Tensor> p : parameters.entrySet()) {
      shapes.add(p.getKey() + " " + Shapes.format(p.getValue().shape()));
      count += p.getValue().numel();
    }
    text.append("  ").append(String.join(", ", shapes));
    text.append("  ").append(String.format("%,d", count)).append(" params");
  }
}
