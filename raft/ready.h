// Ready: what a RawNode asks the application to do, and the contract for doing it.
//
// raft/ performs no I/O. Whenever RawNode::HasReady() is true the application takes a
// Ready and handles it in this order (etcd's "Usage" contract, made explicit):
//
//   1. Persist, in one atomic, synced write: `hard_state` (if set), `entries` (appending
//      them and truncating any stored entries they overwrite: entries[0].index() may be
//      <= the stored last index), and `snapshot` (if set; it replaces the whole log and
//      the application state). Nothing in this Ready may be sent before this write
//      completes, with one exception: a leader (RawNode::GetStatus() says kLeader) may
//      send its messages while its own write is in flight, because it counts itself
//      toward a quorum only once its own entries are stable (after Advance).
//   2. Send `messages`. Sending is unreliable by contract: raft/ retries. If a peer cannot
//      be reached call RawNode::ReportUnreachable(id); after sending a MSG_SNAP report its
//      outcome with RawNode::ReportSnapshot(id, ok).
//   3. Apply `committed_entries` in order to the state machine. For EVERY
//      ENTRY_CONF_CHANGE(_V2) entry handed out, call RawNode::ApplyConfChange() once, in
//      log order, on the thread that drives the RawNode -- also if a snapshot was
//      installed meanwhile (raft/ then ignores the superseded change) -- and record the
//      returned ConfState with the applied index. Until it is called, the node neither
//      campaigns nor accepts another conf change. If `snapshot` was set, restore the state
//      machine from it first. Serve `read_states`: a linearizable read with context ctx
//      may be answered once the state machine has applied read_state.index.
//   4. Call RawNode::Advance(). Until then RawNode::GetReady() must not be called again
//      (Tick and Step may be).
//
// Step 3 may be done asynchronously (an apply thread) as long as entries are applied in
// order and Advance is still called after step 1 and 2; kvd's server does steps 1,2,4 on
// the raft thread and hands step 3 to its apply thread. Advance then tells raft/ the
// entries are "applied" before they are; that is safe because raft/ only uses the applied
// index for flow control and, for conf changes, waits for ApplyConfChange itself.
#ifndef KVD_RAFT_READY_H_
#define KVD_RAFT_READY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "api/raftpb/raft.pb.h"

namespace kvd::raft {

inline constexpr uint64_t kNone = 0;  // "no node": no leader, no vote.

enum class StateType { kFollower, kCandidate, kLeader, kPreCandidate };
const char* StateTypeName(StateType s);

// Volatile state, reported when it changes; never persisted.
struct SoftState {
  uint64_t lead = kNone;
  StateType raft_state = StateType::kFollower;
  bool operator==(const SoftState&) const = default;
};

// The answer to RawNode::ReadIndex(request_ctx): reads issued before the ReadIndex call
// are linearizable once the state machine has applied `index`.
struct ReadState {
  uint64_t index = 0;
  std::string request_ctx;
};

struct Ready {
  // Set only when it changed since the last Ready.
  std::optional<SoftState> soft_state;
  // Set only when it changed; must be persisted (step 1) before sending messages.
  std::optional<raftpb::HardState> hard_state;
  std::vector<ReadState> read_states;
  // Entries to persist (step 1).
  std::vector<raftpb::Entry> entries;
  // Snapshot to persist and install (step 1, 3).
  std::optional<raftpb::Snapshot> snapshot;
  // Entries to apply (step 3). All were already persisted in an earlier or this Ready.
  std::vector<raftpb::Entry> committed_entries;
  // Messages to send (step 2).
  std::vector<raftpb::Message> messages;
  // Whether step 1 needs an fsync (new hard state term/vote or entries). A change of the
  // commit index alone need not be synced: it is recovered from the quorum.
  bool must_sync = false;
};

bool IsEmptyHardState(const raftpb::HardState& hs);
bool IsEmptySnapshot(const raftpb::Snapshot& s);
bool IsLocalMessage(raftpb::MessageType t);
bool IsResponseMessage(raftpb::MessageType t);
std::string DescribeMessage(const raftpb::Message& m);

}  // namespace kvd::raft

#endif  // KVD_RAFT_READY_H_
