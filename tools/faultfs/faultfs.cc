// faultfs: an LD_PRELOAD shim that injects disk faults into a program that writes through
// libc (kvd and its RocksDB), for the fault harness (tools/jepsen/disk_nemesis.py).
//
// Only files under FAULTFS_ROOT (a directory; absolute, or relative to the working
// directory at start) are touched. FAULTFS_STATE (default: FAULTFS_ROOT + ".faultfs")
// holds two files shared with the harness (tools/faultfs/control.py):
//
//   ctl      256 bytes, mapped shared, read on every call: the faults switched on, as
//            words. "fsync-eio": fsync, fdatasync and sync_file_range fail with EIO (and
//            sync nothing). "enospc": write, pwrite, writev, fallocate and growing
//            ftruncate fail with ENOSPC, and statvfs reports no free space. The harness
//            rewrites it in place, so faults go on and off while the program runs.
//   journal  one tab-separated line per durability event, appended with one write() each
//            (a kill -9 keeps every line):
//              O size path      first open of an existing file: its size then (durable:
//                               at start the shim fsyncs everything under root and
//                               begins a fresh journal)
//              C 0 path         a file created (its name is durable once its directory is
//                               fsynced)
//              T size path      truncated to size
//              S size path      fsync/fdatasync of a file succeeded at this size
//              D 0 dir          fsync of a directory succeeded (names in it are durable)
//              R size old new backup
//                               rename of a file of this size; backup is a hard link to
//                               the file new replaced ("-" when none)
//              U 0 path         unlinked
//   backup/  those hard links.
// From the journal, control.py drops what a power loss would lose after the program is
// killed: un-fsynced file tails, files whose directory was never fsynced, renames not yet
// made durable. sync_file_range is not durability (no metadata, no cache flush), as for
// RocksDB, which always follows it with fdatasync/fsync.
//
// Not modelled: overwrites in the middle of a file (RocksDB only appends), unlinks undone
// by a power loss (RocksDB ignores old files it finds), mkdir (directories are taken as
// durable), files written through stdio (fopen's open is not interposable).
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <string>

namespace {

constexpr int kMaxFds = 1 << 16;
constexpr size_t kCtlBytes = 256;

template <typename Fn>
Fn Real(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

using OpenFn = int (*)(const char*, int, ...);
using CloseFn = int (*)(int);
using WriteFn = ssize_t (*)(int, const void*, size_t);
using PwriteFn = ssize_t (*)(int, const void*, size_t, off_t);
using WritevFn = ssize_t (*)(int, const struct iovec*, int);
using PwritevFn = ssize_t (*)(int, const struct iovec*, int, off_t);
using SyncFn = int (*)(int);
using SyncRangeFn = int (*)(int, off64_t, off64_t, unsigned int);
using FallocateFn = int (*)(int, int, off_t, off_t);
using PosixFallocateFn = int (*)(int, off_t, off_t);
using FtruncateFn = int (*)(int, off_t);
using RenameFn = int (*)(const char*, const char*);
using UnlinkFn = int (*)(const char*);
using StatvfsFn = int (*)(const char*, struct statvfs*);
using FstatvfsFn = int (*)(int, struct statvfs*);

struct State {
  bool enabled = false;
  std::string root;       // normalized, no trailing slash
  std::string state_dir;  // journal, ctl, backup/
  int journal_fd = -1;
  const char* ctl = nullptr;  // kCtlBytes mapped from state_dir/ctl
  std::atomic<unsigned> backups{0};
  // Paths of the open descriptors under root (empty string: not ours).
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  std::string* paths = nullptr;  // kMaxFds entries, guarded by mu
  std::atomic<bool> tracked[kMaxFds];
};

State& S() {
  static State* state = new State();  // never destroyed: used until the very end
  return *state;
}

std::string Normalize(const char* path) {
  std::string in;
  if (path[0] != '/') {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof(cwd)) == nullptr) return "";
    in = cwd;
    in += '/';
  }
  in += path;
  // Lexical normalization: collapse "//", "/./" and "/x/..".
  std::string out;
  size_t i = 0;
  while (i < in.size()) {
    size_t j = in.find('/', i);
    if (j == std::string::npos) j = in.size();
    std::string part = in.substr(i, j - i);
    i = j + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      size_t slash = out.rfind('/');
      out.resize(slash == std::string::npos ? 0 : slash);
      continue;
    }
    out += '/';
    out += part;
  }
  return out.empty() ? "/" : out;
}

bool UnderRoot(const std::string& path) {
  const std::string& root = S().root;
  return path.size() >= root.size() && path.compare(0, root.size(), root) == 0 &&
         (path.size() == root.size() || path[root.size()] == '/');
}

bool Fault(const char* word) {
  const char* ctl = S().ctl;
  if (ctl == nullptr) return false;
  char copy[kCtlBytes + 1];
  memcpy(copy, ctl, kCtlBytes);
  copy[kCtlBytes] = '\0';
  size_t n = strlen(word);
  for (const char* p = strstr(copy, word); p != nullptr; p = strstr(p + 1, word)) {
    bool start = p == copy || p[-1] == ' ' || p[-1] == '\n' || p[-1] == ',';
    char end = p[n];
    if (start && (end == '\0' || end == ' ' || end == '\n' || end == ',')) return true;
  }
  return false;
}

void Journal(char op, long long size, const std::string& path, const std::string& extra = "") {
  State& s = S();
  if (s.journal_fd < 0) return;
  std::string line;
  line += op;
  line += '\t';
  line += std::to_string(size);
  line += '\t';
  line += path;
  if (!extra.empty()) {
    line += '\t';
    line += extra;
  }
  line += '\n';
  static WriteFn real_write = Real<WriteFn>("write");
  // O_APPEND: one write() is one line, whole, even with many threads.
  ssize_t unused = real_write(s.journal_fd, line.data(), line.size());
  (void)unused;
}

bool Ours(int fd) { return S().enabled && fd >= 0 && fd < kMaxFds && S().tracked[fd].load(); }

std::string PathOf(int fd) {
  State& s = S();
  pthread_mutex_lock(&s.mu);
  std::string path = s.paths[fd];
  pthread_mutex_unlock(&s.mu);
  return path;
}

void Track(int fd, const std::string& path) {
  if (fd < 0 || fd >= kMaxFds) return;
  State& s = S();
  pthread_mutex_lock(&s.mu);
  s.paths[fd] = path;
  s.tracked[fd].store(true);
  pthread_mutex_unlock(&s.mu);
}

void Untrack(int fd) {
  if (fd < 0 || fd >= kMaxFds || !S().tracked[fd].load()) return;
  State& s = S();
  pthread_mutex_lock(&s.mu);
  s.tracked[fd].store(false);
  s.paths[fd].clear();
  pthread_mutex_unlock(&s.mu);
}

// fsync of every file and directory under root (before the shim is enabled).
int SyncOne(const char* path, const struct stat*, int type, struct FTW*) {
  if (type != FTW_F && type != FTW_D) return 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  return 0;
}

void SyncTree(const std::string& root) { nftw(root.c_str(), SyncOne, 16, FTW_PHYS); }

__attribute__((constructor)) void Init() {
  State& s = S();
  s.paths = new std::string[kMaxFds];
  for (auto& t : s.tracked) t.store(false);
  const char* root = getenv("FAULTFS_ROOT");
  if (root == nullptr || root[0] == '\0') return;
  s.root = Normalize(root);
  const char* state = getenv("FAULTFS_STATE");
  s.state_dir = (state != nullptr && state[0] != '\0') ? Normalize(state) : s.root + ".faultfs";
  static OpenFn real_open = Real<OpenFn>("open");
  mkdir(s.state_dir.c_str(), 0755);
  mkdir((s.state_dir + "/backup").c_str(), 0755);
  // Each process starts a fresh journal on durable state: whatever a process before it
  // left un-synced (killed without a power loss, perhaps not even under the shim) is
  // synced now, so the journal never misses a sync it did not see.
  SyncTree(s.root);
  s.journal_fd = real_open((s.state_dir + "/journal").c_str(),
                           O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int ctl_fd = real_open((s.state_dir + "/ctl").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (s.journal_fd < 0 || ctl_fd < 0) {
    fprintf(stderr, "faultfs: cannot open %s/{journal,ctl}: %s\n", s.state_dir.c_str(),
            strerror(errno));
    abort();
  }
  struct stat st;
  if (fstat(ctl_fd, &st) == 0 && st.st_size < static_cast<off_t>(kCtlBytes)) {
    static FtruncateFn real_ftruncate = Real<FtruncateFn>("ftruncate");
    if (real_ftruncate(ctl_fd, kCtlBytes) != 0) abort();
  }
  void* map = mmap(nullptr, kCtlBytes, PROT_READ, MAP_SHARED, ctl_fd, 0);
  if (map == MAP_FAILED) abort();
  s.ctl = static_cast<const char*>(map);
  close(ctl_fd);
  s.enabled = true;
  fprintf(stderr, "faultfs: injecting faults under %s (control: %s/ctl)\n", s.root.c_str(),
          s.state_dir.c_str());
}

int AfterOpen(const char* path, int flags, int fd, bool existed, long long size_before) {
  if (fd < 0 || !S().enabled) return fd;
  std::string abs = Normalize(path);
  if (!UnderRoot(abs)) return fd;
  Track(fd, abs);
  if (!existed) {
    Journal('C', 0, abs);
  } else {
    Journal('O', size_before, abs);
    if (flags & O_TRUNC) Journal('T', 0, abs);
  }
  return fd;
}

template <typename Fn>
int OpenCommon(Fn real, const char* path, int flags, mode_t mode) {
  bool mine = S().enabled && path != nullptr && UnderRoot(Normalize(path));
  if (!mine) return real(path, flags, mode);
  struct stat st;
  bool existed = stat(path, &st) == 0;
  if (!existed && (flags & O_CREAT) && Fault("enospc")) {
    errno = ENOSPC;
    return -1;
  }
  int fd = real(path, flags, mode);
  return AfterOpen(path, flags, fd, existed, existed ? st.st_size : 0);
}

bool NoSpace(int fd) {
  if (!Ours(fd) || !Fault("enospc")) return false;
  // A descriptor closed behind the shim's back (not through close()) and reused for a
  // socket or pipe must not fail: only regular files run out of space.
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return false;
  errno = ENOSPC;
  return true;
}

int AfterSync(int fd, int rc) {
  if (rc != 0) return rc;
  struct stat st;
  if (fstat(fd, &st) != 0) return rc;
  std::string path = PathOf(fd);
  if (S_ISDIR(st.st_mode)) {
    Journal('D', 0, path);
  } else {
    Journal('S', st.st_size, path);
  }
  return rc;
}

void Fill(struct statvfs* buf) {
  buf->f_bfree = 0;
  buf->f_bavail = 0;
}

}  // namespace

extern "C" {

int open(const char* path, int flags, ...) {
  static OpenFn real = Real<OpenFn>("open");
  mode_t mode = 0;
  if (flags & (O_CREAT | O_TMPFILE)) {
    va_list ap;
    va_start(ap, flags);
    mode = va_arg(ap, mode_t);
    va_end(ap);
  }
  return OpenCommon(real, path, flags, mode);
}

int open64(const char* path, int flags, ...) {
  static OpenFn real = Real<OpenFn>("open64");
  mode_t mode = 0;
  if (flags & (O_CREAT | O_TMPFILE)) {
    va_list ap;
    va_start(ap, flags);
    mode = va_arg(ap, mode_t);
    va_end(ap);
  }
  return OpenCommon(real, path, flags, mode);
}

int __open_2(const char* path, int flags) {
  static OpenFn real = Real<OpenFn>("open");
  return OpenCommon(real, path, flags, 0);
}

int __open64_2(const char* path, int flags) {
  static OpenFn real = Real<OpenFn>("open64");
  return OpenCommon(real, path, flags, 0);
}

int creat(const char* path, mode_t mode) { return open(path, O_CREAT | O_WRONLY | O_TRUNC, mode); }

int close(int fd) {
  static CloseFn real = Real<CloseFn>("close");
  Untrack(fd);
  return real(fd);
}

ssize_t write(int fd, const void* buf, size_t n) {
  static WriteFn real = Real<WriteFn>("write");
  if (NoSpace(fd)) return -1;
  return real(fd, buf, n);
}

ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  static PwriteFn real = Real<PwriteFn>("pwrite");
  if (NoSpace(fd)) return -1;
  return real(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void* buf, size_t n, off_t off) {
  static PwriteFn real = Real<PwriteFn>("pwrite64");
  if (NoSpace(fd)) return -1;
  return real(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec* iov, int n) {
  static WritevFn real = Real<WritevFn>("writev");
  if (NoSpace(fd)) return -1;
  return real(fd, iov, n);
}

ssize_t pwritev(int fd, const struct iovec* iov, int n, off_t off) {
  static PwritevFn real = Real<PwritevFn>("pwritev");
  if (NoSpace(fd)) return -1;
  return real(fd, iov, n, off);
}

int fallocate(int fd, int mode, off_t off, off_t len) {
  static FallocateFn real = Real<FallocateFn>("fallocate");
  if (NoSpace(fd)) return -1;
  return real(fd, mode, off, len);
}

int posix_fallocate(int fd, off_t off, off_t len) {
  static PosixFallocateFn real = Real<PosixFallocateFn>("posix_fallocate");
  if (Ours(fd) && Fault("enospc")) return ENOSPC;  // returns the error, as posix_fallocate
  return real(fd, off, len);
}

int ftruncate(int fd, off_t length) {
  static FtruncateFn real = Real<FtruncateFn>("ftruncate");
  if (!Ours(fd)) return real(fd, length);
  struct stat st;
  if (fstat(fd, &st) == 0 && length > st.st_size && NoSpace(fd)) return -1;
  int rc = real(fd, length);
  if (rc == 0) Journal('T', length, PathOf(fd));
  return rc;
}

int fsync(int fd) {
  static SyncFn real = Real<SyncFn>("fsync");
  if (!Ours(fd)) return real(fd);
  if (Fault("fsync-eio")) {
    errno = EIO;
    return -1;
  }
  return AfterSync(fd, real(fd));
}

int fdatasync(int fd) {
  static SyncFn real = Real<SyncFn>("fdatasync");
  if (!Ours(fd)) return real(fd);
  if (Fault("fsync-eio")) {
    errno = EIO;
    return -1;
  }
  return AfterSync(fd, real(fd));
}

int sync_file_range(int fd, off64_t off, off64_t n, unsigned int flags) {
  static SyncRangeFn real = Real<SyncRangeFn>("sync_file_range");
  if (Ours(fd) && Fault("fsync-eio")) {
    errno = EIO;
    return -1;
  }
  return real(fd, off, n, flags);
}

int rename(const char* from, const char* to) {
  static RenameFn real = Real<RenameFn>("rename");
  if (!S().enabled || from == nullptr || to == nullptr) return real(from, to);
  std::string abs_from = Normalize(from), abs_to = Normalize(to);
  if (!UnderRoot(abs_from) && !UnderRoot(abs_to)) return real(from, to);
  struct stat st;
  long long size = stat(from, &st) == 0 ? st.st_size : 0;
  std::string backup = "-";
  if (access(to, F_OK) == 0) {
    std::string b = S().state_dir + "/backup/" + std::to_string(getpid()) + "." +
                    std::to_string(S().backups.fetch_add(1));
    if (link(to, b.c_str()) == 0) backup = b;
  }
  int rc = real(from, to);
  if (rc == 0) {
    Journal('R', size, abs_from, abs_to + "\t" + backup);
  } else if (backup != "-") {
    static UnlinkFn real_unlink = Real<UnlinkFn>("unlink");
    real_unlink(backup.c_str());
  }
  return rc;
}

int unlink(const char* path) {
  static UnlinkFn real = Real<UnlinkFn>("unlink");
  int rc = real(path);
  if (rc == 0 && S().enabled) {
    std::string abs = Normalize(path);
    if (UnderRoot(abs)) Journal('U', 0, abs);
  }
  return rc;
}

int statvfs(const char* path, struct statvfs* buf) {
  static StatvfsFn real = Real<StatvfsFn>("statvfs");
  int rc = real(path, buf);
  if (rc == 0 && S().enabled && UnderRoot(Normalize(path)) && Fault("enospc")) {
    Fill(buf);
  }
  return rc;
}

int fstatvfs(int fd, struct statvfs* buf) {
  static FstatvfsFn real = Real<FstatvfsFn>("fstatvfs");
  int rc = real(fd, buf);
  if (rc == 0 && Ours(fd) && Fault("enospc")) Fill(buf);
  return rc;
}

}  // extern "C"
