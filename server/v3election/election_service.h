// etcd's Election service (v3electionpb.Election), built the way etcd builds it on
// clientv3's Election recipe. Candidates of election `name` hold keys
// name + "/" + hex(lease); the leader is the one whose key has the smallest create
// revision.
//
//   Campaign(name, lease, value)  txn: put the key with the lease if it does not exist,
//       else read it (and re-proclaim if its value differs); then wait until every key
//       created before it is deleted. Answers the first txn's header and the LeaderKey
//       {name, key, rev = create revision, lease}. A campaign abandoned by its client
//       resigns (deletes its key).
//       Lease 0: as etcd, a fresh 60 s lease (kSessionTtlSeconds) that nobody keeps alive
//       is granted for the campaign; LeaderKey.lease names it.
//   Proclaim(leader, value)  txn: if create_revision(leader.key) == leader.rev, put value;
//       else "election: not leader".
//   Leader(name)   the key with the smallest create revision, or "election: no leader".
//   Observe(name)  a stream of the current leader's value, then every change of it, then
//       the next leader's... (etcd's Election.Observe).
//   Resign(leader) txn: if create_revision(leader.key) == leader.rev, delete it.
//
// LeaderKey.rev is the fencing token of a leadership: compare it in a txn (as Proclaim
// does) to act only while still leader; see server/v3lock/lock_service.h.
#ifndef KVD_SERVER_V3ELECTION_ELECTION_SERVICE_H_
#define KVD_SERVER_V3ELECTION_ELECTION_SERVICE_H_

#include "api/v3electionpb/v3election.grpc.pb.h"
#include "server/v3lock/recipes.h"

namespace kvd::server::v3election {

class ElectionService final : public v3electionpb::Election::CallbackService {
 public:
  explicit ElectionService(v3lock::Recipes* recipes) : recipes_(recipes) {}

  grpc::ServerUnaryReactor* Campaign(grpc::CallbackServerContext* ctx,
                                     const v3electionpb::CampaignRequest* req,
                                     v3electionpb::CampaignResponse* resp) override;
  grpc::ServerUnaryReactor* Proclaim(grpc::CallbackServerContext* ctx,
                                     const v3electionpb::ProclaimRequest* req,
                                     v3electionpb::ProclaimResponse* resp) override;
  grpc::ServerUnaryReactor* Leader(grpc::CallbackServerContext* ctx,
                                   const v3electionpb::LeaderRequest* req,
                                   v3electionpb::LeaderResponse* resp) override;
  grpc::ServerWriteReactor<v3electionpb::LeaderResponse>* Observe(
      grpc::CallbackServerContext* ctx, const v3electionpb::LeaderRequest* req) override;
  grpc::ServerUnaryReactor* Resign(grpc::CallbackServerContext* ctx,
                                   const v3electionpb::ResignRequest* req,
                                   v3electionpb::ResignResponse* resp) override;

 private:
  v3lock::Recipes* const recipes_;
};

}  // namespace kvd::server::v3election

#endif  // KVD_SERVER_V3ELECTION_ELECTION_SERVICE_H_
