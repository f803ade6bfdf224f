#include "raft/errors.h"

#include <optional>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace kvd::raft {
namespace {

absl::Status Tagged(absl::StatusCode code, absl::string_view tag, absl::string_view msg) {
  absl::Status s(code, msg);
  s.SetPayload(kRaftErrorPayloadUrl, absl::Cord(tag));
  return s;
}

bool HasTag(const absl::Status& s, absl::string_view tag) {
  if (s.ok()) return false;
  auto p = s.GetPayload(kRaftErrorPayloadUrl);
  return p.has_value() && *p == tag;
}

}  // namespace

absl::Status ErrCompacted() {
  return Tagged(absl::StatusCode::kOutOfRange, "compacted",
                "raft: requested index is unavailable due to compaction");
}
bool IsErrCompacted(const absl::Status& s) { return HasTag(s, "compacted"); }

absl::Status ErrUnavailable() {
  return Tagged(absl::StatusCode::kNotFound, "unavailable",
                "raft: requested entry at index is unavailable");
}
bool IsErrUnavailable(const absl::Status& s) { return HasTag(s, "unavailable"); }

absl::Status ErrSnapOutOfDate() {
  return Tagged(absl::StatusCode::kFailedPrecondition, "snap_out_of_date",
                "raft: requested index is older than the existing snapshot");
}
bool IsErrSnapOutOfDate(const absl::Status& s) { return HasTag(s, "snap_out_of_date"); }

absl::Status ErrSnapshotTemporarilyUnavailable() {
  return Tagged(absl::StatusCode::kUnavailable, "snap_temp_unavailable",
                "raft: snapshot is temporarily unavailable");
}
bool IsErrSnapshotTemporarilyUnavailable(const absl::Status& s) {
  return HasTag(s, "snap_temp_unavailable");
}

absl::Status ErrProposalDropped(absl::string_view why) {
  return Tagged(absl::StatusCode::kUnavailable, "proposal_dropped",
                absl::StrCat("raft proposal dropped: ", why));
}
bool IsErrProposalDropped(const absl::Status& s) { return HasTag(s, "proposal_dropped"); }

absl::Status ErrStepLocalMsg() {
  return Tagged(absl::StatusCode::kInvalidArgument, "step_local_msg",
                "raft: cannot step raft local message");
}
bool IsErrStepLocalMsg(const absl::Status& s) { return HasTag(s, "step_local_msg"); }

absl::Status ErrStepPeerNotFound() {
  return Tagged(absl::StatusCode::kNotFound, "step_peer_not_found",
                "raft: cannot step as peer not found");
}
bool IsErrStepPeerNotFound(const absl::Status& s) { return HasTag(s, "step_peer_not_found"); }

}  // namespace kvd::raft
