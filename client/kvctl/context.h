// What every kvctl command works with: the global flags, the standard streams, the output
// printer and one lazily created client.
#ifndef KVD_CLIENT_KVCTL_CONTEXT_H_
#define KVD_CLIENT_KVCTL_CONTEXT_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "client/kvctl/exit.h"
#include "client/kvctl/flags.h"
#include "client/kvctl/kvctl.h"
#include "client/kvctl/output.h"

namespace kvd::kvctl {

// etcdctl's global flags.
struct Globals {
  std::vector<std::string> endpoints = {"127.0.0.1:2379"};
  absl::Duration dial_timeout = absl::Seconds(2);
  absl::Duration command_timeout = absl::Seconds(5);
  std::string write_out = "simple";
  bool hex = false;
  bool help = false;
  std::string user;  // "name" or "name:password"
  std::string password;

  void Register(FlagSet& flags) {
    flags.StringList("endpoints", &endpoints);
    flags.Duration("dial-timeout", &dial_timeout);
    flags.Duration("command-timeout", &command_timeout);
    flags.String("write-out", 'w', &write_out);
    flags.Bool("hex", '\0', &hex);
    flags.Bool("help", 'h', &help);
    flags.String("user", '\0', &user);
    flags.String("password", '\0', &password);
  }
};

// The parsed global flags, the streams, and a client.
class Context {
 public:
  Context(Globals globals, Io& io) : globals_(std::move(globals)), io_(io) {}

  absl::Status Init() {
    for (std::string& ep : globals_.endpoints) ep = std::string(absl::StripAsciiWhitespace(ep));
    // --user NAME:PASSWORD, or --user NAME --password PASSWORD, or a password on stdin.
    if (!globals_.user.empty() && globals_.password.empty()) {
      const size_t colon = globals_.user.find(':');
      if (colon != std::string::npos) {
        globals_.password = globals_.user.substr(colon + 1);
        globals_.user.resize(colon);
      } else {
        io_.err << "Password: " << std::flush;
        std::getline(io_.in, globals_.password);
      }
    }
    return ParseFormat(globals_.write_out, &format_);
  }

  const Globals& globals() const { return globals_; }
  Io& io() { return io_; }
  Format format() const { return format_; }
  Printer printer() { return Printer(format_, globals_.hex, io_.out, io_.err); }

  client::Options ClientOptions(std::vector<std::string> endpoints) const {
    client::Options options;
    options.endpoints = std::move(endpoints);
    options.dial_timeout = globals_.dial_timeout;
    options.request_timeout = globals_.command_timeout;
    options.username = globals_.user;
    options.password = globals_.password;
    return options;
  }

  absl::StatusOr<client::Client*> Client() {
    if (client_ == nullptr) {
      absl::StatusOr<std::unique_ptr<client::Client>> c =
          client::Client::Create(ClientOptions(globals_.endpoints));
      if (!c.ok()) return MakeFailure(kExitBadArgs, c.status().message());
      client_ = *std::move(c);
    }
    return client_.get();
  }

 private:
  Globals globals_;
  Io& io_;
  Format format_ = Format::kSimple;
  std::unique_ptr<client::Client> client_;
};

}  // namespace kvd::kvctl

#endif  // KVD_CLIENT_KVCTL_CONTEXT_H_
