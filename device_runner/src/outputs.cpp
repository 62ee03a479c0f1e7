#include "outputs.h"

#include <cstring>

#include "sha256.h"

namespace pocket {

namespace et = executorch::runtime;

namespace {

template <typename T>
HostTensor scalar(ScalarType dtype, T value) {
  HostTensor out;
  out.dtype = dtype;
  out.data.resize(sizeof(T));
  std::memcpy(out.data.data(), &value, sizeof(T));
  return out;
}

bool copy_tensor(const executorch::aten::Tensor& tensor, size_t index, HostTensor* out, std::string* error) {
  out->dtype = tensor.scalar_type();
  const size_t item = dtype_size(out->dtype);
  if (item == 0) {
    *error = "output " + std::to_string(index) + " has dtype " + dtype_name(out->dtype) +
             ", which a tensor file cannot carry";
    return false;
  }
  const auto sizes = tensor.sizes();
  out->dims.assign(sizes.begin(), sizes.end());
  uint64_t nbytes = 0;
  if (tensor.numel() < 0 || !checked_mul(static_cast<uint64_t>(tensor.numel()), item, &nbytes) || nbytes > SIZE_MAX) {
    *error = "output " + std::to_string(index) + " claims " + std::to_string(tensor.numel()) +
             " elements, which no tensor can hold";
    return false;
  }
  out->data.resize(static_cast<size_t>(nbytes));
  const auto* src = static_cast<const uint8_t*>(tensor.const_data_ptr());
  const auto dim_order = tensor.dim_order();
  bool row_major = true;
  for (size_t d = 0; d < dim_order.size(); ++d) row_major = row_major && dim_order[d] == d;
  if (row_major || tensor.numel() <= 1) {
    if (!out->data.empty()) std::memcpy(out->data.data(), src, out->data.size());
    return true;
  }
  // Another dim order (e.g. channels-last): gather element by element through the strides so the
  // file and the digest always hold row-major bytes, as numpy and the Python runtime see them.
  const auto strides = tensor.strides();
  std::vector<int64_t> index_nd(sizes.size(), 0);
  for (size_t k = 0; k < static_cast<size_t>(tensor.numel()); ++k) {
    int64_t offset = 0;
    for (size_t d = 0; d < sizes.size(); ++d) offset += index_nd[d] * strides[d];
    std::memcpy(out->data.data() + k * item, src + offset * item, item);
    for (size_t d = sizes.size(); d-- > 0;) {
      if (++index_nd[d] < sizes[d]) break;
      index_nd[d] = 0;
    }
  }
  return true;
}

}  // namespace

bool collect_outputs(et::Method& method, TensorSet* outputs, std::string* error) {
  outputs->clear();
  for (size_t i = 0; i < method.outputs_size(); ++i) {
    const et::EValue& value = method.get_output(i);
    HostTensor host;
    if (value.isTensor()) {
      if (!copy_tensor(value.toTensor(), i, &host, error)) return false;
    } else if (value.isInt()) {
      host = scalar<int64_t>(ScalarType::Long, value.toInt());
    } else if (value.isDouble()) {
      host = scalar<double>(ScalarType::Double, value.toDouble());
    } else if (value.isBool()) {
      host = scalar<uint8_t>(ScalarType::Bool, value.toBool() ? 1 : 0);
    } else {
      char tag[32] = "?";
      et::tag_to_string(value.tag, tag, sizeof(tag));
      *error =
          "output " + std::to_string(i) + " is a " + tag + ": pocket_runner reports tensor and scalar outputs only";
      return false;
    }
    outputs->push_back(std::move(host));
  }
  return true;
}

std::vector<OutputSummary> summarize(const TensorSet& outputs) {
  std::vector<OutputSummary> out;
  for (const HostTensor& tensor : outputs) {
    out.push_back({tensor.dims, dtype_name(tensor.dtype), sha256_hex(tensor.data.data(), tensor.data.size())});
  }
  return out;
}

}  // namespace pocket
