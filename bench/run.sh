#!/usr/bin/env bash
# `make bench`: release binaries + a pinned Python venv, then bench/run.py (dataset,
# moto_server on 127.0.0.1, every contender in the same run, table in bench/results/latest.md).
#   BENCH_SCALE=0.1 make bench     quick run (2,500 rows per file instead of 25,000)
#   BENCH_REPEAT=1 make bench      one round instead of three
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gid-target}"
CARGO="${CARGO:-cargo}"
PYTHON="${PYTHON:-python3}"
VENV=bench/venv

# Peak RSS and CPU of each run come from GNU time (Debian package `time`).
if [[ ! -x /usr/bin/time ]]; then
  echo "bench: installing GNU time (apt)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends time >/dev/null
fi

# The venv is rebuilt only when bench/requirements.txt changes. On a fresh machine it
# installs while cargo builds (pip mostly waits on the network; the build on the cores).
stamp="$VENV/.requirements.sha256"
want=$(sha256sum bench/requirements.txt | cut -d' ' -f1)
venv_pid=
if [[ ! -x "$VENV/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "bench: installing the pinned Python packages into $VENV (alongside the build)" >&2
  (
    started=$SECONDS
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    # --no-compile: byte-compiling botocore, pandas and polars up front is CPU the build
    # needs; Python compiles the modules it imports on first use instead.
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-compile -r bench/requirements.txt
    echo "$want" >"$stamp"
    echo "bench: venv ready in $((SECONDS - started)) s" >&2
  ) &
  venv_pid=$!
fi

# monthly-report and gid-admin only: monthly-report does not pull the enrichment crates.
echo "bench: cargo build --release -p monthly-report -p gid-admin (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)" >&2
started=$SECONDS
"$CARGO" build --release --quiet -p monthly-report -p gid-admin
export BENCH_BUILD_SECONDS=$((SECONDS - started))
echo "bench: release build took $BENCH_BUILD_SECONDS s" >&2
if [[ -n "$venv_pid" ]] && ! wait "$venv_pid"; then
  echo "bench: installing bench/requirements.txt into $VENV failed (see above)" >&2
  exit 1
fi

exec "$VENV/bin/python" bench/run.py "$@"
