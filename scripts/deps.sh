#!/usr/bin/env bash
# Installs the Debian packages pgshift needs to build, test and demo, if any
# is missing: one `apt-get update`, then `apt-get install -y`. Idempotent.
set -euo pipefail

PACKAGES=(
  g++ cmake ninja-build pkg-config
  libpq-dev libboost-dev libspdlog-dev libcli11-dev libinih-dev nlohmann-json3-dev libxxhash-dev
  libgoogle-perftools-dev libgtest-dev libbenchmark-dev
  postgresql-15 postgresql-contrib postgresql-15-partman
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
