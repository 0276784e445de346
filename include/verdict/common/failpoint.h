// Failpoints: named places where tests inject crashes, delays and errors.
//
// Configured once per process from the VERDICT_FAILPOINTS environment variable:
//   VERDICT_FAILPOINTS="coordinator.after_decision_log=crash;participant.before_commit_apply=sleep(200)"
// Actions:
//   crash      _exit(137) at once: no destructors, no buffered writes flushed.
//   sleep(MS)  block the calling thread MS milliseconds, then continue.
//   error      the failpoint returns Status::IoError; the caller treats it as the
//              failure of the operation it guards.
// An optional count prefix fires the action only on the Nth hit: "3*crash".
//
// Thread-safety: Hit() may be called from any thread. The registry is per
// process and read-only after Configure(); hit counters are atomic.
#pragma once

#include <string>
#include <string_view>

#include "verdict/common/status.h"

namespace verdict::failpoint {

// Replaces the configuration. Returns InvalidArgument for a malformed spec.
Status Configure(std::string_view spec);

// Loads VERDICT_FAILPOINTS (if set). Called by every binary's main.
Status ConfigureFromEnv();

// Evaluates the failpoint `name`: OK when it is not armed (or armed with sleep),
// IoError when armed with `error`; never returns when armed with `crash`.
Status Hit(std::string_view name);

}  // namespace verdict::failpoint
