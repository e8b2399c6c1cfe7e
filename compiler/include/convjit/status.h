// Status and StatusOr: how user errors travel through convjit without exceptions.
//
// Contract: every public function that can fail on user input (a bad spec, a
// bad file, an unsupported target) returns a Status or StatusOr<T> whose
// message names the offending value and the rule it breaks. Broken internal
// invariants are not user errors: they abort through CONVJIT_CHECK.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

namespace convjit {

enum class StatusCode {
  kOk = 0,
  kInvalidSpec,      // the convolution spec breaks a semantic rule
  kInvalidArgument,  // a malformed descriptor, option, buffer or file
  kNotFound,         // a file or symbol that should exist does not
  kUnsupported,      // valid input that this build or target cannot serve
  kUnavailable,      // hardware the request needs is absent (no CUDA device)
  kInternal,         // a failure inside Halide, LLVM, the linker or the loader
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok_status() { return Status(); }
  static Status invalid_spec(std::string m) { return {StatusCode::kInvalidSpec, std::move(m)}; }
  static Status invalid_argument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status not_found(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
  static Status unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// A value or the Status explaining why there is none.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : state_(std::move(value)) {}                   // NOLINT: implicit by design
  StatusOr(Status status) : state_(std::move(status)) {             // NOLINT: implicit by design
    if (std::get<Status>(state_).ok()) {
      state_ = Status::internal("StatusOr constructed from an OK status without a value");
    }
  }

  bool ok() const { return std::holds_alternative<T>(state_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(state_);
  }
  const T& value() const& { return std::get<T>(state_); }
  T& value() & { return std::get<T>(state_); }
  T&& value() && { return std::get<T>(std::move(state_)); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  std::variant<T, Status> state_;
};

}  // namespace convjit

// Aborts with file, line and message when an internal invariant is broken.
// Never used for user input: that is what Status is for.
#define CONVJIT_CHECK(cond, msg)                                                        \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "convjit internal error at %s:%d: %s (%s)\n", __FILE__,       \
                   __LINE__, #cond, std::string(msg).c_str());                          \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

// Returns early from the enclosing function with a non-OK Status.
#define CONVJIT_RETURN_IF_ERROR(expr)          \
  do {                                         \
    ::convjit::Status convjit_status_ = (expr); \
    if (!convjit_status_.ok()) return convjit_status_; \
  } while (0)
