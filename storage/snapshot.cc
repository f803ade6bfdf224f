#include "storage/snapshot.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "rocksdb/options.h"
#include "rocksdb/sst_file_reader.h"
#include "rocksdb/sst_file_writer.h"
#include "rocksdb/table_properties.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace kvd::storage {
namespace {

// ---------------------------------------------------------------------------------------
// CRC32C

struct Crc32cTable {
  uint32_t t[8][256];
  Crc32cTable() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1) ? 0x82F63B78u : 0);
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i) {
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
    }
  }
};

// Slice-by-8 on the raw (pre-inverted) register.
uint32_t Crc32cSoftware(uint32_t c, const uint8_t* p, size_t n) {
  static const Crc32cTable table;
  const auto& t = table.t;
  while (n >= 8) {
    uint32_t lo;
    uint32_t hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
    lo ^= c;
    c = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
        t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) c = (c >> 8) ^ t[0][(c ^ *p++) & 0xff];
  return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t Crc32cHardware(uint32_t c, const uint8_t* p,
                                                          size_t n) {
  uint64_t c64 = c;
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c64 = _mm_crc32_u64(c64, v);
    p += 8;
    n -= 8;
  }
  c = static_cast<uint32_t>(c64);
  while (n-- > 0) c = _mm_crc32_u8(c, *p++);
  return c;
}
#endif

// ---------------------------------------------------------------------------------------
// Files

const char* CfName(Cf cf) {
  switch (cf) {
    case Cf::kRaftLog:
      return "raft_log";
    case Cf::kRaftState:
      return "raft_state";
    case Cf::kKv:
      return "kv";
    case Cf::kRevIndex:
      return "rev_index";
    case Cf::kLease:
      return "lease";
    case Cf::kAuth:
      return "auth";
    case Cf::kMeta:
      return "meta";
  }
  return "?";
}

bool IsLocalMetaKey(const rocksdb::Slice& key) {
  for (const char* local : kLocalMetaKeys) {
    if (key == rocksdb::Slice(local)) return true;
  }
  return false;
}

absl::Status ErrnoError(const std::string& what, const std::string& path) {
  return absl::UnavailableError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

// fsyncs a file or a directory.
absl::Status SyncPath(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), (directory ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open", path);
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  errno = saved;
  if (rc != 0) return ErrnoError("cannot fsync", path);
  return absl::OkStatus();
}

// Size and CRC32C of a file.
absl::Status ChecksumFile(const std::string& path, uint64_t* size, uint32_t* crc) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open", path);
  std::unique_ptr<char[]> buf(new char[1 << 20]);
  *size = 0;
  *crc = 0;
  while (true) {
    ssize_t n = ::read(fd, buf.get(), 1 << 20);
    if (n < 0) {
      if (errno == EINTR) continue;
      int saved = errno;
      ::close(fd);
      errno = saved;
      return ErrnoError("cannot read", path);
    }
    if (n == 0) break;
    *crc = Crc32c(*crc, buf.get(), static_cast<size_t>(n));
    *size += static_cast<uint64_t>(n);
  }
  ::close(fd);
  return absl::OkStatus();
}

std::string ManifestBody(const SnapshotManifest& m) {
  std::string out = absl::StrCat("kvd-state-snapshot 1\napplied_index ", m.applied_index, "\n");
  for (const SnapshotFileInfo& f : m.files) {
    absl::StrAppend(&out, "cf ", CfName(f.cf), " ", f.file_name.empty() ? "-" : f.file_name,
                    " ", f.size, " ", f.crc32c, " ", f.entries, "\n");
  }
  return out;
}

absl::Status WriteFileSynced(const std::string& path, const std::string& contents) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("cannot create", path);
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int saved = errno;
      ::close(fd);
      errno = saved;
      return ErrnoError("cannot write", path);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int saved = errno;
    ::close(fd);
    errno = saved;
    return ErrnoError("cannot fsync", path);
  }
  ::close(fd);
  return absl::OkStatus();
}

absl::Status CorruptManifest(const std::string& dir, absl::string_view why) {
  return absl::DataLossError(
      absl::StrCat("snapshot manifest in ", dir, " is corrupt: ", why));
}

// Writes one family's live keys (as of snapshot) into path. Sets info's name/size/crc/entries;
// leaves the name empty (and writes nothing) when the family has no keys to copy.
absl::Status WriteFamily(Engine& engine, const rocksdb::Snapshot* snapshot, Cf cf,
                         const std::string& dir, SnapshotFileInfo* info) {
  info->cf = cf;
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  ro.fill_cache = false;
  ro.readahead_size = 2 << 20;
  std::unique_ptr<rocksdb::Iterator> it(engine.db()->NewIterator(ro, engine.cf(cf)));
  std::optional<rocksdb::SstFileWriter> writer;
  std::string name = absl::StrCat(CfName(cf), ".sst");
  std::string path = absl::StrCat(dir, "/", name);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (cf == Cf::kMeta && IsLocalMetaKey(it->key())) continue;
    if (!writer) {
      writer.emplace(rocksdb::EnvOptions(), engine.db()->GetOptions(engine.cf(cf)));
      if (absl::Status s = FromRocks(writer->Open(path)); !s.ok()) return s;
    }
    if (absl::Status s = FromRocks(writer->Put(it->key(), it->value())); !s.ok()) return s;
    ++info->entries;
  }
  if (absl::Status s = FromRocks(it->status()); !s.ok()) return s;
  if (!writer) return absl::OkStatus();
  if (absl::Status s = FromRocks(writer->Finish()); !s.ok()) return s;
  if (absl::Status s = SyncPath(path, /*directory=*/false); !s.ok()) return s;
  info->file_name = name;
  return ChecksumFile(path, &info->size, &info->crc32c);
}

// Step 3: replaces the replicated families with the (verified) files of dir.
absl::Status ReplaceState(Engine& engine, const std::string& dir, const SnapshotManifest& m,
                          snapshot_internal::StopAfter stop) {
  rocksdb::DB* db = engine.db();
  rocksdb::WriteBatch batch;
  for (Cf cf : kReplicatedCfs) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), engine.cf(cf)));
    it->SeekToLast();
    if (absl::Status s = FromRocks(it->status()); !s.ok()) return s;
    if (!it->Valid()) continue;
    // [ "", last key ‖ 0x00 ) covers every key of the family.
    std::string end = it->key().ToString();
    end.push_back('\0');
    if (cf == Cf::kMeta) {
      // Keep this member's own keys: read them now, put them back after the range delete.
      std::vector<std::pair<std::string, std::string>> keep;
      for (const char* key : kLocalMetaKeys) {
        absl::StatusOr<std::string> v = engine.Get(Cf::kMeta, key);
        if (v.ok()) {
          keep.emplace_back(key, *std::move(v));
        } else if (!absl::IsNotFound(v.status())) {
          return v.status();
        }
      }
      batch.DeleteRange(engine.cf(cf), rocksdb::Slice(), end);
      for (const auto& [key, value] : keep) batch.Put(engine.cf(cf), key, value);
    } else {
      batch.DeleteRange(engine.cf(cf), rocksdb::Slice(), end);
    }
  }
  if (absl::Status s = engine.Write(&batch, /*sync=*/true); !s.ok()) return s;
  if (stop == snapshot_internal::StopAfter::kDelete) return absl::OkStatus();

  std::vector<rocksdb::IngestExternalFileArg> args;
  for (const SnapshotFileInfo& f : m.files) {
    if (f.file_name.empty()) continue;
    rocksdb::IngestExternalFileArg& arg = args.emplace_back();
    arg.column_family = engine.cf(f.cf);
    arg.external_files.push_back(absl::StrCat(dir, "/", f.file_name));
    arg.options.move_files = false;  // copy: dir must stay intact for a redo
    arg.options.snapshot_consistency = true;
    arg.options.allow_global_seqno = true;
    arg.options.allow_blocking_flush = true;
    arg.options.write_global_seqno = false;  // never modify the files in dir
    arg.options.verify_checksums_before_ingest = false;  // VerifyStateSnapshot did
  }
  if (args.empty()) return absl::OkStatus();
  return FromRocks(db->IngestExternalFiles(args));
}

absl::Status RemoveMarkerAndDir(Engine& engine, const std::string& dir) {
  rocksdb::WriteBatch batch;
  batch.Delete(engine.cf(Cf::kRaftState), kPendingSnapshotKey);
  if (absl::Status s = engine.Write(&batch, /*sync=*/true); !s.ok()) return s;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);  // garbage at worst; the install is complete
  return absl::OkStatus();
}

}  // namespace

uint32_t Crc32c(uint32_t crc, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
#if defined(__x86_64__)
  static const bool hw = __builtin_cpu_supports("sse4.2");
  c = hw ? Crc32cHardware(c, p, n) : Crc32cSoftware(c, p, n);
#else
  c = Crc32cSoftware(c, p, n);
#endif
  return ~c;
}

absl::StatusOr<SnapshotManifest> WriteStateSnapshot(Engine& engine, const std::string& dir) {
  rocksdb::DB* db = engine.db();
  const rocksdb::Snapshot* snapshot = db->GetSnapshot();
  struct Release {
    rocksdb::DB* db;
    const rocksdb::Snapshot* s;
    ~Release() { db->ReleaseSnapshot(s); }
  } release{db, snapshot};

  SnapshotManifest m;
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  std::string applied;
  rocksdb::Status got = db->Get(ro, engine.cf(Cf::kMeta), "applied_index", &applied);
  if (got.ok()) {
    if (applied.size() != 8) return absl::DataLossError("meta key 'applied_index' is corrupt");
    m.applied_index = GetBigEndian64(applied.data());
  } else if (!got.IsNotFound()) {
    return FromRocks(got);
  }
  for (Cf cf : kReplicatedCfs) {
    if (absl::Status s = WriteFamily(engine, snapshot, cf, dir, &m.files.emplace_back());
        !s.ok()) {
      return s;
    }
  }
  std::string body = ManifestBody(m);
  std::string text = absl::StrCat(body, "crc32c ", Crc32c(0, body.data(), body.size()), "\n");
  if (absl::Status s = WriteFileSynced(absl::StrCat(dir, "/", kSnapshotManifestName), text);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = SyncPath(dir, /*directory=*/true); !s.ok()) return s;
  return m;
}

absl::StatusOr<SnapshotManifest> ReadSnapshotManifest(const std::string& dir) {
  std::string path = absl::StrCat(dir, "/", kSnapshotManifestName);
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("no snapshot manifest at ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.size() > (64 << 10)) return CorruptManifest(dir, "too large");

  // The last line is "crc32c <n>" over everything before it.
  if (text.size() < 2 || text.back() != '\n') return CorruptManifest(dir, "truncated");
  size_t last = text.rfind('\n', text.size() - 2);
  last = last == std::string::npos ? 0 : last + 1;
  if (text.compare(last, 7, "crc32c ") != 0) return CorruptManifest(dir, "no checksum line");
  uint32_t want = 0;
  if (!absl::SimpleAtoi(absl::string_view(text).substr(last + 7, text.size() - last - 8), &want)) {
    return CorruptManifest(dir, "bad checksum line");
  }
  if (Crc32c(0, text.data(), last) != want) return CorruptManifest(dir, "checksum mismatch");

  std::vector<std::string> lines = absl::StrSplit(text.substr(0, last), '\n', absl::SkipEmpty());
  if (lines.size() != 2 + kReplicatedCfs.size()) return CorruptManifest(dir, "wrong line count");
  if (lines[0] != "kvd-state-snapshot 1") {
    return CorruptManifest(dir, absl::StrCat("unknown format '", lines[0], "'"));
  }
  SnapshotManifest m;
  std::vector<std::string> head = absl::StrSplit(lines[1], ' ');
  if (head.size() != 2 || head[0] != "applied_index" ||
      !absl::SimpleAtoi(head[1], &m.applied_index)) {
    return CorruptManifest(dir, "bad applied_index line");
  }
  for (size_t i = 0; i < kReplicatedCfs.size(); ++i) {
    std::vector<std::string> f = absl::StrSplit(lines[2 + i], ' ');
    SnapshotFileInfo& info = m.files.emplace_back();
    info.cf = kReplicatedCfs[i];
    if (f.size() != 6 || f[0] != "cf" || f[1] != CfName(info.cf) ||
        !absl::SimpleAtoi(f[3], &info.size) || !absl::SimpleAtoi(f[4], &info.crc32c) ||
        !absl::SimpleAtoi(f[5], &info.entries)) {
      return CorruptManifest(dir, absl::StrCat("bad line '", lines[2 + i], "'"));
    }
    if (f[2] != "-") {
      if (f[2] != absl::StrCat(CfName(info.cf), ".sst")) {
        return CorruptManifest(dir, absl::StrCat("unexpected file name '", f[2], "'"));
      }
      info.file_name = f[2];
    } else if (info.size != 0 || info.entries != 0) {
      return CorruptManifest(dir, absl::StrCat("empty family with a size: '", lines[2 + i], "'"));
    }
  }
  return m;
}

absl::StatusOr<SnapshotManifest> VerifyStateSnapshot(const std::string& dir) {
  absl::StatusOr<SnapshotManifest> m = ReadSnapshotManifest(dir);
  if (!m.ok()) return m.status();
  for (const SnapshotFileInfo& f : m->files) {
    if (f.file_name.empty()) continue;
    std::string path = absl::StrCat(dir, "/", f.file_name);
    uint64_t size = 0;
    uint32_t crc = 0;
    if (absl::Status s = ChecksumFile(path, &size, &crc); !s.ok()) {
      return absl::DataLossError(absl::StrCat("snapshot file unreadable: ", s.message()));
    }
    if (size != f.size || crc != f.crc32c) {
      return absl::DataLossError(absl::StrCat(
          "snapshot file ", path, " is corrupt: size ", size, " crc32c ", crc,
          ", manifest says size ", f.size, " crc32c ", f.crc32c));
    }
    rocksdb::SstFileReader reader{rocksdb::Options()};
    rocksdb::Status s = reader.Open(path);
    if (s.ok()) s = reader.VerifyChecksum();
    if (!s.ok()) {
      return absl::DataLossError(
          absl::StrCat("snapshot file ", path, " fails its checksums: ", s.ToString()));
    }
    std::shared_ptr<const rocksdb::TableProperties> props = reader.GetTableProperties();
    if (props == nullptr || props->num_entries != f.entries) {
      return absl::DataLossError(absl::StrCat("snapshot file ", path,
                                              " holds a different number of entries than its "
                                              "manifest says (",
                                              f.entries, ")"));
    }
  }
  return m;
}

namespace snapshot_internal {

absl::Status InstallStateSnapshotUntil(Engine& engine, const std::string& dir, StopAfter stop) {
  absl::StatusOr<SnapshotManifest> m = VerifyStateSnapshot(dir);
  if (!m.ok()) return m.status();
  rocksdb::WriteBatch marker;
  marker.Put(engine.cf(Cf::kRaftState), kPendingSnapshotKey, dir);
  if (absl::Status s = engine.Write(&marker, /*sync=*/true); !s.ok()) return s;
  if (stop == StopAfter::kMarker) return absl::OkStatus();
  if (absl::Status s = ReplaceState(engine, dir, *m, stop); !s.ok()) return s;
  if (stop == StopAfter::kDelete || stop == StopAfter::kIngest) return absl::OkStatus();
  return RemoveMarkerAndDir(engine, dir);
}

}  // namespace snapshot_internal

absl::Status InstallStateSnapshot(Engine& engine, const std::string& dir) {
  return snapshot_internal::InstallStateSnapshotUntil(engine, dir,
                                                      snapshot_internal::StopAfter::kNever);
}

absl::Status ResumeSnapshotInstall(Engine& engine) {
  absl::StatusOr<std::string> dir = engine.Get(Cf::kRaftState, kPendingSnapshotKey);
  if (absl::IsNotFound(dir.status())) return absl::OkStatus();
  if (!dir.ok()) return dir.status();
  absl::StatusOr<SnapshotManifest> m = VerifyStateSnapshot(*dir);
  if (!m.ok()) {
    return absl::DataLossError(absl::StrCat(
        "an interrupted snapshot install cannot be finished (the replicated state is partly "
        "replaced; the member must be restored or re-added): ",
        m.status().message()));
  }
  if (absl::Status s = ReplaceState(engine, *dir, *m, snapshot_internal::StopAfter::kNever);
      !s.ok()) {
    return s;
  }
  return RemoveMarkerAndDir(engine, *dir);
}

}  // namespace kvd::storage
