// Status and Result<T>: how errors cross module boundaries in verdict.
//
// Exceptions thrown by third-party libraries (libpqxx, nlohmann::json, httplib)
// are caught in the adapter that calls them and turned into a Status. A Status
// is cheap to copy; the message is for humans, the code is for programs.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace verdict {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // malformed or invalid input (HTTP 400)
  kNotFound,         // unknown object (HTTP 404)
  kConflict,         // illegal in the current state (HTTP 409)
  kUnavailable,      // a dependency (log, peer, database) cannot be reached (HTTP 503)
  kInDoubt,          // the outcome may be commit or abort; nobody can tell yet
  kTimeout,          // a deadline passed; the remote side may or may not have acted
  kIoError,          // local storage failed
  kInternal,         // a bug or an impossible state
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status Conflict(std::string m) { return {StatusCode::kConflict, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status InDoubt(std::string m) { return {StatusCode::kInDoubt, std::move(m)}; }
  static Status Timeout(std::string m) { return {StatusCode::kTimeout, std::move(m)}; }
  static Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "code: message", for logs and one-line errors.
  std::string ToString() const;

  // Explicitly drops a status the caller has decided not to act on.
  void IgnoreError() const {}

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    if (status_.ok()) status_ = Status::Internal("Result constructed from OK status");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

#define VERDICT_RETURN_IF_ERROR(expr)       \
  do {                                      \
    ::verdict::Status _st = (expr);         \
    if (!_st.ok()) return _st;              \
  } while (0)

}  // namespace verdict
