#!/usr/bin/env bash
# Installs the Debian 12 packages verdict needs to build, test and run.
# Source it and call verdict_install_deps (or run it directly).
#
#   source scripts/lib/deps.sh && verdict_install_deps
#
# Only missing packages are installed: `apt-get update` runs once, and only when
# something is missing. sudo is used only when not running as root.

VERDICT_DEB_PACKAGES=(
  cmake
  ninja-build
  g++
  pkg-config
  libpqxx-dev
  libcpp-httplib-dev
  nlohmann-json3-dev
  libleveldb-dev
  libsnappy-dev
  libgtest-dev
  libgmock-dev
  libbenchmark-dev
  postgresql-15
  curl
)

# True when the package is installed (not merely known to dpkg).
verdict_pkg_installed() {
  local status
  status=$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) || return 1
  [[ "${status}" == "installed" ]]
}

verdict_install_deps() {
  if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    echo "deps: this script needs a Debian/Ubuntu system with apt-get and dpkg" >&2
    return 1
  fi
  local missing=() pkg
  for pkg in "${VERDICT_DEB_PACKAGES[@]}"; do
    verdict_pkg_installed "${pkg}" || missing+=("${pkg}")
  done
  if ((${#missing[@]} == 0)); then
    echo "deps: all ${#VERDICT_DEB_PACKAGES[@]} packages are installed"
    return 0
  fi
  local sudo=()
  if ((EUID != 0)); then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "deps: missing packages (${missing[*]}) and not root, and sudo is not available" >&2
      return 1
    fi
    sudo=(sudo)
  fi
  echo "deps: installing ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

# Run directly: install.
if [[ "${BASH_SOURCE[0]}" == "${0}" ]]; then
  set -euo pipefail
  verdict_install_deps
fi
