#!/usr/bin/env bash
# A private PostgreSQL 15 cluster for tests.
#
#   source scripts/lib/pg.sh
#   verdict_pg_start            # exports VERDICT_TEST_PG_URI and friends
#   trap verdict_pg_stop EXIT
#
# The cluster lives in a fresh temp dir, listens on 127.0.0.1:<free port> and
# on a unix socket in its own directory (never the system's), trusts loopback
# connections, and allows prepared transactions:
#   listen_addresses='127.0.0.1', max_prepared_transactions=200,
#   max_connections=300, fsync=on.
# It holds database "verdict_test" owned by role "verdict" (LOGIN SUPERUSER, so
# fault tests may inspect pg_prepared_xacts or terminate backends).
#
# Exported after verdict_pg_start:
#   VERDICT_TEST_PG_URI   postgresql://verdict@127.0.0.1:PORT/verdict_test
#   VERDICT_TEST_PG_PORT  the port
#   VERDICT_TEST_PG_HOST  127.0.0.1
#   VERDICT_TEST_PG_SOCKET_DIR, VERDICT_TEST_PG_DATA, VERDICT_TEST_PG_BIN
#
# PostgreSQL refuses to run as root: when root, the cluster belongs to the
# "postgres" system user and every server command runs through runuser.
# VERDICT_KEEP_TEST_DIRS=1 keeps the directory (and its server log) after stop.

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

VERDICT_PG_BIN=${VERDICT_PG_BIN:-/usr/lib/postgresql/15/bin}
VERDICT_PG_USER=${VERDICT_PG_USER:-verdict}
VERDICT_PG_DB=${VERDICT_PG_DB:-verdict_test}
VERDICT_PG_DIR=""

# Runs a command as the cluster's owner.
_verdict_pg_as_owner() {
  if ((EUID == 0)); then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

verdict_pg_start() {
  if [[ -n "${VERDICT_PG_DIR}" ]]; then
    echo "pg: already started in ${VERDICT_PG_DIR}" >&2
    return 1
  fi
  if [[ ! -x "${VERDICT_PG_BIN}/pg_ctl" ]]; then
    echo "pg: ${VERDICT_PG_BIN}/pg_ctl not found (install postgresql-15)" >&2
    return 1
  fi
  if ((EUID == 0)) && ! id postgres >/dev/null 2>&1; then
    echo "pg: running as root needs the 'postgres' system user (installed with postgresql-15)" >&2
    return 1
  fi

  VERDICT_PG_DIR=$(mktemp -d /tmp/verdict-pg.XXXXXX)
  chmod 755 "${VERDICT_PG_DIR}"
  local data="${VERDICT_PG_DIR}/data" sock="${VERDICT_PG_DIR}/sock" log="${VERDICT_PG_DIR}/server.log"
  mkdir -p "${sock}"
  if ((EUID == 0)); then
    chown postgres:postgres "${VERDICT_PG_DIR}" "${sock}"
  fi

  # --no-sync: the bootstrap files of a throwaway cluster need not hit the disk;
  # the running server still fsyncs (fsync=on below).
  if ! _verdict_pg_as_owner "${VERDICT_PG_BIN}/initdb" -D "${data}" -U postgres \
      --auth=trust --encoding=UTF8 --locale=C.UTF-8 --no-sync >"${VERDICT_PG_DIR}/initdb.log" 2>&1; then
    echo "pg: initdb failed:" >&2
    cat "${VERDICT_PG_DIR}/initdb.log" >&2
    verdict_pg_stop
    return 1
  fi

  # Loopback and the private socket only; trust is fine for a throwaway cluster
  # that nothing outside this machine can reach.
  _verdict_pg_as_owner tee "${data}/pg_hba.conf" >/dev/null <<HBA
local   all  all                 trust
host    all  all  127.0.0.1/32   trust
HBA

  local port="" attempt
  for attempt in 1 2 3 4 5; do
    port=$(verdict_free_port) || break
    _verdict_pg_as_owner tee "${data}/postgresql.auto.conf" >/dev/null <<CONF
listen_addresses = '127.0.0.1'
port = ${port}
unix_socket_directories = '${sock}'
max_prepared_transactions = 200
max_connections = 300
fsync = on
synchronous_commit = on
full_page_writes = on
shared_buffers = 64MB
logging_collector = off
log_min_messages = warning
CONF
    if _verdict_pg_as_owner "${VERDICT_PG_BIN}/pg_ctl" -D "${data}" -l "${log}" -w -t 60 \
        start >"${VERDICT_PG_DIR}/pg_ctl.log" 2>&1; then
      break
    fi
    echo "pg: start on port ${port} failed (attempt ${attempt}); server log tail:" >&2
    tail -n 5 "${log}" >&2 || true
    port=""
  done
  if [[ -z "${port}" ]]; then
    echo "pg: could not start PostgreSQL; see ${log}" >&2
    VERDICT_KEEP_TEST_DIRS=1 verdict_pg_stop
    return 1
  fi

  if ! _verdict_pg_as_owner "${VERDICT_PG_BIN}/psql" -X -q -v ON_ERROR_STOP=1 \
      -h "${sock}" -p "${port}" -U postgres -d postgres \
      -c "CREATE ROLE ${VERDICT_PG_USER} LOGIN SUPERUSER" \
      -c "CREATE DATABASE ${VERDICT_PG_DB} OWNER ${VERDICT_PG_USER}" >"${VERDICT_PG_DIR}/setup.log" 2>&1; then
    echo "pg: creating role/database failed:" >&2
    cat "${VERDICT_PG_DIR}/setup.log" >&2
    verdict_pg_stop
    return 1
  fi

  export VERDICT_TEST_PG_HOST=127.0.0.1
  export VERDICT_TEST_PG_PORT="${port}"
  export VERDICT_TEST_PG_SOCKET_DIR="${sock}"
  export VERDICT_TEST_PG_DATA="${data}"
  export VERDICT_TEST_PG_BIN="${VERDICT_PG_BIN}"
  export VERDICT_TEST_PG_URI="postgresql://${VERDICT_PG_USER}@127.0.0.1:${port}/${VERDICT_PG_DB}"
  echo "pg: PostgreSQL $("${VERDICT_PG_BIN}/postgres" --version | awk '{print $3}') running in ${VERDICT_PG_DIR} on 127.0.0.1:${port}"
  echo "pg: VERDICT_TEST_PG_URI=${VERDICT_TEST_PG_URI}"
}

# Stops the cluster started by verdict_pg_start and removes its directory.
# Safe to call more than once and when start failed half-way (for trap EXIT).
verdict_pg_stop() {
  local dir="${VERDICT_PG_DIR}"
  [[ -n "${dir}" ]] || return 0
  VERDICT_PG_DIR=""
  if [[ -f "${dir}/data/postmaster.pid" ]]; then
    _verdict_pg_as_owner "${VERDICT_PG_BIN}/pg_ctl" -D "${dir}/data" -m fast -w -t 30 stop \
      >/dev/null 2>&1 || _verdict_pg_as_owner "${VERDICT_PG_BIN}/pg_ctl" -D "${dir}/data" \
      -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  fi
  if [[ -n "${VERDICT_KEEP_TEST_DIRS:-}" && "${VERDICT_KEEP_TEST_DIRS}" != "0" ]]; then
    echo "pg: keeping ${dir}"
  else
    rm -rf "${dir}"
  fi
  unset VERDICT_TEST_PG_URI VERDICT_TEST_PG_PORT VERDICT_TEST_PG_HOST VERDICT_TEST_PG_SOCKET_DIR \
    VERDICT_TEST_PG_DATA VERDICT_TEST_PG_BIN
}
