#!/usr/bin/env bash
# Runs a command with one moto_server (S3, SNS, ...) on 127.0.0.1, shared by every test.
# The server gets a free port, is waited for, and is stopped by PID when the command ends.
set -euo pipefail

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp -t moto-XXXXXX.log)
moto_server -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"' EXIT

for _ in $(seq 1 100); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/data.json', timeout=1)" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "moto_server exited early:" >&2; cat "$log" >&2; exit 1
  fi
  sleep 0.2
done

export GID_TEST_MOTO_ENDPOINT="http://127.0.0.1:$port"
# Fake credentials for the emulator only; real runs use the standard AWS chain.
export AWS_ACCESS_KEY_ID=gid-test-key AWS_SECRET_ACCESS_KEY=gid-test-secret AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN
"$@"
