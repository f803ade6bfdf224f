// raft_sim: runs the deterministic raft simulator.
//
//   raft_sim --seed=12345 --nodes=5          replay one seed (add --verbose for a trace)
//   raft_sim --first_seed=0 --num_seeds=500  run a range; nodes alternate 3/5 by seed
//                                            unless --nodes is given
//   --ops=N                                  operations per seed (default 300)
//   --plant=vote_twice|commit_without_quorum plant a bug (the checker must catch it)
//   --lease_reads                            lease-based ReadIndex (finds stale reads)
//
// Exit status 0 if every seed passed; otherwise 1, after printing for each failing seed
// the one command that reproduces it.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/raft/sim/simulator.h"

namespace {

bool Flag(const char* arg, const char* name, std::string* value) {
  const size_t n = std::strlen(name);
  if (std::strncmp(arg, name, n) != 0) return false;
  if (arg[n] == '=') {
    *value = arg + n + 1;
    return true;
  }
  if (arg[n] == '\0') {
    *value = "1";
    return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  using kvd::raft::sim::SimOptions;
  uint64_t first = 1, count = 1;
  int nodes = 0;
  SimOptions base;
  for (int i = 1; i < argc; ++i) {
    std::string v;
    if (Flag(argv[i], "--seed", &v)) {
      first = std::strtoull(v.c_str(), nullptr, 10);
      count = 1;
    } else if (Flag(argv[i], "--first_seed", &v)) {
      first = std::strtoull(v.c_str(), nullptr, 10);
    } else if (Flag(argv[i], "--num_seeds", &v)) {
      count = std::strtoull(v.c_str(), nullptr, 10);
    } else if (Flag(argv[i], "--nodes", &v)) {
      nodes = std::atoi(v.c_str());
    } else if (Flag(argv[i], "--ops", &v)) {
      base.ops = std::atoi(v.c_str());
    } else if (Flag(argv[i], "--lease_reads", &v)) {
      base.lease_reads = true;
    } else if (Flag(argv[i], "--verbose", &v)) {
      base.verbose = true;
    } else if (Flag(argv[i], "--plant", &v)) {
      if (v == "vote_twice") {
        base.knobs.vote_twice_in_term = true;
      } else if (v == "commit_without_quorum") {
        base.knobs.commit_without_quorum = true;
      } else {
        std::fprintf(stderr, "unknown --plant=%s\n", v.c_str());
        return 2;
      }
    } else {
      std::fprintf(stderr, "unknown flag %s (see the comment at the top of raft_sim_main.cc)\n",
                   argv[i]);
      return 2;
    }
  }
  if (nodes != 0 && nodes != 3 && nodes != 5) {
    std::fprintf(stderr, "--nodes must be 3 or 5\n");
    return 2;
  }
  const auto start = std::chrono::steady_clock::now();
  uint64_t failures = 0, ticks = 0, msgs = 0, committed = 0, elections = 0, snaps = 0, confs = 0,
           reads = 0, crashes = 0;
  for (uint64_t seed = first; seed < first + count; ++seed) {
    SimOptions o = base;
    o.seed = seed;
    o.nodes = nodes != 0 ? nodes : (seed % 2 == 0 ? 3 : 5);
    kvd::raft::sim::SimResult r = kvd::raft::sim::RunSimulation(o);
    ticks += r.ticks;
    msgs += r.messages;
    committed += r.proposals_committed;
    elections += r.elections;
    snaps += r.snapshots_installed;
    confs += r.conf_changes_applied;
    reads += r.reads_served;
    crashes += r.crashes;
    if (!r.ok) {
      ++failures;
      std::printf("FAIL seed=%llu nodes=%d: %s\n  reproduce: %s\n",
                  static_cast<unsigned long long>(seed), o.nodes, r.failure.c_str(),
                  kvd::raft::sim::ReproCommand(o).c_str());
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "%llu seeds [%llu, %llu): %llu failed in %.1fs; ticks=%llu messages=%llu applied "
      "proposals=%llu elections=%llu snapshots=%llu conf_changes=%llu reads=%llu "
      "crashes=%llu\n",
      static_cast<unsigned long long>(count), static_cast<unsigned long long>(first),
      static_cast<unsigned long long>(first + count), static_cast<unsigned long long>(failures),
      secs, static_cast<unsigned long long>(ticks), static_cast<unsigned long long>(msgs),
      static_cast<unsigned long long>(committed), static_cast<unsigned long long>(elections),
      static_cast<unsigned long long>(snaps), static_cast<unsigned long long>(confs),
      static_cast<unsigned long long>(reads), static_cast<unsigned long long>(crashes));
  return failures == 0 ? 0 : 1;
}
