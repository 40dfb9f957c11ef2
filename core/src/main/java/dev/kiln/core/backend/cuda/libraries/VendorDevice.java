package dev.kiln.core.backend.cuda.libraries;

import dev.kiln.core.backend.cuda.CachingAllocator;
import dev.kiln.core.backend.cuda.CudaContext;
import dev.kiln.core.backend.cuda.DeviceBuffer;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import jcuda.NativePointerObject;
import jcuda.driver.CUstream;

/**
 * The parts of kiln's device that a vendor binding uses: the raw {@code CUstream} handle that all
 * work goes to, the allocator that workspaces come from, and the call that makes the primary
 * context current on the calling thread.
 *
 * <p>cuBLAS and cuDNN use the context that is current on the calling thread, and kiln's {@link
 * CudaContext} retains the device's primary context, the one that the CUDA runtime inside those
 * libraries also uses. So every call first makes it current, and the libraries' handles are bound
 * to kiln's stream with {@code cublasSetStream_v2} and {@code cudnnSetStream}. Their kernels then
 * run in order with kiln's own, and a workspace block freed after a call is reused only by later
 * work on the same stream.
 *
 * @param name the device's name for messages, such as {@code cuda:0}
 * @param stream the {@code CUstream} handle as a raw address
 * @param jcudaStream the same stream as JCuda's object, for the JCuda bindings; null in tests
 * @param allocator the allocator that workspaces come from
 * @param makeCurrent makes the context current on the calling thread
 */
public record VendorDevice(
    String name,
    long stream,
    CUstream jcudaStream,
    CachingAllocator allocator,
    Runnable makeCurrent) {

  /** Returns the parts of a live CUDA context. */
  public static VendorDevice of(CudaContext context) {
    return new VendorDevice(
        context.toString(),
        rawHandle(context.stream()),
        context.stream(),
        context.allocator(),
        context::makeCurrent);
  }

  /**
   * Allocates a workspace of {@code bytes} from kiln's allocator, or returns null for 0 bytes,
   * which cuDNN accepts as "no workspace".
   *
   * <p>The allocation may block, on the allocator's lock or while it waits for the garbage
   * collector to return blocks, and a virtual thread that blocks may resume on another
   * operating-system thread. So the context is made current again before the vendor call that takes
   * the workspace, which callers make next.
   */
  DeviceBuffer workspace(long bytes) {
    if (bytes == 0) {
      return null;
    }
    DeviceBuffer block = allocator.allocate(bytes);
    makeCurrent.run();
    return block;
  }

  /** Returns a workspace to the allocator; the stream orders its reuse after this call's work. */
  void release(DeviceBuffer workspace) {
    if (workspace != null) {
      allocator.free(workspace);
    }
  }

  /**
   * Returns the native handle inside a JCuda object.
   *
   * <p>JCuda keeps the handle in a protected method of {@link NativePointerObject}, and Java's
   * access rules do not let a subclass in another package read it from another object. kiln runs
   * JCuda from the class path, where its packages are open, so reflection can read it.
   *
   * @throws IllegalStateException if JCuda's class no longer has that method
   */
  static long rawHandle(NativePointerObject object) {
    try {
      Method method = NativePointerObject.class.getDeclaredMethod("getNativePointer");
      method.setAccessible(true);
      return (long) method.invoke(object);
    } catch (NoSuchMethodException | IllegalAccessException | InvocationTargetException e) {
      throw new IllegalStateException(
          "cannot read the native handle of a JCuda "
              + object.getClass().getSimpleName()
              + " ("
              + e
              + "): the JCuda version on the class path is not the one kiln was built with",
          e);
    }
  }
}
