package dev.kiln.kernels;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Objects;

/**
 * Runs kiln's CUDA kernels on the CPU through {@code libkiln_emu.so}, the same kernel sources
 * compiled by g++ under an emulation header.
 *
 * <p>A launch takes the arguments that cuLaunchKernel would: device pointers (here {@link
 * MemorySegment}s in native memory), ints, floats and 64-bit integers, in the kernel's parameter
 * order. Launches block until every thread has finished and run one at a time, even when called
 * from several Java threads.
 *
 * <pre>{@code
 * try (EmulatedKernels kernels = EmulatedKernels.load(); Arena arena = Arena.ofConfined()) {
 *   MemorySegment x = arena.allocate(ValueLayout.JAVA_FLOAT, n);
 *   // Op code 11 is ReLU, which ignores a and b (here 0).
 *   kernels.launch("kiln_elementwise_unary", Dim3.of(Dim3.blocksFor(n, 256)), Dim3.of(256), 0,
 *       x, x, n, 11, 0f, 0f);
 * }
 * }</pre>
 */
public final class EmulatedKernels implements AutoCloseable {
  private static final int ERROR_CAPACITY = 4096;

  /**
   * The order in which the threads of each block run. The serial schedules run one thread at a time
   * and switch threads only at a {@code __syncthreads}, a warp intrinsic or the end of the kernel,
   * in a fixed order. A race inside a block that the order triggers then gives the same wrong
   * result on every run, where the parallel schedule may give a right one on most runs.
   */
  public enum Schedule {
    /** All threads of a block run at once, as OS threads ({@code parallel}, the default). */
    PARALLEL,
    /** One at a time, the lowest thread index first ({@code serial-forward}). */
    SERIAL_FORWARD,
    /** One at a time, the highest thread index first ({@code serial-reverse}). */
    SERIAL_REVERSE,
    /** One at a time, in an order shuffled per block from a seed ({@code serial-shuffle:SEED}). */
    SERIAL_SHUFFLE
  }

  private final EmulatorLibrary library;
  private volatile boolean closed;

  private EmulatedKernels(EmulatorLibrary library) {
    this.library = library;
  }

  /**
   * Loads the emulation library: the file named by the system property {@code kiln.emu.lib}, or
   * else the copy inside the kernels jar.
   *
   * @throws IllegalStateException when neither is found or it cannot be loaded. The message names
   *     what was tried and how to build the library
   */
  public static EmulatedKernels load() {
    return new EmulatedKernels(EmulatorLibrary.find());
  }

  /** Returns the names of every kernel in the library, sorted. */
  public List<String> kernelNames() {
    ensureOpen();
    try {
      int count = (int) library.kernelCount.invokeExact();
      List<String> names = new ArrayList<>(count);
      for (int i = 0; i < count; i++) {
        MemorySegment name = (MemorySegment) library.kernelName.invokeExact(i);
        names.add(name.getString(0));
      }
      return Collections.unmodifiableList(names);
    } catch (Throwable error) {
      throw rethrow(error);
    }
  }

  /**
   * Sets how long a {@code __syncthreads} or warp intrinsic waits for the other threads before the
   * launch fails, for every launch in this process. The default is 5000 ms, or the environment
   * variable {@code KILN_EMU_BARRIER_TIMEOUT_MS}.
   *
   * @param milliseconds the timeout, where 0 or less restores 5000
   */
  public void setBarrierTimeoutMillis(int milliseconds) {
    ensureOpen();
    try {
      library.setBarrierTimeout.invokeExact(milliseconds);
    } catch (Throwable error) {
      throw rethrow(error);
    }
  }

  /**
   * Sets how the threads of each block take turns, for every later launch in this process,
   * overriding the environment variable {@code KILN_EMU_SCHEDULE}.
   *
   * @param schedule the schedule
   * @param seed the seed of {@link Schedule#SERIAL_SHUFFLE}, which the other schedules ignore
   */
  public void setSchedule(Schedule schedule, long seed) {
    ensureOpen();
    Objects.requireNonNull(schedule, "schedule");
    try {
      library.setSchedule.invokeExact(schedule.ordinal(), seed);
    } catch (Throwable error) {
      throw rethrow(error);
    }
  }

  /**
   * Returns to the schedule that the environment variable {@code KILN_EMU_SCHEDULE} names, or
   * {@link Schedule#PARALLEL} when it is unset.
   */
  public void resetSchedule() {
    ensureOpen();
    try {
      library.setSchedule.invokeExact(-1, 0L);
    } catch (Throwable error) {
      throw rethrow(error);
    }
  }

  /**
   * Launches a kernel and waits for it to finish.
   *
   * @param kernel the kernel's name, such as {@code kiln_elementwise_unary}
   * @param grid the number of blocks along x, y and z
   * @param block the number of threads per block along x, y and z (at most 1024 in all)
   * @param dynamicSharedBytes bytes of dynamic shared memory per block (at most 49152)
   * @param args one per kernel parameter: a native {@link MemorySegment} for a pointer, an {@link
   *     Integer} for {@code int} or {@code unsigned}, a {@link Float}, a {@link Double}, or a
   *     {@link Long} for a 64-bit integer. {@link MemorySegment#NULL} passes a null pointer, which
   *     only the parameters that a kernel documents as optional accept. The kernels run in this
   *     process, so a null pointer where one is required, or a segment too small for the launch,
   *     crashes the JVM as an invalid access would crash a GPU program.
   * @throws KernelLaunchException when the kernel is unknown, an argument does not match its
   *     parameter, the launch shape is invalid, or the kernel misused a CUDA builtin
   */
  public void launch(String kernel, Dim3 grid, Dim3 block, int dynamicSharedBytes, Object... args) {
    ensureOpen();
    if (dynamicSharedBytes < 0) {
      throw new KernelLaunchException(
          kernel + ": dynamicSharedBytes is " + dynamicSharedBytes + ", but must be at least 0");
    }
    String signature = signature(kernel);
    if (args.length != signature.length()) {
      throw new KernelLaunchException(
          kernel
              + " takes "
              + signature.length()
              + " parameters ("
              + describe(signature)
              + "), but "
              + args.length
              + " arguments were given");
    }

    try (Arena arena = Arena.ofConfined()) {
      MemorySegment pointers = arena.allocate(ValueLayout.ADDRESS, Math.max(1, args.length));
      for (int i = 0; i < args.length; i++) {
        pointers.setAtIndex(ValueLayout.ADDRESS, i, slot(arena, kernel, i, signature, args[i]));
      }
      MemorySegment error = arena.allocate(ERROR_CAPACITY);
      int status =
          (int)
              library.launch.invokeExact(
                  arena.allocateFrom(kernel),
                  grid.x(),
                  grid.y(),
                  grid.z(),
                  block.x(),
                  block.y(),
                  block.z(),
                  dynamicSharedBytes,
                  pointers,
                  error,
                  (long) ERROR_CAPACITY);
      if (status != 0) {
        throw new KernelLaunchException(error.getString(0));
      }
    } catch (Throwable failure) {
      throw rethrow(failure);
    }
  }

  /**
   * Marks this handle closed, so later calls fail. The library itself stays loaded until the JVM
   * exits, because its worker threads wait inside it between launches.
   */
  @Override
  public void close() {
    closed = true;
  }

  private String signature(String kernel) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment found =
          (MemorySegment) library.kernelSignature.invokeExact(arena.allocateFrom(kernel));
      if (found.equals(MemorySegment.NULL)) {
        throw new KernelLaunchException(
            "kernel "
                + kernel
                + " is not in "
                + library.path
                + "; the library has "
                + kernelNames().size()
                + " kernels (see kernelNames()), so check the name or rebuild the kernels module");
      }
      return found.getString(0);
    } catch (Throwable error) {
      throw rethrow(error);
    }
  }

  /** Writes argument i into its own 8-byte slot, as kernelParams expects a pointer to each. */
  private static MemorySegment slot(
      Arena arena, String kernel, int index, String signature, Object argument) {
    char type = signature.charAt(index);
    MemorySegment slot = arena.allocate(8, 8);
    switch (type) {
      case 'p' -> {
        if (!(argument instanceof MemorySegment segment) || !segment.isNative()) {
          throw mismatch(kernel, index, signature, argument, "a native MemorySegment");
        }
        if (!segment.scope().isAlive()) {
          throw new KernelLaunchException(
              kernel
                  + ": argument "
                  + index
                  + " is a MemorySegment whose arena is already closed, so its memory is freed;"
                  + " allocate it from an arena that stays open until the launch returns");
        }
        slot.set(ValueLayout.ADDRESS, 0, segment);
      }
      case 'i', 'u' -> {
        if (!(argument instanceof Integer value)) {
          throw mismatch(kernel, index, signature, argument, "an Integer");
        }
        slot.set(ValueLayout.JAVA_INT, 0, value);
      }
      case 'f' -> {
        if (!(argument instanceof Float value)) {
          throw mismatch(kernel, index, signature, argument, "a Float (write 0.5f, not 0.5)");
        }
        slot.set(ValueLayout.JAVA_FLOAT, 0, value);
      }
      case 'd' -> {
        if (!(argument instanceof Double value)) {
          throw mismatch(kernel, index, signature, argument, "a Double");
        }
        slot.set(ValueLayout.JAVA_DOUBLE, 0, value);
      }
      case 'l' -> {
        if (!(argument instanceof Long value)) {
          throw mismatch(kernel, index, signature, argument, "a Long (write 7L, not 7)");
        }
        slot.set(ValueLayout.JAVA_LONG, 0, value);
      }
      default ->
          throw new KernelLaunchException(
              kernel + " has a parameter of unknown type code '" + type + "'; rebuild kiln");
    }
    return slot;
  }

  private static KernelLaunchException mismatch(
      String kernel, int index, String signature, Object argument, String expected) {
    String actual =
        argument == null ? "null" : argument.getClass().getSimpleName() + " " + argument;
    return new KernelLaunchException(
        "argument "
            + index
            + " of "
            + kernel
            + " ("
            + describe(signature)
            + ") must be "
            + expected
            + ", but is "
            + actual);
  }

  /** Spells a signature out as C types, such as "float*, float*, int". */
  private static String describe(String signature) {
    List<String> types = new ArrayList<>();
    for (char code : signature.toCharArray()) {
      types.add(
          switch (code) {
            case 'p' -> "pointer";
            case 'i' -> "int";
            case 'u' -> "unsigned";
            case 'f' -> "float";
            case 'd' -> "double";
            case 'l' -> "64-bit integer";
            default -> "?";
          });
    }
    return String.join(", ", types);
  }

  private void ensureOpen() {
    if (closed) {
      throw new IllegalStateException("this EmulatedKernels was closed; call load() again");
    }
  }

  private static RuntimeException rethrow(Throwable error) {
    if (error instanceof RuntimeException runtime) {
      return runtime;
    }
    if (error instanceof Error fatal) {
      throw fatal;
    }
    return new IllegalStateException("native call into libkiln_emu.so failed", error);
  }
}
