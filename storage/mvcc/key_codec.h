// On-disk encoding of MVCC keys and values.
//
// The kv column family holds one record per (user key, revision):
//
//   escape(user_key) ‖ 0x00 0x01 ‖ BE64(~main) ‖ BE64(~sub)  →  ValueRecord
//
// escape() doubles every 0x00 as 0x00 0xFF, and 0x00 0x01 ends the escaped key, so byte
// order of encoded keys equals byte order of user keys even with embedded NULs, and no
// escaped key is a prefix of another's encoding. The revision is stored complemented, so
// the newest version of a key sorts first: "the value of k at revision R" is one Seek to
// escape(k) ‖ 0x00 0x01 ‖ BE64(~R) ‖ BE64(0) (the first version with main ≤ R), and every
// version of k sorts before escape(k) ‖ 0x00 0x02, where the next key begins.
//
// The rev_index column family maps BE64(main) ‖ BE64(sub) → flags ‖ user_key, the history
// in revision order (watch catch-up, compaction, hashing).
#ifndef KVD_STORAGE_MVCC_KEY_CODEC_H_
#define KVD_STORAGE_MVCC_KEY_CODEC_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kvd::storage::mvcc {

// A revision of the store: main is bumped by each mutating request (a txn is one main
// revision); sub numbers the changes inside it, from 0.
struct Revision {
  int64_t main = 0;
  int64_t sub = 0;
  friend bool operator==(const Revision&, const Revision&) = default;
  friend auto operator<=>(const Revision&, const Revision&) = default;
};

// Appends escape(user_key) ‖ 0x00 0x01: the prefix shared by every version of user_key.
void AppendKeyPrefix(std::string* dst, std::string_view user_key);
std::string KeyPrefix(std::string_view user_key);

// The full kv-family key of user_key at rev.
std::string VersionKey(std::string_view user_key, Revision rev);

// The smallest kv-family key holding a version of user_key with main ≤ rev_main: where a
// read of user_key at rev_main seeks to.
std::string SeekKeyAt(std::string_view user_key, int64_t rev_main);

// The first kv-family key after every version of user_key.
std::string KeySuccessorPrefix(std::string_view user_key);

// Splits a kv-family key. Returns false if it is not well formed (corruption).
bool DecodeVersionKey(std::string_view encoded, std::string* user_key, Revision* rev);

// Splits a kv-family key without decoding the user key: *prefix_len is the length of its
// escaped prefix (PrefixLength). Returns false if it is not well formed (corruption).
bool SplitVersionKey(std::string_view encoded, size_t* prefix_len, Revision* rev);

// The user key of an escaped prefix (escape(user_key) ‖ 0x00 0x01), into *user_key.
void UnescapeKeyPrefix(std::string_view prefix, std::string* user_key);

// Length of the escaped prefix (including the 0x00 0x01 terminator) of a kv-family key,
// or nullopt if none: two encoded keys belong to the same user key iff these prefixes match.
std::optional<size_t> PrefixLength(std::string_view encoded);

// rev_index keys.
std::string RevIndexKey(Revision rev);
Revision DecodeRevIndexKey(std::string_view encoded);

// A version's value record. Tombstones (deletions) carry no value.
struct ValueRecord {
  bool tombstone = false;
  int64_t create_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;
  std::string_view value;  // points into the encoded buffer
};

void EncodeValueRecord(std::string* dst, const ValueRecord& record);
// Returns false on a malformed record (corruption).
bool DecodeValueRecord(std::string_view encoded, ValueRecord* record);

// rev_index values: one flag byte (bit 0: tombstone) then the user key.
std::string RevIndexValue(bool tombstone, std::string_view user_key);
bool DecodeRevIndexValue(std::string_view encoded, bool* tombstone, std::string_view* user_key);

}  // namespace kvd::storage::mvcc

#endif  // KVD_STORAGE_MVCC_KEY_CODEC_H_
