package dev.kiln.nn;

import dev.kiln.core.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/** Modules applied one after another; children are named 0, 1, 2, ... as in PyTorch. */
public class Sequential extends Module {
  private final List<Module> layers = new ArrayList<>();

  public Sequential(Module... layers) {
    for (Module layer : layers) {
      add(layer);
    }
  }

  /** Appends a layer and returns this sequence. */
  public final Sequential add(Module layer) {
    registerModule(Integer.toString(layers.size()), layer);
    layers.add(layer);
    return this;
  }

  /** Returns the layer at {@code index}. */
  public Module get(int index) {
    return layers.get(index);
  }

  public int size() {
    return layers.size();
  }

  @Override
  public Tensor forward(Tensor input) {
    Tensor x = input;
    for (Module layer : layers) {
      x = layer.forward(x);
    }
    return x;
  }
}
