/**
 * The CUDA driver layer, through JCuda: the device's primary context and stream ({@link
 * dev.kiln.core.backend.cuda.CudaContext}), kernel modules and launches ({@link
 * dev.kiln.core.backend.cuda.CudaModule}), copies, events and the caching allocator. The {@code
 * libraries} package binds cuBLAS and cuDNN.
 */
package dev.kiln.core.backend.cuda;
