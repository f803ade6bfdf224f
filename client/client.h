// kvd::client::Client — a small synchronous client for etcd's v3 gRPC API.
//
// It talks to any etcd-compatible endpoint (kvd or etcd itself) and depends on api/ only.
// One Client holds one gRPC channel (and its own connection) per endpoint. A request goes
// to the current endpoint; if it is not connected, every endpoint is dialed and the first
// to connect within the dial timeout becomes current (the current one first, then the
// others in round robin order), and later requests stay there. Responses and errors come
// back unchanged: a gRPC status becomes an absl::Status with the same code and message,
// so etcd's errors ("etcdserver: mvcc: required revision has been
// compacted", OUT_OF_RANGE) reach the caller exactly as the server sent them.
//
// Retries: reads (Range, Status(), MemberList, LeaseTimeToLive, LeaseLeases,
// LeaseKeepAliveOnce, Alarm GET, auth reads) that fail with UNAVAILABLE are retried on the
// next endpoint within the request timeout. Writes (Put, DeleteRange, Txn, Compact, lease,
// member and auth changes) are only failed over before they are sent; once sent, an
// UNAVAILABLE is returned to the caller because the write may or may not have been
// applied. Calls that name an endpoint (Status(endpoint), HashKV, Defragment, MoveLeader,
// Snapshot) go to that endpoint only.
//
// Thread safety: all methods may be called concurrently.
#ifndef KVD_CLIENT_CLIENT_H_
#define KVD_CLIENT_CLIENT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "api/etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace kvd::client {

struct Options {
  // "host:port" or "http://host:port", as etcdctl's --endpoints accepts them. Not empty.
  std::vector<std::string> endpoints;
  // How long one request waits for a connection to some endpoint.
  absl::Duration dial_timeout = absl::Seconds(2);
  // Total time one request may take, dialing and failover included.
  absl::Duration request_timeout = absl::Seconds(5);
  // With a user name, the client authenticates (Auth.Authenticate) before its first
  // request and sends the token with every request, fetching a new one when the server
  // reports it invalid. If the server has auth disabled, requests go without a token.
  std::string username;
  std::string password;
};

// Turns an etcdctl-style endpoint into a gRPC target ("http://h:p" -> "h:p").
// Errors: INVALID_ARGUMENT for an empty endpoint, a missing port, or a scheme other than
// http (TLS is not supported yet).
absl::StatusOr<std::string> GrpcTarget(absl::string_view endpoint);

// The absl::Status for a gRPC status: same code, same message. A deadline is reported as
// etcdctl reports it: DEADLINE_EXCEEDED "context deadline exceeded".
absl::Status FromGrpcStatus(const grpc::Status& status);

// One Watch stream (etcd's Watch service): a bidirectional stream that carries the
// responses of one or more watchers. Next() blocks for the next response; Cancel() (from
// any thread) ends the stream and unblocks Next(). A stream is bound to one endpoint and
// is not re-established if that endpoint fails: the caller creates a new one, starting
// from the revision after the last event it saw.
class WatchStream {
 public:
  ~WatchStream();
  WatchStream(const WatchStream&) = delete;
  WatchStream& operator=(const WatchStream&) = delete;

  // The next response: the "created" answer to a create request, events, a progress
  // notification, or a cancellation (canceled() with compact_revision or cancel_reason).
  // Errors: the stream's final gRPC status once it has ended (CANCELLED after Cancel()).
  absl::StatusOr<etcdserverpb::WatchResponse> Next();
  // Sends a request on the stream: create another watcher, cancel one, ask for progress.
  // Errors: UNAVAILABLE if the stream has ended.
  absl::Status Send(const etcdserverpb::WatchRequest& request);
  // Ends the stream. Safe to call from any thread, more than once.
  void Cancel();

 private:
  friend class Client;
  WatchStream() = default;

  std::shared_ptr<grpc::Channel> channel_;  // keeps the connection alive
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>>
      stream_;
  absl::Mutex write_mu_;  // one writer at a time (Send)
  // Owned by the reading thread (Next, then the destructor).
  bool finished_ = false;
  absl::Status final_status_;
};

class Client {
 public:
  // Validates the options; does not connect (connections are made on first use).
  static absl::StatusOr<std::unique_ptr<Client>> Create(Options options);

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client();

  // KV service.
  absl::StatusOr<etcdserverpb::RangeResponse> Range(const etcdserverpb::RangeRequest& request);
  absl::StatusOr<etcdserverpb::PutResponse> Put(const etcdserverpb::PutRequest& request);
  absl::StatusOr<etcdserverpb::DeleteRangeResponse> DeleteRange(
      const etcdserverpb::DeleteRangeRequest& request);
  absl::StatusOr<etcdserverpb::TxnResponse> Txn(const etcdserverpb::TxnRequest& request);
  absl::StatusOr<etcdserverpb::CompactionResponse> Compact(
      const etcdserverpb::CompactionRequest& request);

  // Maintenance service, answered by the current endpoint (with failover).
  absl::StatusOr<etcdserverpb::StatusResponse> Status();
  // Maintenance service, answered by exactly `endpoint` (which need not be one of the
  // client's endpoints); no failover. This is what `endpoint status` needs.
  absl::StatusOr<etcdserverpb::StatusResponse> Status(absl::string_view endpoint);
  absl::StatusOr<etcdserverpb::HashKVResponse> HashKV(absl::string_view endpoint, int64_t revision);

  // Defragments the backend of exactly `endpoint`; no failover.
  absl::StatusOr<etcdserverpb::DefragmentResponse> Defragment(absl::string_view endpoint);
  // Asks `endpoint`, which must be the leader, to hand leadership to member `target_id`.
  absl::StatusOr<etcdserverpb::MoveLeaderResponse> MoveLeader(absl::string_view endpoint,
                                                              uint64_t target_id);
  // Streams a snapshot of exactly `endpoint`'s backend, handing each chunk to `chunk`
  // (which may stop the stream by returning an error). `timeout` bounds the whole
  // transfer; absl::InfiniteDuration() for none (etcdctl's default for snapshots).
  absl::Status Snapshot(
      absl::string_view endpoint, absl::Duration timeout,
      const std::function<absl::Status(const etcdserverpb::SnapshotResponse&)>& chunk);
  // Lists (GET), raises or clears alarms.
  absl::StatusOr<etcdserverpb::AlarmResponse> Alarm(const etcdserverpb::AlarmRequest& request);

  // Cluster service.
  absl::StatusOr<etcdserverpb::MemberListResponse> MemberList(
      const etcdserverpb::MemberListRequest& request);
  absl::StatusOr<etcdserverpb::MemberAddResponse> MemberAdd(
      const etcdserverpb::MemberAddRequest& request);
  absl::StatusOr<etcdserverpb::MemberRemoveResponse> MemberRemove(uint64_t id);
  absl::StatusOr<etcdserverpb::MemberUpdateResponse> MemberUpdate(
      const etcdserverpb::MemberUpdateRequest& request);
  absl::StatusOr<etcdserverpb::MemberPromoteResponse> MemberPromote(uint64_t id);

  // Watch service: opens a stream on a connected endpoint and sends `create` on it. The
  // first response (read with Next()) confirms the watcher ("created") or cancels it.
  // The stream carries etcd's "require leader" metadata, as etcdctl's watches do.
  // Errors: as for other requests while connecting; UNAVAILABLE if sending fails.
  absl::StatusOr<std::unique_ptr<WatchStream>> Watch(
      const etcdserverpb::WatchCreateRequest& create);

  // Lease service.
  absl::StatusOr<etcdserverpb::LeaseGrantResponse> LeaseGrant(
      const etcdserverpb::LeaseGrantRequest& request);
  absl::StatusOr<etcdserverpb::LeaseRevokeResponse> LeaseRevoke(int64_t id);
  absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> LeaseTimeToLive(
      const etcdserverpb::LeaseTimeToLiveRequest& request);
  absl::StatusOr<etcdserverpb::LeaseLeasesResponse> LeaseLeases();
  // Renews a lease once over a short-lived LeaseKeepAlive stream.
  // Errors: NOT_FOUND "etcdserver: requested lease not found" if the lease does not exist
  // (the server answers with TTL <= 0), as etcd's clientv3 reports it.
  absl::StatusOr<etcdserverpb::LeaseKeepAliveResponse> LeaseKeepAliveOnce(int64_t id);

  // Auth service.
  absl::StatusOr<etcdserverpb::AuthEnableResponse> AuthEnable();
  absl::StatusOr<etcdserverpb::AuthDisableResponse> AuthDisable();
  absl::StatusOr<etcdserverpb::AuthStatusResponse> AuthStatus();
  absl::StatusOr<etcdserverpb::AuthUserAddResponse> UserAdd(
      const etcdserverpb::AuthUserAddRequest& request);
  absl::StatusOr<etcdserverpb::AuthUserGetResponse> UserGet(const std::string& name);
  absl::StatusOr<etcdserverpb::AuthUserListResponse> UserList();
  absl::StatusOr<etcdserverpb::AuthUserDeleteResponse> UserDelete(const std::string& name);
  absl::StatusOr<etcdserverpb::AuthUserChangePasswordResponse> UserChangePassword(
      const std::string& name, const std::string& password);
  absl::StatusOr<etcdserverpb::AuthUserGrantRoleResponse> UserGrantRole(const std::string& user,
                                                                        const std::string& role);
  absl::StatusOr<etcdserverpb::AuthUserRevokeRoleResponse> UserRevokeRole(const std::string& user,
                                                                          const std::string& role);
  absl::StatusOr<etcdserverpb::AuthRoleAddResponse> RoleAdd(const std::string& name);
  absl::StatusOr<etcdserverpb::AuthRoleGetResponse> RoleGet(const std::string& name);
  absl::StatusOr<etcdserverpb::AuthRoleListResponse> RoleList();
  absl::StatusOr<etcdserverpb::AuthRoleDeleteResponse> RoleDelete(const std::string& name);
  absl::StatusOr<etcdserverpb::AuthRoleGrantPermissionResponse> RoleGrantPermission(
      const etcdserverpb::AuthRoleGrantPermissionRequest& request);
  absl::StatusOr<etcdserverpb::AuthRoleRevokePermissionResponse> RoleRevokePermission(
      const etcdserverpb::AuthRoleRevokePermissionRequest& request);

  // The endpoint the next request goes to first (as given in Options::endpoints).
  std::string CurrentEndpoint() const;

 private:
  struct Endpoint;

  explicit Client(Options options, std::vector<std::unique_ptr<Endpoint>> endpoints);

  // Runs `call` against endpoints until it succeeds, fails with an error that must not be
  // retried, or the request timeout passes. See the file comment for the retry rules.
  absl::Status Invoke(bool idempotent,
                      const std::function<grpc::Status(Endpoint&, grpc::ClientContext&)>& call);
  // Runs `call` against one endpoint only.
  absl::Status InvokeOn(absl::string_view endpoint,
                        const std::function<grpc::Status(Endpoint&, grpc::ClientContext&)>& call);
  // Waits until some endpoint is connected, preferring the current one; returns its index.
  // Errors: DEADLINE_EXCEEDED when none connects before `dial_deadline`.
  absl::StatusOr<size_t> Connect(absl::Time dial_deadline);
  void Advance(size_t failed_index);
  // Adds the auth token to `context`, authenticating against `ep` first if there is none.
  // Errors: the Authenticate error (e.g. wrong password).
  absl::Status Authorize(Endpoint& ep, grpc::ClientContext& context, absl::Time deadline);
  // Whether a failed request should be retried once with a fresh token.
  bool DropTokenIfInvalid(const grpc::Status& status);
  template <typename Response, typename Request>
  absl::StatusOr<Response> CallAuth(bool idempotent, const Request& request,
                                    grpc::Status (etcdserverpb::Auth::Stub::*method)(
                                        grpc::ClientContext*, const Request&, Response*));
  absl::StatusOr<Endpoint*> Adhoc(absl::string_view endpoint);

  const Options options_;
  const std::vector<std::unique_ptr<Endpoint>> endpoints_;
  mutable absl::Mutex mu_;
  size_t current_ ABSL_GUARDED_BY(mu_) = 0;
  std::string token_ ABSL_GUARDED_BY(mu_);
  bool auth_disabled_ ABSL_GUARDED_BY(mu_) = false;  // the server said auth is not enabled
  // Channels to endpoints outside options_.endpoints, for Status(endpoint) and HashKV.
  std::map<std::string, std::unique_ptr<Endpoint>, std::less<>> adhoc_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kvd::client

#endif  // KVD_CLIENT_CLIENT_H_
