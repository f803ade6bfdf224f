#include "bench/kvbench/workload.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace kvbench {

const std::vector<std::string>& WorkloadNames() {
  static const auto* names =
      new std::vector<std::string>{"put", "range", "txn", "watch", "lease", "kubernetes"};
  return *names;
}

absl::StatusOr<std::unique_ptr<Workload>> MakeWorkload(const std::string& name, Engine* engine) {
  if (name == "put") return MakePutWorkload(engine);
  if (name == "range") return MakeRangeWorkload(engine);
  if (name == "txn") return MakeTxnWorkload(engine);
  if (name == "watch") return MakeWatchWorkload(engine);
  if (name == "lease") return MakeLeaseWorkload(engine);
  if (name == "kubernetes") return MakeKubernetesWorkload(engine);
  return absl::InvalidArgumentError(absl::StrCat("unknown workload '", name, "'"));
}

KeySpace::KeySpace(std::string prefix, int size, int64_t count)
    : prefix_(std::move(prefix)), count_(std::max<int64_t>(count, 1)) {
  int needed = static_cast<int>(absl::StrCat(count_ - 1).size());
  digits_ = std::max(needed, size - static_cast<int>(prefix_.size()));
}

void KeySpace::Format(int64_t index, std::string* key) const {
  key->resize(prefix_.size() + digits_);
  char* p = key->data();
  std::copy(prefix_.begin(), prefix_.end(), p);
  uint64_t v = static_cast<uint64_t>(index);
  for (int i = static_cast<int>(key->size()) - 1; i >= static_cast<int>(prefix_.size()); --i) {
    p[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
}

std::string KeySpace::Key(int64_t index) const {
  std::string k;
  Format(index, &k);
  return k;
}

std::string KeySpace::PrefixEnd() const { return kvbench::PrefixEnd(prefix_); }

absl::Status FromGrpc(const grpc::Status& s, const std::string& what) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(what, ": ", s.error_message()));
}

absl::Status SyncPutMany(Engine* engine, const std::vector<std::string>& keys,
                         const std::string& value, int64_t lease) {
  constexpr size_t kPerTxn = 100;  // under etcd's default --max-txn-ops (128)
  for (size_t i = 0; i < keys.size(); i += kPerTxn) {
    etcdserverpb::TxnRequest req;
    for (size_t j = i; j < std::min(keys.size(), i + kPerTxn); ++j) {
      auto* put = req.add_success()->mutable_request_put();
      put->set_key(keys[j]);
      put->set_value(value);
      put->set_lease(lease);
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + engine->timeout()));
    etcdserverpb::TxnResponse resp;
    absl::Status s = FromGrpc(engine->conn(0).kv->Txn(&ctx, req, &resp), "populate");
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> SyncCount(Engine* engine, const std::string& key,
                                  const std::string& range_end) {
  etcdserverpb::RangeRequest req;
  req.set_key(key);
  req.set_range_end(range_end);
  req.set_count_only(true);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + engine->timeout()));
  etcdserverpb::RangeResponse resp;
  absl::Status s = FromGrpc(engine->conn(0).kv->Range(&ctx, req, &resp), "count");
  if (!s.ok()) return s;
  return resp.count();
}

}  // namespace kvbench
