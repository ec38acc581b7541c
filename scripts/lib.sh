# Shared helpers for the scripts (sourced, not run).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

# The wasm32-wasip2 target (RUSTUP_AUTO_INSTALL=0 here: add it explicitly).
ensure_wasm_target() {
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    step "installing the wasm32-wasip2 target"
    rustup target add wasm32-wasip2
  fi
}

# A Python venv under .venv (ignored by git) with the given packages.
ensure_venv() {
  if [ ! -x .venv/bin/python ]; then
    step "creating .venv"
    python3 -m venv .venv
  fi
  local missing=()
  for pkg in "$@"; do
    local name="${pkg%%[\[=<>]*}"
    .venv/bin/python -m pip show -q "$name" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    step "installing into .venv: ${missing[*]}"
    .venv/bin/python -m pip install -q --disable-pip-version-check "${missing[@]}"
  fi
}

build_guests() {
  ensure_wasm_target
  step "building the example components (wasm32-wasip2)"
  cargo build --profile guest --target wasm32-wasip2 -p swap-saga -p hello
}

build_cli() {
  step "building the cairn runtime (release)"
  cargo build --release -p cairn-cli
}
