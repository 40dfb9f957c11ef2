package dev.kiln.core.autograd;

import dev.kiln.core.tensor.Shapes;
import dev.kiln.core.tensor.Tensor;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Deque;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The reverse-mode engine: records op nodes during the forward pass and walks them backwards.
 *
 * <p>A backward pass sorts the graph below the root topologically, then visits the nodes from the
 * root down. Each node receives the sum of the gradients of all its consumers, calls its backward
 * function, and passes one gradient to each input. Leaves that require a gradient accumulate it
 * into {@link Tensor#grad()}.
 */
public final class Autograd {
  private Autograd() {}

  /**
   * Attaches a node to {@code output} when grad mode is on and any input requires a gradient.
   * Returns {@code output} so that ops can end with {@code return Autograd.record(...)}.
   */
  public static Tensor record(
      String opName, Tensor output, Node.BackwardFunction backward, Tensor... inputs) {
    if (!GradMode.isEnabled()) {
      return output;
    }
    boolean anyRequiresGrad = false;
    for (Tensor input : inputs) {
      anyRequiresGrad |= input != null && input.requiresGrad();
    }
    if (anyRequiresGrad) {
      output.setGradFn(new Node(opName, Arrays.asList(inputs), backward));
    }
    return output;
  }

  /**
   * Computes the gradients of {@code root} with respect to every leaf below it that requires a
   * gradient, and adds them to those leaves' {@code grad}.
   *
   * @param gradOutput the gradient of some scalar with respect to {@code root}; may be null when
   *     {@code root} has one element, which then means 1
   * @param retainGraph keep the saved tensors so that backward can run through the graph again
   */
  public static void backward(Tensor root, Tensor gradOutput, boolean retainGraph) {
    if (!root.requiresGrad()) {
      throw new IllegalStateException(
          "backward() on a tensor that does not require a gradient: no input of the computation"
              + " had requiresGrad(true), or it ran inside a no-grad scope");
    }
    Tensor seed = gradOutput != null ? gradOutput : defaultSeed(root);
    checkGradShape(root, seed, "backward");

    try (var _ = GradMode.noGrad()) {
      Map<Tensor, Tensor> pending = new IdentityHashMap<>();
      pending.put(root, seed);
      for (Tensor tensor : topologicalOrder(root)) {
        Tensor grad = pending.remove(tensor);
        if (grad == null) {
          continue;
        }
        Node node = tensor.gradFn();
        if (node == null) {
          accumulateIntoLeaf(tensor, grad);
          continue;
        }
        Tensor[] inputGrads = node.backward(grad);
        if (!retainGraph) {
          node.release();
        }
        passToInputs(node, inputGrads, pending);
      }
    }
  }

  private static Tensor defaultSeed(Tensor root) {
    if (root.numel() != 1) {
      throw new IllegalArgumentException(
          "backward() without a gradient needs a tensor with one element, but the shape is "
              + Shapes.format(root.shape())
              + ": pass the gradient of the output, or reduce it first (for example with sum())");
    }
    return Tensor.ones(root.dtype(), root.shape());
  }

  private static void passToInputs(Node node, Tensor[] inputGrads, Map<Tensor, Tensor> pending) {
    List<Tensor> inputs = node.inputs();
    for (int i = 0; i < inputs.size(); i++) {
      Tensor input = inputs.get(i);
      if (input == null || !input.requiresGrad() || inputGrads[i] == null) {
        continue;
      }
      checkGradShape(input, inputGrads[i], node.opName());
      Tensor previous = pending.get(input);
      pending.put(input, previous == null ? inputGrads[i] : previous.add(inputGrads[i]));
    }
  }

  private static void accumulateIntoLeaf(Tensor leaf, Tensor grad) {
    if (!leaf.requiresGrad()) {
      return;
    }
    Tensor existing = leaf.grad();
    leaf.setGrad(existing == null ? grad.copy() : existing.add(grad));
  }

  private static void checkGradShape(Tensor tensor, Tensor grad, String opName) {
    if (!Arrays.equals(tensor.shape(), grad.shape())) {
      throw new IllegalStateException(
          "gradient from '"
              + opName
              + "' has shape "
              + Shapes.format(grad.shape())
              + " but the tensor has shape "
              + Shapes.format(tensor.shape()));
    }
    if (tensor.dtype() != grad.dtype()) {
      throw new IllegalStateException(
          "gradient from '"
              + opName
              + "' is "
              + grad.dtype()
              + " but the tensor is "
              + tensor.dtype());
    }
  }

  /** Returns the tensors below {@code root}, each after every tensor that consumes it. */
  private static List<Tensor> topologicalOrder(Tensor root) {
    List<Tensor> postOrder = new ArrayList<>();
    Set<Tensor> visited = Collections.newSetFromMap(new IdentityHashMap<>());
    // Iterative depth-first search: deep networks would overflow the call stack.
    Deque<Iterator<Tensor>> stack = new ArrayDeque<>();
    Deque<Tensor> path = new ArrayDeque<>();
    visited.add(root);
    path.push(root);
    stack.push(childrenOf(root));
    while (!stack.isEmpty()) {
      Iterator<Tensor> children = stack.peek();
      if (children.hasNext()) {
        Tensor child = children.next();
        if (child != null && child.requiresGrad() && visited.add(child)) {
          path.push(child);
          stack.push(childrenOf(child));
        }
      } else {
        stack.pop();
        postOrder.add(path.pop());
      }
    }
    Collections.reverse(postOrder);
    return postOrder;
  }

  private static Iterator<Tensor> childrenOf(Tensor tensor) {
    Node node = tensor.gradFn();
    return node == null ? Collections.emptyIterator() : node.inputs().iterator();
  }
}
