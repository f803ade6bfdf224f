#include "bench/kvbench/flags.h"

#include "absl/flags/flag.h"

// Common.
ABSL_FLAG(std::string, endpoints, "127.0.0.1:2379",
          "comma-separated etcd endpoints host:port (http:// is accepted); connections are "
          "spread over them in order");
ABSL_FLAG(int, conns, 1, "gRPC connections (each its own TCP connection)");
ABSL_FLAG(int, clients, 1,
          "concurrent clients: requests kept outstanding (spread over connections)");
ABSL_FLAG(int, threads, 1, "polling threads (one completion queue each)");
ABSL_FLAG(int64_t, total, 0, "stop after this many headline operations (0: use --duration)");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "how long to run (when --total=0)");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(5), "deadline of every RPC");
ABSL_FLAG(absl::Duration, dial_timeout, absl::Seconds(5),
          "how long every endpoint has to answer Maintenance.Status before the run");
ABSL_FLAG(bool, direct, true,
          "kvbench opens each connection's TCP socket itself and runs gRPC directly on it "
          "(no resolver, load balancer or reconnection: a lost connection fails its calls "
          "for the rest of the run); false: gRPC's own channel, which reconnects");
ABSL_FLAG(bool, json, false, "print one JSON object instead of the table");
ABSL_FLAG(bool, progress, true, "progress bar on stderr (only when stderr is a terminal)");
ABSL_FLAG(uint64_t, seed, 1, "random seed (keys, operation mix)");
// Keys and values.
ABSL_FLAG(std::string, key_prefix, "/kvbench/", "prefix of every key the workloads write");
ABSL_FLAG(int, key_size, 32, "key size in bytes (prefix + zero-padded index)");
ABSL_FLAG(int, val_size, 256, "value size in bytes");
ABSL_FLAG(int64_t, key_space, 10000, "number of distinct keys (put, range)");
ABSL_FLAG(bool, sequential_keys, false, "put: keys in order (wrapping) instead of random");
ABSL_FLAG(int, puts_per_txn, 1,
          "put: each request is one Txn of this many puts (bulk loading; etcd allows 128)");
// range.
ABSL_FLAG(std::string, consistency, "l", "range: l (linearizable) or s (serializable)");
ABSL_FLAG(bool, prefix, false, "range: read the whole key prefix instead of one key");
ABSL_FLAG(int64_t, limit, 0, "range --prefix: at most this many keys per request (0: all)");
ABSL_FLAG(bool, populate, true,
          "range: write --key-space keys first unless they are already there");
// txn.
ABSL_FLAG(int, hot_keys, 8, "txn: number of counters incremented by compare-and-swap");
// watch.
ABSL_FLAG(int, watchers, 100, "watch: watchers on the written keys");
ABSL_FLAG(int, watch_streams, 10, "watch: Watch streams the watchers share");
ABSL_FLAG(int, watch_keys, 10, "watch: distinct keys written and watched");
ABSL_FLAG(double, rate, 100, "watch: puts per second (0: none)");
ABSL_FLAG(int, idle_watchers, 0,
          "watch: extra watchers on keys nobody writes, held open for the run");
ABSL_FLAG(std::string, ready_file, "",
          "watch: create this file once every watcher is created (for scripts)");
// lease.
ABSL_FLAG(int64_t, ttl, 30, "lease: TTL of granted leases in seconds");
ABSL_FLAG(int, keepalives_per_lease, 10, "lease: keep-alives sent for each granted lease");
ABSL_FLAG(int, lease_streams, 4, "lease: LeaseKeepAlive streams the clients share");
// kubernetes.
ABSL_FLAG(std::string, k8s_mix, "create=10,update=40,get=20,list=5,delete=5,event=20",
          "kubernetes: operation weights");
ABSL_FLAG(int, k8s_objects, 50, "kubernetes: objects each client keeps (created, updated)");
ABSL_FLAG(int64_t, k8s_page, 500, "kubernetes: list page size (limit + continuation)");
ABSL_FLAG(int, k8s_watchers, 10, "kubernetes: watchers on the object prefix");
ABSL_FLAG(absl::Duration, k8s_progress_interval, absl::Seconds(1),
          "kubernetes: how often to request watch progress (0: never)");
ABSL_FLAG(absl::Duration, compact_interval, absl::Seconds(5),
          "kubernetes: compaction period (compacts to the revision seen one period before)");
ABSL_FLAG(absl::Duration, k8s_lease_reuse, absl::Seconds(1),
          "kubernetes: events created within this period share one lease");
