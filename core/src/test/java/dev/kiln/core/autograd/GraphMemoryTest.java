package dev.kiln.core.autograd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.core.tensor.Tensor;
import java.lang.ref.WeakReference;
import org.junit.jupiter.api.Test;

/**
 * Tests which tensors the graph keeps alive: only what a backward function saved, and that only
 * until backward has run through it. Each test drops its own reference to a tensor, runs the
 * garbage collector and checks through a weak reference whether the tensor was collected.
 */
class GraphMemoryTest {

  /** System.gc() is a request, so a freed tensor gets several collections to disappear. */
  private static final int COLLECTIONS = 20;

  private static boolean collected(WeakReference<Tensor> reference) throws InterruptedException {
    for (int i = 0; i < COLLECTIONS && reference.get() != null; i++) {
      System.gc();
      Thread.sleep(10);
    }
    return reference.get() == null;
  }

  private static Tensor leaf(double... values) {
    return Tensor.of(values, values.length).requiresGrad(true);
  }

  @Test
  void unsavedIntermediateIsFreedAfterForward() throws InterruptedException {
    Tensor x = leaf(1, 2);
    Tensor y = leaf(3, 4);
    Tensor sum = x.add(y);
    // add saves only the shapes of its inputs, so nothing in the graph refers to sum.
    Tensor loss = sum.add(y).sum();
    WeakReference<Tensor> sumReference = new WeakReference<>(sum);
    sum = null;

    assertTrue(collected(sumReference), "an intermediate that no backward saved stayed alive");

    loss.backward();
    assertArrayEquals(new double[] {1, 1}, x.grad().toDoubleArray());
    assertArrayEquals(new double[] {2, 2}, y.grad().toDoubleArray());
  }

  @Test
  void savedTensorIsFreedByBackward() throws InterruptedException {
    Tensor x = leaf(-1, 2);
    Tensor y = leaf(3, 4);
    Tensor sum = x.add(y);
    // relu saves its input for the mask of its gradient.
    Tensor loss = sum.relu().sum();
    WeakReference<Tensor> sumReference = new WeakReference<>(sum);
    sum = null;

    assertNotNull(sumReference.get());
    System.gc();
    assertNotNull(sumReference.get(), "relu's saved input was freed before backward");

    loss.backward();

    assertTrue(collected(sumReference), "relu's saved input stayed alive after backward");
    assertArrayEquals(new double[] {1, 1}, x.grad().toDoubleArray());
  }

  @Test
  void retainedGraphKeepsSavedTensor() throws InterruptedException {
    Tensor x = leaf(-1, 2);
    Tensor sum = x.add(x);
    Tensor loss = sum.relu().sum();
    WeakReference<Tensor> sumReference = new WeakReference<>(sum);
    sum = null;

    loss.backward(null, true);
    System.gc();
    assertNotNull(sumReference.get(), "backward with retainGraph freed a saved tensor");

    loss.backward();
    assertArrayEquals(new double[] {0, 4}, x.grad().toDoubleArray());
    assertTrue(collected(sumReference), "the second backward without retainGraph kept it");
  }

  @Test
  void secondBackwardAfterReleaseFails() {
    Tensor x = leaf(-1, 2);
    Tensor loss = x.add(x).relu().sum();
    loss.backward();

    IllegalStateException error = assertThrows(IllegalStateException.class, loss::backward);

    assertTrue(error.getMessage().contains("backward a second time"), error.getMessage());
    assertTrue(error.getMessage().contains("backward(grad, true)"), error.getMessage());
  }

  @Test
  void sharedSubgraphFailsOnSecondRoot() {
    Tensor x = leaf(1, 2);
    Tensor hidden = x.relu();
    Tensor first = hidden.sum();
    Tensor second = hidden.mul(hidden).sum();
    first.backward();

    IllegalStateException error = assertThrows(IllegalStateException.class, second::backward);

    assertTrue(error.getMessage().contains("'relu'"), error.getMessage());
  }
}
