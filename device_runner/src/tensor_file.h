// PBTF: the little tensor file the host and the runner exchange (inputs in, outputs back).
// The format and every rule a reader enforces are written once, in docs/tensor-file.md; the
// Python reader (host/pocketbench/tensorfile.py) enforces the same rules with the same fault
// codes, and both are tested against the shared corpus in tests/data/tensorfile/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <executorch/runtime/core/portable_type/scalar_type.h>

namespace pocket {

using ScalarType = executorch::runtime::etensor::ScalarType;

// One tensor held by the runner: its ExecuTorch ScalarType, row-major dims and bytes.
struct HostTensor {
  ScalarType dtype = ScalarType::Byte;
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;
};
using TensorSet = std::vector<HostTensor>;

// The format's limits (docs/tensor-file.md).
constexpr size_t kTensorFileHeaderBytes = 16;
constexpr size_t kTensorRecordMinBytes = 12;  // dtype, ndim, reserved, nbytes: a 0-d empty record
constexpr size_t kTensorFileMaxDims = 16;
constexpr int64_t kTensorFileMaxDim = 2147483647;                 // ExecuTorch sizes are int32
constexpr uint64_t kTensorFileMaxBytes = 9223372036854775807ull;  // non-zero dims × element size

// Whether a tensor file may carry `type` (the nine types of docs/tensor-file.md).
bool carried_dtype(ScalarType type);
// Bytes per element of a carried dtype (the runtime's elementSize); 0 for any other type.
size_t dtype_size(ScalarType type);
// numpy-style name ("float32", "int8", ...) of a ScalarType; "scalar_type_<n>" for the rest.
std::string dtype_name(ScalarType type);

// Why a tensor file was refused; `code` is the rule's name in docs/tensor-file.md.
struct TensorFileFault {
  std::string code;
  std::string message;  // one line, without the file's name
};

// The bytes a reader walks: memory (fuzzing, tests) or a file (the runner; nothing is read
// before its size is checked, so a file larger than memory fails cleanly).
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual uint64_t size() const = 0;
  // Copies n bytes at offset into out; false on an I/O error (the caller checked the bounds).
  virtual bool read(uint64_t offset, void* out, size_t n) = 0;
};

// Parses a PBTF document. Every count and size is bounded by the bytes actually present before
// anything is allocated or looped over; returns false with the fault on the first broken rule.
bool parse_tensor_file(ByteSource& source, std::vector<TensorSet>* sets, TensorFileFault* fault);
bool parse_tensor_bytes(const uint8_t* data, size_t size, std::vector<TensorSet>* sets, TensorFileFault* fault);

// Reads a PBTF file. Returns false with a one-line reason naming the file on anything missing,
// truncated, inconsistent or too big for the memory available.
bool read_tensor_file(const std::string& path, std::vector<TensorSet>* sets, std::string* error);

// The bytes of sets (each holding the same number of tensors) as a PBTF document; false with a
// reason when a tensor breaks a rule (more than 16 dims, a dtype the format does not carry).
bool encode_tensor_file(const std::vector<TensorSet>& sets, std::string* out, std::string* error);

// Writes sets as a PBTF file.
bool write_tensor_file(const std::string& path, const std::vector<TensorSet>& sets, std::string* error);

// Multiplies into *out; false when the product does not fit in 64 bits.
bool checked_mul(uint64_t a, uint64_t b, uint64_t* out);

// Element count of dims: false when a dim is negative or the product does not fit in 64 bits.
bool checked_numel(const std::vector<int64_t>& dims, uint64_t* numel);

}  // namespace pocket
