package dev.kiln.core.autograd;

import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.DeviceStorage;
import dev.kiln.core.tensor.MemoryScope;
import dev.kiln.core.tensor.Shapes;
import dev.kiln.core.tensor.Storage;
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
    if (!seed.device().equals(root.device())) {
      throw new IllegalArgumentException(
          "backward: the gradient is on "
              + seed.device()
              + " but the output is on "
              + root.device()
              + ": move the gradient with to(Device)");
    }

    // The backward functions compute with ordinary ops, which must not record a graph of their own.
    try (var _ = GradMode.noGrad()) {
      Node rootNode = root.gradFn();
      if (rootNode == null) {
        requireUsableGrad(root);
        accumulateIntoLeaf(root, seed);
        return;
      }
      // The walk visits nodes and the leaves that require a gradient, never intermediate tensors.
      // Edges refer to those only weakly, so they are freed once no backward function needs them.
      List<Object> order = backwardOrder(rootNode);
      // Leaves are checked before any node runs, because a node frees its saved tensors.
      for (Object vertex : order) {
        if (vertex instanceof Tensor leaf) {
          requireUsableGrad(leaf);
        }
      }
      // pending maps each vertex to the gradient summed for it so far. The order puts every vertex
      // after all of its consumers, so when the loop reaches a vertex its sum is complete.
      Map<Object, Tensor> pending = new IdentityHashMap<>();
      pending.put(rootNode, seed);
      for (Object vertex : order) {
        Tensor grad = pending.remove(vertex);
        if (grad == null) {
          continue;
        }
        if (vertex instanceof Tensor leaf) {
          if (leaf.requiresGrad() && leaf.grad() == null && isUnshared(grad, pending, gradOutput)) {
            // The pass would copy this gradient and then release it, so the leaf takes it as is.
            leaf.setGrad(grad);
          } else {
            accumulateIntoLeaf(leaf, grad);
            releaseIfUnshared(grad, pending, gradOutput);
          }
          continue;
        }
        Node node = (Node) vertex;
        Tensor[] inputGrads = node.backward(grad);
        if (!retainGraph) {
          node.release();
        }
        passToInputs(node, inputGrads, pending, grad, gradOutput);
        releaseIfUnshared(grad, pending, gradOutput);
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
    return Tensor.full(1.0, root.dtype(), root.device(), root.shape());
  }

  /**
   * Adds each of {@code node}'s input gradients to the pending gradient of its input. Where an
   * input feeds several consumers, its gradients are summed as they arrive, and the two summands,
   * used up, go back to the device cache unless something still shares them: the node's own
   * gradient {@code grad}, the caller's, an input gradient not passed on yet, or a pending
   * gradient.
   */
  private static void passToInputs(
      Node node, Tensor[] inputGrads, Map<Object, Tensor> pending, Tensor grad, Tensor gradOutput) {
    List<Node.Edge> edges = node.edges();
    for (int i = 0; i < edges.size(); i++) {
      Node.Edge edge = edges.get(i);
      if (edge == null || !edge.takesGradient() || inputGrads[i] == null) {
        continue;
      }
      checkGradShape(edge.shape(), edge.dtype(), inputGrads[i], node.opName());
      Object target = edge.target();
      Tensor previous = pending.get(target);
      if (previous == null) {
        pending.put(target, inputGrads[i]);
        continue;
      }
      pending.put(target, previous.add(inputGrads[i]));
      // It lists grad and gradOutput, then the input gradients after i, not passed on yet.
      Tensor[] stillNeeded = new Tensor[inputGrads.length - i + 1];
      stillNeeded[0] = grad;
      stillNeeded[1] = gradOutput;
      System.arraycopy(inputGrads, i + 1, stillNeeded, 2, inputGrads.length - i - 1);
      releaseIfUnshared(previous, pending, stillNeeded);
      releaseIfUnshared(inputGrads[i], pending, stillNeeded);
    }
  }

  /**
   * Frees the memory of a gradient that this pass created and has now used, unless something still
   * shares its storage: one of {@code stillNeeded} (such as the caller's own gradient, which may be
   * null), or a gradient still pending for a vertex. The second covers what the node just passed
   * on, because an identity backward passes its input along and a reshape passes a view of it, and
   * both are pending for the node's inputs. A leaf's gradient is a copy, a sum, or a gradient that
   * passed {@link #isUnshared} when the leaf took it, so it never shares storage with a pending
   * one. A device block goes back to the cache. A CPU array goes to the thread's pool, but only
   * when a memory scope owns it, because the pool hands arrays out only inside scopes. For anything
   * else, the garbage collector frees it as before. Gradients are most of the memory that a
   * backward pass creates, so this returns that half of a training step's temporaries at once, and
   * later gradients of the same size reuse it.
   */
  private static void releaseIfUnshared(
      Tensor grad, Map<Object, Tensor> pending, Tensor... stillNeeded) {
    if (isUnshared(grad, pending, stillNeeded)) {
      grad.storage().release();
    }
  }

  /**
   * Returns whether this pass owns {@code grad}'s storage alone, so that {@link #releaseIfUnshared}
   * would release it: no tensor of {@code stillNeeded} and no pending gradient shares it, and on
   * the CPU a memory scope owns it. A leaf may then take the gradient itself instead of a copy.
   */
  private static boolean isUnshared(
      Tensor grad, Map<Object, Tensor> pending, Tensor... stillNeeded) {
    Storage storage = grad.storage();
    if (!(storage instanceof DeviceStorage) && MemoryScope.isKept(grad)) {
      return false;
    }
    for (Tensor needed : stillNeeded) {
      if (needed != null && needed.storage() == storage) {
        return false;
      }
    }
    for (Tensor waiting : pending.values()) {
      if (waiting.storage() == storage) {
        return false;
      }
    }
    return true;
  }

  /**
   * Rejects a leaf whose gradient from an earlier pass was released with the memory scope of that
   * pass, because the new gradient would have to be added to it.
   */
  private static void requireUsableGrad(Tensor leaf) {
    Tensor existing = leaf.grad();
    if (existing != null && existing.isReleased()) {
      throw new IllegalStateException(
          "a leaf's gradient from an earlier backward pass was released when the memory scope of"
              + " that pass closed, so the new gradient cannot be added to it: call zeroGrad()"
              + " before each backward pass, or keep the gradient with MemoryScope.keep to"
              + " accumulate over several scopes");
    }
  }

  /**
   * Adds {@code grad} to the leaf's gradient. A sum added to a gradient that the caller kept out of
   * memory scopes is kept too, so that accumulation over several scopes goes on working.
   */
  private static void accumulateIntoLeaf(Tensor leaf, Tensor grad) {
    if (!leaf.requiresGrad()) {
      return;
    }
    Tensor existing = leaf.grad();
    if (existing == null) {
      leaf.setGrad(grad.copy());
      return;
    }
    Tensor sum = existing.add(grad);
    leaf.setGrad(MemoryScope.isKept(existing) ? MemoryScope.keep(sum) : sum);
  }

  private static void checkGradShape(Tensor tensor, Tensor grad, String opName) {
    checkGradShape(tensor.shape(), tensor.dtype(), grad, opName);
  }

  private static void checkGradShape(int[] shape, DType dtype, Tensor grad, String opName) {
    if (!Arrays.equals(shape, grad.shape())) {
      throw new IllegalStateException(
          "gradient from '"
              + opName
              + "' has shape "
              + Shapes.format(grad.shape())
              + " but the tensor has shape "
              + Shapes.format(shape));
    }
    if (dtype != grad.dtype()) {
      throw new IllegalStateException(
          "gradient from '" + opName + "' is " + grad.dtype() + " but the tensor is " + dtype);
    }
  }

  /**
   * Returns the nodes below {@code root}, and the leaves that require a gradient, in the order that
   * backward visits them: {@code root} first, and every vertex after every node that consumes it.
   * It is a depth-first postorder, reversed: in a postorder each vertex comes after everything
   * below it, so reversed, each comes after everything above it.
   */
  private static List<Object> backwardOrder(Node root) {
    List<Object> postOrder = new ArrayList<>();
    Set<Object> visited = Collections.newSetFromMap(new IdentityHashMap<>());
    // Iterative depth-first search: deep networks would overflow the call stack.
    Deque<Iterator<Node.Edge>> stack = new ArrayDeque<>();
    Deque<Object> path = new ArrayDeque<>();
    visited.add(root);
    path.push(root);
    stack.push(root.edges().iterator());
    while (!stack.isEmpty()) {
      Iterator<Node.Edge> edges = stack.peek();
      if (edges.hasNext()) {
        Node.Edge edge = edges.next();
        if (edge == null || !edge.takesGradient() || !visited.add(edge.target())) {
          continue;
        }
        path.push(edge.target());
        stack.push(
            edge.producer() != null
                ? edge.producer().edges().iterator()
                : Collections.emptyIterator());
      } else {
        stack.pop();
        postOrder.add(path.pop());
      }
    }
    Collections.reverse(postOrder);
    return postOrder;
  }
}
