// File: tsan_annotations_internal.hpp
//
// Happens-before annotations for ThreadSanitizer at oneTBB hand-offs (never
// installed). Debian's libtbb is not built with TSan, so TSan does not see
// the synchronisation inside it: a task spawned by one thread and stolen by
// another, a pipeline token passed between filters, a flow-graph message, the
// join at the end of an algorithm, and the memory oneTBB recycles for its
// tasks. Without help it reports every such hand-off as a race. So each place
// where one TBB task hands data to another (or back to the caller) says so:
// the writer calls release(x) after its last write, the reader acquire(x)
// before its first read, x being any address both agree on (usually the
// object handed over). Without TSan all of it compiles to nothing.
//
//   int join = 0;                                         // any address
//   tbb::parallel_for(range, tsan::body(&join, [&](const auto& r) { ... }));
//   tsan::acquire(&join);                                 // every body happened before
//
//   tsan::release(batch);   // end of pipeline filter k (a pointer token)
//   tsan::acquire(batch);   // start of filter k + 1
//
//   tsan::release(&v);
//   tbb::parallel_sort(v.begin(), v.end(), tsan::compare(&v, less));
//   tsan::acquire(&v);                                    // the sorted elements
//
//   tsan::combinable<reject_log> logs;                    // for tbb::combinable
#pragma once

#include <oneapi/tbb/combinable.h>
#include <oneapi/tbb/enumerable_thread_specific.h>

#include <memory>
#include <type_traits>
#include <utility>

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define TIXPORT_TSAN 1
// Exported by libtsan, declared by no header: stop / resume checking this
// thread's memory accesses (its synchronisation is still followed).
extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();
#else
#define TIXPORT_TSAN 0
#endif

namespace tixport::tsan {

/// True in a ThreadSanitizer build.
inline constexpr bool kEnabled = TIXPORT_TSAN != 0;

/// Publish this thread's writes so far to whoever later calls acquire(sync).
inline void release([[maybe_unused]] const void* sync) noexcept {
#if TIXPORT_TSAN
  __tsan_release(const_cast<void*>(sync));
#endif
}

/// See every write published by release(sync) before this call.
inline void acquire([[maybe_unused]] const void* sync) noexcept {
#if TIXPORT_TSAN
  __tsan_acquire(const_cast<void*>(sync));
#endif
}

/// Stop checking this thread's memory accesses until unchecked_end().
inline void unchecked_begin() noexcept {
#if TIXPORT_TSAN
  __tsan_ignore_thread_begin();
#endif
}
/// Check this thread's memory accesses again.
inline void unchecked_end() noexcept {
#if TIXPORT_TSAN
  __tsan_ignore_thread_end();
#endif
}

/// A copy of `x`, made without TSan checking the accesses: for small objects
/// that live in memory oneTBB allocates and recycles behind TSan's back (its
/// task storage), where TSan still remembers the accesses of the memory's
/// previous owner. The copy is ours; what it points to is checked as usual.
template <typename T>
T unchecked_copy(const T& x) noexcept {
  static_assert(std::is_trivially_copyable_v<T>);
  unchecked_begin();
  T copy = x;
  unchecked_end();
  return copy;
}

/// What a body gets for an argument oneTBB passes it: a private copy of a
/// message (a parallel_for range, a flow-graph message, a pipeline token),
/// which lives in oneTBB's task storage, written by the sending thread after
/// its body returned and recycled after ours returns, or the argument itself
/// for a mutable reference (flow_control) or anything not trivially copyable.
template <typename Arg>
decltype(auto) private_copy(Arg&& arg) {
  using value = std::remove_cvref_t<Arg>;
  constexpr bool mutable_lvalue = std::is_lvalue_reference_v<Arg> && !std::is_const_v<std::remove_reference_t<Arg>>;
  if constexpr (kEnabled && std::is_trivially_copyable_v<value> && !mutable_lvalue) {
    return unchecked_copy<value>(arg);
  } else {
    return std::forward<Arg>(arg);
  }
}

/// Acquires `sync` when it goes out of scope, also when an exception leaves
/// it: a oneTBB algorithm or graph that throws has still finished every task
/// first, and what its bodies wrote is destroyed during the unwinding.
class acquire_on_exit {
 public:
  explicit acquire_on_exit(const void* sync) noexcept : sync_(sync) {}
  acquire_on_exit(const acquire_on_exit&) = delete;
  acquire_on_exit& operator=(const acquire_on_exit&) = delete;
  ~acquire_on_exit() { acquire(sync_); }

 private:
  const void* sync_;
};

/// Releases `sync` when it goes out of scope, also when an exception leaves it.
class release_on_exit {
 public:
  explicit release_on_exit(const void* sync) noexcept : sync_(sync) {}
  release_on_exit(const release_on_exit&) = delete;
  release_on_exit& operator=(const release_on_exit&) = delete;
  ~release_on_exit() { release(sync_); }

 private:
  const void* sync_;
};

namespace detail {
/// First base of body_fn: member initialisation after it is not checked.
struct unchecked_init {
  unchecked_init() noexcept { unchecked_begin(); }
};
}  // namespace detail

/// A oneTBB body (parallel_for, flow-graph node, pipeline filter) whose
/// hand-offs TSan can see. Fn must capture by reference (trivially copyable).
///  - oneTBB copies a body into every task it splits off, on whichever thread
///    splits, and another thread may run that task: each copy acquires its
///    source and releases itself, and each call acquires the copy it runs on,
///    so the call sees the caller's writes before the algorithm.
///  - Each call releases `join` when it returns (or throws), so the caller
///    sees every call's writes once it has acquired `join` after the
///    algorithm. A serial body (a serial filter or node: one call at a time,
///    not always on the same thread) also sees the calls before it.
///  - The body object lives in oneTBB's recycled task memory, so TSan checks
///    no access to the object itself (a few references): it is built
///    unchecked and each call runs on an unchecked copy. Everything the
///    references reach is checked.
/// Data passed between calls (pipeline tokens, graph messages) still needs
/// its own release/acquire.
template <typename Fn>
class body_fn : private detail::unchecked_init {
  static_assert(std::is_trivially_copyable_v<Fn>, "a oneTBB body here captures by reference");

 public:
  body_fn(const void* join, bool serial, Fn fn) : fn_(fn), join_(join), serial_(serial) { built(); }
  body_fn(const body_fn& other)
      : unchecked_init(), fn_((acquire(&other), other.fn_)), join_(other.join_), serial_(other.serial_) {
    built();
  }
  body_fn& operator=(const body_fn&) = delete;
  ~body_fn() = default;

  template <typename... Args>
  decltype(auto) operator()(Args&&... args) const {
    if constexpr (kEnabled) {
      acquire(this);
      return run(this, unchecked_copy(fn_), unchecked_copy(join_), unchecked_copy(serial_),
                 std::forward<Args>(args)...);
    } else {
      return fn_(std::forward<Args>(args)...);
    }
  }

 private:
  void built() noexcept {
    unchecked_end();
    release(this);
  }

  // One call, on private copies of the members; `shared` is the object oneTBB holds.
  template <typename... Args>
  static decltype(auto) run(const body_fn* shared, const Fn fn, const void* join, bool serial, Args&&... args) {
    const auto done = [&]() noexcept {
      if (serial) release(shared);
      release(join);
    };
    if constexpr (std::is_void_v<std::invoke_result_t<const Fn&, decltype(private_copy(std::declval<Args>()))...>>) {
      try {
        fn(private_copy(std::forward<Args>(args))...);
      } catch (...) {
        done();
        throw;
      }
      done();
    } else {
      try {
        decltype(auto) result = fn(private_copy(std::forward<Args>(args))...);
        done();
        return result;
      } catch (...) {
        done();
        throw;
      }
    }
  }

  Fn fn_;
  const void* join_;
  bool serial_;
};

/// Wrap `fn` as a oneTBB body whose calls may run at the same time (parallel_for,
/// a parallel filter, an unlimited node); each call releases `join` when it ends.
template <typename Fn>
body_fn<Fn> body(const void* join, Fn fn) {
  return body_fn<Fn>(join, false, fn);
}

/// Wrap `fn` as a oneTBB body called one call at a time (a serial filter or node):
/// each call also sees the calls before it.
template <typename Fn>
body_fn<Fn> serial_body(const void* join, Fn fn) {
  return body_fn<Fn>(join, true, fn);
}

/// A comparator for tbb::parallel_sort whose hand-offs TSan can see. The sort
/// runs no code of ours but the comparator: every call acquires `sync` first
/// and releases it last, so a task that picks up a range another thread has
/// just partitioned sees that partition (each partition swap is followed by a
/// comparison). std::sort, which sorts each leaf range, copies the comparator
/// on entry and destroys the copies when it returns: the destructor releases,
/// so the caller sees every element once it has acquired `sync` after the
/// sort. The caller releases `sync` before the sort for the elements' writes.
/// The comparator oneTBB holds is the caller's (on its stack); copies are on
/// the sorting threads' stacks.
template <typename Compare>
class compare_fn {
 public:
  compare_fn(const void* sync, Compare less) : less_(std::move(less)), sync_(sync) { release(this); }
  compare_fn(const compare_fn& other) : less_((acquire(&other), other.less_)), sync_(other.sync_) {
    acquire(sync_);
    release(this);
  }
  compare_fn(compare_fn&& other) noexcept : less_((acquire(&other), std::move(other.less_))), sync_(other.sync_) {
    acquire(sync_);
    release(this);
  }
  compare_fn& operator=(const compare_fn&) = delete;
  compare_fn& operator=(compare_fn&&) = delete;
  ~compare_fn() { release(sync_); }

  template <typename T>
  bool operator()(const T& a, const T& b) const {
    acquire(this);  // before reading sync_: the sort may call a comparator built on another thread
    acquire(sync_);
    const bool result = less_(a, b);
    release(sync_);
    return result;
  }

 private:
  Compare less_;
  const void* sync_;
};

/// Wrap `less` for tbb::parallel_sort; release(sync) before the sort, acquire(sync) after it.
template <typename Compare>
compare_fn<Compare> compare(const void* sync, Compare less) {
  return compare_fn<Compare>(sync, std::move(less));
}

/// tbb::combinable, or under TSan the same per-thread storage with its
/// elements allocated by malloc, which TSan follows, instead of oneTBB's
/// scalable allocator, which recycles memory behind TSan's back.
template <typename T>
using combinable = std::conditional_t<kEnabled, oneapi::tbb::enumerable_thread_specific<T, std::allocator<T>>,
                                      oneapi::tbb::combinable<T>>;

/// tbb::enumerable_thread_specific<T>, with malloc'd elements under TSan (see combinable).
template <typename T>
using per_thread = std::conditional_t<kEnabled, oneapi::tbb::enumerable_thread_specific<T, std::allocator<T>>,
                                      oneapi::tbb::enumerable_thread_specific<T>>;

}  // namespace tixport::tsan
