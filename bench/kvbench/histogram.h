// A log-linear latency histogram: exact below 64 ns, then 64 linear sub-buckets per power
// of two (relative error under 1.6%), up to 2^40 ns (about 18 minutes; larger values land
// in the last bucket). Fixed size (2,304 counters, 18 KiB), no allocation when recording,
// one per operation type per polling thread, merged at the end.
#ifndef KVD_BENCH_KVBENCH_HISTOGRAM_H_
#define KVD_BENCH_KVBENCH_HISTOGRAM_H_

#include <array>
#include <cstdint>

namespace kvbench {

class Histogram {
 public:
  static constexpr int kSubBits = 6;
  static constexpr int kMaxBits = 40;
  static constexpr int kBuckets = (kMaxBits - kSubBits + 1) << kSubBits;

  void Record(int64_t value_ns);
  void Merge(const Histogram& other);

  uint64_t count() const { return count_; }
  int64_t max_ns() const { return max_ns_; }
  double mean_ns() const { return count_ == 0 ? 0 : static_cast<double>(sum_ns_) / count_; }
  // The value at quantile q in [0, 1] (midpoint of its bucket, capped at the maximum);
  // 0 when empty.
  int64_t Quantile(double q) const;

 private:
  static int BucketOf(int64_t value_ns);
  static int64_t BucketLow(int bucket);
  static int64_t BucketWidth(int bucket);

  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  int64_t sum_ns_ = 0;
  int64_t max_ns_ = 0;
};

}  // namespace kvbench

#endif  // KVD_BENCH_KVBENCH_HISTOGRAM_H_
