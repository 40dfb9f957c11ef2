// The emulation runtime: the thread pool, block barrier, warp rendezvous and the exported C launch
// function. kiln_emu_registry.cpp stores the kernel registry. kiln_emu.h explains the execution model that
// this file implements.
#include <chrono>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <semaphore>
#include <string>
#include <thread>
#include <vector>

#include "kiln_emu.h"

#define KILN_EXPORT extern "C" __attribute__((visibility("default")))

namespace kiln_emu {

thread_local ThreadContext this_thread;

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kMaxBlockThreads = 1024;
constexpr unsigned kMaxDynamicShared = 48 * 1024;

std::atomic<int> barrier_timeout_ms{-1};  // -1: read KILN_EMU_BARRIER_TIMEOUT_MS on first use

constexpr long kMaxTimeoutMs = 3600 * 1000;

// Returns the error for an invalid KILN_EMU_BARRIER_TIMEOUT_MS, or an empty string when it is
// unset or a whole number of milliseconds from 1 to one hour. Every launch fails with this error,
// so a typo is reported instead of silently falling back to the default.
std::string timeout_setting_error() {
  const char* text = std::getenv("KILN_EMU_BARRIER_TIMEOUT_MS");
  if (text == nullptr) {
    return "";
  }
  char* end = nullptr;
  errno = 0;
  long value = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || errno != 0 || value < 1 || value > kMaxTimeoutMs) {
    return "KILN_EMU_BARRIER_TIMEOUT_MS is '" + std::string(text) +
           "', but must be a whole number of milliseconds from 1 to 3600000; fix or unset it";
  }
  return "";
}

int timeout_ms() {
  int value = barrier_timeout_ms.load();
  if (value < 0) {
    const char* text = std::getenv("KILN_EMU_BARRIER_TIMEOUT_MS");
    value = text != nullptr && timeout_setting_error().empty()
                ? static_cast<int>(std::strtol(text, nullptr, 10))
                : 5000;
    barrier_timeout_ms.store(value);
  }
  return value;
}

// One warp's rendezvous state. A collective completes when every lane in its mask has written
// its word. The words are then copied into one of two snapshots, which lanes read after waking.
// Two snapshots suffice. The collective after next reuses this one's snapshot, but it completes
// only when every lane has arrived at it, and so has finished reading this one.
struct Warp {
  std::condition_variable changed;  // waited on by this warp's lanes only
  unsigned existing = 0;  // lanes that exist
  unsigned exited = 0;    // lanes that have returned from the kernel
  unsigned arrived = 0;   // lanes waiting in the current collective
  unsigned mask = 0;      // the current collective's mask, set by its first lane
  const char* intrinsic = nullptr;
  std::uint64_t generation = 0;
  std::uint64_t words[32] = {};
  std::uint64_t snapshots[2][32] = {};
};

// State of the block that is running, and of the launch it belongs to. One mutex guards it all:
// contention is low because the threads of a block mostly wait on each other anyway.
struct Block {
  std::mutex mutex;
  std::condition_variable changed;

  const char* kernel = "";
  Trampoline trampoline = nullptr;
  AnyFunction function = nullptr;
  void** args = nullptr;
  uint3 block_dim{}, grid_dim{}, block_idx{};
  int size = 0;

  std::atomic<bool> failed{false};
  std::string error;

  int arrived = 0;  // threads waiting at the barrier
  int exited = 0;   // threads that have returned from the kernel
  std::uint64_t barrier_generation = 0;
  const char* barrier_file = nullptr;
  int barrier_line = 0;

  Warp warps[kMaxBlockThreads / 32];
  std::vector<unsigned char> dynamic_shared;  // over-allocated by 15 bytes for alignment
};

// Allocated once and never freed, like the pool: parked worker threads outlive static
// destructors at process exit.
Block& block = *new Block;

std::string coordinates(const uint3& value) {
  return "(" + std::to_string(value.x) + ", " + std::to_string(value.y) + ", " +
         std::to_string(value.z) + ")";
}

// Records the first failure of the launch and wakes every waiting thread. Caller holds the lock.
void record_failure(const std::string& message) {
  if (!block.failed.load()) {
    block.error = "kernel " + std::string(block.kernel) + ", block " +
                  coordinates(this_thread.block_idx) + ", thread " +
                  coordinates(this_thread.thread_idx) + ": " + message;
    block.failed.store(true);
  }
  block.changed.notify_all();
  for (Warp& warp : block.warps) {
    warp.changed.notify_all();
  }
}

// Waits on changed until done() returns true. Throws when the launch fails or the wait passes the
// timeout.
template <typename Done>
void wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& changed, Done done,
                const std::string& waiting_for) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms());
  while (!done()) {
    if (block.failed.load()) {
      throw LaunchAborted{};
    }
    if (changed.wait_until(lock, deadline) == std::cv_status::timeout && !done()) {
      record_failure(waiting_for + " timed out after " + std::to_string(timeout_ms()) +
                     " ms; a thread may be stuck in a loop or waiting for a value that no "
                     "thread writes");
      throw LaunchAborted{};
    }
  }
}

std::string site(const char* file, int line) {
  std::string path(file);
  std::size_t slash = path.find_last_of('/');
  return (slash == std::string::npos ? path : path.substr(slash + 1)) + ":" +
         std::to_string(line);
}

// Fails the barrier when every thread has either arrived or returned, but some returned:
// those threads will never arrive. Caller holds the lock.
void check_barrier_reachable() {
  if (block.arrived > 0 && block.exited > 0 && block.arrived + block.exited == block.size) {
    record_failure("__syncthreads at " + site(block.barrier_file, block.barrier_line) +
                   " was reached by only " + std::to_string(block.arrived) + " of " +
                   std::to_string(block.size) + " threads; the other " +
                   std::to_string(block.exited) +
                   " returned from the kernel first. Every thread of a block must reach each "
                   "__syncthreads, so move early returns after the last barrier");
  }
}

std::string lane_list(unsigned lanes) {
  std::string text;
  for (int lane = 0; lane < 32; lane++) {
    if ((lanes >> lane & 1u) != 0) {
      text += (text.empty() ? "" : ", ") + std::to_string(lane);
    }
  }
  return text;
}

// Fails the warp's pending collective when a lane it waits for has returned. Caller holds the
// lock.
void check_warp_reachable(const Warp& warp) {
  unsigned missing = warp.mask & warp.existing & warp.exited;
  if (warp.arrived != 0 && missing != 0) {
    record_failure(std::string(warp.intrinsic) + " waits for lanes " + lane_list(missing) +
                   " of warp " + std::to_string(&warp - block.warps) +
                   ", which returned from the kernel; every lane in the mask must call it");
  }
}

// Runs one CUDA thread of the current block: linear is its index x + y*X + z*X*Y.
void run_thread(int linear) {
  const uint3& dim = block.block_dim;
  this_thread.thread_idx = {linear % dim.x, (linear / dim.x) % dim.y, linear / (dim.x * dim.y)};
  this_thread.block_idx = block.block_idx;
  this_thread.block_dim = block.block_dim;
  this_thread.grid_dim = block.grid_dim;
  this_thread.lane = linear % 32;
  this_thread.warp = linear / 32;

  try {
    block.trampoline(block.function, block.args);
  } catch (const LaunchAborted&) {
    // Another thread failed first and recorded the message.
  } catch (const std::exception& error) {
    std::lock_guard<std::mutex> lock(block.mutex);
    record_failure(error.what());
  }

  std::lock_guard<std::mutex> lock(block.mutex);
  block.exited++;
  Warp& warp = block.warps[this_thread.warp];
  warp.exited |= 1u << this_thread.lane;
  if (!block.failed.load()) {
    check_barrier_reachable();
    check_warp_reachable(warp);
  }
}

// A pool of threads, each parked on its own semaphore until a block needs it.
class Pool {
 public:
  // Runs one block on threads 0 to size - 1 and returns when all of them have finished.
  void run_block(int size) {
    while (static_cast<int>(workers_.size()) < size) {
      auto worker = std::make_unique<Worker>();
      int index = static_cast<int>(workers_.size());
      Worker* self = worker.get();
      worker->thread = std::thread([this, self, index] { loop(*self, index); });
      worker->thread.detach();  // the pool lives as long as the process
      workers_.push_back(std::move(worker));
    }
    remaining_.store(size);
    for (int i = 0; i < size; i++) {
      workers_[i]->start.release();
    }
    finished_.acquire();
  }

 private:
  struct Worker {
    std::binary_semaphore start{0};
    std::thread thread;
  };

  void loop(Worker& self, int index) {
    while (true) {
      self.start.acquire();
      run_thread(index);
      if (remaining_.fetch_sub(1) == 1) {
        finished_.release();
      }
    }
  }

  // Only the launching thread touches the vector, and each worker keeps a pointer to its own entry.
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<int> remaining_{0};
  std::binary_semaphore finished_{0};
};

std::mutex launch_mutex;  // serializes launches, which share `block` and the static __shared__

std::string check_launch_shape(const uint3& grid, const uint3& dim, unsigned shared_bytes) {
  unsigned long long threads = 1ull * dim.x * dim.y * dim.z;
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || threads == 0) {
    return "grid " + coordinates(grid) + " or block " + coordinates(dim) + " has a zero size";
  }
  if (threads > kMaxBlockThreads || dim.z > 64) {
    return "block " + coordinates(dim) + " has " + std::to_string(threads) +
           " threads; CUDA allows at most 1024 per block and 64 along z";
  }
  if (grid.y > 65535 || grid.z > 65535 || grid.x > 2147483647u) {
    return "grid " + coordinates(grid) + " is too large: CUDA allows 2^31 - 1 blocks along x "
           "and 65535 along y and z";
  }
  if (shared_bytes > kMaxDynamicShared) {
    return std::to_string(shared_bytes) + " bytes of dynamic shared memory exceed the 49152 "
           "that a GPU grants without cuFuncSetAttribute";
  }
  return "";
}

void reset_block(int size) {
  block.size = size;
  block.arrived = 0;
  block.exited = 0;
  for (int w = 0; w < (size + 31) / 32; w++) {
    Warp& warp = block.warps[w];
    int lanes = size - 32 * w < 32 ? size - 32 * w : 32;
    warp.exited = 0;
    warp.arrived = 0;
    warp.generation = 0;
    warp.existing = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
  }
}

}  // namespace

void check_abort() {
  if (block.failed.load(std::memory_order_relaxed)) {
    throw LaunchAborted{};
  }
}

void fail(const std::string& message) { throw KernelError(message); }

unsigned existing_lanes() { return block.warps[this_thread.warp].existing; }

unsigned char* dynamic_shared() {
  auto address = reinterpret_cast<std::uintptr_t>(block.dynamic_shared.data());
  return block.dynamic_shared.data() + ((16 - address % 16) % 16);
}

void syncthreads(const char* file, int line) {
  std::unique_lock<std::mutex> lock(block.mutex);
  check_abort();
  if (block.arrived == 0) {
    block.barrier_file = file;
    block.barrier_line = line;
  } else if (block.barrier_line != line || std::strcmp(block.barrier_file, file) != 0) {
    fail("__syncthreads at " + site(file, line) + " met threads waiting at " +
         site(block.barrier_file, block.barrier_line) +
         "; all threads of a block must wait at the same __syncthreads");
  }
  std::uint64_t generation = block.barrier_generation;
  block.arrived++;
  if (block.arrived == block.size) {
    block.arrived = 0;
    block.barrier_generation++;
    block.changed.notify_all();
    return;
  }
  check_barrier_reachable();
  wait_until(
      lock, block.changed, [&] { return block.barrier_generation != generation; },
      "__syncthreads at " + site(file, line));
}

const std::uint64_t* warp_exchange(unsigned mask, std::uint64_t word, const char* intrinsic) {
  std::unique_lock<std::mutex> lock(block.mutex);
  check_abort();

  // Check the call: the mask covers every active lane, and all lanes make the same call.
  Warp& warp = block.warps[this_thread.warp];
  unsigned self = 1u << this_thread.lane;
  if ((mask & warp.existing) != warp.existing || (mask & self) == 0) {
    fail(std::string(intrinsic) + " with mask 0x" + [&] {
      char text[16];
      std::snprintf(text, sizeof text, "%08x", mask);
      return std::string(text);
    }() + " leaves out active lanes " + lane_list(warp.existing & ~mask) +
         "; kiln's kernels call warp intrinsics with every active lane (0xffffffff)");
  }
  if (warp.arrived == 0) {
    warp.mask = mask;
    warp.intrinsic = intrinsic;
  } else if (warp.mask != mask || std::strcmp(warp.intrinsic, intrinsic) != 0) {
    fail(std::string(intrinsic) + " met lanes waiting in " + warp.intrinsic +
         " (or with another mask); every lane in the mask must make the same call");
  }

  // Publish this lane's word. The last lane to arrive completes the collective.
  warp.words[this_thread.lane] = word;
  warp.arrived |= self;
  std::uint64_t generation = warp.generation;
  unsigned expected = mask & warp.existing;
  if (warp.arrived == expected) {
    std::memcpy(warp.snapshots[generation % 2], warp.words, sizeof warp.words);
    warp.arrived = 0;
    warp.generation++;
    warp.changed.notify_all();
    return warp.snapshots[generation % 2];
  }
  check_warp_reachable(warp);
  wait_until(
      lock, warp.changed, [&] { return warp.generation != generation; }, std::string(intrinsic));
  return warp.snapshots[generation % 2];
}

}  // namespace kiln_emu

using namespace kiln_emu;

// Launches kernel over grid x block threads. Returns 0, or 1 with a message in error.
KILN_EXPORT int kiln_emu_launch(const char* kernel, unsigned gridX, unsigned gridY,
                                unsigned gridZ, unsigned blockX, unsigned blockY,
                                unsigned blockZ, unsigned dynamicSharedBytes, void** args,
                                char* error, unsigned long errorCapacity) {
  static Pool& pool = *new Pool;
  std::lock_guard<std::mutex> launch_lock(launch_mutex);
  std::string message;
  const std::pair<const std::string, KernelEntry>* found = find_kernel(kernel);
  uint3 grid{gridX, gridY, gridZ};
  uint3 dim{blockX, blockY, blockZ};
  if (found == nullptr) {
    message = "kernel " + std::string(kernel) + " is not in libkiln_emu.so; check the name "
              "against kiln_emu_kernel_name, or rebuild the kernels module";
  } else if (std::string setting = timeout_setting_error(); !setting.empty()) {
    message = "kernel " + std::string(kernel) + ": " + setting;
  } else {
    message = check_launch_shape(grid, dim, dynamicSharedBytes);
    if (!message.empty()) {
      message = "kernel " + std::string(kernel) + ": " + message;
    }
  }

  if (message.empty()) {
    block.kernel = found->first.c_str();
    block.trampoline = found->second.trampoline;
    block.function = found->second.function;
    block.args = args;
    block.block_dim = dim;
    block.grid_dim = grid;
    block.failed.store(false);
    block.error.clear();
    block.dynamic_shared.assign(dynamicSharedBytes + 15, 0xFF);
    int size = static_cast<int>(dim.x * dim.y * dim.z);
    try {
      for (unsigned z = 0; z < gridZ && !block.failed.load(); z++) {
        for (unsigned y = 0; y < gridY && !block.failed.load(); y++) {
          for (unsigned x = 0; x < gridX && !block.failed.load(); x++) {
            block.block_idx = {x, y, z};
            reset_block(size);
            pool.run_block(size);
          }
        }
      }
      message = block.error;
    } catch (const std::exception& error) {
      // Only creating a worker thread can throw here, and an exception must not cross into the JVM.
      message = "kernel " + std::string(kernel) + ": cannot start " + std::to_string(size) +
                " threads for a block (" + error.what() + "); raise the process's thread limit";
    }
  }

  if (message.empty()) {
    return 0;
  }
  if (error != nullptr && errorCapacity > 0) {
    std::snprintf(error, errorCapacity, "%s", message.c_str());
  }
  return 1;
}

// Sets how long a barrier or warp rendezvous waits before failing the launch, in milliseconds.
KILN_EXPORT void kiln_emu_set_barrier_timeout_ms(int milliseconds) {
  barrier_timeout_ms.store(milliseconds > 0 ? milliseconds : 5000);
}
