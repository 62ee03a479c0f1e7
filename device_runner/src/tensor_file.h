// PBTF: the little tensor file the host and the runner exchange (inputs in, outputs back).
// The format is defined in host/pocketbench/tensorfile.py and documented in README.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pocket {

// One tensor held by the runner: ExecuTorch ScalarType code, row-major dims and bytes.
struct HostTensor {
  uint8_t dtype = 0;
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;
};
using TensorSet = std::vector<HostTensor>;

// Bytes per element for the dtype codes a PBTF file may carry; 0 for any other code.
size_t dtype_size(uint8_t code);
// numpy-style name ("float32", "int8", ...) for a ScalarType code.
std::string dtype_name(uint8_t code);

// Reads a PBTF file. Returns false with a one-line reason on anything missing, truncated or
// inconsistent: every size is checked before it is used, so a corrupt file cannot overrun.
bool read_tensor_file(const std::string& path, std::vector<TensorSet>* sets, std::string* error);

// Writes sets (each holding the same number of tensors) as a PBTF file.
bool write_tensor_file(
    const std::string& path, const std::vector<TensorSet>& sets, std::string* error);

}  // namespace pocket
