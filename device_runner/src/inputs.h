// Input sets for a method: read from a PBTF file or generated from the method's metadata, checked
// against that metadata, and bound to the method as ExecuTorch tensors.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <executorch/runtime/executor/method.h>
#include <executorch/runtime/executor/method_meta.h>

#include "tensor_file.h"

namespace pocket {

// Checks that every input of the method is a tensor whose metadata reads back; a failure means a
// corrupt program or a model pocket_runner cannot feed.
bool check_input_metadata(const executorch::runtime::MethodMeta& meta, std::string* error);

// Deterministic inputs for every tensor input of `meta` (one set); the generator is documented in
// README.md so the host can reproduce the exact values.
bool make_random_inputs(const executorch::runtime::MethodMeta& meta, uint64_t seed, TensorSet* set, std::string* error);

// Checks each set's tensor count and dtypes against the method's inputs.
bool check_inputs(const executorch::runtime::MethodMeta& meta, const std::vector<TensorSet>& sets, std::string* error);

// ExecuTorch views of one input set. The method may keep pointers into these (inputs that are not
// memory-planned are used in place), so a BoundInputs must outlive every execute that uses it, and
// the TensorSet it views must not change meanwhile.
//
// Binding once is not enough for repeated executes: a memory-planned input is copied into the
// planned arena, and the planner may give the input's bytes to a later intermediate or output once
// the input is dead (an embedding's int64 indices overwritten by its float result, for one). After
// an execute the input slot can hold anything, so `reapply` must run before every execute.
class BoundInputs {
 public:
  // Sets every input of `method` from `set`; on failure returns false with a one-line reason.
  bool bind(executorch::runtime::Method& method, const TensorSet& set, std::string* error);

  // Sets the bound inputs again (copying memory-planned ones back into the arena); the views were
  // accepted by `bind`, so this fails only if the method changed underneath.
  executorch::runtime::Error reapply(executorch::runtime::Method& method) const;

 private:
  struct View;
  std::vector<std::shared_ptr<View>> views_;
};

}  // namespace pocket
