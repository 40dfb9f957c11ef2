/**
 * The ops on tensors, one class per family. Each op checks its inputs, runs the CPU kernels of
 * {@code backend.cpu} or the device launchers of {@code backend.device}, and records its backward
 * function, which is written beside the forward pass. {@link dev.kiln.core.ops.Convolution} is a
 * good first example.
 */
package dev.kiln.core.ops;
