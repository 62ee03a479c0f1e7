#include "tensor_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>

#include <executorch/runtime/core/exec_aten/util/scalar_type_util.h>

namespace pocket {
namespace {

constexpr char kMagic[4] = {'P', 'B', 'T', 'F'};
constexpr uint32_t kVersion = 1;

// Little-endian reads/writes done byte by byte so the format does not depend on the host's
// endianness or alignment.
template <typename T>
T load_le(const uint8_t* p) {
  uint64_t v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  T out;
  std::memcpy(&out, &v, sizeof(T));
  return out;
}

template <typename T>
void store_le(std::string* out, T value) {
  uint64_t v = 0;
  std::memcpy(&v, &value, sizeof(T));
  for (size_t i = 0; i < sizeof(T); ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

class MemorySource : public ByteSource {
 public:
  MemorySource(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint64_t size() const override { return size_; }
  bool read(uint64_t offset, void* out, size_t n) override {
    if (n) std::memcpy(out, data_ + offset, n);
    return true;
  }

 private:
  const uint8_t* data_;
  size_t size_;
};

class FileSource : public ByteSource {
 public:
  FileSource(std::FILE* file, uint64_t size) : file_(file), size_(size) {}
  uint64_t size() const override { return size_; }
  bool read(uint64_t offset, void* out, size_t n) override {
    // The parser reads front to back, so the stream is only repositioned when it is not there.
    if (offset != position_) {
      if (offset > static_cast<uint64_t>(INT64_MAX) || fseeko(file_, static_cast<off_t>(offset), SEEK_SET) != 0) {
        return false;
      }
      position_ = offset;
    }
    if (n && std::fread(out, 1, n, file_) != n) return false;
    position_ += n;
    return true;
  }

 private:
  std::FILE* file_;
  uint64_t size_;
  uint64_t position_ = 0;
};

bool refuse(TensorFileFault* fault, const char* code, std::string message) {
  fault->code = code;
  fault->message = std::move(message);
  return false;
}

std::string at(uint64_t record, uint64_t offset) {
  return "record " + std::to_string(record) + " (byte " + std::to_string(offset) + ")";
}

// One record at *offset: its header, then its data; advances *offset past it.
bool parse_record(ByteSource& source, uint64_t record, uint64_t* offset, HostTensor* tensor, TensorFileFault* fault) {
  const uint64_t size = source.size();
  const std::string where = at(record, *offset);
  if (size - *offset < 4) return refuse(fault, "truncated-record", where + " is cut inside its header");
  uint8_t head[4];
  if (!source.read(*offset, head, 4)) return refuse(fault, "io-error", "cannot read " + where);
  const uint16_t reserved = load_le<uint16_t>(head + 2);
  if (reserved != 0) {
    return refuse(fault, "reserved-nonzero",
                  where + " has reserved field " + std::to_string(reserved) + ", which must be 0");
  }
  tensor->dtype = static_cast<ScalarType>(head[0]);
  if (!carried_dtype(tensor->dtype)) {
    return refuse(fault, "unknown-dtype",
                  where + " has dtype code " + std::to_string(head[0]) + ", which a tensor file does not carry");
  }
  const size_t ndim = head[1];
  if (ndim > kTensorFileMaxDims) {
    return refuse(fault, "too-many-dims",
                  where + " has " + std::to_string(ndim) + " dims, more than " + std::to_string(kTensorFileMaxDims));
  }
  const uint64_t header_bytes = kTensorRecordMinBytes + 8 * ndim;
  if (size - *offset < header_bytes) {
    return refuse(fault, "truncated-record", where + " is cut inside its header");
  }
  uint8_t rest[8 * kTensorFileMaxDims + 8];
  if (!source.read(*offset + 4, rest, header_bytes - 4)) {
    return refuse(fault, "io-error", "cannot read " + where);
  }
  tensor->dims.resize(ndim);
  for (size_t d = 0; d < ndim; ++d) {
    const int64_t dim = load_le<int64_t>(rest + 8 * d);
    if (dim < 0) {
      return refuse(fault, "negative-dim", where + " has dim " + std::to_string(d) + " = " + std::to_string(dim));
    }
    if (dim > kTensorFileMaxDim) {
      return refuse(fault, "dim-too-large",
                    where + " has dim " + std::to_string(d) + " = " + std::to_string(dim) + ", more than 2^31 - 1");
    }
    tensor->dims[d] = dim;
  }
  // The non-zero dims times the element size must stay below 2^63 bytes even when a zero dim
  // leaves the tensor empty (numpy, on the host, cannot shape such an array).
  uint64_t span = dtype_size(tensor->dtype);
  bool empty = false;
  for (int64_t dim : tensor->dims) {
    if (dim == 0) {
      empty = true;
    } else if (!checked_mul(span, static_cast<uint64_t>(dim), &span) || span > kTensorFileMaxBytes) {
      return refuse(fault, "too-many-elements", where + " has dims spanning more than 2^63 - 1 bytes");
    }
  }
  const uint64_t nbytes = load_le<uint64_t>(rest + 8 * ndim);
  const uint64_t expected = empty ? 0 : span;
  if (nbytes != expected) {
    return refuse(fault, "size-mismatch",
                  where + " says " + std::to_string(nbytes) + " data bytes but its dims and dtype make " +
                      std::to_string(expected));
  }
  *offset += header_bytes;
  if (nbytes > size - *offset) {
    return refuse(fault, "truncated-data",
                  where + " needs " + std::to_string(nbytes) + " data bytes but only " +
                      std::to_string(size - *offset) + " remain");
  }
  try {
    tensor->data.resize(static_cast<size_t>(nbytes));
  } catch (const std::bad_alloc&) {
    return refuse(fault, "out-of-memory",
                  where + " needs " + std::to_string(nbytes) + " bytes of memory, more than is available");
  }
  if (!source.read(*offset, tensor->data.data(), static_cast<size_t>(nbytes))) {
    return refuse(fault, "io-error", "cannot read the data of " + where);
  }
  *offset += nbytes;
  return true;
}

}  // namespace

bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_mul_overflow(a, b, out); }

bool checked_numel(const std::vector<int64_t>& dims, uint64_t* numel) {
  uint64_t n = 1;
  bool overflow = false, empty = false;
  for (int64_t dim : dims) {
    if (dim < 0) return false;
    if (dim == 0) empty = true;
    if (!overflow && !checked_mul(n, static_cast<uint64_t>(dim), &n)) overflow = true;
  }
  if (empty) {  // a zero dim makes the product 0 whatever the others multiply to
    *numel = 0;
    return true;
  }
  if (overflow) return false;
  *numel = n;
  return true;
}

bool carried_dtype(ScalarType type) {
  switch (type) {
    case ScalarType::Byte:
    case ScalarType::Char:
    case ScalarType::Short:
    case ScalarType::Int:
    case ScalarType::Long:
    case ScalarType::Half:
    case ScalarType::Float:
    case ScalarType::Double:
    case ScalarType::Bool: return true;
    default: return false;
  }
}

size_t dtype_size(ScalarType type) { return carried_dtype(type) ? executorch::runtime::elementSize(type) : 0; }

std::string dtype_name(ScalarType type) {
  switch (type) {
    case ScalarType::Byte: return "uint8";
    case ScalarType::Char: return "int8";
    case ScalarType::Short: return "int16";
    case ScalarType::Int: return "int32";
    case ScalarType::Long: return "int64";
    case ScalarType::Half: return "float16";
    case ScalarType::Float: return "float32";
    case ScalarType::Double: return "float64";
    case ScalarType::Bool: return "bool";
    default: return "scalar_type_" + std::to_string(static_cast<int>(type));
  }
}

bool parse_tensor_file(ByteSource& source, std::vector<TensorSet>* sets, TensorFileFault* fault) {
  sets->clear();
  const uint64_t size = source.size();
  if (size < kTensorFileHeaderBytes) {
    return refuse(fault, "short-header", "it has " + std::to_string(size) + " bytes, fewer than its 16-byte header");
  }
  uint8_t header[kTensorFileHeaderBytes];
  if (!source.read(0, header, sizeof(header))) return refuse(fault, "io-error", "cannot read its header");
  if (std::memcmp(header, kMagic, 4) != 0) return refuse(fault, "bad-magic", "it does not start with PBTF");
  const uint32_t version = load_le<uint32_t>(header + 4);
  if (version != kVersion) {
    return refuse(fault, "bad-version", "it is PBTF version " + std::to_string(version) + ", not 1");
  }
  const uint64_t n_sets = load_le<uint32_t>(header + 8);
  const uint64_t per_set = load_le<uint32_t>(header + 12);
  if ((n_sets == 0) != (per_set == 0)) {
    return refuse(fault, "zero-count",
                  "it claims " + std::to_string(n_sets) + " sets of " + std::to_string(per_set) +
                      " tensors: both counts are 0 or neither is");
  }
  // Both counts are at most 2^32 - 1, so their product fits in 64 bits.
  const uint64_t records = n_sets * per_set;
  if (records > (size - kTensorFileHeaderBytes) / kTensorRecordMinBytes) {
    return refuse(fault, "counts-exceed-bytes",
                  "it claims " + std::to_string(n_sets) + " sets of " + std::to_string(per_set) +
                      " tensors, more than its " + std::to_string(size) + " bytes can hold");
  }
  uint64_t offset = kTensorFileHeaderBytes;
  // Nothing is reserved from the counts: memory grows only with records actually read.
  try {
    for (uint64_t s = 0; s < n_sets; ++s) {
      TensorSet set;
      for (uint64_t t = 0; t < per_set; ++t) {
        HostTensor tensor;
        if (!parse_record(source, s * per_set + t, &offset, &tensor, fault)) return false;
        set.push_back(std::move(tensor));
      }
      sets->push_back(std::move(set));
    }
  } catch (const std::bad_alloc&) {
    sets->clear();
    return refuse(fault, "out-of-memory",
                  "not enough memory to hold its records (at byte " + std::to_string(offset) + ")");
  }
  if (offset != size) {
    return refuse(fault, "trailing-bytes", std::to_string(size - offset) + " bytes follow its last record");
  }
  return true;
}

bool parse_tensor_bytes(const uint8_t* data, size_t size, std::vector<TensorSet>* sets, TensorFileFault* fault) {
  MemorySource source(data, size);
  return parse_tensor_file(source, sets, fault);
}

bool read_tensor_file(const std::string& path, std::vector<TensorSet>* sets, std::string* error) {
  const std::string where = "inputs file " + path;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  struct stat info;
  if (!file || fstat(fileno(file.get()), &info) != 0) {
    *error = "cannot open " + where + ": " + std::strerror(errno);
    return false;
  }
  if (!S_ISREG(info.st_mode)) {
    *error = where + " is not a regular file";
    return false;
  }
  FileSource source(file.get(), static_cast<uint64_t>(info.st_size));
  TensorFileFault fault;
  if (!parse_tensor_file(source, sets, &fault)) {
    sets->clear();
    const bool resources = fault.code == "out-of-memory" || fault.code == "io-error";
    *error = (resources ? "cannot read " + where : where + " is not a valid tensor file") + " (" + fault.code +
             "): " + fault.message;
    return false;
  }
  return true;
}

bool encode_tensor_file(const std::vector<TensorSet>& sets, std::string* out, std::string* error) {
  const size_t per_set = sets.empty() ? 0 : sets[0].size();
  if (sets.size() > UINT32_MAX || per_set > UINT32_MAX || (per_set == 0 && !sets.empty())) {
    *error = "cannot write " + std::to_string(sets.size()) + " sets of " + std::to_string(per_set) +
             " tensors in a tensor file";
    return false;
  }
  out->assign(kMagic, 4);
  store_le<uint32_t>(out, kVersion);
  store_le<uint32_t>(out, static_cast<uint32_t>(sets.size()));
  store_le<uint32_t>(out, static_cast<uint32_t>(per_set));
  for (size_t s = 0; s < sets.size(); ++s) {
    if (sets[s].size() != per_set) {
      *error = "set " + std::to_string(s) + " holds " + std::to_string(sets[s].size()) + " tensors, set 0 holds " +
               std::to_string(per_set);
      return false;
    }
    for (size_t t = 0; t < per_set; ++t) {
      const HostTensor& tensor = sets[s][t];
      uint64_t numel = 0, nbytes = 0;
      bool dims_ok = tensor.dims.size() <= kTensorFileMaxDims;
      for (int64_t dim : tensor.dims) dims_ok = dims_ok && dim >= 0 && dim <= kTensorFileMaxDim;
      if (!carried_dtype(tensor.dtype) || !dims_ok || !checked_numel(tensor.dims, &numel) ||
          !checked_mul(numel, dtype_size(tensor.dtype), &nbytes) || nbytes > kTensorFileMaxBytes ||
          nbytes != tensor.data.size()) {
        *error = "tensor " + std::to_string(t) + " of set " + std::to_string(s) + " (" + dtype_name(tensor.dtype) +
                 ", " + std::to_string(tensor.dims.size()) + " dims) cannot be carried in a tensor file";
        return false;
      }
      out->push_back(static_cast<char>(tensor.dtype));
      out->push_back(static_cast<char>(tensor.dims.size()));
      store_le<uint16_t>(out, 0);
      for (int64_t dim : tensor.dims) store_le<int64_t>(out, dim);
      store_le<uint64_t>(out, nbytes);
      out->append(reinterpret_cast<const char*>(tensor.data.data()), tensor.data.size());
    }
  }
  return true;
}

bool write_tensor_file(const std::string& path, const std::vector<TensorSet>& sets, std::string* error) {
  std::string out;
  if (!encode_tensor_file(sets, &out, error)) {
    *error = "cannot write outputs file " + path + ": " + *error;
    return false;
  }
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!file || std::fwrite(out.data(), 1, out.size(), file.get()) != out.size() || std::fflush(file.get()) != 0) {
    *error = "cannot write outputs file " + path + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

}  // namespace pocket
