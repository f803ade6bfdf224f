// etcd's Maintenance service. Status is served; the rest answers UNIMPLEMENTED until built.
#ifndef KVD_SERVER_MAINTENANCE_SERVICE_H_
#define KVD_SERVER_MAINTENANCE_SERVICE_H_

#include "api/etcdserverpb/rpc.grpc.pb.h"
#include "server/node.h"

namespace kvd::server {

// The etcd API level kvd speaks, reported in Status.version: clients gate features on it.
inline constexpr char kEtcdApiVersion[] = "3.5.0";

class MaintenanceService final : public etcdserverpb::Maintenance::CallbackService {
 public:
  explicit MaintenanceService(Node* node) : node_(node) {}

  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* ctx,
                                   const etcdserverpb::StatusRequest* req,
                                   etcdserverpb::StatusResponse* resp) override;

 private:
  Node* const node_;
};

}  // namespace kvd::server

#endif  // KVD_SERVER_MAINTENANCE_SERVICE_H_
