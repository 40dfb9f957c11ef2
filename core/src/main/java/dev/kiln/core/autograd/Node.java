package dev.kiln.core.autograd;

import dev.kiln.core.tensor.Tensor;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * One recorded operation in the autograd graph: the op's inputs and the function that maps the
 * gradient of its output to the gradients of those inputs.
 *
 * <p>The backward function captures whatever the op saved from its forward pass. {@link #release()}
 * drops it, which frees those tensors; a second backward pass through a released node then fails
 * with a message that says so.
 */
public final class Node {

  /** Maps the gradient of an op's output to one gradient per input (null where none is needed). */
  @FunctionalInterface
  public interface BackwardFunction {
    Tensor[] apply(Tensor gradOutput);
  }

  private final String opName;
  private final List<Tensor> inputs;
  private BackwardFunction backward;

  /** Creates a node; an input may be null, as an absent optional operand such as a bias is. */
  public Node(String opName, List<Tensor> inputs, BackwardFunction backward) {
    this.opName = opName;
    // List.copyOf would reject the null entries.
    this.inputs = Collections.unmodifiableList(new ArrayList<>(inputs));
    this.backward = backward;
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

  /** Runs the backward function. */
  Tensor[] backward(Tensor gradOutput) {
    if (backward == null) {
      throw new IllegalStateException(
          "backward through '"
              + opName
              + "' a second time: the graph was freed by the first backward pass. Call"
              + " backward(grad, true) to keep the graph, or run the forward pass again.");
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
