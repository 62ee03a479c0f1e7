#include "tensor_file.h"

#include <cstring>
#include <fstream>
#include <iterator>

namespace pocket {
namespace {

constexpr char kMagic[4] = {'P', 'B', 'T', 'F'};
constexpr uint32_t kVersion = 1;
constexpr size_t kMaxDims = 16;

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

}  // namespace

size_t dtype_size(uint8_t code) {
  switch (code) {
    case 0:  // uint8
    case 1:  // int8
    case 11:  // bool
      return 1;
    case 2:  // int16
    case 5:  // float16
      return 2;
    case 3:  // int32
    case 6:  // float32
      return 4;
    case 4:  // int64
    case 7:  // float64
      return 8;
    default:
      return 0;
  }
}

std::string dtype_name(uint8_t code) {
  switch (code) {
    case 0: return "uint8";
    case 1: return "int8";
    case 2: return "int16";
    case 3: return "int32";
    case 4: return "int64";
    case 5: return "float16";
    case 6: return "float32";
    case 7: return "float64";
    case 11: return "bool";
    default: return "scalar_type_" + std::to_string(code);
  }
}

bool read_tensor_file(const std::string& path, std::vector<TensorSet>* sets, std::string* error) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    *error = "cannot open inputs file " + path;
    return false;
  }
  const std::vector<uint8_t> blob(
      (std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const std::string where = "inputs file " + path;
  if (blob.size() < 16) {
    *error = where + " is shorter than its 16-byte header";
    return false;
  }
  if (std::memcmp(blob.data(), kMagic, 4) != 0 || load_le<uint32_t>(&blob[4]) != kVersion) {
    *error = where + " is not a PBTF v1 tensor file";
    return false;
  }
  const uint32_t n_sets = load_le<uint32_t>(&blob[8]);
  const uint32_t per_set = load_le<uint32_t>(&blob[12]);
  size_t offset = 16;
  sets->clear();
  for (uint32_t s = 0; s < n_sets; ++s) {
    TensorSet set;
    for (uint32_t t = 0; t < per_set; ++t) {
      if (blob.size() - offset < 4) {
        *error = where + " is truncated inside a tensor header";
        return false;
      }
      HostTensor tensor;
      tensor.dtype = blob[offset];
      const size_t ndim = blob[offset + 1];
      offset += 4;
      const size_t item = dtype_size(tensor.dtype);
      if (item == 0) {
        *error = where + " has unknown dtype code " + std::to_string(tensor.dtype);
        return false;
      }
      if (ndim > kMaxDims || blob.size() - offset < 8 * ndim + 8) {
        *error = where + " is truncated inside a tensor header";
        return false;
      }
      uint64_t numel = 1;
      for (size_t d = 0; d < ndim; ++d) {
        const int64_t dim = load_le<int64_t>(&blob[offset + 8 * d]);
        if (dim < 0 || dim > (int64_t{1} << 40) || (dim != 0 && numel > (uint64_t{1} << 40) / dim)) {
          *error = where + " has an impossible dimension";
          return false;
        }
        numel *= static_cast<uint64_t>(dim);
        tensor.dims.push_back(dim);
      }
      offset += 8 * ndim;
      const uint64_t nbytes = load_le<uint64_t>(&blob[offset]);
      offset += 8;
      if (nbytes != numel * item || nbytes > blob.size() - offset) {
        *error = where + " is truncated or its sizes disagree";
        return false;
      }
      tensor.data.assign(blob.begin() + offset, blob.begin() + offset + nbytes);
      offset += nbytes;
      set.push_back(std::move(tensor));
    }
    sets->push_back(std::move(set));
  }
  return true;
}

bool write_tensor_file(
    const std::string& path, const std::vector<TensorSet>& sets, std::string* error) {
  std::string out(kMagic, 4);
  store_le<uint32_t>(&out, kVersion);
  store_le<uint32_t>(&out, static_cast<uint32_t>(sets.size()));
  store_le<uint32_t>(&out, static_cast<uint32_t>(sets.empty() ? 0 : sets[0].size()));
  for (const TensorSet& set : sets) {
    for (const HostTensor& tensor : set) {
      out.push_back(static_cast<char>(tensor.dtype));
      out.push_back(static_cast<char>(tensor.dims.size()));
      store_le<uint16_t>(&out, 0);
      for (int64_t dim : tensor.dims) store_le<int64_t>(&out, dim);
      store_le<uint64_t>(&out, tensor.data.size());
      out.append(reinterpret_cast<const char*>(tensor.data.data()), tensor.data.size());
    }
  }
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file.write(out.data(), static_cast<std::streamsize>(out.size())) || !file.flush()) {
    *error = "cannot write outputs file " + path;
    return false;
  }
  return true;
}

}  // namespace pocket
