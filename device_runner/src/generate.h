// Generation mode (--generate P,N): a prompt of P tokens in one execute (prefill), then N decode
// executes of one token each, on a method `forward(tokens int64 [1, T], positions int64 [T]) ->
// logits [1, T, vocab]` whose KV cache lives in the method's mutable buffers (README.md,
// "Generation mode").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <executorch/runtime/executor/method.h>
#include <executorch/runtime/executor/method_meta.h>

#include "tensor_file.h"

namespace pocket {

// What a generation run is asked to do and how long the model's cache is.
struct GenerationPlan {
  int64_t prompt_tokens = 0;
  int64_t decode_tokens = 0;
  bool teacher_forced = false;
  int64_t context = 0;  // the tokens input's upper bound on T: the cache length
};

// The cache length a method can hold (dim 1 of its int64 [1, T] tokens input, whose upper bound
// the export sets to the cache length), after checking the method has the generative signature.
bool generative_context(const executorch::runtime::MethodMeta& meta, int64_t* context, std::string* error);

// Checks the plan against the context and the token stream (length, dtype); one-line reason.
bool check_generation(const GenerationPlan& plan, const HostTensor& stream, std::string* error);

// The int64 token ids of a stream tensor (any shape, row-major).
std::vector<int64_t> stream_ids(const HostTensor& stream);

// The inputs of one step: tokens [1, T] and positions start … start + T - 1.
TensorSet step_inputs(const std::vector<int64_t>& tokens, int64_t start);

// argmax over the last position's logits of output 0 (float32 [1, T, vocab]); -1 with a reason
// when the output is not such a tensor.
int64_t last_argmax(executorch::runtime::Method& method, std::string* error);

}  // namespace pocket
