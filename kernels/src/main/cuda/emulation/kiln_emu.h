// CPU emulation of the CUDA subset that kiln's kernels use, for g++ 12 with -std=c++20.
//
// How CUDA's execution model maps onto the CPU:
//   - A launch runs the grid's blocks one after another, in blockIdx order with x fastest.
//   - A block runs as a team of real OS threads, one per CUDA thread, so a block of 256 threads
//     is 256 std::threads. The threads live in a pool and are reused across blocks and launches.
//     threadIdx, blockIdx, blockDim and gridDim are thread_local values set before each thread
//     enters the kernel.
//   - Threads 32k to 32k+31 of a block (in linear order x + y*X + z*X*Y, as on the GPU) form
//     warp k. Shuffles, votes and __syncwarp are rendezvous points: every lane named in the mask
//     writes its value, waits until all of them have, then reads. A block whose size is not a multiple of
//     32 has a partial last warp whose missing lanes are inactive.
//   - __syncthreads() is a barrier over the block's threads with a timeout. The default is 5 s,
//     and the environment variable KILN_EMU_BARRIER_TIMEOUT_MS or
//     kiln_emu_set_barrier_timeout_ms changes it.
//   - __shared__ variables become function-level statics in the linker section kiln_shared. That
//     is one copy per kernel, which is per block only because blocks run one at a time and
//     launches are serialized by a process-wide lock. Dynamic shared memory is one buffer per
//     launch. Before each block, the runtime fills both with 0xFF bytes (a float NaN, an int -1),
//     so a read before any write shows up in results instead of seeing zeros or the values of
//     the previous block.
//   - Atomics use std::atomic_ref with relaxed ordering, as CUDA's atomics are relaxed.
//
// Schedules. The environment variable KILN_EMU_SCHEDULE, or kiln_emu_set_schedule (which
// overrides it), chooses how the threads of a block take turns:
//   - parallel (the default): all threads of the block run at once, and the OS interleaves them.
//   - serial-forward, serial-reverse and serial-shuffle:SEED: one thread runs at a time. It runs
//     until it reaches a __syncthreads, a warp shuffle, vote or __syncwarp, or the end of the
//     kernel. Then the turn passes to the first thread in the schedule's order that can run. The
//     orders are the lowest linear thread index first, the highest first, or an order shuffled
//     per block from the decimal 64-bit SEED. A thread waiting at an incomplete barrier or warp
//     collective cannot run.
// The serial schedules make races inside a block deterministic. Under serial-reverse, for
// instance, the block's last warp runs through a barrier-free stretch of code before warp 0
// starts it. A missing barrier between a read of shared memory and the next write to it then
// gives a wrong result on every run, where the parallel schedule gives a right one on most runs. When
// no thread can run while some have not returned, the launch fails at once with what each one
// waits for, where the parallel schedule waits for the barrier timeout. The timeout still fails
// a serial launch whose running thread goes that long without reaching a synchronization point.
// A value of KILN_EMU_SCHEDULE other than these makes every launch fail with a message that
// names it.
//
// Misuse fails the launch with a message naming the kernel, block and thread, instead of hanging:
//   - a __syncthreads that only some threads reach (the others returned from the kernel), or
//     that threads reach at different source lines;
//   - a shuffle or vote whose mask leaves out an active lane of the warp, or names a lane that
//     has returned, or whose lanes disagree on the mask or the intrinsic. The first two are
//     stricter than CUDA. CUDA requires only that every calling lane is in the mask and that
//     every lane in the mask that has not returned makes the call. kiln's kernels always pass
//     every lane;
//   - a shuffle that reads from an inactive lane of a partial warp;
//   - a barrier or warp rendezvous that waits longer than the timeout;
//   - a block of more than 1024 threads, or more dynamic shared memory than the 48 KiB a GPU
//     grants without an opt-in attribute.
// The first failure aborts the launch: threads waiting in a barrier, a rendezvous or an atomic
// are released and unwind, and the launch returns the message.
//
// What is not faithful:
//   - Out-of-bounds memory accesses are not checked, so they read other memory or crash the process.
//   - Races between threads are not detected as such. The serial schedules turn many races
//     inside a block into wrong results, but only those that the chosen order triggers. Blocks
//     never run concurrently, so code that races between blocks on a GPU can give the right
//     result here.
//   - The serial schedules switch threads only at synchronization points. A thread that spins
//     until another thread of its block writes a value therefore never reads that value, and the
//     launch fails with the timeout.
//   - A thread in a loop that calls no emulated builtin cannot be interrupted, so a launch whose
//     thread spins on plain memory forever hangs.
//   - Float arithmetic is the host's. nvcc contracts a*b+c into an FMA by default. g++ with
//     build-native.sh's flags targets baseline x86-64, which has no FMA instruction, so it rounds
//     the product and the sum separately. expf, tanhf and the like follow glibc, not CUDA's ULP
//     bounds. Tests compare with tolerances for this reason.
//   - Warps do not run in lockstep, so code that relies on implicit warp-synchronous execution
//     (without __syncwarp or a *_sync intrinsic) is as wrong here as on Volta and later GPUs.
#pragma once

#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

// CUDA's vector of three unsigned values. Kernels only read it.
struct uint3 {
  unsigned x, y, z;
};
using dim3 = uint3;

namespace kiln_emu {

// Exception that a builtin throws when a kernel misuses it. The launch fails with its message.
class KernelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown in a thread to unwind it when another thread of the launch has already failed.
struct LaunchAborted {};

// The launch coordinates of one emulated CUDA thread.
struct ThreadContext {
  uint3 thread_idx;
  uint3 block_idx;
  uint3 block_dim;
  uint3 grid_dim;
  int lane;  // threadIdx's linear index modulo 32
  int warp;  // threadIdx's linear index divided by 32
};

extern thread_local ThreadContext this_thread;

// Throws LaunchAborted when the current launch has failed in another thread.
void check_abort();

// Waits until every thread of the block arrives at a barrier (see the header comment).
void syncthreads(const char* file, int line);

// Exchanges one 64-bit word per lane among the lanes in mask and returns all 32 words, indexed
// by lane. intrinsic names the CUDA function, for error messages.
const std::uint64_t* warp_exchange(unsigned mask, std::uint64_t word, const char* intrinsic);

// The lanes of the caller's warp that exist: all 32 except in a partial last warp.
unsigned existing_lanes();

// The block's dynamic shared memory, 16-byte aligned.
unsigned char* dynamic_shared();

[[noreturn]] void fail(const std::string& message);

// Moves a 32- or 64-bit value through a 64-bit word, as the warp exchange carries them.
template <typename T>
std::uint64_t to_word(T value) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "shuffles carry <= 8 bytes");
  std::uint64_t word = 0;
  std::memcpy(&word, &value, sizeof(T));
  return word;
}

template <typename T>
T from_word(std::uint64_t word) {
  T value;
  std::memcpy(&value, &word, sizeof(T));
  return value;
}

// Runs a shuffle in which each lane reads lane source (computed by the caller as CUDA defines it
// for the intrinsic). Reading from a lane that does not exist fails, as CUDA leaves it undefined.
template <typename T>
T shuffle(unsigned mask, T value, int source, int width, const char* intrinsic) {
  if (width <= 0 || width > 32 || (width & (width - 1)) != 0) {
    fail(std::string(intrinsic) + ": width " + std::to_string(width) +
         " is invalid; it must be a power of two from 1 to 32");
  }
  const std::uint64_t* words = warp_exchange(mask, to_word(value), intrinsic);
  if ((existing_lanes() >> source & 1u) == 0) {
    fail(std::string(intrinsic) + ": lane " + std::to_string(this_thread.lane) +
         " reads from lane " + std::to_string(source) +
         ", which is not active in this partial warp; guard the read or size the block as a "
         "multiple of 32");
  }
  return from_word<T>(words[source]);
}

// Collects predicate from every lane in mask and returns the bitmask of lanes where it was true.
inline unsigned ballot(unsigned mask, bool predicate, const char* intrinsic) {
  const std::uint64_t* words = warp_exchange(mask, predicate ? 1 : 0, intrinsic);
  unsigned bits = 0;
  for (int lane = 0; lane < 32; lane++) {
    if ((mask >> lane & 1u) != 0 && (existing_lanes() >> lane & 1u) != 0 && words[lane] != 0) {
      bits |= 1u << lane;
    }
  }
  return bits;
}

// A registered kernel: its entry point, a trampoline that calls it with unpacked arguments, and
// its parameter types, one letter each (p pointer, i int, u unsigned, f float, d double, l 64-bit
// integer).
using AnyFunction = void (*)();
using Trampoline = void (*)(AnyFunction kernel, void** args);

struct KernelEntry {
  AnyFunction function;
  Trampoline trampoline;
  std::string signature;
};

bool register_kernel(const char* name, KernelEntry entry);

// Returns the registered kernel and its stored name, or null for an unknown name.
const std::pair<const std::string, KernelEntry>* find_kernel(const char* name);

template <typename T>
constexpr char type_code() {
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_pointer_v<U>) {
    return 'p';
  } else if constexpr (std::is_same_v<U, int>) {
    return 'i';
  } else if constexpr (std::is_same_v<U, unsigned>) {
    return 'u';
  } else if constexpr (std::is_same_v<U, float>) {
    return 'f';
  } else if constexpr (std::is_same_v<U, double>) {
    return 'd';
  } else {
    static_assert(std::is_integral_v<U> && sizeof(U) == 8,
                  "kernel parameters are pointers, int, unsigned, float, double or 64-bit ints");
    return 'l';
  }
}

// Calls kernel with args[i] pointing at parameter i, as cuLaunchKernel's kernelParams do.
template <typename... Params, std::size_t... I>
void call_unpacked(void (*kernel)(Params...), void** args, std::index_sequence<I...>) {
  kernel(*static_cast<std::remove_cv_t<Params>*>(args[I])...);
}

template <typename... Params>
void trampoline(AnyFunction kernel, void** args) {
  call_unpacked(reinterpret_cast<void (*)(Params...)>(kernel), args,
                std::index_sequence_for<Params...>{});
}

template <typename... Params>
KernelEntry describe(void (*kernel)(Params...)) {
  return KernelEntry{reinterpret_cast<AnyFunction>(kernel), &trampoline<Params...>,
                     std::string{type_code<Params>()...}};
}

}  // namespace kiln_emu

// Qualifiers: the CPU build needs none of them.
#define __global__
#define __device__
#define __forceinline__ inline __attribute__((always_inline))
// __align__(n) aligns a variable to n bytes, as on the GPU. __launch_bounds__ gives nvcc the
// largest block a kernel takes, which bounds its registers per thread. The CPU has no such budget.
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)
// A __shared__ variable becomes a function-level static in the section kiln_shared, whose bytes
// the runtime fills with 0xFF before each block (see the header comment). Declare __shared__
// variables only in kernels and other non-inline, non-template functions: GCC may reject a
// static of an inline or template function in a named section, with a "section type conflict".
#define __shared__ static __attribute__((section("kiln_shared")))

// The launch coordinates, read-only in kernels as on the GPU.
#define threadIdx (static_cast<const uint3&>(::kiln_emu::this_thread.thread_idx))
#define blockIdx (static_cast<const uint3&>(::kiln_emu::this_thread.block_idx))
#define blockDim (static_cast<const uint3&>(::kiln_emu::this_thread.block_dim))
#define gridDim (static_cast<const uint3&>(::kiln_emu::this_thread.grid_dim))
constexpr int warpSize = 32;

#define KILN_DYNAMIC_SHARED(type, name) \
  type* name = reinterpret_cast<type*>(::kiln_emu::dynamic_shared())

#define KILN_REGISTER(kernel) \
  static const bool kiln_registered_##kernel = \
      ::kiln_emu::register_kernel(#kernel, ::kiln_emu::describe(kernel));

#define __syncthreads() ::kiln_emu::syncthreads(__FILE__, __LINE__)

#include "kiln_emu_builtins.h"
