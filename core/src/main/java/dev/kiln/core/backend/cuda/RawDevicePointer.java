package dev.kiln.core.backend.cuda;

import jcuda.driver.CUdeviceptr;

/**
 * A JCuda {@link CUdeviceptr} that converts to and from a raw 64-bit device address.
 *
 * <p>JCuda keeps a pointer's value in private fields that only its protected getters {@code
 * getNativePointer()} and {@code getByteOffset()} return, so only a subclass can read it. JCuda's
 * native code passes {@code nativePointer + byteOffset} to the driver, so a pointer with a null
 * base and the address as its byte offset points to that address.
 */
final class RawDevicePointer extends CUdeviceptr {

  private static final long serialVersionUID = 1L;

  /** Creates a null pointer for a driver call, such as {@code cuMemAlloc}, to fill in. */
  RawDevicePointer() {}

  /** Creates a pointer to {@code address}. */
  RawDevicePointer(long address) {
    super(new CUdeviceptr(), address);
  }

  /** Returns the raw device address of this pointer. */
  long address() {
    return getNativePointer() + getByteOffset();
  }
}
