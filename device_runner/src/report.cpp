#include "report.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace pocket {
namespace {

const char* status_name(Status status) {
  switch (status) {
    case Status::kOk: return "ok";
    case Status::kBadArguments: return "bad_arguments";
    case Status::kLoadFailed: return "load_failed";
    case Status::kExecutionFailed: return "execution_failed";
  }
  return "execution_failed";
}

// Length of the valid UTF-8 sequence starting at text[i], or 0 when the bytes there are not one.
size_t utf8_length(const std::string& text, size_t i) {
  const auto c = static_cast<unsigned char>(text[i]);
  const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  if (n == 0 || i + n > text.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((static_cast<unsigned char>(text[i + k]) >> 6) != 0x2) return 0;
  }
  return n;
}

// A JSON string literal. Bytes that are not valid UTF-8 (a corrupt file's magic quoted in a
// runtime message) become U+FFFD so the document always parses.
std::string quote(const std::string& text) {
  std::string out = "\"";
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8_length(text, i);
    if (n == 0) {
      out += "\\ufffd";
      ++i;
      continue;
    }
    if (n > 1) {
      out.append(text, i, n);
      i += n;
      continue;
    }
    const auto c = static_cast<unsigned char>(text[i++]);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out + "\"";
}

std::string number(std::optional<double> value) {
  if (!value || !std::isfinite(*value)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6f", *value);
  return buf;
}

std::string integer(std::optional<int64_t> value) { return value ? std::to_string(*value) : "null"; }

template <typename T, typename F>
std::string list(const std::vector<T>& items, F render) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    out += render(items[i]);
  }
  return out + "]";
}

std::string samples_json(const Samples& s) {
  auto as_int = [](int64_t v) { return std::to_string(v); };
  auto as_str = [](const std::string& v) { return quote(v); };
  auto opt_int = [](const std::optional<int64_t>& v) { return integer(v); };
  auto opt_str = [](const std::optional<std::string>& v) { return v ? quote(*v) : std::string("null"); };
  std::string errors = "{";
  for (size_t i = 0; i < s.files.size(); ++i) {
    if (s.errors[i].empty()) continue;
    errors += (errors.size() > 1 ? ", " : "") + quote(s.files[i]) + ": " + quote(s.errors[i]);
  }
  errors += "}";
  return "{\"interval_ms\": " + std::to_string(s.interval_ms) + ", \"files\": " + list(s.files, as_str) +
         ", \"errors\": " + errors + ",\n    \"t_ns\": " + list(s.t_ns, as_int) + ",\n    \"values\": " +
         list(s.values, [&](const std::vector<std::optional<std::string>>& row) { return list(row, opt_str); }) +
         ",\n    \"rss_kb\": " + list(s.rss_kb, opt_int) + ",\n    \"swap_kb\": " + list(s.swap_kb, opt_int) +
         ",\n    \"hwm_kb\": " + list(s.hwm_kb, opt_int) + "}";
}

std::string generation_json(const Generation& g) {
  auto as_int = [](int64_t v) { return std::to_string(v); };
  return "{\"prompt_tokens\": " + std::to_string(g.prompt_tokens) +
         ", \"decode_tokens\": " + std::to_string(g.decode_tokens) +
         ", \"teacher_forced\": " + (g.teacher_forced ? "true" : "false") +
         ", \"context\": " + std::to_string(g.context) + ",\n    \"prefill_ns\": " + list(g.prefill_ns, as_int) +
         ",\n    \"decode_ns\": " +
         list(g.decode_ns, [&](const std::vector<int64_t>& row) { return list(row, as_int); }) +
         ",\n    \"generated_ids\": " + list(g.generated_ids, as_int) + "}";
}

}  // namespace

int exit_code(Status status) {
  switch (status) {
    case Status::kOk: return 0;
    case Status::kBadArguments: return 2;
    case Status::kLoadFailed: return 3;
    case Status::kExecutionFailed: return 4;
  }
  return 4;
}

std::optional<int64_t> proc_status_kb(const char* field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  const size_t len = std::strlen(field);
  while (std::getline(status, line)) {
    if (line.compare(0, len, field) == 0 && line.size() > len && line[len] == ':') {
      return std::strtoll(line.c_str() + len + 1, nullptr, 10);
    }
  }
  return std::nullopt;
}

std::string to_json(const Report& r) {
  auto as_int = [](int64_t v) { return std::to_string(v); };
  auto as_str = [](const std::string& s) { return quote(s); };
  std::ostringstream out;
  out << "{\n";
  out << "  \"schema_version\": 1,\n";
  out << "  \"schema_minor\": 4,\n";
  out << "  \"status\": " << quote(status_name(r.status)) << ",\n";
  out << "  \"phase\": " << quote(r.phase) << ",\n";
  out << "  \"error\": " << (r.error.empty() ? "null" : quote(r.error)) << ",\n";
  out << "  \"runtime\": " << quote(POCKET_RUNTIME_VERSION) << ",\n";
  out << "  \"model\": " << quote(r.model) << ",\n";
  out << "  \"method\": " << quote(r.method) << ",\n";
  out << "  \"threads\": " << r.threads << ",\n";
  out << "  \"clock\": \"steady_clock\",\n";
  out << "  \"program_load_ms\": " << number(r.program_load_ms) << ",\n";
  out << "  \"method_load_ms\": " << number(r.method_load_ms) << ",\n";
  out << "  \"first_inference_ms\": " << number(r.first_inference_ms) << ",\n";
  out << "  \"warmup_iterations\": " << r.warmup_iterations << ",\n";
  out << "  \"iterations_ns\": " << list(r.iterations_ns, as_int) << ",\n";
  out << "  \"batch\": {\"min_ms\": " << number(r.batch_min_ms) << ", \"calls\": " << r.batch_calls
      << ", \"calibration\": "
      << list(r.calibration,
              [](const std::pair<int64_t, int64_t>& t) {
                return "[" + std::to_string(t.first) + ", " + std::to_string(t.second) + "]";
              })
      << ",\n    \"batches_ns\": " << list(r.batches_ns, as_int) << "},\n";
  out << "  \"rss_kb\": {\"before_load\": " << integer(r.rss_kb_before_load)
      << ", \"after_load\": " << integer(r.rss_kb_after_load) << ", \"after_loop\": " << integer(r.rss_kb_after_loop)
      << "},\n";
  out << "  \"peak_rss_kb\": " << integer(r.peak_rss_kb) << ",\n";
  out << "  \"planned_buffers_bytes\": " << list(r.planned_buffers_bytes, as_int) << ",\n";
  out << "  \"backends\": " << list(r.backends, as_str) << ",\n";
  out << "  \"inputs\": {\"source\": " << (r.inputs_source.empty() ? "null" : quote(r.inputs_source))
      << ", \"sets\": " << r.input_sets << "},\n";
  out << "  \"output_sets_written\": " << r.output_sets_written << ",\n";
  out << "  \"outputs\": " << list(r.outputs, [&](const OutputSummary& o) {
    return "{\"shape\": " + list(o.shape, as_int) + ", \"dtype\": " + quote(o.dtype) +
           ", \"sha256\": " + quote(o.sha256) + "}";
  }) << ",\n";
  out << "  \"etdump\": " << (r.etdump.empty() ? "null" : quote(r.etdump)) << ",\n";
  out << "  \"timeline_ns\": {\"idle_start\": " << integer(r.idle_start_ns)
      << ", \"idle_end\": " << integer(r.idle_end_ns) << ", \"loop_start\": " << integer(r.loop_start_ns)
      << ", \"loop_end\": " << integer(r.loop_end_ns) << "},\n";
  out << "  \"samples\": " << (r.samples ? samples_json(*r.samples) : "null") << ",\n";
  out << "  \"generation\": " << (r.generation ? generation_json(*r.generation) : "null") << "\n";
  out << "}\n";
  return out.str();
}

}  // namespace pocket
