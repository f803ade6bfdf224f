#include "server/apply/kv_checks.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "api/errors.h"

namespace kvd::server {
namespace {

using etcdserverpb::RequestOp;
using Ops = google::protobuf::RepeatedPtrField<RequestOp>;

absl::Status CheckTxnOps(const etcdserverpb::TxnRequest& req, int max_txn_ops);

absl::Status CheckRequestOp(const RequestOp& op, int max_txn_ops) {
  switch (op.request_case()) {
    case RequestOp::kRequestRange:
      return CheckRangeRequest(op.request_range());
    case RequestOp::kRequestPut:
      return CheckPutRequest(op.request_put());
    case RequestOp::kRequestDeleteRange:
      return CheckDeleteRequest(op.request_delete_range());
    case RequestOp::kRequestTxn:
      return CheckTxnOps(op.request_txn(), max_txn_ops);
    default:
      return errors::KeyNotFound();  // an empty op, as etcd answers it
  }
}

absl::Status CheckTxnOps(const etcdserverpb::TxnRequest& req, int max_txn_ops) {
  int ops = std::max({req.compare_size(), req.success_size(), req.failure_size()});
  if (ops > max_txn_ops) return errors::TooManyOps();
  for (const etcdserverpb::Compare& c : req.compare()) {
    if (c.key().empty()) return errors::EmptyKey();
  }
  for (const Ops* branch : {&req.success(), &req.failure()}) {
    for (const RequestOp& op : *branch) {
      if (absl::Status s = CheckRequestOp(op, max_txn_ops - ops); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

// A deleted interval: [begin, end) by plain byte order, or the single key begin when end
// is empty. (As in etcd, a "from key" delete, end "\0", covers no key here.)
struct Interval {
  std::string begin;
  std::string end;
  bool Covers(const std::string& key) const {
    if (end.empty()) return key == begin;
    return begin <= key && key < end;
  }
};

struct Writes {
  absl::flat_hash_set<std::string> puts;
  std::vector<Interval> dels;
  bool Deletes(const std::string& key) const {
    for (const Interval& iv : dels) {
      if (iv.Covers(key)) return true;
    }
    return false;
  }
};

// Collects the writes of one branch (with nested txns), failing on a put that another put
// or a delete of the same path already touches.
absl::Status CheckIntervals(const Ops& ops, Writes* out) {
  Writes& w = *out;
  for (const RequestOp& op : ops) {
    if (!op.has_request_delete_range()) continue;
    const auto& del = op.request_delete_range();
    w.dels.push_back(Interval{del.key(), del.range_end()});
  }
  for (const RequestOp& op : ops) {
    if (!op.has_request_txn()) continue;
    Writes then_writes, else_writes;
    if (absl::Status s = CheckIntervals(op.request_txn().success(), &then_writes); !s.ok()) {
      return s;
    }
    if (absl::Status s = CheckIntervals(op.request_txn().failure(), &else_writes); !s.ok()) {
      return s;
    }
    for (const std::string& key : then_writes.puts) {
      if (w.puts.contains(key) || w.Deletes(key)) return errors::DuplicateKey();
    }
    for (const std::string& key : else_writes.puts) {
      // The same key on both sides of one nested txn is fine: only one side runs.
      if (w.puts.contains(key) && !then_writes.puts.contains(key)) {
        return errors::DuplicateKey();
      }
      if (w.Deletes(key)) return errors::DuplicateKey();
    }
    w.puts.insert(then_writes.puts.begin(), then_writes.puts.end());
    w.puts.insert(else_writes.puts.begin(), else_writes.puts.end());
    for (Interval& iv : then_writes.dels) w.dels.push_back(std::move(iv));
    for (Interval& iv : else_writes.dels) w.dels.push_back(std::move(iv));
  }
  for (const RequestOp& op : ops) {
    if (!op.has_request_put()) continue;
    const std::string& key = op.request_put().key();
    if (w.puts.contains(key) || w.Deletes(key)) return errors::DuplicateKey();
    w.puts.insert(key);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckRangeRequest(const etcdserverpb::RangeRequest& req) {
  if (req.key().empty()) return errors::EmptyKey();
  return absl::OkStatus();
}

absl::Status CheckPutRequest(const etcdserverpb::PutRequest& req) {
  if (req.key().empty()) return errors::EmptyKey();
  if (req.ignore_value() && !req.value().empty()) return errors::ValueProvided();
  if (req.ignore_lease() && req.lease() != 0) return errors::LeaseProvided();
  return absl::OkStatus();
}

absl::Status CheckDeleteRequest(const etcdserverpb::DeleteRangeRequest& req) {
  if (req.key().empty()) return errors::EmptyKey();
  return absl::OkStatus();
}

absl::Status CheckTxnRequest(const etcdserverpb::TxnRequest& req, int max_txn_ops) {
  if (absl::Status s = CheckTxnOps(req, max_txn_ops); !s.ok()) return s;
  // Overlaps are checked after the cheap checks, as etcd does, to bound the work.
  Writes success, failure;
  if (absl::Status s = CheckIntervals(req.success(), &success); !s.ok()) return s;
  return CheckIntervals(req.failure(), &failure);
}

}  // namespace kvd::server
