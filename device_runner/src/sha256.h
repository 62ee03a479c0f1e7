// SHA-256 (FIPS 180-4) of output tensor bytes, so the host can compare outputs across devices
// from the JSON alone without pulling the tensors back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace pocket {

// Lower-case hex digest of `size` bytes at `data`.
std::string sha256_hex(const uint8_t* data, size_t size);

}  // namespace pocket
