// Copies a method's outputs out of the runtime's memory so they can be digested and written back.
#pragma once

#include <string>
#include <vector>

#include <executorch/runtime/executor/method.h>

#include "report.h"
#include "tensor_file.h"

namespace pocket {

// Copies every output of the last execute as a row-major HostTensor (scalars become 0-d tensors).
bool collect_outputs(executorch::runtime::Method& method, TensorSet* outputs, std::string* error);

// Shape, dtype and SHA-256 of the raw row-major bytes of each output.
std::vector<OutputSummary> summarize(const TensorSet& outputs);

}  // namespace pocket
