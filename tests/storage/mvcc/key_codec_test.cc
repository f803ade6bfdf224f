#include "storage/mvcc/key_codec.h"

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace kvd::storage::mvcc {
namespace {

std::string RandomKey(std::mt19937_64& rng) {
  // Small alphabet rich in the bytes the escaping treats specially.
  static const char alphabet[] = {'\0', '\1', '\2', 'a', '\xfe', '\xff'};
  std::string key(std::uniform_int_distribution<int>(1, 5)(rng), ' ');
  for (char& c : key) c = alphabet[std::uniform_int_distribution<int>(0, 5)(rng)];
  return key;
}

TEST(KeyCodecTest, EncodedOrderIsUserKeyOrderThenNewestFirst) {
  std::mt19937_64 rng(7);
  struct Entry {
    std::string user_key;
    Revision rev;
    std::string encoded;
  };
  std::vector<Entry> entries;
  for (int i = 0; i < 5000; ++i) {
    Entry e{RandomKey(rng), Revision{std::uniform_int_distribution<int64_t>(1, 1 << 20)(rng),
                                     std::uniform_int_distribution<int64_t>(0, 3)(rng)},
            ""};
    e.encoded = VersionKey(e.user_key, e.rev);
    entries.push_back(e);
  }
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.encoded < b.encoded; });
  for (size_t i = 1; i < entries.size(); ++i) {
    const Entry& a = entries[i - 1];
    const Entry& b = entries[i];
    ASSERT_LE(a.user_key, b.user_key);
    if (a.user_key == b.user_key) {
      ASSERT_GE(a.rev, b.rev);  // newest first
    }
  }
}

TEST(KeyCodecTest, RoundTripsAndPrefixBoundsHold) {
  std::mt19937_64 rng(11);
  for (int i = 0; i < 2000; ++i) {
    std::string key = RandomKey(rng);
    Revision rev{std::uniform_int_distribution<int64_t>(1, 1LL << 40)(rng), 2};
    std::string encoded = VersionKey(key, rev);
    std::string decoded;
    Revision decoded_rev;
    ASSERT_TRUE(DecodeVersionKey(encoded, &decoded, &decoded_rev));
    EXPECT_EQ(decoded, key);
    EXPECT_EQ(decoded_rev, rev);
    // Every version of key lies in [KeyPrefix(key), KeySuccessorPrefix(key)), and so does
    // nothing of another key.
    EXPECT_GE(encoded, KeyPrefix(key));
    EXPECT_LT(encoded, KeySuccessorPrefix(key));
    std::string other = RandomKey(rng);
    if (other != key) {
      std::string other_encoded = VersionKey(other, rev);
      EXPECT_FALSE(other_encoded >= KeyPrefix(key) && other_encoded < KeySuccessorPrefix(key));
    }
    // Seeking at a revision lands on or before every version at or below it.
    EXPECT_LE(SeekKeyAt(key, rev.main), encoded);
    EXPECT_GT(SeekKeyAt(key, rev.main - 1), encoded);
  }
}

TEST(KeyCodecTest, RejectsMalformedInput) {
  std::string user_key;
  Revision rev;
  EXPECT_FALSE(DecodeVersionKey("no terminator", &user_key, &rev));
  EXPECT_FALSE(DecodeVersionKey(KeyPrefix("k") + "short", &user_key, &rev));
  ValueRecord record;
  EXPECT_FALSE(DecodeValueRecord("", &record));
  EXPECT_FALSE(DecodeValueRecord("\x07", &record));
  EXPECT_FALSE(DecodeValueRecord(std::string("\0\x80", 2), &record));  // truncated varint
}

TEST(KeyCodecTest, ValueRecordsRoundTrip) {
  ValueRecord in;
  in.create_revision = 1LL << 40;
  in.version = 3;
  in.lease = 0x7fffffffffffffffLL;
  in.value = std::string_view("v\0v", 3);
  std::string encoded;
  EncodeValueRecord(&encoded, in);
  ValueRecord out;
  ASSERT_TRUE(DecodeValueRecord(encoded, &out));
  EXPECT_FALSE(out.tombstone);
  EXPECT_EQ(out.create_revision, in.create_revision);
  EXPECT_EQ(out.version, in.version);
  EXPECT_EQ(out.lease, in.lease);
  EXPECT_EQ(out.value, in.value);

  ValueRecord tombstone;
  tombstone.tombstone = true;
  encoded.clear();
  EncodeValueRecord(&encoded, tombstone);
  ASSERT_TRUE(DecodeValueRecord(encoded, &out));
  EXPECT_TRUE(out.tombstone);
}

}  // namespace
}  // namespace kvd::storage::mvcc
