// kvbench: a load generator for any etcd v3 endpoint (kvd or etcd). See bench/README.md.
//
//   kvbench <put|range|txn|watch|lease|kubernetes> --endpoints=h:p,... [flags] [--json]
//
// Exit codes: 0 the run finished and at least one operation succeeded; 1 no operation
// succeeded, or the workload's own check failed (e.g. lost txn updates); 2 bad usage;
// 3 an endpoint is unreachable.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "bench/kvbench/engine.h"
#include "bench/kvbench/flags.h"
#include "bench/kvbench/report.h"
#include "bench/kvbench/workload.h"

namespace kvbench {
namespace {

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;

int Fail(int code, const std::string& message) {
  std::fprintf(stderr, "kvbench: %s\n", message.c_str());
  return code;
}

// etcd's tools spell flags with dashes (--key-size); abseil's names use underscores. Rewrite
// the name part of every "--flag[=value]" argument before parsing, so both spellings work.
std::vector<std::string> UnderscoreFlagNames(int argc, char** argv) {
  std::vector<std::string> out(argv, argv + argc);
  for (size_t i = 1; i < out.size(); ++i) {
    std::string& a = out[i];
    if (a == "--") break;
    if (a.size() < 3 || a[0] != '-' || a[1] != '-') continue;
    for (size_t j = 2; j < a.size() && a[j] != '='; ++j) {
      if (a[j] == '-') a[j] = '_';
    }
  }
  return out;
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      absl::StrCat("load generator for etcd v3 endpoints (kvd or etcd)\n\n  kvbench <",
                   absl::StrJoin(WorkloadNames(), "|"),
                   "> --endpoints=host:port,... [--clients=N --conns=N --duration=10s|--total=N] "
                   "[--json]\n\nSee bench/README.md for the workloads and the JSON fields."));
  std::vector<std::string> normalized = UnderscoreFlagNames(argc, argv);
  std::vector<char*> normalized_argv;
  for (std::string& a : normalized) normalized_argv.push_back(a.data());
  std::vector<char*> args =
      absl::ParseCommandLine(static_cast<int>(normalized_argv.size()), normalized_argv.data());
  if (args.size() != 2) {
    return Fail(kExitUsage,
                absl::StrCat("want exactly one workload: ", absl::StrJoin(WorkloadNames(), ", ")));
  }
  const std::string name = args[1];

  Options opt;
  for (absl::string_view e :
       absl::StrSplit(absl::GetFlag(FLAGS_endpoints), ',', absl::SkipWhitespace())) {
    absl::ConsumePrefix(&e, "http://");
    opt.endpoints.emplace_back(e);
  }
  opt.conns = absl::GetFlag(FLAGS_conns);
  opt.clients = absl::GetFlag(FLAGS_clients);
  opt.threads = absl::GetFlag(FLAGS_threads);
  opt.total = absl::GetFlag(FLAGS_total);
  opt.duration = absl::GetFlag(FLAGS_duration);
  opt.timeout = absl::GetFlag(FLAGS_timeout);
  opt.dial_timeout = absl::GetFlag(FLAGS_dial_timeout);
  opt.direct = absl::GetFlag(FLAGS_direct);
  opt.progress = absl::GetFlag(FLAGS_progress) && isatty(STDERR_FILENO);
  if (opt.endpoints.empty()) return Fail(kExitUsage, "--endpoints is empty");
  if (opt.conns < 1 || opt.clients < 0 || opt.threads < 1 || opt.total < 0) {
    return Fail(kExitUsage,
                "--conns and --threads must be at least 1, --clients and --total "
                "at least 0");
  }
  if (opt.total == 0 && opt.duration <= absl::ZeroDuration()) {
    return Fail(kExitUsage, "give --duration > 0 or --total > 0");
  }
  if (opt.timeout <= absl::ZeroDuration()) return Fail(kExitUsage, "--timeout must be > 0");
  const bool json = absl::GetFlag(FLAGS_json);

  InstallInterruptHandler();
  Engine engine(opt);
  absl::StatusOr<std::unique_ptr<Workload>> workload = MakeWorkload(name, &engine);
  if (!workload.ok()) return Fail(kExitUsage, std::string(workload.status().message()));
  if (absl::Status s = engine.Connect(); !s.ok()) {
    return Fail(kExitUnreachable, std::string(s.message()));
  }
  engine.SetRows((*workload)->Rows());
  if (absl::Status s = (*workload)->Setup(); !s.ok()) {
    return Fail(absl::IsInvalidArgument(s) ? kExitUsage : kExitFailed,
                absl::StrCat("setup: ", s.ToString()));
  }

  engine.StartPolling();
  (*workload)->Start();
  Engine::Measured measured = engine.Run(name, [&] { (*workload)->Cancel(); });
  const bool clean = engine.Shutdown();

  Extras extras;
  absl::Status finish = (*workload)->Finish(&extras);
  PrintReport(name, engine, measured, extras, json);

  int code = 0;
  if (!finish.ok()) {
    code = Fail(kExitFailed, absl::StrCat("check: ", finish.ToString()));
  } else if (engine.Merged(0).ops == 0) {
    code = Fail(kExitFailed, "no operation succeeded");
  }
  if (!clean) {
    // Some completion never arrived: do not wait for gRPC's teardown.
    std::fflush(nullptr);
    std::_Exit(code);
  }
  return code;
}

}  // namespace
}  // namespace kvbench

int main(int argc, char** argv) { return kvbench::Main(argc, argv); }
