package dev.kiln.nn.optim;

import dev.kiln.core.tensor.Shapes;
import dev.kiln.core.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * The checks that {@link Optimizer#loadStateDict} makes on a state dict before it changes anything,
 * each failing with a message that names the entry and states what the map should contain.
 *
 * @param optimizer the optimizer's class name, for messages
 * @param stateNames the names of the optimizer's per-parameter state, such as {@code exp_avg}
 * @param parameterCount the number of parameters the optimizer updates
 */
record StateDictChecks(String optimizer, List<String> stateNames, int parameterCount) {

  /** Returns the entry {@code key} of {@code dict}, which must be there. */
  Tensor entry(Map<String, Tensor> dict, String key) {
    Tensor value = dict.get(key);
    if (value == null) {
      throw new IllegalArgumentException(
          optimizer
              + ": the state dict has no \""
              + key
              + "\" entry; load a map written by Optimizer.stateDict()");
    }
    return value;
  }

  /** Parses the parameter index of a key such as {@code "3.exp_avg"} and checks the state name. */
  int parameterIndex(String key) {
    int dot = key.indexOf('.');
    String stateName = dot < 0 ? "" : key.substring(dot + 1);
    if (dot <= 0 || !key.substring(0, dot).matches("[0-9]+") || !stateName.matches("[a-z_]+")) {
      throw new IllegalArgumentException(
          optimizer
              + ": state dict key \""
              + key
              + "\" is invalid; expected \"step\", \"lr\" or \"<parameter index>.<name>\" with a"
              + " name in "
              + stateNames);
    }

    int index = Integer.parseInt(key.substring(0, dot));
    if (index >= parameterCount) {
      throw new IllegalArgumentException(
          optimizer
              + ": state dict key \""
              + key
              + "\" names parameter "
              + index
              + ", but this optimizer has "
              + parameterCount
              + " parameters; the state dict was saved for a different model");
    }
    if (!stateNames.contains(stateName)) {
      throw new IllegalArgumentException(
          optimizer
              + ": state dict key \""
              + key
              + "\" is unknown; this optimizer's state names are "
              + stateNames
              + ", so the state dict was saved by a different kind of optimizer");
    }
    return index;
  }

  /** Checks that a state entry has its parameter's shape. */
  void requireShape(String key, Tensor value, int index, Tensor parameter) {
    if (!Arrays.equals(value.shape(), parameter.shape())) {
      throw new IllegalArgumentException(
          optimizer
              + ": state dict entry \""
              + key
              + "\" has shape "
              + Shapes.format(value.shape())
              + " but parameter "
              + index
              + " has shape "
              + Shapes.format(parameter.shape())
              + "; the state dict was saved for a different model");
    }
  }

  /** Returns the step count in a zero-dimensional entry, which must be a whole number >= 0. */
  long count(String key, Tensor value) {
    double count = value.numel() == 1 && value.dim() == 0 ? value.item() : Double.NaN;
    if (!(count >= 0) || count != Math.rint(count)) {
      throw new IllegalArgumentException(
          optimizer
              + ": state dict entry \""
              + key
              + "\" must be a zero-dimensional tensor holding a step count >= 0, got "
              + value);
    }
    return (long) count;
  }

  /** Checks that a parameter has all of its state entries, or none. */
  void requireComplete(int index, Map<String, Tensor> loaded) {
    if (loaded.isEmpty() || loaded.keySet().containsAll(stateNames)) {
      return;
    }
    List<String> missing = new ArrayList<>(stateNames);
    missing.removeAll(loaded.keySet());
    throw new IllegalArgumentException(
        optimizer
            + ": the state dict has entries "
            + loaded.keySet()
            + " for parameter "
            + index
            + " but lacks "
            + missing
            + "; a parameter's state must be saved whole");
  }
}
