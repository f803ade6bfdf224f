#include "tests/raft/test_cluster.h"

#include <utility>

#include "gtest/gtest.h"

namespace kvd::raft::testing {

TestCluster::TestCluster(int n, std::function<void(Config&)> tweak, std::vector<uint64_t> learners)
    : tweak_(std::move(tweak)) {
  raftpb::ConfState cs;
  for (int i = 1; i <= n; ++i) cs.add_voters(static_cast<uint64_t>(i));
  for (uint64_t l : learners) cs.add_learners(l);
  std::vector<uint64_t> all;
  for (int i = 1; i <= n; ++i) all.push_back(static_cast<uint64_t>(i));
  all.insert(all.end(), learners.begin(), learners.end());
  for (uint64_t id : all) {
    TestNode& tn = nodes_[id];
    tn.storage = std::make_unique<MemoryStorage>();
    tn.storage->SetConfState(cs);
    Start(id);
  }
}

void TestCluster::Start(uint64_t id) {
  TestNode& tn = nodes_.at(id);
  Config c;
  c.id = id;
  c.election_tick = 10;
  c.heartbeat_tick = 1;
  c.storage = tn.storage.get();
  c.seed = 42;
  c.max_size_per_msg = kNoLimit;
  if (tweak_) tweak_(c);
  absl::StatusOr<raftpb::Snapshot> snap = tn.storage->Snapshot();
  c.applied = snap->metadata().index();
  tn.cfg = c;
  tn.applied.clear();
  tn.applied_index = c.applied;
  tn.conf = tn.storage->InitialState()->conf_state;
  auto raw = RawNode::Create(c);
  ASSERT_TRUE(raw.ok()) << raw.status();
  tn.raw = *std::move(raw);
}

void TestCluster::SetLog(uint64_t id, const std::vector<uint64_t>& terms, uint64_t term) {
  TestNode& tn = nodes_.at(id);
  std::vector<raftpb::Entry> ents;
  for (size_t i = 0; i < terms.size(); ++i) {
    raftpb::Entry e;
    e.set_index(i + 1);
    e.set_term(terms[i]);
    ents.push_back(e);
  }
  raftpb::ConfState cs = tn.storage->InitialState()->conf_state;
  tn.storage = std::make_unique<MemoryStorage>();
  tn.storage->SetConfState(cs);
  ASSERT_TRUE(tn.storage->Append(ents).ok());
  raftpb::HardState hs;
  hs.set_term(term);
  tn.storage->SetHardState(hs);
  Start(id);
}

std::vector<uint64_t> TestCluster::ids() const {
  std::vector<uint64_t> out;
  for (const auto& [id, n] : nodes_) out.push_back(id);
  return out;
}

void TestCluster::AddNewNode(uint64_t id) {
  TestNode& tn = nodes_[id];
  tn.storage = std::make_unique<MemoryStorage>();
  Start(id);
}

void TestCluster::Restart(uint64_t id) { Start(id); }

bool TestCluster::HandleReadies() {
  bool any = false;
  for (auto& [id, tn] : nodes_) {
    if (!tn.raw) continue;
    while (tn.raw->HasReady()) {
      any = true;
      Ready rd = tn.raw->GetReady();
      if (rd.snapshot) {
        EXPECT_TRUE(tn.storage->ApplySnapshot(*rd.snapshot).ok());
      }
      EXPECT_TRUE(tn.storage->Append(rd.entries).ok());
      if (rd.hard_state) tn.storage->SetHardState(*rd.hard_state);
      for (auto& m : rd.messages) inflight_.push_back(std::move(m));
      if (rd.snapshot) {
        tn.applied_index = rd.snapshot->metadata().index();
        tn.conf = rd.snapshot->metadata().conf_state();
      }
      for (const raftpb::Entry& e : rd.committed_entries) {
        EXPECT_EQ(e.index(), tn.applied_index + 1) << "node " << id << " skipped an entry";
        tn.applied_index = e.index();
        if (e.type() == raftpb::ENTRY_NORMAL) {
          if (!e.data().empty()) tn.applied.push_back(e.data());
        } else if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
          raftpb::ConfChange cc;
          EXPECT_TRUE(cc.ParseFromString(e.data()));
          tn.conf = tn.raw->ApplyConfChange(cc);
        } else {
          raftpb::ConfChangeV2 cc;
          EXPECT_TRUE(cc.ParseFromString(e.data()));
          tn.conf = tn.raw->ApplyConfChange(cc);
        }
      }
      // Like a server, snapshot after every membership change, so that a member joining
      // later is caught up by a snapshot that includes it (raft/ ignores a snapshot whose
      // ConfState does not name the receiver).
      bool conf_changed = false;
      for (const raftpb::Entry& e : rd.committed_entries) {
        conf_changed |= e.type() != raftpb::ENTRY_NORMAL;
      }
      if (conf_changed) {
        EXPECT_TRUE(tn.storage->CreateSnapshot(tn.applied_index, &tn.conf, "conf").ok());
        EXPECT_TRUE(tn.storage->Compact(tn.applied_index).ok());
      }
      for (auto& rs : rd.read_states) tn.read_states.push_back(rs);
      tn.raw->Advance();
    }
  }
  return any;
}

bool TestCluster::Deliver() {
  if (inflight_.empty()) return false;
  std::deque<raftpb::Message> batch;
  batch.swap(inflight_);
  for (auto& m : batch) {
    if (cut_.count({m.from(), m.to()}) > 0) continue;
    if (dropped_types_.count(m.type()) > 0) continue;
    if (filter_ && filter_(m)) continue;
    auto it = nodes_.find(m.to());
    if (it == nodes_.end() || !it->second.raw) continue;
    trace_.push_back(m);
    (void)it->second.raw->Step(std::move(m));
  }
  return true;
}

void TestCluster::Stabilize(int max_rounds) {
  for (int i = 0; i < max_rounds; ++i) {
    const bool a = HandleReadies();
    const bool b = Deliver();
    if (!a && !b) return;
  }
  ADD_FAILURE() << "cluster did not stabilize";
}

void TestCluster::Tick(uint64_t id, int n) {
  for (int i = 0; i < n; ++i) {
    nodes_.at(id).raw->Tick();
    Stabilize();
  }
}

void TestCluster::TickAll(int n) {
  for (int i = 0; i < n; ++i) {
    for (auto& [id, tn] : nodes_) {
      if (tn.raw) tn.raw->Tick();
    }
    Stabilize();
  }
}

void TestCluster::Campaign(uint64_t id) {
  EXPECT_TRUE(node(id).Campaign().ok());
  Stabilize();
}

absl::Status TestCluster::Propose(uint64_t id, const std::string& data) {
  absl::Status s = node(id).Propose(data);
  Stabilize();
  return s;
}

absl::Status TestCluster::ProposeConfChange(uint64_t id, raftpb::ConfChangeType t,
                                            uint64_t target) {
  raftpb::ConfChange cc;
  cc.set_type(t);
  cc.set_node_id(target);
  absl::Status s = node(id).ProposeConfChange(cc);
  Stabilize();
  return s;
}

void TestCluster::Cut(uint64_t a, uint64_t b) {
  cut_.insert({a, b});
  cut_.insert({b, a});
}

void TestCluster::CutOneWay(uint64_t from, uint64_t to) { cut_.insert({from, to}); }

void TestCluster::Isolate(uint64_t id) {
  for (const auto& [other, tn] : nodes_) {
    if (other != id) Cut(id, other);
  }
}

void TestCluster::Recover() {
  cut_.clear();
  dropped_types_.clear();
  filter_ = nullptr;
}

uint64_t TestCluster::Leader() const {
  uint64_t best = 0, best_term = 0;
  for (const auto& [id, tn] : nodes_) {
    if (tn.raw && tn.raw->raft().state() == StateType::kLeader &&
        tn.raw->raft().term() >= best_term) {
      best = id;
      best_term = tn.raw->raft().term();
    }
  }
  return best;
}

std::vector<uint64_t> LogTerms(const MemoryStorage& s) {
  std::vector<uint64_t> out;
  for (uint64_t i = *s.FirstIndex(); i <= *s.LastIndex(); ++i) out.push_back(*s.Term(i));
  return out;
}

}  // namespace kvd::raft::testing
