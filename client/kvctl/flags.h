// Command-line flags the way etcdctl (cobra/pflag) reads them.
//
// absl flags cannot be used here: etcdctl's flag names contain dashes (--prev-kv,
// --dial-timeout), it has one-letter shorthands (-w json, -i), and `txn` parses the
// same put/get/del flags out of each input line, which needs a parser that is not global.
//
// Rules (pflag's): flags and positional arguments may be mixed; "--" ends the flags;
// "--name=value" or "--name value" (bool flags only take "--name" or "--name=true|false");
// "-x value", "-xvalue" or "-x=value" for a shorthand; a lone "-" is positional.
#ifndef KVD_CLIENT_KVCTL_FLAGS_H_
#define KVD_CLIENT_KVCTL_FLAGS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace kvd::kvctl {

class FlagSet {
 public:
  // Registration. `shorthand` is '\0' for none. Targets must outlive the FlagSet; they keep
  // their current values as defaults.
  void Bool(std::string name, char shorthand, bool* target);
  void String(std::string name, char shorthand, std::string* target);
  void Int64(std::string name, int64_t* target);
  void Duration(std::string name, absl::Duration* target);
  // Comma-separated list; the first use replaces the default, later uses append.
  void StringList(std::string name, std::vector<std::string>* target);

  // Parses `args` (without the program or command name) and returns the positional
  // arguments. With interspersed == false, parsing stops at the first positional argument
  // and everything from there on is returned unparsed.
  // Errors: INVALID_ARGUMENT with pflag's message ("unknown flag: --x", ...).
  absl::StatusOr<std::vector<std::string>> Parse(const std::vector<std::string>& args,
                                                 bool interspersed = true);

  // Sets a flag from text as if it had been given on the command line (used for
  // ETCDCTL_* environment variables). Errors: INVALID_ARGUMENT.
  absl::Status Set(absl::string_view name, absl::string_view value);

  // Whether the flag was given (by Parse or Set).
  bool Changed(absl::string_view name) const;

 private:
  struct Flag {
    std::string name;
    char shorthand = '\0';
    bool is_bool = false;
    bool changed = false;
    std::function<absl::Status(absl::string_view)> set;
  };
  Flag* Find(absl::string_view name);
  Flag* FindShort(char shorthand);
  void Add(std::string name, char shorthand, bool is_bool,
           std::function<absl::Status(absl::string_view)> set);
  absl::Status Apply(Flag& flag, absl::string_view value);

  std::vector<Flag> flags_;
};

// Parses a Go duration ("5s", "1m30s", "500ms", "1.5h"). Errors: INVALID_ARGUMENT.
absl::StatusOr<absl::Duration> ParseGoDuration(absl::string_view text);

}  // namespace kvd::kvctl

#endif  // KVD_CLIENT_KVCTL_FLAGS_H_
