// The executorch 1.5.1 wheel ships libexecutorch_threadpool.so but not the header that declares
// its C++ API (extension/threadpool/threadpool.h; only threadpool_guard.h is installed). These are
// the two out-of-line member functions the runner calls, declared with the signatures of that
// release. Only pointers to ThreadPool are used, so its layout does not matter here.
#pragma once

#include <cstddef>
#include <cstdint>

namespace executorch::extension::threadpool {

class ThreadPool {
 public:
  size_t get_thread_count() const;
  // Recreates the pool with `num_threads` workers; must run before any method is loaded, since
  // the XNNPACK delegate takes the pool when it initializes.
  bool _unsafe_reset_threadpool(uint32_t num_threads);
};

ThreadPool* get_threadpool();

}  // namespace executorch::extension::threadpool
