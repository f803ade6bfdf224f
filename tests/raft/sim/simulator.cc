#include "tests/raft/sim/simulator.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "raft/memory_storage.h"
#include "raft/raft.h"
#include "raft/rawnode.h"
#include "raft/util.h"

namespace kvd::raft::sim {
namespace {

// A safety or liveness property failed; carries the description.
struct Violation {
  std::string what;
};

void ThrowOnCheckFailure(const char* file, int line, const char* cond, const char* msg) {
  throw Violation{absl::StrCat("raft invariant ", cond, " ", msg, " at ", file, ":", line)};
}

uint64_t Mix(uint64_t h, uint64_t v) {
  Rng r(h ^ (v * 0xff51afd7ed558ccdULL));
  return r.Next();
}

uint64_t HashBytes(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a.
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

std::string EncodeAppState(uint64_t index, uint64_t hash) {
  return absl::StrFormat("%d:%d", index, hash);
}

std::pair<uint64_t, uint64_t> DecodeAppState(const std::string& s) {
  uint64_t index = 0, hash = 0;
  std::sscanf(s.c_str(), "%" SCNu64 ":%" SCNu64, &index, &hash);
  return {index, hash};
}

struct InFlight {
  uint64_t deliver_at;
  uint64_t seq;
  raftpb::Message msg;
};
struct Later {
  bool operator()(const InFlight& a, const InFlight& b) const {
    return a.deliver_at != b.deliver_at ? a.deliver_at > b.deliver_at : a.seq > b.seq;
  }
};

constexpr uint64_t kUnitsPerTick = 10;

struct Node {
  uint64_t id = 0;
  // Durable: survives crashes.
  std::unique_ptr<MemoryStorage> storage;
  // Volatile: null while crashed and after removal.
  std::unique_ptr<RawNode> raw;
  bool removed = false;
  uint64_t stop_at = 0;  // When removed: the time it stops for good.
  uint64_t tick_period_units = kUnitsPerTick;
  uint64_t next_tick_at = 0;
  // Asynchronous mode: the Ready whose write is in flight, lost if the node crashes.
  std::optional<Ready> pending;
  bool pending_sent = false;
  uint64_t persist_at = 0;
  // The application's state machine: the applied index and a hash of every applied entry.
  uint64_t applied = 0;
  uint64_t state_hash = 0;
  raftpb::ConfState conf;       // Membership as of `applied`.
  uint64_t checked_commit = 0;  // Commit indices up to here were checked.
  // Conf change entries applied to the state machine whose RawNode::ApplyConfChange is
  // still to come (late_conf_apply seeds).
  std::vector<raftpb::Entry> deferred_conf;
  uint64_t deferred_conf_at = 0;
};

class Simulation {
 public:
  explicit Simulation(const SimOptions& opts)
      : opts_(opts), rng_(opts.seed * 0x2545f4914f6cdd1dULL + 7) {}

  SimResult Run() {
    CheckFailureHandler saved = check_failure_handler_for_testing;
    check_failure_handler_for_testing = &ThrowOnCheckFailure;
    try {
      Setup();
      FaultPhase();
      LivenessPhase();
    } catch (const Violation& v) {
      result_.ok = false;
      result_.failure = absl::StrCat(v.what, " (t=", now_ / kUnitsPerTick, " ticks)");
    }
    check_failure_handler_for_testing = saved;
    return result_;
  }

 private:
  // ------------------------------------------------------------------------ setup

  void Setup() {
    // Swarm testing: each seed picks its own configuration.
    pre_vote_ = rng_.OneIn(4) ? false : true;
    check_quorum_ = rng_.OneIn(3) ? false : true;
    election_tick_ = static_cast<int>(rng_.Range(5, 15));
    heartbeat_tick_ = static_cast<int>(rng_.Range(1, 2));
    max_size_per_msg_ = rng_.OneIn(2) ? 0 : rng_.Range(64, 4096);
    max_inflight_ = rng_.Range(1, 32);
    max_uncommitted_ = rng_.OneIn(4) ? rng_.Range(100, 2000) : 0;
    compact_keep_ = rng_.Range(0, 20);
    snapshot_every_ = rng_.OneIn(3) ? 0 : rng_.Range(5, 100);
    persist_delay_max_units_ = rng_.OneIn(2) ? 0 : rng_.Range(1, 2 * kUnitsPerTick);
    max_committed_per_ready_ = rng_.OneIn(3) ? rng_.Range(1, 512) : 0;
    disable_forwarding_ = rng_.OneIn(5);
    clock_skew_ = rng_.OneIn(2);
    leader_churn_ = rng_.OneIn(3);
    late_conf_apply_ = rng_.OneIn(2);
    RandomizeNetwork();
    Trace(absl::StrCat("config pre_vote=", pre_vote_, " check_quorum=", check_quorum_,
                       " election_tick=", election_tick_, " heartbeat_tick=", heartbeat_tick_,
                       " max_size_per_msg=", max_size_per_msg_, " inflight=", max_inflight_,
                       " max_uncommitted=", max_uncommitted_,
                       " persist_delay_max=", persist_delay_max_units_,
                       " max_committed_per_ready=", max_committed_per_ready_,
                       " disable_forwarding=", disable_forwarding_, " clock_skew=", clock_skew_,
                       " leader_churn=", leader_churn_, " late_conf_apply=", late_conf_apply_));
    raftpb::ConfState cs;
    for (int i = 1; i <= opts_.nodes; ++i) cs.add_voters(static_cast<uint64_t>(i));
    raftpb::Snapshot boot;
    boot.mutable_metadata()->set_index(1);
    boot.mutable_metadata()->set_term(1);
    *boot.mutable_metadata()->mutable_conf_state() = cs;
    boot.set_data(EncodeAppState(1, 0));
    applied_.resize(2);
    applied_[1] = {1, 0};
    committed_term_.resize(2);
    committed_term_[1] = 1;
    for (int i = 1; i <= opts_.nodes; ++i) {
      Node& n = nodes_[static_cast<uint64_t>(i)];
      n.id = static_cast<uint64_t>(i);
      n.storage = std::make_unique<MemoryStorage>();
      (void)n.storage->ApplySnapshot(boot);
      Start(n);
    }
    next_id_ = static_cast<uint64_t>(opts_.nodes) + 1;
  }

  void RandomizeNetwork() {
    drop_p_ = rng_.OneIn(3) ? 0.0 : static_cast<double>(rng_.Range(0, 15)) / 100.0;
    dup_p_ = rng_.OneIn(2) ? 0.0 : static_cast<double>(rng_.Range(0, 10)) / 100.0;
    delay_max_units_ = rng_.Range(1, 3 * kUnitsPerTick);
  }

  Config NodeConfig(uint64_t id, uint64_t applied) {
    Config c;
    c.id = id;
    c.election_tick = election_tick_;
    c.heartbeat_tick = heartbeat_tick_;
    c.storage = nodes_[id].storage.get();
    c.applied = applied;
    c.max_size_per_msg = max_size_per_msg_;
    c.max_inflight_msgs = max_inflight_;
    c.max_uncommitted_entries_size = max_uncommitted_;
    c.check_quorum = check_quorum_;
    if (check_quorum_ && opts_.lease_reads) c.read_only_option = ReadOnlyOption::kLeaseBased;
    c.max_committed_size_per_ready = max_committed_per_ready_;
    c.disable_proposal_forwarding = disable_forwarding_;
    c.pre_vote = pre_vote_;
    c.seed = rng_.Next();
    c.testing = opts_.knobs;
    return c;
  }

  // Starts (or restarts) a node from what its storage holds; volatile state is rebuilt
  // from the snapshot, and committed entries after it are replayed by raft.
  void Start(Node& n) {
    absl::StatusOr<raftpb::Snapshot> snap = n.storage->Snapshot();
    const uint64_t snap_index = snap->metadata().index();
    auto [idx, hash] = DecodeAppState(snap->data());
    n.applied = snap_index;
    n.state_hash = snap_index == 0 ? 0 : hash;
    RAFT_CHECK(idx == snap_index);
    n.conf = snap->metadata().conf_state();
    n.checked_commit = std::max(n.storage->hard_state().commit(), snap_index);
    n.tick_period_units =
        clock_skew_ ? rng_.Range(kUnitsPerTick - 1, kUnitsPerTick + 1) : kUnitsPerTick;
    n.next_tick_at = now_ + rng_.Range(1, n.tick_period_units);
    absl::StatusOr<std::unique_ptr<RawNode>> raw = RawNode::Create(NodeConfig(n.id, snap_index));
    RAFT_CHECK(raw.ok());
    n.raw = *std::move(raw);
    n.pending.reset();
    n.deferred_conf.clear();
  }

  // ---------------------------------------------------------------------- phases

  void FaultPhase() {
    for (int op = 0; op < opts_.ops; ++op) {
      DoRandomOp();
      RunUnits(rng_.Range(1, 3 * kUnitsPerTick));
    }
  }

  void LivenessPhase() {
    Trace("heal: liveness phase");
    faults_ = false;
    churn_.clear();
    blocked_.clear();
    drop_p_ = 0;
    dup_p_ = 0;
    delay_max_units_ = std::min<uint64_t>(delay_max_units_, kUnitsPerTick / 2);
    for (auto& [id, n] : nodes_) {
      if (!n.removed && !n.raw) {
        Start(n);
        Trace(absl::StrCat("restart ", id));
      }
    }
    // A leader must emerge within a bounded time once the network is healthy.
    const uint64_t leader_deadline = now_ + 40ULL * election_tick_ * kUnitsPerTick;
    uint64_t leader = 0;
    while (now_ < leader_deadline) {
      RunUnits(kUnitsPerTick);
      // Servers snapshot periodically; a member added since the last snapshot needs one
      // that includes it.
      uint64_t l = CurrentLeader();
      if (l != 0) SnapshotNode(nodes_[l]);
      leader = StableLeader();
      if (leader != 0) break;
    }
    if (leader == 0) Fail("liveness: no leader within 40 election timeouts after healing");
    // Joining members need a snapshot that includes them.
    SnapshotNode(nodes_[leader]);
    // Every proposal accepted by a live leader commits on every member, unless that
    // leader loses its leadership first (Raft may then drop it; the client retries).
    struct LiveProposal {
      std::string data;
      uint64_t leader = 0;
      uint64_t term = 0;
    };
    std::vector<LiveProposal> props;
    for (int i = 0; i < 3; ++i) props.push_back({absl::StrCat("live-", opts_.seed, "-", i)});
    int retries = 0;
    // The deadline is 40 election timeouts, extended while members still make progress on
    // a backlog (one-entry messages, reordering and a slow disk can make catching up take
    // a while), up to a hard cap.
    uint64_t commit_deadline = now_ + 40ULL * election_tick_ * kUnitsPerTick;
    const uint64_t hard_deadline = now_ + 20000ULL * kUnitsPerTick;
    uint64_t applied_sum = 0;
    for (;;) {
      const uint64_t l = StableLeader();
      bool all = l != 0;
      for (LiveProposal& p : props) {
        if (live_index_.count(p.data) > 0) continue;
        const Node* owner = p.leader == 0 ? nullptr : &nodes_[p.leader];
        const bool owner_leads = owner != nullptr && owner->raw &&
                                 owner->raw->raft().state() == StateType::kLeader &&
                                 owner->raw->raft().term() == p.term;
        if (owner_leads) continue;
        if (p.leader != 0 && ++retries > 10) Fail("liveness: leadership keeps changing");
        p.leader = 0;
        if (l != 0 && nodes_[l].raw->Propose(p.data).ok()) {
          p.leader = l;
          p.term = nodes_[l].raw->raft().term();
        }
      }
      if (all) {
        for (uint64_t id : Members(nodes_[l])) {
          Node& n = nodes_[id];
          if (n.removed) continue;
          for (const LiveProposal& p : props) {
            auto it = live_index_.find(p.data);
            if (!n.raw || it == live_index_.end() || n.applied < it->second) all = false;
          }
        }
      }
      if (all) break;
      // Like a server, the leader snapshots as it goes, so a member that joined after the
      // last snapshot can be caught up with one that includes it.
      if (l != 0) SnapshotNode(nodes_[l]);
      // Progress = anything moving forward: logs growing, commits, applies.
      uint64_t sum = 0;
      for (auto& [id, n] : nodes_) {
        if (!n.raw) continue;
        sum += n.applied + n.raw->raft().log().LastIndex() + n.raw->raft().log().committed();
      }
      if (sum > applied_sum) {
        applied_sum = sum;
        commit_deadline =
            std::min(hard_deadline, std::max(commit_deadline, now_ + 10 * kUnitsPerTick));
      }
      if (now_ > commit_deadline) {
        Fail("liveness: proposals accepted by the leader did not commit on every member");
      }
      RunUnits(kUnitsPerTick);
    }
  }

  // A leader that every live member of its configuration recognises.
  uint64_t StableLeader() {
    for (auto& [id, n] : nodes_) {
      if (!n.raw || n.raw->raft().state() != StateType::kLeader) continue;
      bool ok = true;
      for (uint64_t m : Members(n)) {
        Node& o = nodes_[m];
        if (o.removed) continue;  // Stopped for good; its removal is not applied here yet.
        if (!o.raw || o.raw->raft().lead() != id || o.raw->raft().term() != n.raw->raft().term()) {
          ok = false;
        }
      }
      if (ok) return id;
    }
    return 0;
  }

  std::vector<uint64_t> Members(const Node& n) {
    std::vector<uint64_t> out;
    for (const auto& [id, pr] : n.raw->raft().tracker().progress()) out.push_back(id);
    return out;
  }

  // ----------------------------------------------------------------------- ops

  std::vector<uint64_t> LiveIds() {
    std::vector<uint64_t> out;
    for (auto& [id, n] : nodes_) {
      if (n.raw) out.push_back(id);
    }
    return out;
  }

  uint64_t Pick(const std::vector<uint64_t>& v) {
    return v.empty() ? 0 : v[rng_.Uniform(v.size())];
  }

  uint64_t CurrentLeader() {
    uint64_t best = 0, best_term = 0;
    for (auto& [id, n] : nodes_) {
      if (n.raw && n.raw->raft().state() == StateType::kLeader &&
          n.raw->raft().term() >= best_term) {
        best = id;
        best_term = n.raw->raft().term();
      }
    }
    return best;
  }

  std::vector<uint64_t> SelfProclaimedLeaders() {
    std::vector<uint64_t> out;
    for (auto& [id, n] : nodes_) {
      if (n.raw && n.raw->raft().state() == StateType::kLeader) out.push_back(id);
    }
    return out;
  }

  std::vector<uint64_t> CurrentVoters() {
    uint64_t l = CurrentLeader();
    std::vector<uint64_t> out;
    if (l == 0) return out;
    for (uint64_t v : nodes_[l].raw->raft().tracker().voters()) out.push_back(v);
    return out;
  }

  void DoRandomOp() {
    const uint64_t r = rng_.Uniform(100);
    std::vector<uint64_t> live = LiveIds();
    if (opts_.lease_reads && rng_.OneIn(3)) Read(Pick(SelfProclaimedLeaders()));
    if (r < 40) {
      // Mostly the current leader, but also any node, and any node that still believes
      // it leads (a deposed leader's proposals create divergent uncommitted tails).
      const uint64_t pick = rng_.Uniform(4);
      const uint64_t target = pick == 0   ? Pick(live)
                              : pick == 1 ? Pick(SelfProclaimedLeaders())
                                          : CurrentLeader();
      if (target == 0) return;
      const uint64_t n = rng_.Range(1, 4);
      for (uint64_t i = 0; i < n; ++i) {
        std::string data = absl::StrCat("p", ++prop_seq_, std::string(rng_.Range(0, 40), 'x'));
        absl::Status s = nodes_[target].raw->Propose(data);
        Trace(absl::StrCat("propose ", data.substr(0, 8), " at ", target, ": ",
                           s.ok() ? "ok" : s.ToString()));
      }
    } else if (r < 46) {
      // Reads at nodes that still believe they lead are where stale reads would come from.
      Read(rng_.OneIn(2) ? Pick(live) : Pick(SelfProclaimedLeaders()));
    } else if (r < 51) {
      // Symmetric partition into two random groups.
      std::vector<uint64_t> all = AllActiveIds();
      std::set<uint64_t> side;
      for (uint64_t id : all) {
        if (rng_.OneIn(2)) side.insert(id);
      }
      Heal();
      for (uint64_t a : all) {
        for (uint64_t b : all) {
          if (side.count(a) != side.count(b)) blocked_.insert({a, b});
        }
      }
      Trace(absl::StrCat("partition, side of ", side.size()));
    } else if (r < 54) {
      // Asymmetric: a can no longer send to b (b still reaches a).
      uint64_t a = Pick(live), b = Pick(live);
      if (a != b && a != 0) {
        blocked_.insert({a, b});
        Trace(absl::StrCat("one-way cut ", a, " -> ", b));
      }
    } else if (r < 57) {
      uint64_t l = CurrentLeader();
      if (l != 0) {
        Heal();
        Isolate(l);
        Trace(absl::StrCat("isolate leader ", l));
      }
    } else if (r < 59) {
      // Bridge: two groups that only talk through one node.
      std::vector<uint64_t> all = AllActiveIds();
      if (all.size() >= 3) {
        uint64_t bridge = Pick(all);
        std::set<uint64_t> side;
        for (uint64_t id : all) {
          if (id != bridge && rng_.OneIn(2)) side.insert(id);
        }
        Heal();
        for (uint64_t a : all) {
          for (uint64_t b : all) {
            if (a != bridge && b != bridge && side.count(a) != side.count(b))
              blocked_.insert({a, b});
          }
        }
        Trace(absl::StrCat("bridge through ", bridge));
      }
    } else if (r < 67) {
      Heal();
      Trace("heal network");
    } else if (r < 71) {
      uint64_t v = Pick(live);
      if (v != 0) {
        Crash(nodes_[v]);
      }
    } else if (r < 77) {
      for (auto& [id, n] : nodes_) {
        if (!n.removed && !n.raw) {
          Start(n);
          Trace(absl::StrCat("restart ", id));
          break;
        }
      }
    } else if (r < 81) {
      uint64_t v = Pick(live);
      if (v != 0) SnapshotNode(nodes_[v]);
    } else if (r < 84) {
      uint64_t l = CurrentLeader();
      std::vector<uint64_t> voters = CurrentVoters();
      uint64_t t = Pick(voters);
      if (l != 0 && t != 0) {
        // Sometimes ask through a follower: it forwards to the leader.
        uint64_t via = rng_.OneIn(3) ? Pick(live) : l;
        absl::Status s = nodes_[via].raw->TransferLeader(t);
        ++result_.transfers;
        Trace(absl::StrCat("transfer leader to ", t, " via ", via, ": ",
                           s.ok() ? "ok" : s.ToString()));
      }
    } else if (r < 89) {
      ConfChangeOp();
    } else if (r < 92) {
      RandomizeNetwork();
      Trace(absl::StrCat("network drop=", drop_p_, " dup=", dup_p_, " delay<=", delay_max_units_));
    } else {
      // Quiet period.
      RunUnits(rng_.Range(1, 5) * kUnitsPerTick);
    }
  }

  void Read(uint64_t target) {
    if (target == 0) return;
    std::string ctx = absl::StrCat("r", ++read_seq_);
    read_floor_[ctx] = committed_term_.size() - 1;
    absl::Status s = nodes_[target].raw->ReadIndex(ctx);
    Trace(absl::StrCat("read ", ctx, " at ", target, " floor=", read_floor_[ctx], ": ",
                       s.ok() ? "ok" : s.ToString()));
  }

  void ConfChangeOp() {
    uint64_t l = CurrentLeader();
    if (l == 0) return;
    const Raft& r = nodes_[l].raw->raft();
    raftpb::ConfChange cc;
    const uint64_t kind = rng_.Uniform(3);
    if (kind == 0 && nodes_.size() < 9) {
      // A brand-new member joins as a learner (ids are never reused).
      const uint64_t id = next_id_++;
      Node& n = nodes_[id];
      n.id = id;
      n.storage = std::make_unique<MemoryStorage>();
      Start(n);
      cc.set_type(raftpb::CONF_CHANGE_ADD_LEARNER_NODE);
      cc.set_node_id(id);
    } else if (kind == 1 && !r.tracker().learners().empty()) {
      std::vector<uint64_t> ls(r.tracker().learners().begin(), r.tracker().learners().end());
      cc.set_type(raftpb::CONF_CHANGE_ADD_NODE);
      cc.set_node_id(Pick(ls));
    } else if (kind == 2 && r.tracker().voters().size() > 2) {
      std::vector<uint64_t> vs(r.tracker().voters().begin(), r.tracker().voters().end());
      cc.set_type(raftpb::CONF_CHANGE_REMOVE_NODE);
      cc.set_node_id(Pick(vs));
    } else {
      return;
    }
    absl::Status s;
    if (rng_.OneIn(2)) {
      s = nodes_[l].raw->ProposeConfChange(cc);
    } else {
      raftpb::ConfChangeV2 v2;
      raftpb::ConfChangeSingle* one = v2.add_changes();
      one->set_type(cc.type());
      one->set_node_id(cc.node_id());
      s = nodes_[l].raw->ProposeConfChange(v2);
    }
    Trace(absl::StrCat("conf change ", raftpb::ConfChangeType_Name(cc.type()), " ", cc.node_id(),
                       " at ", l, ": ", s.ok() ? "ok" : s.ToString()));
  }

  std::vector<uint64_t> AllActiveIds() {
    std::vector<uint64_t> out;
    for (auto& [id, n] : nodes_) {
      if (!n.removed) out.push_back(id);
    }
    return out;
  }

  void Heal() { blocked_.clear(); }

  void Isolate(uint64_t id) {
    for (auto& [other, n] : nodes_) {
      if (other == id) continue;
      blocked_.insert({id, other});
      blocked_.insert({other, id});
    }
  }

  void Crash(Node& n) {
    Trace(absl::StrCat("crash ", n.id));
    n.raw.reset();
    n.pending.reset();
    n.deferred_conf.clear();
    ++result_.crashes;
  }

  void SnapshotNode(Node& n) {
    if (!n.raw || n.applied <= n.storage->Snapshot()->metadata().index()) return;
    // The snapshot's ConfState must be the one as of n.applied.
    if (!n.deferred_conf.empty()) return;
    absl::StatusOr<raftpb::Snapshot> s =
        n.storage->CreateSnapshot(n.applied, &n.conf, EncodeAppState(n.applied, n.state_hash));
    RAFT_CHECK(s.ok());
    const uint64_t first = *n.storage->FirstIndex();
    const uint64_t keep = compact_keep_;
    if (n.applied > keep && n.applied - keep > first) (void)n.storage->Compact(n.applied - keep);
    Trace(absl::StrCat("snapshot ", n.id, " at ", n.applied, " first=", *n.storage->FirstIndex()));
  }

  // ------------------------------------------------------------------ the world

  void RunUnits(uint64_t units) {
    for (uint64_t u = 0; u < units; ++u) {
      ++now_;
      Deliver();
      if (now_ % kUnitsPerTick == 0) ++result_.ticks;
      for (size_t i = 0; i < churn_.size();) {
        if (churn_[i].first > now_ || !faults_) {
          ++i;
          continue;
        }
        Trace(absl::StrCat("churn: isolate ", churn_[i].second));
        if (rng_.OneIn(3)) {
          Crash(nodes_[churn_[i].second]);
        } else {
          Heal();
          Isolate(churn_[i].second);
        }
        churn_.erase(churn_.begin() + static_cast<std::ptrdiff_t>(i));
      }
      // Each node's clock has its own phase and, in skewed seeds, runs up to 10% fast or
      // slow. (Much larger skew can starve a slow node without pre-vote: a faster node
      // with a shorter log keeps resetting its timer; pre-vote is the cure.)
      for (auto& [id, n] : nodes_) {
        if (now_ < n.next_tick_at) continue;
        n.next_tick_at = now_ + n.tick_period_units;
        if (n.raw) n.raw->Tick();
      }
      for (auto& [id, n] : nodes_) {
        if (n.raw && n.pending && now_ >= n.persist_at) {
          Ready rd = *std::move(n.pending);
          n.pending.reset();
          FinishReady(n, std::move(rd), n.pending_sent);
        }
        if (n.raw && !n.deferred_conf.empty() && now_ >= n.deferred_conf_at) {
          ApplyDeferredConfChanges(n);
        }
        for (int i = 0; i < 8 && n.raw && !n.pending && n.raw->HasReady(); ++i) StartReady(n);
        if (n.removed && n.raw && now_ >= n.stop_at) {
          n.raw.reset();
          n.pending.reset();
        }
      }
      CheckOneLeaderPerTerm();
    }
  }

  void Deliver() {
    while (!net_.empty() && net_.top().deliver_at <= now_) {
      InFlight f = net_.top();
      net_.pop();
      const uint64_t from = f.msg.from(), to = f.msg.to();
      Node& dst = nodes_[to];
      const bool is_snap = f.msg.type() == raftpb::MSG_SNAP;
      if (!dst.raw || blocked_.count({from, to}) > 0) {
        if (is_snap && nodes_[from].raw) nodes_[from].raw->ReportSnapshot(to, false);
        if (nodes_[from].raw && rng_.OneIn(4)) nodes_[from].raw->ReportUnreachable(to);
        continue;
      }
      ++result_.messages;
      (void)dst.raw->Step(std::move(f.msg));
      if (is_snap && nodes_[from].raw) nodes_[from].raw->ReportSnapshot(to, true);
    }
  }

  void Send(raftpb::Message m) {
    if (nodes_.count(m.to()) == 0) return;
    if (rng_.Chance(drop_p_)) {
      if (m.type() == raftpb::MSG_SNAP && nodes_[m.from()].raw) {
        nodes_[m.from()].raw->ReportSnapshot(m.to(), false);
      }
      return;
    }
    if (rng_.Chance(dup_p_)) {
      net_.push(InFlight{now_ + rng_.Range(1, delay_max_units_), ++seq_, m});
    }
    net_.push(InFlight{now_ + rng_.Range(1, delay_max_units_), ++seq_, std::move(m)});
  }

  // Takes a Ready. In synchronous mode it is handled at once; in asynchronous mode its
  // persistence completes later (as with a real fsync) while the node keeps receiving
  // messages and ticks, and a leader sends its messages before its own write completes.
  void StartReady(Node& n) {
    Ready rd = n.raw->GetReady();
    const bool leader = n.raw->raft().state() == StateType::kLeader;
    if (rd.soft_state && rd.soft_state->raft_state == StateType::kLeader) OnNewLeader(n);
    if (faults_ && rng_.OneIn(2000)) {
      // Crash in the middle of handling a Ready: nothing of it was persisted. A leader may
      // already have sent its messages (allowed by the contract).
      if (leader && rng_.OneIn(2)) {
        for (auto& m : rd.messages) Send(std::move(m));
      }
      Trace(absl::StrCat("crash ", n.id, " before persisting a Ready"));
      n.raw.reset();
      n.pending.reset();
      n.deferred_conf.clear();
      ++result_.crashes;
      return;
    }
    if (persist_delay_max_units_ == 0) {
      FinishReady(n, std::move(rd), false);
      return;
    }
    bool sent = false;
    if (leader) {
      for (auto& m : rd.messages) Send(std::move(m));
      rd.messages.clear();
      sent = true;
    }
    n.pending = std::move(rd);
    n.pending_sent = sent;
    n.persist_at = now_ + rng_.Range(1, persist_delay_max_units_);
  }

  void FinishReady(Node& n, Ready rd, bool already_sent) {
    // 1. Persist.
    if (rd.snapshot) {
      RAFT_CHECK(n.storage->ApplySnapshot(*rd.snapshot).ok());
      CheckSnapshotCommitted(*rd.snapshot);
    }
    if (!rd.entries.empty()) {
      RAFT_CHECK(n.storage->Append(rd.entries).ok());
      CheckLogMatching(n, rd.entries);
    }
    if (rd.hard_state) n.storage->SetHardState(*rd.hard_state);
    CheckCommitted(n);
    // 2. Send.
    if (!already_sent) {
      for (auto& m : rd.messages) Send(std::move(m));
    }
    // 3. Apply.
    if (rd.snapshot) {
      auto [idx, hash] = DecodeAppState(rd.snapshot->data());
      RAFT_CHECK(idx == rd.snapshot->metadata().index());
      n.applied = idx;
      n.state_hash = hash;
      n.conf = rd.snapshot->metadata().conf_state();
      if (applied_.size() <= idx || applied_[idx].first == 0) {
        Fail(absl::StrCat("node ", n.id, " installed a snapshot at ", idx, " nobody applied"));
      }
      if (applied_[idx].second != hash) {
        Fail(absl::StrCat("node ", n.id, " installed a snapshot at ", idx, " whose state differs"));
      }
      ++result_.snapshots_installed;
      Trace(absl::StrCat("node ", n.id, " installed snapshot ", idx));
    }
    for (const raftpb::Entry& e : rd.committed_entries) Apply(n, e);
    if (snapshot_every_ > 0 && n.raw &&
        n.applied >= n.storage->Snapshot()->metadata().index() + snapshot_every_) {
      SnapshotNode(n);
    }
    for (const ReadState& rs : rd.read_states) {
      auto it = read_floor_.find(rs.request_ctx);
      if (it == read_floor_.end()) Fail("read state for an unknown request");
      if (rs.index < it->second) {
        Fail(absl::StrCat("stale read: ", rs.request_ctx, " at node ", n.id, " got index ",
                          rs.index, " but ", it->second, " was committed before it was issued"));
      }
      ++result_.reads_served;
    }
    // 4. Advance.
    if (n.raw) n.raw->Advance();
  }

  void Apply(Node& n, const raftpb::Entry& e) {
    if (e.index() != n.applied + 1) {
      Fail(absl::StrCat("node ", n.id, " applied index ", e.index(), " after ", n.applied));
    }
    n.applied = e.index();
    n.state_hash = Mix(n.state_hash, HashBytes(e.data()) ^ (e.term() << 32) ^ e.type());
    if (applied_.size() <= e.index()) applied_.resize(e.index() + 1, {0, 0});
    auto& rec = applied_[e.index()];
    if (rec.first == 0) {
      rec = {e.term(), n.state_hash};
    } else if (rec.first != e.term() || rec.second != n.state_hash) {
      Fail(absl::StrCat("state machine safety: node ", n.id, " applied a different entry at index ",
                        e.index(), " (term ", e.term(), " vs ", rec.first, ")"));
    }
    if (e.type() == raftpb::ENTRY_NORMAL && !e.data().empty()) {
      if (e.data()[0] == 'l') live_index_.emplace(e.data(), e.index());
      if (e.data()[0] == 'p' || e.data()[0] == 'l') ++result_.proposals_committed;
    }
    if (e.type() == raftpb::ENTRY_CONF_CHANGE || e.type() == raftpb::ENTRY_CONF_CHANGE_V2) {
      if (late_conf_apply_) {
        // Like a server with an apply thread: Advance first, ApplyConfChange a bit later.
        n.deferred_conf.push_back(e);
        n.deferred_conf_at = now_ + rng_.Range(1, 2 * kUnitsPerTick);
      } else {
        ApplyConf(n, e);
      }
    }
  }

  void ApplyConf(Node& n, const raftpb::Entry& e) {
    raftpb::ConfChange cc;
    if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
      RAFT_CHECK(cc.ParseFromString(e.data()));
      n.conf = n.raw->ApplyConfChange(cc);
    } else {
      raftpb::ConfChangeV2 v2;
      RAFT_CHECK(v2.ParseFromString(e.data()) && v2.changes_size() == 1);
      cc.set_type(v2.changes(0).type());
      cc.set_node_id(v2.changes(0).node_id());
      n.conf = n.raw->ApplyConfChange(v2);
    }
    ++result_.conf_changes_applied;
    Trace(absl::StrCat("node ", n.id, " applied ", raftpb::ConfChangeType_Name(cc.type()), " ",
                       cc.node_id(), " at ", e.index()));
    if (cc.type() == raftpb::CONF_CHANGE_REMOVE_NODE) {
      bool still_member = false;
      for (uint64_t v : n.conf.voters()) still_member |= v == cc.node_id();
      for (uint64_t v : n.conf.learners()) still_member |= v == cc.node_id();
      Node& gone = nodes_[cc.node_id()];
      if (!still_member && !gone.removed) {
        // The operator shuts a removed member down for good (ids are never reused).
        // Like etcd's stopWithDelay, it keeps running a little so that, if it leads, the
        // others learn that its removal committed.
        gone.removed = true;
        gone.stop_at = now_ + 3 * kUnitsPerTick * heartbeat_tick_;
        Trace(absl::StrCat("node ", cc.node_id(), " removed and stopped"));
      }
    }
  }

  void ApplyDeferredConfChanges(Node& n) {
    std::vector<raftpb::Entry> todo = std::move(n.deferred_conf);
    n.deferred_conf.clear();
    for (const raftpb::Entry& e : todo) ApplyConf(n, e);
  }

  // ------------------------------------------------------------------ checker

  [[noreturn]] void Fail(const std::string& what) {
    if (opts_.verbose) {
      for (auto& [id, n] : nodes_) {
        if (!n.raw) {
          Trace(absl::StrCat("node ", id, n.removed ? " removed" : " down"));
          continue;
        }
        const Raft& r = n.raw->raft();
        std::string conf;
        for (uint64_t v : r.tracker().voters()) absl::StrAppend(&conf, "v", v, " ");
        for (uint64_t v : r.tracker().learners()) absl::StrAppend(&conf, "l", v, " ");
        Trace(absl::StrCat("node ", n.raw->GetStatus().DebugString(), " app_applied=", n.applied,
                           " last=", r.log().LastIndex(), "@", r.log().LastTerm(),
                           " elapsed/timeout=", r.randomized_election_timeout(), " conf=", conf,
                           " pending_ready=", n.pending.has_value(),
                           " tick_period=", n.tick_period_units));
      }
    }
    throw Violation{what};
  }

  void Trace(const std::string& s) {
    if (opts_.verbose)
      std::fprintf(stderr, "[%8.1f] %s\n", now_ / double(kUnitsPerTick), s.c_str());
  }

  void CheckOneLeaderPerTerm() {
    for (auto& [id, n] : nodes_) {
      if (!n.raw || n.raw->raft().state() != StateType::kLeader) continue;
      auto [it, inserted] = leader_of_term_.emplace(n.raw->raft().term(), id);
      if (!inserted && it->second != id) {
        Fail(absl::StrCat("election safety: nodes ", it->second, " and ", id,
                          " were both leader in term ", it->first));
      }
    }
  }

  // Leader completeness (§5.4): a new leader holds every entry committed so far.
  void OnNewLeader(Node& n) {
    ++result_.elections;
    if (faults_ && leader_churn_ && rng_.OneIn(2)) {
      // Depose new leaders quickly, mid-replication: this is what makes logs diverge the
      // way the paper's figure 8 needs.
      churn_.push_back({now_ + rng_.Range(1, 3 * kUnitsPerTick), n.id});
    }
    const Raft& r = n.raw->raft();
    Trace(absl::StrCat("node ", n.id, " is leader of term ", r.term()));
    CheckOneLeaderPerTerm();
    const uint64_t max_committed = committed_term_.size() - 1;
    if (r.log().LastIndex() < max_committed) {
      Fail(absl::StrCat("leader completeness: leader ", n.id, " of term ", r.term(),
                        " lacks committed index ", max_committed));
    }
    for (uint64_t i = std::max<uint64_t>(r.log().FirstIndex(), 1); i <= max_committed; ++i) {
      if (committed_term_[i] == 0) continue;
      absl::StatusOr<uint64_t> t = r.log().Term(i);
      if (!t.ok() || *t != committed_term_[i]) {
        Fail(absl::StrCat("leader completeness: leader ", n.id, " of term ", r.term(), " has term ",
                          t.ok() ? *t : 0, " at committed index ", i, " (expected ",
                          committed_term_[i], ")"));
      }
    }
  }

  // A committed entry is never lost or changed: every commit index any node reaches must
  // agree with what was committed before.
  void CheckCommitted(Node& n) {
    const Raft& r = n.raw->raft();
    const uint64_t c = r.log().committed();
    for (uint64_t i = n.checked_commit + 1; i <= c; ++i) {
      absl::StatusOr<uint64_t> t = r.log().Term(i);
      if (!t.ok()) continue;  // Covered by a snapshot, checked when installed.
      RecordCommitted(n.id, i, *t);
    }
    n.checked_commit = std::max(n.checked_commit, c);
  }

  void RecordCommitted(uint64_t node, uint64_t i, uint64_t term) {
    if (committed_term_.size() <= i) committed_term_.resize(i + 1, 0);
    if (committed_term_[i] == 0) {
      committed_term_[i] = term;
    } else if (committed_term_[i] != term) {
      Fail(absl::StrCat("committed entry lost: node ", node, " committed term ", term, " at index ",
                        i, " where term ", committed_term_[i], " was committed"));
    }
  }

  void CheckSnapshotCommitted(const raftpb::Snapshot& s) {
    RecordCommitted(0, s.metadata().index(), s.metadata().term());
  }

  // Log matching (§5.3): an (index, term) pair identifies one entry, and the entry before
  // it. Checked on everything a node persists, this implies the property for whole logs.
  void CheckLogMatching(Node& n, const std::vector<raftpb::Entry>& ents) {
    for (const raftpb::Entry& e : ents) {
      absl::StatusOr<uint64_t> prev = n.storage->Term(e.index() - 1);
      const uint64_t prev_term = prev.ok() ? *prev : UINT64_MAX;
      const uint64_t h = HashBytes(e.data()) ^ e.type();
      auto [it, inserted] =
          entries_.emplace(std::make_pair(e.index(), e.term()), std::make_pair(h, prev_term));
      if (inserted) continue;
      if (it->second.first != h) {
        Fail(absl::StrCat("log matching: two different entries at index ", e.index(), " term ",
                          e.term()));
      }
      if (prev_term != UINT64_MAX && it->second.second != UINT64_MAX &&
          it->second.second != prev_term) {
        Fail(absl::StrCat("log matching: entries at index ", e.index(), " term ", e.term(),
                          " follow different terms"));
      }
    }
  }

  SimOptions opts_;
  Rng rng_;
  SimResult result_;

  bool pre_vote_ = true, check_quorum_ = true;
  int election_tick_ = 10, heartbeat_tick_ = 1;
  uint64_t max_size_per_msg_ = 0, max_inflight_ = 8, max_uncommitted_ = 0, compact_keep_ = 5,
           snapshot_every_ = 0;
  bool faults_ = true;  // Crashes are injected only in the fault phase.
  double drop_p_ = 0, dup_p_ = 0;
  uint64_t delay_max_units_ = 10;
  uint64_t persist_delay_max_units_ = 0;
  uint64_t max_committed_per_ready_ = 0;
  bool disable_forwarding_ = false;
  bool clock_skew_ = false;
  bool leader_churn_ = false;
  bool late_conf_apply_ = false;
  std::vector<std::pair<uint64_t, uint64_t>>
      churn_;  // (time, leader) to depose.  // 0: each Ready is handled synchronously.

  std::map<uint64_t, Node> nodes_;
  std::set<std::pair<uint64_t, uint64_t>> blocked_;  // (from, to) links that are cut.
  std::priority_queue<InFlight, std::vector<InFlight>, Later> net_;
  uint64_t now_ = 0, seq_ = 0, next_id_ = 0, prop_seq_ = 0, read_seq_ = 0;

  std::map<uint64_t, uint64_t> leader_of_term_;
  std::vector<uint64_t> committed_term_;  // [i] = term of the committed entry at i, 0 unknown.
  std::vector<std::pair<uint64_t, uint64_t>> applied_;  // [i] = (term, state hash after i).
  std::map<std::pair<uint64_t, uint64_t>, std::pair<uint64_t, uint64_t>> entries_;
  std::map<std::string, uint64_t> read_floor_;
  std::map<std::string, uint64_t> live_index_;  // Liveness proposal -> index it applied at.
};

}  // namespace

SimResult RunSimulation(const SimOptions& opts) { return Simulation(opts).Run(); }

std::string ReproCommand(const SimOptions& opts) {
  std::string s = absl::StrCat("build/bin/raft_sim --seed=", opts.seed, " --nodes=", opts.nodes);
  if (opts.ops != 300) absl::StrAppend(&s, " --ops=", opts.ops);
  if (opts.lease_reads) absl::StrAppend(&s, " --lease_reads");
  if (opts.knobs.vote_twice_in_term) absl::StrAppend(&s, " --plant=vote_twice");
  if (opts.knobs.commit_without_quorum) absl::StrAppend(&s, " --plant=commit_without_quorum");
  return s;
}

}  // namespace kvd::raft::sim
