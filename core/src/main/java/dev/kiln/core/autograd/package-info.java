/**
 * Reverse-mode automatic differentiation. Each op records a {@link dev.kiln.core.autograd.Node}
 * with its backward function through {@link dev.kiln.core.autograd.Autograd#record}, and {@link
 * dev.kiln.core.autograd.Autograd#backward} walks the nodes from the output back to the inputs, the
 * reverse of the forward pass's topological order. {@link dev.kiln.core.autograd.GradCheck}
 * compares the backward functions with central differences.
 */
package dev.kiln.core.autograd;
