#include "verdict/common/logging.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "verdict/common/clock.h"

namespace verdict::logging {
namespace {

Level MinLevel() {
  static const Level level = [] {
    const char* env = getenv("VERDICT_LOG_LEVEL");
    if (env == nullptr) return Level::kInfo;
    if (strcmp(env, "debug") == 0) return Level::kDebug;
    if (strcmp(env, "warn") == 0) return Level::kWarn;
    if (strcmp(env, "error") == 0) return Level::kError;
    return Level::kInfo;
  }();
  return level;
}

const char* LevelName(Level l) {
  switch (l) {
    case Level::kDebug: return "DEBUG";
    case Level::kInfo: return "INFO";
    case Level::kWarn: return "WARN";
    case Level::kError: return "ERROR";
  }
  return "?";
}

}  // namespace

bool Enabled(Level level) { return level >= MinLevel(); }

void Write(Level level, std::string_view component, const std::string& message) {
  std::string line = FormatRfc3339(SystemClock::Default()->NowUnixMs());
  line += ' ';
  line += LevelName(level);
  line += ' ';
  line += component;
  line += ": ";
  line += message;
  line += '\n';
  // One write(2) per line keeps lines whole across threads and survives _exit.
  ssize_t ignored = ::write(2, line.data(), line.size());
  (void)ignored;
}

}  // namespace verdict::logging
