package dev.kiln.core.autograd;

import dev.kiln.core.tensor.Shapes;
import dev.kiln.core.tensor.Storage;
import dev.kiln.core.tensor.Tensor;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * One recorded operation in the autograd graph: the op's inputs and the function that maps the
 * gradient of its output to the gradients of those inputs.
 *
 * <p>The backward function captures whatever the op saved from its forward pass. {@link #release()}
 * drops it, which frees those tensors. A second backward pass through a released node then fails
 * with an error that explains why.
 */
public final class Node {

  /** Maps the gradient of an op's output to one gradient per input (null where none is needed). */
  @FunctionalInterface
  public interface BackwardFunction {
    Tensor[] apply(Tensor gradOutput);
  }

  private final String opName;
  private final List<Tensor> inputs;
  private final Storage[] savedStorages;
  private final int[] savedVersions;
  private BackwardFunction backward;

  /** Creates a node; an input may be null, as an absent optional operand such as a bias is. */
  public Node(String opName, List<Tensor> inputs, BackwardFunction backward) {
    this.opName = opName;
    // List.copyOf would reject the null entries.
    this.inputs = Collections.unmodifiableList(new ArrayList<>(inputs));
    this.backward = backward;
    this.savedStorages = new Storage[this.inputs.size()];
    this.savedVersions = new int[this.inputs.size()];
    for (int i = 0; i < savedStorages.length; i++) {
      Tensor input = this.inputs.get(i);
      if (input != null) {
        savedStorages[i] = input.storage();
        savedVersions[i] = input.storage().version();
      }
    }
  }

  /** Name of the op that recorded this node, for error messages and graph dumps. */
  public String opName() {
    return opName;
  }

  /**
   * Inputs of the op, in the order its backward function returns their gradients; null where an
   * optional operand was absent.
   */
  public List<Tensor> inputs() {
    return inputs;
  }

  /** Whether {@link #release()} has dropped the saved tensors. */
  public boolean isReleased() {
    return backward == null;
  }

  /** Runs the backward function, after checking that no input changed since the forward pass. */
  Tensor[] backward(Tensor gradOutput) {
    if (backward == null) {
      throw new IllegalStateException(
          "backward a second time through a graph that the first backward pass freed (found at"
              + " op '"
              + opName
              + "'). Call backward(grad, true) to keep the graph, or run the forward pass again.");
    }
    for (int i = 0; i < savedStorages.length; i++) {
      Tensor input = inputs.get(i);
      if (input != null
          && (input.storage() != savedStorages[i]
              || savedStorages[i].version() != savedVersions[i])) {
        throw new IllegalStateException(
            "input "
                + i
                + " of '"
                + opName
                + "' (shape "
                + Shapes.format(input.shape())
                + ") was modified in place after the forward pass, so its gradient would be"
                + " wrong. Run the forward pass again after changing it, or change a copy.");
      }
    }
    return backward.apply(gradOutput);
  }

  /** Drops the saved tensors so they can be collected. */
  void release() {
    backward = null;
  }

  @Override
  public String toString() {
    return opName + "Backward";
  }
}
