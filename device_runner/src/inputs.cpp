#include "inputs.h"

#include <cstring>
#include <new>

#include <executorch/runtime/core/exec_aten/exec_aten.h>

namespace pocket {

namespace et = executorch::runtime;
using executorch::aten::DimOrderType;
using executorch::aten::SizesType;
using executorch::aten::StridesType;
using executorch::aten::Tensor;
using executorch::aten::TensorImpl;

namespace {

// splitmix64: tiny, well-mixed and trivially reproducible on the host.
uint64_t next_random(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// IEEE half bits of a float, rounding to nearest even (what numpy's astype(float16) does).
uint16_t float_to_half(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  const int exponent = static_cast<int>((bits >> 23) & 0xff) - 127 + 15;
  uint32_t mantissa = bits & 0x7fffff;
  if (((bits >> 23) & 0xff) == 0) return sign;  // float zero or subnormal: below half's range
  if (exponent >= 31) return sign | 0x7c00;     // the generator never gets here (|x| < 1)
  if (exponent <= 0) {                          // half subnormal
    if (exponent < -10) return sign;
    mantissa |= 0x800000;
    const int shift = 14 - exponent;
    uint32_t half = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rest > mid || (rest == mid && (half & 1))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = (static_cast<uint32_t>(exponent) << 10) | (mantissa >> 13);
  const uint32_t rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) ++half;  // a carry rounds into the exponent
  return static_cast<uint16_t>(sign | half);
}

template <typename T>
void put(std::vector<uint8_t>* data, size_t index, T value) {
  std::memcpy(data->data() + index * sizeof(T), &value, sizeof(T));
}

std::string shape_text(const std::vector<int64_t>& dims) {
  std::string out = "[";
  for (size_t i = 0; i < dims.size(); ++i) out += (i ? ", " : "") + std::to_string(dims[i]);
  return out + "]";
}

}  // namespace

bool check_input_metadata(const et::MethodMeta& meta, std::string* error) {
  for (size_t i = 0; i < meta.num_inputs(); ++i) {
    auto tag = meta.input_tag(i);
    if (!tag.ok() || !meta.input_tensor_meta(i).ok()) {
      *error = "cannot read the metadata of input " + std::to_string(i) + ": the .pte is corrupt";
      return false;
    }
    if (tag.get() != et::Tag::Tensor) {
      *error = "input " + std::to_string(i) + " is not a tensor: pocket_runner feeds tensor inputs only";
      return false;
    }
  }
  return true;
}

bool make_random_inputs(const et::MethodMeta& meta, uint64_t seed, TensorSet* set, std::string* error) {
  uint64_t state = seed;
  set->clear();
  for (size_t i = 0; i < meta.num_inputs(); ++i) {
    auto info = meta.input_tensor_meta(i);  // checked by check_input_metadata
    HostTensor tensor;
    tensor.dtype = info->scalar_type();
    const size_t item = dtype_size(tensor.dtype);
    if (item == 0) {
      *error = "input " + std::to_string(i) + " has dtype " + dtype_name(tensor.dtype) +
               ", which random inputs do not cover: pass --inputs";
      return false;
    }
    // The dims come from the program, which may be corrupt or crafted: each must be a
    // non-negative int32 and their product, in bytes, must fit in 64 bits and in memory.
    for (int32_t dim : info->sizes()) tensor.dims.push_back(dim);
    uint64_t numel = 0, nbytes = 0;
    if (!checked_numel(tensor.dims, &numel) || !checked_mul(numel, item, &nbytes) ||
        nbytes > static_cast<uint64_t>(SIZE_MAX)) {
      *error = "input " + std::to_string(i) + " has shape " + shape_text(tensor.dims) +
               ", which no tensor can have: the .pte is corrupt";
      return false;
    }
    try {
      tensor.data.resize(static_cast<size_t>(nbytes));
    } catch (const std::bad_alloc&) {
      *error = "input " + std::to_string(i) + " of shape " + shape_text(tensor.dims) + " needs " +
               std::to_string(nbytes) + " bytes, more memory than is available";
      return false;
    }
    for (size_t k = 0; k < numel; ++k) {
      const uint64_t r = next_random(&state);
      // Floats: uniform in [-1, 1) on a 2^-23 grid (exact in float32); integers: [0, 10), safe as
      // indices for any embedding; bool: the top bit.
      const float f = static_cast<float>(r >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f;
      const int64_t n = static_cast<int64_t>((r >> 32) % 10);
      switch (tensor.dtype) {
        case ScalarType::Byte: put<uint8_t>(&tensor.data, k, static_cast<uint8_t>(n)); break;
        case ScalarType::Char: put<int8_t>(&tensor.data, k, static_cast<int8_t>(n)); break;
        case ScalarType::Short: put<int16_t>(&tensor.data, k, static_cast<int16_t>(n)); break;
        case ScalarType::Int: put<int32_t>(&tensor.data, k, static_cast<int32_t>(n)); break;
        case ScalarType::Long: put<int64_t>(&tensor.data, k, n); break;
        case ScalarType::Half: put<uint16_t>(&tensor.data, k, float_to_half(f)); break;
        case ScalarType::Float: put<float>(&tensor.data, k, f); break;
        case ScalarType::Double: put<double>(&tensor.data, k, static_cast<double>(f)); break;
        case ScalarType::Bool: put<uint8_t>(&tensor.data, k, static_cast<uint8_t>(r >> 63)); break;
        default: break;  // dtype_size refused every other type above
      }
    }
    set->push_back(std::move(tensor));
  }
  return true;
}

bool check_inputs(const et::MethodMeta& meta, const std::vector<TensorSet>& sets, std::string* error) {
  if (sets.empty()) {
    *error = "the inputs file holds no input set";
    return false;
  }
  for (size_t s = 0; s < sets.size(); ++s) {
    if (sets[s].size() != meta.num_inputs()) {
      *error = "input set " + std::to_string(s) + " holds " + std::to_string(sets[s].size()) + " tensors but method '" +
               meta.name() + "' takes " + std::to_string(meta.num_inputs()) + " inputs";
      return false;
    }
    for (size_t i = 0; i < sets[s].size(); ++i) {
      auto info = meta.input_tensor_meta(i);  // checked by check_input_metadata
      const ScalarType want = info->scalar_type();
      if (sets[s][i].dtype != want) {
        *error = "input " + std::to_string(i) + " of set " + std::to_string(s) + " is " + dtype_name(sets[s][i].dtype) +
                 " but the method takes " + dtype_name(want);
        return false;
      }
    }
  }
  return true;
}

struct BoundInputs::View {
  std::vector<SizesType> sizes;
  std::vector<DimOrderType> dim_order;
  std::vector<StridesType> strides;
  std::unique_ptr<TensorImpl> impl;
};

bool BoundInputs::bind(et::Method& method, const TensorSet& set, std::string* error) {
  views_.clear();
  for (size_t i = 0; i < set.size(); ++i) {
    const HostTensor& host = set[i];
    auto view = std::make_shared<View>();
    const size_t ndim = host.dims.size();
    view->sizes.resize(ndim);
    view->dim_order.resize(ndim);
    view->strides.resize(ndim);
    // ExecuTorch holds sizes and strides as int32: a tensor whose dims or strides do not fit
    // cannot be bound (the reader already bounded each dim; a stride is a product of dims).
    uint64_t stride = 1;
    for (size_t d = ndim; d-- > 0;) {
      if (host.dims[d] < 0 || host.dims[d] > INT32_MAX || stride > INT32_MAX) {
        *error = "input " + std::to_string(i) + " of shape " + shape_text(host.dims) +
                 " is too large for ExecuTorch's int32 sizes and strides";
        return false;
      }
      view->sizes[d] = static_cast<SizesType>(host.dims[d]);
      view->dim_order[d] = static_cast<DimOrderType>(d);
      view->strides[d] = static_cast<StridesType>(stride);
      if (!checked_mul(stride, static_cast<uint64_t>(host.dims[d]), &stride)) stride = UINT64_MAX;
    }
    view->impl = std::make_unique<TensorImpl>(host.dtype, static_cast<ssize_t>(ndim), view->sizes.data(),
                                              const_cast<uint8_t*>(host.data.data()), view->dim_order.data(),
                                              view->strides.data());
    const et::Error status = method.set_input(et::EValue(Tensor(view->impl.get())), i);
    if (status != et::Error::Ok) {
      std::string expected;
      auto info = method.method_meta().input_tensor_meta(i);
      if (info.ok()) {
        std::vector<int64_t> dims(info->sizes().begin(), info->sizes().end());
        expected = " (the method expects " + shape_text(dims) + ")";
      }
      *error = "the method rejected input " + std::to_string(i) + " of shape " + shape_text(host.dims) + expected +
               ": " + et::to_string(status);
      return false;
    }
    views_.push_back(std::move(view));
  }
  return true;
}

et::Error BoundInputs::reapply(et::Method& method) const {
  for (size_t i = 0; i < views_.size(); ++i) {
    const et::Error status = method.set_input(et::EValue(Tensor(views_[i]->impl.get())), i);
    if (status != et::Error::Ok) return status;
  }
  return et::Error::Ok;
}

}  // namespace pocket
