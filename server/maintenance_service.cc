#include "server/maintenance_service.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "api/errors.h"
#include "openssl/evp.h"
#include "server/apply/alarm_apply.h"
#include "server/cluster/state_hash.h"
#include "server/grpc_status.h"
#include "storage/check.h"
#include "storage/snapshot.h"

namespace kvd::server {
namespace {

constexpr char kSnapshotMagic[] = "KVDSNAP1";
constexpr uint32_t kSnapshotFormatVersion = 1;
constexpr size_t kSha256Bytes = 32;
constexpr uint64_t kSectorBytes = 512;
// The backend size is measured at most this often on the write path.
constexpr int64_t kSizeCacheNs = 10'000'000;

absl::Status BadLeaderTransferee() {
  return absl::FailedPreconditionError("etcdserver: bad leader transferee");
}

void PutBigEndian32(std::string* dst, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) dst->push_back(static_cast<char>(v >> shift));
}

int64_t CfProperty(const storage::Engine& engine, storage::Cf cf, const std::string& property) {
  uint64_t v = 0;
  if (!engine.db()->GetIntProperty(engine.cf(cf), property, &v)) return 0;
  return static_cast<int64_t>(v);
}

// Streams a snapshot container (format in the header) from a directory written by
// storage::WriteStateSnapshot; removes the directory when the call ends.
class SnapshotStream final : public grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse> {
 public:
  SnapshotStream(size_t chunk_bytes, etcdserverpb::ResponseHeader header)
      : chunk_bytes_(chunk_bytes), header_(std::move(header)), sha_(EVP_MD_CTX_new()) {
    KVD_CHECK(sha_ != nullptr);
    KVD_CHECK(EVP_DigestInit_ex(sha_, EVP_sha256(), nullptr) == 1);
  }

  // Worker thread, once: starts streaming dir (or fails the call).
  void Begin(absl::Status prepared, std::string dir, const storage::SnapshotManifest& manifest) {
    dir_ = std::move(dir);
    if (!prepared.ok()) {
      Finish(ToGrpc(prepared));
      return;
    }
    std::vector<std::string> names = {storage::kSnapshotManifestName};
    for (const storage::SnapshotFileInfo& f : manifest.files) {
      if (!f.file_name.empty()) names.push_back(f.file_name);
    }
    std::string head(kSnapshotMagic, 8);
    PutBigEndian32(&head, kSnapshotFormatVersion);
    PutBigEndian32(&head, static_cast<uint32_t>(names.size()));
    segments_.push_back(Segment{std::move(head), "", 0});
    for (const std::string& name : names) {
      std::filesystem::path path = std::filesystem::path(dir_) / name;
      std::error_code ec;
      uint64_t size = std::filesystem::file_size(path, ec);
      if (ec) {
        Finish(ToGrpc(absl::InternalError(absl::StrCat("kvd: snapshot file ", path.string(), ": ",
                                                       ec.message()))));
        return;
      }
      std::string prefix;
      PutBigEndian32(&prefix, static_cast<uint32_t>(name.size()));
      prefix += name;
      storage::PutBigEndian64(&prefix, size);
      segments_.push_back(Segment{std::move(prefix), "", 0});
      segments_.push_back(Segment{"", path.string(), size});
    }
    for (const Segment& s : segments_) total_bytes_ += s.inline_data.size() + s.file_size;
    // etcdctl snapshot save insists that the bytes before the trailer fill whole 512-byte
    // sectors (as a bbolt file does).
    uint64_t padding = (kSectorBytes - total_bytes_ % kSectorBytes) % kSectorBytes;
    if (padding > 0) {
      segments_.push_back(Segment{std::string(padding, '\0'), "", 0});
      total_bytes_ += padding;
    }
    Next();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "kvd: snapshot stream broken"));
      return;
    }
    Next();
  }

  void OnDone() override {
    EVP_MD_CTX_free(sha_);
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
    delete this;
  }

 private:
  struct Segment {
    std::string inline_data;  // either bytes held here...
    std::string path;         // ...or a file's contents
    uint64_t file_size;
  };

  void Next() {
    if (trailer_sent_) {
      Finish(grpc::Status::OK);
      return;
    }
    response_.Clear();
    if (!header_sent_) {
      *response_.mutable_header() = header_;
      response_.set_version(kEtcdApiVersion);
      header_sent_ = true;
    }
    if (sent_bytes_ == total_bytes_) {
      // The trailer, alone, as etcd sends its sha256.
      std::string digest(kSha256Bytes, '\0');
      unsigned int n = 0;
      KVD_CHECK(EVP_DigestFinal_ex(sha_, reinterpret_cast<unsigned char*>(digest.data()), &n) == 1);
      KVD_CHECK(n == kSha256Bytes);
      response_.set_blob(std::move(digest));
      response_.set_remaining_bytes(0);
      trailer_sent_ = true;
      StartWrite(&response_);
      return;
    }
    std::string* blob = response_.mutable_blob();
    while (blob->size() < chunk_bytes_ && segment_ < segments_.size()) {
      Segment& s = segments_[segment_];
      size_t want = chunk_bytes_ - blob->size();
      if (s.path.empty()) {
        size_t n = std::min(want, s.inline_data.size() - offset_);
        blob->append(s.inline_data, offset_, n);
        offset_ += n;
        if (offset_ == s.inline_data.size()) NextSegment();
        continue;
      }
      if (!file_.is_open()) {
        file_.open(s.path, std::ios::binary);
        if (!file_) {
          Finish(ToGrpc(absl::InternalError(absl::StrCat("kvd: cannot read ", s.path))));
          return;
        }
      }
      size_t n = static_cast<size_t>(std::min<uint64_t>(want, s.file_size - offset_));
      size_t old = blob->size();
      blob->resize(old + n);
      file_.read(blob->data() + old, static_cast<std::streamsize>(n));
      if (static_cast<size_t>(file_.gcount()) != n) {
        Finish(ToGrpc(absl::DataLossError(absl::StrCat("kvd: ", s.path, " ended early"))));
        return;
      }
      offset_ += n;
      if (offset_ == s.file_size) {
        file_.close();
        NextSegment();
      }
    }
    KVD_CHECK(EVP_DigestUpdate(sha_, blob->data(), blob->size()) == 1);
    sent_bytes_ += blob->size();
    response_.set_remaining_bytes(total_bytes_ - sent_bytes_);
    StartWrite(&response_);
  }

  void NextSegment() {
    ++segment_;
    offset_ = 0;
  }

  const size_t chunk_bytes_;
  const etcdserverpb::ResponseHeader header_;
  EVP_MD_CTX* const sha_;
  std::string dir_;
  std::vector<Segment> segments_;
  size_t segment_ = 0;
  uint64_t offset_ = 0;
  std::ifstream file_;
  uint64_t total_bytes_ = 0;
  uint64_t sent_bytes_ = 0;
  bool header_sent_ = false;
  bool trailer_sent_ = false;
  etcdserverpb::SnapshotResponse response_;
};

}  // namespace

MaintenanceService::MaintenanceService(Node* node, MaintenanceOptions options)
    : node_(node),
      options_(options),
      quota_bytes_(options.quota_backend_bytes > 0 ? options.quota_backend_bytes
                                                   : kDefaultQuotaBackendBytes) {}

MaintenanceService::~MaintenanceService() { Stop(); }

void MaintenanceService::Start() {
  KVD_CHECK(!worker_.joinable());
  // Copies a crash left behind.
  std::error_code ec;
  std::filesystem::remove_all(
      std::filesystem::path(node_->engine().path()).parent_path() / "snapshot-stream", ec);
  worker_ = std::thread([this] { WorkerLoop(); });
}

void MaintenanceService::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (worker_.joinable()) worker_.join();
  std::deque<Task> left;
  {
    absl::MutexLock lock(&mu_);
    left.swap(tasks_);
  }
  for (Task& t : left) t(false);
}

void MaintenanceService::Enqueue(Task task) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      tasks_.push_back(std::move(task));
      return;
    }
  }
  task(false);
}

void MaintenanceService::WorkerLoop() {
  absl::Time next_check = absl::Now();
  for (;;) {
    Task task;
    {
      absl::MutexLock lock(&mu_);
      auto work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !tasks_.empty();
      };
      mu_.AwaitWithDeadline(absl::Condition(&work), next_check);
      if (stopping_) return;
      if (!tasks_.empty()) {
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
    }
    if (task) task(true);
    if (absl::Now() >= next_check) {
      next_check = absl::Now() + options_.quota_check_interval;
      if (BackendSizeBytes() > quota_bytes_) RaiseNoSpace();
    }
  }
}

int64_t MaintenanceService::BackendSizeBytes() const {
  const storage::Engine& engine = node_->engine();
  int64_t total = 0;
  for (storage::Cf cf : storage::kReplicatedCfs) {
    total += CfProperty(engine, cf, rocksdb::DB::Properties::kTotalSstFilesSize);
    total += CfProperty(engine, cf, rocksdb::DB::Properties::kCurSizeAllMemTables);
  }
  return total;
}

bool MaintenanceService::OverQuota(int64_t extra_bytes) {
  int64_t now = absl::GetCurrentTimeNanos();
  if (now - cached_size_at_ns_.load() > kSizeCacheNs) {
    cached_size_bytes_.store(BackendSizeBytes());
    cached_size_at_ns_.store(now);
  }
  return cached_size_bytes_.load() + extra_bytes > quota_bytes_;
}

void MaintenanceService::RaiseNoSpace() {
  absl::StatusOr<std::vector<etcdserverpb::AlarmMember>> alarms = LoadAlarms(node_->engine());
  if (!alarms.ok()) return;
  for (const etcdserverpb::AlarmMember& a : *alarms) {
    if (a.memberid() == node_->member_id() && a.alarm() == etcdserverpb::NOSPACE) return;
  }
  if (!node_->has_leader() || nospace_proposal_in_flight_.exchange(true)) return;
  internalpb::Request req;
  etcdserverpb::AlarmRequest* alarm = req.mutable_alarm();
  alarm->set_action(etcdserverpb::AlarmRequest::ACTIVATE);
  alarm->set_memberid(node_->member_id());
  alarm->set_alarm(etcdserverpb::NOSPACE);
  node_->Propose(std::move(req), nullptr,
                 [this](absl::Status) { nospace_proposal_in_flight_.store(false); });
}

absl::Status MaintenanceService::AdmitWrite(const internalpb::Request& req) {
  if (!IsClientWrite(req)) return absl::OkStatus();
  absl::StatusOr<std::vector<etcdserverpb::AlarmMember>> alarms = LoadAlarms(node_->engine());
  if (!alarms.ok()) return alarms.status();
  if (absl::Status s = CheckAlarms(*alarms, req); !s.ok()) return s;
  if (NeedsSpace(req) && OverQuota(static_cast<int64_t>(req.ByteSizeLong()))) RaiseNoSpace();
  return absl::OkStatus();
}

void MaintenanceService::FillHeader(etcdserverpb::ResponseHeader* header) const {
  node_->FillHeader(header);
  header->set_revision(node_->kv().current_rev());
}

grpc::ServerUnaryReactor* MaintenanceService::Status(grpc::CallbackServerContext* ctx,
                                                     const etcdserverpb::StatusRequest* req,
                                                     etcdserverpb::StatusResponse* resp) {
  FillHeader(resp->mutable_header());
  resp->set_version(kEtcdApiVersion);
  const storage::Engine& engine = node_->engine();
  int64_t size = BackendSizeBytes();
  int64_t in_use = 0;
  for (storage::Cf cf : storage::kReplicatedCfs) {
    in_use += CfProperty(engine, cf, rocksdb::DB::Properties::kEstimateLiveDataSize);
    in_use += CfProperty(engine, cf, rocksdb::DB::Properties::kCurSizeActiveMemTable);
  }
  resp->set_dbsize(size);
  resp->set_dbsizeinuse(std::min(in_use, size));
  // Applied first: it never passes the commit index read after it.
  uint64_t applied = node_->applied_index();
  resp->set_leader(node_->leader_id());
  resp->set_raftindex(std::max(node_->commit_index(), applied));
  resp->set_raftterm(node_->raft_term());
  resp->set_raftappliedindex(applied);
  resp->set_islearner(node_->is_learner());
  absl::StatusOr<std::vector<etcdserverpb::AlarmMember>> alarms = LoadAlarms(engine);
  if (!alarms.ok()) return Answer(ctx, alarms.status());
  for (const etcdserverpb::AlarmMember& a : *alarms) resp->add_errors(AlarmStatusText(a));
  return Answer(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* MaintenanceService::Alarm(grpc::CallbackServerContext* ctx,
                                                    const etcdserverpb::AlarmRequest* req,
                                                    etcdserverpb::AlarmResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  switch (req->action()) {
    case etcdserverpb::AlarmRequest::GET: {
      etcdserverpb::AlarmType type = req->alarm();
      node_->ReadIndex([this, reactor, resp, type](absl::Status s) {
        if (!s.ok()) {
          reactor->Finish(ToGrpc(s));
          return;
        }
        absl::StatusOr<std::vector<etcdserverpb::AlarmMember>> alarms =
            LoadAlarms(node_->engine());
        if (!alarms.ok()) {
          reactor->Finish(ToGrpc(alarms.status()));
          return;
        }
        FillHeader(resp->mutable_header());
        for (const etcdserverpb::AlarmMember& a : *alarms) {
          if (type == etcdserverpb::NONE || a.alarm() == type) *resp->add_alarms() = a;
        }
        reactor->Finish(grpc::Status::OK);
      });
      return reactor;
    }
    case etcdserverpb::AlarmRequest::ACTIVATE:
    case etcdserverpb::AlarmRequest::DEACTIVATE:
      break;
    default:
      reactor->Finish(ToGrpc(absl::InvalidArgumentError(
          absl::StrCat("etcdserver: unknown alarm action ", static_cast<int>(req->action())))));
      return reactor;
  }
  internalpb::Request proposal;
  *proposal.mutable_alarm() = *req;
  node_->Propose(std::move(proposal), resp, [this, reactor, resp](absl::Status s) {
    if (s.ok()) FillHeader(resp->mutable_header());
    reactor->Finish(ToGrpc(s));
  });
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::HashKV(grpc::CallbackServerContext* ctx,
                                                     const etcdserverpb::HashKVRequest* req,
                                                     etcdserverpb::HashKVResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  int64_t revision = req->revision();
  Enqueue([this, reactor, resp, revision](bool ok) {
    if (!ok) {
      reactor->Finish(ToGrpc(errors::Stopped()));
      return;
    }
    std::unique_ptr<storage::mvcc::ReadTxn> view = node_->kv().Read();
    absl::StatusOr<KvHash> hash = HashKeySpace(*view, revision);
    if (!hash.ok()) {
      reactor->Finish(ToGrpc(hash.status()));
      return;
    }
    node_->FillHeader(resp->mutable_header());
    resp->mutable_header()->set_revision(view->view_rev());
    resp->set_hash(hash->hash);
    resp->set_compact_revision(hash->compact_rev);  // -1: never compacted, as etcd's
    resp->set_hash_revision(hash->hash_rev);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::Hash(grpc::CallbackServerContext* ctx,
                                                   const etcdserverpb::HashRequest* req,
                                                   etcdserverpb::HashResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  Enqueue([this, reactor, resp](bool ok) {
    if (!ok) {
      reactor->Finish(ToGrpc(errors::Stopped()));
      return;
    }
    FillHeader(resp->mutable_header());
    absl::StatusOr<uint32_t> hash = HashReplicatedState(node_->engine());
    if (hash.ok()) resp->set_hash(*hash);
    reactor->Finish(ToGrpc(hash.status()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::Defragment(grpc::CallbackServerContext* ctx,
                                                         const etcdserverpb::DefragmentRequest* req,
                                                         etcdserverpb::DefragmentResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  // First let MVCC compaction remove what the compact revision released, so that the
  // defragmented store holds only what reads can still see.
  node_->WaitCompacted(node_->kv().compact_rev(), [this, reactor, resp](absl::Status compacted) {
    if (!compacted.ok()) {
      reactor->Finish(ToGrpc(compacted));
      return;
    }
    Enqueue([this, reactor, resp](bool ok) { DefragmentNow(reactor, resp, ok); });
  });
  return reactor;
}

void MaintenanceService::DefragmentNow(grpc::ServerUnaryReactor* reactor,
                                       etcdserverpb::DefragmentResponse* resp, bool ok) {
  {
    if (!ok) {
      reactor->Finish(ToGrpc(errors::Stopped()));
      return;
    }
    absl::Status s = node_->engine().CompactAll();
    cached_size_at_ns_.store(0);  // the size changed: measure again
    if (s.ok()) FillHeader(resp->mutable_header());
    reactor->Finish(ToGrpc(s));
  }
}

grpc::ServerUnaryReactor* MaintenanceService::MoveLeader(grpc::CallbackServerContext* ctx,
                                                         const etcdserverpb::MoveLeaderRequest* req,
                                                         etcdserverpb::MoveLeaderResponse* resp) {
  if (!node_->is_leader()) return Answer(ctx, errors::NotLeader());
  uint64_t target = req->targetid();
  bool voter = false;
  for (const etcdserverpb::Member& m : node_->Members()) {
    if (m.id() == target && !m.islearner()) voter = true;
  }
  if (!voter) return Answer(ctx, BadLeaderTransferee());
  if (target == node_->member_id()) {
    FillHeader(resp->mutable_header());
    return Answer(ctx, absl::OkStatus());
  }
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  node_->TransferLeadership(target, [this, reactor, resp](absl::Status s) {
    if (s.ok()) FillHeader(resp->mutable_header());
    reactor->Finish(ToGrpc(s));
  });
  return reactor;
}

grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse>* MaintenanceService::Snapshot(
    grpc::CallbackServerContext* ctx, const etcdserverpb::SnapshotRequest* req) {
  etcdserverpb::ResponseHeader header;
  FillHeader(&header);
  auto* stream = new SnapshotStream(options_.snapshot_chunk_bytes, header);
  std::string dir =
      (std::filesystem::path(node_->engine().path()).parent_path() / "snapshot-stream" /
       absl::StrCat(next_snapshot_id_.fetch_add(1)))
          .string();
  Enqueue([this, stream, dir](bool ok) {
    if (!ok) {
      stream->Begin(errors::Stopped(), "", {});
      return;
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      stream->Begin(absl::InternalError(absl::StrCat("kvd: cannot create ", dir, ": ",
                                                     ec.message())),
                    dir, {});
      return;
    }
    absl::StatusOr<storage::SnapshotManifest> manifest =
        storage::WriteStateSnapshot(node_->engine(), dir);
    stream->Begin(manifest.status(), dir, manifest.ok() ? *manifest : storage::SnapshotManifest{});
  });
  return stream;
}

}  // namespace kvd::server
