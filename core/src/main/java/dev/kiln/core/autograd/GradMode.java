package dev.kiln.core.autograd;

/**
 * Switch for graph recording, per thread. Inside a no-grad scope, ops compute values but record no
 * nodes, which is what evaluation and optimizer steps want:
 *
 * <pre>{@code
 * try (var scope = GradMode.noGrad()) {
 *   Tensor prediction = model.forward(images);
 * }
 * }</pre>
 */
public final class GradMode {
  private static final ThreadLocal<Boolean> ENABLED = ThreadLocal.withInitial(() -> Boolean.TRUE);

  private GradMode() {}

  /** Whether ops on this thread record the graph. */
  public static boolean isEnabled() {
    return ENABLED.get();
  }

  /** Turns recording off on this thread until the returned scope is closed. Scopes nest. */
  public static Scope noGrad() {
    return set(false);
  }

  /** Turns recording on on this thread until the returned scope is closed. */
  public static Scope enableGrad() {
    return set(true);
  }

  private static Scope set(boolean enabled) {
    boolean previous = ENABLED.get();
    ENABLED.set(enabled);
    return () -> ENABLED.set(previous);
  }

  /** A scope that restores the previous mode when closed. */
  @FunctionalInterface
  public interface Scope extends AutoCloseable {
    @Override
    void close();
  }
}
