#include "storage/mvcc/key_codec.h"

#include <cstring>

#include "storage/engine.h"

namespace kvd::storage::mvcc {
namespace {

constexpr char kEscape = '\x00';
constexpr char kEscapedNul = '\xff';
constexpr char kTerminator = '\x01';
constexpr size_t kRevisionBytes = 16;

void AppendRevision(std::string* dst, Revision rev) {
  PutBigEndian64(dst, ~static_cast<uint64_t>(rev.main));
  PutBigEndian64(dst, ~static_cast<uint64_t>(rev.sub));
}

// Appends a LEB128 varint.
void PutVarint(std::string* dst, uint64_t v) {
  while (v >= 0x80) {
    dst->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  dst->push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view* in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift <= 63 && !in->empty(); shift += 7) {
    uint8_t byte = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

}  // namespace

void AppendKeyPrefix(std::string* dst, std::string_view user_key) {
  dst->reserve(dst->size() + user_key.size() + 2 + kRevisionBytes);
  for (char c : user_key) {
    dst->push_back(c);
    if (c == kEscape) dst->push_back(kEscapedNul);
  }
  dst->push_back(kEscape);
  dst->push_back(kTerminator);
}

std::string KeyPrefix(std::string_view user_key) {
  std::string out;
  AppendKeyPrefix(&out, user_key);
  return out;
}

std::string VersionKey(std::string_view user_key, Revision rev) {
  std::string out;
  AppendKeyPrefix(&out, user_key);
  AppendRevision(&out, rev);
  return out;
}

std::string SeekKeyAt(std::string_view user_key, int64_t rev_main) {
  std::string out;
  AppendKeyPrefix(&out, user_key);
  PutBigEndian64(&out, ~static_cast<uint64_t>(rev_main));
  PutBigEndian64(&out, 0);  // ~sub is smallest for the largest sub
  return out;
}

std::string KeySuccessorPrefix(std::string_view user_key) {
  std::string out;
  AppendKeyPrefix(&out, user_key);
  out.back() = static_cast<char>(kTerminator + 1);
  return out;
}

std::optional<size_t> PrefixLength(std::string_view encoded) {
  const char* begin = encoded.data();
  const char* end = begin + encoded.size();
  for (const char* p = begin; p + 1 < end; p += 2) {
    p = static_cast<const char*>(std::memchr(p, kEscape, static_cast<size_t>(end - p - 1)));
    if (p == nullptr) return std::nullopt;
    if (p[1] == kTerminator) return static_cast<size_t>(p - begin) + 2;
    if (p[1] != kEscapedNul) return std::nullopt;
    // p += 2 skips the escaped NUL's two bytes
  }
  return std::nullopt;
}

bool SplitVersionKey(std::string_view encoded, size_t* prefix_len, Revision* rev) {
  std::optional<size_t> prefix = PrefixLength(encoded);
  if (!prefix || encoded.size() != *prefix + kRevisionBytes) return false;
  *prefix_len = *prefix;
  rev->main = static_cast<int64_t>(~GetBigEndian64(encoded.data() + *prefix));
  rev->sub = static_cast<int64_t>(~GetBigEndian64(encoded.data() + *prefix + 8));
  return true;
}

void UnescapeKeyPrefix(std::string_view prefix, std::string* user_key) {
  std::string_view escaped = prefix.substr(0, prefix.size() >= 2 ? prefix.size() - 2 : 0);
  if (escaped.find(kEscape) == std::string_view::npos) {
    user_key->assign(escaped.data(), escaped.size());
    return;
  }
  user_key->clear();
  for (size_t i = 0; i < escaped.size(); ++i) {
    user_key->push_back(escaped[i]);
    if (escaped[i] == kEscape) ++i;
  }
}

bool DecodeVersionKey(std::string_view encoded, std::string* user_key, Revision* rev) {
  size_t prefix_len = 0;
  if (!SplitVersionKey(encoded, &prefix_len, rev)) return false;
  UnescapeKeyPrefix(encoded.substr(0, prefix_len), user_key);
  return true;
}

std::string RevIndexKey(Revision rev) {
  std::string out;
  PutBigEndian64(&out, static_cast<uint64_t>(rev.main));
  PutBigEndian64(&out, static_cast<uint64_t>(rev.sub));
  return out;
}

Revision DecodeRevIndexKey(std::string_view encoded) {
  return Revision{static_cast<int64_t>(GetBigEndian64(encoded.data())),
                  static_cast<int64_t>(GetBigEndian64(encoded.data() + 8))};
}

void EncodeValueRecord(std::string* dst, const ValueRecord& record) {
  dst->push_back(record.tombstone ? 1 : 0);
  if (record.tombstone) return;
  PutVarint(dst, static_cast<uint64_t>(record.create_revision));
  PutVarint(dst, static_cast<uint64_t>(record.version));
  PutVarint(dst, static_cast<uint64_t>(record.lease));
  dst->append(record.value);
}

bool DecodeValueRecord(std::string_view encoded, ValueRecord* record) {
  if (encoded.empty()) return false;
  uint8_t flags = static_cast<uint8_t>(encoded.front());
  encoded.remove_prefix(1);
  *record = ValueRecord{};
  if (flags > 1) return false;
  if (flags == 1) {
    record->tombstone = true;
    return encoded.empty();
  }
  uint64_t create = 0, version = 0, lease = 0;
  if (!GetVarint(&encoded, &create) || !GetVarint(&encoded, &version) ||
      !GetVarint(&encoded, &lease)) {
    return false;
  }
  record->create_revision = static_cast<int64_t>(create);
  record->version = static_cast<int64_t>(version);
  record->lease = static_cast<int64_t>(lease);
  record->value = encoded;
  return true;
}

std::string RevIndexValue(bool tombstone, std::string_view user_key) {
  std::string out;
  out.reserve(1 + user_key.size());
  out.push_back(tombstone ? 1 : 0);
  out.append(user_key);
  return out;
}

bool DecodeRevIndexValue(std::string_view encoded, bool* tombstone, std::string_view* user_key) {
  if (encoded.empty() || static_cast<uint8_t>(encoded.front()) > 1) return false;
  *tombstone = encoded.front() == 1;
  *user_key = encoded.substr(1);
  return true;
}

}  // namespace kvd::storage::mvcc
