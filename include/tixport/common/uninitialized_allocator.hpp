// File: uninitialized_allocator.hpp
//
// std::allocator, except that resize() and the sized constructor leave new elements of an
// implicit-lifetime type (C++20 [basic.types]: trivially copyable views and PODs) unwritten
// instead of zeroing them. For buffers that are sized first and filled after: the CSV
// reader's field buffer (a few MB per chunk, every chunk) spent ~2% of a run zeroing views it
// overwrote at once.
//
//   std::vector<std::string_view, uninitialized_allocator<std::string_view>> buffer;
//   buffer.resize(n);  // no stores: the pages are touched only where the parser writes
#pragma once

#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace tixport {

template <typename T>
struct uninitialized_allocator : std::allocator<T> {
  using value_type = T;
  template <typename U>
  struct rebind {
    using other = uninitialized_allocator<U>;
  };

  uninitialized_allocator() = default;
  template <typename U>
  uninitialized_allocator(const uninitialized_allocator<U>&) noexcept {}  // NOLINT: rebinding

  /// Value-initialisation becomes nothing: the storage from allocate() already holds an
  /// object of an implicit-lifetime type, with an unspecified value until it is assigned.
  template <typename U>
  void construct(U*) noexcept {
    static_assert(std::is_trivially_copyable_v<U> && std::is_trivially_destructible_v<U>,
                  "only for implicit-lifetime element types");
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

template <typename T, typename U>
bool operator==(const uninitialized_allocator<T>&, const uninitialized_allocator<U>&) noexcept {
  return true;
}

}  // namespace tixport
