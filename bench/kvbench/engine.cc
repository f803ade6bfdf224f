#include "bench/kvbench/engine.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/create_channel_posix.h"

namespace kvbench {
namespace {

volatile std::sig_atomic_t g_interrupted = 0;

void OnInterrupt(int) { g_interrupted = 1; }

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto sec = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

// Polls every 10 ms; the progress bar redraws every 200 ms.
constexpr absl::Duration kPollInterval = absl::Milliseconds(10);
constexpr int kPollsPerDraw = 20;
// Beyond --timeout, how long the end of a run may wait for streams and pollers.
constexpr absl::Duration kShutdownSlack = absl::Seconds(2);

// One non-blocking connect to `ai` within `timeout`: the connected socket, or -1 with errno.
int ConnectOne(const addrinfo& ai, absl::Duration timeout) {
  int fd = socket(ai.ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int err = 0;
  if (connect(fd, ai.ai_addr, ai.ai_addrlen) != 0) {
    err = errno;
    if (err == EINPROGRESS) {
      pollfd p{.fd = fd, .events = POLLOUT, .revents = 0};
      const int ms = static_cast<int>(absl::ToInt64Milliseconds(timeout));
      if (poll(&p, 1, std::max(ms, 0)) == 1) {
        socklen_t len = sizeof(err);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      } else {
        err = ETIMEDOUT;
      }
    }
  }
  if (err != 0) {
    close(fd);
    errno = err;
    return -1;
  }
  int one = 1;  // as gRPC sets on its own sockets
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// A TCP connection to `endpoint` (host:port, [v6]:port), trying each address in turn.
absl::StatusOr<int> Dial(const std::string& endpoint, absl::Duration timeout) {
  const size_t colon = endpoint.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("endpoint ", endpoint, ": want host:port"));
  }
  absl::string_view host(endpoint.data(), colon);
  if (absl::ConsumePrefix(&host, "[")) absl::ConsumeSuffix(&host, "]");
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* addrs = nullptr;
  const int rc =
      getaddrinfo(std::string(host).c_str(), endpoint.c_str() + colon + 1, &hints, &addrs);
  if (rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("endpoint ", endpoint, " unreachable: ", gai_strerror(rc)));
  }
  const absl::Time deadline = absl::Now() + timeout;
  int fd = -1;
  int err = 0;
  for (const addrinfo* ai = addrs; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = ConnectOne(*ai, deadline - absl::Now());
    err = errno;
  }
  freeaddrinfo(addrs);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("endpoint ", endpoint, " unreachable: ", std::strerror(err)));
  }
  return fd;
}

}  // namespace

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void InstallInterruptHandler() { std::signal(SIGINT, OnInterrupt); }

uint64_t OpStats::error_count() const {
  uint64_t n = 0;
  for (uint64_t e : errors) n += e;
  return n;
}

void OpStats::Merge(const OpStats& other) {
  latency.Merge(other.latency);
  ops += other.ops;
  for (int i = 0; i < kCodes; ++i) errors[i] += other.errors[i];
}

Engine::Engine(Options options) : options_(std::move(options)) {
  // gRPC's locks are absl::Mutex; Debian's abseil checks lock order on every acquisition
  // (a graph search that costs several percent of the generator's CPU). kvbench is not
  // the place to find gRPC's deadlocks.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  for (int t = 0; t < options_.threads; ++t) {
    cqs_.push_back(std::make_unique<grpc::CompletionQueue>());
  }
}

Engine::~Engine() { Shutdown(); }

absl::Status Engine::Connect() {
  for (int i = 0; i < options_.conns; ++i) {
    Conn c;
    c.endpoint = options_.endpoints[i % options_.endpoints.size()];
    grpc::ChannelArguments args;
    // Without --direct: a private subchannel pool, so each Conn is its own TCP connection
    // even to one endpoint.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetMaxReceiveMessageSize(-1);
    // kvbench never retries: no retry filter buffering every call's messages.
    args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
    // The minimal filter stack (no per-call census, message size or compression
    // filters), but with deadlines still enforced on the client side.
    args.SetInt(GRPC_ARG_MINIMAL_STACK, 1);
    args.SetInt(GRPC_ARG_ENABLE_DEADLINE_CHECKS, 1);
    // No channelz: it counts every call (atomics and a clock read) for nobody to see.
    args.SetInt(GRPC_ARG_ENABLE_CHANNELZ, 0);
    if (options_.direct) {
      absl::StatusOr<int> fd = Dial(c.endpoint, options_.dial_timeout);
      if (!fd.ok()) return fd.status();
      c.channel = grpc::CreateCustomInsecureChannelFromFd(c.endpoint, *fd, args);
    } else {
      c.channel = grpc::CreateCustomChannel(c.endpoint, grpc::InsecureChannelCredentials(), args);
    }
    c.kv = etcdserverpb::KV::NewStub(c.channel);
    c.watch = etcdserverpb::Watch::NewStub(c.channel);
    c.lease = etcdserverpb::Lease::NewStub(c.channel);
    c.maintenance = etcdserverpb::Maintenance::NewStub(c.channel);
    conns_.push_back(std::move(c));
  }
  // Every connection must answer Status: the target is an etcd API endpoint and is up.
  for (Conn& c : conns_) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.dial_timeout));
    ctx.set_wait_for_ready(true);
    etcdserverpb::StatusResponse resp;
    grpc::Status s = c.maintenance->Status(&ctx, etcdserverpb::StatusRequest(), &resp);
    if (!s.ok()) {
      return absl::UnavailableError(
          absl::StrCat("endpoint ", c.endpoint, " unreachable: ", s.error_message()));
    }
  }
  return absl::OkStatus();
}

std::chrono::system_clock::time_point Engine::StreamDeadline() const {
  if (options_.total > 0) return std::chrono::system_clock::time_point::max();
  return absl::ToChronoTime(absl::Now() + options_.duration + 2 * options_.timeout +
                            kShutdownSlack);
}

void Engine::SetRows(std::vector<std::string> rows) {
  rows_ = std::move(rows);
  stats_.assign(options_.threads, std::vector<OpStats>(rows_.size()));
}

void Engine::StartPolling() {
  for (int t = 0; t < options_.threads; ++t) {
    pollers_.emplace_back([this, t] {
      void* tag;
      bool ok;
      while (cqs_[t]->Next(&tag, &ok)) static_cast<Tag*>(tag)->Proceed(ok);
      pollers_exited_.fetch_add(1);
    });
  }
}

void Engine::BeginMeasure() {
  start_ns_ = NowNs();
  start_cpu_s_ = CpuSeconds();
}

void Engine::WaitForEnd(const std::string& label) {
  // --total ends the run when the workers have done it; a workload without workers (e.g.
  // watch --rate=0, only holding watchers) runs for --duration.
  const bool by_total = options_.total > 0 && had_workers_.load();
  const int64_t end_ns =
      by_total ? INT64_MAX : start_ns_ + absl::ToInt64Nanoseconds(options_.duration);
  for (int polls = 0;; ++polls) {
    int64_t now = NowNs();
    if (g_interrupted || now >= end_ns || (had_workers_.load() && workers_.load() <= 0)) break;
    if (options_.progress && polls % kPollsPerDraw == 0) {
      DrawProgress(label, (now - start_ns_) / 1e9, false);
    }
    absl::SleepFor(kPollInterval);
  }
}

Engine::Measured Engine::EndMeasure() {
  Measured m;
  const int64_t limit_ns = NowNs() + absl::ToInt64Nanoseconds(options_.timeout + kShutdownSlack);
  while (active_.load() > 0 && NowNs() < limit_ns) absl::SleepFor(kPollInterval);
  m.drained = active_.load() <= 0;
  m.elapsed_s = (NowNs() - start_ns_) / 1e9;
  m.cpu_s = CpuSeconds() - start_cpu_s_;
  if (options_.progress) DrawProgress("", m.elapsed_s, true);
  return m;
}

void Engine::DrawProgress(const std::string& label, double elapsed_s, bool final) {
  if (final) {
    std::fprintf(stderr, "\r\033[K");
    return;
  }
  double fraction = options_.total > 0 ? static_cast<double>(progress_ops_.load()) / options_.total
                                       : elapsed_s / absl::ToDoubleSeconds(options_.duration);
  fraction = std::min(std::max(fraction, 0.0), 1.0);
  constexpr int kWidth = 30;
  int filled = static_cast<int>(fraction * kWidth);
  std::string bar(filled, '#');
  bar.append(kWidth - filled, '.');
  uint64_t ops = progress_ops_.load();
  std::fprintf(stderr, "\r\033[K%s [%s] %3.0f%% %6.1fs %10llu ops %9.0f/s", label.c_str(),
               bar.c_str(), fraction * 100, elapsed_s, static_cast<unsigned long long>(ops),
               elapsed_s > 0 ? ops / elapsed_s : 0.0);
}

bool Engine::Shutdown() {
  if (pollers_.empty()) return true;
  for (auto& cq : cqs_) cq->Shutdown();
  const int64_t limit_ns = NowNs() + absl::ToInt64Nanoseconds(kShutdownSlack);
  while (pollers_exited_.load() < static_cast<int>(pollers_.size()) && NowNs() < limit_ns) {
    absl::SleepFor(kPollInterval);
  }
  if (pollers_exited_.load() < static_cast<int>(pollers_.size())) {
    for (auto& p : pollers_) p.detach();
    pollers_.clear();
    return false;
  }
  for (auto& p : pollers_) p.join();
  pollers_.clear();
  return true;
}

OpStats Engine::Merged(int row) const {
  OpStats merged;
  for (const auto& per_thread : stats_) merged.Merge(per_thread[row]);
  return merged;
}

}  // namespace kvbench
