#include "sampler.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

namespace pocket {
namespace {

using Clock = std::chrono::steady_clock;

// Whole file, trailing whitespace trimmed; nullopt (with the reason) when it cannot be read.
std::optional<std::string> read_text(const std::string& path, std::string* error) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    *error = std::strerror(errno);
    return std::nullopt;
  }
  std::ostringstream text;
  text << file.rdbuf();
  std::string out = text.str();
  if (file.bad()) {
    *error = std::strerror(errno);
    return std::nullopt;
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ' || out.back() == '\r')) out.pop_back();
  return out;
}

std::optional<int64_t> status_field(const std::string& status, const char* field) {
  const std::string key = std::string("\n") + field + ":";
  const size_t at = ("\n" + status).find(key);
  if (at == std::string::npos) return std::nullopt;
  return std::strtoll(status.c_str() + at + key.size() - 1, nullptr, 10);
}

}  // namespace

int64_t steady_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

Sampler::Sampler(std::vector<std::string> files, int interval_ms) {
  samples_.files = std::move(files);
  samples_.interval_ms = interval_ms;
  samples_.errors.assign(samples_.files.size(), "");
}

Sampler::~Sampler() { stop(); }

void Sampler::start() {
  take();  // synchronously: the idle window may begin before the thread gets its first tick
  thread_ = std::thread([this] { run(); });
}

void Sampler::stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  thread_.join();
  take();  // the loop's end is covered even when it fell between two ticks
}

void Sampler::run() {
  // Ticks on a fixed grid (start + k * interval), not "sleep interval after each read", so the
  // reading time does not stretch the interval.
  const auto interval = std::chrono::milliseconds(samples_.interval_ms);
  auto next = Clock::now();
  while (!stop_) {
    next += interval;
    // Sleep in short slices so stop() does not wait a whole interval.
    while (!stop_ && Clock::now() < next) {
      std::this_thread::sleep_until(std::min(next, Clock::now() + std::chrono::milliseconds(5)));
    }
    if (!stop_) take();
  }
}

void Sampler::take() {
  samples_.t_ns.push_back(steady_now_ns());
  std::vector<std::optional<std::string>> row;
  row.reserve(samples_.files.size());
  for (size_t i = 0; i < samples_.files.size(); ++i) {
    std::string error;
    row.push_back(read_text(samples_.files[i], &error));
    if (!row.back() && samples_.errors[i].empty()) samples_.errors[i] = error;
  }
  samples_.values.push_back(std::move(row));
  std::string ignored;
  const auto status = read_text("/proc/self/status", &ignored).value_or("");
  samples_.rss_kb.push_back(status_field(status, "VmRSS"));
  samples_.swap_kb.push_back(status_field(status, "VmSwap"));
  samples_.hwm_kb.push_back(status_field(status, "VmHWM"));
}

}  // namespace pocket
