// static_parallel_for (runtime/static_parallel_for.h): every iteration exactly once,
// errors returned, nested and concurrent loops complete, for several thread counts.
#include "static_parallel_for.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace convjit {
namespace {

struct Counts {
  int min = 0;
  std::vector<std::atomic<int>> hits;
  std::atomic<int> outside{0};
  Counts(int min_, int size) : min(min_), hits(static_cast<size_t>(size)) {}
};

int count_hit(void*, int index, uint8_t* closure) {
  auto* counts = reinterpret_cast<Counts*>(closure);
  const int i = index - counts->min;
  if (i < 0 || i >= static_cast<int>(counts->hits.size())) {
    counts->outside++;
  } else {
    counts->hits[i]++;
  }
  return 0;
}

// Restores the default thread count after each test.
class StaticParallelFor : public ::testing::Test {
 protected:
  void TearDown() override { set_static_parallel_threads(0); }
};

TEST_F(StaticParallelFor, EveryIterationRunsExactlyOnce) {
  for (int threads : {1, 2, 3, 4, 8}) {
    set_static_parallel_threads(threads);
    EXPECT_EQ(static_parallel_threads(), threads);
    for (int size : {0, 1, 2, 3, 7, 64, 1000}) {
      for (int min : {0, -5, 100}) {
        Counts counts(min, size);
        ASSERT_EQ(static_parallel_for(nullptr, count_hit, min, size, reinterpret_cast<uint8_t*>(&counts)), 0);
        EXPECT_EQ(counts.outside.load(), 0);
        for (int i = 0; i < size; ++i) {
          ASSERT_EQ(counts.hits[i].load(), 1) << "threads " << threads << " size " << size << " min " << min << " i " << i;
        }
      }
    }
  }
}

TEST_F(StaticParallelFor, ReturnsTheErrorOfAFailingIteration) {
  set_static_parallel_threads(4);
  auto fail_at_13 = [](void*, int index, uint8_t*) { return index == 13 ? -7 : 0; };
  EXPECT_EQ(static_parallel_for(nullptr, fail_at_13, 0, 50, nullptr), -7);
  // The pool serves the next loop normally.
  Counts counts(0, 50);
  EXPECT_EQ(static_parallel_for(nullptr, count_hit, 0, 50, reinterpret_cast<uint8_t*>(&counts)), 0);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(counts.hits[i].load(), 1);
}

TEST_F(StaticParallelFor, LoopsInsideTasksComplete) {
  set_static_parallel_threads(3);
  Counts counts(0, 8 * 16);
  auto outer = [](void*, int row, uint8_t* closure) {
    struct Row {
      Counts* counts;
      int row;
    } r{reinterpret_cast<Counts*>(closure), row};
    auto inner = [](void*, int column, uint8_t* c) {
      auto* rr = reinterpret_cast<Row*>(c);
      rr->counts->hits[rr->row * 16 + column]++;
      return 0;
    };
    return static_parallel_for(nullptr, inner, 0, 16, reinterpret_cast<uint8_t*>(&r));
  };
  ASSERT_EQ(static_parallel_for(nullptr, outer, 0, 8, reinterpret_cast<uint8_t*>(&counts)), 0);
  for (int i = 0; i < 8 * 16; ++i) EXPECT_EQ(counts.hits[i].load(), 1) << i;
}

TEST_F(StaticParallelFor, ConcurrentCallersEachCompleteTheirLoops) {
  set_static_parallel_threads(2);
  std::atomic<int> wrong{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 8; ++t) {
    callers.emplace_back([&wrong] {
      for (int k = 0; k < 200; ++k) {
        Counts counts(k, 37);
        if (static_parallel_for(nullptr, count_hit, k, 37, reinterpret_cast<uint8_t*>(&counts)) != 0) wrong++;
        for (int i = 0; i < 37; ++i) wrong += counts.hits[i].load() != 1;
        wrong += counts.outside.load();
      }
    });
  }
  for (std::thread& t : callers) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace convjit
