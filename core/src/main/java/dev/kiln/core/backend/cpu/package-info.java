/**
 * The CPU backend: kernels on the arrays of float32 and float64 storage, which are the reference
 * that every other backend is tested against. Several ops have a plain loop and faster versions
 * beside it (the Vector API, EJML, threads), and each family's class chooses among them. Read the
 * plain version first, such as {@link dev.kiln.core.backend.cpu.Conv2dIm2col} for convolution.
 */
package dev.kiln.core.backend.cpu;
