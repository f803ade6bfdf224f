#include "server/cluster/membership.h"

#include <openssl/sha.h>

#include <algorithm>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace kvd::server {
namespace {

constexpr char kMemberPrefix[] = "member/";

uint64_t Sha1Prefix64(const std::string& bytes) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | digest[i];
  return v;
}

std::string MemberKey(uint64_t id) {
  std::string key(kMemberPrefix);
  storage::PutBigEndian64(&key, id);
  return key;
}

}  // namespace

uint64_t ComputeMemberId(std::vector<std::string> peer_urls, const std::string& token,
                         std::optional<int64_t> unix_seconds) {
  std::sort(peer_urls.begin(), peer_urls.end());
  std::string bytes;
  for (const std::string& url : peer_urls) bytes += url;
  bytes += token;
  if (unix_seconds) bytes += std::to_string(*unix_seconds);
  return Sha1Prefix64(bytes);
}

uint64_t ComputeClusterId(std::vector<uint64_t> member_ids) {
  std::sort(member_ids.begin(), member_ids.end());
  std::string bytes;
  for (uint64_t id : member_ids) storage::PutBigEndian64(&bytes, id);
  return Sha1Prefix64(bytes);
}

absl::StatusOr<std::map<std::string, std::vector<std::string>>> ParseInitialCluster(
    const std::string& initial_cluster) {
  std::map<std::string, std::vector<std::string>> members;
  for (absl::string_view part : absl::StrSplit(initial_cluster, ',', absl::SkipWhitespace())) {
    std::vector<std::string> kv = absl::StrSplit(part, absl::MaxSplits('=', 1));
    if (kv.size() != 2 || kv[0].empty() || kv[1].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--initial-cluster: '", part, "' is not name=url"));
    }
    if (!absl::StartsWith(kv[1], "http://") && !absl::StartsWith(kv[1], "https://")) {
      return absl::InvalidArgumentError(
          absl::StrCat("--initial-cluster: URL scheme must be http or https: ", kv[1]));
    }
    members[kv[0]].push_back(kv[1]);
  }
  if (members.empty()) return absl::InvalidArgumentError("--initial-cluster is empty");
  for (auto& [name, urls] : members) std::sort(urls.begin(), urls.end());
  return members;
}

absl::StatusOr<std::map<uint64_t, etcdserverpb::Member>> MemberStore::Load(
    storage::Engine& engine) {
  std::map<uint64_t, etcdserverpb::Member> members;
  std::unique_ptr<rocksdb::Iterator> it(
      engine.db()->NewIterator(rocksdb::ReadOptions(), engine.cf(storage::Cf::kMeta)));
  for (it->Seek(kMemberPrefix); it->Valid() && it->key().starts_with(kMemberPrefix); it->Next()) {
    etcdserverpb::Member member;
    if (!member.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError("a member record in the store does not parse");
    }
    members[member.id()] = member;
  }
  if (absl::Status s = storage::FromRocks(it->status()); !s.ok()) return s;
  return members;
}

void MemberStore::Put(storage::mvcc::ApplyBatch& batch, const etcdserverpb::Member& member) {
  batch.PutAux(storage::Cf::kMeta, MemberKey(member.id()), member.SerializeAsString());
}

void MemberStore::Remove(storage::mvcc::ApplyBatch& batch, uint64_t id) {
  batch.DeleteAux(storage::Cf::kMeta, MemberKey(id));
}

absl::Status MemberStore::PutDirect(storage::Engine& engine,
                                    const std::vector<etcdserverpb::Member>& members) {
  rocksdb::WriteBatch batch;
  for (const etcdserverpb::Member& m : members) {
    batch.Put(engine.cf(storage::Cf::kMeta), MemberKey(m.id()), m.SerializeAsString());
  }
  return engine.Write(&batch, /*sync=*/true);
}

}  // namespace kvd::server
