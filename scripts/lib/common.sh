#!/usr/bin/env bash
# Small helpers shared by scripts/test, scripts/demo and scripts/lib/pg.sh.

# Prints a TCP port on 127.0.0.1 that nothing listens on right now (best
# effort: the caller must cope with losing a race for it).
verdict_free_port() {
  local port _
  for _ in $(seq 1 200); do
    port=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null; then
      echo "${port}"
      return 0
    fi
  done
  echo "verdict_free_port: no free port found" >&2
  return 1
}

# verdict_wait_healthy URL PID LOG [TIMEOUT_S]: waits until GET URL/healthz
# answers 200; fails (printing the log tail) when PID exits or time runs out.
verdict_wait_healthy() {
  local url=$1 pid=$2 log=$3 timeout=${4:-15} i
  for ((i = 0; i < timeout * 10; i++)); do
    if curl -fsS -o /dev/null --max-time 1 "${url}/healthz" 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "${pid}" 2>/dev/null; then
      echo "error: process ${pid} exited before ${url}/healthz answered; log tail:" >&2
      tail -n 20 "${log}" >&2 || true
      return 1
    fi
    sleep 0.1
  done
  echo "error: ${url}/healthz did not answer within ${timeout}s; log tail:" >&2
  tail -n 20 "${log}" >&2 || true
  return 1
}

# verdict_stop_pid PID [TIMEOUT_S]: SIGTERM, wait for the exit and store the
# exit status in VERDICT_STOP_RC (SIGKILL after the timeout, which gives 137).
# PID must be a background job of the calling shell, so call it directly, not
# inside $(...).
verdict_stop_pid() {
  local pid=$1 timeout=${2:-15} i
  VERDICT_STOP_RC=0
  kill -TERM "${pid}" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    kill -0 "${pid}" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "${pid}" 2>/dev/null; then
    echo "warning: pid ${pid} ignored SIGTERM for ${timeout}s; killing it" >&2
    kill -KILL "${pid}" 2>/dev/null || true
  fi
  wait "${pid}" 2>/dev/null || VERDICT_STOP_RC=$?
  export VERDICT_STOP_RC
}
