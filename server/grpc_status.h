// What every service does with a call's status and metadata: absl::Status and grpc::Status
// share their code numbering (ToGrpc keeps code and message), a unary call answered at once
// (Answer), and etcd's "require leader" metadata (CheckLeader).
#ifndef KVD_SERVER_GRPC_STATUS_H_
#define KVD_SERVER_GRPC_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "api/errors.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "grpcpp/support/status.h"

namespace kvd::server {

inline grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

// Answers a unary call at once with s (a refusal, or a result already in the response).
inline grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* ctx, const absl::Status& s) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpc(s));
  return reactor;
}

// Whether a call carries etcd's "require leader" metadata (hasleader=true, sent by
// clientv3.WithRequireLeader: Kubernetes' watches, for one).
inline bool RequiresLeader(const grpc::ServerContextBase& ctx) {
  const auto& md = ctx.client_metadata();
  auto it = md.find("hasleader");
  return it != md.end() && it->second == "true";
}

// etcd's interceptor: a call that requires a leader fails with "etcdserver: no leader" on a
// member that knows none, instead of being served (or waiting) without one.
inline absl::Status CheckLeader(const grpc::ServerContextBase& ctx, bool has_leader) {
  if (!has_leader && RequiresLeader(ctx)) return errors::NoLeader();
  return absl::OkStatus();
}

}  // namespace kvd::server

#endif  // KVD_SERVER_GRPC_STATUS_H_
