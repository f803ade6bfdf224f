// etcd's error vocabulary: the gRPC code and message etcd returns for each failure.
//
// Clients match on these messages (clientv3's rpctypes, python etcd3's exception mapping),
// so they are part of the wire contract: same code, same text, byte for byte. Every layer
// returns these as absl::Status; server/ maps absl codes one-to-one onto gRPC codes.
#ifndef KVD_API_ERRORS_H_
#define KVD_API_ERRORS_H_

#include "absl/status/status.h"

namespace kvd::errors {

// Requests that can never be served as sent.
inline absl::Status EmptyKey() {
  return absl::InvalidArgumentError("etcdserver: key is not provided");
}
inline absl::Status KeyNotFound() {
  return absl::InvalidArgumentError("etcdserver: key not found");
}
inline absl::Status ValueProvided() {
  return absl::InvalidArgumentError("etcdserver: value is provided");
}
inline absl::Status LeaseProvided() {
  return absl::InvalidArgumentError("etcdserver: lease is provided");
}
inline absl::Status TooManyOps() {
  return absl::InvalidArgumentError("etcdserver: too many operations in txn request");
}
inline absl::Status DuplicateKey() {
  return absl::InvalidArgumentError("etcdserver: duplicate key given in txn request");
}
inline absl::Status RequestTooLarge() {
  return absl::InvalidArgumentError("etcdserver: request is too large");
}
inline absl::Status InvalidSortOption() {
  return absl::InvalidArgumentError("etcdserver: invalid sort option");
}

// MVCC.
inline absl::Status Compacted() {
  return absl::OutOfRangeError("etcdserver: mvcc: required revision has been compacted");
}
inline absl::Status FutureRevision() {
  return absl::OutOfRangeError("etcdserver: mvcc: required revision is a future revision");
}
inline absl::Status NoSpace() {
  return absl::ResourceExhaustedError("etcdserver: mvcc: database space exceeded");
}

// Leases.
inline absl::Status LeaseNotFound() {
  return absl::NotFoundError("etcdserver: requested lease not found");
}
inline absl::Status LeaseExists() {
  return absl::FailedPreconditionError("etcdserver: lease already exists");
}
inline absl::Status LeaseTtlTooLarge() {
  return absl::OutOfRangeError("etcdserver: too large lease TTL");
}

// Cluster state.
inline absl::Status NoLeader() { return absl::UnavailableError("etcdserver: no leader"); }
inline absl::Status NotLeader() { return absl::FailedPreconditionError("etcdserver: not leader"); }
inline absl::Status LeaderChanged() { return absl::UnavailableError("etcdserver: leader changed"); }
inline absl::Status Stopped() { return absl::UnavailableError("etcdserver: server stopped"); }
inline absl::Status Timeout() { return absl::UnavailableError("etcdserver: request timed out"); }
inline absl::Status RpcNotSupportedForLearner() {
  return absl::UnavailableError("etcdserver: rpc not supported for learner");
}
inline absl::Status Corrupt() { return absl::DataLossError("etcdserver: corrupt cluster"); }

}  // namespace kvd::errors

#endif  // KVD_API_ERRORS_H_
