// libFuzzer target: the tensor-file reader on arbitrary bytes (`just fuzz`; seeds in
// tests/data/tensorfile/). Besides "no crash, no sanitizer report", it checks the reader's contract:
// whatever it accepts, the writer encodes back to the very same bytes.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "../src/tensor_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<pocket::TensorSet> sets;
  pocket::TensorFileFault fault;
  if (!pocket::parse_tensor_bytes(data, size, &sets, &fault)) {
    if (fault.code.empty() || fault.message.empty()) __builtin_trap();
    return 0;
  }
  std::string bytes, error;
  if (!pocket::encode_tensor_file(sets, &bytes, &error)) __builtin_trap();
  if (bytes.size() != size || std::memcmp(bytes.data(), data, size) != 0) __builtin_trap();
  return 0;
}
