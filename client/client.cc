#include "client/client.h"

#include <chrono>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace kvd::client {

namespace pb = ::etcdserverpb;

namespace {

// How often Connect() looks at channel states while waiting for one to become ready.
constexpr absl::Duration kConnectPollInterval = absl::Milliseconds(10);

std::chrono::system_clock::time_point ToChrono(absl::Time t) { return absl::ToChronoTime(t); }

}  // namespace

struct Client::Endpoint {
  std::string name;    // as given by the user, e.g. "http://127.0.0.1:2379"
  std::string target;  // gRPC target, e.g. "127.0.0.1:2379"
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::KV::Stub> kv;
  std::unique_ptr<pb::Maintenance::Stub> maintenance;
  std::unique_ptr<pb::Cluster::Stub> cluster;
  std::unique_ptr<pb::Lease::Stub> lease;
  std::unique_ptr<pb::Watch::Stub> watch;
  std::unique_ptr<pb::Auth::Stub> auth;

  static std::unique_ptr<Endpoint> Open(std::string name, std::string target) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);  // etcd's clients accept responses of any size
    // Reconnect quickly after a member comes back; gRPC's default backoff reaches minutes.
    // (GRPC_ARG_MIN_RECONNECT_BACKOFF_MS is left alone: it is also the connect timeout.)
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    // Each Client gets its own connections (gRPC would share them between channels to the
    // same address), so a load generator can open several.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto ep = std::make_unique<Endpoint>();
    ep->name = std::move(name);
    ep->target = std::move(target);
    ep->channel = grpc::CreateCustomChannel(ep->target, grpc::InsecureChannelCredentials(), args);
    ep->kv = pb::KV::NewStub(ep->channel);
    ep->maintenance = pb::Maintenance::NewStub(ep->channel);
    ep->cluster = pb::Cluster::NewStub(ep->channel);
    ep->lease = pb::Lease::NewStub(ep->channel);
    ep->watch = pb::Watch::NewStub(ep->channel);
    ep->auth = pb::Auth::NewStub(ep->channel);
    return ep;
  }
};

absl::StatusOr<std::string> GrpcTarget(absl::string_view endpoint) {
  absl::string_view rest = absl::StripAsciiWhitespace(endpoint);
  if (absl::StartsWith(rest, "https://") || absl::StartsWith(rest, "unixs://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("endpoint ", endpoint, ": TLS endpoints are not supported yet"));
  }
  absl::ConsumePrefix(&rest, "http://");
  absl::ConsumeSuffix(&rest, "/");
  if (rest.find("://") != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("endpoint ", endpoint, ": unsupported scheme (want host:port or http://)"));
  }
  const size_t colon = rest.rfind(':');
  uint32_t port = 0;
  if (rest.empty() || colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(rest.substr(colon + 1), &port) || port == 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("endpoint \"", endpoint, "\": want host:port or http://host:port"));
  }
  return std::string(rest);
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::DeadlineExceededError("context deadline exceeded");
  }
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(Options options) {
  if (options.endpoints.empty()) return absl::InvalidArgumentError("no endpoints given");
  if (options.dial_timeout <= absl::ZeroDuration() ||
      options.request_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("dial and request timeouts must be positive");
  }
  std::vector<std::unique_ptr<Endpoint>> endpoints;
  for (const std::string& name : options.endpoints) {
    absl::StatusOr<std::string> target = GrpcTarget(name);
    if (!target.ok()) return target.status();
    endpoints.push_back(Endpoint::Open(name, *std::move(target)));
  }
  return std::unique_ptr<Client>(new Client(std::move(options), std::move(endpoints)));
}

Client::Client(Options options, std::vector<std::unique_ptr<Endpoint>> endpoints)
    : options_(std::move(options)), endpoints_(std::move(endpoints)) {}

Client::~Client() = default;

std::string Client::CurrentEndpoint() const {
  absl::MutexLock lock(&mu_);
  return endpoints_[current_]->name;
}

void Client::Advance(size_t failed_index) {
  absl::MutexLock lock(&mu_);
  if (current_ == failed_index) current_ = (current_ + 1) % endpoints_.size();
}

absl::StatusOr<size_t> Client::Connect(absl::Time dial_deadline) {
  const size_t n = endpoints_.size();
  size_t start;
  {
    absl::MutexLock lock(&mu_);
    start = current_;
  }
  while (true) {
    // GetState(true) also starts connecting an idle channel, so every endpoint is dialed
    // in parallel and the first that answers wins (the current one if it is ready).
    grpc_connectivity_state start_state = GRPC_CHANNEL_IDLE;
    for (size_t i = 0; i < n; ++i) {
      const size_t index = (start + i) % n;
      const grpc_connectivity_state state =
          endpoints_[index]->channel->GetState(/*try_to_connect=*/true);
      if (state == GRPC_CHANNEL_READY) {
        absl::MutexLock lock(&mu_);
        current_ = index;
        return index;
      }
      if (i == 0) start_state = state;
    }
    const absl::Time now = absl::Now();
    if (now >= dial_deadline) break;
    // Blocking on a state change (rather than sleeping) is what drives gRPC's polling, and
    // with it name resolution and connection setup, for all channels.
    endpoints_[start]->channel->WaitForStateChange(
        start_state, ToChrono(std::min(now + kConnectPollInterval, dial_deadline)));
  }
  std::vector<std::string> names;
  for (const auto& ep : endpoints_) names.push_back(ep->name);
  return absl::DeadlineExceededError(absl::StrCat(
      "context deadline exceeded (no endpoint reachable within dial timeout ",
      absl::FormatDuration(options_.dial_timeout), ": ", absl::StrJoin(names, ", "), ")"));
}

absl::Status Client::Authorize(Endpoint& ep, grpc::ClientContext& context, absl::Time deadline) {
  if (options_.username.empty()) return absl::OkStatus();
  std::string token;
  {
    absl::MutexLock lock(&mu_);
    if (auth_disabled_) return absl::OkStatus();
    token = token_;
  }
  if (token.empty()) {
    pb::AuthenticateRequest request;
    request.set_name(options_.username);
    request.set_password(options_.password);
    pb::AuthenticateResponse response;
    grpc::ClientContext auth_context;
    auth_context.set_deadline(ToChrono(deadline));
    const grpc::Status status = ep.auth->Authenticate(&auth_context, request, &response);
    if (!status.ok()) {
      if (status.error_message() == "etcdserver: authentication is not enabled") {
        absl::MutexLock lock(&mu_);
        auth_disabled_ = true;
        return absl::OkStatus();
      }
      return FromGrpcStatus(status);
    }
    token = response.token();
    absl::MutexLock lock(&mu_);
    token_ = token;
  }
  context.AddMetadata("token", token);
  return absl::OkStatus();
}

bool Client::DropTokenIfInvalid(const grpc::Status& status) {
  if (options_.username.empty()) return false;
  const bool invalid = status.error_message() == "etcdserver: invalid auth token" ||
                       status.error_message() == "etcdserver: user name is empty";
  if (!invalid) return false;
  absl::MutexLock lock(&mu_);
  token_.clear();
  auth_disabled_ = false;  // auth may have been enabled since we last asked
  return true;
}

absl::Status Client::Invoke(
    bool idempotent, const std::function<grpc::Status(Endpoint&, grpc::ClientContext&)>& call) {
  const absl::Time deadline = absl::Now() + options_.request_timeout;
  size_t failed_attempts = 0;
  bool token_refreshed = false;
  while (true) {
    const absl::Time dial_deadline = std::min(absl::Now() + options_.dial_timeout, deadline);
    absl::StatusOr<size_t> index = Connect(dial_deadline);
    if (!index.ok()) return index.status();
    grpc::ClientContext context;
    context.set_deadline(ToChrono(deadline));
    if (absl::Status auth = Authorize(*endpoints_[*index], context, deadline); !auth.ok()) {
      return auth;
    }
    const grpc::Status status = call(*endpoints_[*index], context);
    if (status.ok()) return absl::OkStatus();
    // An expired or unknown token was rejected before the request did anything.
    if (!token_refreshed && DropTokenIfInvalid(status)) {
      token_refreshed = true;
      continue;
    }
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return FromGrpcStatus(status);
    // The endpoint is going away (or has no leader): later requests start elsewhere.
    Advance(*index);
    ++failed_attempts;
    if (!idempotent || failed_attempts >= endpoints_.size() || absl::Now() >= deadline) {
      return FromGrpcStatus(status);
    }
  }
}

absl::StatusOr<Client::Endpoint*> Client::Adhoc(absl::string_view endpoint) {
  for (const auto& ep : endpoints_) {
    if (ep->name == endpoint) return ep.get();
  }
  absl::StatusOr<std::string> target = GrpcTarget(endpoint);
  if (!target.ok()) return target.status();
  absl::MutexLock lock(&mu_);
  auto it = adhoc_.find(endpoint);
  if (it == adhoc_.end()) {
    it =
        adhoc_.emplace(std::string(endpoint), Endpoint::Open(std::string(endpoint), *target)).first;
  }
  return it->second.get();
}

absl::Status Client::InvokeOn(
    absl::string_view endpoint,
    const std::function<grpc::Status(Endpoint&, grpc::ClientContext&)>& call) {
  absl::StatusOr<Endpoint*> ep = Adhoc(endpoint);
  if (!ep.ok()) return ep.status();
  const absl::Time deadline = absl::Now() + options_.request_timeout;
  const absl::Time dial_deadline = std::min(absl::Now() + options_.dial_timeout, deadline);
  if (!(*ep)->channel->WaitForConnected(ToChrono(dial_deadline))) {
    return absl::DeadlineExceededError(
        absl::StrCat("context deadline exceeded (", endpoint, " not reachable within dial timeout ",
                     absl::FormatDuration(options_.dial_timeout), ")"));
  }
  for (int attempt = 0;; ++attempt) {
    grpc::ClientContext context;
    context.set_deadline(ToChrono(deadline));
    if (absl::Status auth = Authorize(**ep, context, deadline); !auth.ok()) return auth;
    const grpc::Status status = call(**ep, context);
    if (attempt == 0 && !status.ok() && DropTokenIfInvalid(status)) continue;
    return FromGrpcStatus(status);
  }
}

absl::StatusOr<pb::RangeResponse> Client::Range(const pb::RangeRequest& request) {
  pb::RangeResponse response;
  absl::Status status = Invoke(/*idempotent=*/true, [&](Endpoint& ep, grpc::ClientContext& ctx) {
    return ep.kv->Range(&ctx, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<pb::PutResponse> Client::Put(const pb::PutRequest& request) {
  pb::PutResponse response;
  absl::Status status = Invoke(/*idempotent=*/false, [&](Endpoint& ep, grpc::ClientContext& ctx) {
    return ep.kv->Put(&ctx, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<pb::DeleteRangeResponse> Client::DeleteRange(const pb::DeleteRangeRequest& request) {
  pb::DeleteRangeResponse response;
  absl::Status status = Invoke(/*idempotent=*/false, [&](Endpoint& ep, grpc::ClientContext& ctx) {
    return ep.kv->DeleteRange(&ctx, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<pb::TxnResponse> Client::Txn(const pb::TxnRequest& request) {
  pb::TxnResponse response;
  absl::Status status = Invoke(/*idempotent=*/false, [&](Endpoint& ep, grpc::ClientContext& ctx) {
    return ep.kv->Txn(&ctx, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<pb::CompactionResponse> Client::Compact(const pb::CompactionRequest& request) {
  pb::CompactionResponse response;
  absl::Status status = Invoke(/*idempotent=*/false, [&](Endpoint& ep, grpc::ClientContext& ctx) {
    return ep.kv->Compact(&ctx, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<pb::StatusResponse> Client::Status() {
  pb::StatusResponse response;
  absl::Status status = Invoke(/*idempotent=*/true, [&](Endpoint& ep, grpc::ClientContext& ctx) {
    return ep.maintenance->Status(&ctx, pb::StatusRequest(), &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<pb::StatusResponse> Client::Status(absl::string_view endpoint) {
  pb::StatusResponse response;
  absl::Status status = InvokeOn(endpoint, [&](Endpoint& ep, grpc::ClientContext& ctx) {
    return ep.maintenance->Status(&ctx, pb::StatusRequest(), &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<pb::HashKVResponse> Client::HashKV(absl::string_view endpoint, int64_t revision) {
  pb::HashKVRequest request;
  request.set_revision(revision);
  pb::HashKVResponse response;
  absl::Status status = InvokeOn(endpoint, [&](Endpoint& ep, grpc::ClientContext& ctx) {
    return ep.maintenance->HashKV(&ctx, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<pb::MemberListResponse> Client::MemberList(const pb::MemberListRequest& request) {
  pb::MemberListResponse response;
  absl::Status status = Invoke(/*idempotent=*/true, [&](Endpoint& ep, grpc::ClientContext& ctx) {
    return ep.cluster->MemberList(&ctx, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

WatchStream::~WatchStream() {
  Cancel();
  if (!finished_) {
    pb::WatchResponse ignored;
    while (stream_->Read(&ignored)) {
    }
    stream_->Finish().IgnoreError();
  }
}

void WatchStream::Cancel() { context_.TryCancel(); }

absl::Status WatchStream::Send(const pb::WatchRequest& request) {
  absl::MutexLock lock(&write_mu_);
  if (!stream_->Write(request)) return absl::UnavailableError("watch stream has ended");
  return absl::OkStatus();
}

absl::StatusOr<pb::WatchResponse> WatchStream::Next() {
  if (finished_) return final_status_;
  pb::WatchResponse response;
  if (stream_->Read(&response)) return response;
  finished_ = true;
  final_status_ = FromGrpcStatus(stream_->Finish());
  if (final_status_.ok()) final_status_ = absl::CancelledError("watch stream closed by the server");
  return final_status_;
}

absl::StatusOr<std::unique_ptr<WatchStream>> Client::Watch(const pb::WatchCreateRequest& create) {
  const absl::Time deadline = absl::Now() + options_.request_timeout;
  absl::StatusOr<size_t> index = Connect(std::min(absl::Now() + options_.dial_timeout, deadline));
  if (!index.ok()) return index.status();
  Endpoint& ep = *endpoints_[*index];
  std::unique_ptr<WatchStream> watch(new WatchStream());
  watch->channel_ = ep.channel;
  // etcd cancels such watches when its member loses the leader, instead of letting them
  // go silent (clientv3.WithRequireLeader).
  watch->context_.AddMetadata("hasleader", "true");
  if (absl::Status auth = Authorize(ep, watch->context_, deadline); !auth.ok()) return auth;
  watch->stream_ = ep.watch->Watch(&watch->context_);
  pb::WatchRequest request;
  *request.mutable_create_request() = create;
  if (absl::Status sent = watch->Send(request); !sent.ok()) {
    // The stream ended before it started; its final status says why (e.g. UNIMPLEMENTED).
    absl::StatusOr<pb::WatchResponse> ended = watch->Next();
    if (ended.ok()) return sent;
    if (ended.status().code() == absl::StatusCode::kUnavailable) Advance(*index);
    return ended.status();
  }
  return watch;
}

absl::StatusOr<pb::DefragmentResponse> Client::Defragment(absl::string_view endpoint) {
  pb::DefragmentResponse response;
  absl::Status status = InvokeOn(endpoint, [&](Endpoint& ep, grpc::ClientContext& ctx) {
    return ep.maintenance->Defragment(&ctx, pb::DefragmentRequest(), &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::Status Client::Snapshot(
    absl::string_view endpoint, absl::Duration timeout,
    const std::function<absl::Status(const pb::SnapshotResponse&)>& chunk) {
  absl::StatusOr<Endpoint*> ep = Adhoc(endpoint);
  if (!ep.ok()) return ep.status();
  const absl::Time dial_deadline = absl::Now() + std::min(options_.dial_timeout, timeout);
  if (!(*ep)->channel->WaitForConnected(ToChrono(dial_deadline))) {
    return absl::DeadlineExceededError(
        absl::StrCat("context deadline exceeded (", endpoint, " not reachable within dial timeout ",
                     absl::FormatDuration(options_.dial_timeout), ")"));
  }
  grpc::ClientContext context;
  if (timeout != absl::InfiniteDuration()) context.set_deadline(ToChrono(absl::Now() + timeout));
  if (absl::Status auth = Authorize(**ep, context, absl::Now() + options_.request_timeout);
      !auth.ok()) {
    return auth;
  }
  std::unique_ptr<grpc::ClientReader<pb::SnapshotResponse>> reader =
      (*ep)->maintenance->Snapshot(&context, pb::SnapshotRequest());
  pb::SnapshotResponse response;
  absl::Status sink_status;
  while (reader->Read(&response)) {
    sink_status = chunk(response);
    if (!sink_status.ok()) {
      context.TryCancel();
      while (reader->Read(&response)) {
      }
      break;
    }
  }
  const absl::Status stream_status = FromGrpcStatus(reader->Finish());
  return sink_status.ok() ? stream_status : sink_status;
}

absl::StatusOr<pb::MoveLeaderResponse> Client::MoveLeader(absl::string_view endpoint,
                                                          uint64_t target_id) {
  pb::MoveLeaderRequest request;
  request.set_targetid(target_id);
  pb::MoveLeaderResponse response;
  absl::Status status = InvokeOn(endpoint, [&](Endpoint& ep, grpc::ClientContext& ctx) {
    return ep.maintenance->MoveLeader(&ctx, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<pb::AlarmResponse> Client::Alarm(const pb::AlarmRequest& request) {
  pb::AlarmResponse response;
  const bool idempotent = request.action() == pb::AlarmRequest::GET;
  absl::Status status = Invoke(idempotent, [&](Endpoint& ep, grpc::ClientContext& ctx) {
    return ep.maintenance->Alarm(&ctx, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<pb::MemberAddResponse> Client::MemberAdd(const pb::MemberAddRequest& request) {
  pb::MemberAddResponse response;
  absl::Status status = Invoke(/*idempotent=*/false, [&](Endpoint& ep, grpc::ClientContext& ctx) {
    return ep.cluster->MemberAdd(&ctx, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<pb::MemberRemoveResponse> Client::MemberRemove(uint64_t id) {
  pb::MemberRemoveRequest request;
  request.set_id(id);
  pb::MemberRemoveResponse response;
  absl::Status status = Invoke(/*idempotent=*/false, [&](Endpoint& ep, grpc::ClientContext& ctx) {
    return ep.cluster->MemberRemove(&ctx, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<pb::MemberUpdateResponse> Client::MemberUpdate(
    const pb::MemberUpdateRequest& request) {
  pb::MemberUpdateResponse response;
  absl::Status status = Invoke(/*idempotent=*/false, [&](Endpoint& ep, grpc::ClientContext& ctx) {
    return ep.cluster->MemberUpdate(&ctx, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<pb::MemberPromoteResponse> Client::MemberPromote(uint64_t id) {
  pb::MemberPromoteRequest request;
  request.set_id(id);
  pb::MemberPromoteResponse response;
  absl::Status status = Invoke(/*idempotent=*/false, [&](Endpoint& ep, grpc::ClientContext& ctx) {
    return ep.cluster->MemberPromote(&ctx, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<pb::LeaseGrantResponse> Client::LeaseGrant(const pb::LeaseGrantRequest& request) {
  pb::LeaseGrantResponse response;
  absl::Status status = Invoke(/*idempotent=*/false, [&](Endpoint& ep, grpc::ClientContext& ctx) {
    return ep.lease->LeaseGrant(&ctx, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<pb::LeaseRevokeResponse> Client::LeaseRevoke(int64_t id) {
  pb::LeaseRevokeRequest request;
  request.set_id(id);
  pb::LeaseRevokeResponse response;
  absl::Status status = Invoke(/*idempotent=*/false, [&](Endpoint& ep, grpc::ClientContext& ctx) {
    return ep.lease->LeaseRevoke(&ctx, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<pb::LeaseTimeToLiveResponse> Client::LeaseTimeToLive(
    const pb::LeaseTimeToLiveRequest& request) {
  pb::LeaseTimeToLiveResponse response;
  absl::Status status = Invoke(/*idempotent=*/true, [&](Endpoint& ep, grpc::ClientContext& ctx) {
    return ep.lease->LeaseTimeToLive(&ctx, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<pb::LeaseLeasesResponse> Client::LeaseLeases() {
  pb::LeaseLeasesResponse response;
  absl::Status status = Invoke(/*idempotent=*/true, [&](Endpoint& ep, grpc::ClientContext& ctx) {
    return ep.lease->LeaseLeases(&ctx, pb::LeaseLeasesRequest(), &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<pb::LeaseKeepAliveResponse> Client::LeaseKeepAliveOnce(int64_t id) {
  pb::LeaseKeepAliveResponse response;
  absl::Status status = Invoke(/*idempotent=*/true, [&](Endpoint& ep, grpc::ClientContext& ctx) {
    std::unique_ptr<grpc::ClientReaderWriter<pb::LeaseKeepAliveRequest, pb::LeaseKeepAliveResponse>>
        stream = ep.lease->LeaseKeepAlive(&ctx);
    pb::LeaseKeepAliveRequest request;
    request.set_id(id);
    const bool exchanged = stream->Write(request) && stream->Read(&response);
    stream->WritesDone();
    if (exchanged) {
      // The server keeps the stream open; end it from our side.
      ctx.TryCancel();
      stream->Finish().IgnoreError();
      return grpc::Status::OK;
    }
    grpc::Status finished = stream->Finish();
    return finished.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                        "keep-alive stream closed without a response")
                         : finished;
  });
  if (!status.ok()) return status;
  if (response.ttl() <= 0) {
    return absl::NotFoundError("etcdserver: requested lease not found");
  }
  return response;
}

template <typename Response, typename Request>
absl::StatusOr<Response> Client::CallAuth(
    bool idempotent, const Request& request,
    grpc::Status (pb::Auth::Stub::*method)(grpc::ClientContext*, const Request&, Response*)) {
  Response response;
  absl::Status status = Invoke(idempotent, [&](Endpoint& ep, grpc::ClientContext& ctx) {
    return ((*ep.auth).*method)(&ctx, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<pb::AuthEnableResponse> Client::AuthEnable() {
  return CallAuth(false, pb::AuthEnableRequest(), &pb::Auth::Stub::AuthEnable);
}

absl::StatusOr<pb::AuthDisableResponse> Client::AuthDisable() {
  return CallAuth(false, pb::AuthDisableRequest(), &pb::Auth::Stub::AuthDisable);
}

absl::StatusOr<pb::AuthStatusResponse> Client::AuthStatus() {
  return CallAuth(true, pb::AuthStatusRequest(), &pb::Auth::Stub::AuthStatus);
}

absl::StatusOr<pb::AuthUserAddResponse> Client::UserAdd(const pb::AuthUserAddRequest& request) {
  return CallAuth(false, request, &pb::Auth::Stub::UserAdd);
}

absl::StatusOr<pb::AuthUserGetResponse> Client::UserGet(const std::string& name) {
  pb::AuthUserGetRequest request;
  request.set_name(name);
  return CallAuth(true, request, &pb::Auth::Stub::UserGet);
}

absl::StatusOr<pb::AuthUserListResponse> Client::UserList() {
  return CallAuth(true, pb::AuthUserListRequest(), &pb::Auth::Stub::UserList);
}

absl::StatusOr<pb::AuthUserDeleteResponse> Client::UserDelete(const std::string& name) {
  pb::AuthUserDeleteRequest request;
  request.set_name(name);
  return CallAuth(false, request, &pb::Auth::Stub::UserDelete);
}

absl::StatusOr<pb::AuthUserChangePasswordResponse> Client::UserChangePassword(
    const std::string& name, const std::string& password) {
  pb::AuthUserChangePasswordRequest request;
  request.set_name(name);
  request.set_password(password);
  return CallAuth(false, request, &pb::Auth::Stub::UserChangePassword);
}

absl::StatusOr<pb::AuthUserGrantRoleResponse> Client::UserGrantRole(const std::string& user,
                                                                    const std::string& role) {
  pb::AuthUserGrantRoleRequest request;
  request.set_user(user);
  request.set_role(role);
  return CallAuth(false, request, &pb::Auth::Stub::UserGrantRole);
}

absl::StatusOr<pb::AuthUserRevokeRoleResponse> Client::UserRevokeRole(const std::string& user,
                                                                      const std::string& role) {
  pb::AuthUserRevokeRoleRequest request;
  request.set_name(user);
  request.set_role(role);
  return CallAuth(false, request, &pb::Auth::Stub::UserRevokeRole);
}

absl::StatusOr<pb::AuthRoleAddResponse> Client::RoleAdd(const std::string& name) {
  pb::AuthRoleAddRequest request;
  request.set_name(name);
  return CallAuth(false, request, &pb::Auth::Stub::RoleAdd);
}

absl::StatusOr<pb::AuthRoleGetResponse> Client::RoleGet(const std::string& name) {
  pb::AuthRoleGetRequest request;
  request.set_role(name);
  return CallAuth(true, request, &pb::Auth::Stub::RoleGet);
}

absl::StatusOr<pb::AuthRoleListResponse> Client::RoleList() {
  return CallAuth(true, pb::AuthRoleListRequest(), &pb::Auth::Stub::RoleList);
}

absl::StatusOr<pb::AuthRoleDeleteResponse> Client::RoleDelete(const std::string& name) {
  pb::AuthRoleDeleteRequest request;
  request.set_role(name);
  return CallAuth(false, request, &pb::Auth::Stub::RoleDelete);
}

absl::StatusOr<pb::AuthRoleGrantPermissionResponse> Client::RoleGrantPermission(
    const pb::AuthRoleGrantPermissionRequest& request) {
  return CallAuth(false, request, &pb::Auth::Stub::RoleGrantPermission);
}

absl::StatusOr<pb::AuthRoleRevokePermissionResponse> Client::RoleRevokePermission(
    const pb::AuthRoleRevokePermissionRequest& request) {
  return CallAuth(false, request, &pb::Auth::Stub::RoleRevokePermission);
}

}  // namespace kvd::client
