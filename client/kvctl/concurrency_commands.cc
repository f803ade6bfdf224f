// lock and elect: etcdctl 3.4's commands over client/concurrency.h.
//
//   lock NAME [COMMAND ARGS...] [--ttl=10]
//       Acquires the lock with a session of --ttl seconds. With a command: runs it with
//       ETCD_LOCK_KEY (the session's key) and ETCD_LOCK_REV (the revision the lock was
//       acquired at) in its environment, stdin from /dev/null, then unlocks; its failure
//       is kvctl's ("exit status 3", "signal: interrupt"). Without: prints the key (as
//       `get` prints it) and holds the lock until SIGINT or SIGTERM, then unlocks.
//   elect NAME PROPOSAL
//       Campaigns with a 60 s session; once leader prints the key and value, and resigns
//       on SIGINT or SIGTERM.
//   elect -l NAME
//       Prints the leader's key and value, then each change, until SIGINT or SIGTERM.
//
// SIGINT/SIGTERM while waiting: the recipe cleans up and kvctl fails with "context
// canceled" (exit 1). A session that ends (lease expired or not renewable) fails with
// "session expired" / "elect: session expired". As etcdctl, sessions are not revoked at
// exit: their leases expire after their TTL.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/concurrency.h"
#include "client/kvctl/commands.h"
#include "client/kvctl/exit.h"
#include "client/kvctl/output.h"

extern char** environ;

namespace kvd::kvctl {

namespace pb = ::etcdserverpb;

namespace {

// clientv3's default session TTL (elect has no --ttl).
constexpr int64_t kDefaultSessionTtlSeconds = 60;

// SIGINT and SIGTERM fire a canceler instead of ending kvctl (etcdctl's signal.Notify).
// Create it before any other thread exists: it blocks the signals in the calling thread,
// and threads created later inherit that. Even a signal ignored at start (SIGINT of a
// background job) is caught, as Go's signal.Notify catches it.
class SignalCanceler {
 public:
  SignalCanceler() {
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGINT);
    sigaddset(&signals_, SIGTERM);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
    thread_ = std::thread([this] {
      const timespec poll = {0, 100 * 1000 * 1000};
      while (!stop_.load()) {
        if (sigtimedwait(&signals_, nullptr, &poll) > 0) canceler_.Cancel();
      }
    });
  }
  // The signals stay blocked: kvctl is about to exit.
  ~SignalCanceler() {
    stop_ = true;
    thread_.join();
  }
  SignalCanceler(const SignalCanceler&) = delete;
  SignalCanceler& operator=(const SignalCanceler&) = delete;

  const client::Canceler& canceler() const { return canceler_; }

 private:
  sigset_t signals_;
  client::Canceler canceler_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Errors the recipes make themselves (context canceled, mutex: session is expired) are
// plain Go errors to etcdctl: printed as their message, exit 1.
absl::Status AsCommandError(const absl::Status& s) {
  if (s.code() == absl::StatusCode::kCancelled || s.code() == absl::StatusCode::kUnknown) {
    return MakeFailure(kExitError, s.message());
  }
  return s;
}

// Go's text for an errno or a signal: the C library's, starting lowercase unless it starts
// with an acronym ("no such file or directory", "interrupt", "CPU time limit exceeded").
std::string GoText(const char* text) {
  std::string s = text == nullptr ? "" : text;
  if (s.size() > 1 && std::isupper(static_cast<unsigned char>(s[0])) &&
      std::islower(static_cast<unsigned char>(s[1]))) {
    s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  }
  return s;
}

// Go's exec.LookPath: a name with a slash is used as is; otherwise the first executable
// regular file of that name in $PATH.
absl::StatusOr<std::string> LookPath(const std::string& name) {
  if (absl::StrContains(name, '/')) return name;
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path == nullptr ? "" : path, ':')) {
    std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", name);
    struct stat st;
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return MakeFailure(kExitError,
                     absl::StrCat("exec: \"", name, "\": executable file not found in $PATH"));
}

// Runs argv with `env` first in its environment (a variable already in kvctl's environment
// wins, as Go's exec keeps the last of duplicates), stdin from /dev/null, stdout and stderr
// kvctl's, SIGINT and SIGTERM at their defaults and unblocked. Waits for it to end.
// Errors: Go's exec errors ("exit status 3", "signal: interrupt", "fork/exec ...").
absl::Status RunCommand(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  absl::StatusOr<std::string> path = LookPath(argv[0]);
  if (!path.ok()) return path.status();
  std::vector<std::string> env_strings;
  for (const std::string& var : env) {
    const std::string name = var.substr(0, var.find('=') + 1);
    bool inherited = false;
    for (char** e = environ; *e != nullptr; ++e) inherited |= absl::StartsWith(*e, name);
    if (!inherited) env_strings.push_back(var);
  }
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> c_args;
  for (std::string& a : args) c_args.push_back(a.data());
  c_args.push_back(nullptr);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_addopen(&files, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, path->c_str(), &files, &attr, c_args.data(), envp.data());
  posix_spawn_file_actions_destroy(&files);
  posix_spawnattr_destroy(&attr);
  if (spawned != 0) {
    return MakeFailure(kExitError,
                       absl::StrCat("fork/exec ", *path, ": ", GoText(std::strerror(spawned))));
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return MakeFailure(kExitError, absl::StrCat("wait: ", GoText(std::strerror(errno))));
    }
  }
  if (WIFEXITED(status)) {
    if (WEXITSTATUS(status) == 0) return absl::OkStatus();
    return MakeFailure(kExitError, absl::StrCat("exit status ", WEXITSTATUS(status)));
  }
  std::string text = absl::StrCat("signal: ", GoText(strsignal(WTERMSIG(status))));
  if (WCOREDUMP(status)) absl::StrAppend(&text, " (core dumped)");
  return MakeFailure(kExitError, text);
}

// Blocks until `a` or `b` fires.
void WaitForEither(const client::Canceler& a, const client::Canceler& b) {
  client::Canceler either;
  const int ia = a.OnCancel([&either] { either.Cancel(); });
  const int ib = b.OnCancel([&either] { either.Cancel(); });
  either.Wait(absl::InfiniteDuration());
  a.Remove(ia);
  b.Remove(ib);
}

// Reads key and prints it as `get` does (etcdctl prints the lock or leader key so).
absl::Status PrintKey(Context& ctx, client::Client* c, const std::string& key,
                      absl::string_view missing) {
  pb::RangeRequest get;
  get.set_key(key);
  absl::StatusOr<pb::RangeResponse> r = c->Range(get);
  if (!r.ok()) return r.status();
  if (r->kvs().empty() && !missing.empty()) return MakeFailure(kExitError, missing);
  absl::Status printed = ctx.printer().Get(*r, /*value_only=*/false);
  ctx.io().out << std::flush;
  return printed;
}

}  // namespace

absl::Status RunLock(Context& ctx, const std::vector<std::string>& args, int64_t ttl_s) {
  if (args.empty()) {
    return MakeFailure(kExitBadArgs,
                       "lock takes a lock name argument and an optional command to execute");
  }
  SignalCanceler signals;  // before the client's threads
  absl::StatusOr<client::Client*> c = ctx.Client();
  if (!c.ok()) return c.status();
  absl::StatusOr<std::unique_ptr<client::Session>> session = client::Session::Create(*c, ttl_s);
  if (!session.ok()) return session.status();
  client::Mutex mutex(session->get(), args[0]);
  if (absl::Status s = mutex.Lock(signals.canceler()); !s.ok()) return AsCommandError(s);

  if (args.size() > 1) {
    ctx.io().out << std::flush;
    absl::Status ran = RunCommand(std::vector<std::string>(args.begin() + 1, args.end()),
                                  {absl::StrCat("ETCD_LOCK_KEY=", mutex.key()),
                                   absl::StrCat("ETCD_LOCK_REV=", mutex.header().revision())});
    absl::Status unlocked = mutex.Unlock();
    return ran.ok() ? unlocked : ran;
  }
  if (absl::Status s = PrintKey(ctx, *c, mutex.key(), "lock lost on init"); !s.ok()) return s;
  WaitForEither(signals.canceler(), (*session)->done());
  if (signals.canceler().canceled()) return mutex.Unlock();
  return MakeFailure(kExitError, "session expired");
}

absl::Status RunElect(Context& ctx, const std::vector<std::string>& args, bool listen) {
  if (args.size() != 1 && args.size() != 2) {
    return MakeFailure(kExitBadArgs,
                       "elect takes one election name argument and an optional proposal argument");
  }
  if (args.size() == 1 && !listen) {
    return MakeFailure(kExitBadArgs, "no proposal argument but -l not set");
  }
  if (args.size() == 2 && listen) return MakeFailure(kExitBadArgs, "proposal given but -l is set");
  SignalCanceler signals;  // before the client's threads
  absl::StatusOr<client::Client*> c = ctx.Client();
  if (!c.ok()) return c.status();
  // etcdctl opens a session even to observe.
  absl::StatusOr<std::unique_ptr<client::Session>> session =
      client::Session::Create(*c, kDefaultSessionTtlSeconds);
  if (!session.ok()) return session.status();

  if (listen) {
    // Ends on a signal, or at once if the output format cannot print a leader.
    client::Canceler stop;
    const int id = signals.canceler().OnCancel([&stop] { stop.Cancel(); });
    absl::Status printed;
    absl::Status observed =
        client::Election::Observe(*c, args[0], stop, [&](const pb::RangeResponse& leader) {
          if (!printed.ok()) return;
          printed = ctx.printer().Get(leader, /*value_only=*/false);
          ctx.io().out << std::flush;
          if (!printed.ok()) stop.Cancel();
        });
    signals.canceler().Remove(id);
    if (!printed.ok()) return printed;
    if (observed.ok() && signals.canceler().canceled()) return absl::OkStatus();
    return MakeFailure(kExitError, "elect: observer lost");
  }

  client::Election election(session->get(), args[0]);
  if (absl::Status s = election.Campaign(args[1], signals.canceler()); !s.ok()) {
    return AsCommandError(s);
  }
  if (absl::Status s = PrintKey(ctx, *c, election.key(), ""); !s.ok()) return s;
  WaitForEither(signals.canceler(), (*session)->done());
  if (!signals.canceler().canceled()) return MakeFailure(kExitError, "elect: session expired");
  return election.Resign();
}

}  // namespace kvd::kvctl
