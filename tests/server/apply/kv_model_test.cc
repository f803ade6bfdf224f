// Model-based test of the KV state machine: random requests (puts, deletes, txns with
// nested txns, ranges with every option, historical reads, compactions, restarts) go to
// kvd's store through the real apply path, and to a plain in-memory model of etcd's data
// model; every response must be identical.
//
// One seed drives everything. A failure prints the seed; rerun exactly with
//   KVD_SEED=<seed> build/bin/kv_model_test
// KVD_MODEL_SEEDS=<n> runs n seeds (the CI run uses a small number).
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "server/apply/applier.h"
#include "server/apply/kv_apply.h"
#include "server/apply/kv_checks.h"
#include "storage/engine.h"
#include "storage/mvcc/kv_store.h"

namespace kvd::server {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::RangeRequest;
using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;

// ---------------------------------------------------------------------------------------
// The model: every version of every key, in a map. Deliberately naive.

struct Version {
  int64_t mod = 0;
  int64_t create = 0;
  int64_t version = 0;
  int64_t lease = 0;
  std::string value;
  bool tombstone = false;
};

class Model {
 public:
  int64_t rev() const { return rev_; }
  int64_t compact_rev() const { return compact_; }

  // The live kvs of [key, end) (etcd's range_end forms) at revision at.
  std::vector<mvccpb::KeyValue> Live(const std::string& key, const std::string& end,
                                     int64_t at) const {
    std::vector<mvccpb::KeyValue> out;
    for (const auto& [k, versions] : history_) {
      if (!InRange(k, key, end)) continue;
      const Version* visible = nullptr;
      for (const Version& v : versions) {
        if (v.mod <= at) visible = &v;
      }
      if (visible == nullptr || visible->tombstone) continue;
      mvccpb::KeyValue kv;
      kv.set_key(k);
      kv.set_create_revision(visible->create);
      kv.set_mod_revision(visible->mod);
      kv.set_version(visible->version);
      kv.set_lease(visible->lease);
      kv.set_value(visible->value);
      out.push_back(kv);
    }
    return out;
  }

  absl::StatusOr<etcdserverpb::RangeResponse> Range(const RangeRequest& r, int64_t view_rev) const {
    if (r.revision() > view_rev) return absl::OutOfRangeError("future");
    int64_t at = r.revision() > 0 ? r.revision() : view_rev;
    if (at < compact_) return absl::OutOfRangeError("compacted");
    std::vector<mvccpb::KeyValue> kvs = Live(r.key(), r.range_end(), at);
    etcdserverpb::RangeResponse resp;
    resp.mutable_header()->set_revision(view_rev);
    resp.set_count(static_cast<int64_t>(kvs.size()));
    if (r.count_only()) return resp;
    // etcd's quirk: with no sort order and no filter, only the first limit+1 keys (by key)
    // are fetched, and a non-key sort target then orders just those.
    bool fetch_all = r.sort_order() != RangeRequest::NONE || r.min_mod_revision() ||
                     r.max_mod_revision() || r.min_create_revision() || r.max_create_revision();
    if (!fetch_all && r.limit() > 0 && static_cast<int64_t>(kvs.size()) > r.limit() + 1) {
      kvs.resize(r.limit() + 1);
    }
    std::erase_if(kvs, [&](const mvccpb::KeyValue& kv) {
      return (r.max_mod_revision() && kv.mod_revision() > r.max_mod_revision()) ||
             (r.min_mod_revision() && kv.mod_revision() < r.min_mod_revision()) ||
             (r.max_create_revision() && kv.create_revision() > r.max_create_revision()) ||
             (r.min_create_revision() && kv.create_revision() < r.min_create_revision());
    });
    auto field = [&](const mvccpb::KeyValue& kv) -> std::pair<std::string, int64_t> {
      switch (r.sort_target()) {
        case RangeRequest::VERSION: return {"", kv.version()};
        case RangeRequest::CREATE: return {"", kv.create_revision()};
        case RangeRequest::MOD: return {"", kv.mod_revision()};
        case RangeRequest::VALUE: return {kv.value(), 0};
        default: return {kv.key(), 0};
      }
    };
    RangeRequest::SortOrder order = r.sort_order();
    if (order == RangeRequest::NONE && r.sort_target() != RangeRequest::KEY) {
      order = RangeRequest::ASCEND;
    }
    if (order == RangeRequest::ASCEND) {
      std::stable_sort(kvs.begin(), kvs.end(),
                       [&](const auto& a, const auto& b) { return field(a) < field(b); });
    } else if (order == RangeRequest::DESCEND) {
      std::stable_sort(kvs.begin(), kvs.end(),
                       [&](const auto& a, const auto& b) { return field(b) < field(a); });
    }
    if (r.limit() > 0 && static_cast<int64_t>(kvs.size()) > r.limit()) {
      kvs.resize(r.limit());
      resp.set_more(true);
    }
    for (auto& kv : kvs) {
      if (r.keys_only()) kv.clear_value();
      *resp.add_kvs() = kv;
    }
    return resp;
  }

  // Mutations inside the current request (begin_rev_ = rev before it).
  void BeginRequest() { changes_ = 0; }
  int64_t ViewRev() const { return rev_ + (changes_ > 0 ? 1 : 0); }
  void EndRequest() {
    if (changes_ > 0) ++rev_;
    changes_ = 0;
  }

  int64_t Put(const std::string& key, const std::string& value, int64_t lease) {
    std::vector<mvccpb::KeyValue> cur = Live(key, "", ViewRev());
    Version v;
    v.mod = rev_ + 1;
    v.create = cur.empty() ? rev_ + 1 : cur[0].create_revision();
    v.version = cur.empty() ? 1 : cur[0].version() + 1;
    v.lease = lease;
    v.value = value;
    history_[key].push_back(v);
    ++changes_;
    return rev_ + 1;
  }

  int64_t Delete(const std::string& key, const std::string& end) {
    std::vector<mvccpb::KeyValue> cur = Live(key, end, ViewRev());
    for (const auto& kv : cur) {
      Version v;
      v.mod = rev_ + 1;
      v.tombstone = true;
      history_[kv.key()].push_back(v);
      ++changes_;
    }
    return static_cast<int64_t>(cur.size());
  }

  absl::Status Compact(int64_t rev) {
    if (rev <= compact_) return absl::OutOfRangeError("compacted");
    if (rev > rev_) return absl::OutOfRangeError("future");
    compact_ = rev;
    return absl::OkStatus();
  }

 private:
  static bool InRange(const std::string& k, const std::string& key, const std::string& end) {
    if (end.empty()) return k == key;
    if (end == std::string("\0", 1)) return k >= key;
    return k >= key && k < end;
  }

  std::map<std::string, std::vector<Version>> history_;
  int64_t rev_ = 1;
  int64_t compact_ = -1;  // never compacted, as etcd
  int64_t changes_ = 0;
};

// The model's txn: compares on the state before the txn decide every branch up front.
class ModelTxn {
 public:
  explicit ModelTxn(Model* m) : m_(m) {}

  absl::StatusOr<etcdserverpb::TxnResponse> Run(const TxnRequest& req) {
    std::vector<bool> path;
    Path(req, &path);
    size_t at = 0;
    if (absl::Status s = Check(req, path, &at); !s.ok()) return s;
    m_->BeginRequest();
    etcdserverpb::TxnResponse resp;
    at = 0;
    Execute(req, path, &at, &resp);
    resp.mutable_header()->set_revision(m_->ViewRev());
    m_->EndRequest();
    return resp;
  }

 private:
  bool CompareOne(const Compare& c) {
    std::vector<mvccpb::KeyValue> kvs = m_->Live(c.key(), c.range_end(), m_->rev());
    if (kvs.empty()) {
      if (c.target() == Compare::VALUE) return false;
      kvs.emplace_back();
    }
    for (const auto& kv : kvs) {
      int r;
      auto cmp = [](auto a, auto b) { return a < b ? -1 : (b < a ? 1 : 0); };
      switch (c.target()) {
        case Compare::VALUE: r = cmp(kv.value(), c.value()); break;
        case Compare::CREATE: r = cmp(kv.create_revision(), c.create_revision()); break;
        case Compare::MOD: r = cmp(kv.mod_revision(), c.mod_revision()); break;
        case Compare::VERSION: r = cmp(kv.version(), c.version()); break;
        default: r = cmp(kv.lease(), c.lease()); break;
      }
      bool ok = c.result() == Compare::EQUAL     ? r == 0
                : c.result() == Compare::GREATER ? r > 0
                : c.result() == Compare::LESS    ? r < 0
                                                 : r != 0;
      if (!ok) return false;
    }
    return true;
  }

  void Path(const TxnRequest& req, std::vector<bool>* path) {
    bool ok = true;
    for (const Compare& c : req.compare()) ok = ok && CompareOne(c);
    path->push_back(ok);
    for (const RequestOp& op : ok ? req.success() : req.failure()) {
      if (op.has_request_txn()) Path(op.request_txn(), path);
    }
  }

  absl::Status Check(const TxnRequest& req, const std::vector<bool>& path, size_t* at) {
    bool ok = path[(*at)++];
    for (const RequestOp& op : ok ? req.success() : req.failure()) {
      if (op.has_request_txn()) {
        if (absl::Status s = Check(op.request_txn(), path, at); !s.ok()) return s;
      } else if (op.has_request_range()) {
        int64_t rev = op.request_range().revision();
        if (rev > m_->rev()) return absl::OutOfRangeError("future");
        if (rev != 0 && rev < m_->compact_rev()) return absl::OutOfRangeError("compacted");
      }
    }
    return absl::OkStatus();
  }

  void Execute(const TxnRequest& req, const std::vector<bool>& path, size_t* at,
               etcdserverpb::TxnResponse* resp) {
    bool ok = path[(*at)++];
    resp->set_succeeded(ok);
    for (const RequestOp& op : ok ? req.success() : req.failure()) {
      etcdserverpb::ResponseOp* out = resp->add_responses();
      if (op.has_request_range()) {
        *out->mutable_response_range() = *m_->Range(op.request_range(), m_->ViewRev());
      } else if (op.has_request_put()) {
        const auto& put = op.request_put();
        auto* r = out->mutable_response_put();
        std::vector<mvccpb::KeyValue> prev = m_->Live(put.key(), "", m_->ViewRev());
        if (put.prev_kv() && !prev.empty()) *r->mutable_prev_kv() = prev[0];
        r->mutable_header()->set_revision(m_->Put(put.key(), put.value(), 0));
      } else if (op.has_request_delete_range()) {
        const auto& del = op.request_delete_range();
        auto* r = out->mutable_response_delete_range();
        if (del.prev_kv()) {
          for (const auto& kv : m_->Live(del.key(), del.range_end(), m_->ViewRev())) {
            *r->add_prev_kvs() = kv;
          }
        }
        r->set_deleted(m_->Delete(del.key(), del.range_end()));
        r->mutable_header()->set_revision(m_->ViewRev());
      } else if (op.has_request_txn()) {
        auto* nested = out->mutable_response_txn();
        nested->mutable_header();
        Execute(op.request_txn(), path, at, nested);
      }
    }
  }

  Model* m_;
};

// ---------------------------------------------------------------------------------------
// Random requests over a small key space with awkward keys (embedded NULs, prefixes).

class Generator {
 public:
  explicit Generator(uint64_t seed) : rng_(seed) {}

  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool OneIn(int n) { return Uniform(1, n) == 1; }

  std::string Key() {
    static const std::vector<std::string> keys = {
        "a", "ab", "abc", "b", "ba", "c", std::string("a\0", 2), std::string("a\0b", 3),
        std::string("\0", 1), "z", "\xff", "key/1", "key/2", "key/10"};
    return keys[Uniform(0, static_cast<int>(keys.size()) - 1)];
  }
  std::string Value() { return OneIn(8) ? "" : absl::StrCat("v", Uniform(0, 30)); }

  // range_end: single key, prefix end, from-key, or an arbitrary end (maybe < key).
  std::string End(const std::string& key) {
    switch (Uniform(0, 4)) {
      case 0:
      case 1:
        return "";
      case 2:
        return std::string("\0", 1);
      case 3: {
        std::string end = key;
        while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
        if (end.empty()) return std::string("\0", 1);
        end.back() = static_cast<char>(end.back() + 1);
        return end;
      }
      default:
        return Key();
    }
  }

  int64_t Rev(const Model& m) {
    if (OneIn(2)) return 0;
    return std::max<int64_t>(0, m.compact_rev() - 2 + Uniform(0, static_cast<int>(m.rev() - m.compact_rev()) + 4));
  }

  RangeRequest Range(const Model& m) {
    RangeRequest r;
    r.set_key(Key());
    r.set_range_end(End(r.key()));
    r.set_revision(Rev(m));
    if (OneIn(3)) r.set_limit(Uniform(1, 4));
    if (OneIn(4)) r.set_sort_order(static_cast<RangeRequest::SortOrder>(Uniform(0, 2)));
    if (OneIn(4)) r.set_sort_target(static_cast<RangeRequest::SortTarget>(Uniform(0, 4)));
    r.set_keys_only(OneIn(6));
    r.set_count_only(OneIn(8));
    if (OneIn(8)) r.set_min_mod_revision(Uniform(0, static_cast<int>(m.rev())));
    if (OneIn(8)) r.set_max_mod_revision(Uniform(0, static_cast<int>(m.rev())));
    if (OneIn(8)) r.set_min_create_revision(Uniform(0, static_cast<int>(m.rev())));
    if (OneIn(8)) r.set_max_create_revision(Uniform(0, static_cast<int>(m.rev())));
    return r;
  }

  Compare Cmp(const Model& m) {
    Compare c;
    c.set_key(Key());
    if (OneIn(4)) c.set_range_end(End(c.key()));
    c.set_result(static_cast<Compare::CompareResult>(Uniform(0, 3)));
    c.set_target(static_cast<Compare::CompareTarget>(Uniform(0, 4)));
    int64_t n = Uniform(0, static_cast<int>(m.rev()) + 1);
    switch (c.target()) {
      case Compare::VERSION: c.set_version(Uniform(0, 3)); break;
      case Compare::CREATE: c.set_create_revision(n); break;
      case Compare::MOD: c.set_mod_revision(n); break;
      case Compare::VALUE: c.set_value(Value()); break;
      default: c.set_lease(0); break;
    }
    return c;
  }

  TxnRequest Txn(const Model& m, int depth) {
    TxnRequest t;
    for (int i = Uniform(0, 2); i > 0; --i) *t.add_compare() = Cmp(m);
    for (auto* ops : {t.mutable_success(), t.mutable_failure()}) {
      for (int i = Uniform(0, 3); i > 0; --i) {
        RequestOp* op = ops->Add();
        switch (Uniform(0, depth > 0 ? 3 : 2)) {
          case 0: *op->mutable_request_range() = Range(m); break;
          case 1: {
            auto* p = op->mutable_request_put();
            p->set_key(Key());
            p->set_value(Value());
            p->set_prev_kv(OneIn(2));
            break;
          }
          case 2: {
            auto* d = op->mutable_request_delete_range();
            d->set_key(Key());
            d->set_range_end(End(d->key()));
            d->set_prev_kv(OneIn(2));
            break;
          }
          default: *op->mutable_request_txn() = Txn(m, depth - 1); break;
        }
      }
    }
    return t;
  }

 private:
  std::mt19937_64 rng_;
};

// ---------------------------------------------------------------------------------------

class Store {
 public:
  explicit Store(std::string dir) : dir_(std::move(dir)) { Reopen(); }
  void Reopen() {
    kv_.reset();
    engine_.reset();
    storage::EngineOptions options;
    options.path = dir_;
    auto engine = storage::Engine::Open(options);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
    auto kv = storage::mvcc::KvStore::Open(engine_.get());
    ASSERT_TRUE(kv.ok()) << kv.status();
    kv_ = std::move(*kv);
  }
  storage::mvcc::KvStore& kv() { return *kv_; }

 private:
  std::string dir_;
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<storage::mvcc::KvStore> kv_;
};

std::string Show(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::TextFormat::PrintToString(m, &out);
  return out;
}

// Expects the same status code, and on OK the same response.
template <typename Response>
void ExpectSame(const absl::StatusOr<Response>& model, const absl::Status& got_status,
                const Response& got, const std::string& what) {
  ASSERT_EQ(model.status().code(), got_status.code())
      << what << "\nmodel: " << model.status() << "\nkvd:   " << got_status;
  if (!model.ok()) return;
  ASSERT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*model, got))
      << what << "\nmodel:\n" << Show(*model) << "kvd:\n" << Show(got);
}

void RunSeed(uint64_t seed, int ops) {
  SCOPED_TRACE(absl::StrCat("reproduce: KVD_SEED=", seed, " build/bin/kv_model_test"));
  std::string dir = absl::StrCat(::testing::TempDir(), "/kv_model_", seed, "_", getpid());
  std::filesystem::remove_all(dir);
  // Removed after the store is closed, whether the seed passes or not.
  struct RemoveDir {
    std::string dir;
    ~RemoveDir() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } remove_dir{dir};
  Store store(dir);
  Model model;
  Generator gen(seed);
  Applier applier([](int64_t) { return false; });

  for (int i = 0; i < ops;) {
    // A batch of 1..4 writes, applied and committed together, as the apply loop does.
    std::unique_ptr<storage::mvcc::ApplyBatch> batch = store.kv().NewApplyBatch();
    int batch_size = gen.Uniform(1, 4);
    for (int b = 0; b < batch_size; ++b, ++i) {
      std::string what = absl::StrCat("op ", i);
      internalpb::Request req;
      switch (gen.Uniform(0, 9)) {
        case 0:
        case 1:
        case 2: {
          auto* p = req.mutable_put();
          p->set_key(gen.Key());
          p->set_value(gen.Value());
          p->set_prev_kv(gen.OneIn(2));
          etcdserverpb::PutResponse got;
          absl::Status s = applier.Apply(*batch, req, &got);
          model.BeginRequest();
          etcdserverpb::PutResponse want;
          std::vector<mvccpb::KeyValue> prev = model.Live(p->key(), "", model.rev());
          if (p->prev_kv() && !prev.empty()) *want.mutable_prev_kv() = prev[0];
          want.mutable_header()->set_revision(model.Put(p->key(), p->value(), 0));
          model.EndRequest();
          ExpectSame(absl::StatusOr<etcdserverpb::PutResponse>(want), s, got,
                     what + " put\n" + Show(req));
          break;
        }
        case 3: {
          auto* d = req.mutable_delete_range();
          d->set_key(gen.Key());
          d->set_range_end(gen.End(d->key()));
          d->set_prev_kv(gen.OneIn(2));
          etcdserverpb::DeleteRangeResponse got;
          absl::Status s = applier.Apply(*batch, req, &got);
          model.BeginRequest();
          etcdserverpb::DeleteRangeResponse want;
          if (d->prev_kv()) {
            for (const auto& kv : model.Live(d->key(), d->range_end(), model.rev())) {
              *want.add_prev_kvs() = kv;
            }
          }
          want.set_deleted(model.Delete(d->key(), d->range_end()));
          want.mutable_header()->set_revision(model.ViewRev());
          model.EndRequest();
          ExpectSame(absl::StatusOr<etcdserverpb::DeleteRangeResponse>(want), s, got,
                     what + " delete\n" + Show(req));
          break;
        }
        case 4:
        case 5:
        case 6: {
          *req.mutable_txn() = gen.Txn(model, 2);
          if (!CheckTxnRequest(req.txn(), 128).ok()) break;  // kv_checks_test covers these
          etcdserverpb::TxnResponse got;
          absl::Status s = applier.Apply(*batch, req, &got);
          ModelTxn txn(&model);
          ExpectSame(txn.Run(req.txn()), s, got, what + " txn\n" + Show(req));
          break;
        }
        case 7: {
          int64_t rev = model.compact_rev() - 1 +
                        gen.Uniform(0, static_cast<int>(model.rev() - model.compact_rev()) + 2);
          req.mutable_compaction()->set_revision(rev);
          etcdserverpb::CompactionResponse got;
          absl::Status s = applier.Apply(*batch, req, &got);
          absl::Status want = model.Compact(rev);
          ASSERT_EQ(want.code(), s.code()) << what << " compact " << rev << ": " << s;
          if (s.ok()) {
            ASSERT_EQ(got.header().revision(), model.rev());
          }
          break;
        }
        default: {
          // A read inside the batch sees the batch's earlier writes.
          RangeRequest r = gen.Range(model);
          absl::StatusOr<etcdserverpb::RangeResponse> got = ApplyRange(*batch, r);
          etcdserverpb::RangeResponse empty;
          ExpectSame(model.Range(r, model.rev()), got.status(), got.ok() ? *got : empty,
                     what + " range in batch\n" + Show(r));
          break;
        }
      }
      if (::testing::Test::HasFatalFailure()) return;
    }
    batch->SetAppliedIndex(static_cast<uint64_t>(i));
    ASSERT_TRUE(batch->Commit(/*sync=*/false).ok());
    batch.reset();

    // Committed reads, a read-only txn, background compaction, and now and then a restart.
    for (int r = gen.Uniform(0, 3); r > 0; --r) {
      RangeRequest req = gen.Range(model);
      auto view = store.kv().Read();
      absl::StatusOr<etcdserverpb::RangeResponse> got = ApplyRange(*view, req);
      etcdserverpb::RangeResponse empty;
      ExpectSame(model.Range(req, model.rev()), got.status(), got.ok() ? *got : empty,
                 absl::StrCat("read after op ", i, "\n", Show(req)));
      if (::testing::Test::HasFatalFailure()) return;
    }
    if (gen.OneIn(3)) {
      ASSERT_TRUE(store.kv().CompactStep(gen.Uniform(1, 20)).ok());
    }
    if (gen.OneIn(50)) {
      store.Reopen();
      if (::testing::Test::HasFatalFailure()) return;
      ASSERT_EQ(store.kv().current_rev(), model.rev());
      ASSERT_EQ(store.kv().compact_rev(), model.compact_rev());
      ASSERT_EQ(store.kv().applied_index(), static_cast<uint64_t>(i));
    }
  }
  // Finish compaction and check every revision still readable gives the model's answer.
  while (true) {
    absl::StatusOr<bool> done = store.kv().CompactStep(100);
    ASSERT_TRUE(done.ok());
    if (*done) break;
  }
  for (int64_t rev = model.compact_rev(); rev <= model.rev(); ++rev) {
    RangeRequest all;
    all.set_key(std::string("\0", 1));
    all.set_range_end(std::string("\0", 1));
    all.set_revision(rev);
    auto view = store.kv().Read();
    absl::StatusOr<etcdserverpb::RangeResponse> got = ApplyRange(*view, all);
    etcdserverpb::RangeResponse empty;
    ExpectSame(model.Range(all, model.rev()), got.status(), got.ok() ? *got : empty,
               absl::StrCat("full read at ", rev, " after compaction"));
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(KvModelTest, RandomOperationsMatchTheModel) {
  if (const char* seed = std::getenv("KVD_SEED")) {
    RunSeed(std::strtoull(seed, nullptr, 10), 3000);
    return;
  }
  int seeds = 12;
  if (const char* n = std::getenv("KVD_MODEL_SEEDS")) seeds = std::atoi(n);
  for (int s = 1; s <= seeds && !::testing::Test::HasFatalFailure(); ++s) {
    RunSeed(static_cast<uint64_t>(s), 1500);
  }
}

}  // namespace
}  // namespace kvd::server
