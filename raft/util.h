// Small helpers shared by raft/: invariant checks and a deterministic random source.
//
// raft/ has no clock, thread or OS random source. Everything random (the election timeout)
// comes from Rng, seeded from Config::seed, so a run is a pure function of its inputs.
#ifndef KVD_RAFT_UTIL_H_
#define KVD_RAFT_UTIL_H_

#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace kvd::raft {

// Called on a failed invariant before aborting. Tests and the simulator install one that
// throws, so that a planted bug is reported with its seed instead of killing the process.
// Production code never sets it.
using CheckFailureHandler = void (*)(const char* file, int line, const char* cond, const char* msg);
inline CheckFailureHandler check_failure_handler_for_testing = nullptr;

// Prints the failed condition and aborts. Raft invariants are never "handled": a broken
// invariant means the log or the state machine could diverge, so the node stops.
[[noreturn]] inline void CheckFailed(const char* file, int line, const char* cond,
                                     const char* msg) {
  if (check_failure_handler_for_testing != nullptr) {
    check_failure_handler_for_testing(file, line, cond, msg);
  }
  std::fprintf(stderr, "%s:%d: raft invariant failed: %s %s\n", file, line, cond, msg);
  std::fflush(stderr);
  std::abort();
}

}  // namespace kvd::raft

// RAFT_CHECK(cond) / RAFT_CHECK_MSG(cond, "why"): always on, also in release builds.
#define RAFT_CHECK(cond) \
  ((cond) ? (void)0 : ::kvd::raft::CheckFailed(__FILE__, __LINE__, #cond, ""))
#define RAFT_CHECK_MSG(cond, msg) \
  ((cond) ? (void)0 : ::kvd::raft::CheckFailed(__FILE__, __LINE__, #cond, (msg)))

namespace kvd::raft {

// splitmix64: tiny, fast, good enough for election jitter and for the simulator. Not for
// anything that needs unpredictability.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  // Uniform in [0, n). REQUIRES: n > 0.
  uint64_t Uniform(uint64_t n) {
    RAFT_CHECK(n > 0);
    return Next() % n;
  }

  // Uniform in [lo, hi]. REQUIRES: lo <= hi.
  uint64_t Range(uint64_t lo, uint64_t hi) { return lo + Uniform(hi - lo + 1); }

  // True with probability num/den.
  bool OneIn(uint64_t den) { return den <= 1 || Uniform(den) == 0; }
  bool Chance(double p) { return static_cast<double>(Next() >> 11) * 0x1.0p-53 < p; }

 private:
  uint64_t state_;
};

}  // namespace kvd::raft

#endif  // KVD_RAFT_UTIL_H_
