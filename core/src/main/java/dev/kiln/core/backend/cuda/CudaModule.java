package dev.kiln.core.backend.cuda;

import dev.kiln.kernels.Dim3;
import java.util.concurrent.ConcurrentHashMap;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;

/**
 * A loaded module of GPU code (a fatbin, cubin or PTX image) and its kernels, looked up by name.
 *
 * <p>{@code cuModuleGetFunction} searches the module's symbol table, so each kernel is looked up
 * once and its handle cached. Later launches cost one map lookup.
 *
 * <p>Get a module from {@link CudaContext#module(String, byte[])}, which keeps it loaded until the
 * context closes.
 */
public final class CudaModule implements AutoCloseable {

  private final CudaContext context;
  private final CUmodule module = new CUmodule();
  private final ConcurrentHashMap<String, CUfunction> functions = new ConcurrentHashMap<>();
  private volatile boolean closed;

  /**
   * Loads a module image into the context ({@code cuModuleLoadData}).
   *
   * <p>For a fatbin the driver picks the machine code for the device's architecture, or else
   * compiles the embedded PTX. PTX from nvcc 13 needs a driver of release 580 or newer.
   *
   * @param context the context to load into
   * @param image the fatbin or cubin bytes, or PTX text ending in a 0 byte
   * @throws CudaException if the driver rejects the image, for example with {@code
   *     CUDA_ERROR_NO_BINARY_FOR_GPU} when it contains no code for this GPU
   */
  CudaModule(CudaContext context, byte[] image) {
    if (image.length == 0) {
      throw new IllegalArgumentException("the module image is empty: pass a fatbin, cubin or PTX");
    }
    this.context = context;
    context.makeCurrent();
    CudaException.check(
        JCudaDriver.cuModuleLoadData(module, image),
        "cuModuleLoadData",
        "image=" + image.length + " bytes, device=cuda:" + context.deviceIndex());
  }

  /**
   * Returns the kernel named {@code name}, looking it up on first use.
   *
   * @throws IllegalArgumentException if the module has no kernel of that name
   */
  public CUfunction function(String name) {
    return functions.computeIfAbsent(name, this::lookUp);
  }

  private CUfunction lookUp(String name) {
    context.makeCurrent();
    CUfunction function = new CUfunction();
    int result = JCudaDriver.cuModuleGetFunction(function, module, name);
    if (result == CUresult.CUDA_ERROR_NOT_FOUND) {
      throw new IllegalArgumentException(
          "kernel '"
              + name
              + "' is not in the loaded module: check the name against the extern \"C\""
              + " kernels, or rebuild the kernels module so that its fatbin matches this core");
    }
    CudaException.check(result, "cuModuleGetFunction", "name=" + name);
    return function;
  }

  /**
   * Launches a kernel on the context's stream ({@code cuLaunchKernel}), with the same arguments as
   * the emulated device's launch: grid and block extents, dynamic shared memory, then the kernel's
   * arguments ({@link DeviceBuffer} for pointers, boxed numbers for scalars). The launch is
   * asynchronous: it returns when the launch is queued, and an error inside the kernel, such as an
   * illegal address, shows up at the next synchronizing call.
   *
   * @param kernel the kernel's name
   * @param grid the number of blocks along x, y and z
   * @param block the number of threads per block along x, y and z
   * @param dynamicSharedBytes bytes of dynamic shared memory per block, 0 or more
   * @param args the kernel's arguments in order, as {@link #kernelParameters} describes
   */
  public void launch(String kernel, Dim3 grid, Dim3 block, int dynamicSharedBytes, Object... args) {
    if (closed) {
      throw new IllegalStateException(
          "cannot launch kernel " + kernel + ": its module was unloaded when the context closed");
    }
    if (dynamicSharedBytes < 0) {
      throw new IllegalArgumentException(
          "dynamic shared memory must be 0 bytes or more, got " + dynamicSharedBytes);
    }
    CUfunction function = function(kernel);
    Pointer parameters = kernelParameters(kernel, args);
    context.makeCurrent();
    int result =
        JCudaDriver.cuLaunchKernel(
            function,
            grid.x(),
            grid.y(),
            grid.z(),
            block.x(),
            block.y(),
            block.z(),
            dynamicSharedBytes,
            context.stream(),
            parameters,
            null);
    CudaException.check(
        result,
        "cuLaunchKernel",
        String.format(
            "kernel=%s, grid=(%d, %d, %d), block=(%d, %d, %d), dynamicSharedBytes=%d",
            kernel,
            grid.x(),
            grid.y(),
            grid.z(),
            block.x(),
            block.y(),
            block.z(),
            dynamicSharedBytes));
  }

  /**
   * Packs kernel arguments the way {@code cuLaunchKernel} expects them: an array of pointers, one
   * to each argument's value.
   *
   * <p>A {@link DeviceBuffer} or a JCuda {@link CUdeviceptr} becomes a 64-bit device pointer.
   * {@code Integer}, {@code Long}, {@code Float} and {@code Double} become the C types {@code int}
   * (or {@code unsigned}), {@code long long} (or {@code unsigned long long}), {@code float} and
   * {@code double}, the scalar types that {@code KILN_REGISTER} in {@code kiln_emu.h} accepts. The
   * Java type must match the kernel's parameter type, because the driver copies as many bytes as
   * the kernel's signature declares and checks nothing.
   *
   * <p>NOTE: this launch path cannot see the kernel's signature, so a wrong type is not caught
   * here. The emulated device checks every argument against the signature that {@code
   * KILN_REGISTER} records, so the launchers' tests on {@code emulated} catch such a mismatch.
   *
   * @throws IllegalArgumentException naming the argument's position and type if it is null or of
   *     another type
   */
  static Pointer kernelParameters(String kernel, Object... args) {
    Pointer[] values = new Pointer[args.length];
    for (int i = 0; i < args.length; i++) {
      values[i] =
          switch (args[i]) {
            case DeviceBuffer buffer -> Pointer.to(new long[] {buffer.address()});
            case CUdeviceptr pointer -> Pointer.to(pointer);
            case Integer value -> Pointer.to(new int[] {value});
            case Long value -> Pointer.to(new long[] {value});
            case Float value -> Pointer.to(new float[] {value});
            case Double value -> Pointer.to(new double[] {value});
            case null ->
                throw new IllegalArgumentException(
                    "argument " + i + " of kernel " + kernel + " is null");
            default ->
                throw new IllegalArgumentException(
                    String.format(
                        "argument %d of kernel %s has type %s: pass a DeviceBuffer or CUdeviceptr"
                            + " for a pointer, or an Integer, Long, Float or Double",
                        i, kernel, args[i].getClass().getName()));
          };
    }
    return Pointer.to(values);
  }

  /**
   * Unloads the module ({@code cuModuleUnload}). {@link CudaContext#close()} calls it after the
   * stream has finished. A second call does nothing.
   */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    functions.clear();
    context.makeCurrent();
    CudaException.check(JCudaDriver.cuModuleUnload(module), "cuModuleUnload", "");
  }
}
