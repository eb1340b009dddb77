#pragma once
// An allocator for large scratch arrays: from 2 MiB up, memory is 2 MiB aligned and advised
// into transparent huge pages. A fresh block of tens of MB then costs a few dozen page
// faults instead of thousands (glibc maps blocks over 32 MB anew on every allocation).
#include <sys/mman.h>

#include <cstdlib>
#include <new>

namespace adapterd::model {

template <class T>
struct huge_page_allocator {
  using value_type = T;
  static constexpr std::size_t huge_page_bytes = std::size_t(2) << 20;

  huge_page_allocator() = default;
  template <class U>
  huge_page_allocator(const huge_page_allocator<U>&) noexcept {}

  T* allocate(std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    if (bytes < huge_page_bytes) {
      if (void* p = std::malloc(bytes))
        return static_cast<T*>(p);
      throw std::bad_alloc();
    }
    const std::size_t rounded = (bytes + huge_page_bytes - 1) / huge_page_bytes * huge_page_bytes;
    void* p = nullptr;
    if (posix_memalign(&p, huge_page_bytes, rounded) != 0)
      throw std::bad_alloc();
    madvise(p, rounded, MADV_HUGEPAGE);  // advice only: without THP the pages stay small
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t) noexcept { std::free(p); }

  template <class U>
  bool operator==(const huge_page_allocator<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const huge_page_allocator<U>&) const noexcept { return false; }
};

}  // namespace adapterd::model
