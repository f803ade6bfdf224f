// kvbench's log-linear histogram: exact small values, bounded relative error, quantile
// ranks, merging.
#include "bench/kvbench/histogram.h"

#include <cmath>
#include <cstdint>

#include "gtest/gtest.h"

namespace kvbench {
namespace {

TEST(HistogramTest, EmptyReportsZero) {
  Histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.Quantile(0.5), 0);
  EXPECT_EQ(h.max_ns(), 0);
  EXPECT_EQ(h.mean_ns(), 0);
}

TEST(HistogramTest, SmallValuesAreExact) {
  Histogram h;
  for (int v = 1; v <= 60; ++v) h.Record(v);
  EXPECT_EQ(h.Quantile(0.5), 30);
  EXPECT_EQ(h.Quantile(1.0), 60);
  EXPECT_EQ(h.Quantile(0.0), 1);
  EXPECT_DOUBLE_EQ(h.mean_ns(), 30.5);
}

TEST(HistogramTest, RelativeErrorIsBounded) {
  // One value at a time over many magnitudes: the reported value is within 1/64 of it.
  for (int64_t v = 100; v < (int64_t{1} << 39); v = v * 3 + 7) {
    Histogram h;
    h.Record(v);
    h.Record(v);  // max caps the answer; two equal values keep it honest
    const double got = static_cast<double>(h.Quantile(0.5));
    EXPECT_LE(std::abs(got - v) / v, 1.0 / 64) << v;
  }
}

TEST(HistogramTest, QuantilesFollowRanks) {
  Histogram h;
  for (int i = 1; i <= 1000; ++i) h.Record(int64_t{i} * 1000);  // 1 us .. 1 ms
  auto near = [](int64_t got, int64_t want) { return std::abs(got - want) <= want / 64; };
  EXPECT_TRUE(near(h.Quantile(0.5), 500'000)) << h.Quantile(0.5);
  EXPECT_TRUE(near(h.Quantile(0.9), 900'000)) << h.Quantile(0.9);
  EXPECT_TRUE(near(h.Quantile(0.99), 990'000)) << h.Quantile(0.99);
  EXPECT_EQ(h.Quantile(1.0), 1'000'000);
  EXPECT_EQ(h.max_ns(), 1'000'000);
  EXPECT_LE(h.Quantile(0.5), h.Quantile(0.9));
}

TEST(HistogramTest, HugeAndNegativeValuesStayInRange) {
  Histogram h;
  h.Record(-5);
  h.Record(int64_t{1} << 50);
  EXPECT_EQ(h.count(), 2u);
  EXPECT_EQ(h.Quantile(0.0), 0);
  EXPECT_EQ(h.Quantile(1.0), int64_t{1} << 50);  // the last bucket, capped at the max
}

TEST(HistogramTest, MergeAddsCountsAndKeepsMax) {
  Histogram a, b;
  for (int i = 0; i < 100; ++i) a.Record(1000);
  for (int i = 0; i < 300; ++i) b.Record(5000);
  b.Record(9000);
  a.Merge(b);
  EXPECT_EQ(a.count(), 401u);
  EXPECT_EQ(a.max_ns(), 9000);
  EXPECT_TRUE(std::abs(a.Quantile(0.2) - 1000) <= 1000 / 64);
  EXPECT_TRUE(std::abs(a.Quantile(0.5) - 5000) <= 5000 / 64);
}

}  // namespace
}  // namespace kvbench
