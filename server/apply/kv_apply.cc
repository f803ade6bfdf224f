#include "server/apply/kv_apply.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "api/errors.h"
#include "storage/check.h"

namespace kvd::server {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::RangeRequest;
using etcdserverpb::RequestOp;
using etcdserverpb::ResponseOp;
using etcdserverpb::TxnRequest;
using etcdserverpb::TxnResponse;
using storage::mvcc::ApplyBatch;
using storage::mvcc::KeyRange;
using storage::mvcc::KvView;
using storage::mvcc::RangeOptions;
using storage::mvcc::RangeResult;

template <typename T>
int Compare3(const T& a, const T& b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

// Orders kvs as etcd does: stable on ties, so equal elements keep key order.
void SortKvs(std::vector<mvccpb::KeyValue>* kvs, RangeRequest::SortTarget target, bool descend) {
  auto cmp = [target](const mvccpb::KeyValue& a, const mvccpb::KeyValue& b) {
    switch (target) {
      case RangeRequest::VERSION:
        return Compare3(a.version(), b.version());
      case RangeRequest::CREATE:
        return Compare3(a.create_revision(), b.create_revision());
      case RangeRequest::MOD:
        return Compare3(a.mod_revision(), b.mod_revision());
      case RangeRequest::VALUE:
        return Compare3(a.value(), b.value());
      default:
        return Compare3(a.key(), b.key());
    }
  };
  if (descend) {
    std::stable_sort(kvs->begin(), kvs->end(),
                     [&](const auto& a, const auto& b) { return cmp(a, b) > 0; });
  } else {
    std::stable_sort(kvs->begin(), kvs->end(),
                     [&](const auto& a, const auto& b) { return cmp(a, b) < 0; });
  }
}

// The current value of one key, or nullopt.
std::optional<mvccpb::KeyValue> Get(const KvView& view, const std::string& key) {
  absl::StatusOr<RangeResult> r = view.Range(KeyRange::Single(key), RangeOptions{});
  KVD_CHECK_OK(r.status());
  if (r->kvs.empty()) return std::nullopt;
  return std::move(r->kvs.front());
}

bool CompareKv(const Compare& c, const mvccpb::KeyValue& kv) {
  int result = 0;
  switch (c.target()) {
    case Compare::VALUE:
      result = Compare3(kv.value(), c.value());
      break;
    case Compare::CREATE:
      result = Compare3(kv.create_revision(), c.create_revision());
      break;
    case Compare::MOD:
      result = Compare3(kv.mod_revision(), c.mod_revision());
      break;
    case Compare::VERSION:
      result = Compare3(kv.version(), c.version());
      break;
    case Compare::LEASE:
      result = Compare3(kv.lease(), c.lease());
      break;
    default:
      break;
  }
  switch (c.result()) {
    case Compare::EQUAL:
      return result == 0;
    case Compare::NOT_EQUAL:
      return result != 0;
    case Compare::GREATER:
      return result > 0;
    case Compare::LESS:
      return result < 0;
    default:
      return true;
  }
}

// A compare over a range holds if it holds for every key in it; over no key, it is judged
// against an absent key (all zero), except a value compare, which then fails.
bool ApplyCompare(const KvView& view, const Compare& c) {
  absl::StatusOr<RangeResult> r =
      view.Range(KeyRange::FromRequest(c.key(), c.range_end()), RangeOptions{});
  if (!r.ok()) return false;
  if (r->kvs.empty()) {
    if (c.target() == Compare::VALUE) return false;
    return CompareKv(c, mvccpb::KeyValue());
  }
  for (const mvccpb::KeyValue& kv : r->kvs) {
    if (!CompareKv(c, kv)) return false;
  }
  return true;
}

bool ApplyCompares(const KvView& view, const TxnRequest& txn) {
  for (const Compare& c : txn.compare()) {
    if (!ApplyCompare(view, c)) return false;
  }
  return true;
}

// Evaluates every compare, of the txn and of the nested txns on the taken branches, against
// the state before the txn; the result is the branch taken at each txn in pre-order.
void CompareToPath(const KvView& view, const TxnRequest& txn, std::vector<bool>* path) {
  bool succeeded = ApplyCompares(view, txn);
  path->push_back(succeeded);
  for (const RequestOp& op : succeeded ? txn.success() : txn.failure()) {
    if (op.has_request_txn()) CompareToPath(view, op.request_txn(), path);
  }
}

// Checks, before anything is written, what would make an op on the taken path fail.
absl::Status CheckPath(const KvView& view, const TxnRequest& txn, const std::vector<bool>& path,
                       size_t* at, const LeaseExists& lease_exists) {
  bool succeeded = path[(*at)++];
  for (const RequestOp& op : succeeded ? txn.success() : txn.failure()) {
    if (op.has_request_txn()) {
      if (absl::Status s = CheckPath(view, op.request_txn(), path, at, lease_exists); !s.ok()) {
        return s;
      }
    } else if (op.has_request_put()) {
      const etcdserverpb::PutRequest& put = op.request_put();
      if ((put.ignore_value() || put.ignore_lease()) && !Get(view, put.key())) {
        return errors::KeyNotFound();
      }
      if (put.lease() != 0 && !lease_exists(put.lease())) return errors::LeaseNotFound();
    } else if (op.has_request_range()) {
      int64_t rev = op.request_range().revision();
      if (rev > view.view_rev()) return errors::FutureRevision();
      if (rev != 0 && rev < view.view_compact_rev()) return errors::Compacted();
    }
  }
  return absl::OkStatus();
}

// Put without opening a request; the caller has checked the lease.
absl::StatusOr<etcdserverpb::PutResponse> PutInRequest(ApplyBatch& batch,
                                                       const etcdserverpb::PutRequest& req) {
  etcdserverpb::PutResponse resp;
  std::optional<mvccpb::KeyValue> prev;
  if (req.ignore_value() || req.ignore_lease() || req.prev_kv()) prev = Get(batch, req.key());
  if ((req.ignore_value() || req.ignore_lease()) && !prev) return errors::KeyNotFound();
  const std::string& value = req.ignore_value() ? prev->value() : req.value();
  int64_t lease = req.ignore_lease() ? prev->lease() : req.lease();
  if (req.prev_kv() && prev) *resp.mutable_prev_kv() = *prev;
  resp.mutable_header()->set_revision(batch.Put(req.key(), value, lease));
  return resp;
}

etcdserverpb::DeleteRangeResponse DeleteInRequest(ApplyBatch& batch,
                                                  const etcdserverpb::DeleteRangeRequest& req) {
  etcdserverpb::DeleteRangeResponse resp;
  KeyRange range = KeyRange::FromRequest(req.key(), req.range_end());
  if (req.prev_kv()) {
    absl::StatusOr<RangeResult> prev = batch.Range(range, RangeOptions{});
    KVD_CHECK_OK(prev.status());
    for (mvccpb::KeyValue& kv : prev->kvs) *resp.add_prev_kvs() = std::move(kv);
  }
  auto [deleted, rev] = batch.DeleteRange(range);
  resp.set_deleted(deleted);
  resp.mutable_header()->set_revision(rev);
  return resp;
}

// Runs the ops of the taken branch; batch is null for a read-only txn. Nested txn
// responses carry an empty header, as etcd's do.
void ExecuteTxn(const KvView& view, ApplyBatch* batch, const TxnRequest& txn,
                const std::vector<bool>& path, size_t* at, TxnResponse* resp) {
  bool succeeded = path[(*at)++];
  resp->set_succeeded(succeeded);
  for (const RequestOp& op : succeeded ? txn.success() : txn.failure()) {
    ResponseOp* out = resp->add_responses();
    switch (op.request_case()) {
      case RequestOp::kRequestRange: {
        absl::StatusOr<etcdserverpb::RangeResponse> r = ApplyRange(view, op.request_range());
        KVD_CHECK_OK(r.status());  // CheckPath ruled out every failure
        *out->mutable_response_range() = std::move(*r);
        break;
      }
      case RequestOp::kRequestPut: {
        KVD_CHECK(batch != nullptr);
        absl::StatusOr<etcdserverpb::PutResponse> r = PutInRequest(*batch, op.request_put());
        KVD_CHECK_OK(r.status());
        *out->mutable_response_put() = std::move(*r);
        break;
      }
      case RequestOp::kRequestDeleteRange:
        KVD_CHECK(batch != nullptr);
        *out->mutable_response_delete_range() = DeleteInRequest(*batch, op.request_delete_range());
        break;
      case RequestOp::kRequestTxn: {
        TxnResponse* nested = out->mutable_response_txn();
        nested->mutable_header();
        ExecuteTxn(view, batch, op.request_txn(), path, at, nested);
        break;
      }
      default:
        break;  // rejected up front by CheckTxnRequest
    }
  }
}

bool OpsReadOnly(const google::protobuf::RepeatedPtrField<RequestOp>& ops) {
  for (const RequestOp& op : ops) {
    if (op.has_request_put() || op.has_request_delete_range()) return false;
    if (op.has_request_txn() && !IsReadOnlyTxn(op.request_txn())) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<etcdserverpb::RangeResponse> ApplyRange(const KvView& view,
                                                       const RangeRequest& req) {
  bool fetch_all = req.sort_order() != RangeRequest::NONE || req.min_mod_revision() != 0 ||
                   req.max_mod_revision() != 0 || req.min_create_revision() != 0 ||
                   req.max_create_revision() != 0;
  RangeOptions options;
  options.rev = req.revision();
  options.count_only = req.count_only();
  // One extra key tells whether there are more.
  options.limit = (fetch_all || req.limit() <= 0) ? 0 : req.limit() + 1;

  absl::StatusOr<RangeResult> r =
      view.Range(KeyRange::FromRequest(req.key(), req.range_end()), options);
  if (!r.ok()) return r.status();
  std::vector<mvccpb::KeyValue>& kvs = r->kvs;

  auto prune = [&kvs](auto drop) { std::erase_if(kvs, drop); };
  if (req.max_mod_revision() != 0) {
    prune([&](const mvccpb::KeyValue& kv) { return kv.mod_revision() > req.max_mod_revision(); });
  }
  if (req.min_mod_revision() != 0) {
    prune([&](const mvccpb::KeyValue& kv) { return kv.mod_revision() < req.min_mod_revision(); });
  }
  if (req.max_create_revision() != 0) {
    prune([&](const mvccpb::KeyValue& kv) {
      return kv.create_revision() > req.max_create_revision();
    });
  }
  if (req.min_create_revision() != 0) {
    prune([&](const mvccpb::KeyValue& kv) {
      return kv.create_revision() < req.min_create_revision();
    });
  }

  RangeRequest::SortOrder order = req.sort_order();
  // Keys come out in ascending key order already; any other target sorts ascending by
  // default.
  if (req.sort_target() != RangeRequest::KEY && order == RangeRequest::NONE) {
    order = RangeRequest::ASCEND;
  }
  if (order == RangeRequest::ASCEND || order == RangeRequest::DESCEND) {
    SortKvs(&kvs, req.sort_target(), order == RangeRequest::DESCEND);
  }

  etcdserverpb::RangeResponse resp;
  if (req.limit() > 0 && static_cast<int64_t>(kvs.size()) > req.limit()) {
    kvs.resize(static_cast<size_t>(req.limit()));
    resp.set_more(true);
  }
  resp.mutable_header()->set_revision(r->rev);
  resp.set_count(r->count);
  resp.mutable_kvs()->Reserve(static_cast<int>(kvs.size()));
  for (mvccpb::KeyValue& kv : kvs) {
    if (req.keys_only()) kv.clear_value();
    *resp.add_kvs() = std::move(kv);
  }
  return resp;
}

absl::StatusOr<etcdserverpb::PutResponse> ApplyPut(ApplyBatch& batch,
                                                   const etcdserverpb::PutRequest& req,
                                                   const LeaseExists& lease_exists) {
  if (req.lease() != 0 && !lease_exists(req.lease())) return errors::LeaseNotFound();
  batch.BeginTxn();
  absl::StatusOr<etcdserverpb::PutResponse> resp = PutInRequest(batch, req);
  batch.EndTxn();
  return resp;
}

absl::StatusOr<etcdserverpb::DeleteRangeResponse> ApplyDeleteRange(
    ApplyBatch& batch, const etcdserverpb::DeleteRangeRequest& req) {
  batch.BeginTxn();
  etcdserverpb::DeleteRangeResponse resp = DeleteInRequest(batch, req);
  batch.EndTxn();
  return resp;
}

bool IsReadOnlyTxn(const TxnRequest& req) {
  return OpsReadOnly(req.success()) && OpsReadOnly(req.failure());
}

absl::StatusOr<TxnResponse> ApplyReadOnlyTxn(const KvView& view, const TxnRequest& req) {
  KVD_CHECK(IsReadOnlyTxn(req));
  std::vector<bool> path;
  CompareToPath(view, req, &path);
  size_t at = 0;
  if (absl::Status s = CheckPath(view, req, path, &at, [](int64_t) { return false; }); !s.ok()) {
    return s;
  }
  TxnResponse resp;
  at = 0;
  ExecuteTxn(view, nullptr, req, path, &at, &resp);
  resp.mutable_header()->set_revision(view.view_rev());
  return resp;
}

absl::StatusOr<TxnResponse> ApplyTxn(ApplyBatch& batch, const TxnRequest& req,
                                     const LeaseExists& lease_exists) {
  batch.BeginTxn();
  std::vector<bool> path;
  CompareToPath(batch, req, &path);
  size_t at = 0;
  if (absl::Status s = CheckPath(batch, req, path, &at, lease_exists); !s.ok()) {
    batch.EndTxn();
    return s;
  }
  TxnResponse resp;
  at = 0;
  ExecuteTxn(batch, &batch, req, path, &at, &resp);
  resp.mutable_header()->set_revision(batch.EndTxn());
  return resp;
}

absl::StatusOr<etcdserverpb::CompactionResponse> ApplyCompaction(
    ApplyBatch& batch, const etcdserverpb::CompactionRequest& req) {
  if (absl::Status s = batch.Compact(req.revision()); !s.ok()) return s;
  etcdserverpb::CompactionResponse resp;
  resp.mutable_header()->set_revision(batch.view_rev());
  return resp;
}

}  // namespace kvd::server
