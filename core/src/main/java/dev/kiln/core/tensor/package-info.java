/**
 * Tensors: {@link dev.kiln.core.tensor.Tensor}, its shape, dtype and device, and the storage behind
 * it. A tensor is contiguous and row-major, so a reshape keeps the storage, while permute,
 * transpose and slice copy. Start reading here.
 */
package dev.kiln.core.tensor;
