package dev.kiln.core.autograd;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Shapes;
import dev.kiln.core.tensor.Storage;
import dev.kiln.core.tensor.Tensor;
import java.lang.ref.WeakReference;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * One recorded operation in the autograd graph: an edge to each of the op's inputs and the function
 * that maps the gradient of its output to the gradients of those inputs.
 *
 * <p>The backward function captures whatever the op saved from its forward pass, and it is the only
 * strong reference that the graph keeps to those tensors. An edge refers to the input's own node,
 * or to the input itself when it is a leaf that requires a gradient, and to an intermediate tensor
 * only through a weak reference. So an intermediate that no backward function saved is freed as
 * soon as the forward pass drops it, as in PyTorch. {@link #release()} drops the backward function,
 * which frees the saved tensors. A second backward pass through a released node then fails with an
 * error that explains why.
 */
public final class Node {

  /**
   * Maps the gradient of an op's output to one gradient per input (null where none is needed). The
   * backward pass owns what it returns and gives the device blocks of those tensors back to the
   * cache once they are used. So return new tensors, the given gradient or views of it, never a
   * tensor that something else keeps, such as one captured from the forward pass.
   */
  @FunctionalInterface
  public interface BackwardFunction {
    Tensor[] apply(Tensor gradOutput);
  }

  /**
   * The link from a node to one of its op's inputs. Exactly one of {@code producer} and {@code
   * leaf} is set when the input takes part in backward, and neither when it does not (an input that
   * requires no gradient). The input tensor itself is only weakly reachable, so that the edge does
   * not keep an intermediate alive. The storage and its version at record time detect an in-place
   * change of an input that is still alive.
   *
   * @param producer the node that computed the input, or null for a leaf
   * @param leaf the input when it is a leaf that required a gradient at record time, else null
   * @param shape the input's shape, which its gradient must match
   * @param dtype the input's dtype, which its gradient must match
   * @param input the input, for the in-place check while something else keeps it alive
   * @param storage the input's storage at record time
   * @param version the storage's version at record time
   */
  record Edge(
      Node producer,
      Tensor leaf,
      int[] shape,
      DType dtype,
      WeakReference<Tensor> input,
      WeakReference<Storage> storage,
      int version) {

    /** Tests whether a gradient flows along this edge. */
    boolean takesGradient() {
      return producer != null || (leaf != null && leaf.requiresGrad());
    }

    /** Returns the vertex of the backward walk that receives this gradient: a node or a leaf. */
    Object target() {
      return producer != null ? producer : leaf;
    }
  }

  private final String opName;
  private final List<Edge> edges;
  private BackwardFunction backward;

  /** Creates a node; an input may be null, as an absent optional operand such as a bias is. */
  public Node(String opName, List<Tensor> inputs, BackwardFunction backward) {
    this.opName = opName;
    this.backward = backward;
    // List.copyOf would reject the null entries.
    List<Edge> list = new ArrayList<>(inputs.size());
    for (Tensor input : inputs) {
      list.add(input == null ? null : edgeTo(input));
    }
    this.edges = Collections.unmodifiableList(list);
  }

  private static Edge edgeTo(Tensor input) {
    Node producer = input.gradFn();
    Tensor leaf = producer == null && input.requiresGrad() ? input : null;
    Storage storage = input.storage();
    return new Edge(
        producer,
        leaf,
        input.shape(),
        input.dtype(),
        new WeakReference<>(input),
        new WeakReference<>(storage),
        storage.version());
  }

  /** Name of the op that recorded this node, for error messages and graph dumps. */
  public String opName() {
    return opName;
  }

  /**
   * Returns the edges to the op's inputs, in the order that its backward function returns their
   * gradients. An entry is null where an optional operand was absent.
   */
  List<Edge> edges() {
    return edges;
  }

  /** Whether {@link #release()} has dropped the saved tensors. */
  public boolean isReleased() {
    return backward == null;
  }

  /** Runs the backward function, after checking that no live input changed since the forward. */
  Tensor[] backward(Tensor gradOutput) {
    if (backward == null) {
      throw new IllegalStateException(
          "backward a second time through a graph that the first backward pass freed (found at"
              + " op '"
              + opName
              + "'). Call backward(grad, true) to keep the graph, or run the forward pass again.");
    }
    for (int i = 0; i < edges.size(); i++) {
      Edge edge = edges.get(i);
      if (edge != null && modifiedInPlace(edge)) {
        throw new IllegalStateException(
            "input "
                + i
                + " of '"
                + opName
                + "' (shape "
                + Shapes.format(edge.shape())
                + ") was modified in place after the forward pass, so its gradient would be"
                + " wrong. Run the forward pass again after changing it, or change a copy.");
      }
    }
    try {
      return backward.apply(gradOutput);
    } catch (IllegalStateException e) {
      int closed = firstClosedInput();
      if (closed < 0) {
        throw e;
      }
      throw new IllegalStateException(
          "backward through '"
              + opName
              + "' failed, and its input "
              + closed
              + " (shape "
              + Shapes.format(edges.get(closed).shape())
              + ") was closed after the forward pass. Close the tensors that a graph uses only"
              + " after its backward pass, or use a MemoryScope.",
          e);
    }
  }

  /** Returns the position of the first input that was closed since the forward pass, or -1. */
  private int firstClosedInput() {
    for (int i = 0; i < edges.size(); i++) {
      Edge edge = edges.get(i);
      Tensor input = edge == null ? null : edge.input().get();
      if (input != null && input.isClosed()) {
        return i;
      }
    }
    return -1;
  }

  /**
   * Tests whether the input's storage was replaced or written since the forward pass. An input or
   * storage that was collected cannot have been saved by the backward function, so it cannot make
   * the gradient wrong. Closing an input does not change its values. A backward function that needs
   * a closed input fails on its own, and {@link #backward} then names the input.
   */
  private static boolean modifiedInPlace(Edge edge) {
    Tensor input = edge.input().get();
    Storage storage = edge.storage().get();
    if (input != null && !input.isClosed() && input.storage() != storage) {
      return true;
    }
    return storage != null && storage.version() != edge.version();
  }

  /** Drops the backward function and with it the saved tensors, so they can be collected. */
  void release() {
    backward = null;
  }

  @Override
  public String toString() {
    return opName + "Backward";
  }
}
