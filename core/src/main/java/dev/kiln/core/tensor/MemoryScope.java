package dev.kiln.core.tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * Frees device memory at a known point instead of whenever the garbage collector runs.
 *
 * <p>A training step allocates dozens of device blocks: the batch, every layer's output, the
 * tensors saved for backward, the gradients. Once the step has read its loss, none of them is
 * needed. Java cannot tell that until a collection finds them unreachable, and collections are
 * driven by heap pressure, which device blocks do not add to. Between collections each step would
 * ask the device for fresh memory. A scope marks the end of their life instead:
 *
 * <pre>{@code
 * try (var scope = MemoryScope.open()) {
 *   optimizer.zeroGrad();
 *   Tensor loss = lossFunction.compute(model.forward(batch.to(device)), targets.to(device));
 *   loss.backward();
 *   optimizer.step();
 *   return loss.item();
 * } // every block allocated above goes back to the allocator's cache here
 * }</pre>
 *
 * <p>The next step then finds blocks of the same sizes in the cache, so after the first step no
 * training step asks the device for memory.
 *
 * <h2>The rules</h2>
 *
 * <ul>
 *   <li>A scope owns each device storage that its thread allocates while it is the thread's
 *       innermost open scope. Scopes belong to one thread; other threads are unaffected.
 *   <li>Closing the scope releases what it owns. Any later use of a released storage fails with an
 *       {@link IllegalStateException}, so a mistake is loud, never a silent reuse of the block.
 *   <li>{@link #keep} takes a tensor's storage out of every scope; the garbage collector frees it
 *       as before. Read results you need (with {@code item()} or {@code to(Device.CPU)}) or keep
 *       them before the scope closes.
 *   <li>Storage that a tensor takes over with {@link Tensor#setStorage} (a module moved, loaded or
 *       converted) is kept automatically, and optimizers keep their own state. The gradients that
 *       backward gives to parameters are not kept: they are part of the step. Call {@code
 *       zeroGrad()} before the next backward pass, as each step does anyway.
 *   <li>On the CPU a scope does nothing: arrays are heap memory, which the collector already
 *       watches.
 * </ul>
 */
public final class MemoryScope implements AutoCloseable {
  private static final ThreadLocal<MemoryScope> INNERMOST = new ThreadLocal<>();

  private final MemoryScope outer;
  private final Thread thread;
  private final List<DeviceStorage> owned = new ArrayList<>();
  private boolean closed;

  private MemoryScope(MemoryScope outer, Thread thread) {
    this.outer = outer;
    this.thread = thread;
  }

  /** Opens a scope on the calling thread, inside the scope that is open there, if any. */
  public static MemoryScope open() {
    MemoryScope scope = new MemoryScope(INNERMOST.get(), Thread.currentThread());
    INNERMOST.set(scope);
    return scope;
  }

  /**
   * Takes {@code tensor}'s storage out of the scope that owns it, so that closing the scope leaves
   * it alone; views of the tensor share that storage and survive with it. Returns {@code tensor}. A
   * CPU tensor, or one that no scope owns, is returned as it is.
   */
  public static Tensor keep(Tensor tensor) {
    if (tensor != null && tensor.storage() instanceof DeviceStorage onDevice) {
      onDevice.leaveScope();
    }
    return tensor;
  }

  /**
   * Called by each new device storage: the calling thread's innermost scope, if there is one,
   * becomes its owner. Returns that scope, or null.
   */
  static MemoryScope adopt(DeviceStorage storage) {
    MemoryScope scope = INNERMOST.get();
    if (scope != null) {
      scope.owned.add(storage);
    }
    return scope;
  }

  /** Returns how many device storages this scope owns now, kept ones excluded. */
  public int ownedStorages() {
    int count = 0;
    for (DeviceStorage storage : owned) {
      count += storage.scope() == this ? 1 : 0;
    }
    return count;
  }

  /**
   * Releases every device storage that this scope still owns, and makes the enclosing scope the
   * thread's innermost again. Closing twice does nothing.
   *
   * @throws IllegalStateException if another thread closes it, or if a scope opened inside it is
   *     still open, which a {@code try} block never allows but hand-written code might
   */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    if (Thread.currentThread() != thread) {
      throw new IllegalStateException(
          "a memory scope must be closed by the thread that opened it ("
              + thread.getName()
              + "), not by "
              + Thread.currentThread().getName());
    }
    if (INNERMOST.get() != this) {
      throw new IllegalStateException(
          "this memory scope still has an inner scope open: close the inner one first, or open"
              + " both in try-with-resources blocks");
    }
    closed = true;
    for (DeviceStorage storage : owned) {
      if (storage.scope() == this) {
        storage.release();
      }
    }
    owned.clear();
    if (outer == null) {
      INNERMOST.remove();
    } else {
      INNERMOST.set(outer);
    }
  }
}
