// kvbench's output: an aligned table for people, or one JSON object (--json) for scripts.
// The JSON fields are documented in bench/README.md ("kvbench").
#ifndef KVD_BENCH_KVBENCH_REPORT_H_
#define KVD_BENCH_KVBENCH_REPORT_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "bench/kvbench/engine.h"

namespace kvbench {

// A JSON object whose fields keep the order they were added in.
class JsonObject {
 public:
  JsonObject& Add(absl::string_view key, int64_t value);
  JsonObject& Add(absl::string_view key, int value) { return Add(key, int64_t{value}); }
  JsonObject& Add(absl::string_view key, uint64_t value);
  JsonObject& Add(absl::string_view key, double value);
  JsonObject& Add(absl::string_view key, bool value);
  JsonObject& Add(absl::string_view key, absl::string_view value);
  JsonObject& Add(absl::string_view key, const char* value) {
    return Add(key, absl::string_view(value));
  }
  JsonObject& Add(absl::string_view key, const std::vector<std::string>& values);
  JsonObject& Add(absl::string_view key, const JsonObject& value);
  bool empty() const { return fields_.empty(); }
  std::string ToString() const;

 private:
  JsonObject& AddRaw(absl::string_view key, std::string json);
  std::vector<std::pair<std::string, std::string>> fields_;
};

// What a workload adds to the report beyond the per-operation rows: a JSON object under
// the workload's name, and the same facts as "name value" pairs for the table.
struct Extras {
  JsonObject json;
  std::vector<std::pair<std::string, std::string>> lines;
  template <class T>
  void Add(absl::string_view key, T value);
};

// Prints the report of a finished run to stdout.
void PrintReport(const std::string& workload, const Engine& engine,
                 const Engine::Measured& measured, const Extras& extras, bool json);

}  // namespace kvbench

#endif  // KVD_BENCH_KVBENCH_REPORT_H_
