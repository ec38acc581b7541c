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

# One build for the lints and the tests: clippy-driver, as cargo's wrapper
# for the workspace's own crates, compiles them for real and lints them as
# it goes (dependencies are compiled by plain rustc), so `cargo test` is the
# clippy run: the host code is not compiled a second time in check mode.
# Every script sets the same, so their builds share one target directory
# without recompiling. (`cargo clippy` still works by hand.)
ensure_clippy_build() {
  local driver
  driver=$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver || true)
  if [ -z "$driver" ]; then
    step "installing clippy"
    rustup component add clippy
    driver=$(rustup which clippy-driver)
  fi
  export RUSTC_WORKSPACE_WRAPPER="$driver"
  export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
}
ensure_clippy_build

# A Python venv at $1 (under the repo's ignored folders) with packages $2...
# One venv per tool family: their pins conflict (aws-sam-cli vs moto).
ensure_venv() {
  local venv="$1"; shift
  if [ ! -x "$venv/bin/python" ]; then
    step "creating $venv"
    python3 -m venv "$venv"
  fi
  local missing=()
  for pkg in "$@"; do
    local name="${pkg%%[\[=<>]*}" want="" have
    [[ "$pkg" == *==* ]] && want="${pkg##*==}"
    have=$("$venv/bin/python" -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p' || true)
    # Pinned: the exact version, so every run (and CI) checks with the same tools.
    if [ -z "$have" ] || { [ -n "$want" ] && [ "$have" != "$want" ]; }; then missing+=("$pkg"); fi
  done
  if [ ${#missing[@]} -gt 0 ]; then
    step "installing into $venv: ${missing[*]}"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "${missing[@]}"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts moto (a real DynamoDB + Scheduler API server) on 127.0.0.1; exports
# its address for the tests and the CLI. Stopped by stop_moto (by PID).
MOTO_PID=""
start_moto() {
  ensure_venv .tools/moto 'moto[dynamodb,server]==5.2.5'
  local port; port=$(free_port)
  # Through scripts/moto_server.py: one request at a time, as atomic as DynamoDB.
  .tools/moto/bin/python scripts/moto_server.py 127.0.0.1 "$port" > target/moto.log 2>&1 &
  MOTO_PID=$!
  for _ in $(seq 1 100); do
    if curl -s -o /dev/null "http://127.0.0.1:$port/moto-api/"; then break; fi
    if ! kill -0 "$MOTO_PID" 2>/dev/null; then echo "moto failed to start; see target/moto.log" >&2; return 1; fi
    sleep 0.1
  done
  export CAIRN_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$port"
  export AWS_ENDPOINT_URL_DYNAMODB="$CAIRN_TEST_DYNAMODB_ENDPOINT"
  export AWS_ENDPOINT_URL_SCHEDULER="$CAIRN_TEST_DYNAMODB_ENDPOINT"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  echo "moto on $CAIRN_TEST_DYNAMODB_ENDPOINT (pid $MOTO_PID)" >&2
}

stop_moto() {
  if [ -n "$MOTO_PID" ]; then kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true; MOTO_PID=""; fi
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

# Starts the Lambda runtime API emulator (`cargo lambda watch`, APIs only) on
# a free port of 127.0.0.1, its log in $1; sets LAMBDA_API_PORT. Needs
# cargo-lambda on PATH. Stopped by stop_lambda_api (by PID).
WATCH_PID=""
start_lambda_api() {
  LAMBDA_API_PORT=$(free_port)
  cargo lambda watch --only-lambda-apis --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_API_PORT" \
    > "$1" 2>&1 &
  WATCH_PID=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$LAMBDA_API_PORT") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "the Lambda runtime API emulator did not start; see $1" >&2
  return 1
}

stop_lambda_api() {
  if [ -n "$WATCH_PID" ]; then kill "$WATCH_PID" 2>/dev/null || true; wait "$WATCH_PID" 2>/dev/null || true; WATCH_PID=""; fi
}

# Everything a bootstrap needs to run here as it does in Lambda: moto (unless
# CAIRN_TEST_DYNAMODB_ENDPOINT names a running one), table $1 (created with
# the CLI, target/release/cairn), and the runtime API emulator (its log in
# $2), with the function's environment exported as Lambda sets it (512 MB,
# the stacks' default). Needs cargo-lambda on PATH. Stop it with
# stop_lambda_test_env (trap it on EXIT).
OWN_MOTO=""
start_lambda_test_env() {
  if [ -z "${CAIRN_TEST_DYNAMODB_ENDPOINT:-}" ]; then start_moto; OWN_MOTO=1; fi
  export CAIRN_TABLE="$1"
  export AWS_ENDPOINT_URL="$CAIRN_TEST_DYNAMODB_ENDPOINT" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
  target/release/cairn --store dynamodb --table "$CAIRN_TABLE" table create >/dev/null
  step "starting the Lambda runtime API emulator"
  start_lambda_api "$2"
  export AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$LAMBDA_API_PORT/.rt" AWS_LAMBDA_FUNCTION_NAME=_ \
    AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512 RUST_LOG="${CAIRN_LAMBDA_LOG:-info}"
}

stop_lambda_test_env() {
  stop_lambda_api
  if [ -n "$OWN_MOTO" ]; then stop_moto; OWN_MOTO=""; fi
}
