// Config: everything a RawNode is told at creation. Included by raft/rawnode.h.
#ifndef KVD_RAFT_CONFIG_H_
#define KVD_RAFT_CONFIG_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "raft/storage.h"

namespace kvd::raft {

enum class ReadOnlyOption {
  // ReadIndex confirms leadership with a heartbeat round to a quorum. Always correct.
  kSafe,
  // ReadIndex trusts the leader lease: answers at once with the commit index. Requires
  // check_quorum. NOT linearizable in general: the lease is measured from the leader's
  // check-quorum rounds, not from when followers last heard from it, so with message
  // delays (or clock drift) a deposed leader can answer a stale read; the simulator finds
  // such reads (`raft_sim --lease_reads`). Off unless asked for.
  kLeaseBased,
};

// Planted bugs, for proving that the simulator's checker can fail. Never set in
// production; the server does not expose them.
struct TestingKnobs {
  // Grant every vote request, even a second one in the same term.
  bool vote_twice_in_term = false;
  // A leader commits whatever it appended itself, without waiting for a quorum.
  bool commit_without_quorum = false;
};

struct Config {
  // This node's id. REQUIRES: != 0.
  uint64_t id = 0;

  // A follower that hears nothing from a leader for election_tick ticks campaigns; the
  // actual timeout is drawn uniformly from [election_tick, 2*election_tick) on every
  // reset. REQUIRES: election_tick > heartbeat_tick > 0.
  int election_tick = 10;
  // A leader sends heartbeats every heartbeat_tick ticks.
  int heartbeat_tick = 1;

  // The durable state; must outlive the RawNode. REQUIRES: != nullptr.
  Storage* storage = nullptr;

  // The last index the application has applied (on restart). raft/ will not hand out
  // committed entries at or below it. 0 for a fresh node.
  uint64_t applied = 0;

  // Upper bound on the entries in one append message (bytes); 0 sends at most one entry.
  uint64_t max_size_per_msg = 1 << 20;
  // Upper bound on Ready::committed_entries (bytes); 0 means max_size_per_msg.
  uint64_t max_committed_size_per_ready = 0;
  // A leader drops proposals once the entries it appended but not yet committed exceed
  // this many bytes of payload; 0 means no limit.
  uint64_t max_uncommitted_entries_size = 0;
  // Inflight append messages per follower in the replicate state. REQUIRES: > 0.
  size_t max_inflight_msgs = 256;

  // A leader steps down if it has not heard from a quorum within an election timeout, and
  // followers ignore vote requests while they hear from a leader.
  bool check_quorum = false;
  // Before raising its term a candidate asks whether it could win (pre-vote, §9.6), so a
  // partitioned node rejoining cannot depose a working leader.
  bool pre_vote = false;
  ReadOnlyOption read_only_option = ReadOnlyOption::kSafe;
  // Followers drop proposals instead of forwarding them to the leader.
  bool disable_proposal_forwarding = false;

  // Seeds the election-timeout jitter. The generator mixes in `id`, so nodes sharing a
  // seed still draw different timeouts.
  uint64_t seed = 0;

  TestingKnobs testing;

  absl::Status Validate() const;
};

}  // namespace kvd::raft

#endif  // KVD_RAFT_CONFIG_H_
