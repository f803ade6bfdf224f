#include "tests/client/test_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/client.h"

namespace kvd::testing {

namespace {

constexpr absl::Duration kStartTimeout = absl::Seconds(20);
constexpr int kStartAttempts = 3;

// In the child, after fork: die with the parent, so no server outlives a crashed test.
void DieWithParent() {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) _exit(127);
}

[[noreturn]] void Exec(const std::string& binary, const std::vector<std::string>& args) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execvp(binary.c_str(), argv.data());
  _exit(127);
}

}  // namespace

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = -1;
  if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  if (fd >= 0) close(fd);
  return port;
}

absl::StatusOr<std::unique_ptr<TestServer>> TestServer::Start() {
  const char* env = std::getenv("KVD_TEST_SERVER");
  const std::string binary = env != nullptr && *env != '\0' ? env : "etcd";
  absl::Status last;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    std::unique_ptr<TestServer> server(new TestServer());
    last = server->Launch(binary);
    if (last.ok()) return server;
  }
  return last;
}

absl::Status TestServer::Launch(const std::string& binary) {
  char dir_template[] = "/tmp/kvd-client-test-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) return absl::InternalError("mkdtemp failed");
  data_dir_ = dir_template;
  log_path_ = data_dir_ + ".log";
  const int client_port = FreePort();
  int peer_port = FreePort();
  while (peer_port == client_port) peer_port = FreePort();
  endpoint_ = absl::StrCat("127.0.0.1:", client_port);
  const std::string client_url = absl::StrCat("http://127.0.0.1:", client_port);
  const std::string peer_url = absl::StrCat("http://127.0.0.1:", peer_port);
  const std::vector<std::string> args = {"--name",
                                         "default",
                                         "--data-dir",
                                         data_dir_ + "/data",
                                         "--listen-client-urls",
                                         client_url,
                                         "--advertise-client-urls",
                                         client_url,
                                         "--listen-peer-urls",
                                         peer_url,
                                         "--initial-advertise-peer-urls",
                                         peer_url,
                                         "--initial-cluster",
                                         absl::StrCat("default=", peer_url),
                                         "--initial-cluster-state",
                                         "new"};

  const int log_fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (log_fd < 0) return absl::InternalError("cannot create server log");
  pid_ = fork();
  if (pid_ < 0) return absl::InternalError("fork failed");
  if (pid_ == 0) {
    DieWithParent();
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    const int null_fd = open("/dev/null", O_RDONLY);
    dup2(null_fd, STDIN_FILENO);
    Exec(binary, args);
  }
  close(log_fd);

  client::Options options;
  options.endpoints = {endpoint_};
  options.dial_timeout = absl::Milliseconds(200);
  options.request_timeout = absl::Milliseconds(500);
  absl::StatusOr<std::unique_ptr<client::Client>> c = client::Client::Create(options);
  if (!c.ok()) return c.status();
  const absl::Time deadline = absl::Now() + kStartTimeout;
  absl::Status status;
  while (absl::Now() < deadline) {
    int wstatus = 0;
    if (waitpid(pid_, &wstatus, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::UnavailableError(absl::StrCat(binary, " exited during start-up; log:\n", Log()));
    }
    // A write proves the member has a leader and applies entries, not just that it listens.
    etcdserverpb::PutRequest put;
    put.set_key("kvd-test-server-ready");
    put.set_value("1");
    absl::StatusOr<etcdserverpb::PutResponse> response = (*c)->Put(put);
    if (response.ok()) {
      etcdserverpb::DeleteRangeRequest del;
      del.set_key("kvd-test-server-ready");
      if ((*c)->DeleteRange(del).ok()) return absl::OkStatus();
    }
    status = response.status();
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(
      absl::StrCat(binary, " did not become ready (", status.message(), "); log:\n", Log()));
}

void TestServer::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int wstatus = 0;
  waitpid(pid_, &wstatus, 0);
  pid_ = -1;
}

TestServer::~TestServer() {
  Kill();
  std::error_code ignored;
  if (!data_dir_.empty()) std::filesystem::remove_all(data_dir_, ignored);
  if (!log_path_.empty()) std::filesystem::remove(log_path_, ignored);
}

std::string TestServer::Log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string log = ss.str();
  constexpr size_t kMax = 8000;
  return log.size() > kMax ? log.substr(log.size() - kMax) : log;
}

RunResult RunProcess(const std::string& binary, const std::vector<std::string>& args,
                     const std::string& input, absl::Duration timeout) {
  RunResult result;
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (pipe(in_pipe) != 0 || pipe(out_pipe) != 0 || pipe(err_pipe) != 0) return result;
  const pid_t pid = fork();
  if (pid < 0) return result;
  if (pid == 0) {
    DieWithParent();
    dup2(in_pipe[0], STDIN_FILENO);
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(err_pipe[1], STDERR_FILENO);
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) {
      close(fd);
    }
    Exec(binary, args);
  }
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  signal(SIGPIPE, SIG_IGN);

  int in_fd = in_pipe[1];
  size_t written = 0;
  if (input.empty()) {
    close(in_fd);
    in_fd = -1;
  }
  int out_fd = out_pipe[0], err_fd = err_pipe[0];
  const absl::Time deadline = absl::Now() + timeout;
  bool timed_out = false;
  while (out_fd >= 0 || err_fd >= 0) {
    std::vector<pollfd> fds;
    if (in_fd >= 0) fds.push_back({in_fd, POLLOUT, 0});
    if (out_fd >= 0) fds.push_back({out_fd, POLLIN, 0});
    if (err_fd >= 0) fds.push_back({err_fd, POLLIN, 0});
    const int64_t wait_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (wait_ms <= 0) {
      timed_out = true;
      break;
    }
    if (poll(fds.data(), fds.size(), static_cast<int>(wait_ms)) < 0 && errno != EINTR) break;
    for (const pollfd& p : fds) {
      if (p.revents == 0) continue;
      if (p.fd == in_fd) {
        const ssize_t n = write(in_fd, input.data() + written, input.size() - written);
        if (n > 0) written += static_cast<size_t>(n);
        if (n < 0 || written == input.size()) {
          close(in_fd);
          in_fd = -1;
        }
        continue;
      }
      char buf[4096];
      const ssize_t n = read(p.fd, buf, sizeof(buf));
      std::string& sink = p.fd == out_fd ? result.out : result.err;
      if (n > 0) {
        sink.append(buf, static_cast<size_t>(n));
      } else {
        close(p.fd);
        (p.fd == out_fd ? out_fd : err_fd) = -1;
      }
    }
  }
  for (int fd : {in_fd, out_fd, err_fd}) {
    if (fd >= 0) close(fd);
  }
  if (timed_out) kill(pid, SIGKILL);
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  result.exit_code = !timed_out && WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
  return result;
}

}  // namespace kvd::testing
