/**
 * Launchers for kiln's CUDA kernels, one class per kernel family, such as {@link
 * dev.kiln.core.backend.device.DeviceConv}. A launcher checks sizes, chooses the grid and block,
 * and launches through a {@link dev.kiln.core.backend.device.DeviceRuntime}: {@link
 * dev.kiln.core.backend.device.CudaRuntime} on a GPU, or {@link
 * dev.kiln.core.backend.device.EmulatedRuntime}, which runs the same kernels compiled for the CPU.
 */
package dev.kiln.core.backend.device;
