// File: tsan_annotations_internal.hpp
//
// Happens-before annotations for ThreadSanitizer at oneTBB hand-offs (never
// installed). Debian's libtbb is not built with TSan, so TSan does not see
// the synchronisation inside it: a task spawned by one thread and stolen by
// another, a pipeline token passed between filters, a flow-graph message, the
// join at the end of an algorithm. Without help it reports every such hand-off
// as a race. So each place where one TBB task hands data to another (or back
// to the caller) says so: the writer calls release(x) after its last write,
// the reader acquire(x) before its first read, x being any address both agree
// on (usually the object handed over). Without TSan all of it compiles to
// nothing.
//
//   int join = 0;                                         // any address
//   tbb::parallel_for(range, tsan::body(&join, [&](const auto& r) { ... }));
//   tsan::acquire(&join);                                 // every body happened before
//
//   tsan::release(batch.get());   // end of pipeline filter k
//   tsan::acquire(batch.get());   // start of filter k + 1
//
//   tbb::parallel_sort(v.begin(), v.end(), tsan::compare(&v, less));  // release(&v) first
//   tsan::acquire(&v);                                    // the sorted elements
#pragma once

#include <type_traits>
#include <utility>

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define TIXPORT_TSAN 1
// TSan's dynamic annotations (libtsan exports them; no header declares them).
extern "C" void AnnotateIgnoreReadsBegin(const char* file, int line);
extern "C" void AnnotateIgnoreReadsEnd(const char* file, int line);
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

/// A private copy of a message oneTBB passes to a body (a parallel_for range,
/// a flow-graph message). It lives in oneTBB's task storage, written by the
/// sending thread after its body returned and recycled after ours returns,
/// both behind TSan's back, so the copy itself is not checked: the accesses
/// ignored are those of one shallow copy of oneTBB's own storage, and the body
/// works on the copy. A reference to anything else is passed through.
template <typename Arg>
decltype(auto) private_copy(Arg&& arg) {
  using value = std::remove_cvref_t<Arg>;
  constexpr bool mutable_lvalue = std::is_lvalue_reference_v<Arg> && !std::is_const_v<std::remove_reference_t<Arg>>;
  if constexpr (kEnabled && std::is_trivially_copyable_v<value> && !mutable_lvalue) {
#if TIXPORT_TSAN
    AnnotateIgnoreReadsBegin(__FILE__, __LINE__);
    value copy = arg;
    AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
    return copy;
#endif
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

/// Base of an object that oneTBB places in memory it recycles itself (task
/// objects from its small-object pool, nodes from its scalable allocator):
/// TSan sees neither the free nor the reuse, so the object's destruction
/// releases its address and the next object built there acquires it first.
class recycled_memory {
 protected:
  recycled_memory() noexcept { acquire(this); }
  recycled_memory(const recycled_memory&) noexcept : recycled_memory() {}
  recycled_memory& operator=(const recycled_memory&) = delete;
  ~recycled_memory() { release(this); }
};

/// A oneTBB body (parallel_for, flow-graph node, pipeline filter) whose
/// hand-offs TSan can see. oneTBB copies a parallel_for body into every task
/// it splits off, on whichever thread splits, and another thread may run that
/// task: each copy therefore acquires its source and releases itself, and
/// each call acquires the copy it runs on, so the call sees the caller's
/// writes before the algorithm and the splitter's copy. Each call releases
/// `join` when it returns (or throws), so the caller sees every call's writes
/// once it has acquired `join` after the algorithm. A serial body (a serial
/// pipeline filter or flow-graph node: one call at a time, not always on the
/// same thread) also sees the calls before it. Data passed between calls
/// (pipeline tokens, graph messages) still needs its own release/acquire.
template <typename Fn>
class body_fn : private recycled_memory {
 public:
  body_fn(const void* join, bool serial, Fn fn) : fn_(std::move(fn)), join_(join), serial_(serial) {
    release(this);
  }
  body_fn(const body_fn& other)
      : recycled_memory(), fn_((acquire(&other), other.fn_)), join_(other.join_), serial_(other.serial_) {
    release(this);
  }
  body_fn(body_fn&& other) noexcept
      : recycled_memory(), fn_((acquire(&other), std::move(other.fn_))), join_(other.join_), serial_(other.serial_) {
    release(this);
  }
  body_fn& operator=(const body_fn&) = delete;
  body_fn& operator=(body_fn&&) = delete;
  ~body_fn() = default;

  template <typename... Args>
  decltype(auto) operator()(Args&&... args) const {
    acquire(this);
    // No guard object on the stack: only `this`, which the call has acquired, is read after fn_.
    if constexpr (std::is_void_v<std::invoke_result_t<const Fn&, Args&&...>>) {
      try {
        fn_(private_copy(std::forward<Args>(args))...);
      } catch (...) {
        done();
        throw;
      }
      done();
    } else {
      try {
        decltype(auto) result = fn_(private_copy(std::forward<Args>(args))...);
        done();
        return result;
      } catch (...) {
        done();
        throw;
      }
    }
  }

 private:
  void done() const noexcept {
    if (serial_) release(this);
    release(join_);
  }

  Fn fn_;
  const void* join_;
  bool serial_;
};

/// Wrap `fn` as a oneTBB body whose calls may run at the same time (parallel_for,
/// a parallel filter, an unlimited node); each call releases `join` when it ends.
template <typename Fn>
body_fn<Fn> body(const void* join, Fn fn) {
  return body_fn<Fn>(join, false, std::move(fn));
}

/// Wrap `fn` as a oneTBB body called one call at a time (a serial filter or node):
/// each call also sees the calls before it.
template <typename Fn>
body_fn<Fn> serial_body(const void* join, Fn fn) {
  return body_fn<Fn>(join, true, std::move(fn));
}

/// A comparator for tbb::parallel_sort whose hand-offs TSan can see. The sort
/// runs no code of ours but the comparator: every call acquires `sync` first
/// and releases it last, so a task that picks up a range another thread has
/// just partitioned sees that partition (each partition swap is followed by a
/// comparison). std::sort, which sorts each leaf range, copies the comparator
/// on entry and destroys the copies when it returns: the destructor releases,
/// so the caller sees every element once it has acquired `sync` after the
/// sort. The caller releases `sync` before the sort for the elements' writes.
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

}  // namespace tixport::tsan
