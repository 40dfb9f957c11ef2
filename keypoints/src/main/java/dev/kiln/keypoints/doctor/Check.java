package dev.kiln.keypoints.doctor;

/** The doctor's checks, in the order that {@link Doctor#examine} runs them. */
public enum Check {
  /** Input range and spread, target statistics, the contact sheet and the left/right order. */
  DATA,
  /** Losses of the zero output and the mean and median training shapes, against the model's. */
  BASELINES,
  /** Parameters with and without gradients, unchanged parameters and update ratios. */
  WIRING,
  /** Dropout after the output layer, and hidden linear layers with very few outputs. */
  STRUCTURE,
  /** An activation after the last linear layer against the range of the targets. */
  OUTPUT_LAYER,
  /** Dead ReLUs, saturated Tanh and Sigmoid units and the activation spread per layer. */
  ACTIVATIONS,
  /** Dropout and batch norm modes, and randomness left on in evaluation mode. */
  MODES,
  /** Standard deviation of each layer's current weights against PyTorch's default and He's init. */
  INITIALIZATION,
  /** Training on one batch, and the spread of the predictions afterwards. */
  OVERFIT,
  /** A learning-rate range test against the configured rate. */
  LEARNING_RATE
}
