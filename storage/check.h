// KVD_CHECK: invariants that, if broken, mean continuing would corrupt state or serve
// wrong data. The process stops with the condition and the location. (Debian 12's abseil
// predates absl/log, so this is ours.) Operating errors are absl::Status, never checks.
#ifndef KVD_STORAGE_CHECK_H_
#define KVD_STORAGE_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define KVD_CHECK(cond)                                                                   \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "kvd: fatal: check failed at %s:%d: %s\n", __FILE__, __LINE__, \
                   #cond);                                                                \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)

// Stops the process on a non-OK status, printing it.
#define KVD_CHECK_OK(expr)                                                                \
  do {                                                                                    \
    const auto& kvd_check_status_ = (expr);                                               \
    if (!kvd_check_status_.ok()) {                                                        \
      std::fprintf(stderr, "kvd: fatal at %s:%d: %s\n", __FILE__, __LINE__,               \
                   kvd_check_status_.ToString().c_str());                                 \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)

#endif  // KVD_STORAGE_CHECK_H_
