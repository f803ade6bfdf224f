#include "server/node.h"

#include <pthread.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "api/errors.h"
#include "api/kvdpb/entry.pb.h"
#include "raft/errors.h"
#include "server/cluster/membership.h"
#include "server/cluster/peer_membership.h"
#include "storage/check.h"
#include "storage/snapshot.h"

namespace kvd::server {
namespace {

// meta keys of the replicated state (see storage/engine.h).
constexpr char kMetaClusterId[] = "cluster_id";
constexpr char kMetaConfState[] = "conf_state";
constexpr char kMetaAppliedIndex[] = "applied_index";

std::string BigEndian(uint64_t v) {
  std::string out;
  storage::PutBigEndian64(&out, v);
  return out;
}

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

absl::Status PeerUrlExists() {
  return absl::FailedPreconditionError("etcdserver: Peer URLs already exists");
}
absl::Status MemberNotFound() { return absl::NotFoundError("etcdserver: member not found"); }
absl::Status MemberNotLearner() {
  return absl::FailedPreconditionError("etcdserver: can only promote a learner member");
}
absl::Status LearnerNotReady() {
  return absl::FailedPreconditionError(
      "etcdserver: can only promote a learner member which is in sync with leader");
}
absl::Status NotEnoughStartedMembers() {
  return absl::FailedPreconditionError(
      "etcdserver: re-configuration failed due to not enough started members");
}
absl::Status LeaderTransferTimeout() {
  return absl::UnavailableError("etcdserver: request timed out, leader transfer took too long");
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Start-up

absl::StatusOr<std::unique_ptr<Node>> Node::Open(NodeOptions options) {
  std::unique_ptr<Node> node(new Node(std::move(options)));
  const NodeOptions& o = node->options_;
  std::filesystem::path data_dir(o.data_dir);
  if (absl::Status s = CheckNotEtcdDataDir(data_dir); !s.ok()) return s;

  storage::EngineOptions engine_options;
  engine_options.path = (data_dir / "member" / "kvd").string();
  absl::StatusOr<std::unique_ptr<storage::Engine>> engine = storage::Engine::Open(engine_options);
  if (!engine.ok()) return engine.status();
  node->engine_ = std::move(*engine);
  // A snapshot install cut short by a crash is finished before anything reads the state.
  if (absl::Status s = storage::ResumeSnapshotInstall(*node->engine_); !s.ok()) return s;

  absl::StatusOr<std::unique_ptr<storage::RaftLog>> log =
      storage::RaftLog::Open(node->engine_.get());
  if (!log.ok()) return log.status();
  node->raft_log_ = std::move(*log);
  node->raft_log_->set_plant_no_fsync(o.plant_no_fsync);

  absl::StatusOr<uint64_t> member_id = node->raft_log_->MemberId();
  if (!member_id.ok()) return member_id.status();
  node->member_id_ = *member_id;
  if (node->member_id_ == 0) {
    if (absl::Status s = node->Bootstrap(); !s.ok()) return s;
  }

  absl::StatusOr<std::unique_ptr<storage::mvcc::KvStore>> kv =
      storage::mvcc::KvStore::Open(node->engine_.get());
  if (!kv.ok()) return kv.status();
  node->kv_ = std::move(*kv);

  absl::StatusOr<std::string> cluster_id = node->engine_->Get(storage::Cf::kMeta, kMetaClusterId);
  if (!cluster_id.ok() || cluster_id->size() != 8) {
    return absl::DataLossError("the store has no valid cluster id");
  }
  node->cluster_id_ = storage::GetBigEndian64(cluster_id->data());
  absl::StatusOr<std::map<uint64_t, etcdserverpb::Member>> members =
      MemberStore::Load(*node->engine_);
  if (!members.ok()) return members.status();
  {
    absl::MutexLock lock(&node->members_mu_);
    node->members_ = std::move(*members);
    auto self = node->members_.find(node->member_id_);
    node->published_ = self != node->members_.end() && self->second.name() == node->options_.name &&
                       std::vector<std::string>(self->second.clienturls().begin(),
                                                self->second.clienturls().end()) ==
                           node->options_.advertise_client_urls;
  }

  // Request ids must never repeat, even across restarts: start from the clock.
  node->next_request_id_.store(static_cast<uint64_t>(absl::ToUnixMicros(absl::Now())) << 8);

  TransportOptions transport_options;
  transport_options.local_id = node->member_id_;
  transport_options.cluster_id = node->cluster_id_;
  transport_options.scratch_dir = (data_dir / "member" / "snap-scratch").string();
  // Snapshots half made or half received before a restart are of no use now (an
  // interrupted install was finished above, from its own files).
  std::error_code ec;
  std::filesystem::remove_all(transport_options.scratch_dir, ec);
  std::filesystem::create_directories(transport_options.scratch_dir);
  Node* n = node.get();
  transport_options.on_unreachable = [n](uint64_t id) {
    absl::MutexLock lock(&n->mu_);
    n->unreachable_reports_.push_back(id);
  };
  transport_options.on_snapshot_sent = [n](uint64_t id, bool ok) {
    absl::MutexLock lock(&n->mu_);
    n->snapshot_reports_.emplace_back(id, ok);
  };
  KVD_CHECK(node->options_.transport_factory != nullptr);
  node->transport_ = node->options_.transport_factory(std::move(transport_options), n, n);
  node->membership_service_ =
      std::make_unique<PeerMembershipService>(node->cluster_id_, [n] { return n->Members(); });
  for (const etcdserverpb::Member& m : node->Members()) {
    if (m.id() == node->member_id_) continue;
    node->transport_->AddPeer(m.id(), {m.peerurls().begin(), m.peerurls().end()});
  }
  return node;
}

absl::Status Node::Bootstrap() {
  const NodeOptions& o = options_;
  absl::StatusOr<std::map<std::string, std::vector<std::string>>> initial =
      ParseInitialCluster(o.initial_cluster);
  if (!initial.ok()) return initial.status();
  auto self = initial->find(o.name);
  if (self == initial->end()) {
    return absl::InvalidArgumentError(absl::StrCat("couldn't find local name \"", o.name,
                                                   "\" in the initial cluster configuration"));
  }
  if (Sorted(o.initial_advertise_peer_urls) != self->second) {
    return absl::InvalidArgumentError(
        absl::StrCat("--initial-cluster has ", o.name, "=", absl::StrJoin(self->second, ","),
                     " but missing from --initial-advertise-peer-urls=",
                     absl::StrJoin(o.initial_advertise_peer_urls, ",")));
  }
  if (o.initial_cluster_state == "existing") return Join(self->second, *initial);

  std::vector<etcdserverpb::Member> members;
  std::vector<uint64_t> ids;
  raftpb::ConfState conf_state;
  for (const auto& [name, urls] : *initial) {
    etcdserverpb::Member m;
    m.set_id(ComputeMemberId(urls, o.initial_cluster_token, std::nullopt));
    m.set_name(name);
    for (const std::string& url : urls) m.add_peerurls(url);
    // No client URLs: every member writes the same state; each publishes its own.
    for (uint64_t id : ids) {
      if (id == m.id()) return absl::InvalidArgumentError("two initial members have one ID");
    }
    ids.push_back(m.id());
    conf_state.add_voters(m.id());
    members.push_back(m);
  }
  member_id_ = ComputeMemberId(self->second, o.initial_cluster_token, std::nullopt);
  uint64_t cluster_id = ComputeClusterId(ids);

  // Every initial member writes the same state at index 1, term 1: their logs and stores
  // agree from the start, and raft begins with the full configuration.
  if (absl::Status s = MemberStore::PutDirect(*engine_, members); !s.ok()) return s;
  rocksdb::WriteBatch meta;
  meta.Put(engine_->cf(storage::Cf::kMeta), kMetaClusterId, BigEndian(cluster_id));
  meta.Put(engine_->cf(storage::Cf::kMeta), kMetaConfState, conf_state.SerializeAsString());
  meta.Put(engine_->cf(storage::Cf::kMeta), kMetaAppliedIndex, BigEndian(1));
  if (absl::Status s = engine_->Write(&meta, /*sync=*/true); !s.ok()) return s;
  if (absl::Status s = raft_log_->Bootstrap(1, 1, conf_state); !s.ok()) return s;
  // Last: a crash before this point leaves a member that bootstraps again, identically.
  return raft_log_->SetMemberId(member_id_);
}

absl::Status Node::Join(const std::vector<std::string>& self_urls,
                        const std::map<std::string, std::vector<std::string>>& initial) {
  // Ask the running members who we are: MemberAdd chose our ID.
  std::vector<std::string> peers;
  for (const auto& [name, urls] : initial) {
    if (name != options_.name) peers.insert(peers.end(), urls.begin(), urls.end());
  }
  absl::StatusOr<peerpb::MembersResponse> cluster = FetchMembership(peers, absl::Seconds(5));
  if (!cluster.ok()) return cluster.status();
  std::vector<etcdserverpb::Member> members(cluster->members().begin(), cluster->members().end());
  for (etcdserverpb::Member& m : members) {
    if (Sorted({m.peerurls().begin(), m.peerurls().end()}) == self_urls) member_id_ = m.id();
  }
  if (member_id_ == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("member ", options_.name, " (peer URLs ", absl::StrJoin(self_urls, ","),
                     ") is not in the cluster's membership; add it first (etcdctl member add)"));
  }
  // The state itself arrives from the leader as a snapshot; until then the member only
  // needs to know the cluster and its peers.
  if (absl::Status s = MemberStore::PutDirect(*engine_, members); !s.ok()) return s;
  rocksdb::WriteBatch meta;
  meta.Put(engine_->cf(storage::Cf::kMeta), kMetaClusterId, BigEndian(cluster->cluster_id()));
  if (absl::Status s = engine_->Write(&meta, /*sync=*/true); !s.ok()) return s;
  return raft_log_->SetMemberId(member_id_);
}

void Node::Start(NodeHooks hooks) {
  KVD_CHECK(raft_thread_.get_id() == std::thread::id());
  hooks_ = std::move(hooks);
  LeaseExists lease_exists = hooks_.lease_exists;
  if (!lease_exists) lease_exists = [](int64_t) { return false; };
  applier_ = std::make_unique<Applier>(std::move(lease_exists));

  // The applied state is flushed by RocksDB on its own schedule, while the commit index
  // travels in the (unsynced) hard state: a crash could leave the applied index ahead of
  // the persisted commit index. Every applied entry was committed, so say so first.
  if (absl::StatusOr<raft::PersistedState> persisted = raft_log_->InitialState();
      persisted.ok() && persisted->hard_state.commit() < kv_->applied_index() &&
      kv_->applied_index() <= raft_log_->LastIndex().value_or(0)) {
    raft::Ready rd;
    rd.hard_state = persisted->hard_state;
    rd.hard_state->set_commit(kv_->applied_index());
    rd.must_sync = true;
    KVD_CHECK_OK(raft_log_->Persist(rd));
  }

  raft::Config config;
  config.id = member_id_;
  config.heartbeat_tick = 1;
  config.election_tick =
      std::max<int>(2, static_cast<int>(options_.election_timeout / options_.heartbeat));
  config.storage = raft_log_.get();
  config.applied = kv_->applied_index();
  config.max_size_per_msg = 1 << 20;
  config.max_committed_size_per_ready = 8 << 20;
  config.max_uncommitted_entries_size = 1 << 30;
  config.max_inflight_msgs = 256;
  config.check_quorum = true;
  config.pre_vote = true;
  config.seed = member_id_ ^ static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  absl::StatusOr<std::unique_ptr<raft::RawNode>> raw = raft::RawNode::Create(config);
  KVD_CHECK_OK(raw.status());
  raw_ = std::move(*raw);

  absl::StatusOr<raft::PersistedState> initial = raft_log_->InitialState();
  KVD_CHECK_OK(initial.status());
  conf_history_.emplace_back(kv_->applied_index(), initial->conf_state);

  // As etcd does: a sole voter campaigns at once; otherwise the election clock starts
  // nearly expired, so a new or restarted cluster elects a leader within about one
  // randomized timeout instead of two (pre-vote keeps this from disrupting a live leader).
  if (initial->conf_state.voters_size() == 1 && initial->conf_state.voters(0) == member_id_) {
    raw_->Campaign().IgnoreError();
  } else {
    for (int i = 0; i + 1 < config.election_tick; ++i) raw_->Tick();
  }

  raft_thread_ = std::thread([this] { RaftLoop(); });
  apply_thread_ = std::thread([this] { ApplyLoop(); });
  compact_thread_ = std::thread([this] { CompactLoop(); });
  // Names for top -H, perf and /proc/<pid>/task/*/comm (at most 15 characters).
  pthread_setname_np(raft_thread_.native_handle(), "kvd-raft");
  pthread_setname_np(apply_thread_.native_handle(), "kvd-apply");
  pthread_setname_np(compact_thread_.native_handle(), "kvd-compact");
}

Node::~Node() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (transport_) transport_->Stop();
  if (raft_thread_.joinable()) raft_thread_.join();
  if (apply_thread_.joinable()) apply_thread_.join();
  if (compact_thread_.joinable()) compact_thread_.join();
  // Answer everyone still waiting.
  std::vector<Done> dones;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, w] : waiters_) dones.push_back(std::move(w.done));
    for (auto& r : reads_waiting_) dones.push_back(std::move(r.done));
    for (auto& [ctx, round] : read_rounds_) {
      for (auto& r : round.reads) dones.push_back(std::move(r.done));
    }
    for (auto* batches : {&reads_ready_, &reads_pending_}) {
      for (auto& batch : *batches) {
        for (auto& r : batch.reads) dones.push_back(std::move(r.done));
      }
    }
    for (auto& c : conf_changes_waiting_) dones.push_back(std::move(c.done));
    for (auto& [id, c] : conf_waiters_) dones.push_back(std::move(c.done));
    for (auto& [target, done] : transfers_) dones.push_back(std::move(done));
    for (auto& [rev, done] : compaction_waiters_) dones.push_back(std::move(done));
    waiters_.clear();
  }
  for (Done& done : dones) std::move(done)(errors::Stopped());
}

// ---------------------------------------------------------------------------------------
// Requests

void Node::Propose(internalpb::Request req, google::protobuf::Message* response, Done done) {
  req.set_id(NextRequestId());
  internalpb::EntryData entry;
  entry.set_member_id(member_id_);
  uint64_t id = req.id();
  *entry.mutable_request() = std::move(req);
  absl::Time deadline = absl::Now() + options_.request_timeout;
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      waiters_.emplace(id, Waiter{response, std::move(done), deadline});
      proposals_.emplace_back(entry.SerializeAsString(), deadline);
      return;
    }
  }
  std::move(done)(errors::Stopped());
}

std::string Node::ReadContext(uint64_t round) const {
  return BigEndian(member_id_) + BigEndian(round);
}

void Node::ReadIndex(Done done) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      reads_waiting_.push_back(
          PendingRead{std::move(done), absl::Now() + options_.request_timeout});
      return;
    }
  }
  std::move(done)(errors::Stopped());
}

void Node::WaitCompacted(int64_t rev, Done done) {
  {
    absl::MutexLock lock(&mu_);
    if (kv_->compacted_rev() < rev && !stopping_) {
      compaction_waiters_.emplace_back(rev, std::move(done));
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

// ---------------------------------------------------------------------------------------
// Membership

std::vector<etcdserverpb::Member> Node::Members() const {
  absl::MutexLock lock(&members_mu_);
  std::vector<etcdserverpb::Member> out;
  for (const auto& [id, m] : members_) out.push_back(m);
  return out;
}

bool Node::is_learner() const {
  absl::MutexLock lock(&members_mu_);
  auto it = members_.find(member_id_);
  return it != members_.end() && it->second.islearner();
}

void Node::ProposeConfChange(raftpb::ConfChange cc, Done done) {
  cc.set_id(NextRequestId());
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      conf_changes_waiting_.push_back(ConfChangeRequest{std::move(cc), std::move(done),
                                                        absl::Now() + options_.request_timeout});
      return;
    }
  }
  std::move(done)(errors::Stopped());
}

void Node::AddMember(std::vector<std::string> peer_urls, bool is_learner,
                     absl::AnyInvocable<void(absl::StatusOr<etcdserverpb::Member>) &&> done) {
  peer_urls = Sorted(std::move(peer_urls));
  if (peer_urls.empty()) {
    std::move(done)(absl::InvalidArgumentError("etcdserver: given member URLs are invalid"));
    return;
  }
  std::vector<etcdserverpb::Member> members = Members();
  int started_voters = 0, voters = 0;
  for (const etcdserverpb::Member& m : members) {
    for (const std::string& url : m.peerurls()) {
      if (std::find(peer_urls.begin(), peer_urls.end(), url) != peer_urls.end()) {
        std::move(done)(PeerUrlExists());
        return;
      }
    }
    if (m.islearner()) continue;
    ++voters;
    if (m.id() == member_id_ || transport_->IsActive(m.id())) ++started_voters;
  }
  // A new voter must not leave the cluster without a quorum of started members.
  if (!is_learner && started_voters < (voters + 1) / 2 + 1) {
    std::move(done)(NotEnoughStartedMembers());
    return;
  }
  etcdserverpb::Member member;
  member.set_id(
      ComputeMemberId(peer_urls, options_.initial_cluster_token, absl::ToUnixSeconds(absl::Now())));
  for (const std::string& url : peer_urls) member.add_peerurls(url);
  member.set_islearner(is_learner);
  raftpb::ConfChange cc;
  cc.set_type(is_learner ? raftpb::CONF_CHANGE_ADD_LEARNER_NODE : raftpb::CONF_CHANGE_ADD_NODE);
  cc.set_node_id(member.id());
  cc.set_context(member.SerializeAsString());
  ProposeConfChange(std::move(cc), [member, done = std::move(done)](absl::Status s) mutable {
    if (!s.ok()) {
      std::move(done)(s);
    } else {
      std::move(done)(member);
    }
  });
}

void Node::RemoveMember(uint64_t id, Done done) {
  std::vector<etcdserverpb::Member> members = Members();
  auto it = std::find_if(members.begin(), members.end(),
                         [id](const etcdserverpb::Member& m) { return m.id() == id; });
  if (it == members.end()) {
    std::move(done)(MemberNotFound());
    return;
  }
  if (!it->islearner()) {
    int voters_after = 0, started_after = 0;
    for (const etcdserverpb::Member& m : members) {
      if (m.islearner() || m.id() == id) continue;
      ++voters_after;
      if (m.id() == member_id_ || transport_->IsActive(m.id())) ++started_after;
    }
    if (started_after < voters_after / 2 + 1) {
      std::move(done)(NotEnoughStartedMembers());
      return;
    }
  }
  raftpb::ConfChange cc;
  cc.set_type(raftpb::CONF_CHANGE_REMOVE_NODE);
  cc.set_node_id(id);
  ProposeConfChange(std::move(cc), std::move(done));
}

void Node::UpdateMember(uint64_t id, std::vector<std::string> peer_urls, Done done) {
  peer_urls = Sorted(std::move(peer_urls));
  std::optional<etcdserverpb::Member> target;
  for (const etcdserverpb::Member& m : Members()) {
    if (m.id() == id) {
      target = m;
      continue;
    }
    for (const std::string& url : m.peerurls()) {
      if (std::find(peer_urls.begin(), peer_urls.end(), url) != peer_urls.end()) {
        std::move(done)(PeerUrlExists());
        return;
      }
    }
  }
  if (!target) {
    std::move(done)(MemberNotFound());
    return;
  }
  target->clear_peerurls();
  for (const std::string& url : peer_urls) target->add_peerurls(url);
  raftpb::ConfChange cc;
  cc.set_type(raftpb::CONF_CHANGE_UPDATE_NODE);
  cc.set_node_id(id);
  cc.set_context(target->SerializeAsString());
  ProposeConfChange(std::move(cc), std::move(done));
}

void Node::PromoteMember(uint64_t id, Done done) {
  std::optional<etcdserverpb::Member> target;
  for (const etcdserverpb::Member& m : Members()) {
    if (m.id() == id) target = m;
  }
  if (!target) {
    std::move(done)(MemberNotFound());
    return;
  }
  if (!target->islearner()) {
    std::move(done)(MemberNotLearner());
    return;
  }
  // The readiness check needs the leader's view of the learner's log.
  raftpb::ConfChange cc;
  cc.set_type(raftpb::CONF_CHANGE_ADD_NODE);
  cc.set_node_id(id);
  target->set_islearner(false);
  cc.set_context(target->SerializeAsString());
  cc.set_id(NextRequestId());
  absl::MutexLock lock(&mu_);
  conf_changes_waiting_.push_back(ConfChangeRequest{
      std::move(cc), std::move(done), absl::Now() + options_.request_timeout, /*promotion=*/true});
}

bool Node::WaitPublished(absl::Duration timeout) const {
  absl::Time deadline = absl::Now() + timeout;
  while (!published_.load()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

void Node::TransferLeadership(uint64_t target, Done done) {
  absl::MutexLock lock(&mu_);
  transfers_.emplace_back(target, std::move(done));
}

// ---------------------------------------------------------------------------------------
// Transport callbacks

void Node::Receive(raftpb::Message msg) {
  absl::MutexLock lock(&mu_);
  inbox_.push_back(std::move(msg));
}

void Node::ReceiveSnapshot(raftpb::Message msg, std::string dir) {
  std::vector<std::string> stale;
  {
    absl::MutexLock lock(&mu_);
    uint64_t index = msg.snapshot().metadata().index();
    // Older received snapshots will never be installed now.
    for (auto it = received_snapshots_.begin(); it != received_snapshots_.end();) {
      if (it->first >= index) break;
      stale.push_back(it->second);
      it = received_snapshots_.erase(it);
    }
    received_snapshots_[index] = std::move(dir);
    inbox_.push_back(std::move(msg));
  }
  for (const std::string& d : stale) {
    std::error_code ec;
    std::filesystem::remove_all(d, ec);
  }
}

absl::Status Node::WriteSnapshotFiles(const raftpb::Message& msg, const std::string& dir) {
  return storage::WriteStateSnapshot(*engine_, dir).status();
}

// ---------------------------------------------------------------------------------------
// The raft thread

void Node::RaftLoop() {
  absl::Time next_tick = absl::Now() + options_.heartbeat;
  std::deque<std::pair<std::string, absl::Time>> retry;  // proposals dropped for no leader
  bool was_leader = false;
  int ticks_since_publish = 10;
  for (;;) {
    std::deque<raftpb::Message> inbox;
    std::deque<std::pair<std::string, absl::Time>> proposals;
    std::vector<PendingRead> reads;
    std::vector<ConfChangeRequest> conf_changes;
    std::deque<std::pair<raftpb::ConfChange, std::shared_ptr<std::optional<raftpb::ConfState>>>>
        conf_applies;
    std::vector<std::pair<uint64_t, bool>> snapshot_reports;
    std::vector<uint64_t> unreachable;
    std::vector<std::pair<uint64_t, Done>> transfers;
    {
      absl::MutexLock lock(&mu_);
      auto work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !inbox_.empty() || !proposals_.empty() ||
               (!reads_waiting_.empty() && !reads_retry_at_tick_) ||
               !conf_changes_waiting_.empty() || !conf_applies_.empty() ||
               !snapshot_reports_.empty() || !unreachable_reports_.empty() || !transfers_.empty();
      };
      mu_.AwaitWithDeadline(absl::Condition(&work), next_tick);
      if (stopping_) return;
      inbox.swap(inbox_);
      proposals.swap(proposals_);
      // Reads that found no leader to ask wait for the next tick.
      if (reads_retry_at_tick_ && absl::Now() >= next_tick) reads_retry_at_tick_ = false;
      if (!reads_retry_at_tick_) reads.swap(reads_waiting_);
      conf_changes.swap(conf_changes_waiting_);
      conf_applies.swap(conf_applies_);
      snapshot_reports.swap(snapshot_reports_);
      unreachable.swap(unreachable_reports_);
      transfers.swap(transfers_);
    }
    absl::Time now = absl::Now();
    if (now >= next_tick) {
      raw_->Tick();
      next_tick = std::max(next_tick + options_.heartbeat, now);
      ExpireWaiters(now);
      // Proposals dropped while there was no leader get another chance every tick.
      for (auto& p : retry) proposals.push_back(std::move(p));
      retry.clear();
      // Announce this member's name and client URLs until the cluster has them: at once
      // when a leader is known, then every few ticks until applied.
      if (!published_.load() && has_leader() && ++ticks_since_publish >= 5) {
        ticks_since_publish = 0;
        internalpb::EntryData publish;
        publish.set_member_id(member_id_);
        etcdserverpb::Member* attrs = publish.mutable_member_attributes();
        attrs->set_id(member_id_);
        attrs->set_name(options_.name);
        for (const std::string& url : options_.advertise_client_urls) attrs->add_clienturls(url);
        raw_->Propose(publish.SerializeAsString()).IgnoreError();
      }
    }
    for (raftpb::Message& m : inbox) raw_->Step(std::move(m)).IgnoreError();
    for (auto [id, ok] : snapshot_reports) raw_->ReportSnapshot(id, ok);
    for (uint64_t id : unreachable) raw_->ReportUnreachable(id);
    for (auto& [cc, result] : conf_applies) {
      raftpb::ConfState cs = raw_->ApplyConfChange(cc);
      absl::MutexLock lock(&mu_);
      *result = cs;
    }
    // Every proposal that arrived since the last round in one message: the leader sends
    // them to each follower in one append (a follower forwards them in one message).
    std::vector<std::string> batch;
    std::vector<absl::Time> batch_deadlines;
    batch.reserve(proposals.size());
    for (auto& [data, deadline] : proposals) {
      if (deadline < now) continue;  // its waiter has expired
      batch.push_back(std::move(data));
      batch_deadlines.push_back(deadline);
    }
    if (!batch.empty() && raft::IsErrProposalDropped(raw_->ProposeBatch(batch))) {
      for (size_t i = 0; i < batch.size(); ++i) {
        retry.emplace_back(std::move(batch[i]), batch_deadlines[i]);
      }
    }
    std::vector<std::pair<Done, absl::Status>> answers;
    for (ConfChangeRequest& c : conf_changes) {
      if (c.promotion) {
        // Only the leader knows how far the learner's log has come (etcd: within 90% of
        // the leader's).
        if (!raft_leader_) {
          answers.emplace_back(std::move(c.done), errors::NotLeader());
          continue;
        }
        raft::Status st = raw_->GetStatus();
        auto learner = st.progress.find(c.cc.node_id());
        uint64_t leader_match = st.progress[member_id_].match;
        if (learner == st.progress.end() || learner->second.match * 10 < leader_match * 9) {
          answers.emplace_back(std::move(c.done), LearnerNotReady());
          continue;
        }
      }
      absl::Status s = raw_->ProposeConfChange(c.cc);
      if (!s.ok()) {
        answers.emplace_back(std::move(c.done),
                             raft::IsErrProposalDropped(s) ? errors::NoLeader() : s);
        continue;
      }
      absl::MutexLock lock(&mu_);
      conf_waiters_.emplace(c.cc.id(), std::move(c));
    }
    for (auto& [target, done] : transfers) {
      if (!raw_->TransferLeader(target).ok()) {
        answers.emplace_back(std::move(done), errors::NotLeader());
        continue;
      }
      absl::MutexLock lock(&mu_);
      transfers_pending_.emplace_back(target, std::move(done), now + options_.request_timeout);
    }
    if (!reads.empty()) {
      // One ReadIndex round for every read that arrived since the last one.
      uint64_t ctx;
      {
        absl::MutexLock lock(&mu_);
        ctx = next_read_ctx_++;
      }
      if (raw_->ReadIndex(ReadContext(ctx)).ok()) {
        absl::MutexLock lock(&mu_);
        read_rounds_[ctx].reads = std::move(reads);
      } else {
        // No leader to ask (an election): try again at the next tick rather than spin.
        absl::MutexLock lock(&mu_);
        for (PendingRead& r : reads) reads_waiting_.push_back(std::move(r));
        reads_retry_at_tick_ = true;
      }
    }
    while (raw_->HasReady()) HandleReady(raw_->GetReady());

    bool leader = is_leader();
    if (leader != was_leader) {
      was_leader = leader;
      if (hooks_.on_leadership) hooks_.on_leadership(leader);
    }
    for (auto& [done, status] : answers) std::move(done)(status);
  }
}

void Node::HandleReady(raft::Ready rd) {
  if (rd.soft_state) {
    raft_leader_ = rd.soft_state->raft_state == raft::StateType::kLeader;
    uint64_t old_leader = leader_.exchange(rd.soft_state->lead);
    if (old_leader != rd.soft_state->lead) {
      // Read rounds sent to the old leader will never be answered: ask again.
      absl::MutexLock lock(&mu_);
      for (auto& [ctx, round] : read_rounds_) {
        for (PendingRead& r : round.reads) reads_waiting_.push_back(std::move(r));
      }
      read_rounds_.clear();
    }
    std::vector<Done> transferred;
    {
      absl::MutexLock lock(&mu_);
      std::erase_if(transfers_pending_, [&](auto& t) {
        if (std::get<0>(t) != rd.soft_state->lead) return false;
        transferred.push_back(std::move(std::get<1>(t)));
        return true;
      });
    }
    for (Done& d : transferred) std::move(d)(absl::OkStatus());
  }
  if (rd.hard_state) {
    term_.store(rd.hard_state->term());
    commit_.store(rd.hard_state->commit());
  }
  // A leader sends before its synced write (raft allows it: followers persist meanwhile);
  // a follower or candidate only after it. A Ready with nothing to sync (a new commit
  // index, say) sends after handing its committed entries to the apply thread (or applying
  // them itself): those messages acknowledge no new entry, and Send writes to the socket on
  // this thread.
  if (raft_leader_ && rd.must_sync && !rd.messages.empty()) {
    transport_->Send(std::move(rd.messages));
  }

  std::string snapshot_dir;
  if (rd.snapshot && !raft::IsEmptySnapshot(*rd.snapshot)) {
    absl::MutexLock lock(&mu_);
    auto it = received_snapshots_.find(rd.snapshot->metadata().index());
    KVD_CHECK(it != received_snapshots_.end());
    snapshot_dir = it->second;
    received_snapshots_.erase(it);
  }
  // Step 1: one write for the whole Ready; a failure here must not be acknowledged. A
  // Ready with nothing to sync carries at most a new commit index: its committed entries
  // were persisted by earlier Readies, so they go to the apply thread before that write
  // (a crash that loses the commit index but keeps their applied state is repaired at
  // start-up: see Start).
  bool persist_first = rd.must_sync || !snapshot_dir.empty();
  std::deque<ApplyTask> inline_tasks;
  std::vector<ReadBatch> inline_reads;
  if (persist_first) KVD_CHECK_OK(raft_log_->Persist(rd, snapshot_dir));
  if (!raft_leader_ && rd.must_sync && !rd.messages.empty()) {
    transport_->Send(std::move(rd.messages));
  }

  {
    absl::MutexLock lock(&mu_);
    for (const raft::ReadState& rs : rd.read_states) {
      if (rs.request_ctx.size() != 16 ||
          storage::GetBigEndian64(rs.request_ctx.data()) != member_id_) {
        continue;
      }
      // The index serves the reads of this round and of every earlier one still waiting
      // (their reads arrived before this round was asked for; an earlier round's answer
      // may have been lost).
      auto end = read_rounds_.upper_bound(storage::GetBigEndian64(rs.request_ctx.data() + 8));
      for (auto it = read_rounds_.begin(); it != end; ++it) {
        it->second.index = rs.index;
        reads_ready_.push_back(std::move(it->second));
      }
      read_rounds_.erase(read_rounds_.begin(), end);
    }
    if (!snapshot_dir.empty() || !rd.committed_entries.empty()) {
      ApplyTask task;
      if (!snapshot_dir.empty()) {
        task.snapshot = std::move(*rd.snapshot);
        task.snapshot_dir = std::move(snapshot_dir);
      }
      task.entries = std::move(rd.committed_entries);
      apply_queue_.push_back(std::move(task));
    }
    // With the apply thread idle and nothing queued before them, a few entries are applied
    // right here: waking the apply thread would cost a thread hand-off on their path.
    if (!apply_busy_ && apply_queue_.size() == 1 && CanApplyInline(apply_queue_.front())) {
      inline_tasks.swap(apply_queue_);
      inline_reads.swap(reads_ready_);
      apply_busy_ = true;
    }
  }
  if (!persist_first) KVD_CHECK_OK(raft_log_->Persist(rd));
  if (!rd.must_sync && !rd.messages.empty()) transport_->Send(std::move(rd.messages));
  if (!inline_tasks.empty()) {
    ApplyTasks(inline_tasks, std::move(inline_reads));
    absl::MutexLock lock(&mu_);
    apply_busy_ = false;
  }
  raw_->Advance();
}

void Node::ExpireWaiters(absl::Time now) {
  std::vector<Done> expired;
  std::vector<Done> transfer_expired;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (it->second.deadline > now) {
        ++it;
        continue;
      }
      expired.push_back(std::move(it->second.done));
      waiters_.erase(it++);
    }
    for (auto it = conf_waiters_.begin(); it != conf_waiters_.end();) {
      if (it->second.deadline > now) {
        ++it;
        continue;
      }
      expired.push_back(std::move(it->second.done));
      conf_waiters_.erase(it++);
    }
    auto expire_reads = [&](std::vector<PendingRead>& reads) {
      std::erase_if(reads, [&](PendingRead& r) {
        if (r.deadline > now) return false;
        expired.push_back(std::move(r.done));
        return true;
      });
    };
    expire_reads(reads_waiting_);
    for (auto& [ctx, round] : read_rounds_) expire_reads(round.reads);
    std::erase_if(transfers_pending_, [&](auto& t) {
      if (std::get<2>(t) > now) return false;
      transfer_expired.push_back(std::move(std::get<1>(t)));
      return true;
    });
  }
  for (Done& d : expired) std::move(d)(errors::Timeout());
  for (Done& d : transfer_expired) std::move(d)(LeaderTransferTimeout());
}

// ---------------------------------------------------------------------------------------
// The apply thread

void Node::ApplyLoop() {
  for (;;) {
    std::deque<ApplyTask> tasks;
    std::vector<ReadBatch> reads;
    {
      absl::MutexLock lock(&mu_);
      auto work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || (!apply_busy_ && (!apply_queue_.empty() || !reads_ready_.empty()));
      };
      mu_.Await(absl::Condition(&work));
      if (stopping_) return;
      tasks.swap(apply_queue_);
      reads.swap(reads_ready_);
      apply_busy_ = true;
    }
    ApplyTasks(tasks, std::move(reads));
    absl::MutexLock lock(&mu_);
    apply_busy_ = false;
  }
}

bool Node::CanApplyInline(const ApplyTask& task) {
  // Small batches only (the raft thread stalls meanwhile), and never a snapshot or a
  // membership change: applying one waits for the raft thread.
  if (task.snapshot || task.entries.size() > kMaxInlineApplyEntries) return false;
  return std::none_of(task.entries.begin(), task.entries.end(), [](const raftpb::Entry& e) {
    return e.type() == raftpb::ENTRY_CONF_CHANGE;
  });
}

void Node::ApplyTasks(std::deque<ApplyTask>& tasks, std::vector<ReadBatch> reads) {
  for (ApplyTask& task : tasks) ApplyTaskNow(task);

  for (ReadBatch& b : reads) reads_pending_.push_back(std::move(b));
  uint64_t applied = kv_->applied_index();
  std::vector<Done> ready;
  std::erase_if(reads_pending_, [&](ReadBatch& b) {
    if (b.index > applied) return false;
    for (PendingRead& r : b.reads) ready.push_back(std::move(r.done));
    return true;
  });
  for (Done& d : ready) std::move(d)(absl::OkStatus());
}

void Node::ApplyTaskNow(ApplyTask& task) {
  if (task.snapshot) {
    uint64_t index = task.snapshot->metadata().index();
    if (index > kv_->applied_index()) {
      absl::MutexLock install_lock(&install_mu_);
      // raft has already moved the log past this index: without the state the member
      // cannot go on (a restart resumes the install from the same files).
      KVD_CHECK_OK(storage::InstallStateSnapshot(*engine_, task.snapshot_dir));
      KVD_CHECK_OK(kv_->Reload());
      if (hooks_.on_snapshot_installed) hooks_.on_snapshot_installed();
      std::fprintf(stderr, "kvd: installed snapshot at index %llu (state applied to %llu)\n",
                   static_cast<unsigned long long>(index),
                   static_cast<unsigned long long>(kv_->applied_index()));
      absl::StatusOr<std::map<uint64_t, etcdserverpb::Member>> members =
          MemberStore::Load(*engine_);
      KVD_CHECK_OK(members.status());
      absl::MutexLock lock(&members_mu_);
      members_ = std::move(*members);
      for (const auto& [id, m] : members_) {
        if (id != member_id_) transport_->AddPeer(id, {m.peerurls().begin(), m.peerurls().end()});
      }
    } else {
      std::error_code ec;
      std::filesystem::remove_all(task.snapshot_dir, ec);
    }
  }
  if (task.entries.empty()) return;

  uint64_t applied = kv_->applied_index();
  std::unique_ptr<storage::mvcc::ApplyBatch> batch = kv_->NewApplyBatch();
  std::vector<std::pair<Done, absl::Status>> answers;
  for (const raftpb::Entry& e : task.entries) {
    bool state_applied = e.index() <= applied;
    if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
      ApplyConfChangeEntry(*batch, e, state_applied);
      continue;
    }
    if (e.data().empty() || state_applied) continue;  // a new leader's empty entry
    internalpb::EntryData data;
    KVD_CHECK(data.ParseFromString(e.data()));
    if (data.has_member_attributes()) {
      const etcdserverpb::Member& attrs = data.member_attributes();
      absl::MutexLock lock(&members_mu_);
      auto it = members_.find(attrs.id());
      if (it == members_.end()) continue;
      it->second.set_name(attrs.name());
      *it->second.mutable_clienturls() = attrs.clienturls();
      MemberStore::Put(*batch, it->second);
      if (attrs.id() == member_id_) published_ = true;
      continue;
    }
    const internalpb::Request& req = data.request();
    std::optional<Waiter> waiter;
    if (data.member_id() == member_id_) {
      absl::MutexLock lock(&mu_);
      auto it = waiters_.find(req.id());
      if (it != waiters_.end()) {
        waiter = std::move(it->second);
        waiters_.erase(it);
      }
    }
    google::protobuf::Message* response = waiter ? waiter->response : nullptr;
    bool kv_request =
        req.has_put() || req.has_delete_range() || req.has_txn() || req.has_compaction();
    absl::Status status = (!kv_request && hooks_.apply_other)
                              ? hooks_.apply_other(*batch, req, response)
                              : applier_->Apply(*batch, req, response);
    if (waiter) answers.emplace_back(std::move(waiter->done), status);
  }
  uint64_t last = task.entries.back().index();
  batch->SetAppliedIndex(std::max(applied, last));
  // Unsynced: the synced raft log replays whatever a crash loses.
  KVD_CHECK_OK(batch->Commit(/*sync=*/false));
  if (hooks_.on_applied) hooks_.on_applied(batch->rev(), batch->events());
  for (auto& [done, status] : answers) std::move(done)(status);

  // Log compaction: keep catch_up entries behind the applied index for slow followers, and
  // every entry the store on disk has not absorbed yet. The applied state reaches the disk
  // only with a memtable flush (it skips the WAL: storage/engine.h), so a flush is started
  // first, and the log is compacted up to what it covered once it is done.
  uint64_t catch_up = std::min(options_.catch_up_entries, options_.snapshot_count);
  uint64_t first = raft_log_->first_index();
  uint64_t applied_now = kv_->applied_index();
  if (applied_now > first + options_.snapshot_count + catch_up) {
    if (flush_covers_ == 0) {
      KVD_CHECK_OK(engine_->StartFlush());
      flush_covers_ = applied_now;
      return;
    }
    if (!engine_->FlushDone()) return;
    uint64_t compact_to = std::min(flush_covers_, applied_now - catch_up);
    flush_covers_ = 0;
    std::optional<raftpb::ConfState> cs;
    for (const auto& [index, state] : conf_history_) {
      if (index <= compact_to) cs = state;
    }
    if (cs) {
      KVD_CHECK_OK(raft_log_->Compact(compact_to, *cs));
      // Forget the history before compact_to but keep the membership that holds there:
      // the next compaction needs it.
      std::erase_if(conf_history_, [&](const auto& h) { return h.first <= compact_to; });
      conf_history_.emplace(conf_history_.begin(), compact_to, *std::move(cs));
    }
  }
}

void Node::ApplyConfChangeEntry(storage::mvcc::ApplyBatch& batch, const raftpb::Entry& entry,
                                bool state_applied) {
  raftpb::ConfChange cc;
  KVD_CHECK(cc.ParseFromString(entry.data()));
  // Raft's own view of the configuration changes on the raft thread.
  auto result = std::make_shared<std::optional<raftpb::ConfState>>();
  {
    absl::MutexLock lock(&mu_);
    conf_applies_.emplace_back(cc, result);
    auto done = [&]()
                    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return result->has_value() || stopping_; };
    mu_.Await(absl::Condition(&done));
    if (!result->has_value()) return;  // stopping
  }
  raftpb::ConfState cs = **result;
  conf_history_.emplace_back(entry.index(), cs);
  if (!state_applied) {
    etcdserverpb::Member member;
    if (!cc.context().empty()) KVD_CHECK(member.ParseFromString(cc.context()));
    absl::MutexLock lock(&members_mu_);
    switch (cc.type()) {
      case raftpb::CONF_CHANGE_ADD_NODE:
      case raftpb::CONF_CHANGE_ADD_LEARNER_NODE:
      case raftpb::CONF_CHANGE_UPDATE_NODE: {
        auto it = members_.find(cc.node_id());
        if (it != members_.end()) {
          // Promotion or new URLs: keep the name and client URLs the member published.
          member.set_name(it->second.name());
          *member.mutable_clienturls() = it->second.clienturls();
          if (cc.type() == raftpb::CONF_CHANGE_UPDATE_NODE) {
            member.set_islearner(it->second.islearner());
          }
        }
        members_[cc.node_id()] = member;
        MemberStore::Put(batch, member);
        if (cc.node_id() != member_id_) {
          transport_->AddPeer(cc.node_id(), {member.peerurls().begin(), member.peerurls().end()});
        }
        break;
      }
      case raftpb::CONF_CHANGE_REMOVE_NODE:
        members_.erase(cc.node_id());
        MemberStore::Remove(batch, cc.node_id());
        if (cc.node_id() != member_id_) transport_->RemovePeer(cc.node_id());
        break;
      default:
        break;
    }
    batch.PutAux(storage::Cf::kMeta, kMetaConfState, cs.SerializeAsString());
  }
  Done done;
  {
    absl::MutexLock lock(&mu_);
    auto it = conf_waiters_.find(cc.id());
    if (it != conf_waiters_.end()) {
      done = std::move(it->second.done);
      conf_waiters_.erase(it);
    }
  }
  if (done) std::move(done)(absl::OkStatus());
}

// ---------------------------------------------------------------------------------------
// The compactor

void Node::CompactLoop() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      auto work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || kv_->compacted_rev() < kv_->compact_rev();
      };
      // The compact revision moves without touching mu_: look again now and then.
      mu_.AwaitWithTimeout(absl::Condition(&work), absl::Milliseconds(100));
      if (stopping_) return;
      if (kv_->compacted_rev() >= kv_->compact_rev()) continue;
    }
    absl::Time step_start = absl::Now();
    bool caught_up;
    {
      absl::MutexLock install_lock(&install_mu_);
      absl::StatusOr<bool> step = kv_->CompactStep(options_.compaction_step_revisions);
      KVD_CHECK_OK(step.status());
      caught_up = *step;
    }
    absl::Duration step_time = absl::Now() - step_start;
    std::vector<Done> ready;
    {
      absl::MutexLock lock(&mu_);
      int64_t compacted = kv_->compacted_rev();
      std::erase_if(compaction_waiters_, [&](auto& w) {
        if (w.first > compacted) return false;
        ready.push_back(std::move(w.second));
        return true;
      });
    }
    for (Done& d : ready) std::move(d)(absl::OkStatus());
    if (!caught_up) {
      // Pace: at most a fifth of a core, and room between steps for the writes they delay
      // (a step's deletions share RocksDB's write queue with the raft log's synced writes).
      absl::MutexLock lock(&mu_);
      auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
      mu_.AwaitWithTimeout(absl::Condition(&stop), std::max(absl::Milliseconds(10), 4 * step_time));
    }
  }
}

}  // namespace kvd::server
