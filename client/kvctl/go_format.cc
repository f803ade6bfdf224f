#include "client/kvctl/go_format.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/reflection.h"

namespace kvd::kvctl {

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

}  // namespace kvd::kvctl
