// Minimal leveled logging to stderr, one line per call. Thread-safe.
// VERDICT_LOG_LEVEL=debug|info|warn|error (default info).
#pragma once

#include <sstream>
#include <string_view>

namespace verdict::logging {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

bool Enabled(Level level);
void Write(Level level, std::string_view component, const std::string& message);

}  // namespace verdict::logging

#define VLOG_AT(level, component, expr)                                  \
  do {                                                                   \
    if (::verdict::logging::Enabled(level)) {                            \
      std::ostringstream _os;                                            \
      _os << expr;                                                       \
      ::verdict::logging::Write(level, component, _os.str());            \
    }                                                                    \
  } while (0)

#define VLOG_DEBUG(component, expr) VLOG_AT(::verdict::logging::Level::kDebug, component, expr)
#define VLOG_INFO(component, expr) VLOG_AT(::verdict::logging::Level::kInfo, component, expr)
#define VLOG_WARN(component, expr) VLOG_AT(::verdict::logging::Level::kWarn, component, expr)
#define VLOG_ERROR(component, expr) VLOG_AT(::verdict::logging::Level::kError, component, expr)
