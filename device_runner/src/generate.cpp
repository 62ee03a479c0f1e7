#include "generate.h"

#include <cstring>

#include <executorch/runtime/core/exec_aten/exec_aten.h>

namespace et = executorch::runtime;
using executorch::aten::ScalarType;

namespace pocket {

bool generative_context(const et::MethodMeta& meta, int64_t* context, std::string* error) {
  const char* contract = "generation needs a method forward(tokens int64 [1, T], positions int64 [T])";
  if (meta.num_inputs() != 2 || meta.num_outputs() < 1) {
    *error = std::string(contract) + "; this one has " + std::to_string(meta.num_inputs()) + " inputs";
    return false;
  }
  auto tokens = meta.input_tensor_meta(0);
  auto positions = meta.input_tensor_meta(1);
  if (!tokens.ok() || !positions.ok() || tokens->scalar_type() != ScalarType::Long ||
      positions->scalar_type() != ScalarType::Long || tokens->sizes().size() != 2 || positions->sizes().size() != 1) {
    *error = std::string(contract) + "; this one's inputs have other dtypes or ranks";
    return false;
  }
  *context = tokens->sizes()[1];
  return true;
}

bool check_generation(const GenerationPlan& plan, const HostTensor& stream, std::string* error) {
  if (plan.prompt_tokens + plan.decode_tokens > plan.context) {
    *error = "prompt " + std::to_string(plan.prompt_tokens) + " + decode " + std::to_string(plan.decode_tokens) +
             " tokens exceed the model's context of " + std::to_string(plan.context) +
             " (its KV cache): ask for fewer tokens";
    return false;
  }
  if (stream.dtype != ScalarType::Long) {
    *error = "the token stream (input 0 of set 0) is " + dtype_name(stream.dtype) + ", not int64";
    return false;
  }
  const auto have = static_cast<int64_t>(stream.data.size() / sizeof(int64_t));
  const int64_t need = plan.prompt_tokens + (plan.teacher_forced ? plan.decode_tokens : 0);
  if (have < need) {
    *error = "the token stream holds " + std::to_string(have) + " tokens; " + std::to_string(need) +
             " are needed (the prompt" + (plan.teacher_forced ? " and every teacher-forced decode token)" : ")");
    return false;
  }
  return true;
}

std::vector<int64_t> stream_ids(const HostTensor& stream) {
  std::vector<int64_t> ids(stream.data.size() / sizeof(int64_t));
  if (!ids.empty()) std::memcpy(ids.data(), stream.data.data(), ids.size() * sizeof(int64_t));
  return ids;
}

TensorSet step_inputs(const std::vector<int64_t>& tokens, int64_t start) {
  const auto t = static_cast<int64_t>(tokens.size());
  HostTensor ids{ScalarType::Long, {1, t}, {}};
  ids.data.resize(tokens.size() * sizeof(int64_t));
  if (!tokens.empty()) std::memcpy(ids.data.data(), tokens.data(), ids.data.size());
  HostTensor positions{ScalarType::Long, {t}, std::vector<uint8_t>(tokens.size() * sizeof(int64_t))};
  for (int64_t i = 0; i < t; ++i) {
    const int64_t p = start + i;
    std::memcpy(positions.data.data() + i * sizeof(int64_t), &p, sizeof(p));
  }
  return {ids, positions};
}

int64_t last_argmax(et::Method& method, std::string* error) {
  const et::EValue& value = method.get_output(0);
  if (!value.isTensor() || value.toTensor().scalar_type() != ScalarType::Float || value.toTensor().dim() != 3 ||
      value.toTensor().size(2) < 1) {
    *error = "output 0 is not float32 logits [1, T, vocab]";
    return -1;
  }
  const auto& logits = value.toTensor();
  const int64_t vocab = logits.size(2);
  const float* row = logits.const_data_ptr<float>() + (logits.size(1) - 1) * vocab;
  int64_t best = 0;
  for (int64_t v = 1; v < vocab; ++v) {
    if (row[v] > row[best]) best = v;
  }
  return best;
}

}  // namespace pocket
