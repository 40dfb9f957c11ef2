/**
 * The cuBLAS and cuDNN bindings: JCublas and JCudnn where their CUDA 12 and cuDNN 8 libraries load,
 * else direct calls through {@code java.lang.foreign} for cuBLAS 13 and 12 and cuDNN 9 and 8.
 * {@link dev.kiln.core.backend.cuda.libraries.VendorSelection} chooses among them once per device
 * and logs why, and the device launchers use them through {@link
 * dev.kiln.core.backend.cuda.libraries.VendorBlas} and {@link
 * dev.kiln.core.backend.cuda.libraries.VendorDnn}.
 */
package dev.kiln.core.backend.cuda.libraries;
