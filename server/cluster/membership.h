// Cluster identity as etcd derives it, and the membership records kept in the replicated
// state.
//
// IDs: a member's ID is the first 8 bytes (big-endian) of SHA-1(sorted peer URLs joined ‖
// cluster token [‖ unix seconds for members added at run time]); the cluster ID is the
// same over the sorted member IDs of the initial cluster. Members of a cluster bootstrapped
// from the same --initial-cluster and --initial-cluster-token therefore agree on every ID
// without talking, exactly as etcd's members do, and tools that print IDs show the same ones.
//
// Records: meta "member/" ‖ BE64(id) → etcdserverpb::Member, written by the apply thread in
// the batch of the entry that changed it, so membership is as durable and as consistent
// across members as the key space.
#ifndef KVD_SERVER_CLUSTER_MEMBERSHIP_H_
#define KVD_SERVER_CLUSTER_MEMBERSHIP_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "api/etcdserverpb/rpc.pb.h"
#include "storage/engine.h"
#include "storage/mvcc/kv_store.h"

namespace kvd::server {

uint64_t ComputeMemberId(std::vector<std::string> peer_urls, const std::string& token,
                         std::optional<int64_t> unix_seconds);
uint64_t ComputeClusterId(std::vector<uint64_t> member_ids);

// --initial-cluster "n1=http://a:2380,n1=http://b:2380,n2=http://c:2380" → name → URLs
// (sorted). Errors, worded as etcd's, for an empty value, a missing '=', or a bad URL.
absl::StatusOr<std::map<std::string, std::vector<std::string>>> ParseInitialCluster(
    const std::string& initial_cluster);

// The membership of the replicated state.
class MemberStore {
 public:
  // Every member record in the committed state.
  static absl::StatusOr<std::map<uint64_t, etcdserverpb::Member>> Load(storage::Engine& engine);
  static void Put(storage::mvcc::ApplyBatch& batch, const etcdserverpb::Member& member);
  static void Remove(storage::mvcc::ApplyBatch& batch, uint64_t id);
  // Writes records straight to the engine (bootstrap, before any apply).
  static absl::Status PutDirect(storage::Engine& engine,
                                const std::vector<etcdserverpb::Member>& members);
};

}  // namespace kvd::server

#endif  // KVD_SERVER_CLUSTER_MEMBERSHIP_H_
