// Unit tests of pocket_runner's pieces that need no model: the tensor-file reader and writer, the
// checked arithmetic, the report writer and the argument parser. Plain checks (they stay on in
// Release builds, unlike assert); run by tests/test_runner_unit.py through `just test`.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <executorch/runtime/core/exec_aten/util/scalar_type_util.h>

#include "../src/cli.h"
#include "../src/report.h"
#include "../src/tensor_file.h"

namespace {

int g_failures = 0;

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++g_failures;                                                                 \
    }                                                                               \
  } while (0)

using pocket::HostTensor;
using pocket::ScalarType;
using pocket::TensorSet;

std::string parse_fault(const std::string& bytes) {
  std::vector<TensorSet> sets;
  pocket::TensorFileFault fault;
  const bool ok =
      pocket::parse_tensor_bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &sets, &fault);
  return ok ? "ok" : fault.code;
}

std::string header(uint32_t n_sets, uint32_t per_set) {
  std::string out = "PBTF";
  for (uint32_t v : {1u, n_sets, per_set}) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  return out;
}

HostTensor tensor(ScalarType dtype, std::vector<int64_t> dims) {
  HostTensor t;
  t.dtype = dtype;
  t.dims = std::move(dims);
  uint64_t numel = 0;
  pocket::checked_numel(t.dims, &numel);
  t.data.resize(numel * pocket::dtype_size(dtype));
  for (size_t i = 0; i < t.data.size(); ++i) t.data[i] = static_cast<uint8_t>(i * 7 + 1);
  return t;
}

void test_issue_15_file_fails_fast() {
  CHECK(parse_fault(header(0xFFFFFFFFu, 0)) == "zero-count");
  CHECK(parse_fault(header(0, 0x5b0000u)) == "zero-count");  // found by fuzz_tensor_file
  CHECK(parse_fault(header(0xFFFFFFFFu, 0xFFFFFFFFu) + std::string(64, '\0')) == "counts-exceed-bytes");
  CHECK(parse_fault(header(0, 0)) == "ok");
  CHECK(parse_fault(header(0, 0) + "x") == "trailing-bytes");
  CHECK(parse_fault("PBT") == "short-header");
}

void test_round_trip_every_dtype() {
  const ScalarType types[] = {ScalarType::Byte,  ScalarType::Char,   ScalarType::Short,
                              ScalarType::Int,   ScalarType::Long,   ScalarType::Half,
                              ScalarType::Float, ScalarType::Double, ScalarType::Bool};
  std::vector<TensorSet> sets(2);
  for (ScalarType type : types) {
    sets[0].push_back(tensor(type, {2, 3}));
    sets[1].push_back(tensor(type, {}));
  }
  std::string bytes, error;
  CHECK(pocket::encode_tensor_file(sets, &bytes, &error));
  std::vector<TensorSet> back;
  pocket::TensorFileFault fault;
  CHECK(pocket::parse_tensor_bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &back, &fault));
  CHECK(back.size() == 2 && back[0].size() == 9 && back[1].size() == 9);
  for (size_t s = 0; s < back.size() && s < 2; ++s) {
    for (size_t t = 0; t < back[s].size() && t < 9; ++t) {
      CHECK(back[s][t].dtype == sets[s][t].dtype);
      CHECK(back[s][t].dims == sets[s][t].dims);
      CHECK(back[s][t].data == sets[s][t].data);
    }
  }
  // Every prefix of a valid file is refused, never read past its end.
  for (size_t cut = 0; cut < bytes.size(); ++cut) CHECK(parse_fault(bytes.substr(0, cut)) != "ok");
}

void test_writer_refuses_what_readers_refuse() {
  std::string bytes, error;
  CHECK(!pocket::encode_tensor_file({{tensor(ScalarType::Byte, std::vector<int64_t>(17, 1))}}, &bytes, &error));
  HostTensor negative = tensor(ScalarType::Float, {1});
  negative.dims = {-1};
  CHECK(!pocket::encode_tensor_file({{negative}}, &bytes, &error));
  HostTensor short_data = tensor(ScalarType::Float, {4});
  short_data.data.pop_back();
  CHECK(!pocket::encode_tensor_file({{short_data}}, &bytes, &error));
  CHECK(!pocket::encode_tensor_file({{tensor(ScalarType::ComplexFloat, {1})}}, &bytes, &error));
  CHECK(!pocket::encode_tensor_file({{tensor(ScalarType::Float, {1})}, {}}, &bytes, &error));
  CHECK(!pocket::encode_tensor_file({{}}, &bytes, &error));
  CHECK(pocket::encode_tensor_file({}, &bytes, &error) && bytes == header(0, 0));
}

void test_checked_arithmetic() {
  uint64_t out = 0;
  CHECK(pocket::checked_mul(1ull << 32, 1ull << 31, &out) && out == (1ull << 63));
  CHECK(!pocket::checked_mul(1ull << 32, 1ull << 32, &out));
  CHECK(pocket::checked_numel({}, &out) && out == 1);
  CHECK(pocket::checked_numel({2, 3, 4}, &out) && out == 24);
  CHECK(!pocket::checked_numel({2, -3}, &out));
  CHECK(!pocket::checked_numel({1ll << 40, 1ll << 40}, &out));
  CHECK(pocket::checked_numel({1ll << 40, 1ll << 40, 0}, &out) && out == 0);
}

void test_dtypes_come_from_the_runtime() {
  CHECK(pocket::dtype_size(ScalarType::Float) == executorch::runtime::elementSize(ScalarType::Float));
  CHECK(pocket::dtype_size(ScalarType::Half) == 2 && pocket::dtype_size(ScalarType::Bool) == 1);
  CHECK(pocket::dtype_size(ScalarType::ComplexDouble) == 0);
  CHECK(pocket::dtype_size(static_cast<ScalarType>(99)) == 0);
  CHECK(!pocket::carried_dtype(ScalarType::BFloat16));
  CHECK(pocket::dtype_name(ScalarType::Char) == "int8");
  CHECK(pocket::dtype_name(static_cast<ScalarType>(99)) == "scalar_type_99");
  CHECK(static_cast<int>(ScalarType::Bool) == 11 && static_cast<int>(ScalarType::Float) == 6);
}

void test_read_tensor_file_errors_name_the_file() {
  std::vector<TensorSet> sets;
  std::string error;
  CHECK(!pocket::read_tensor_file("/nonexistent/x.pbtf", &sets, &error));
  CHECK(error.find("cannot open inputs file /nonexistent/x.pbtf") == 0);
  CHECK(!pocket::read_tensor_file("/", &sets, &error));
  CHECK(error.find("not a regular file") != std::string::npos);
}

void test_report_is_never_ok_by_default() {
  pocket::Report report;
  CHECK(report.status != pocket::Status::kOk);
  const std::string json = pocket::to_json(report);
  CHECK(json.find("\"status\": \"execution_failed\"") != std::string::npos);
  CHECK(json.find("\"phase\": \"arguments\"") != std::string::npos);
  CHECK(json.find("\"schema_version\": 1,") != std::string::npos);
}

void test_report_json_is_safe() {
  pocket::Report report;
  report.status = pocket::Status::kLoadFailed;
  report.error = std::string("bad \"quote\" \\ \n\x01 \xff\xfe end");
  report.program_load_ms = std::numeric_limits<double>::quiet_NaN();
  report.method_load_ms = std::numeric_limits<double>::infinity();
  report.first_inference_ms = 1.5;
  const std::string json = pocket::to_json(report);
  CHECK(json.find("\"error\": \"bad \\\"quote\\\" \\\\ \\n\\u0001 \\ufffd\\ufffd end\"") != std::string::npos);
  CHECK(json.find("\"program_load_ms\": null") != std::string::npos);
  CHECK(json.find("\"method_load_ms\": null") != std::string::npos);
  CHECK(json.find("\"first_inference_ms\": 1.500000") != std::string::npos);
  CHECK(json.find(": nan") == std::string::npos && json.find(": inf") == std::string::npos);
  CHECK(pocket::exit_code(pocket::Status::kOk) == 0 && pocket::exit_code(pocket::Status::kBadArguments) == 2 &&
        pocket::exit_code(pocket::Status::kLoadFailed) == 3 &&
        pocket::exit_code(pocket::Status::kExecutionFailed) == 4);
}

bool parse(std::vector<std::string> args, pocket::Options* options, std::string* error) {
  std::vector<char*> argv;
  static char name[] = "pocket_runner";
  argv.push_back(name);
  for (std::string& arg : args) argv.push_back(arg.data());
  return pocket::parse_args(static_cast<int>(argv.size()), argv.data(), options, error);
}

void test_arguments() {
  pocket::Options options;
  std::string error;
  CHECK(parse({"--model", "m.pte", "--iterations", "3", "--seed", "7"}, &options, &error));
  CHECK(options.iterations == 3 && options.seed == 7);
  pocket::Options bad;
  CHECK(!parse({"--model", "m.pte", "--iterations", "-1", "--json", "r.json"}, &bad, &error));
  CHECK(error.find("--iterations") == 0 && bad.json == "r.json");
  pocket::Options both;
  CHECK(!parse({"--model", "m.pte", "--inputs", "a", "--seed", "1"}, &both, &error));
  pocket::Options missing;
  CHECK(!parse({"--model"}, &missing, &error) && error.find("needs a value") != std::string::npos);
  pocket::Options nan;
  CHECK(!parse({"--model", "m", "--min-seconds", "nan"}, &nan, &error));
  pocket::Options none;
  CHECK(!parse({}, &none, &error) && error.find("--model is required") == 0);
}

}  // namespace

int main() {
  test_issue_15_file_fails_fast();
  test_round_trip_every_dtype();
  test_writer_refuses_what_readers_refuse();
  test_checked_arithmetic();
  test_dtypes_come_from_the_runtime();
  test_read_tensor_file_errors_name_the_file();
  test_report_is_never_ok_by_default();
  test_report_json_is_safe();
  test_arguments();
  if (g_failures) {
    std::fprintf(stderr, "%d check(s) failed\n", g_failures);
    return 1;
  }
  std::puts("all unit tests passed");
  return 0;
}
