// TestCluster: an in-memory network of RawNodes for unit and scenario tests, after etcd's
// `network` helper. Deliveries are synchronous and FIFO; Stabilize() runs the cluster until
// no node has a Ready and no message is in flight. Filters drop messages (cut links,
// isolate nodes, drop a message type). Every node handles each Ready exactly as
// raft/ready.h prescribes: persist to its MemoryStorage, send, apply, Advance.
#ifndef KVD_TESTS_RAFT_TEST_CLUSTER_H_
#define KVD_TESTS_RAFT_TEST_CLUSTER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "raft/memory_storage.h"
#include "raft/raft.h"
#include "raft/rawnode.h"

namespace kvd::raft::testing {

struct TestNode {
  std::unique_ptr<MemoryStorage> storage;
  std::unique_ptr<RawNode> raw;
  Config cfg;
  // The "state machine": payloads of applied normal entries, in order.
  std::vector<std::string> applied;
  uint64_t applied_index = 0;
  raftpb::ConfState conf;
  std::vector<ReadState> read_states;
};

class TestCluster {
 public:
  // Voters 1..n (plus `learners`), each with an empty log that starts at index 1.
  // `tweak` adjusts every node's Config (check_quorum, pre_vote, ...).
  explicit TestCluster(int n, std::function<void(Config&)> tweak = {},
                       std::vector<uint64_t> learners = {});

  // Replaces node `id`'s log with entries of the given terms at indices 1.., and sets its
  // hard state term (and vote) before starting it. Call before any step.
  void SetLog(uint64_t id, const std::vector<uint64_t>& terms, uint64_t term);

  RawNode& node(uint64_t id) { return *nodes_.at(id).raw; }
  const Raft& raft(uint64_t id) const { return nodes_.at(id).raw->raft(); }
  TestNode& test_node(uint64_t id) { return nodes_.at(id); }
  MemoryStorage& storage(uint64_t id) { return *nodes_.at(id).storage; }
  std::vector<uint64_t> ids() const;

  // Adds a brand-new node with an empty storage and no configuration (it learns the
  // configuration from the leader).
  void AddNewNode(uint64_t id);
  // Drops volatile state and restarts node id from its storage.
  void Restart(uint64_t id);

  // Delivery.
  void Stabilize(int max_rounds = 10000);
  void Tick(uint64_t id, int n = 1);
  void TickAll(int n = 1);
  void Campaign(uint64_t id);
  absl::Status Propose(uint64_t id, const std::string& data);
  absl::Status ProposeConfChange(uint64_t id, raftpb::ConfChangeType t, uint64_t node);

  // Faults.
  void Cut(uint64_t a, uint64_t b);  // both directions
  void CutOneWay(uint64_t from, uint64_t to);
  void Isolate(uint64_t id);
  void Recover();  // removes cuts and filters
  void DropType(raftpb::MessageType t) { dropped_types_.insert(t); }
  // Extra filter: return true to drop. It may also rewrite the message in flight (e.g.
  // shorten an append, which is the same as the leader having sent a shorter one).
  void SetFilter(std::function<bool(raftpb::Message&)> f) { filter_ = std::move(f); }
  // Every message delivered since the last ClearTrace, for assertions on traffic.
  const std::vector<raftpb::Message>& trace() const { return trace_; }
  void ClearTrace() { trace_.clear(); }

  // The node that is leader with the highest term, or 0.
  uint64_t Leader() const;

 private:
  void Start(uint64_t id);
  bool HandleReadies();
  bool Deliver();

  std::function<void(Config&)> tweak_;
  std::map<uint64_t, TestNode> nodes_;
  std::deque<raftpb::Message> inflight_;
  std::set<std::pair<uint64_t, uint64_t>> cut_;
  std::set<int> dropped_types_;
  std::function<bool(raftpb::Message&)> filter_;
  std::vector<raftpb::Message> trace_;
};

// Terms of the entries in [first, last] of a storage, for comparing logs.
std::vector<uint64_t> LogTerms(const MemoryStorage& s);

}  // namespace kvd::raft::testing

#endif  // KVD_TESTS_RAFT_TEST_CLUSTER_H_
