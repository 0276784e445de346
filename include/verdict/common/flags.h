// A small command-line flag parser shared by every verdict binary.
//
//   FlagSet flags("verdictd", "the verdict transaction coordinator");
//   std::string listen = "127.0.0.1:7070";
//   flags.String("listen", &listen, "HOST:PORT to serve on");
//   Status s = flags.Parse(argc, argv);
//
// Accepts "--name value" and "--name=value"; booleans take no value.
// "--help" makes Parse return a Status with code kOk-like semantics via
// help_requested(); the caller prints Usage() and exits 0.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "verdict/common/status.h"

namespace verdict {

class FlagSet {
 public:
  FlagSet(std::string program, std::string summary);

  void String(const std::string& name, std::string* target, const std::string& help);
  void Int(const std::string& name, int64_t* target, const std::string& help);
  void Bool(const std::string& name, bool* target, const std::string& help);
  // Durations: "250ms", "30s", "5m", "24h", "7d"; a bare number means milliseconds.
  void DurationMs(const std::string& name, int64_t* target, const std::string& help);

  // Parses argv. Unknown flags, missing values and bad numbers are errors.
  Status Parse(int argc, char** argv);
  bool help_requested() const { return help_requested_; }
  // True when the flag appeared on the command line.
  bool WasSet(const std::string& name) const;
  std::string Usage() const;

 private:
  struct Flag {
    std::string name;
    std::string help;
    std::string default_text;
    bool is_bool = false;
    bool set = false;
    std::function<Status(const std::string&)> assign;
  };
  Flag* Find(const std::string& name);

  std::string program_;
  std::string summary_;
  std::vector<Flag> flags_;
  bool help_requested_ = false;
};

// Parses "250ms" / "30s" / "5m" / "24h" / "7d" / "1500" (ms).
Result<int64_t> ParseDurationMs(const std::string& text);

// Splits "host:port"; the port must be 1..65535 (0 allowed when allow_zero).
Status ParseHostPort(const std::string& text, std::string* host, int* port, bool allow_zero = false);

// True for 127.0.0.0/8, ::1 and "localhost".
bool IsLoopbackHost(const std::string& host);

// Standard main() handling: parse, print usage on --help (exit 0) or the one-line
// error and usage hint on a bad flag (exit 2). Returns -1 when main should go on.
int HandleFlagParse(FlagSet& flags, int argc, char** argv);

}  // namespace verdict
