// kvbench's command-line flags (defined in flags.cc), shared by the driver and workloads.
#ifndef KVD_BENCH_KVBENCH_FLAGS_H_
#define KVD_BENCH_KVBENCH_FLAGS_H_

#include <cstdint>
#include <string>

#include "absl/flags/declare.h"
#include "absl/time/time.h"

// Common.
ABSL_DECLARE_FLAG(std::string, endpoints);
ABSL_DECLARE_FLAG(int, conns);
ABSL_DECLARE_FLAG(int, clients);
ABSL_DECLARE_FLAG(int, threads);
ABSL_DECLARE_FLAG(int64_t, total);
ABSL_DECLARE_FLAG(absl::Duration, duration);
ABSL_DECLARE_FLAG(absl::Duration, timeout);
ABSL_DECLARE_FLAG(absl::Duration, dial_timeout);
ABSL_DECLARE_FLAG(bool, direct);
ABSL_DECLARE_FLAG(bool, json);
ABSL_DECLARE_FLAG(bool, progress);
ABSL_DECLARE_FLAG(uint64_t, seed);
// Keys and values.
ABSL_DECLARE_FLAG(std::string, key_prefix);
ABSL_DECLARE_FLAG(int, key_size);
ABSL_DECLARE_FLAG(int, val_size);
ABSL_DECLARE_FLAG(int64_t, key_space);
ABSL_DECLARE_FLAG(bool, sequential_keys);
ABSL_DECLARE_FLAG(int, puts_per_txn);
// range.
ABSL_DECLARE_FLAG(std::string, consistency);
ABSL_DECLARE_FLAG(bool, prefix);
ABSL_DECLARE_FLAG(int64_t, limit);
ABSL_DECLARE_FLAG(bool, populate);
// txn.
ABSL_DECLARE_FLAG(int, hot_keys);
// watch.
ABSL_DECLARE_FLAG(int, watchers);
ABSL_DECLARE_FLAG(int, watch_streams);
ABSL_DECLARE_FLAG(int, watch_keys);
ABSL_DECLARE_FLAG(double, rate);
ABSL_DECLARE_FLAG(int, idle_watchers);
ABSL_DECLARE_FLAG(std::string, ready_file);
// lease.
ABSL_DECLARE_FLAG(int64_t, ttl);
ABSL_DECLARE_FLAG(int, keepalives_per_lease);
ABSL_DECLARE_FLAG(int, lease_streams);
// kubernetes.
ABSL_DECLARE_FLAG(std::string, k8s_mix);
ABSL_DECLARE_FLAG(int, k8s_objects);
ABSL_DECLARE_FLAG(int64_t, k8s_page);
ABSL_DECLARE_FLAG(int, k8s_watchers);
ABSL_DECLARE_FLAG(absl::Duration, k8s_progress_interval);
ABSL_DECLARE_FLAG(absl::Duration, compact_interval);
ABSL_DECLARE_FLAG(absl::Duration, k8s_lease_reuse);

#endif  // KVD_BENCH_KVBENCH_FLAGS_H_
