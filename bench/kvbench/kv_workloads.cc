// The key-value workloads: put, range and txn (compare-and-swap counters).
#include <atomic>
#include <cstdlib>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "bench/kvbench/client.h"
#include "bench/kvbench/flags.h"
#include "bench/kvbench/workload.h"

namespace kvbench {

using etcdserverpb::KV;

std::seed_seq SeedFor(int64_t index) {
  uint64_t seed = absl::GetFlag(FLAGS_seed);
  return std::seed_seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                       static_cast<uint32_t>(index)};
}

std::string MakeValue(int size, uint64_t seed) {
  std::string v(std::max(size, 0), 'x');
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (char& c : v) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    c = static_cast<char>('a' + x % 26);
  }
  return v;
}

namespace {

KeySpace MainKeys() {
  return KeySpace(absl::GetFlag(FLAGS_key_prefix), absl::GetFlag(FLAGS_key_size),
                  absl::GetFlag(FLAGS_key_space));
}

// ---------------------------------------------------------------------------------------
// put: one Put per operation over the key space, random or in order.

class PutClient final : public LoopClient {
 public:
  PutClient(Engine* engine, int index, const KeySpace* keys, std::atomic<int64_t>* next_key)
      : LoopClient(engine, index),
        keys_(keys),
        next_key_(absl::GetFlag(FLAGS_sequential_keys) ? next_key : nullptr),
        per_txn_(absl::GetFlag(FLAGS_puts_per_txn)) {
    const std::string value = MakeValue(absl::GetFlag(FLAGS_val_size), index);
    req_.set_value(value);
    for (int i = 0; per_txn_ > 1 && i < per_txn_; ++i) {
      txn_.add_success()->mutable_request_put()->set_value(value);
    }
  }

  void Proceed(bool) override {
    const grpc::Status& status = per_txn_ > 1 ? txn_call_.status : call_.status;
    if (status.ok()) {
      row(0).Ok(NowNs() - (per_txn_ > 1 ? txn_call_.start_ns : call_.start_ns));
      engine_->CountProgress();
    } else {
      row(0).Error(status.error_code());
    }
    Next();
  }

 private:
  int64_t NextKey() {
    return next_key_ != nullptr
               ? next_key_->fetch_add(1, std::memory_order_relaxed) % keys_->count()
               : absl::Uniform<int64_t>(rng_, 0, keys_->count());
  }

  void Next() override {
    if (!engine_->TryStartOp()) return Finished();
    if (per_txn_ > 1) {
      for (auto& op : *txn_.mutable_success()) {
        keys_->Format(NextKey(), op.mutable_request_put()->mutable_key());
      }
      txn_call_.Start(conn_->kv.get(), &KV::Stub::PrepareAsyncTxn, txn_, cq(), timeout(), this);
      return;
    }
    keys_->Format(NextKey(), req_.mutable_key());
    call_.Start(conn_->kv.get(), &KV::Stub::PrepareAsyncPut, req_, cq(), timeout(), this);
  }

  const KeySpace* keys_;
  std::atomic<int64_t>* next_key_;
  const int per_txn_;
  etcdserverpb::PutRequest req_;
  UnaryCall<etcdserverpb::PutResponse> call_;
  etcdserverpb::TxnRequest txn_;  // --puts-per-txn > 1: that many puts per request
  UnaryCall<etcdserverpb::TxnResponse> txn_call_;
};

class PutWorkload final : public Workload {
 public:
  explicit PutWorkload(Engine* engine) : engine_(engine), keys_(MainKeys()) {}
  std::vector<std::string> Rows() const override { return {"put"}; }
  absl::Status Setup() override {
    if (absl::GetFlag(FLAGS_puts_per_txn) < 1) {
      return absl::InvalidArgumentError("--puts-per-txn must be at least 1");
    }
    return absl::OkStatus();
  }
  void Start() override {
    for (int i = 0; i < engine_->options().clients; ++i) {
      clients_.push_back(std::make_unique<PutClient>(engine_, i, &keys_, &next_key_));
    }
    BeginAll(clients_);
  }

 private:
  Engine* engine_;
  KeySpace keys_;
  std::atomic<int64_t> next_key_{0};
  std::vector<std::unique_ptr<PutClient>> clients_;
};

// ---------------------------------------------------------------------------------------
// range: one key at random, or the whole prefix (with --limit); l or s consistency.

class RangeClient final : public LoopClient {
 public:
  RangeClient(Engine* engine, int index, const KeySpace* keys) : LoopClient(engine, index) {
    keys_ = absl::GetFlag(FLAGS_prefix) ? nullptr : keys;
    if (keys_ == nullptr) {
      req_.set_key(keys->prefix());
      req_.set_range_end(keys->PrefixEnd());
      req_.set_limit(absl::GetFlag(FLAGS_limit));
    }
    req_.set_serializable(absl::GetFlag(FLAGS_consistency) == "s");
  }

  void Proceed(bool) override {
    if (call_.status.ok()) {
      row(0).Ok(NowNs() - call_.start_ns);
      engine_->CountProgress();
    } else {
      row(0).Error(call_.status.error_code());
    }
    Next();
  }

 private:
  void Next() override {
    if (!engine_->TryStartOp()) return Finished();
    if (keys_ != nullptr) {
      keys_->Format(absl::Uniform<int64_t>(rng_, 0, keys_->count()), req_.mutable_key());
    }
    call_.Start(conn_->kv.get(), &KV::Stub::PrepareAsyncRange, req_, cq(), timeout(), this);
  }

  const KeySpace* keys_;
  etcdserverpb::RangeRequest req_;
  UnaryCall<etcdserverpb::RangeResponse> call_;
};

class RangeWorkload final : public Workload {
 public:
  explicit RangeWorkload(Engine* engine) : engine_(engine), keys_(MainKeys()) {}
  std::vector<std::string> Rows() const override { return {"range"}; }

  absl::Status Setup() override {
    const std::string c = absl::GetFlag(FLAGS_consistency);
    if (c != "l" && c != "s") {
      return absl::InvalidArgumentError("--consistency must be l or s");
    }
    if (!absl::GetFlag(FLAGS_populate)) return absl::OkStatus();
    absl::StatusOr<int64_t> n = SyncCount(engine_, keys_.prefix(), keys_.PrefixEnd());
    if (!n.ok()) return n.status();
    if (*n >= keys_.count()) return absl::OkStatus();
    std::vector<std::string> keys;
    for (int64_t i = 0; i < keys_.count(); ++i) keys.push_back(keys_.Key(i));
    return SyncPutMany(engine_, keys, MakeValue(absl::GetFlag(FLAGS_val_size), 0));
  }

  void Start() override {
    for (int i = 0; i < engine_->options().clients; ++i) {
      clients_.push_back(std::make_unique<RangeClient>(engine_, i, &keys_));
    }
    BeginAll(clients_);
  }

 private:
  Engine* engine_;
  KeySpace keys_;
  std::vector<std::unique_ptr<RangeClient>> clients_;
};

// ---------------------------------------------------------------------------------------
// txn: increments of --hot-keys counters by compare-and-swap. An operation reads a counter
// (value and mod_revision r), then sends Txn(If mod_revision == r Then put value+1 Else get)
// until it succeeds, retrying from the Else branch's fresh value on each conflict.

enum TxnRow { kCas = 0, kCasRead = 1, kCasTxn = 2 };

struct TxnCounters {
  std::atomic<uint64_t> conflicts{0};
  std::atomic<uint64_t> retries{0};
  std::atomic<uint64_t> abandoned{0};
};

class TxnClient final : public LoopClient {
 public:
  TxnClient(Engine* engine, int index, const KeySpace* keys, TxnCounters* counters)
      : LoopClient(engine, index), keys_(keys), counters_(counters) {
    auto* cmp = txn_.add_compare();
    cmp->set_result(etcdserverpb::Compare::EQUAL);
    cmp->set_target(etcdserverpb::Compare::MOD);
    txn_.add_success()->mutable_request_put();
    txn_.add_failure()->mutable_request_range();
  }

  void Proceed(bool) override {
    if (reading_) {
      OnRead();
    } else {
      OnTxn();
    }
  }

  uint64_t successes() const { return successes_; }

 private:
  void Next() override {
    if (!engine_->TryStartOp()) return Finished();
    op_start_ns_ = NowNs();
    keys_->Format(absl::Uniform<int64_t>(rng_, 0, keys_->count()), read_.mutable_key());
    Read();
  }

  void Read() {
    reading_ = true;
    read_call_.Start(conn_->kv.get(), &KV::Stub::PrepareAsyncRange, read_, cq(), timeout(), this);
  }

  void OnRead() {
    if (!read_call_.status.ok()) {
      row(kCasRead).Error(read_call_.status.error_code());
      return Abandon();
    }
    row(kCasRead).Ok(NowNs() - read_call_.start_ns);
    const auto& kvs = read_call_.resp.kvs();
    Cas(kvs.empty() ? 0 : Parse(kvs[0].value()), kvs.empty() ? 0 : kvs[0].mod_revision());
  }

  void Cas(int64_t value, int64_t mod_revision) {
    const std::string& key = read_.key();
    auto* cmp = txn_.mutable_compare(0);
    cmp->set_key(key);
    cmp->set_mod_revision(mod_revision);
    auto* put = txn_.mutable_success(0)->mutable_request_put();
    put->set_key(key);
    put->set_value(absl::StrCat(value + 1));
    txn_.mutable_failure(0)->mutable_request_range()->set_key(key);
    reading_ = false;
    txn_call_.Start(conn_->kv.get(), &KV::Stub::PrepareAsyncTxn, txn_, cq(), timeout(), this);
  }

  void OnTxn() {
    if (!txn_call_.status.ok()) {
      row(kCasTxn).Error(txn_call_.status.error_code());
      return Abandon();
    }
    row(kCasTxn).Ok(NowNs() - txn_call_.start_ns);
    const auto& resp = txn_call_.resp;
    if (resp.succeeded()) {
      ++successes_;
      row(kCas).Ok(NowNs() - op_start_ns_);
      engine_->CountProgress();
      return Next();
    }
    counters_->conflicts.fetch_add(1, std::memory_order_relaxed);
    if (engine_->stopping()) return Abandon();
    counters_->retries.fetch_add(1, std::memory_order_relaxed);
    const auto& kvs = resp.responses(0).response_range().kvs();
    Cas(kvs.empty() ? 0 : Parse(kvs[0].value()), kvs.empty() ? 0 : kvs[0].mod_revision());
  }

  // The operation failed (an RPC error, or the run stopped during a retry).
  void Abandon() {
    counters_->abandoned.fetch_add(1, std::memory_order_relaxed);
    Next();
  }

  static int64_t Parse(const std::string& s) {
    int64_t v = 0;
    return absl::SimpleAtoi(s, &v) ? v : 0;
  }

  const KeySpace* keys_;
  TxnCounters* counters_;
  bool reading_ = false;
  int64_t op_start_ns_ = 0;
  uint64_t successes_ = 0;
  etcdserverpb::RangeRequest read_;
  etcdserverpb::TxnRequest txn_;
  UnaryCall<etcdserverpb::RangeResponse> read_call_;
  UnaryCall<etcdserverpb::TxnResponse> txn_call_;
};

class TxnWorkload final : public Workload {
 public:
  explicit TxnWorkload(Engine* engine)
      : engine_(engine),
        keys_(absl::StrCat(absl::GetFlag(FLAGS_key_prefix), "hot/"), absl::GetFlag(FLAGS_key_size),
              absl::GetFlag(FLAGS_hot_keys)) {}
  std::vector<std::string> Rows() const override { return {"cas", "cas.range", "cas.txn"}; }

  // Every counter starts at 0.
  absl::Status Setup() override {
    if (absl::GetFlag(FLAGS_hot_keys) < 1) {
      return absl::InvalidArgumentError("--hot-keys must be at least 1");
    }
    std::vector<std::string> keys;
    for (int64_t i = 0; i < keys_.count(); ++i) keys.push_back(keys_.Key(i));
    return SyncPutMany(engine_, keys, "0");
  }

  void Start() override {
    for (int i = 0; i < engine_->options().clients; ++i) {
      clients_.push_back(std::make_unique<TxnClient>(engine_, i, &keys_, &counters_));
    }
    BeginAll(clients_);
  }

  // The counters must add up to the successful increments (no lost update).
  absl::Status Finish(Extras* extras) override {
    uint64_t successes = 0;
    for (const auto& c : clients_) successes += c->successes();
    etcdserverpb::RangeRequest req;
    req.set_key(keys_.prefix());
    req.set_range_end(keys_.PrefixEnd());
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + engine_->timeout()));
    etcdserverpb::RangeResponse resp;
    absl::Status s = FromGrpc(engine_->conn(0).kv->Range(&ctx, req, &resp), "read counters");
    if (!s.ok()) return s;
    int64_t sum = 0;
    for (const auto& kv : resp.kvs()) {
      int64_t v = 0;
      if (absl::SimpleAtoi(kv.value(), &v)) sum += v;
    }
    extras->Add("conflicts", counters_.conflicts.load());
    extras->Add("retries", counters_.retries.load());
    extras->Add("abandoned", counters_.abandoned.load());
    extras->Add("increments", successes);
    extras->Add("counter_sum", sum);
    // Positive: acknowledged increments missing from the counters. An RPC error on a Txn
    // that the server applied anyway makes it negative (an unacknowledged increment).
    extras->Add("lost_updates", static_cast<int64_t>(successes) - sum);
    return absl::OkStatus();
  }

 private:
  Engine* engine_;
  KeySpace keys_;
  TxnCounters counters_;
  std::vector<std::unique_ptr<TxnClient>> clients_;
};

}  // namespace

std::unique_ptr<Workload> MakePutWorkload(Engine* engine) {
  return std::make_unique<PutWorkload>(engine);
}
std::unique_ptr<Workload> MakeRangeWorkload(Engine* engine) {
  return std::make_unique<RangeWorkload>(engine);
}
std::unique_ptr<Workload> MakeTxnWorkload(Engine* engine) {
  return std::make_unique<TxnWorkload>(engine);
}

}  // namespace kvbench
