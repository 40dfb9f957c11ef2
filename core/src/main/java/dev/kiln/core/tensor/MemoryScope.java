package dev.kiln.core.tensor;

import java.lang.ref.WeakReference;
import java.util.ArrayList;
import java.util.List;

/**
 * Frees tensor memory at a known point instead of whenever the garbage collector runs.
 *
 * <p>A training step allocates dozens of tensors: the batch, every layer's output, the tensors
 * saved for backward, the gradients. Once the step has read its loss, none of them is needed. Java
 * cannot tell that until a collection finds them unreachable. On a device, collections are driven
 * by heap pressure, which device blocks do not add to, so between collections each step would ask
 * the device for fresh memory. On the CPU, each step would hand the collector its arrays, often
 * more than a gigabyte, to find and free. A scope marks the end of their life instead:
 *
 * <pre>{@code
 * try (var scope = MemoryScope.open()) {
 *   optimizer.zeroGrad();
 *   Tensor loss = lossFunction.compute(model.forward(batch.to(device)), targets.to(device));
 *   loss.backward();
 *   optimizer.step();
 *   return loss.item();
 * } // every block and array allocated above is released here
 * }</pre>
 *
 * <p>Device blocks go back to the allocator's cache, and Java arrays to the thread's {@link
 * ArrayPool}. The next step then finds memory of the same sizes there, so once the steps repeat the
 * same requests, no training step requests device memory. Only arrays shorter than {@link
 * ArrayPool#MIN_LENGTH}, which the pool leaves to the garbage collector, still come from the Java
 * heap.
 *
 * <h2>The rules</h2>
 *
 * <ul>
 *   <li>Open a scope in a {@code try}-with-resources block. A scope that is never closed stays the
 *       thread's innermost, and every later allocation of the thread joins it.
 *   <li>A scope owns each storage that its thread allocates while it is the thread's innermost open
 *       scope, on any device, the CPU included. Scopes belong to one thread; other threads, such as
 *       the CPU backend's workers, are unaffected. A tensor made from the caller's array ({@code
 *       Tensor.of}, {@code Storage.wrap}) is the caller's, and no scope owns it.
 *   <li>Closing the scope releases what it owns. Any later use of a released storage fails with an
 *       {@link IllegalStateException}, so a mistake is loud. The exception is a Java array taken
 *       with {@code storage().floats()} or {@code doubles()}: the pool hands it to a later
 *       allocation, and nothing checks a raw array, so such an array must not outlive its scope.
 *       The rules are the same on every device, so a program that the CPU runs correctly inside
 *       scopes also releases its memory correctly on a GPU. Kernels that use those blocks may still
 *       be queued on the GPU when the scope closes, which is safe for the reason {@code
 *       CachingAllocator} gives under "Why a freed block can be reused at once".
 *   <li>A scope keeps only weak references to its device storages, so one that becomes unreachable
 *       before the scope closes still goes back through the garbage collector, as outside a scope.
 *       On the CPU the scope keeps a strong reference to each array until it closes, even after its
 *       tensor became unreachable, and then hands it to the pool. Gradients and temporaries die
 *       during the step, and the next step needs arrays of their sizes again. A scope around a
 *       whole loop would therefore keep every array of the loop, so open one per step or batch.
 *   <li>{@link #keep} takes a tensor's storage out of every scope, not into the enclosing one, and
 *       the garbage collector frees it as outside a scope. Read the results you need (with {@code
 *       item()}, {@code toFloatArray()}, or {@code to(Device.CPU)} from a device) or keep them
 *       before the scope closes. A CPU tensor's {@code to(Device.CPU)} is the tensor itself, so it
 *       needs {@code keep}.
 *   <li>Storage that a tensor takes over with {@link Tensor#setStorage} (a module moved, loaded or
 *       converted) is kept automatically, and optimizers keep their own state.
 *   <li>The gradients that backward gives to parameters are not kept: they are part of the step, so
 *       call {@code step()} before the scope closes and {@code zeroGrad()} before the next backward
 *       pass. To accumulate gradients over several scopes, keep each leaf's gradient once; backward
 *       then keeps the sums that it adds to a kept gradient.
 * </ul>
 */
public final class MemoryScope implements AutoCloseable {
  private static final ThreadLocal<MemoryScope> INNERMOST = new ThreadLocal<>();

  private final MemoryScope outer;
  private final Thread thread;
  private final List<Membership> owned = new ArrayList<>();
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
   * tensor that no scope owns is returned as it is.
   *
   * @throws IllegalStateException if the storage was already released
   */
  public static Tensor keep(Tensor tensor) {
    if (tensor != null) {
      if (tensor.isReleased()) {
        throw new IllegalStateException(
            "cannot keep a tensor whose storage was already released: keep it before its memory"
                + " scope closes");
      }
      tensor.storage().leaveScope();
    }
    return tensor;
  }

  /**
   * Returns whether {@code tensor}'s storage is usable and no scope owns it. A released tensor is
   * not kept.
   */
  public static boolean isKept(Tensor tensor) {
    return !tensor.isReleased() && tensor.storage().scope() == null;
  }

  /** Returns the calling thread's innermost open scope, or null. */
  static MemoryScope innermost() {
    return INNERMOST.get();
  }

  /**
   * Called by each new storage that a scope may release: the calling thread's innermost scope, if
   * there is one, becomes its owner. {@code array} is the storage's Java array on the CPU, for the
   * pool, or null. Returns the storage's membership, or null outside a scope.
   */
  static Membership adopt(Storage storage, Object array) {
    MemoryScope scope = INNERMOST.get();
    if (scope == null) {
      return null;
    }
    Membership membership = new Membership(scope, storage, array);
    scope.owned.add(membership);
    return membership;
  }

  /** Returns how many live storages this scope owns now, kept ones excluded. */
  public int ownedStorages() {
    int count = 0;
    for (Membership membership : owned) {
      count += membership.scope() == this && membership.storage.get() != null ? 1 : 0;
    }
    return count;
  }

  /**
   * Releases every storage that this scope still owns, and makes the enclosing scope the thread's
   * innermost again. Closing twice does nothing.
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
      ArrayPool pool = ArrayPool.ofThisThread();
      for (Membership membership : owned) {
        if (membership.scope() != this) {
          continue; // kept
        }
        Storage storage = membership.storage.get();
        if (storage != null) {
          storage.release();
        } else if (membership.array != null) {
          // The storage became unreachable, so nothing can reach its array any more.
          pool.give(membership.array);
        }
      }
    } finally {
      // Even if a release fails, the thread leaves this scope, or it would keep adding to it.
      owned.clear();
      if (outer == null) {
        INNERMOST.remove();
        ArrayPool.ofThisThread().endRound();
      } else {
        INNERMOST.set(outer);
      }
    }
  }

  /**
   * One storage that a scope owns. The scope refers to the storage weakly, so that it does not keep
   * the storage reachable. On the CPU it also refers to the array strongly, so that the array still
   * reaches the pool when the storage became unreachable before the scope closed.
   */
  static final class Membership {
    private final WeakReference<Storage> storage;
    private final Object array;
    private volatile MemoryScope scope;

    private Membership(MemoryScope scope, Storage storage, Object array) {
      this.scope = scope;
      this.storage = new WeakReference<>(storage);
      this.array = array;
    }

    /** Returns the owning scope, or null once the storage was kept. */
    MemoryScope scope() {
      return scope;
    }

    /** Takes the storage out of its scope, which then neither releases nor pools it. */
    void leave() {
      scope = null;
    }
  }
}
