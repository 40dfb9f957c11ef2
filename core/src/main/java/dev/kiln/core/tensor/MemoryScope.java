package dev.kiln.core.tensor;

import java.lang.ref.WeakReference;
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
 * <p>The next step then finds blocks of the same sizes in the cache, so once the steps repeat the
 * same requests, no training step requests memory from the device.
 *
 * <h2>The rules</h2>
 *
 * <ul>
 *   <li>Open a scope in a {@code try}-with-resources block. A scope that is never closed stays the
 *       thread's innermost, and every later allocation of the thread joins it.
 *   <li>A scope owns each device storage that its thread allocates while it is the thread's
 *       innermost open scope. Scopes belong to one thread; other threads are unaffected.
 *   <li>Closing the scope releases what it owns. Any later use of a released storage fails with an
 *       {@link IllegalStateException}, so a mistake is loud, never a silent reuse of the block.
 *       Kernels that use those blocks may still be queued on the GPU when the scope closes, which
 *       is safe for the reason {@code CachingAllocator} gives under "Why a freed block can be
 *       reused at once".
 *   <li>A scope holds its storages weakly, so one that becomes unreachable before the scope closes
 *       still goes back through the garbage collector, as outside a scope.
 *   <li>{@link #keep} takes a tensor's storage out of every scope, not into the enclosing one, and
 *       the garbage collector frees it as outside a scope. Read the results you need (with {@code
 *       item()} or {@code to(Device.CPU)}) or keep them before the scope closes.
 *   <li>Storage that a tensor takes over with {@link Tensor#setStorage} (a module moved, loaded or
 *       converted) is kept automatically, and optimizers keep their own state.
 *   <li>The gradients that backward gives to parameters are not kept: they are part of the step, so
 *       call {@code step()} before the scope closes and {@code zeroGrad()} before the next backward
 *       pass. To accumulate gradients over several scopes, keep each leaf's gradient once; backward
 *       then keeps the sums that it adds to a kept gradient.
 *   <li>On the CPU a scope does nothing: arrays are heap memory, which the collector already
 *       watches.
 * </ul>
 */
public final class MemoryScope implements AutoCloseable {
  private static final ThreadLocal<MemoryScope> INNERMOST = new ThreadLocal<>();

  private final MemoryScope outer;
  private final Thread thread;
  private final List<WeakReference<DeviceStorage>> owned = new ArrayList<>();
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
   *
   * @throws IllegalStateException if the storage was already released
   */
  public static Tensor keep(Tensor tensor) {
    if (tensor != null && tensor.storage() instanceof DeviceStorage onDevice) {
      if (tensor.isReleased()) {
        throw new IllegalStateException(
            "cannot keep a tensor whose device storage was already released: keep it before its"
                + " memory scope closes");
      }
      onDevice.leaveScope();
    }
    return tensor;
  }

  /** Returns whether {@code tensor} lives on the CPU or in storage that no scope owns. */
  public static boolean isKept(Tensor tensor) {
    return !(tensor.storage() instanceof DeviceStorage onDevice) || onDevice.scope() == null;
  }

  /**
   * Called by each new device storage: the calling thread's innermost scope, if there is one,
   * becomes its owner. Returns that scope, or null.
   */
  static MemoryScope adopt(DeviceStorage storage) {
    MemoryScope scope = INNERMOST.get();
    if (scope != null) {
      scope.owned.add(new WeakReference<>(storage));
    }
    return scope;
  }

  /** Returns how many live device storages this scope owns now, kept ones excluded. */
  public int ownedStorages() {
    int count = 0;
    for (WeakReference<DeviceStorage> reference : owned) {
      DeviceStorage storage = reference.get();
      count += storage != null && storage.scope() == this ? 1 : 0;
    }
    return count;
  }

  /**
   * Releases every device storage that this scope still owns, and makes the enclosing scope the
   * thread's innermost again. Closing twice does nothing.
   *
   * @throws IllegalStateException if another thread closes it, which changes nothing, or if a scope
   *     opened inside it was left open. That scope is closed first, so its blocks are released too,
   *     and the exception reports the mistake afterwards.
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
    int leftOpen = 0;
    for (MemoryScope inner = INNERMOST.get();
        inner != null && inner != this;
        inner = INNERMOST.get()) {
      inner.releaseAndLeave();
      leftOpen++;
    }
    releaseAndLeave();
    if (leftOpen > 0) {
      throw new IllegalStateException(
          leftOpen
              + " memory scope(s) opened inside this one were left open and are closed now: open"
              + " each scope in a try-with-resources block, so that it closes even when an"
              + " exception leaves the block");
    }
  }

  /** Releases what this scope owns and hands the thread back to the enclosing scope. */
  private void releaseAndLeave() {
    closed = true;
    try {
      for (WeakReference<DeviceStorage> reference : owned) {
        DeviceStorage storage = reference.get();
        if (storage != null && storage.scope() == this) {
          storage.release();
        }
      }
    } finally {
      // Even if a release fails, the thread leaves this scope, or it would keep adding to it.
      owned.clear();
      if (outer == null) {
        INNERMOST.remove();
      } else {
        INNERMOST.set(outer);
      }
    }
  }
}
