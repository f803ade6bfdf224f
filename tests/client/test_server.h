// A single-member etcd-compatible server for client tests, and a way to run kvctl.
//
// The server binary is KVD_TEST_SERVER: "etcd" (the default, found on PATH) or the path of
// a kvd binary; both get etcd's flags. It listens on free loopback ports only, keeps its
// data in a fresh temporary directory, and is killed (SIGKILL) and cleaned up when the
// TestServer is destroyed — or by the kernel if the test process dies first.
#ifndef KVD_TESTS_CLIENT_TEST_SERVER_H_
#define KVD_TESTS_CLIENT_TEST_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace kvd::testing {

// A loopback port nobody listens on right now (bind to port 0, read it, close).
int FreePort();

class TestServer {
 public:
  // Starts the server and waits until it answers Maintenance.Status. Retries with new
  // ports if the server exits early (port taken in between).
  static absl::StatusOr<std::unique_ptr<TestServer>> Start();

  ~TestServer();
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  // "127.0.0.1:PORT"
  const std::string& endpoint() const { return endpoint_; }
  // The server's combined stdout/stderr so far (for failure messages).
  std::string Log() const;
  // Kills the server now (SIGKILL), as a crash would.
  void Kill();

 private:
  TestServer() = default;
  absl::Status Launch(const std::string& binary);

  pid_t pid_ = -1;
  std::string data_dir_;
  std::string log_path_;
  std::string endpoint_;
};

struct RunResult {
  int exit_code = -1;  // -1: killed or did not exit in time
  std::string out;
  std::string err;
};

// Runs `binary` with `args`, feeding `input` on stdin; captures stdout and stderr.
// Kills it after `timeout`.
RunResult RunProcess(const std::string& binary, const std::vector<std::string>& args,
                     const std::string& input = "", absl::Duration timeout = absl::Seconds(30));

}  // namespace kvd::testing

#endif  // KVD_TESTS_CLIENT_TEST_SERVER_H_
