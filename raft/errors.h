// The well-known errors of raft/. Each is an absl::Status with a distinctive code and a
// payload under kRaftErrorPayloadUrl that names it, so a predicate recognises it even when a
// Storage implementation returns it from a different layer. Construct with the Err*()
// functions, test with the IsErr*() predicates; never compare messages.
#ifndef KVD_RAFT_ERRORS_H_
#define KVD_RAFT_ERRORS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace kvd::raft {

inline constexpr absl::string_view kRaftErrorPayloadUrl = "type.kvd.io/raft.error";

// Storage: the requested index is older than Storage::FirstIndex()-1 (it was compacted).
// Code kOutOfRange.
absl::Status ErrCompacted();
bool IsErrCompacted(const absl::Status& s);

// Storage: the requested index is newer than Storage::LastIndex(). Code kNotFound.
absl::Status ErrUnavailable();
bool IsErrUnavailable(const absl::Status& s);

// MemoryStorage: a snapshot or compaction older than the one already held. Code
// kFailedPrecondition.
absl::Status ErrSnapOutOfDate();
bool IsErrSnapOutOfDate(const absl::Status& s);

// Storage::Snapshot: no snapshot is ready yet; raft retries later. Code kUnavailable.
absl::Status ErrSnapshotTemporarilyUnavailable();
bool IsErrSnapshotTemporarilyUnavailable(const absl::Status& s);

// RawNode: a proposal (or ReadIndex, or TransferLeader) could not be accepted: there is no
// leader, a leadership transfer is in progress, the node was removed, the uncommitted
// log is full, or a membership change is already pending. The message says which.
// Code kUnavailable; the caller may retry after a leader is known.
absl::Status ErrProposalDropped(absl::string_view why);
bool IsErrProposalDropped(const absl::Status& s);

// RawNode::Step: local message types (MsgHup, MsgBeat, ...) cannot come from the network.
// Code kInvalidArgument.
absl::Status ErrStepLocalMsg();
bool IsErrStepLocalMsg(const absl::Status& s);

// RawNode::Step: a response from a peer that is not in the configuration. Code kNotFound.
absl::Status ErrStepPeerNotFound();
bool IsErrStepPeerNotFound(const absl::Status& s);

}  // namespace kvd::raft

#endif  // KVD_RAFT_ERRORS_H_
