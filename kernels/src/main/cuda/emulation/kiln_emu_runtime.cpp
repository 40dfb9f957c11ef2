// The emulation runtime: the thread pool, block barrier, warp rendezvous, serial schedules, shared
// memory poisoning and the exported C launch function. kiln_emu_registry.cpp stores the kernel
// registry. kiln_emu.h explains the execution model that this file implements.
#include <algorithm>
#include <chrono>
#include <cctype>
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

// The order in which the threads of a block run (see the header comment of kiln_emu.h).
enum class Schedule { kParallel = 0, kSerialForward = 1, kSerialReverse = 2, kSerialShuffle = 3 };

struct ScheduleSetting {
  Schedule schedule = Schedule::kParallel;
  std::uint64_t seed = 0;
};

// Parses KILN_EMU_SCHEDULE into setting. Returns the error for an invalid value, or an empty
// string when it is unset or valid. Every launch fails with this error, as for the timeout.
std::string schedule_setting_error(ScheduleSetting& setting) {
  setting = ScheduleSetting{};
  const char* text = std::getenv("KILN_EMU_SCHEDULE");
  if (text == nullptr || std::strcmp(text, "parallel") == 0) {
    return "";
  }
  if (std::strcmp(text, "serial-forward") == 0) {
    setting.schedule = Schedule::kSerialForward;
    return "";
  }
  if (std::strcmp(text, "serial-reverse") == 0) {
    setting.schedule = Schedule::kSerialReverse;
    return "";
  }
  const char* prefix = "serial-shuffle:";
  std::size_t prefix_length = std::strlen(prefix);
  if (std::strncmp(text, prefix, prefix_length) == 0 && std::isdigit(text[prefix_length])) {
    char* end = nullptr;
    errno = 0;
    unsigned long long seed = std::strtoull(text + prefix_length, &end, 10);
    if (*end == '\0' && errno == 0) {
      setting.schedule = Schedule::kSerialShuffle;
      setting.seed = seed;
      return "";
    }
  }
  return "KILN_EMU_SCHEDULE is '" + std::string(text) +
         "', but must be parallel, serial-forward, serial-reverse or serial-shuffle:SEED with a "
         "decimal 64-bit SEED; fix or unset it";
}

// The schedule that kiln_emu_set_schedule chose, or a negative mode to use KILN_EMU_SCHEDULE.
// Guarded by launch_mutex, so it changes only between launches.
int schedule_override = -1;
std::uint64_t schedule_override_seed = 0;

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

  // The serial schedules: one thread runs at a time, and at each synchronization point the turn
  // passes to the ready thread that comes first in order. order[rank] is a thread's linear index
  // and rank_of its inverse. Bit r of ready is set while the thread of rank r may run but is not
  // running. handoffs counts turns, so a waiting thread can tell a slow block from a stuck one.
  bool serial = false;
  ScheduleSetting setting;
  int order[kMaxBlockThreads] = {};
  int rank_of[kMaxBlockThreads] = {};
  std::uint64_t ready[kMaxBlockThreads / 64] = {};
  int running = -1;  // linear index of the thread whose turn it is, or -1
  std::uint64_t handoffs = 0;
  std::condition_variable turn[kMaxBlockThreads];  // turn[i] is waited on by thread i only
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
  if (block.serial) {
    for (int i = 0; i < block.size; i++) {
      block.turn[i].notify_all();
    }
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

// ---- The serial schedules ----

uint3 thread_coordinates(int linear) {
  const uint3& dim = block.block_dim;
  return {linear % dim.x, (linear / dim.x) % dim.y, linear / (dim.x * dim.y)};
}

// Marks a thread that waits at a completed barrier or warp collective as ready to run.
void make_ready(int linear) {
  int rank = block.rank_of[linear];
  block.ready[rank / 64] |= 1ull << (rank % 64);
}

// Describes what the threads that have not returned wait for, when none of them can run.
std::string describe_deadlock() {
  std::string text = "no thread can continue, so the block would hang on a GPU:";
  if (block.arrived > 0) {
    text += " " + std::to_string(block.arrived) + " threads wait at __syncthreads at " +
            site(block.barrier_file, block.barrier_line) + ";";
  }
  for (int w = 0; w < (block.size + 31) / 32; w++) {
    const Warp& warp = block.warps[w];
    if (warp.arrived != 0) {
      text += " lanes " + lane_list(warp.arrived) + " of warp " + std::to_string(w) +
              " wait in " + warp.intrinsic + ";";
    }
  }
  text += " " + std::to_string(block.exited) + " threads returned";
  return text;
}

// Gives the turn to the first ready thread in the block's order and wakes it. When no thread is
// ready but some have not returned, they wait for each other forever, and the launch fails.
// Caller holds the lock and has the turn.
void pass_turn() {
  if (block.failed.load()) {
    return;
  }
  for (int word = 0; word < (block.size + 63) / 64; word++) {
    if (block.ready[word] != 0) {
      int rank = word * 64 + std::countr_zero(block.ready[word]);
      block.ready[word] &= block.ready[word] - 1;
      block.running = block.order[rank];
      block.handoffs++;
      block.turn[block.running].notify_one();
      return;
    }
  }
  block.running = -1;
  if (block.exited < block.size) {
    record_failure(describe_deadlock());
  }
}

// Waits until it is the calling thread's turn. The timeout counts from the last handoff, so a long
// wait behind many threads that each reach a synchronization point in time does not fail. Throws
// when the launch fails.
void await_turn(std::unique_lock<std::mutex>& lock) {
  int self = this_thread.warp * 32 + this_thread.lane;
  std::uint64_t seen = block.handoffs;
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms());
  while (block.running != self) {
    if (block.failed.load()) {
      throw LaunchAborted{};
    }
    if (block.turn[self].wait_until(lock, deadline) != std::cv_status::timeout ||
        block.running == self || block.failed.load()) {
      continue;
    }
    if (block.handoffs != seen) {
      seen = block.handoffs;
      deadline = Clock::now() + std::chrono::milliseconds(timeout_ms());
      continue;
    }
    record_failure("waiting for thread " + coordinates(thread_coordinates(block.running)) +
                   ", which runs alone under the serial schedule, timed out after " +
                   std::to_string(timeout_ms()) +
                   " ms: it has not reached a __syncthreads, a warp intrinsic or the end of the "
                   "kernel, so it may be stuck in a loop or waiting for a value that no running "
                   "thread writes");
    throw LaunchAborted{};
  }
}

// Returns the next value of the splitmix64 generator, which shuffles the serial-shuffle order.
std::uint64_t next_random(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Sets the order in which the block's threads take turns, marks all of them ready, and gives the
// first one the turn. block_number is the block's linear index in the grid, so each block of a
// shuffled launch gets its own order.
void start_serial_block(int size, std::uint64_t block_number) {
  bool reverse = block.setting.schedule == Schedule::kSerialReverse;
  for (int rank = 0; rank < size; rank++) {
    block.order[rank] = reverse ? size - 1 - rank : rank;
  }
  if (block.setting.schedule == Schedule::kSerialShuffle) {
    std::uint64_t state = block.setting.seed ^ (block_number * 0xd1342543de82ef95ull);
    for (int rank = size - 1; rank > 0; rank--) {
      int other = static_cast<int>(next_random(state) % static_cast<std::uint64_t>(rank + 1));
      std::swap(block.order[rank], block.order[other]);
    }
  }
  for (int rank = 0; rank < size; rank++) {
    block.rank_of[block.order[rank]] = rank;
  }
  for (int word = 0; word < kMaxBlockThreads / 64; word++) {
    int first = word * 64;
    int count = std::clamp(size - first, 0, 64);
    block.ready[word] = count == 64 ? ~0ull : (1ull << count) - 1;
  }
  block.running = -1;
  pass_turn();
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
    if (block.serial) {
      std::unique_lock<std::mutex> lock(block.mutex);
      await_turn(lock);
    }
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
  if (block.serial) {
    pass_turn();
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

// The static __shared__ variables of every kernel, which kiln_emu.h places in this section. The
// linker defines these two symbols at its bounds. They are weak so that a library without
// static shared memory still links.
extern "C" unsigned char __start_kiln_shared[] __attribute__((weak, visibility("hidden")));
extern "C" unsigned char __stop_kiln_shared[] __attribute__((weak, visibility("hidden")));

// Fills static and dynamic shared memory with 0xFF bytes (a float NaN, an int -1), so a value that
// a block reads before writing it comes neither from zeroed memory nor from an earlier block.
void poison_shared() {
  if (__start_kiln_shared != nullptr) {
    std::memset(__start_kiln_shared, 0xFF,
                static_cast<std::size_t>(__stop_kiln_shared - __start_kiln_shared));
  }
  std::fill(block.dynamic_shared.begin(), block.dynamic_shared.end(), 0xFF);
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
  poison_shared();
  if (block.serial) {
    const uint3& grid = block.grid_dim;
    const uint3& index = block.block_idx;
    start_serial_block(size, index.x + 1ull * grid.x * (index.y + 1ull * grid.y * index.z));
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
    if (!block.serial) {
      block.changed.notify_all();
      return;
    }
    for (int i = 0; i < block.size; i++) {
      make_ready(i);
    }
  } else {
    check_barrier_reachable();
  }
  if (block.serial) {
    pass_turn();
    await_turn(lock);
    return;
  }
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
    if (!block.serial) {
      warp.changed.notify_all();
      return warp.snapshots[generation % 2];
    }
    for (int lane = 0; lane < 32; lane++) {
      if ((expected >> lane & 1u) != 0) {
        make_ready(this_thread.warp * 32 + lane);
      }
    }
  } else {
    check_warp_reachable(warp);
  }
  if (block.serial) {
    pass_turn();
    await_turn(lock);
    return warp.snapshots[generation % 2];
  }
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
  } else if (std::string setting =
                 schedule_override >= 0 ? std::string() : schedule_setting_error(block.setting);
             !setting.empty()) {
    // A schedule set through kiln_emu_set_schedule replaces the environment's, so an invalid
    // KILN_EMU_SCHEDULE matters only without one.
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
    block.dynamic_shared.resize(dynamicSharedBytes + 15);
    if (schedule_override >= 0) {
      block.setting.schedule = static_cast<Schedule>(schedule_override);
      block.setting.seed = schedule_override_seed;
    }
    block.serial = block.setting.schedule != Schedule::kParallel;
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

// Sets how the threads of each block take turns, for every later launch in this process. Schedule
// 0 runs them in parallel. 1, 2 and 3 run them one at a time in forward, reverse or shuffled
// thread order, shuffled by seed. Any other value returns to KILN_EMU_SCHEDULE.
KILN_EXPORT void kiln_emu_set_schedule(int schedule, unsigned long long seed) {
  std::lock_guard<std::mutex> launch_lock(launch_mutex);
  schedule_override = schedule >= 0 && schedule <= 3 ? schedule : -1;
  schedule_override_seed = seed;
}
