#include "server/lease/lease_apply.h"

#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "api/errors.h"
#include "storage/check.h"

namespace kvd::server::lease {
namespace {

constexpr char kRecordTag = 'l';

template <typename Response>
Response* ResponseAs(google::protobuf::Message* out) {
  if (out == nullptr) return nullptr;
  auto* typed = dynamic_cast<Response*>(out);
  KVD_CHECK(typed != nullptr);
  return typed;
}

void WriteRecord(storage::mvcc::ApplyBatch& batch, const internalpb::LeaseRecord& record) {
  batch.PutAux(storage::Cf::kLease, LeaseRecordKey(record.id()), record.SerializeAsString());
}

}  // namespace

std::string LeaseRecordKey(int64_t id) {
  std::string key(1, kRecordTag);
  storage::PutBigEndian64(&key, static_cast<uint64_t>(id));
  return key;
}

namespace {

absl::StatusOr<std::vector<internalpb::LeaseRecord>> ReadRecords(const storage::Engine& engine) {
  std::unique_ptr<rocksdb::Iterator> it(
      engine.db()->NewIterator(rocksdb::ReadOptions(), engine.cf(storage::Cf::kLease)));
  const std::string prefix(1, kRecordTag);
  std::vector<internalpb::LeaseRecord> records;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    internalpb::LeaseRecord& record = records.emplace_back();
    if (it->key().size() != 9 ||
        !record.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())) ||
        record.id() != static_cast<int64_t>(storage::GetBigEndian64(it->key().data() + 1))) {
      return absl::DataLossError(absl::StrCat("lease record is corrupt (key ",
                                              it->key().ToString(/*hex=*/true), ")"));
    }
  }
  if (absl::Status s = storage::FromRocks(it->status()); !s.ok()) return s;
  return records;
}

}  // namespace

absl::Status LoadLeases(const storage::Engine& engine, Lessor* lessor) {
  absl::StatusOr<std::vector<internalpb::LeaseRecord>> records = ReadRecords(engine);
  if (!records.ok()) return records.status();
  for (const internalpb::LeaseRecord& record : *records) lessor->Restore(record);
  return absl::OkStatus();
}

absl::Status ReloadLeases(const storage::Engine& engine, Lessor* lessor) {
  absl::StatusOr<std::vector<internalpb::LeaseRecord>> records = ReadRecords(engine);
  if (!records.ok()) return records.status();
  lessor->ReplaceAll(*records);
  return absl::OkStatus();
}

bool LeaseApplier::Handles(const internalpb::Request& req) {
  switch (req.request_case()) {
    case internalpb::Request::kLeaseGrant:
    case internalpb::Request::kLeaseRevoke:
    case internalpb::Request::kLeaseCheckpoint:
    case internalpb::Request::kLeaseExpire:
      return true;
    default:
      return false;
  }
}

std::pair<int64_t, int64_t> LeaseApplier::Revoke(storage::mvcc::ApplyBatch& batch,
                                                int64_t id) const {
  batch.BeginTxn();
  // In key order, so every member emits the same events.
  std::vector<std::string> keys = batch.KeysOfLease(id);
  for (const std::string& key : keys) {
    batch.DeleteRange(storage::mvcc::KeyRange::Single(key));
  }
  int64_t rev = batch.EndTxn();
  batch.DeleteAux(storage::Cf::kLease, LeaseRecordKey(id));
  KVD_CHECK(lessor_->OnRevoke(id));
  return {rev, static_cast<int64_t>(keys.size())};
}

absl::Status LeaseApplier::Apply(storage::mvcc::ApplyBatch& batch, const internalpb::Request& req,
                                 google::protobuf::Message* response) const {
  switch (req.request_case()) {
    case internalpb::Request::kLeaseGrant: {
      const etcdserverpb::LeaseGrantRequest& grant = req.lease_grant();
      if (grant.ttl() > kMaxLeaseTtlSeconds) return errors::LeaseTtlTooLarge();
      if (grant.id() == 0) return errors::LeaseNotFound();  // the proposer picks the ID
      if (lessor_->Exists(grant.id())) return errors::LeaseExists();
      internalpb::LeaseRecord record;
      record.set_id(grant.id());
      record.set_ttl(grant.ttl());
      WriteRecord(batch, record);
      lessor_->OnGrant(grant.id(), grant.ttl());
      if (auto* resp = ResponseAs<etcdserverpb::LeaseGrantResponse>(response)) {
        resp->mutable_header()->set_revision(batch.rev());
        resp->set_id(grant.id());
        resp->set_ttl(grant.ttl());
      }
      return absl::OkStatus();
    }
    case internalpb::Request::kLeaseRevoke: {
      int64_t id = req.lease_revoke().id();
      if (!lessor_->Exists(id)) return errors::LeaseNotFound();
      int64_t rev = Revoke(batch, id).first;
      if (auto* resp = ResponseAs<etcdserverpb::LeaseRevokeResponse>(response)) {
        resp->mutable_header()->set_revision(rev);
      }
      return absl::OkStatus();
    }
    case internalpb::Request::kLeaseExpire: {
      // Leases revoked meanwhile (by a client) are skipped.
      const int64_t max_keys = req.lease_expire().max_keys();
      int64_t deleted = 0;
      for (int64_t id : req.lease_expire().ids()) {
        if (max_keys > 0 && deleted >= max_keys) break;
        if (lessor_->Exists(id)) deleted += Revoke(batch, id).second;
      }
      return absl::OkStatus();
    }
    case internalpb::Request::kLeaseCheckpoint: {
      for (const etcdserverpb::LeaseCheckpoint& cp : req.lease_checkpoint().checkpoints()) {
        std::optional<internalpb::LeaseRecord> record =
            lessor_->OnCheckpoint(cp.id(), cp.remaining_ttl());
        if (record) WriteRecord(batch, *record);
      }
      if (auto* resp = ResponseAs<etcdserverpb::LeaseCheckpointResponse>(response)) {
        resp->mutable_header()->set_revision(batch.rev());
      }
      return absl::OkStatus();
    }
    default:
      return absl::UnimplementedError("kvd: request type not supported by this member");
  }
}

}  // namespace kvd::server::lease
