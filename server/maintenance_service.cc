#include "server/maintenance_service.h"

namespace kvd::server {

grpc::ServerUnaryReactor* MaintenanceService::Status(grpc::CallbackServerContext* ctx,
                                                     const etcdserverpb::StatusRequest* req,
                                                     etcdserverpb::StatusResponse* resp) {
  node_->FillHeader(resp->mutable_header());
  resp->mutable_header()->set_revision(node_->kv().current_rev());
  resp->set_version(kEtcdApiVersion);
  resp->set_dbsize(node_->engine().SizeBytes());
  resp->set_dbsizeinuse(node_->engine().LiveDataBytes());
  resp->set_leader(node_->leader_id());
  resp->set_raftindex(node_->applied_index());
  resp->set_raftterm(node_->raft_term());
  resp->set_raftappliedindex(node_->applied_index());
  resp->set_islearner(false);
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace kvd::server
