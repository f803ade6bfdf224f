#include "server/etcd_flags.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

ABSL_FLAG(std::string, config_file, "",
          "Path to an etcd YAML configuration file (flag-name: value per line); when given, "
          "it replaces the other flags and the environment, as in etcd.");
// Member.
ABSL_FLAG(std::string, name, "default", "Human-readable name for this member.");
ABSL_FLAG(std::string, data_dir, "", "Path to the data directory (default: ${name}.etcd).");
ABSL_FLAG(std::string, wal_dir, "",
          "Accepted for etcd compatibility; kvd keeps its log in --data-dir.");
ABSL_FLAG(std::string, listen_client_urls, "http://localhost:2379",
          "Comma-separated URLs to listen on for client traffic.");
ABSL_FLAG(std::string, advertise_client_urls, "http://localhost:2379",
          "Comma-separated client URLs to advertise to the rest of the cluster.");
ABSL_FLAG(std::string, listen_peer_urls, "http://localhost:2380",
          "Comma-separated URLs to listen on for peer traffic.");
ABSL_FLAG(std::string, initial_advertise_peer_urls, "http://localhost:2380",
          "Comma-separated peer URLs of this member to advertise to the rest of the cluster.");
ABSL_FLAG(std::string, initial_cluster, "default=http://localhost:2380",
          "Initial cluster configuration for bootstrapping: name=peer-url,...");
ABSL_FLAG(std::string, initial_cluster_state, "new",
          "Initial cluster state ('new' or 'existing').");
ABSL_FLAG(std::string, initial_cluster_token, "etcd-cluster",
          "Initial cluster token for the cluster during bootstrap.");
ABSL_FLAG(uint64_t, heartbeat_interval, 100, "Time (in milliseconds) of a heartbeat interval.");
ABSL_FLAG(uint64_t, election_timeout, 1000, "Time (in milliseconds) for an election to timeout.");
ABSL_FLAG(uint64_t, snapshot_count, 100000,
          "Number of committed transactions to trigger a snapshot to disk.");
// Limits.
ABSL_FLAG(uint64_t, max_request_bytes, 1572864,
          "Maximum client request size in bytes the server will accept.");
ABSL_FLAG(uint64_t, max_txn_ops, 128, "Maximum number of operations permitted in a transaction.");
ABSL_FLAG(int64_t, quota_backend_bytes, 0,
          "Raise alarms when backend size exceeds the given quota (0 defaults to 2 GiB).");
ABSL_FLAG(absl::Duration, experimental_watch_progress_notify_interval, absl::Minutes(10),
          "Duration of periodic watch progress notifications (e.g. 10m, 500ms).");
ABSL_FLAG(std::string, auto_compaction_retention, "0",
          "Auto compaction retention for mvcc key value store (0 disables it).");
ABSL_FLAG(std::string, auto_compaction_mode, "periodic",
          "Interpret 'auto-compaction-retention' as 'periodic' or 'revision'.");
// Operation; accepted so that etcd command lines work unchanged.
ABSL_FLAG(std::string, logger, "zap", "Accepted for etcd compatibility.");
ABSL_FLAG(std::string, log_level, "info", "Log level: debug, info, warn, error.");
ABSL_FLAG(std::string, log_outputs, "default", "Accepted for etcd compatibility.");
ABSL_FLAG(bool, debug, false, "Enable debug-level logging.");
ABSL_FLAG(bool, enable_v2, false, "Accepted for etcd compatibility; kvd serves the v3 API only.");
ABSL_FLAG(bool, enable_pprof, false, "Accepted for etcd compatibility.");
ABSL_FLAG(std::string, metrics, "basic", "Accepted for etcd compatibility.");
ABSL_FLAG(std::string, listen_metrics_urls, "", "Accepted for etcd compatibility.");
ABSL_FLAG(bool, strict_reconfig_check, true,
          "Reject reconfiguration requests that would cause quorum loss.");
ABSL_FLAG(bool, force_new_cluster, false, "Force to create a new one member cluster.");
ABSL_FLAG(uint64_t, max_snapshots, 5, "Accepted for etcd compatibility.");
ABSL_FLAG(uint64_t, max_wals, 5, "Accepted for etcd compatibility.");
// Security.
ABSL_FLAG(std::string, cert_file, "", "Path to the client server TLS cert file.");
ABSL_FLAG(std::string, key_file, "", "Path to the client server TLS key file.");
ABSL_FLAG(bool, client_cert_auth, false, "Enable client cert authentication.");
ABSL_FLAG(std::string, trusted_ca_file, "", "Path to the client server TLS trusted CA cert file.");
ABSL_FLAG(bool, auto_tls, false, "Client TLS using generated certificates.");
ABSL_FLAG(std::string, peer_cert_file, "", "Path to the peer server TLS cert file.");
ABSL_FLAG(std::string, peer_key_file, "", "Path to the peer server TLS key file.");
ABSL_FLAG(bool, peer_client_cert_auth, false, "Enable peer client cert authentication.");
ABSL_FLAG(std::string, peer_trusted_ca_file, "", "Path to the peer server TLS trusted CA file.");
ABSL_FLAG(bool, peer_auto_tls, false, "Peer TLS using generated certificates.");
// Testing only: the fault harness (tools/jepsen) proves it can catch these.
ABSL_FLAG(std::string, kvd_plant_bug, "",
          "TEST ONLY, never in production: plant a known bug so that the fault harness can "
          "show it catches it. Comma-separated: 'local-reads' (linearizable reads served "
          "from local state without ReadIndex), 'no-fsync' (the log is written without "
          "fsync: acknowledged writes can be lost by a power loss).");

namespace kvd::server {
namespace {

constexpr char kVersionText[] =
    "kvd Version: 0.1.0\n"
    "etcd API version: 3.5\n";

std::vector<std::string> SplitUrls(const std::string& list) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
    out.emplace_back(absl::StripAsciiWhitespace(part));
  }
  return out;
}

// etcd's flags are spelled with dashes; abseil's with underscores. Rewrites the names (not
// the values) so both spellings work.
std::vector<std::string> NormalizeArgs(int argc, char** argv) {
  std::vector<std::string> args;
  args.reserve(argc);
  args.emplace_back(argv[0]);
  bool after_terminator = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (!after_terminator && arg == "--") after_terminator = true;
    if (!after_terminator && arg.size() > 1 && arg[0] == '-' && arg != "--") {
      size_t dashes = arg[1] == '-' ? 2 : 1;
      size_t eq = arg.find('=');
      std::string name = arg.substr(dashes, eq == std::string::npos ? eq : eq - dashes);
      std::string rest = eq == std::string::npos ? "" : arg.substr(eq);
      arg = absl::StrCat("--", absl::StrReplaceAll(name, {{"-", "_"}}), rest);
    }
    args.push_back(std::move(arg));
  }
  return args;
}

// Applies ETCD_<NAME> environment variables to flags the command line did not set.
absl::Status ApplyEnvironment(const std::vector<std::string>& args) {
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (flag->Filename().find("etcd_flags") == std::string::npos) continue;
    std::string env_name = absl::StrCat("ETCD_", absl::AsciiStrToUpper(std::string(name)));
    const char* value = std::getenv(env_name.c_str());
    if (value == nullptr) continue;
    bool on_command_line = false;
    std::string spelled = absl::StrCat("--", name);
    for (const std::string& arg : args) {
      if (arg == spelled || absl::StartsWith(arg, spelled + "=")) on_command_line = true;
    }
    if (on_command_line) continue;
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return absl::InvalidArgumentError(absl::StrCat("invalid value of ", env_name, ": ", error));
    }
  }
  return absl::OkStatus();
}

// Reads etcd's YAML configuration: one "flag-name: value" per line, values plain or
// quoted; blank lines and comments are skipped. Keys that name no kvd flag are reported and
// ignored (etcd ignores keys it does not know).
absl::Status ApplyConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read --config-file ", path));
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    absl::string_view text = absl::StripAsciiWhitespace(line);
    if (text.empty() || text.front() == '#' || text == "---") continue;
    size_t colon = text.find(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_no, ": expected 'name: value'"));
    }
    std::string name(absl::StripAsciiWhitespace(text.substr(0, colon)));
    std::string value(absl::StripAsciiWhitespace(text.substr(colon + 1)));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    absl::CommandLineFlag* flag =
        absl::FindCommandLineFlag(absl::StrReplaceAll(name, {{"-", "_"}}));
    if (flag == nullptr || flag->Filename().find("etcd_flags") == std::string::npos) {
      std::fprintf(stderr, "kvd: %s:%d: ignoring unknown setting '%s'\n", path.c_str(), line_no,
                   name.c_str());
      continue;
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_no, ": invalid value for ", name, ": ", error));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> ListenAddressFromUrl(const std::string& url) {
  absl::string_view rest(url);
  if (absl::ConsumePrefix(&rest, "http://")) {
    if (rest.empty() || !absl::StrContains(rest, ':')) {
      return absl::InvalidArgumentError(absl::StrCat("URL ", url, " has no port"));
    }
    return std::string(absl::StripSuffix(rest, "/"));
  }
  if (absl::ConsumePrefix(&rest, "unix://") || absl::ConsumePrefix(&rest, "unixs://")) {
    return absl::StrCat("unix:", rest);
  }
  if (absl::StartsWith(url, "https://")) {
    return absl::UnimplementedError(
        absl::StrCat("URL ", url, ": TLS client listeners are not supported by kvd yet"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("URL scheme must be http, https, unix or unixs: ", url));
}

absl::StatusOr<ServerConfig> ParseEtcdFlags(int argc, char** argv) {
  absl::FlagsUsageConfig usage;
  usage.version_string = [] { return std::string(kVersionText); };
  usage.normalize_filename = [](absl::string_view f) { return std::string(f); };
  absl::SetFlagsUsageConfig(usage);
  absl::SetProgramUsageMessage(
      "kvd: a Raft-replicated key-value store that speaks etcd's v3 API.\n"
      "Flags are etcd's: kvd --name n1 --data-dir /var/lib/kvd "
      "--listen-client-urls http://127.0.0.1:2379 ...");

  std::vector<std::string> args = NormalizeArgs(argc, argv);
  std::vector<char*> c_args;
  for (std::string& a : args) c_args.push_back(a.data());
  std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(c_args.size()), c_args.data());
  if (positional.size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat("'", positional[1], "' is not a valid flag"));
  }
  if (std::string path = absl::GetFlag(FLAGS_config_file); !path.empty()) {
    if (absl::Status s = ApplyConfigFile(path); !s.ok()) return s;
  } else if (absl::Status s = ApplyEnvironment(args); !s.ok()) {
    return s;
  }

  ServerConfig config;
  config.name = absl::GetFlag(FLAGS_name);
  config.data_dir = absl::GetFlag(FLAGS_data_dir);
  if (config.data_dir.empty()) config.data_dir = absl::StrCat(config.name, ".etcd");
  for (const std::string& url : SplitUrls(absl::GetFlag(FLAGS_listen_client_urls))) {
    absl::StatusOr<std::string> address = ListenAddressFromUrl(url);
    if (!address.ok()) {
      return absl::Status(address.status().code(),
                          absl::StrCat("--listen-client-urls: ", address.status().message()));
    }
    config.listen_client_addresses.push_back(*address);
  }
  config.advertise_client_urls = SplitUrls(absl::GetFlag(FLAGS_advertise_client_urls));
  config.listen_peer_urls = SplitUrls(absl::GetFlag(FLAGS_listen_peer_urls));
  for (const std::string& url : config.listen_peer_urls) {
    absl::StatusOr<std::string> address = ListenAddressFromUrl(url);
    if (!address.ok()) {
      return absl::Status(address.status().code(),
                          absl::StrCat("--listen-peer-urls: ", address.status().message()));
    }
    config.listen_peer_addresses.push_back(*address);
  }
  config.initial_advertise_peer_urls = SplitUrls(absl::GetFlag(FLAGS_initial_advertise_peer_urls));
  config.initial_cluster = absl::GetFlag(FLAGS_initial_cluster);
  config.initial_cluster_state = absl::GetFlag(FLAGS_initial_cluster_state);
  config.initial_cluster_token = absl::GetFlag(FLAGS_initial_cluster_token);
  config.max_request_bytes = static_cast<int64_t>(absl::GetFlag(FLAGS_max_request_bytes));
  config.max_txn_ops = static_cast<int>(absl::GetFlag(FLAGS_max_txn_ops));
  config.quota_backend_bytes = absl::GetFlag(FLAGS_quota_backend_bytes);
  config.heartbeat = absl::Milliseconds(absl::GetFlag(FLAGS_heartbeat_interval));
  config.election_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_election_timeout));
  config.snapshot_count = absl::GetFlag(FLAGS_snapshot_count);
  config.watch_progress_notify_interval =
      absl::GetFlag(FLAGS_experimental_watch_progress_notify_interval);
  if (config.watch_progress_notify_interval <= absl::ZeroDuration()) {
    config.watch_progress_notify_interval = absl::Minutes(10);  // etcd keeps its default
  }
  // etcd's rules for the raft timing flags.
  if (config.heartbeat <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--heartbeat-interval must be > 0");
  }
  if (config.election_timeout < 5 * config.heartbeat) {
    return absl::InvalidArgumentError(
        absl::StrCat("--election-timeout[", absl::GetFlag(FLAGS_election_timeout),
                     "ms] should be at least as 5 times as --heartbeat-interval[",
                     absl::GetFlag(FLAGS_heartbeat_interval), "ms]"));
  }

  if (config.initial_cluster_state != "new" && config.initial_cluster_state != "existing") {
    return absl::InvalidArgumentError(
        absl::StrCat("--initial-cluster-state: must be 'new' or 'existing', not '",
                     config.initial_cluster_state, "'"));
  }
  for (absl::string_view bug :
       absl::StrSplit(absl::GetFlag(FLAGS_kvd_plant_bug), ',', absl::SkipWhitespace())) {
    if (bug == "local-reads") {
      config.plant_local_reads = true;
    } else if (bug == "no-fsync") {
      config.plant_no_fsync = true;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--kvd-plant-bug: unknown bug '", bug, "' (known: local-reads, no-fsync)"));
    }
  }
  if (!absl::GetFlag(FLAGS_cert_file).empty() || !absl::GetFlag(FLAGS_peer_cert_file).empty() ||
      absl::GetFlag(FLAGS_auto_tls) || absl::GetFlag(FLAGS_peer_auto_tls)) {
    return absl::UnimplementedError("TLS flags are not supported by kvd yet");
  }
  return config;
}

}  // namespace kvd::server
