/**
 * The cuBLAS and cuDNN bindings: JCublas where its CUDA 12 library loads, else direct calls through
 * {@code java.lang.foreign} for cuBLAS 13 and 12, and direct calls for cuDNN 9 and 8. JCudnn 11.7
 * never loads next to the JCuda 12.6 jars that kiln uses (see {@link
 * dev.kiln.core.backend.cuda.libraries.JcudnnDnn}), so cuDNN 8 goes through the direct calls too.
 * {@link dev.kiln.core.backend.cuda.libraries.VendorSelection} chooses among them once per device
 * and logs why, and the device launchers use them through {@link
 * dev.kiln.core.backend.cuda.libraries.VendorBlas} and {@link
 * dev.kiln.core.backend.cuda.libraries.VendorDnn}.
 */
package dev.kiln.core.backend.cuda.libraries;
