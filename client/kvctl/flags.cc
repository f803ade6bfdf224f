#include "client/kvctl/flags.h"

#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"

namespace kvd::kvctl {

namespace {

absl::Status BadValue(absl::string_view value, absl::string_view flag, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid argument \"", value, "\" for \"--", flag, "\" flag: ", why));
}

}  // namespace

absl::StatusOr<absl::Duration> ParseGoDuration(absl::string_view text) {
  absl::Duration d;
  const std::string ascii = absl::StrReplaceAll(text, {{"µs", "us"}, {"μs", "us"}});
  if (ascii == "inf" || ascii == "-inf" || !absl::ParseDuration(ascii, &d)) {
    return absl::InvalidArgumentError(absl::StrCat("time: invalid duration \"", text, "\""));
  }
  return d;
}

void FlagSet::Add(std::string name, char shorthand, bool is_bool,
                  std::function<absl::Status(absl::string_view)> set) {
  flags_.push_back(Flag{std::move(name), shorthand, is_bool, false, std::move(set)});
}

void FlagSet::Bool(std::string name, char shorthand, bool* target) {
  std::string n = name;
  Add(std::move(name), shorthand, true, [target, n](absl::string_view v) {
    if (v == "true" || v == "1" || v == "t" || v == "T" || v == "TRUE" || v == "True") {
      *target = true;
    } else if (v == "false" || v == "0" || v == "f" || v == "F" || v == "FALSE" || v == "False") {
      *target = false;
    } else {
      return BadValue(v, n, absl::StrCat("strconv.ParseBool: parsing \"", v, "\": invalid syntax"));
    }
    return absl::OkStatus();
  });
}

void FlagSet::String(std::string name, char shorthand, std::string* target) {
  Add(std::move(name), shorthand, false, [target](absl::string_view v) {
    *target = std::string(v);
    return absl::OkStatus();
  });
}

void FlagSet::Int64(std::string name, int64_t* target) {
  std::string n = name;
  Add(std::move(name), '\0', false, [target, n](absl::string_view v) {
    if (!absl::SimpleAtoi(v, target)) {
      return BadValue(v, n, absl::StrCat("strconv.ParseInt: parsing \"", v, "\": invalid syntax"));
    }
    return absl::OkStatus();
  });
}

void FlagSet::Duration(std::string name, absl::Duration* target) {
  std::string n = name;
  Add(std::move(name), '\0', false, [target, n](absl::string_view v) {
    absl::StatusOr<absl::Duration> d = ParseGoDuration(v);
    if (!d.ok()) return BadValue(v, n, d.status().message());
    *target = *d;
    return absl::OkStatus();
  });
}

void FlagSet::StringList(std::string name, std::vector<std::string>* target) {
  auto first = std::make_shared<bool>(true);
  Add(std::move(name), '\0', false, [target, first](absl::string_view v) {
    if (*first) target->clear();
    *first = false;
    for (absl::string_view item : absl::StrSplit(v, ',')) target->emplace_back(item);
    return absl::OkStatus();
  });
}

FlagSet::Flag* FlagSet::Find(absl::string_view name) {
  for (Flag& f : flags_) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

FlagSet::Flag* FlagSet::FindShort(char shorthand) {
  for (Flag& f : flags_) {
    if (f.shorthand != '\0' && f.shorthand == shorthand) return &f;
  }
  return nullptr;
}

bool FlagSet::Changed(absl::string_view name) const {
  for (const Flag& f : flags_) {
    if (f.name == name) return f.changed;
  }
  return false;
}

absl::Status FlagSet::Apply(Flag& flag, absl::string_view value) {
  absl::Status status = flag.set(value);
  if (status.ok()) flag.changed = true;
  return status;
}

absl::Status FlagSet::Set(absl::string_view name, absl::string_view value) {
  Flag* flag = Find(name);
  if (flag == nullptr) return absl::InvalidArgumentError(absl::StrCat("unknown flag: --", name));
  return Apply(*flag, value);
}

absl::StatusOr<std::vector<std::string>> FlagSet::Parse(const std::vector<std::string>& args,
                                                        bool interspersed) {
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      positional.insert(positional.end(), args.begin() + i + 1, args.end());
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      if (!interspersed) {
        positional.insert(positional.end(), args.begin() + i, args.end());
        break;
      }
      positional.push_back(arg);
      continue;
    }
    if (absl::StartsWith(arg, "--")) {
      absl::string_view body = absl::string_view(arg).substr(2);
      const size_t eq = body.find('=');
      const absl::string_view name = body.substr(0, eq);
      Flag* flag = Find(name);
      if (flag == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("unknown flag: --", name));
      }
      absl::Status status;
      if (eq != absl::string_view::npos) {
        status = Apply(*flag, body.substr(eq + 1));
      } else if (flag->is_bool) {
        status = Apply(*flag, "true");
      } else if (i + 1 < args.size()) {
        status = Apply(*flag, args[++i]);
      } else {
        return absl::InvalidArgumentError(absl::StrCat("flag needs an argument: --", name));
      }
      if (!status.ok()) return status;
      continue;
    }
    // One or more shorthands: "-i", "-w json", "-wjson", "-w=json".
    absl::string_view shorts = absl::string_view(arg).substr(1);
    while (!shorts.empty()) {
      const char c = shorts[0];
      Flag* flag = FindShort(c);
      if (flag == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("unknown shorthand flag: '", std::string(1, c), "' in ", arg));
      }
      shorts.remove_prefix(1);
      absl::Status status;
      if (absl::StartsWith(shorts, "=")) {
        status = Apply(*flag, shorts.substr(1));
        shorts = {};
      } else if (flag->is_bool) {
        status = Apply(*flag, "true");
      } else if (!shorts.empty()) {
        status = Apply(*flag, shorts);
        shorts = {};
      } else if (i + 1 < args.size()) {
        status = Apply(*flag, args[++i]);
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("flag needs an argument: '", std::string(1, c), "' in ", arg));
      }
      if (!status.ok()) return status;
    }
  }
  return positional;
}

}  // namespace kvd::kvctl
