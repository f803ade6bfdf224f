// kvd: one member of a kvd cluster. Started with etcd's flags (server/etcd_flags.h);
// SIGINT or SIGTERM stops it cleanly.
#include <csignal>
#include <cstdio>
#include <limits>
#include <memory>
#include <pthread.h>

#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "server/apply/alarm_apply.h"
#include "server/cluster/cluster_service.h"
#include "server/etcd_flags.h"
#include "server/kv_service.h"
#include "server/lease/lease_apply.h"
#include "server/lease/lease_service.h"
#include "server/lease/lessor.h"
#include "server/maintenance_service.h"
#include "server/node.h"
#include "server/v3election/election_service.h"
#include "server/v3lock/lock_service.h"
#include "server/v3lock/recipes.h"
#include "server/transport/grpc_transport.h"
#include "server/watch/watch_hub.h"
#include "server/watch/watch_service.h"
#include "storage/check.h"

namespace {

// etcd accepts requests this much larger than --max-request-bytes at the gRPC layer, and
// rejects them itself with "request is too large".
constexpr int64_t kGrpcOverheadBytes = 512 * 1024;

int Run(int argc, char** argv) {
  // Debian's abseil is built with debug checks: every Mutex acquisition would feed the
  // lock-order graph of its deadlock detector (a few percent of the CPU under load). The
  // tests build their own binaries and keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::StatusOr<kvd::server::ServerConfig> config = kvd::server::ParseEtcdFlags(argc, argv);
  if (!config.ok()) {
    std::fprintf(stderr, "kvd: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }

  if (config->plant_local_reads || config->plant_no_fsync) {
    std::fprintf(stderr,
                 "kvd: WARNING: ******************************************************\n"
                 "kvd: WARNING: --kvd-plant-bug is set: this member has a KNOWN BUG planted\n"
                 "kvd: WARNING: for testing the fault harness:%s%s\n"
                 "kvd: WARNING: NEVER run it with data you care about.\n"
                 "kvd: WARNING: ******************************************************\n",
                 config->plant_local_reads ? " local-reads (stale linearizable reads)" : "",
                 config->plant_no_fsync ? " no-fsync (acknowledged writes can be lost)" : "");
  }

  // Signals go to the thread that waits for them, never to gRPC's or the node's threads.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  kvd::server::NodeOptions node_options;
  node_options.name = config->name;
  node_options.data_dir = config->data_dir;
  node_options.initial_cluster = config->initial_cluster;
  node_options.initial_cluster_state = config->initial_cluster_state;
  node_options.initial_cluster_token = config->initial_cluster_token;
  node_options.initial_advertise_peer_urls = config->initial_advertise_peer_urls;
  node_options.advertise_client_urls = config->advertise_client_urls;
  node_options.heartbeat = config->heartbeat;
  node_options.election_timeout = config->election_timeout;
  node_options.snapshot_count = config->snapshot_count;
  node_options.plant_no_fsync = config->plant_no_fsync;
  node_options.transport_factory = kvd::server::NewGrpcTransport;
  absl::StatusOr<std::unique_ptr<kvd::server::Node>> node =
      kvd::server::Node::Open(node_options);
  if (!node.ok()) {
    std::fprintf(stderr, "kvd: cannot start member %s: %s\n", config->name.c_str(),
                 std::string(node.status().message()).c_str());
    return 1;
  }

  kvd::server::Node* watch_node = node->get();
  // Watches: the apply thread hands each batch's events to the hub.
  kvd::server::watch::WatchHubOptions watch_options;
  watch_options.max_request_bytes = config->max_request_bytes + kGrpcOverheadBytes;  // as etcd
  watch_options.progress_notify_interval = config->watch_progress_notify_interval;
  kvd::server::watch::WatchHub watch_hub(
      &(*node)->kv(), watch_options,
      {.fill_header = [watch_node](etcdserverpb::ResponseHeader* h) { watch_node->FillHeader(h); },
       .has_leader = [watch_node] { return watch_node->has_leader(); }});
  // Leases: the lessor proposes expiries and checkpoints through the node.
  kvd::server::lease::SteadyClock lease_clock;
  kvd::server::lease::LessorOptions lessor_options;
  lessor_options.min_ttl_s = kvd::server::lease::MinLeaseTtlSeconds(
      absl::ToInt64Milliseconds(config->election_timeout),
      absl::ToInt64Milliseconds(config->heartbeat));
  kvd::server::Node* lease_node = node->get();
  kvd::server::lease::Lessor lessor(
      lessor_options, &lease_clock,
      [lease_node](kvd::internalpb::Request req, kvd::server::lease::Lessor::Done done) {
        lease_node->Propose(std::move(req), nullptr, std::move(done));
      });
  if (absl::Status s = kvd::server::lease::LoadLeases((*node)->engine(), &lessor); !s.ok()) {
    std::fprintf(stderr, "kvd: cannot load leases: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  kvd::server::lease::LeaseApplier lease_applier(&lessor);
  kvd::server::NodeHooks hooks;
  hooks.lease_exists = [&lessor](int64_t id) { return lessor.Exists(id); };
  hooks.apply_other = [&lease_applier](kvd::storage::mvcc::ApplyBatch& batch,
                                       const kvd::internalpb::Request& req,
                                       google::protobuf::Message* response) {
    // Alarms refuse writes (LeaseGrant under NOSPACE) and change through alarm requests.
    if (absl::Status s = kvd::server::CheckAlarmsInBatch(batch, req); !s.ok()) return s;
    if (req.has_alarm()) return kvd::server::ApplyAlarm(batch, req.alarm(), response);
    return lease_applier.Apply(batch, req, response);
  };
  hooks.on_leadership = [&lessor](bool is_leader) { lessor.SetLeader(is_leader); };
  hooks.on_snapshot_installed = [&lessor, lease_node] {
    KVD_CHECK_OK(kvd::server::lease::ReloadLeases(lease_node->engine(), &lessor));
  };
  hooks.on_applied = [&watch_hub](int64_t rev, const std::vector<mvccpb::Event>& events) {
    watch_hub.OnApplied(rev, events);
  };
  watch_hub.Start();
  (*node)->Start(std::move(hooks));
  lessor.Start();

  kvd::server::MaintenanceOptions maintenance_options;
  maintenance_options.quota_backend_bytes = config->quota_backend_bytes;
  kvd::server::MaintenanceService maintenance_service(node->get(), maintenance_options);
  maintenance_service.Start();
  kvd::server::ClusterService cluster_service(node->get());
  kvd::server::RequestLimits limits;
  limits.max_request_bytes = config->max_request_bytes;
  limits.max_txn_ops = config->max_txn_ops;
  limits.plant_local_reads = config->plant_local_reads;
  limits.admit_write = [&maintenance_service](const kvd::internalpb::Request& req) {
    return maintenance_service.AdmitWrite(req);
  };
  kvd::server::KvService kv_service(node->get(), limits);
  // A follower forwards keep-alives and TimeToLive to the leader's peer URL (known from
  // the start, unlike client URLs), where peer_lease_service answers them.
  kvd::server::lease::LeaseServiceOptions lease_service_options;
  lease_service_options.leader_address = [lease_node]() -> std::optional<std::string> {
    uint64_t leader = lease_node->leader_id();
    if (leader == 0 || leader == lease_node->member_id()) return std::nullopt;
    for (const etcdserverpb::Member& m : lease_node->Members()) {
      if (m.id() != leader || m.peerurls().empty()) continue;
      absl::StatusOr<std::string> address = kvd::server::ListenAddressFromUrl(m.peerurls(0));
      if (address.ok()) return *address;
    }
    return std::nullopt;
  };
  kvd::server::lease::LeaseService lease_service(node->get(), &lessor,
                                                 std::move(lease_service_options));
  kvd::server::lease::LeaseService peer_lease_service(node->get(), &lessor);
  kvd::server::watch::WatchService watch_service(
      &watch_hub, [watch_node] { return watch_node->has_leader(); });
  // Lock and election: etcd's recipes over the node and the hub, on their own executor.
  kvd::server::v3lock::Recipes recipes(
      node->get(), &watch_hub,
      kvd::server::v3lock::ProposeLeaseGrant(node->get(), lessor_options.min_ttl_s));
  kvd::server::v3lock::LockService lock_service(&recipes);
  kvd::server::v3election::ElectionService election_service(&recipes);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  for (const std::string& address : config->listen_client_addresses) {
    builder.AddListeningPort(address, grpc::InsecureServerCredentials());
  }
  builder.SetMaxReceiveMessageSize(
      static_cast<int>(std::min<int64_t>(config->max_request_bytes + kGrpcOverheadBytes,
                                         std::numeric_limits<int>::max())));
  builder.SetMaxSendMessageSize(std::numeric_limits<int>::max());
  builder.RegisterService(&kv_service);
  builder.RegisterService(&maintenance_service);
  builder.RegisterService(&cluster_service);
  builder.RegisterService(&lease_service);
  builder.RegisterService(&watch_service);
  builder.RegisterService(&lock_service);
  builder.RegisterService(&election_service);
  // Members talk to each other on the peer URLs.
  grpc::ServerBuilder peer_builder;
  for (const std::string& address : config->listen_peer_addresses) {
    peer_builder.AddListeningPort(address, grpc::InsecureServerCredentials());
  }
  peer_builder.SetMaxReceiveMessageSize(std::numeric_limits<int>::max());
  peer_builder.RegisterService((*node)->peer_service());
  peer_builder.RegisterService((*node)->membership_service());
  peer_builder.RegisterService(&peer_lease_service);
  std::unique_ptr<grpc::Server> peer_server = peer_builder.BuildAndStart();
  // As etcd, serve clients once this member's name and client URLs are in the cluster's
  // membership (so every member lists them, and requests forwarded to a leader find it),
  // but not later than a bound: a member whose cluster has no quorum still answers.
  if (peer_server != nullptr) (*node)->WaitPublished(absl::Seconds(5));
  std::unique_ptr<grpc::Server> server =
      peer_server == nullptr ? nullptr : builder.BuildAndStart();
  if (server == nullptr) {
    std::fprintf(stderr, "kvd: cannot listen on %s\n",
                 absl::StrJoin(peer_server == nullptr ? config->listen_peer_addresses
                                                      : config->listen_client_addresses,
                               ", ").c_str());
    recipes.Stop();
    lessor.Stop();  // stopped in the same order as below
    watch_hub.Stop();
    maintenance_service.Stop();
    node->reset();
    return 1;
  }
  std::fprintf(stderr, "kvd: member %s (%016llx) ready to serve client requests on %s\n",
               config->name.c_str(), static_cast<unsigned long long>((*node)->member_id()),
               absl::StrJoin(config->listen_client_addresses, ", ").c_str());

  int signal = 0;
  sigwait(&signals, &signal);
  std::fprintf(stderr, "kvd: received signal %d, stopping\n", signal);
  // Streams (watches, keep-alives) never end on their own: give in-flight calls a moment,
  // then cancel. Peer streams go first, so the peer server does not wait for them.
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  (*node)->StopTransport();
  peer_server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
  recipes.Stop();  // before the node and the hub: its tasks use them
  lessor.Stop();  // before the node: it proposes, and proposals call back into it
  watch_hub.Stop();  // before the node: the hub reads its store
  maintenance_service.Stop();  // before the node: its worker reads the store
  server.reset();
  peer_server.reset();  // before the node: it serves the node's transport
  node->reset();
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
