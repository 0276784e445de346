// Shutdown signal handling for the binaries' mains.
#pragma once

namespace verdict {

// Blocks SIGTERM, SIGINT and SIGPIPE in the calling thread; call first thing in
// main so every thread started later inherits the mask.
void BlockTerminationSignals();

// Waits until SIGTERM or SIGINT arrives; returns the signal number.
int WaitForTerminationSignal();

}  // namespace verdict
