#include "client/kvctl/output.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/kvctl/exit.h"
#include "client/kvctl/requests.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/reflection.h"

namespace kvd::kvctl {

namespace pb = ::etcdserverpb;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::OneofDescriptor;
using google::protobuf::Reflection;

// ---------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------

namespace {

// Decodes one UTF-8 sequence at text[i]; returns its length, 0 if invalid.
size_t DecodeUtf8(absl::string_view text, size_t i, uint32_t* rune) {
  const unsigned char c = static_cast<unsigned char>(text[i]);
  size_t len = 0;
  uint32_t r = 0;
  if (c < 0x80) {
    *rune = c;
    return 1;
  } else if ((c & 0xE0) == 0xC0) {
    len = 2;
    r = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    r = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    r = c & 0x07;
  } else {
    return 0;
  }
  if (i + len > text.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    const unsigned char cc = static_cast<unsigned char>(text[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    r = r << 6 | (cc & 0x3F);
  }
  const uint32_t min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
  if (r < min || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF)) return 0;
  *rune = r;
  return len;
}

// Go's unicode.IsPrint for non-ASCII runes, approximated: everything except C1 controls,
// non-ASCII spaces, format characters and the line/paragraph separators.
bool GoIsPrintNonAscii(uint32_t r) {
  if (r >= 0x80 && r <= 0xA0) return false;  // C1 controls and no-break space
  if (r == 0xAD || r == 0x1680 || (r >= 0x2000 && r <= 0x200F) || (r >= 0x2028 && r <= 0x202F) ||
      (r >= 0x205F && r <= 0x206F) || r == 0x3000 || r == 0xFEFF || (r >= 0xFFF9 && r <= 0xFFFB)) {
    return false;
  }
  if ((r & 0xFFFE) == 0xFFFE) return false;      // non-characters U+xxFFFE/U+xxFFFF
  if (r >= 0xE000 && r <= 0xF8FF) return false;  // private use
  if (r >= 0xF0000) return false;
  return true;
}

}  // namespace

std::string GoJsonString(absl::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (c == '"' || c == '\\') {
        out.push_back('\\');
        out.push_back(static_cast<char>(c));
      } else if (c == '\n') {
        out += "\\n";
      } else if (c == '\r') {
        out += "\\r";
      } else if (c == '\t') {
        out += "\\t";
      } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
        out += "\\u00";
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xF]);
      } else {
        out.push_back(static_cast<char>(c));
      }
      ++i;
      continue;
    }
    // Anything that is not valid UTF-8 becomes U+FFFD, one byte at a time.
    uint32_t rune = 0;
    const size_t len = DecodeUtf8(text, i, &rune);
    if (len == 0) {
      out += "\\ufffd";
      ++i;
      continue;
    }
    if (rune == 0x2028 || rune == 0x2029) {
      out += rune == 0x2028 ? "\\u2028" : "\\u2029";
    } else {
      out.append(text.data() + i, len);
    }
    i += len;
  }
  out.push_back('"');
  return out;
}

std::string GoQuote(absl::string_view text) {
  std::string out = "\"";
  size_t i = 0;
  while (i < text.size()) {
    uint32_t r = 0;
    const size_t len = DecodeUtf8(text, i, &r);
    if (len == 0) {
      absl::StrAppendFormat(&out, "\\x%02x", static_cast<unsigned char>(text[i]));
      ++i;
      continue;
    }
    switch (r) {
      case '\a':
        out += "\\a";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\v':
        out += "\\v";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      default:
        if (r < 0x20 || r == 0x7F) {
          absl::StrAppendFormat(&out, "\\x%02x", r);
        } else if (r < 0x80 || GoIsPrintNonAscii(r)) {
          out.append(text.data() + i, len);
        } else if (r < 0x10000) {
          absl::StrAppendFormat(&out, "\\u%04x", r);
        } else {
          absl::StrAppendFormat(&out, "\\U%08x", r);
        }
    }
    i += len;
  }
  out += "\"";
  return out;
}

std::string GoCamelCase(absl::string_view s) {
  std::string t;
  size_t i = 0;
  if (!s.empty() && s[0] == '_') {
    t.push_back('X');
    i = 1;
  }
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c == '_' && i + 1 < s.size() && absl::ascii_islower(s[i + 1])) continue;
    if (absl::ascii_isdigit(c)) {
      t.push_back(c);
      continue;
    }
    if (absl::ascii_islower(c)) c = absl::ascii_toupper(c);
    t.push_back(c);
    while (i + 1 < s.size() && absl::ascii_islower(s[i + 1])) t.push_back(s[++i]);
  }
  return t;
}

namespace {

void AppendJson(const Message& message, std::string& out);

// One value of a (possibly repeated) field; index < 0 for a singular field.
void AppendValue(const Message& message, const FieldDescriptor* field, int index,
                 std::string& out) {
  const Reflection* r = message.GetReflection();
  const bool rep = index >= 0;
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      absl::StrAppend(
          &out, rep ? r->GetRepeatedInt32(message, field, index) : r->GetInt32(message, field));
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      absl::StrAppend(
          &out, rep ? r->GetRepeatedInt64(message, field, index) : r->GetInt64(message, field));
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      absl::StrAppend(
          &out, rep ? r->GetRepeatedUInt32(message, field, index) : r->GetUInt32(message, field));
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      absl::StrAppend(
          &out, rep ? r->GetRepeatedUInt64(message, field, index) : r->GetUInt64(message, field));
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      out += (rep ? r->GetRepeatedBool(message, field, index) : r->GetBool(message, field))
                 ? "true"
                 : "false";
      break;
    case FieldDescriptor::CPPTYPE_ENUM:  // Go's generated enums are plain int32s
      absl::StrAppend(&out, rep ? r->GetRepeatedEnumValue(message, field, index)
                                : r->GetEnumValue(message, field));
      break;
    case FieldDescriptor::CPPTYPE_STRING: {
      const std::string value =
          rep ? r->GetRepeatedString(message, field, index) : r->GetString(message, field);
      out += field->type() == FieldDescriptor::TYPE_BYTES
                 ? absl::StrCat("\"", absl::Base64Escape(value), "\"")
                 : GoJsonString(value);
      break;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      AppendJson(rep ? r->GetRepeatedMessage(message, field, index) : r->GetMessage(message, field),
                 out);
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT:
      // etcd's API has no floating point fields.
      absl::StrAppend(
          &out, rep ? r->GetRepeatedDouble(message, field, index) : r->GetDouble(message, field));
      break;
  }
}

// Whether Go's `omitempty` keeps the field: non-zero scalar, non-empty list, set message.
bool GoKeeps(const Message& message, const FieldDescriptor* field) {
  const Reflection* r = message.GetReflection();
  if (field->is_repeated()) return r->FieldSize(message, field) > 0;
  return r->HasField(message, field);  // proto3: HasField is "non-default" for scalars
}

void AppendJson(const Message& message, std::string& out) {
  const google::protobuf::Descriptor* d = message.GetDescriptor();
  const Reflection* r = message.GetReflection();
  out.push_back('{');
  bool first = true;
  auto key = [&](absl::string_view name) {
    if (!first) out.push_back(',');
    first = false;
    out += GoJsonString(name);
    out.push_back(':');
  };
  std::vector<const OneofDescriptor*> oneofs_done;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* field = d->field(i);
    const OneofDescriptor* oneof = field->real_containing_oneof();
    if (oneof != nullptr) {
      // Go keeps a oneof in one interface field named after the oneof, placed where its
      // first member is declared, without omitempty; the value is a wrapper struct whose
      // only field is named after the member that is set.
      if (std::find(oneofs_done.begin(), oneofs_done.end(), oneof) != oneofs_done.end()) {
        continue;
      }
      oneofs_done.push_back(oneof);
      key(GoCamelCase(oneof->name()));
      const FieldDescriptor* set = r->GetOneofFieldDescriptor(message, oneof);
      if (set == nullptr) {
        out += "null";
      } else {
        out.push_back('{');
        out += GoJsonString(GoCamelCase(set->name()));
        out.push_back(':');
        AppendValue(message, set, -1, out);
        out.push_back('}');
      }
      continue;
    }
    if (!GoKeeps(message, field)) continue;
    key(field->name());
    if (field->is_repeated()) {
      out.push_back('[');
      for (int k = 0; k < r->FieldSize(message, field); ++k) {
        if (k > 0) out.push_back(',');
        AppendValue(message, field, k, out);
      }
      out.push_back(']');
    } else {
      AppendValue(message, field, -1, out);
    }
  }
  out.push_back('}');
}

}  // namespace

std::string EtcdJson(const Message& message) {
  std::string out;
  AppendJson(message, out);
  return out;
}

// ---------------------------------------------------------------------------------------
// Numbers, durations, tables
// ---------------------------------------------------------------------------------------

std::string HumanizeBytes(uint64_t bytes) {
  static constexpr const char* kSizes[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
  if (bytes < 10) return absl::StrFormat("%d B", bytes);
  const double s = static_cast<double>(bytes);
  const double e = std::floor(std::log(s) / std::log(1000.0));
  const double val = std::floor(s / std::pow(1000.0, e) * 10 + 0.5) / 10;
  return absl::StrFormat(val < 10 ? "%.1f %s" : "%.0f %s", val, kSizes[static_cast<int>(e)]);
}

namespace {

// Go's fmtFrac: the fraction v % 10^prec as ".ddd" without trailing zeros (nothing if
// zero); returns v / 10^prec through `v`.
std::string FmtFrac(uint64_t& v, int prec) {
  std::string digits;
  bool print = false;
  for (int i = 0; i < prec; ++i) {
    const uint64_t digit = v % 10;
    print = print || digit != 0;
    if (print) digits.insert(digits.begin(), static_cast<char>('0' + digit));
    v /= 10;
  }
  return print ? "." + digits : "";
}

}  // namespace

std::string GoDuration(absl::Duration d) {
  const int64_t ns = absl::ToInt64Nanoseconds(d);
  const bool negative = ns < 0;
  uint64_t u = negative ? 0 - static_cast<uint64_t>(ns) : static_cast<uint64_t>(ns);
  std::string out;
  if (u == 0) return "0s";
  if (u < 1000000000) {
    std::string unit;
    int prec;
    if (u < 1000) {
      prec = 0;
      unit = "ns";
    } else if (u < 1000000) {
      prec = 3;
      unit = "µs";
    } else {
      prec = 6;
      unit = "ms";
    }
    std::string frac = FmtFrac(u, prec);
    out = absl::StrCat(u, frac, unit);
  } else {
    std::string frac = FmtFrac(u, 9);
    out = absl::StrCat(u % 60, frac, "s");
    u /= 60;
    if (u > 0) {
      out = absl::StrCat(u % 60, "m", out);
      u /= 60;
      if (u > 0) out = absl::StrCat(u, "h", out);
    }
  }
  return negative ? "-" + out : out;
}

namespace {

// Display width of UTF-8 text (one column per code point).
size_t Width(absl::string_view s) {
  size_t n = 0;
  for (char c : s) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

}  // namespace

std::string RenderTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::string> titles;
  std::vector<size_t> widths;
  for (const std::string& h : header) {
    titles.push_back(absl::AsciiStrToUpper(h));
    widths.push_back(Width(titles.back()));
  }
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], Width(row[i]));
    }
  }
  std::string line = "+";
  for (size_t w : widths) line += std::string(w + 2, '-') + "+";
  line += "\n";

  std::string out = line;
  out += "|";
  for (size_t i = 0; i < titles.size(); ++i) {
    const size_t gap = widths[i] - Width(titles[i]);
    const size_t left = gap / 2;
    out += " " + std::string(left, ' ') + titles[i] + std::string(gap - left, ' ') + " |";
  }
  out += "\n" + line;
  for (const auto& row : rows) {
    out += "|";
    for (size_t i = 0; i < widths.size(); ++i) {
      const std::string cell = i < row.size() ? row[i] : "";
      out += " " + std::string(widths[i] - Width(cell), ' ') + cell + " |";
    }
    out += "\n";
  }
  out += line;
  return out;
}

// ---------------------------------------------------------------------------------------
// Printer
// ---------------------------------------------------------------------------------------

absl::Status ParseFormat(absl::string_view name, Format* format) {
  if (name == "simple") {
    *format = Format::kSimple;
  } else if (name == "json") {
    *format = Format::kJson;
  } else if (name == "table") {
    *format = Format::kTable;
  } else if (name == "fields") {
    *format = Format::kFields;
  } else if (name == "protobuf") {
    return MakeFailure(kExitBadFeature,
                       absl::StrCat(name, " not supported as output format by kvctl"));
  } else {
    return MakeFailure(kExitBadFeature, absl::StrCat("unknown output format \"", name, "\""));
  }
  return absl::OkStatus();
}

absl::Status Printer::Unsupported() const {
  return MakeFailure(kExitBadFeature, "table not supported as output format");
}

void Printer::PrintKV(const mvccpb::KeyValue& kv, bool value_only) {
  auto text = [&](const std::string& bytes) {
    if (!hex_) return bytes;
    std::string out;
    for (unsigned char c : bytes) absl::StrAppendFormat(&out, "\\x%02x", c);
    return out;
  };
  if (!value_only) out_ << text(kv.key()) << "\n";
  out_ << text(kv.value()) << "\n";
}

void Printer::SimpleGet(const pb::RangeResponse& response, bool value_only) {
  for (const mvccpb::KeyValue& kv : response.kvs()) PrintKV(kv, value_only);
}

void Printer::SimplePut(const pb::PutResponse& response) {
  out_ << "OK\n";
  if (response.has_prev_kv()) PrintKV(response.prev_kv(), false);
}

void Printer::SimpleDel(const pb::DeleteRangeResponse& response) {
  out_ << response.deleted() << "\n";
  for (const mvccpb::KeyValue& kv : response.prev_kvs()) PrintKV(kv, false);
}

void Printer::FieldsHeader(const pb::ResponseHeader& h) {
  out_ << "\"ClusterID\" : " << h.cluster_id() << "\n"
       << "\"MemberID\" : " << h.member_id() << "\n"
       << "\"Revision\" : " << h.revision() << "\n"
       << "\"RaftTerm\" : " << h.raft_term() << "\n";
}

void Printer::FieldsKV(absl::string_view prefix, const mvccpb::KeyValue& kv) {
  out_ << "\"" << prefix << "Key\" : " << GoQuote(kv.key()) << "\n"
       << "\"" << prefix << "CreateRevision\" : " << kv.create_revision() << "\n"
       << "\"" << prefix << "ModRevision\" : " << kv.mod_revision() << "\n"
       << "\"" << prefix << "Version\" : " << kv.version() << "\n"
       << "\"" << prefix << "Value\" : " << GoQuote(kv.value()) << "\n"
       << "\"" << prefix << "Lease\" : " << kv.lease() << "\n";
}

void Printer::FieldsGet(const pb::RangeResponse& response) {
  FieldsHeader(response.header());
  for (const mvccpb::KeyValue& kv : response.kvs()) FieldsKV("", kv);
  out_ << "\"More\" : " << (response.more() ? "true" : "false") << "\n"
       << "\"Count\" : " << response.count() << "\n";
}

void Printer::FieldsPut(const pb::PutResponse& response) {
  FieldsHeader(response.header());
  if (response.has_prev_kv()) FieldsKV("Prev", response.prev_kv());
}

void Printer::FieldsDel(const pb::DeleteRangeResponse& response) {
  FieldsHeader(response.header());
  out_ << "\"Deleted\" : " << response.deleted() << "\n";
  for (const mvccpb::KeyValue& kv : response.prev_kvs()) FieldsKV("Prev", kv);
}

absl::Status Printer::Get(const pb::RangeResponse& response, bool value_only) {
  switch (format_) {
    case Format::kSimple:
      SimpleGet(response, value_only);
      break;
    case Format::kJson:
      out_ << EtcdJson(response) << "\n";
      break;
    case Format::kFields:
      FieldsGet(response);
      break;
    case Format::kTable:
      return Unsupported();
  }
  return absl::OkStatus();
}

absl::Status Printer::Put(const pb::PutResponse& response) {
  switch (format_) {
    case Format::kSimple:
      SimplePut(response);
      break;
    case Format::kJson:
      out_ << EtcdJson(response) << "\n";
      break;
    case Format::kFields:
      FieldsPut(response);
      break;
    case Format::kTable:
      return Unsupported();
  }
  return absl::OkStatus();
}

absl::Status Printer::Del(const pb::DeleteRangeResponse& response) {
  switch (format_) {
    case Format::kSimple:
      SimpleDel(response);
      break;
    case Format::kJson:
      out_ << EtcdJson(response) << "\n";
      break;
    case Format::kFields:
      FieldsDel(response);
      break;
    case Format::kTable:
      return Unsupported();
  }
  return absl::OkStatus();
}

absl::Status Printer::Txn(const pb::TxnResponse& response) {
  switch (format_) {
    case Format::kSimple:
      out_ << (response.succeeded() ? "SUCCESS" : "FAILURE") << "\n";
      for (const pb::ResponseOp& op : response.responses()) {
        out_ << "\n";
        switch (op.response_case()) {
          case pb::ResponseOp::kResponseRange:
            SimpleGet(op.response_range(), false);
            break;
          case pb::ResponseOp::kResponsePut:
            SimplePut(op.response_put());
            break;
          case pb::ResponseOp::kResponseDeleteRange:
            SimpleDel(op.response_delete_range());
            break;
          default:
            out_ << "unexpected response " << op.ShortDebugString() << "\n";
            break;
        }
      }
      break;
    case Format::kJson:
      out_ << EtcdJson(response) << "\n";
      break;
    case Format::kFields:
      FieldsHeader(response.header());
      out_ << "\"Succeeded\" : " << (response.succeeded() ? "true" : "false") << "\n";
      for (const pb::ResponseOp& op : response.responses()) {
        switch (op.response_case()) {
          case pb::ResponseOp::kResponseRange:
            FieldsGet(op.response_range());
            break;
          case pb::ResponseOp::kResponsePut:
            FieldsPut(op.response_put());
            break;
          case pb::ResponseOp::kResponseDeleteRange:
            FieldsDel(op.response_delete_range());
            break;
          default:
            out_ << "\"Unknown\" : " << GoQuote(op.ShortDebugString()) << "\n";
            break;
        }
      }
      break;
    case Format::kTable:
      return Unsupported();
  }
  return absl::OkStatus();
}

namespace {

// Go's fmt.Println of a []string: "[a b c]".
std::string GoStringSlice(const google::protobuf::RepeatedPtrField<std::string>& items) {
  return absl::StrCat("[", absl::StrJoin(items, " "), "]");
}

std::vector<std::string> StatusRow(const EndpointStatus& s) {
  const pb::StatusResponse& r = s.status;
  return {s.endpoint,
          absl::StrFormat("%x", r.header().member_id()),
          r.version(),
          HumanizeBytes(static_cast<uint64_t>(r.dbsize())),
          r.leader() == r.header().member_id() ? "true" : "false",
          r.islearner() ? "true" : "false",
          absl::StrCat(r.raftterm()),
          absl::StrCat(r.raftindex()),
          absl::StrCat(r.raftappliedindex()),
          absl::StrJoin(r.errors(), ", ")};
}

}  // namespace

void Printer::EndpointStatuses(const std::vector<EndpointStatus>& statuses) {
  static const std::vector<std::string> kHeader = {"endpoint",  "ID",         "version",
                                                   "db size",   "is leader",  "is learner",
                                                   "raft term", "raft index", "raft applied index",
                                                   "errors"};
  std::vector<std::vector<std::string>> rows;
  for (const EndpointStatus& s : statuses) rows.push_back(StatusRow(s));
  switch (format_) {
    case Format::kSimple:
      for (const auto& row : rows) out_ << absl::StrJoin(row, ", ") << "\n";
      break;
    case Format::kJson: {
      std::vector<std::string> items;
      for (const EndpointStatus& s : statuses) {
        items.push_back(absl::StrCat("{\"Endpoint\":", GoJsonString(s.endpoint),
                                     ",\"Status\":", EtcdJson(s.status), "}"));
      }
      out_ << "[" << absl::StrJoin(items, ",") << "]\n";
      break;
    }
    case Format::kTable:
      out_ << RenderTable(kHeader, rows);
      break;
    case Format::kFields:
      for (const EndpointStatus& s : statuses) {
        const pb::StatusResponse& r = s.status;
        FieldsHeader(r.header());
        out_ << "\"Version\" : " << GoQuote(r.version()) << "\n"
             << "\"DBSize\" : " << r.dbsize() << "\n"
             << "\"Leader\" : " << r.leader() << "\n"
             << "\"IsLearner\" : " << (r.islearner() ? "true" : "false") << "\n"
             << "\"RaftIndex\" : " << r.raftindex() << "\n"
             << "\"RaftTerm\" : " << r.raftterm() << "\n"
             << "\"RaftAppliedIndex\" : " << r.raftappliedindex() << "\n"
             << "\"Errors\" : " << GoStringSlice(r.errors()) << "\n"
             << "\"Endpoint\" : " << GoQuote(s.endpoint) << "\n\n";
      }
      break;
  }
}

void Printer::EndpointHealths(const std::vector<EndpointHealth>& healths) {
  switch (format_) {
    case Format::kSimple:
      for (const EndpointHealth& h : healths) {
        if (h.error.empty()) {
          err_ << h.endpoint
               << " is healthy: successfully committed proposal: took = " << GoDuration(h.took)
               << "\n";
        } else {
          err_ << h.endpoint << " is unhealthy: failed to commit proposal: " << h.error << "\n";
        }
      }
      break;
    case Format::kJson: {
      std::vector<std::string> items;
      for (const EndpointHealth& h : healths) {
        std::string item = absl::StrCat("{\"endpoint\":", GoJsonString(h.endpoint),
                                        ",\"health\":", h.healthy ? "true" : "false",
                                        ",\"took\":", GoJsonString(GoDuration(h.took)));
        if (!h.error.empty()) absl::StrAppend(&item, ",\"error\":", GoJsonString(h.error));
        items.push_back(item + "}");
      }
      out_ << "[" << absl::StrJoin(items, ",") << "]\n";
      break;
    }
    case Format::kTable: {
      std::vector<std::vector<std::string>> rows;
      for (const EndpointHealth& h : healths) {
        rows.push_back({h.endpoint, h.healthy ? "true" : "false", GoDuration(h.took), h.error});
      }
      out_ << RenderTable({"endpoint", "health", "took", "error"}, rows);
      break;
    }
    case Format::kFields:
      for (const EndpointHealth& h : healths) {
        out_ << "\"Endpoint\" : " << GoQuote(h.endpoint) << "\n"
             << "\"Health\" : " << (h.healthy ? "true" : "false") << "\n"
             << "\"Took\" : " << GoDuration(h.took) << "\n"
             << "\"Error\" : " << h.error << "\n\n";
      }
      break;
  }
}

void Printer::EndpointHashKVs(const std::vector<EndpointHashKV>& hashes) {
  std::vector<std::vector<std::string>> rows;
  for (const EndpointHashKV& h : hashes) {
    rows.push_back({h.endpoint, absl::StrCat(h.hash_kv.hash())});
  }
  switch (format_) {
    case Format::kSimple:
      for (const auto& row : rows) out_ << absl::StrJoin(row, ", ") << "\n";
      break;
    case Format::kJson: {
      std::vector<std::string> items;
      for (const EndpointHashKV& h : hashes) {
        items.push_back(absl::StrCat("{\"Endpoint\":", GoJsonString(h.endpoint),
                                     ",\"HashKV\":", EtcdJson(h.hash_kv), "}"));
      }
      out_ << "[" << absl::StrJoin(items, ",") << "]\n";
      break;
    }
    case Format::kTable:
      out_ << RenderTable({"endpoint", "hash"}, rows);
      break;
    case Format::kFields:
      for (const EndpointHashKV& h : hashes) {
        FieldsHeader(h.hash_kv.header());
        out_ << "\"Endpoint\" : " << GoQuote(h.endpoint) << "\n"
             << "\"Hash\" : " << h.hash_kv.hash() << "\n\n";
      }
      break;
  }
}

absl::Status Printer::Watch(const pb::WatchResponse& r) {
  switch (format_) {
    case Format::kSimple:
      for (const mvccpb::Event& e : r.events()) {
        out_ << mvccpb::Event::EventType_Name(e.type()) << "\n";
        if (e.has_prev_kv()) PrintKV(e.prev_kv(), false);
        PrintKV(e.kv(), false);
      }
      break;
    case Format::kJson: {
      // etcd's clientv3.WatchResponse, as Go's encoding/json prints it.
      std::vector<std::string> events;
      for (const mvccpb::Event& e : r.events()) events.push_back(EtcdJson(e));
      out_ << "{\"Header\":" << EtcdJson(r.header()) << ",\"Events\":"
           << "[" << absl::StrJoin(events, ",") << "]"
           << ",\"CompactRevision\":" << r.compact_revision()
           << ",\"Canceled\":" << (r.canceled() ? "true" : "false")
           << ",\"Created\":" << (r.created() ? "true" : "false") << "}\n";
      break;
    }
    case Format::kFields:
      FieldsHeader(r.header());
      for (const mvccpb::Event& e : r.events()) {
        out_ << "\"Type\" : " << mvccpb::Event::EventType_Name(e.type()) << "\n";
        if (e.has_prev_kv()) FieldsKV("Prev", e.prev_kv());
        FieldsKV("", e.kv());
      }
      break;
    case Format::kTable:
      return Unsupported();
  }
  out_ << std::flush;
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------
// Leases and members
// ---------------------------------------------------------------------------------------

namespace {

// etcd's clientv3 lease responses embed *ResponseHeader, so Go's encoding/json flattens the
// header's fields (each omitted when zero) into the response object.
std::string FlatJson(const pb::ResponseHeader& h, const std::vector<std::string>& fields) {
  std::vector<std::string> parts;
  if (h.cluster_id() != 0) parts.push_back(absl::StrCat("\"cluster_id\":", h.cluster_id()));
  if (h.member_id() != 0) parts.push_back(absl::StrCat("\"member_id\":", h.member_id()));
  if (h.revision() != 0) parts.push_back(absl::StrCat("\"revision\":", h.revision()));
  if (h.raft_term() != 0) parts.push_back(absl::StrCat("\"raft_term\":", h.raft_term()));
  parts.insert(parts.end(), fields.begin(), fields.end());
  return absl::StrCat("{", absl::StrJoin(parts, ","), "}");
}

std::string LeaseHex(int64_t id) { return absl::StrFormat("%016x", static_cast<uint64_t>(id)); }

}  // namespace

absl::Status Printer::LeaseGrant(const pb::LeaseGrantResponse& r) {
  switch (format_) {
    case Format::kSimple:
      out_ << "lease " << LeaseHex(r.id()) << " granted with TTL(" << r.ttl() << "s)\n";
      break;
    case Format::kJson:
      out_ << FlatJson(r.header(),
                       {absl::StrCat("\"ID\":", r.id()), absl::StrCat("\"TTL\":", r.ttl()),
                        absl::StrCat("\"Error\":", GoJsonString(r.error()))})
           << "\n";
      break;
    case Format::kFields:
      FieldsHeader(r.header());
      out_ << "\"ID\" : " << r.id() << "\n\"TTL\" : " << r.ttl() << "\n";
      break;
    case Format::kTable:
      return Unsupported();
  }
  return absl::OkStatus();
}

absl::Status Printer::LeaseRevoke(int64_t id, const pb::LeaseRevokeResponse& r) {
  switch (format_) {
    case Format::kSimple:
      out_ << "lease " << LeaseHex(id) << " revoked\n";
      break;
    case Format::kJson:
      out_ << EtcdJson(r) << "\n";
      break;
    case Format::kFields:
      FieldsHeader(r.header());
      break;
    case Format::kTable:
      return Unsupported();
  }
  return absl::OkStatus();
}

absl::Status Printer::LeaseKeepAlive(const pb::LeaseKeepAliveResponse& r) {
  switch (format_) {
    case Format::kSimple:
      out_ << "lease " << LeaseHex(r.id()) << " keepalived with TTL(" << r.ttl() << ")\n";
      break;
    case Format::kJson:
      out_ << FlatJson(r.header(),
                       {absl::StrCat("\"ID\":", r.id()), absl::StrCat("\"TTL\":", r.ttl())})
           << "\n";
      break;
    case Format::kFields:
      FieldsHeader(r.header());
      out_ << "\"ID\" : " << r.id() << "\n\"TTL\" : " << r.ttl() << "\n";
      break;
    case Format::kTable:
      return Unsupported();
  }
  return absl::OkStatus();
}

absl::Status Printer::LeaseTimeToLive(const pb::LeaseTimeToLiveResponse& r, bool keys) {
  switch (format_) {
    case Format::kSimple: {
      if (r.grantedttl() == 0 && r.ttl() == -1) {
        out_ << "lease " << LeaseHex(r.id()) << " already expired\n";
        break;
      }
      out_ << "lease " << LeaseHex(r.id()) << " granted with TTL(" << r.grantedttl()
           << "s), remaining(" << r.ttl() << "s)";
      if (keys) out_ << ", attached keys([" << absl::StrJoin(r.keys(), " ") << "])";
      out_ << "\n";
      break;
    }
    case Format::kJson: {
      std::vector<std::string> encoded;
      for (const std::string& k : r.keys()) {
        encoded.push_back(absl::StrCat("\"", absl::Base64Escape(k), "\""));
      }
      out_ << FlatJson(r.header(),
                       {absl::StrCat("\"id\":", r.id()), absl::StrCat("\"ttl\":", r.ttl()),
                        absl::StrCat("\"granted-ttl\":", r.grantedttl()),
                        absl::StrCat("\"keys\":",
                                     encoded.empty()
                                         ? "null"
                                         : absl::StrCat("[", absl::StrJoin(encoded, ","), "]"))})
           << "\n";
      break;
    }
    case Format::kFields:
      FieldsHeader(r.header());
      out_ << "\"ID\" : " << r.id() << "\n\"TTL\" : " << r.ttl()
           << "\n\"GrantedTTL\" : " << r.grantedttl() << "\n";
      for (const std::string& k : r.keys()) out_ << "\"Key\" : " << GoQuote(k) << "\n";
      break;
    case Format::kTable:
      return Unsupported();
  }
  return absl::OkStatus();
}

absl::Status Printer::LeaseLeases(const pb::LeaseLeasesResponse& r) {
  switch (format_) {
    case Format::kSimple:
      out_ << "found " << r.leases_size() << " leases\n";
      for (const pb::LeaseStatus& l : r.leases()) out_ << LeaseHex(l.id()) << "\n";
      break;
    case Format::kJson: {
      std::vector<std::string> items;
      for (const pb::LeaseStatus& l : r.leases()) {
        items.push_back(absl::StrCat("{\"id\":", l.id(), "}"));
      }
      out_ << FlatJson(r.header(), {absl::StrCat("\"leases\":[", absl::StrJoin(items, ","), "]")})
           << "\n";
      break;
    }
    case Format::kFields:
      FieldsHeader(r.header());
      for (const pb::LeaseStatus& l : r.leases()) out_ << "\"ID\" : " << l.id() << "\n";
      break;
    case Format::kTable:
      return Unsupported();
  }
  return absl::OkStatus();
}

void Printer::MemberList(const pb::MemberListResponse& r) {
  std::vector<std::vector<std::string>> rows;
  for (const pb::Member& m : r.members()) {
    rows.push_back({absl::StrFormat("%x", m.id()), m.name().empty() ? "unstarted" : "started",
                    m.name(), absl::StrJoin(m.peerurls(), ","), absl::StrJoin(m.clienturls(), ","),
                    m.islearner() ? "true" : "false"});
  }
  switch (format_) {
    case Format::kSimple:
      for (const auto& row : rows) out_ << absl::StrJoin(row, ", ") << "\n";
      break;
    case Format::kJson:
      out_ << EtcdJson(r) << "\n";
      break;
    case Format::kTable:
      out_ << RenderTable({"ID", "Status", "Name", "Peer Addrs", "Client Addrs", "Is Learner"},
                          rows);
      break;
    case Format::kFields:
      FieldsHeader(r.header());
      for (const pb::Member& m : r.members()) {
        out_ << "\"ID\" : " << m.id() << "\n\"Name\" : " << GoQuote(m.name()) << "\n";
        for (const std::string& u : m.peerurls()) out_ << "\"PeerURL\" : " << GoQuote(u) << "\n";
        for (const std::string& u : m.clienturls()) {
          out_ << "\"ClientURL\" : " << GoQuote(u) << "\n";
        }
        out_ << "\"IsLearner\" : " << (m.islearner() ? "true" : "false") << "\n\n";
      }
      break;
  }
}

absl::Status Printer::MemberChange(absl::string_view verb, uint64_t member_id,
                                   const pb::ResponseHeader& header, const Message& response) {
  switch (format_) {
    case Format::kSimple:
      out_ << absl::StrFormat("Member %16x %s cluster %16x\n", member_id, verb,
                              header.cluster_id());
      break;
    case Format::kJson:
      out_ << EtcdJson(response) << "\n";
      break;
    case Format::kFields:
      FieldsHeader(header);
      break;
    case Format::kTable:
      return Unsupported();
  }
  return absl::OkStatus();
}

absl::Status Printer::MoveLeader(uint64_t from, uint64_t to, const pb::MoveLeaderResponse& r) {
  switch (format_) {
    case Format::kSimple:
      out_ << absl::StrFormat("Leadership transferred from %x to %x\n", from, to);
      break;
    case Format::kJson:
      out_ << EtcdJson(r) << "\n";
      break;
    case Format::kFields:
    case Format::kTable:
      return MakeFailure(kExitBadFeature,
                         absl::StrCat(format_ == Format::kTable ? "table" : "fields",
                                      " not supported as output format"));
  }
  return absl::OkStatus();
}

absl::Status Printer::Alarm(const pb::AlarmResponse& r) {
  switch (format_) {
    case Format::kSimple:
      // Go's %+v of the message: its compact text form, each field followed by a space.
      for (const pb::AlarmMember& a : r.alarms()) {
        if (a.memberid() != 0) out_ << "memberID:" << a.memberid() << " ";
        if (a.alarm() != pb::NONE) out_ << "alarm:" << pb::AlarmType_Name(a.alarm()) << " ";
        out_ << "\n";
      }
      break;
    case Format::kJson:
      out_ << EtcdJson(r) << "\n";
      break;
    case Format::kFields:
      FieldsHeader(r.header());
      for (const pb::AlarmMember& a : r.alarms()) {
        out_ << "\"MemberID\" : " << a.memberid()
             << "\n\"AlarmType\" : " << pb::AlarmType_Name(a.alarm()) << "\n\n";
      }
      break;
    case Format::kTable:
      return Unsupported();
  }
  return absl::OkStatus();
}

absl::Status Printer::AuthResult(absl::string_view simple, const Message& response,
                                 const pb::ResponseHeader& header, absl::string_view fields) {
  switch (format_) {
    case Format::kSimple:
      out_ << simple;
      break;
    case Format::kJson:
      out_ << EtcdJson(response) << "\n";
      break;
    case Format::kFields:
      FieldsHeader(header);
      out_ << fields;
      break;
    case Format::kTable:
      return Unsupported();
  }
  return absl::OkStatus();
}

std::string RoleGetText(absl::string_view role, const pb::AuthRoleGetResponse& r) {
  std::string out = absl::StrCat("Role ", role, "\n");
  auto range = [](const authpb::Permission& p) {
    std::string line;
    if (p.range_end() != std::string(1, '\0')) {
      line = absl::StrCat("\t[", p.key(), ", ", p.range_end(), ")");
    } else {
      line = absl::StrCat("\t[", p.key(), ", <open ended>");
    }
    if (PrefixRangeEnd(p.key()) == p.range_end()) absl::StrAppend(&line, " (prefix ", p.key(), ")");
    return line + "\n";
  };
  for (const bool write : {false, true}) {
    absl::StrAppend(&out, write ? "KV Write:\n" : "KV Read:\n");
    for (const authpb::Permission& p : r.perm()) {
      const bool matches =
          p.permtype() == authpb::Permission::READWRITE ||
          p.permtype() == (write ? authpb::Permission::WRITE : authpb::Permission::READ);
      if (!matches) continue;
      absl::StrAppend(&out, p.range_end().empty() ? absl::StrCat("\t", p.key(), "\n") : range(p));
    }
  }
  return out;
}

}  // namespace kvd::kvctl
