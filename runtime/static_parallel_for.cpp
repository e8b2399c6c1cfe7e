// The pool behind static_parallel_for: persistent workers, one slot each through which
// the caller hands them a loop, and per-thread shares claimed with compare-and-swap.
#include "static_parallel_for.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace convjit {
namespace {

using Clock = std::chrono::steady_clock;

// A spin-wait hint: lets the core's other hardware thread run, and saves power.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// How long an idle worker (or a caller waiting for its workers) spins before it
// sleeps: long enough to span the gap between two kernel calls in a loop, short
// enough to leave the core to others (OpenMP's workers, other processes) soon after.
constexpr std::chrono::microseconds kSpinTime{200};

// A spin-wait's allowance: spin for kSpinTime from construction (reading the clock every
// 64 rounds only), then the waiter backs off (sleeps or yields).
class SpinBudget {
 public:
  bool spinning(int round) const { return (round & 63) != 0 || Clock::now() < until_; }

 private:
  const Clock::time_point until_ = Clock::now() + kSpinTime;
};

// One thread's share of a loop: iterations [front, end), relative to the loop's min,
// packed in one word so that the owner (taking the front) and thieves (taking the
// back) claim with one compare-and-swap.
class Share {
 public:
  void set(uint32_t front, uint32_t end) { range_.store(pack(front, end), std::memory_order_relaxed); }
  bool take_front(uint32_t* index) {
    uint64_t r = range_.load(std::memory_order_relaxed);
    while (front(r) < end(r)) {
      if (range_.compare_exchange_weak(r, pack(front(r) + 1, end(r)), std::memory_order_acq_rel)) {
        *index = front(r);
        return true;
      }
    }
    return false;
  }
  bool take_back(uint32_t* index) {
    uint64_t r = range_.load(std::memory_order_relaxed);
    while (front(r) < end(r)) {
      if (range_.compare_exchange_weak(r, pack(front(r), end(r) - 1), std::memory_order_acq_rel)) {
        *index = end(r) - 1;
        return true;
      }
    }
    return false;
  }

 private:
  static uint64_t pack(uint32_t front, uint32_t end) { return uint64_t{front} | (uint64_t{end} << 32); }
  static uint32_t front(uint64_t r) { return static_cast<uint32_t>(r); }
  static uint32_t end(uint64_t r) { return static_cast<uint32_t>(r >> 32); }
  std::atomic<uint64_t> range_{0};
};

struct Loop {
  ParallelTask task;
  void* user_context;
  uint8_t* closure;
  int min;
  int shares;
  Share* share;  // `shares` of them, owned by the pool
  std::atomic<int> remaining;  // iterations not finished (run or skipped)
  std::atomic<int> error{0};
};

thread_local bool inside_a_task = false;

void run_one(Loop& loop, uint32_t index) {
  if (loop.error.load(std::memory_order_relaxed) == 0) {
    const int result = loop.task(loop.user_context, loop.min + static_cast<int>(index), loop.closure);
    int expected = 0;
    if (result != 0) loop.error.compare_exchange_strong(expected, result);
  }
  loop.remaining.fetch_sub(1, std::memory_order_acq_rel);
}

// The participant's own share first, then the other shares' last iterations.
void participate(Loop& loop, int me) {
  inside_a_task = true;
  uint32_t index;
  while (loop.share[me].take_front(&index)) run_one(loop, index);
  for (int k = 1; k < loop.shares; ++k) {
    Share& other = loop.share[(me + k) % loop.shares];
    while (other.take_back(&index)) run_one(loop, index);
  }
  inside_a_task = false;
}

int run_serially(void* user_context, ParallelTask task, int min, int size, uint8_t* closure) {
  for (int i = min; i < min + size; ++i) {
    if (int result = task(user_context, i, closure)) return result;
  }
  return 0;
}

// Marks a slot whose loop a worker has taken (it clears the slot when done).
Loop* const kTaken = reinterpret_cast<Loop*>(uintptr_t{1});

class Worker {
 public:
  explicit Worker(int index) : index_(index), thread_([this] { work(); }) {}
  ~Worker() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }

  void hand(Loop* loop) {
    slot_.store(loop, std::memory_order_release);
    { std::lock_guard<std::mutex> lock(mutex_); }  // a worker about to sleep sees the loop, or is woken
    wake_.notify_one();
  }

  // After the loop's iterations are all finished: takes the loop back if the worker
  // never took it, else waits until the worker has let go of it.
  void reclaim(Loop* loop) {
    Loop* expected = loop;
    if (slot_.compare_exchange_strong(expected, nullptr, std::memory_order_acq_rel)) return;
    while (slot_.load(std::memory_order_acquire) != nullptr) cpu_relax();
  }

 private:
  void work() {
    for (;;) {
      Loop* loop = wait_for_loop();
      if (!loop) return;
      participate(*loop, index_);
      slot_.store(nullptr, std::memory_order_release);
    }
  }

  // A loop handed to this worker (now marked taken), or nullptr when stopping.
  Loop* wait_for_loop() {
    auto try_take = [&]() -> Loop* {
      Loop* loop = slot_.load(std::memory_order_acquire);
      if (loop == nullptr || loop == kTaken) return nullptr;
      return slot_.compare_exchange_strong(loop, kTaken, std::memory_order_acq_rel) ? loop : nullptr;
    };
    const SpinBudget budget;
    for (int round = 0;; ++round) {
      if (Loop* loop = try_take()) return loop;
      if (budget.spinning(round)) {
        cpu_relax();
        continue;
      }
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] {
        Loop* loop = slot_.load(std::memory_order_acquire);
        return stop_ || (loop != nullptr && loop != kTaken);
      });
      if (stop_) return nullptr;
    }
  }

  const int index_;
  std::atomic<Loop*> slot_{nullptr};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;  // last: it starts running work() once the rest exists
};

int default_threads() {
  if (const char* env = std::getenv("HL_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

class Pool {
 public:
  int run(void* user_context, ParallelTask task, int min, int size, uint8_t* closure) {
    if (size <= 0) return 0;
    if (inside_a_task || size == 1) return run_serially(user_context, task, min, size, closure);
    std::unique_lock<std::mutex> lock(busy_, std::try_to_lock);
    if (!lock.owns_lock() || threads_ <= 1) return run_serially(user_context, task, min, size, closure);
    if (workers_.size() + 1 != static_cast<size_t>(threads_)) start_workers();

    Loop loop;
    loop.task = task;
    loop.user_context = user_context;
    loop.closure = closure;
    loop.min = min;
    loop.shares = std::min(threads_, size);
    loop.share = shares_.get();
    for (int k = 0; k < loop.shares; ++k) {
      loop.share[k].set(static_cast<uint32_t>(int64_t{size} * k / loop.shares),
                        static_cast<uint32_t>(int64_t{size} * (k + 1) / loop.shares));
    }
    loop.remaining.store(size, std::memory_order_relaxed);
    for (int k = 1; k < loop.shares; ++k) workers_[k - 1]->hand(&loop);
    participate(loop, 0);
    const SpinBudget budget;
    for (int round = 0; loop.remaining.load(std::memory_order_acquire) > 0; ++round) {
      if (budget.spinning(round)) {
        cpu_relax();
      } else {
        std::this_thread::yield();
      }
    }
    for (int k = 1; k < loop.shares; ++k) workers_[k - 1]->reclaim(&loop);
    return loop.error.load(std::memory_order_acquire);
  }

  void set_threads(int threads) {
    std::lock_guard<std::mutex> lock(busy_);
    threads_ = threads > 0 ? threads : default_threads();
  }
  int threads() {
    std::lock_guard<std::mutex> lock(busy_);
    return threads_;
  }

 private:
  // Under busy_: workers 1 .. threads_ - 1 (the caller is participant 0).
  void start_workers() {
    workers_.clear();
    for (int k = 1; k < threads_; ++k) workers_.push_back(std::make_unique<Worker>(k));
    shares_.reset(new Share[threads_]);
  }

  std::mutex busy_;  // held by the loop in progress; guards threads_, workers_ and shares_
  int threads_ = default_threads();
  std::vector<std::unique_ptr<Worker>> workers_;
  // One share per thread, reused by every loop (one loop at a time holds busy_), so
  // that a kernel call allocates nothing.
  std::unique_ptr<Share[]> shares_;
};

// Never destroyed: kernels may run from static destructors of other objects.
Pool& pool() {
  static Pool* instance = new Pool();
  return *instance;
}

}  // namespace

int static_parallel_for(void* user_context, ParallelTask task, int min, int size, uint8_t* closure) {
  return pool().run(user_context, task, min, size, closure);
}

void set_static_parallel_threads(int threads) { pool().set_threads(threads); }

int static_parallel_threads() { return pool().threads(); }

}  // namespace convjit
