// The workloads kvbench runs (one per subcommand) and what they share: the key space.
#ifndef KVD_BENCH_KVBENCH_WORKLOAD_H_
#define KVD_BENCH_KVBENCH_WORKLOAD_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "api/key_range.h"
#include "bench/kvbench/engine.h"
#include "bench/kvbench/report.h"

namespace kvbench {

// One subcommand. The driver calls, in order: Rows (the table rows, headline first), Setup
// (synchronous preparation, not measured), Start (issue the first requests; the polling
// threads run), Cancel (once, at the stop: end the streams), Finish (after the drain:
// synchronous checks and the workload's own report fields).
class Workload {
 public:
  virtual ~Workload() = default;
  virtual std::vector<std::string> Rows() const = 0;
  virtual absl::Status Setup() { return absl::OkStatus(); }
  virtual void Start() = 0;
  virtual void Cancel() {}
  virtual absl::Status Finish(Extras* extras) { return absl::OkStatus(); }
};

// Names the subcommands know.
const std::vector<std::string>& WorkloadNames();
// The workload `name`, reading its flags; InvalidArgument for an unknown name or bad flags.
absl::StatusOr<std::unique_ptr<Workload>> MakeWorkload(const std::string& name, Engine* engine);

// Keys `prefix` + a zero-padded decimal index, `size` bytes in all (longer when the prefix
// and the digits need more). Written in place: no allocation once the string has its size.
class KeySpace {
 public:
  KeySpace(std::string prefix, int size, int64_t count);
  void Format(int64_t index, std::string* key) const;
  std::string Key(int64_t index) const;
  int64_t count() const { return count_; }
  const std::string& prefix() const { return prefix_; }
  // The end of the prefix range (etcd's "prefix + 1").
  std::string PrefixEnd() const;

 private:
  std::string prefix_;
  int digits_;
  int64_t count_;
};

// etcd's range end for every key starting with `prefix`.
using ::kvd::api::PrefixEnd;

// Synchronous helpers for setup and checks (deadline: the engine's --timeout).
absl::Status SyncPutMany(Engine* engine, const std::vector<std::string>& keys,
                         const std::string& value, int64_t lease = 0);
absl::StatusOr<int64_t> SyncCount(Engine* engine, const std::string& key,
                                  const std::string& range_end);
absl::Status FromGrpc(const grpc::Status& s, const std::string& what);

// Workload factories (one file each).
std::unique_ptr<Workload> MakePutWorkload(Engine* engine);
std::unique_ptr<Workload> MakeRangeWorkload(Engine* engine);
std::unique_ptr<Workload> MakeTxnWorkload(Engine* engine);
std::unique_ptr<Workload> MakeWatchWorkload(Engine* engine);
std::unique_ptr<Workload> MakeLeaseWorkload(Engine* engine);
std::unique_ptr<Workload> MakeKubernetesWorkload(Engine* engine);

}  // namespace kvbench

#endif  // KVD_BENCH_KVBENCH_WORKLOAD_H_
