#include "bench/kvbench/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace kvbench {

int Histogram::BucketOf(int64_t value_ns) {
  uint64_t v = value_ns < 0 ? 0 : static_cast<uint64_t>(value_ns);
  if (v < (uint64_t{1} << kSubBits)) return static_cast<int>(v);
  int top_bit = 63 - std::countl_zero(v);
  if (top_bit >= kMaxBits) return kBuckets - 1;
  int shift = top_bit - kSubBits;
  int sub = static_cast<int>((v >> shift) & ((1u << kSubBits) - 1));
  return ((shift + 1) << kSubBits) | sub;
}

int64_t Histogram::BucketLow(int bucket) {
  if (bucket < (1 << kSubBits)) return bucket;
  int shift = (bucket >> kSubBits) - 1;
  int sub = bucket & ((1 << kSubBits) - 1);
  return static_cast<int64_t>((1 << kSubBits) + sub) << shift;
}

int64_t Histogram::BucketWidth(int bucket) {
  if (bucket < (1 << kSubBits)) return 1;
  return int64_t{1} << ((bucket >> kSubBits) - 1);
}

void Histogram::Record(int64_t value_ns) {
  ++counts_[BucketOf(value_ns)];
  ++count_;
  sum_ns_ += value_ns;
  max_ns_ = std::max(max_ns_, value_ns);
}

void Histogram::Merge(const Histogram& other) {
  for (int i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ns_ += other.sum_ns_;
  max_ns_ = std::max(max_ns_, other.max_ns_);
}

int64_t Histogram::Quantile(double q) const {
  if (count_ == 0) return 0;
  // The rank (1-based) of the requested sample: the smallest r with r >= q * count.
  uint64_t rank = static_cast<uint64_t>(std::ceil(std::clamp(q, 0.0, 1.0) * count_));
  rank = std::max<uint64_t>(rank, 1);
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen < rank) continue;
    if (i == kBuckets - 1) return max_ns_;  // the overflow bucket has no upper bound
    return std::min(max_ns_, BucketLow(i) + BucketWidth(i) / 2);
  }
  return max_ns_;
}

}  // namespace kvbench
