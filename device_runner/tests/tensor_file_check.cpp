// tensor_file_check: the C++ reader's verdict on tensor files, one line per file, so the host's
// tests can hold it against the Python reader's on the shared corpus (tests/data/tensorfile/).
//
//   tensor_file_check FILE...   prints  "<file> ok <sets> <tensor>;<tensor>..."  or
//                                       "<file> error <code> <message>"
// where <tensor> is "<dtype>:<d0>x<d1>...:<sha256 of the data>" ("-" for no dims), set-major.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "../src/sha256.h"
#include "../src/tensor_file.h"

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::ifstream file(argv[i], std::ios::binary);
    if (!file) {
      std::printf("%s error io-error cannot open it\n", argv[i]);
      continue;
    }
    const std::vector<uint8_t> blob((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    std::vector<pocket::TensorSet> sets;
    pocket::TensorFileFault fault;
    if (!pocket::parse_tensor_bytes(blob.data(), blob.size(), &sets, &fault)) {
      std::printf("%s error %s %s\n", argv[i], fault.code.c_str(), fault.message.c_str());
      continue;
    }
    std::string line = std::to_string(sets.size()) + " ";
    for (const auto& set : sets) {
      for (const auto& tensor : set) {
        std::string dims;
        for (int64_t d : tensor.dims) dims += (dims.empty() ? "" : "x") + std::to_string(d);
        line += pocket::dtype_name(tensor.dtype) + ":" + (dims.empty() ? "-" : dims) + ":" +
                pocket::sha256_hex(tensor.data.data(), tensor.data.size()) + ";";
      }
    }
    std::printf("%s ok %s\n", argv[i], line.c_str());
  }
  return 0;
}
