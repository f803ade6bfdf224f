#include "bench/kvbench/report.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace kvbench {
namespace {

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string Number(double v) { return absl::StrFormat("%.6g", v); }

// grpc::StatusCode names as etcd's clients print them.
const char* CodeName(int code) {
  static const char* const kNames[OpStats::kCodes] = {"OK",
                                                      "CANCELLED",
                                                      "UNKNOWN",
                                                      "INVALID_ARGUMENT",
                                                      "DEADLINE_EXCEEDED",
                                                      "NOT_FOUND",
                                                      "ALREADY_EXISTS",
                                                      "PERMISSION_DENIED",
                                                      "RESOURCE_EXHAUSTED",
                                                      "FAILED_PRECONDITION",
                                                      "ABORTED",
                                                      "OUT_OF_RANGE",
                                                      "UNIMPLEMENTED",
                                                      "INTERNAL",
                                                      "UNAVAILABLE",
                                                      "DATA_LOSS",
                                                      "UNAUTHENTICATED"};
  return kNames[code];
}

double Ms(int64_t ns) { return ns / 1e6; }

JsonObject LatencyJson(const Histogram& h) {
  JsonObject o;
  o.Add("p50", Ms(h.Quantile(0.5)))
      .Add("p90", Ms(h.Quantile(0.9)))
      .Add("p99", Ms(h.Quantile(0.99)))
      .Add("p999", Ms(h.Quantile(0.999)))
      .Add("max", Ms(h.max_ns()))
      .Add("mean", h.mean_ns() / 1e6);
  return o;
}

JsonObject ErrorsJson(const OpStats& s) {
  JsonObject o;
  for (int c = 0; c < OpStats::kCodes; ++c) {
    if (s.errors[c] > 0) o.Add(CodeName(c), s.errors[c]);
  }
  return o;
}

std::string ErrorsText(const OpStats& s) {
  std::vector<std::string> parts;
  for (int c = 0; c < OpStats::kCodes; ++c) {
    if (s.errors[c] > 0) parts.push_back(absl::StrCat(CodeName(c), " ", s.errors[c]));
  }
  return absl::StrJoin(parts, ", ");
}

}  // namespace

JsonObject& JsonObject::AddRaw(absl::string_view key, std::string json) {
  fields_.emplace_back(std::string(key), std::move(json));
  return *this;
}
JsonObject& JsonObject::Add(absl::string_view key, int64_t value) {
  return AddRaw(key, absl::StrCat(value));
}
JsonObject& JsonObject::Add(absl::string_view key, uint64_t value) {
  return AddRaw(key, absl::StrCat(value));
}
JsonObject& JsonObject::Add(absl::string_view key, double value) {
  return AddRaw(key, Number(value));
}
JsonObject& JsonObject::Add(absl::string_view key, bool value) {
  return AddRaw(key, value ? "true" : "false");
}
JsonObject& JsonObject::Add(absl::string_view key, absl::string_view value) {
  return AddRaw(key, JsonString(value));
}
JsonObject& JsonObject::Add(absl::string_view key, const std::vector<std::string>& values) {
  std::vector<std::string> quoted;
  for (const auto& v : values) quoted.push_back(JsonString(v));
  return AddRaw(key, absl::StrCat("[", absl::StrJoin(quoted, ","), "]"));
}
JsonObject& JsonObject::Add(absl::string_view key, const JsonObject& value) {
  return AddRaw(key, value.ToString());
}

std::string JsonObject::ToString() const {
  std::vector<std::string> parts;
  for (const auto& [k, v] : fields_) parts.push_back(absl::StrCat(JsonString(k), ":", v));
  return absl::StrCat("{", absl::StrJoin(parts, ","), "}");
}

template <class T>
void Extras::Add(absl::string_view key, T value) {
  json.Add(key, value);
  if constexpr (std::is_same_v<T, double>) {
    lines.emplace_back(std::string(key), Number(value));
  } else {
    lines.emplace_back(std::string(key), absl::StrCat(value));
  }
}
template void Extras::Add<int64_t>(absl::string_view, int64_t);
template void Extras::Add<uint64_t>(absl::string_view, uint64_t);
template void Extras::Add<int>(absl::string_view, int);
template void Extras::Add<double>(absl::string_view, double);

void PrintReport(const std::string& workload, const Engine& engine,
                 const Engine::Measured& measured, const Extras& extras, bool json) {
  const auto& rows = engine.rows();
  std::vector<OpStats> merged;
  OpStats all;
  for (size_t r = 0; r < rows.size(); ++r) {
    merged.push_back(engine.Merged(static_cast<int>(r)));
    all.Merge(merged.back());
  }
  const OpStats& head = merged[0];
  const double secs = measured.elapsed_s > 0 ? measured.elapsed_s : 1e-9;
  const double cpu_us_per_op = all.ops > 0 ? measured.cpu_s * 1e6 / all.ops : 0;
  const Options& opt = engine.options();

  if (json) {
    JsonObject operations;
    for (size_t r = 0; r < rows.size(); ++r) {
      JsonObject row;
      row.Add("ops", merged[r].ops)
          .Add("errors", merged[r].error_count())
          .Add("ops_per_s", merged[r].ops / secs)
          .Add("latency_ms", LatencyJson(merged[r].latency))
          .Add("errors_by_code", ErrorsJson(merged[r]));
      operations.Add(rows[r], row);
    }
    JsonObject o;
    o.Add("workload", workload)
        .Add("endpoints", opt.endpoints)
        .Add("conns", opt.conns)
        .Add("clients", opt.clients)
        .Add("threads", opt.threads)
        .Add("elapsed_s", measured.elapsed_s)
        .Add("headline", rows[0])
        .Add("ops", head.ops)
        .Add("ops_per_s", head.ops / secs)
        .Add("latency_ms", LatencyJson(head.latency))
        .Add("ops_total", all.ops)
        .Add("errors", all.error_count())
        .Add("errors_by_code", ErrorsJson(all))
        .Add("generator_cpu_s", measured.cpu_s)
        .Add("generator_cpu_us_per_op", cpu_us_per_op)
        .Add("drained", measured.drained)
        .Add("operations", operations);
    if (!extras.json.empty()) o.Add(workload, extras.json);
    std::printf("%s\n", o.ToString().c_str());
    std::fflush(stdout);
    return;
  }

  std::printf("kvbench %s: %d clients, %d conns, %zu endpoints, %d threads, %.2f s\n\n",
              workload.c_str(), opt.clients, opt.conns, opt.endpoints.size(), opt.threads,
              measured.elapsed_s);
  std::printf("%-12s %10s %11s %7s %9s %9s %9s %9s %9s %9s\n", "op", "ops", "ops/s", "errors",
              "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "mean ms");
  for (size_t r = 0; r < rows.size(); ++r) {
    const OpStats& s = merged[r];
    if (r > 0 && s.ops == 0 && s.error_count() == 0) continue;  // nothing to show
    const Histogram& h = s.latency;
    std::printf("%-12s %10llu %11.1f %7llu %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f\n", rows[r].c_str(),
                static_cast<unsigned long long>(s.ops), s.ops / secs,
                static_cast<unsigned long long>(s.error_count()), Ms(h.Quantile(0.5)),
                Ms(h.Quantile(0.9)), Ms(h.Quantile(0.99)), Ms(h.Quantile(0.999)), Ms(h.max_ns()),
                h.mean_ns() / 1e6);
  }
  std::printf("\n");
  if (all.error_count() > 0) std::printf("errors by code: %s\n", ErrorsText(all).c_str());
  for (const auto& [k, v] : extras.lines) std::printf("%s: %s\n", k.c_str(), v.c_str());
  std::printf("generator CPU: %.3f s, %.2f us per op (%llu ops)\n", measured.cpu_s, cpu_us_per_op,
              static_cast<unsigned long long>(all.ops));
  if (!measured.drained) std::printf("warning: some requests never finished\n");
  std::fflush(stdout);
}

}  // namespace kvbench
