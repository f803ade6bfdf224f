// A deterministic simulator for raft/: a cluster of RawNodes with in-memory storage, a
// virtual clock and a simulated network, all driven by one seeded random source.
//
// One run = one seed. The seed picks the cluster's options ("swarm": pre-vote,
// check-quorum, timeouts, window sizes, fault rates) and a schedule of operations:
// proposals, reads, partitions (symmetric, asymmetric, isolated leader, bridge), crashes
// and restarts that lose everything not persisted, snapshots and compaction, membership
// changes and leader transfers. After every node step the checker verifies Raft's safety
// properties; after the faults heal it checks liveness. The same seed always replays the
// same run, so a failure is reproduced with `raft_sim --seed=S --nodes=N`.
#ifndef KVD_TESTS_RAFT_SIM_SIMULATOR_H_
#define KVD_TESTS_RAFT_SIM_SIMULATOR_H_

#include <cstdint>
#include <string>

#include "raft/config.h"

namespace kvd::raft::sim {

struct SimOptions {
  uint64_t seed = 1;
  int nodes = 3;         // Initial voters: 3 or 5.
  int ops = 300;         // Operations in the fault phase.
  bool verbose = false;  // Print the event trace of the run.
  TestingKnobs knobs;    // Planted bugs (checker self-test).
  // Seeds with check_quorum serve ReadIndex from the leader lease (ReadOnlyOption::
  // kLeaseBased). Not linearizable under message delays: the checker finds stale reads.
  bool lease_reads = false;
};

struct SimResult {
  bool ok = true;
  std::string failure;  // First violated property, with context.
  // Counters, to show that a run did real work.
  uint64_t ticks = 0;
  uint64_t messages = 0;
  uint64_t proposals_committed = 0;
  uint64_t elections = 0;
  uint64_t snapshots_installed = 0;
  uint64_t conf_changes_applied = 0;
  uint64_t reads_served = 0;
  uint64_t crashes = 0;
  uint64_t transfers = 0;
};

SimResult RunSimulation(const SimOptions& opts);

// The command line that reproduces a run exactly.
std::string ReproCommand(const SimOptions& opts);

}  // namespace kvd::raft::sim

#endif  // KVD_TESTS_RAFT_SIM_SIMULATOR_H_
