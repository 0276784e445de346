#include "verdict/common/flags.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace verdict {

FlagSet::FlagSet(std::string program, std::string summary)
    : program_(std::move(program)), summary_(std::move(summary)) {}

void FlagSet::String(const std::string& name, std::string* target, const std::string& help) {
  flags_.push_back({name, help, *target, false, false, [target](const std::string& v) {
                      *target = v;
                      return Status::Ok();
                    }});
}

void FlagSet::Int(const std::string& name, int64_t* target, const std::string& help) {
  flags_.push_back({name, help, std::to_string(*target), false, false,
                    [name, target](const std::string& v) {
                      char* end = nullptr;
                      errno = 0;
                      long long n = strtoll(v.c_str(), &end, 10);
                      if (v.empty() || *end != '\0' || errno != 0) {
                        return Status::InvalidArgument("--" + name + ": '" + v + "' is not an integer");
                      }
                      *target = n;
                      return Status::Ok();
                    }});
}

void FlagSet::Bool(const std::string& name, bool* target, const std::string& help) {
  flags_.push_back({name, help, *target ? "true" : "false", true, false,
                    [target](const std::string&) {
                      *target = true;
                      return Status::Ok();
                    }});
}

void FlagSet::DurationMs(const std::string& name, int64_t* target, const std::string& help) {
  flags_.push_back({name, help, std::to_string(*target) + "ms", false, false,
                    [name, target](const std::string& v) {
                      Result<int64_t> ms = ParseDurationMs(v);
                      if (!ms.ok()) return Status::InvalidArgument("--" + name + ": " + ms.status().message());
                      *target = *ms;
                      return Status::Ok();
                    }});
}

FlagSet::Flag* FlagSet::Find(const std::string& name) {
  for (Flag& f : flags_) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

bool FlagSet::WasSet(const std::string& name) const {
  for (const Flag& f : flags_) {
    if (f.name == name) return f.set;
  }
  return false;
}

Status FlagSet::Parse(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      help_requested_ = true;
      return Status::Ok();
    }
    if (arg.rfind("--", 0) != 0) return Status::InvalidArgument("unexpected argument '" + arg + "'");
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    Flag* f = Find(name);
    if (f == nullptr) return Status::InvalidArgument("unknown flag --" + name);
    if (f->is_bool) {
      if (has_value && value != "true" && value != "1") {
        if (value == "false" || value == "0") {
          f->set = true;
          continue;  // explicit false: leave the default (false) alone
        }
        return Status::InvalidArgument("--" + name + " takes no value");
      }
    } else if (!has_value) {
      if (i + 1 >= argc) return Status::InvalidArgument("--" + name + " needs a value");
      value = argv[++i];
    }
    VERDICT_RETURN_IF_ERROR(f->assign(value));
    f->set = true;
  }
  return Status::Ok();
}

std::string FlagSet::Usage() const {
  std::ostringstream os;
  os << "usage: " << program_ << " [flags]\n" << summary_ << "\n\nflags:\n";
  for (const Flag& f : flags_) {
    os << "  --" << f.name << (f.is_bool ? "" : " VALUE") << "\n      " << f.help;
    if (!f.is_bool && !f.default_text.empty()) os << " (default: " << f.default_text << ")";
    os << "\n";
  }
  os << "  --help\n      print this help and exit\n";
  return os.str();
}

Result<int64_t> ParseDurationMs(const std::string& text) {
  if (text.empty()) return Status::InvalidArgument("empty duration");
  size_t i = 0;
  while (i < text.size() && isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i == 0) return Status::InvalidArgument("'" + text + "' is not a duration (e.g. 500ms, 30s, 24h)");
  int64_t n = std::strtoll(text.substr(0, i).c_str(), nullptr, 10);
  std::string unit = text.substr(i);
  int64_t mult;
  if (unit.empty() || unit == "ms") mult = 1;
  else if (unit == "s") mult = 1000;
  else if (unit == "m") mult = 60'000;
  else if (unit == "h") mult = 3'600'000;
  else if (unit == "d") mult = 86'400'000;
  else return Status::InvalidArgument("'" + text + "' has an unknown unit (use ms, s, m, h, d)");
  return n * mult;
}

Status ParseHostPort(const std::string& text, std::string* host, int* port, bool allow_zero) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::InvalidArgument("'" + text + "' is not HOST:PORT");
  }
  std::string h = text.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  std::string p = text.substr(colon + 1);
  char* end = nullptr;
  long n = strtol(p.c_str(), &end, 10);
  if (p.empty() || *end != '\0' || n < (allow_zero ? 0 : 1) || n > 65535) {
    return Status::InvalidArgument("'" + text + "' has a bad port");
  }
  *host = h;
  *port = static_cast<int>(n);
  return Status::Ok();
}

bool IsLoopbackHost(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

int HandleFlagParse(FlagSet& flags, int argc, char** argv) {
  Status s = flags.Parse(argc, argv);
  if (flags.help_requested()) {
    fputs(flags.Usage().c_str(), stdout);
    return 0;
  }
  if (!s.ok()) {
    fprintf(stderr, "error: %s (see --help)\n", s.message().c_str());
    return 2;
  }
  return -1;
}

}  // namespace verdict
