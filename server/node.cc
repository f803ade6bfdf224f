#include "server/node.h"

#include <filesystem>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "api/errors.h"
#include "storage/check.h"

namespace kvd::server {
namespace {

constexpr char kMetaMemberId[] = "member_id";
constexpr char kMetaClusterId[] = "cluster_id";

// etcd keeps <data-dir>/member/{wal,snap}; kvd keeps <data-dir>/member/kvd.
absl::Status CheckNotEtcdDataDir(const std::filesystem::path& data_dir) {
  std::error_code ec;
  for (const char* etcd_dir : {"member/wal", "member/snap"}) {
    if (std::filesystem::exists(data_dir / etcd_dir, ec)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "data directory ", data_dir.string(), " holds an etcd data directory (", etcd_dir,
          "); kvd does not read etcd's files: restore an etcd snapshot into an empty "
          "--data-dir instead"));
    }
  }
  return absl::OkStatus();
}

// Reads a 64-bit id from the meta family, creating a random one on first start.
absl::StatusOr<uint64_t> LoadOrCreateId(storage::Engine& engine, const char* key) {
  absl::StatusOr<std::string> value = engine.Get(storage::Cf::kMeta, key);
  if (value.ok()) {
    if (value->size() != 8) return absl::DataLossError(absl::StrCat("meta '", key, "' is corrupt"));
    return storage::GetBigEndian64(value->data());
  }
  if (!absl::IsNotFound(value.status())) return value.status();
  absl::BitGen gen;
  uint64_t id = 0;
  while (id == 0) id = absl::Uniform<uint64_t>(gen);
  std::string encoded;
  storage::PutBigEndian64(&encoded, id);
  rocksdb::WriteBatch batch;
  batch.Put(engine.cf(storage::Cf::kMeta), key, encoded);
  if (absl::Status s = engine.Write(&batch, /*sync=*/true); !s.ok()) return s;
  return id;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Node>> Node::Open(const NodeOptions& options) {
  std::unique_ptr<Node> node(new Node());
  node->options_ = options;
  std::filesystem::path data_dir(options.data_dir);
  if (absl::Status s = CheckNotEtcdDataDir(data_dir); !s.ok()) return s;

  storage::EngineOptions engine_options;
  engine_options.path = (data_dir / "member" / "kvd").string();
  absl::StatusOr<std::unique_ptr<storage::Engine>> engine = storage::Engine::Open(engine_options);
  if (!engine.ok()) return engine.status();
  node->engine_ = std::move(*engine);

  absl::StatusOr<std::unique_ptr<storage::mvcc::KvStore>> kv =
      storage::mvcc::KvStore::Open(node->engine_.get());
  if (!kv.ok()) return kv.status();
  node->kv_ = std::move(*kv);

  absl::StatusOr<uint64_t> member_id = LoadOrCreateId(*node->engine_, kMetaMemberId);
  if (!member_id.ok()) return member_id.status();
  absl::StatusOr<uint64_t> cluster_id = LoadOrCreateId(*node->engine_, kMetaClusterId);
  if (!cluster_id.ok()) return cluster_id.status();
  node->member_id_ = *member_id;
  node->cluster_id_ = *cluster_id;

  return node;
}

void Node::Start(NodeHooks hooks) {
  KVD_CHECK(!apply_thread_.joinable());
  hooks_ = std::move(hooks);
  LeaseExists lease_exists = hooks_.lease_exists;
  if (!lease_exists) lease_exists = [](int64_t) { return false; };
  applier_ = std::make_unique<Applier>(std::move(lease_exists));
  apply_thread_ = std::thread([this] { ApplyLoop(); });
  compact_thread_ = std::thread([this] { CompactLoop(); });
  // One member: it leads from the start.
  if (hooks_.on_leadership) hooks_.on_leadership(true);
}

Node::~Node() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (apply_thread_.joinable()) apply_thread_.join();
  if (compact_thread_.joinable()) compact_thread_.join();
  std::vector<CompactionWaiter> waiters;
  {
    absl::MutexLock lock(&mu_);
    waiters.swap(compaction_waiters_);
  }
  for (CompactionWaiter& w : waiters) std::move(w.done)(errors::Stopped());
}

void Node::Propose(internalpb::Request req, google::protobuf::Message* response, Done done) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      queue_.push_back(Proposal{std::move(req), response, std::move(done)});
      return;
    }
  }
  std::move(done)(errors::Stopped());
}

void Node::ReadIndex(Done done) {
  // One member: every acknowledged write was published before its caller heard of it.
  std::move(done)(absl::OkStatus());
}

void Node::WaitCompacted(int64_t rev, Done done) {
  {
    absl::MutexLock lock(&mu_);
    if (kv_->compacted_rev() < rev && !stopping_) {
      compaction_waiters_.push_back(CompactionWaiter{rev, std::move(done)});
      return;
    }
  }
  std::move(done)(absl::OkStatus());
}

void Node::FillHeader(etcdserverpb::ResponseHeader* header) const {
  header->set_cluster_id(cluster_id_);
  header->set_member_id(member_id_);
  header->set_raft_term(raft_term());
}

void Node::ApplyLoop() {
  std::vector<Proposal> proposals;
  std::vector<absl::Status> results;
  for (;;) {
    proposals.clear();
    bool stopping;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](Node* n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(n->mu_) {
            return n->stopping_ || !n->queue_.empty();
          },
          this));
      stopping = stopping_;
      while (!queue_.empty() &&
             (stopping || static_cast<int>(proposals.size()) < options_.max_batch_requests)) {
        proposals.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (stopping) {
      for (Proposal& p : proposals) std::move(p.done)(errors::Stopped());
      return;
    }

    std::unique_ptr<storage::mvcc::ApplyBatch> batch = kv_->NewApplyBatch();
    results.clear();
    bool compacts = false;
    for (Proposal& p : proposals) {
      bool kv_request = p.req.has_put() || p.req.has_delete_range() || p.req.has_txn() ||
                        p.req.has_compaction();
      if (!kv_request && hooks_.apply_other) {
        results.push_back(hooks_.apply_other(*batch, p.req, p.response));
        continue;
      }
      results.push_back(applier_->Apply(*batch, p.req, p.response));
      compacts |= results.back().ok() && p.req.has_compaction();
    }
    batch->SetAppliedIndex(kv_->applied_index() + proposals.size());
    // A write that cannot be made durable must not be acknowledged, and the store cannot
    // go on past it: stop, and let the restart recover from the last durable batch.
    KVD_CHECK_OK(batch->Commit(/*sync=*/true));
    if (hooks_.on_applied) hooks_.on_applied(batch->rev(), batch->events());
    for (size_t i = 0; i < proposals.size(); ++i) std::move(proposals[i].done)(results[i]);
    if (compacts) {
      absl::MutexLock lock(&mu_);
      ++compaction_generation_;
    }
  }
}

void Node::CompactLoop() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](Node* n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(n->mu_) {
            return n->stopping_ || n->kv_->compacted_rev() < n->kv_->compact_rev();
          },
          this));
      if (stopping_) return;
    }
    absl::StatusOr<bool> step = kv_->CompactStep(options_.compaction_step_revisions);
    KVD_CHECK_OK(step.status());
    std::vector<CompactionWaiter> ready;
    {
      absl::MutexLock lock(&mu_);
      int64_t compacted = kv_->compacted_rev();
      std::erase_if(compaction_waiters_, [&](CompactionWaiter& w) {
        if (w.rev > compacted) return false;
        ready.push_back(std::move(w));
        return true;
      });
    }
    for (CompactionWaiter& w : ready) std::move(w.done)(absl::OkStatus());
  }
}

}  // namespace kvd::server
