#!/usr/bin/env bash
# Runs a command with two moto_servers on 127.0.0.1, shared by every test:
#   GID_TEST_MOTO_ENDPOINT      S3 (and anything else) for the storage and pipeline tests;
#   GID_TEST_MOTO_SNS_ENDPOINT  SNS for tests that read back what was published through
#                               /moto-api/data.json, which answers 500 once any S3 bucket
#                               that held objects has been deleted on the same server.
# Each server gets a free port, is waited for, and is stopped by PID when the command ends.
set -euo pipefail

pids=()
logs=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -f "${logs[@]}"
}
trap cleanup EXIT

start_moto() {
  local port log pid
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  log=$(mktemp -t moto-XXXXXX.log)
  moto_server -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  pid=$!
  pids+=("$pid")
  logs+=("$log")
  for _ in $(seq 1 150); do
    if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/data.json', timeout=1)" 2>/dev/null; then
      MOTO_URL="http://127.0.0.1:$port"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "moto_server exited early:" >&2; cat "$log" >&2; return 1
    fi
    sleep 0.2
  done
  echo "moto_server did not answer on port $port" >&2
  return 1
}

start_moto
export GID_TEST_MOTO_ENDPOINT="$MOTO_URL"
start_moto
export GID_TEST_MOTO_SNS_ENDPOINT="$MOTO_URL"
# Fake credentials for the emulator only; real runs use the standard AWS chain.
export AWS_ACCESS_KEY_ID=gid-test-key AWS_SECRET_ACCESS_KEY=gid-test-secret AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN
"$@"
