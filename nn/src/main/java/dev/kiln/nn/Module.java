package dev.kiln.nn;

import dev.kiln.core.autograd.GradMode;
import dev.kiln.core.tensor.DType;
import dev.kiln.core.tensor.Device;
import dev.kiln.core.tensor.Shapes;
import dev.kiln.core.tensor.Storage;
import dev.kiln.core.tensor.Tensor;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.lang.reflect.WildcardType;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;

/**
 * A node in a tree of layers that owns named parameters (trained), buffers (state that is saved but
 * not trained, such as batch norm's running statistics) and child modules.
 *
 * <p>Names follow PyTorch: a parameter's full name is the path of child names joined by dots, such
 * as {@code features.0.weight} or {@code bn1.running_var}, so that weights move both ways through
 * safetensors files.
 *
 * <p>A subclass registers each layer it owns with {@link #registerModule} and each trained tensor
 * with {@link #registerParameter}, usually in its constructor:
 *
 * <pre>{@code
 * final Linear head = registerModule("head", new Linear(64, 10));
 * }</pre>
 *
 * Java has no hook that runs on a field assignment, so unlike PyTorch, a field assignment alone
 * registers nothing. The tree methods ({@link #parameters}, {@link #namedParameters}, {@link
 * #stateDict}, {@link #train}, {@link #eval}, {@link #to(Device)}, {@link #loadStateDict} and the
 * others built on them) therefore check every module in the tree first. They throw an {@link
 * IllegalStateException} when an instance field refers to a module, or to a leaf tensor that
 * requires a gradient, that is registered nowhere in the tree below the module called, and that is
 * not a module above the module called, such as its parent. The same goes for the elements of a
 * field declared as a collection, map or array of modules, such as {@code List<Linear>}. Such a
 * layer would otherwise never train and ignore {@code eval()}. A field that refers to a module or
 * parameter owned by another tree may be declared {@code transient}, which the check skips. The
 * check also skips static and synthetic fields, fields that reflection cannot open (in a named
 * module that does not open its package to kiln), fields declared as {@code Object} or as a type
 * variable without a module or tensor bound, and values it cannot see into, such as records, {@code
 * Optional}s and collections of tensors.
 */
public abstract class Module {

  /**
   * What a {@link #loadStateDict} call could not match.
   *
   * @param missing names of the model's tensors that the state did not provide
   * @param unexpected names in the state that the model does not have
   */
  public record LoadResult(Set<String> missing, Set<String> unexpected) {}

  private final Map<String, Tensor> parameters = new LinkedHashMap<>();
  private final Map<String, Tensor> buffers = new LinkedHashMap<>();
  private final Map<String, Module> children = new LinkedHashMap<>();
  private boolean training = true;

  /** Computes the module's output. */
  public abstract Tensor forward(Tensor input);

  // ---- Registration ----------------------------------------------------------------------------

  /** Registers a trained tensor under {@code name} and marks it as requiring a gradient. */
  protected final Tensor registerParameter(String name, Tensor value) {
    checkNewName(name);
    parameters.put(name, value.requiresGrad(true));
    return value;
  }

  /** Registers saved, untrained state under {@code name}. */
  protected final Tensor registerBuffer(String name, Tensor value) {
    checkNewName(name);
    buffers.put(name, value);
    return value;
  }

  /**
   * Registers a child module under {@code name}.
   *
   * @throws IllegalArgumentException if {@code module} is this module or contains it, which would
   *     make the tree a cycle
   */
  protected final <M extends Module> M registerModule(String name, M module) {
    Objects.requireNonNull(module, () -> "the module to register as '" + name + "' is null");
    checkNewName(name);
    if (((Module) module).contains(this)) {
      throw new IllegalArgumentException(
          "cannot register "
              + module.getClass().getSimpleName()
              + " as '"
              + name
              + "': it is this module or contains it, so the module tree would be a cycle");
    }
    children.put(name, module);
    return module;
  }

  /** Returns whether {@code module} is this module or one of its descendants. */
  private boolean contains(Module module) {
    if (this == module) {
      return true;
    }
    for (Module child : children.values()) {
      if (child.contains(module)) {
        return true;
      }
    }
    return false;
  }

  private void checkNewName(String name) {
    if (name.isEmpty() || name.contains(".")) {
      throw new IllegalArgumentException(
          "invalid name '" + name + "': names must be non-empty and contain no dot");
    }
    if (parameters.containsKey(name) || buffers.containsKey(name) || children.containsKey(name)) {
      throw new IllegalArgumentException("name '" + name + "' is already registered");
    }
  }

  // ---- Registration check ----------------------------------------------------------------------

  /**
   * Instance fields of each subclass, from the class itself up to but not including Module, that
   * the registration check reads. A field is read when it is neither static, synthetic nor
   * transient, when its declared type can hold a module, a tensor or a collection of modules, and
   * when reflection can open it.
   */
  private static final ClassValue<List<Field>> CHECKED_FIELDS =
      new ClassValue<>() {
        @Override
        protected List<Field> computeValue(Class<?> type) {
          List<Field> fields = new ArrayList<>();
          for (Class<?> c = type; c != Module.class && c != null; c = c.getSuperclass()) {
            for (Field field : c.getDeclaredFields()) {
              if (isChecked(field) && field.trySetAccessible()) {
                fields.add(field);
              }
            }
          }
          return List.copyOf(fields);
        }
      };

  private static boolean isChecked(Field field) {
    int modifiers = field.getModifiers();
    if (Modifier.isStatic(modifiers) || Modifier.isTransient(modifiers) || field.isSynthetic()) {
      return false;
    }
    Class<?> type = field.getType();
    return mayHold(type, Module.class)
        || mayHold(type, Tensor.class)
        || moduleElements(field) != Elements.NONE;
  }

  /** Returns whether a field declared as {@code type} may refer to an instance of {@code kind}. */
  private static boolean mayHold(Class<?> type, Class<?> kind) {
    return type.isAssignableFrom(kind) && type != Object.class || kind.isAssignableFrom(type);
  }

  /** The kind of container in which a field keeps modules as elements, if any. */
  private enum Elements {
    NONE,
    COLLECTION,
    MAP_VALUES,
    ARRAY
  }

  /**
   * Returns where {@code field} keeps modules as elements, judged by its declared type: a {@code
   * Collection<M>}, a {@code Map<K, M>} or an {@code M[]} whose element type M is a module class.
   * Collections of tensors or other values are not read, because caches and histories of tensors
   * are common and may be large or change under another thread.
   */
  private static Elements moduleElements(Field field) {
    Class<?> type = field.getType();
    if (type.isArray()) {
      return Module.class.isAssignableFrom(type.getComponentType())
          ? Elements.ARRAY
          : Elements.NONE;
    }
    int index;
    Elements where;
    if (Collection.class.isAssignableFrom(type)) {
      index = 0;
      where = Elements.COLLECTION;
    } else if (Map.class.isAssignableFrom(type)) {
      index = 1;
      where = Elements.MAP_VALUES;
    } else {
      return Elements.NONE;
    }
    if (field.getGenericType() instanceof ParameterizedType generic
        && generic.getActualTypeArguments().length > index
        && typeBound(generic.getActualTypeArguments()[index]) instanceof Class<?> element
        && Module.class.isAssignableFrom(element)) {
      return where;
    }
    return Elements.NONE;
  }

  /**
   * Returns the class that a type argument such as {@code Linear} or {@code ? extends Module}
   * names.
   */
  private static Type typeBound(Type argument) {
    if (argument instanceof WildcardType wildcard && wildcard.getUpperBounds().length == 1) {
      return wildcard.getUpperBounds()[0];
    }
    return argument;
  }

  /**
   * Throws if a field of any module in this tree refers to a module or a parameter-like tensor that
   * is not registered anywhere in the tree. See the class documentation. The cost is one pass over
   * the tree and its modules' fields.
   */
  private void requireRegisteredFields() {
    List<Module> modules = new ArrayList<>();
    Set<Object> registered = Collections.newSetFromMap(new IdentityHashMap<>());
    gatherTree(modules, registered);
    for (Module module : modules) {
      module.checkFields(registered, this);
    }
  }

  /** Adds this module and its descendants to {@code modules}, and everything they register. */
  private void gatherTree(List<Module> modules, Set<Object> registered) {
    if (!registered.add(this)) {
      return; // A module registered in two places is gathered once.
    }
    modules.add(this);
    registered.addAll(parameters.values());
    registered.addAll(buffers.values());
    for (Module child : children.values()) {
      child.gatherTree(modules, registered);
    }
  }

  /** Throws if a field of this module refers to a module or parameter missing from the tree. */
  private void checkFields(Set<Object> registered, Module root) {
    for (Field field : CHECKED_FIELDS.get(getClass())) {
      Object value;
      try {
        value = field.get(this);
      } catch (IllegalAccessException e) {
        throw new AssertionError("field " + field + " was made accessible but cannot be read", e);
      }
      requireRegistered(root, field, -1, value, registered);
      Collection<?> elements =
          switch (moduleElements(field)) {
            case COLLECTION -> value instanceof Collection<?> c ? c : null;
            case MAP_VALUES -> value instanceof Map<?, ?> m ? m.values() : null;
            case ARRAY -> value instanceof Object[] a ? Arrays.asList(a) : null;
            case NONE -> null;
          };
      if (elements != null) {
        requireRegisteredElements(root, field, elements, registered);
      }
    }
  }

  private static void requireRegisteredElements(
      Module root, Field field, Collection<?> elements, Set<Object> registered) {
    List<Object> snapshot;
    try {
      snapshot = new ArrayList<>(elements);
    } catch (RuntimeException e) {
      // A collection that another thread changes, or that cannot be iterated, is the user's
      // business: the check leaves it out rather than fail with an unrelated error.
      return;
    }
    for (int index = 0; index < snapshot.size(); index++) {
      requireRegistered(root, field, index, snapshot.get(index), registered);
    }
  }

  /**
   * Throws if {@code value}, read from {@code field} (or from its element {@code index}, or -1 for
   * the field itself), is a module or a parameter-like tensor missing from {@code registered}, the
   * tree below {@code root}, unless it is a module that contains {@code root}.
   */
  private static void requireRegistered(
      Module root, Field field, int index, Object value, Set<Object> registered) {
    if (value == null || registered.contains(value)) {
      return;
    }
    // A reference back to a module above the one the check started at, such as its parent, is part
    // of the whole tree, which the check does not see from below.
    if (value instanceof Module module && module.contains(root)) {
      return;
    }
    boolean isModule = value instanceof Module;
    boolean isParameter =
        value instanceof Tensor tensor && tensor.requiresGrad() && tensor.isLeaf();
    if (!isModule && !isParameter) {
      return;
    }

    Class<?> owner = field.getDeclaringClass();
    String name = field.getName();
    String location =
        (owner.getSimpleName().isEmpty() ? owner.getName() : owner.getSimpleName())
            + "."
            + name
            + (index < 0 ? "" : " (element " + index + ")");
    String description;
    String register;
    if (isModule) {
      description =
          "a " + value.getClass().getSimpleName() + " that is not a registered child module";
      register = "registerModule(\"" + name + "\", " + name + ")";
    } else {
      description =
          "a tensor of shape "
              + Shapes.format(((Tensor) value).shape())
              + " that requires a gradient but is not a registered parameter";
      register =
          "registerParameter(\""
              + name
              + "\", "
              + name
              + ") (or registerBuffer for state that is saved but not trained)";
    }
    if (index >= 0) {
      register = "one register call per element, each under a name of its own, as Sequential does";
    }
    throw new IllegalStateException(
        location
            + " refers to "
            + description
            + ", so parameters(), stateDict(), train(), eval() and to() do not reach it. Register"
            + " it in the constructor with "
            + register
            + ", or declare the field transient if another module owns it");
  }

  // ---- Tree access -----------------------------------------------------------------------------

  /** Direct children, by name, in registration order. */
  public Map<String, Module> namedChildren() {
    return Collections.unmodifiableMap(children);
  }

  /**
   * All parameters of this module and its descendants by full name, depth first. A parameter that
   * appears under several names (a layer used twice) is listed once, under its first name, as in
   * PyTorch, so that optimizers and parameter counts see it once.
   */
  public Map<String, Tensor> namedParameters() {
    requireRegisteredFields();
    return uniqueParameters();
  }

  private Map<String, Tensor> uniqueParameters() {
    Map<String, Tensor> all = new LinkedHashMap<>();
    collect("", all, true, false);
    Map<String, Tensor> result = new LinkedHashMap<>();
    Set<Tensor> seen = Collections.newSetFromMap(new IdentityHashMap<>());
    all.forEach(
        (name, value) -> {
          if (seen.add(value)) {
            result.put(name, value);
          }
        });
    return result;
  }

  /** All buffers of this module and its descendants by full name. */
  public Map<String, Tensor> namedBuffers() {
    requireRegisteredFields();
    Map<String, Tensor> result = new LinkedHashMap<>();
    collect("", result, false, true);
    return result;
  }

  /** All parameters, in the order that optimizers and checkpoints use. */
  public List<Tensor> parameters() {
    return new ArrayList<>(namedParameters().values());
  }

  /** Parameters and buffers by full name, as PyTorch's {@code state_dict()}. */
  public Map<String, Tensor> stateDict() {
    requireRegisteredFields();
    Map<String, Tensor> result = new LinkedHashMap<>();
    collect("", result, true, true);
    return result;
  }

  private void collect(
      String prefix, Map<String, Tensor> into, boolean withParameters, boolean withBuffers) {
    if (withParameters) {
      parameters.forEach((name, value) -> into.put(prefix + name, value));
    }
    if (withBuffers) {
      buffers.forEach((name, value) -> into.put(prefix + name, value));
    }
    children.forEach(
        (name, child) -> child.collect(prefix + name + ".", into, withParameters, withBuffers));
  }

  /** Number of trained values. */
  public long parameterCount() {
    long count = 0;
    for (Tensor p : parameters()) {
      count += p.numel();
    }
    return count;
  }

  /**
   * Copies values from {@code state} into this module's parameters and buffers in place, as
   * PyTorch's {@code load_state_dict}, converting each value to the dtype and device of the tensor
   * it loads into. So a state read from a file on the CPU loads straight into a model on a GPU, and
   * views of a parameter and an optimizer built over it see the loaded values. With {@code strict},
   * every name must match both ways. Gradients of the loaded tensors are dropped.
   *
   * @return the names that the model has but the state lacks, and the reverse; both are empty after
   *     a strict load
   * @throws IllegalArgumentException listing missing and unexpected names, or a shape mismatch;
   *     nothing is changed in that case
   */
  public LoadResult loadStateDict(Map<String, Tensor> state, boolean strict) {
    Map<String, Tensor> own = stateDict();
    Set<String> missing = new TreeSet<>(own.keySet());
    missing.removeAll(state.keySet());
    Set<String> unexpected = new TreeSet<>(state.keySet());
    unexpected.removeAll(own.keySet());
    if (strict && (!missing.isEmpty() || !unexpected.isEmpty())) {
      throw new IllegalArgumentException(
          "state does not match the model: missing "
              + missing
              + ", unexpected "
              + unexpected
              + ". Check that the weights were saved from the same architecture, or load with"
              + " strict=false");
    }
    for (Map.Entry<String, Tensor> entry : own.entrySet()) {
      Tensor source = state.get(entry.getKey());
      if (source != null && !Arrays.equals(source.shape(), entry.getValue().shape())) {
        throw new IllegalArgumentException(
            "shape mismatch for '"
                + entry.getKey()
                + "': the model has "
                + Shapes.format(entry.getValue().shape())
                + " but the state has "
                + Shapes.format(source.shape()));
      }
    }

    // Every conversion and upload is made before the first tensor changes, so a failed one leaves
    // the model as it was. What follows copies between tensors of the same dtype and device.
    Map<Tensor, Tensor> converted = new IdentityHashMap<>();
    for (Map.Entry<String, Tensor> entry : own.entrySet()) {
      Tensor source = state.get(entry.getKey());
      if (source != null) {
        Tensor target = entry.getValue();
        converted.put(target, source.copyAs(target.dtype(), target.device()));
      }
    }
    converted.forEach(
        (target, value) -> {
          target.copyFrom(value);
          target.zeroGrad();
        });
    return new LoadResult(missing, unexpected);
  }

  /**
   * Moves every parameter and buffer to {@code device} in place, as PyTorch's {@code
   * module.to(device)}, and returns this module. Layers keep their references to the tensors, whose
   * storage is replaced, and gradients are dropped. Build the optimizer after the move, as in
   * PyTorch. An optimizer built before it still works, because each step moves a parameter's state
   * to the parameter's device.
   *
   * @throws IllegalArgumentException if a float64 tensor should move to a device other than the
   *     CPU, because those devices store float32 only. Nothing is moved in that case.
   * @throws IllegalStateException if the device cannot be used, with the reason
   */
  public Module to(Device device) {
    Objects.requireNonNull(device, "device");
    // Every copy is made before the first tensor changes, so a float64 tensor (or a full device)
    // found half way leaves the whole module where it was.
    Map<Tensor, Storage> moved = new IdentityHashMap<>();
    for (Map.Entry<String, Tensor> entry : stateDict().entrySet()) {
      Tensor tensor = entry.getValue();
      if (tensor.device().equals(device) || moved.containsKey(tensor)) {
        continue;
      }
      try (var _ = GradMode.noGrad()) {
        moved.put(tensor, tensor.detach().to(device).storage());
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException(
            "cannot move '" + entry.getKey() + "' to " + device + ": " + e.getMessage(), e);
      }
    }
    moved.forEach(Tensor::setStorage);
    return this;
  }

  /**
   * Returns the device of the first parameter, or of the first buffer when there is no parameter,
   * or the CPU for a module without either. After {@link #to(Device)} every tensor of the module is
   * on that device.
   */
  public Device device() {
    List<Tensor> own = parameters();
    if (own.isEmpty()) {
      own = new ArrayList<>(namedBuffers().values());
    }
    return own.isEmpty() ? Device.CPU : own.get(0).device();
  }

  /**
   * Converts every parameter and buffer to {@code dtype} in place and returns this module. An
   * optimizer built before the conversion converts its state on its next step. Converting to
   * float32 works on any device. Devices other than the CPU store float32 only, so a module with
   * tensors there cannot become float64: move it with {@code to(Device.CPU)} first.
   *
   * @throws IllegalArgumentException if a tensor on a device other than the CPU should become
   *     float64; nothing is converted in that case
   */
  public Module to(DType dtype) {
    Map<String, Tensor> state = stateDict();
    for (Map.Entry<String, Tensor> entry : state.entrySet()) {
      Tensor tensor = entry.getValue();
      if (tensor.dtype() != dtype && !tensor.device().isCpu()) {
        throw new IllegalArgumentException(
            "cannot convert '"
                + entry.getKey()
                + "' on "
                + tensor.device()
                + " to "
                + dtype
                + ": that device stores float32 only; call to(Device.CPU) before to(DType."
                + dtype.name()
                + ")");
      }
    }
    for (Tensor t : state.values()) {
      if (t.dtype() != dtype) {
        t.setStorage(t.copyAs(dtype, Device.CPU).storage());
      }
    }
    return this;
  }

  // ---- Modes and gradients ---------------------------------------------------------------------

  /** Switches this module and its descendants to training mode. */
  public Module train() {
    return train(true);
  }

  /** Switches this module and its descendants to evaluation mode (dropout off, running stats). */
  public Module eval() {
    return train(false);
  }

  /** Sets training mode on this module and its descendants. */
  public Module train(boolean mode) {
    requireRegisteredFields();
    setTraining(mode);
    return this;
  }

  /** Sets the mode of this module and its descendants, after the check of {@link #train}. */
  private void setTraining(boolean mode) {
    training = mode;
    for (Module child : children.values()) {
      child.setTraining(mode);
    }
  }

  public boolean isTraining() {
    return training;
  }

  /** Drops the gradients of all parameters. */
  public void zeroGrad() {
    for (Tensor p : parameters()) {
      p.zeroGrad();
    }
  }

  // ---- Printing --------------------------------------------------------------------------------

  /**
   * One-line description of this module's own settings, as PyTorch's {@code extra_repr}, e.g.
   * {@code 1, 32, kernel_size=(5, 5)}.
   */
  protected String extraRepr() {
    return "";
  }

  /**
   * Prints the tree with each layer's settings, parameter shapes and parameter count, and the total
   * at the end.
   */
  @Override
  public String toString() {
    StringBuilder text = new StringBuilder();
    describe(text, "");
    // Printing skips the registration check, so that a debugger can show a module that fails it.
    long total = 0;
    for (Tensor p : uniqueParameters().values()) {
      total += p.numel();
    }
    text.append("\nTotal parameters: ").append(String.format("%,d", total));
    return text.toString();
  }

  private void describe(StringBuilder text, String indent) {
    text.append(getClass().getSimpleName()).append('(').append(extraRepr());
    if (children.isEmpty()) {
      text.append(')');
      appendParameters(text);
      return;
    }
    text.append('\n');
    for (Map.Entry<String, Module> child : children.entrySet()) {
      text.append(indent).append("  (").append(child.getKey()).append("): ");
      child.getValue().describe(text, indent + "  ");
      text.append('\n');
    }
    text.append(indent).append(')');
    appendParameters(text);
  }

  private void appendParameters(StringBuilder text) {
    if (parameters.isEmpty()) {
      return;
    }
    long count = 0;
    List<String> shapes = new ArrayList<>();
    for (Map.Entry<String, Tensor> p : parameters.entrySet()) {
      shapes.add(p.getKey() + " " + Shapes.format(p.getValue().shape()));
      count += p.getValue().numel();
    }
    text.append("  ").append(String.join(", ", shapes));
    text.append("  ").append(String.format("%,d", count)).append(" params");
  }
}
