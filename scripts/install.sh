#!/usr/bin/env bash
# Installs everything RLCE needs on a fresh Debian machine (run as root): the sandbox and
# toolchains from Debian, then the project into .venv. Usage: bash scripts/install.sh [extras]
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-test}"
need=()
for pkg in firejail python3 g++ golang-go rustc; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
command -v node >/dev/null 2>&1 || need+=(nodejs)
if [ "${#need[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
python=python3.11
command -v "$python" >/dev/null 2>&1 || python=python3
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[${extras}]"
