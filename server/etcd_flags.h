// etcd's command line, with etcd's names, defaults and meanings, so a script that starts
// etcd starts kvd by changing the binary name. Flags are accepted as --flag=value,
// --flag value, -flag=value, and from ETCD_<FLAG> environment variables (ETCD_DATA_DIR for
// --data-dir), as etcd accepts them; the command line wins over the environment.
#ifndef KVD_SERVER_ETCD_FLAGS_H_
#define KVD_SERVER_ETCD_FLAGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace kvd::server {

struct ServerConfig {
  std::string name;
  std::string data_dir;
  // gRPC listen addresses (host:port) from --listen-client-urls.
  std::vector<std::string> listen_client_addresses;
  std::vector<std::string> advertise_client_urls;
  std::vector<std::string> listen_peer_urls;
  // Peer gRPC listen addresses (host:port) from --listen-peer-urls.
  std::vector<std::string> listen_peer_addresses;
  std::vector<std::string> initial_advertise_peer_urls;
  std::string initial_cluster;
  std::string initial_cluster_state;
  std::string initial_cluster_token;
  int64_t max_request_bytes = 0;
  int max_txn_ops = 0;
  int64_t quota_backend_bytes = 0;
  absl::Duration heartbeat;
  absl::Duration election_timeout;
  uint64_t snapshot_count = 0;
  // --experimental-watch-progress-notify-interval: how often watchers that asked for
  // progress_notify get an empty response with the current revision.
  absl::Duration watch_progress_notify_interval;
  // --kvd-plant-bug (tests of the fault harness only): serve linearizable reads locally
  // without ReadIndex; write the raft log without fsync.
  bool plant_local_reads = false;
  bool plant_no_fsync = false;
};

// Parses argv (exits on --help / --version as etcd does). Errors name the offending flag.
absl::StatusOr<ServerConfig> ParseEtcdFlags(int argc, char** argv);

// "http://host:port" → "host:port" (what gRPC listens on). Errors for schemes kvd does not
// serve yet, with the reason.
absl::StatusOr<std::string> ListenAddressFromUrl(const std::string& url);

}  // namespace kvd::server

#endif  // KVD_SERVER_ETCD_FLAGS_H_
