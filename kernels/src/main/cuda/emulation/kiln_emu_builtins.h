// The CUDA device functions that kiln's kernels may call, written for the CPU emulation.
// Included from kiln_emu.h, whose header comment lists what is and is not faithful.
//
// To add a builtin a kernel needs, append it to the matching section below and name it in the
// change's description. Keep CUDA's name, parameter order and result.
#pragma once

// ---- Warp shuffles ----
// Each lane's source lane is computed as CUDA defines it for the intrinsic, with the warp cut into
// segments of `width` lanes. __shfl_sync wraps the source into the caller's segment. The up and
// down shuffles, and an xor whose source lies in a later segment, return the caller's own value
// instead. An xor whose source lies in an earlier segment reads that lane.

template <typename T>
T __shfl_sync(unsigned mask, T var, int srcLane, int width = warpSize) {
  int lane = ::kiln_emu::this_thread.lane;
  int source = (lane & ~(width - 1)) + (srcLane & (width - 1));
  return ::kiln_emu::shuffle(mask, var, source, width, "__shfl_sync");
}

template <typename T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  int lane = ::kiln_emu::this_thread.lane;
  int inSegment = lane & (width - 1);
  int source = inSegment >= static_cast<int>(delta) ? lane - static_cast<int>(delta) : lane;
  return ::kiln_emu::shuffle(mask, var, source, width, "__shfl_up_sync");
}

template <typename T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  int lane = ::kiln_emu::this_thread.lane;
  int inSegment = lane & (width - 1);
  int source = inSegment + static_cast<int>(delta) < width ? lane + static_cast<int>(delta) : lane;
  return ::kiln_emu::shuffle(mask, var, source, width, "__shfl_down_sync");
}

template <typename T>
T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = warpSize) {
  int lane = ::kiln_emu::this_thread.lane;
  // PTX shfl.sync, which the intrinsic compiles to, uses only the low 5 bits of laneMask.
  int source = lane ^ (laneMask & 31);
  // CUDA lets a lane read from its own segment or an earlier one. A source past the end of the
  // caller's segment, lane | (width - 1), keeps the caller's value.
  if (source > (lane | (width - 1))) {
    source = lane;
  }
  return ::kiln_emu::shuffle(mask, var, source, width, "__shfl_xor_sync");
}

// ---- Warp votes ----

inline unsigned __ballot_sync(unsigned mask, int predicate) {
  return ::kiln_emu::ballot(mask, predicate != 0, "__ballot_sync");
}

inline int __any_sync(unsigned mask, int predicate) {
  return ::kiln_emu::ballot(mask, predicate != 0, "__any_sync") != 0;
}

inline int __all_sync(unsigned mask, int predicate) {
  unsigned voters = mask & ::kiln_emu::existing_lanes();
  return ::kiln_emu::ballot(mask, predicate != 0, "__all_sync") == voters;
}

// ---- Warp barrier ----
// The lanes in mask wait for each other, so that each one reads the shared-memory stores that the
// others made before the call. The emulator runs it as a vote whose result is dropped, because a
// vote already waits for every lane in the mask. As for the shuffles and votes, the emulator
// requires a mask that names every active lane of the warp.

inline void __syncwarp(unsigned mask = 0xffffffffu) {
  ::kiln_emu::ballot(mask, true, "__syncwarp");
}

// ---- Atomics: relaxed read-modify-writes that return the old value, as on the GPU ----
// Each one first checks whether the launch was aborted. So a thread that spins on an atomic,
// waiting for another thread, is released when the launch fails.

inline float atomicAdd(float* address, float value) {
  ::kiln_emu::check_abort();
  return std::atomic_ref<float>(*address).fetch_add(value, std::memory_order_relaxed);
}

inline int atomicAdd(int* address, int value) {
  ::kiln_emu::check_abort();
  return std::atomic_ref<int>(*address).fetch_add(value, std::memory_order_relaxed);
}

inline unsigned atomicAdd(unsigned* address, unsigned value) {
  ::kiln_emu::check_abort();
  return std::atomic_ref<unsigned>(*address).fetch_add(value, std::memory_order_relaxed);
}

inline int atomicMax(int* address, int value) {
  ::kiln_emu::check_abort();
  std::atomic_ref<int> target(*address);
  int old = target.load(std::memory_order_relaxed);
  while (old < value && !target.compare_exchange_weak(old, value, std::memory_order_relaxed)) {
  }
  return old;
}

inline int atomicCAS(int* address, int compare, int value) {
  ::kiln_emu::check_abort();
  std::atomic_ref<int>(*address).compare_exchange_strong(compare, value,
                                                         std::memory_order_relaxed);
  return compare;  // compare_exchange_strong leaves the old value here
}

inline unsigned long long atomicCAS(unsigned long long* address, unsigned long long compare,
                                    unsigned long long value) {
  ::kiln_emu::check_abort();
  std::atomic_ref<unsigned long long>(*address).compare_exchange_strong(
      compare, value, std::memory_order_relaxed);
  return compare;
}

// ---- Math and bit casts (expf, logf, sqrtf, fabsf, fmaxf, fminf, tanhf, powf, floorf, ceilf,
// copysignf and INFINITY come from <cmath>) ----

inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }

inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline float __int_as_float(int x) { return std::bit_cast<float>(x); }
inline unsigned __float_as_uint(float x) { return std::bit_cast<unsigned>(x); }
inline float __uint_as_float(unsigned x) { return std::bit_cast<float>(x); }

inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
