// absl::Status and grpc::Status share their code numbering; this keeps code and message.
#ifndef KVD_SERVER_GRPC_STATUS_H_
#define KVD_SERVER_GRPC_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace kvd::server {

inline grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

}  // namespace kvd::server

#endif  // KVD_SERVER_GRPC_STATUS_H_
