#include "client/kvctl/txn_parser.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/kvctl/exit.h"
#include "client/kvctl/flags.h"
#include "client/kvctl/requests.h"

namespace kvd::kvctl {

namespace pb = ::etcdserverpb;

namespace {

bool IsGoSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void AppendUtf8(uint32_t rune, std::string& out) {
  if (rune < 0x80) {
    out.push_back(static_cast<char>(rune));
  } else if (rune < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (rune >> 6)));
    out.push_back(static_cast<char>(0x80 | (rune & 0x3F)));
  } else if (rune < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (rune >> 12)));
    out.push_back(static_cast<char>(0x80 | ((rune >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (rune & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (rune >> 18)));
    out.push_back(static_cast<char>(0x80 | ((rune >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((rune >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (rune & 0x3F)));
  }
}

// Go's strconv.Unquote for the body of a "..." string (without the quotes).
absl::StatusOr<std::string> UnescapeGo(absl::string_view body) {
  const absl::Status bad = absl::InvalidArgumentError("invalid syntax");
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (c == '\n') return bad;
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (++i >= body.size()) return bad;
    const char e = body[i];
    switch (e) {
      case 'a':
        out.push_back('\a');
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'v':
        out.push_back('\v');
        break;
      case '\\':
        out.push_back('\\');
        break;
      case '"':
        out.push_back('"');
        break;
      case 'x': {
        if (i + 2 >= body.size()) return bad;
        const int h = HexDigit(body[i + 1]), l = HexDigit(body[i + 2]);
        if (h < 0 || l < 0) return bad;
        out.push_back(static_cast<char>(h << 4 | l));
        i += 2;
        break;
      }
      case 'u':
      case 'U': {
        const size_t n = e == 'u' ? 4 : 8;
        if (i + n >= body.size()) return bad;
        uint32_t rune = 0;
        for (size_t k = 1; k <= n; ++k) {
          const int d = HexDigit(body[i + k]);
          if (d < 0) return bad;
          rune = rune << 4 | static_cast<uint32_t>(d);
        }
        if (rune > 0x10FFFF || (rune >= 0xD800 && rune <= 0xDFFF)) return bad;
        AppendUtf8(rune, out);
        i += n;
        break;
      }
      default: {
        if (e < '0' || e > '7' || i + 2 >= body.size()) return bad;
        int value = 0;
        for (size_t k = 0; k < 3; ++k) {
          const char d = body[i + k];
          if (d < '0' || d > '7') return bad;
          value = value * 8 + (d - '0');
        }
        if (value > 255) return bad;
        out.push_back(static_cast<char>(value));
        i += 2;
        break;
      }
    }
  }
  return out;
}

absl::Status Malformed(absl::string_view line, absl::string_view why = "") {
  return MakeFailure(kExitInvalidInput,
                     why.empty() ? absl::StrCat("malformed comparison: ", line)
                                 : absl::StrCat("malformed comparison: ", line, " (", why, ")"));
}

}  // namespace

absl::StatusOr<std::string> ScanGoQuoted(absl::string_view& in) {
  size_t i = 0;
  while (i < in.size() && IsGoSpace(in[i])) ++i;
  if (i >= in.size() || (in[i] != '"' && in[i] != '`')) {
    return absl::InvalidArgumentError("expected quoted string");
  }
  const char quote = in[i];
  const size_t start = i + 1;
  size_t end = start;
  while (end < in.size() && in[end] != quote) {
    if (quote == '"' && in[end] == '\\') ++end;
    ++end;
  }
  if (end >= in.size()) return absl::InvalidArgumentError("unterminated quoted string");
  absl::string_view body = in.substr(start, end - start);
  in.remove_prefix(end + 1);
  if (quote == '`') {
    std::string raw;
    for (char c : body) {
      if (c != '\r') raw.push_back(c);
    }
    return raw;
  }
  return UnescapeGo(body);
}

absl::StatusOr<std::vector<std::string>> Argify(absl::string_view line) {
  std::vector<std::string> args;
  size_t i = 0;
  while (i < line.size()) {
    const char c = line[i];
    if (IsGoSpace(c)) {
      ++i;
    } else if (c == '"') {
      // A "..." token, if it is closed; otherwise the quote starts no token at all.
      size_t end = i + 1;
      while (end < line.size() && line[end] != '"') {
        if (line[end] == '\\') ++end;
        ++end;
      }
      if (end >= line.size()) {
        ++i;
        continue;
      }
      absl::string_view token = line.substr(i, end + 1 - i);
      absl::StatusOr<std::string> value = ScanGoQuoted(token);
      if (!value.ok()) return MakeFailure(kExitInvalidInput, value.status().message());
      args.push_back(*std::move(value));
      i = end + 1;
    } else if (c == '\'') {
      const size_t end = line.find('\'', i + 1);
      if (end == absl::string_view::npos) {
        ++i;
        continue;
      }
      args.emplace_back(line.substr(i + 1, end - i - 1));
      i = end + 1;
    } else {
      size_t end = i;
      while (end < line.size() && !IsGoSpace(line[end])) ++end;
      args.emplace_back(line.substr(i, end - i));
      i = end;
    }
  }
  return args;
}

absl::StatusOr<pb::Compare> ParseCompare(absl::string_view line) {
  const size_t paren = line.find('(');
  if (paren == absl::string_view::npos) return Malformed(line);
  const absl::string_view target = line.substr(0, paren);
  absl::string_view rest = line.substr(paren + 1);

  absl::StatusOr<std::string> key = ScanGoQuoted(rest);
  if (!key.ok() || rest.empty() || rest[0] != ')') return Malformed(line);
  rest.remove_prefix(1);
  while (!rest.empty() && IsGoSpace(rest[0])) rest.remove_prefix(1);
  size_t op_end = 0;
  while (op_end < rest.size() && !IsGoSpace(rest[op_end])) ++op_end;
  const absl::string_view op = rest.substr(0, op_end);
  rest.remove_prefix(op_end);
  absl::StatusOr<std::string> value = ScanGoQuoted(rest);
  if (op.empty() || !value.ok()) return Malformed(line);

  pb::Compare cmp;
  if (op == "=") {
    cmp.set_result(pb::Compare::EQUAL);
  } else if (op == "!=") {
    cmp.set_result(pb::Compare::NOT_EQUAL);
  } else if (op == ">") {
    cmp.set_result(pb::Compare::GREATER);
  } else if (op == "<") {
    cmp.set_result(pb::Compare::LESS);
  } else {
    return Malformed(line, absl::StrCat("unknown operator ", op));
  }
  cmp.set_key(*key);

  int64_t number = 0;
  bool number_ok = true;
  if (target == "ver" || target == "version") {
    cmp.set_target(pb::Compare::VERSION);
    number_ok = absl::SimpleAtoi(*value, &number);
    cmp.set_version(number);
  } else if (target == "c" || target == "create") {
    cmp.set_target(pb::Compare::CREATE);
    number_ok = absl::SimpleAtoi(*value, &number);
    cmp.set_create_revision(number);
  } else if (target == "m" || target == "mod") {
    cmp.set_target(pb::Compare::MOD);
    number_ok = absl::SimpleAtoi(*value, &number);
    cmp.set_mod_revision(number);
  } else if (target == "val" || target == "value") {
    cmp.set_target(pb::Compare::VALUE);
    cmp.set_value(*value);
  } else if (target == "lease") {
    cmp.set_target(pb::Compare::LEASE);
    number_ok = ParseHexInt64(*value, &number);
    cmp.set_lease(number);
  } else {
    return Malformed(line, absl::StrCat("unknown target ", target));
  }
  if (!number_ok) {
    return MakeFailure(kExitInvalidInput, absl::StrCat("invalid txn compare request: ", line));
  }
  return cmp;
}

absl::StatusOr<pb::RequestOp> ParseRequestOp(absl::string_view line) {
  absl::StatusOr<std::vector<std::string>> args = Argify(line);
  if (!args.ok()) return args.status();
  if (args->size() < 2) {
    return MakeFailure(kExitInvalidInput, absl::StrCat("invalid txn compare request: ", line));
  }
  const absl::Status invalid =
      MakeFailure(kExitInvalidInput, absl::StrCat("invalid txn request: ", line));
  const std::string& command = (*args)[0];
  const std::vector<std::string> rest(args->begin() + 1, args->end());
  FlagSet flags;
  pb::RequestOp op;
  if (command == "put") {
    PutFlags put;
    put.Register(flags);
    absl::StatusOr<std::vector<std::string>> positional = flags.Parse(rest);
    if (!positional.ok()) return invalid;
    absl::StatusOr<pb::PutRequest> request = BuildPut(*positional, put, nullptr);
    if (!request.ok()) return request.status();
    *op.mutable_request_put() = *std::move(request);
  } else if (command == "get") {
    GetFlags get;
    get.Register(flags);
    absl::StatusOr<std::vector<std::string>> positional = flags.Parse(rest);
    if (!positional.ok()) return invalid;
    absl::StatusOr<pb::RangeRequest> request = BuildRange(*positional, get);
    if (!request.ok()) return request.status();
    *op.mutable_request_range() = *std::move(request);
  } else if (command == "del") {
    DelFlags del;
    del.Register(flags);
    absl::StatusOr<std::vector<std::string>> positional = flags.Parse(rest);
    if (!positional.ok()) return invalid;
    absl::StatusOr<pb::DeleteRangeRequest> request = BuildDelete(*positional, del);
    if (!request.ok()) return request.status();
    *op.mutable_request_delete_range() = *std::move(request);
  } else {
    return invalid;
  }
  return op;
}

namespace {

// Reads lines up to the next empty one and hands each (trimmed) to `parse`.
template <typename T, typename Parse>
absl::Status ReadSection(std::istream& in, Parse parse,
                         google::protobuf::RepeatedPtrField<T>* out) {
  std::string line;
  while (true) {
    // etcdctl reads with ReadString('\n'): input that ends without a newline is an error.
    if (!std::getline(in, line) || in.eof()) return MakeFailure(kExitInvalidInput, "EOF");
    const absl::string_view trimmed = absl::StripAsciiWhitespace(line);
    if (trimmed.empty()) return absl::OkStatus();
    absl::StatusOr<T> item = parse(trimmed);
    if (!item.ok()) return item.status();
    *out->Add() = *std::move(item);
  }
}

}  // namespace

absl::StatusOr<pb::TxnRequest> ReadTxn(std::istream& in, std::ostream* prompts) {
  pb::TxnRequest txn;
  auto prompt = [&](absl::string_view text) {
    if (prompts != nullptr) *prompts << text << "\n" << std::flush;
  };
  prompt("compares:");
  absl::Status status = ReadSection(in, ParseCompare, txn.mutable_compare());
  if (!status.ok()) return status;
  prompt("success requests (get, put, del):");
  status = ReadSection(in, ParseRequestOp, txn.mutable_success());
  if (!status.ok()) return status;
  prompt("failure requests (get, put, del):");
  status = ReadSection(in, ParseRequestOp, txn.mutable_failure());
  if (!status.ok()) return status;
  return txn;
}

}  // namespace kvd::kvctl
