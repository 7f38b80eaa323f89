#!/usr/bin/env python3
"""`make bench`: gid against the course's Python pipeline, the raw-transfer floor, polars
and DuckDB, on one generated dataset, all in the same run.

Run through bench/run.sh (it builds the release binaries and the venv first). Steps:
  1. generate the dataset with `gid-admin sample` into a local data root (cached per scale);
  2. start moto_server on 127.0.0.1 and copy the exports into it (boto3, a thread pool);
  3. BENCH_REPEAT rounds, each running every contender once (two raw floors: curl over
     presigned URLs and boto3 threads; gid on both profiles; the course's pandas pipeline;
     polars and DuckDB), interleaved so that noise from other processes spreads over all
     of them; medians are reported;
  4. print the table and the ratios, and write bench/results/latest.md.

Environment: BENCH_SCALE (1 = 12 months x 8 files x 25k rows; 4 ≈ 1.6 GB, which also adds
the single 1 GB month), BENCH_BIG_MONTH (1: add the 1 GB month at any scale), BENCH_REPEAT (3),
BENCH_JOBS (gid --jobs, 2), BENCH_DIR (bench/data), CARGO_TARGET_DIR, BENCH_OUT
(bench/results/latest.md), BENCH_BUILD_SECONDS (set by run.sh), BENCH_BASELINE (another
monthly-report binary, e.g. a build of an older commit: run in the same rounds, and the
table gains before/after ratios), BENCH_BASELINE_CONFIG (the config folder the baseline
reads, when it predates a key of today's config/: `git archive <commit> config | tar -x`).
"""

import datetime
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
VENV_BIN = Path(sys.executable).parent
TASKS = BENCH / "tasks.py"
MONTHS = "2019-01..2019-12"
FROM, TO = "2019-01", "2019-12"
FILES_PER_MONTH = 8
BASE_ROWS = 25_000
# 8 files x 750k rows: one month of ~1 GB of CSV (33.1 MB per 8 x 25k rows).
BIG_MONTH_ROWS = 750_000

SCALE = float(os.environ.get("BENCH_SCALE", "1"))
REPEAT = max(1, int(os.environ.get("BENCH_REPEAT", "3")))
JOBS = int(os.environ.get("BENCH_JOBS", "2"))
FLOOR_THREADS = int(os.environ.get("BENCH_FLOOR_THREADS", "8"))
BASELINE = os.environ.get("BENCH_BASELINE")
BASELINE_CONFIG = os.environ.get("BENCH_BASELINE_CONFIG")
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "gid-target"))
DATA = Path(os.environ.get("BENCH_DIR", BENCH / "data"))
OUT = Path(os.environ.get("BENCH_OUT", BENCH / "results" / "latest.md"))
BIG_MONTH = SCALE >= 4 or os.environ.get("BENCH_BIG_MONTH") == "1"
TIMEOUT = 900
GNU_TIME = "/usr/bin/time"
# The export re-delivered between the incremental runs (one of the month's eight).
CHANGED_EXPORT = "part-004.csv"


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def load():
    return os.getloadavg()


class Run:
    """One measured process: wall time, peak RSS and CPU (GNU time, which forks from a
    process of ~2 MB: the kernel's peak RSS of a child includes what it had before exec,
    so a child forked from this Python harness would report the harness's own ~100 MB),
    stdout."""

    def __init__(self, cmd, env=None, cwd=None, stderr_path=None, server=None):
        self.cmd = [str(c) for c in cmd]
        server_cpu = proc_cpu(server.proc.pid) if server else None
        usage = tempfile.NamedTemporaryFile(mode="r", suffix=".time")
        stderr = open(stderr_path, "w") if stderr_path else subprocess.DEVNULL
        out = tempfile.TemporaryFile()
        started = time.perf_counter()
        proc = subprocess.Popen(
            [GNU_TIME, "-f", "%M %U %S", "-o", usage.name, *self.cmd],
            env=env, cwd=cwd, stdout=out, stderr=stderr,
        )
        try:
            proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self.wall = time.perf_counter() - started
        # CPU the emulator spent serving this run: it shares the machine's cores with gid.
        self.server_cpu = proc_cpu(server.proc.pid) - server_cpu if server else None
        fields = usage.read().split()[-3:]
        usage.close()
        self.rss_mb = int(fields[0]) / 1024 if len(fields) == 3 else float("nan")  # KiB
        self.cpu = float(fields[1]) + float(fields[2]) if len(fields) == 3 else float("nan")
        out.seek(0)
        self.stdout = out.read().decode("utf-8", "replace")
        if stderr_path:
            stderr.close()
        if proc.returncode != 0:
            tail = Path(stderr_path).read_text()[-3000:] if stderr_path else ""
            raise RuntimeError(f"{' '.join(self.cmd)} exited {proc.returncode}\n{self.stdout[-2000:]}\n{tail}")


def proc_cpu(pid):
    """User + system CPU seconds of a running process (from /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Moto:
    """moto_server on 127.0.0.1, started like scripts/with-moto.sh and stopped by PID."""

    def __init__(self, log_path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [VENV_BIN / "moto_server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        for _ in range(150):
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited early, see {log_path}")
            try:
                urllib.request.urlopen(self.url + "/moto-api/data.json", timeout=1)
                return
            except urllib.error.HTTPError:
                return  # it answers: up
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"moto_server did not answer on {self.url}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def gid_env(data_root, moto=None):
    env = dict(os.environ)
    env.update(
        GID_CONFIG_DIR=str(ROOT / "config"),
        GID__LOCAL__DATA_ROOT=str(data_root),
        GID__NOTIFY__OUTBOX_DIR=str(data_root / "outbox"),
        RUST_LOG="warn",
    )
    # GID_SAMPLE_IMAGES (exported by the Makefile for the demo) would make `gid-admin sample`
    # store a photo per request: 37 GB at the default scale, none of it benchmarked.
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "GID__PROFILE", "GID_SAMPLE_IMAGES"):
        env.pop(k, None)
    if moto:
        env.update(
            AWS_ENDPOINT_URL=moto.url,
            AWS_ACCESS_KEY_ID="gid-bench",
            AWS_SECRET_ACCESS_KEY="gid-bench",
            AWS_REGION="us-east-1",
        )
    return env


def dataset(bin_dir, rows=None, to=TO):
    """Generates (or reuses) the dataset for this scale; returns its description."""
    rows = rows or max(100, round(BASE_ROWS * SCALE))
    spec = {"from": FROM, "to": to, "files": FILES_PER_MONTH, "rows": rows, "seed": 2019}
    root = DATA / f"rows-{rows}" if to == TO else DATA / f"rows-{rows}-to-{to}"
    stamp = root / "dataset.json"
    generated_s = None
    if not (stamp.exists() and json.loads(stamp.read_text()).get("spec") == spec):
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        log(f"generating {FROM}..{to}, {FILES_PER_MONTH} files x {rows} rows per month into {root}")
        started = time.perf_counter()
        Run(
            [bin_dir / "gid-admin", "--profile", "local", "sample", "--from", FROM, "--to", to,
             "--files", FILES_PER_MONTH, "--rows", rows, "--seed", 2019],
            # The log goes beside the root: a file inside it before gid marks it would make
            # gid refuse the folder as a data root.
            env=gid_env(root), cwd=root, stderr_path=root.parent / f"{root.name}.generate.log",
        )
        generated_s = time.perf_counter() - started
        stamp.write_text(json.dumps({"spec": spec}))
    requests = root / "gid-requests"
    files = sorted(p for p in requests.rglob("*") if p.is_file())
    months = {}
    for p in files:
        month = p.parent.relative_to(requests).as_posix()
        months[month] = months.get(month, 0) + p.stat().st_size
    return {
        "root": root,
        "spec": spec,
        "files": files,
        "bytes": sum(months.values()),
        "largest_month_bytes": max(months.values()),
        "first_month_bytes": months[min(months)],
        "generated_s": generated_s,
    }


def load_moto(moto, data):
    import boto3
    from botocore.config import Config

    s3 = boto3.client(
        "s3", endpoint_url=moto.url, region_name="us-east-1",
        aws_access_key_id="gid-bench", aws_secret_access_key="gid-bench",
        config=Config(max_pool_connections=16),
    )
    for bucket in ("gid-requests", "gid-work", "gid-reports", "gid-staging"):
        s3.create_bucket(Bucket=bucket)
    requests = data["root"] / "gid-requests"

    def put(path):
        with open(path, "rb") as f:
            s3.put_object(Bucket="gid-requests", Key=path.relative_to(requests).as_posix(), Body=f.read(),
                          ContentType="text/csv; charset=utf-8")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, data["files"]))


def curl_config(moto, path):
    """A curl config fetching every export through a presigned GET URL (moto accepts any
    signature) into /dev/null: the transfer floor with a client that costs almost no CPU."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1",
                      aws_access_key_id="gid-bench", aws_secret_access_key="gid-bench")
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="gid-requests")
            for o in page.get("Contents", [])]
    with open(path, "w") as f:
        for key in keys:
            url = s3.generate_presigned_url("get_object", Params={"Bucket": "gid-requests", "Key": key},
                                            ExpiresIn=3600)
            f.write(f'url = "{url}"\noutput = "/dev/null"\n')


class Redelivery:
    """One export of the first month in two versions that differ in one request's
    service_name, uploaded alternately through gid-admin before each incremental run, so
    every such run sees one changed file (a new ETag) and seven unchanged ones."""

    def __init__(self, bin_dir, root):
        import csv
        import io

        self.bin_dir, self.root = bin_dir, root
        self.path = root / "gid-requests" / "2019" / "jan" / CHANGED_EXPORT
        original = self.path.read_bytes()
        rows = list(csv.reader(io.StringIO(original.decode("utf-8-sig"), newline="")))
        service = [c.strip().lower() for c in rows[0]].index("service_name")
        rows[1][service] = "Graffiti - Public" if rows[1][service] != "Graffiti - Public" else "Pothole"
        out = io.StringIO(newline="")
        csv.writer(out, lineterminator="\n").writerows(rows)
        self.versions = [original, out.getvalue().encode("utf-8")]
        self.turn = 0
        self.staged = root.parent / f"{root.name}.redelivered.csv"

    def next(self):
        self.turn += 1
        self.staged.write_bytes(self.versions[self.turn % 2])
        Run([self.bin_dir / "gid-admin", "--profile", "local", "object", "upload", self.staged, "gid-requests",
             "--key", f"2019/jan/{CHANGED_EXPORT}"], env=gid_env(self.root), cwd=self.root)

    def restore(self):
        if self.turn % 2:
            self.next()
        self.staged.unlink(missing_ok=True)

    def bytes_read(self):
        """What an incremental run reads: the changed export, and of every other file its part,
        or its CSV again when it is too small to get one (`ingest.part_min_bytes`: at
        BENCH_SCALE=0.1 no file has a part)."""
        parts = self.root / "gid-work" / "2019" / "jan" / "parts"
        changed = self.path.stat().st_size
        kept = 0
        for export in self.path.parent.iterdir():
            if export == self.path or not export.is_file():
                continue
            own = list(parts.glob(f"{export.name}@*.parquet"))
            kept += sum(p.stat().st_size for p in own) if own else export.stat().st_size
        return changed, kept


def gid_rows(stdout):
    """Sums `rows N` over the per-month summary lines."""
    total = 0
    for line in stdout.splitlines():
        for part in line.split(" · "):
            if part.startswith("files ") and ", rows " in part:
                total += int(part.split(", rows ")[1].split(",")[0])
    return total


def gid_requests(stdout):
    """The `s3: N requests` count monthly-report prints on the aws profile (None otherwise)."""
    for line in stdout.splitlines():
        if line.startswith("s3: ") and " requests" in line:
            return int(line.split()[1])
    return None


def main():
    bin_dir = TARGET / "release"
    for b in ("monthly-report", "gid-admin"):
        if not (bin_dir / b).exists():
            sys.exit(f"bench: {bin_dir / b} is missing: run bench/run.sh (it builds the release binaries)")
    load_before = load()
    t0 = time.perf_counter()
    data = dataset(bin_dir)
    root = data["root"]
    # A month of 8 x 100 rows (~130 KB): its peak RSS is gid's fixed overhead (binary, thread
    # pools, SDK), which the RSS target allows on top of 2x the month's CSV bytes.
    tiny = dataset(bin_dir, rows=100, to=FROM)["root"]
    big = dataset(bin_dir, rows=BIG_MONTH_ROWS, to=FROM) if BIG_MONTH else None
    redelivery = Redelivery(bin_dir, root)
    big_redelivery = Redelivery(bin_dir, big["root"]) if big else None
    inc_reads, big_inc_reads = [], []
    work = Path(tempfile.mkdtemp(prefix="gid-bench-"))
    moto = Moto(work / "moto.log")
    results = {}
    try:
        log(f"moto_server on {moto.url} (pid {moto.proc.pid}); copying {len(data['files'])} objects "
            f"({data['bytes'] / 1e6:.0f} MB)")
        started = time.perf_counter()
        load_moto(moto, data)
        upload_s = time.perf_counter() - started
        mr = bin_dir / "monthly-report"
        stages = ["--stage", "ingest", "--stage", "aggregate", "--stage", "publish"]
        gid_args = ["--from", FROM, "--to", TO, *stages, "--force", "--jobs", JOBS]
        py = sys.executable
        curl = shutil.which("curl")
        if curl:
            curl_config(moto, work / "curl.cfg")
        contenders = {
            "floor_curl": lambda: Run([curl, "-s", "--fail", "--parallel", "--parallel-max", FLOOR_THREADS, "-K",
                                       work / "curl.cfg", "-w", "%{size_download}\n"],
                                      stderr_path=work / "floor_curl.err", server=moto),
            "floor": lambda: Run([py, TASKS, "floor", "--endpoint", moto.url, "--threads", FLOOR_THREADS],
                                 stderr_path=work / "floor.err", server=moto),
            "gid_aws": lambda: Run([mr, "--profile", "aws", *gid_args], env=gid_env(root, moto), cwd=root,
                                   stderr_path=work / "gid_aws.err", server=moto),
            "course": lambda: Run([py, TASKS, "course", "--endpoint", moto.url, "--months", MONTHS,
                                   "--out", work], stderr_path=work / "course.err", server=moto),
            "gid_local": lambda: Run([mr, "--profile", "local", *gid_args], env=gid_env(root), cwd=root,
                                     stderr_path=work / "gid_local.err"),
            "polars": lambda: Run([py, TASKS, "polars", "--root", root, "--months", MONTHS, "--out", work],
                                  stderr_path=work / "polars.err"),
            "polars_full": lambda: Run([py, TASKS, "polars-full", "--root", root, "--months", MONTHS, "--out", work],
                                       stderr_path=work / "polars_full.err"),
            "duckdb": lambda: Run([py, TASKS, "duckdb", "--root", root, "--months", MONTHS, "--out", work],
                                  stderr_path=work / "duckdb.err"),
            # The months one after the other: peak RSS should not grow with the number of months.
            "gid_local_seq": lambda: Run([mr, "--profile", "local", "--from", FROM, "--to", TO, *stages, "--force",
                                          "--jobs", 1], env=gid_env(root), cwd=root,
                                         stderr_path=work / "gid_local_seq.err"),
            "gid_local_1m": lambda: Run([mr, "--profile", "local", "--month", FROM, *stages, "--force"],
                                        env=gid_env(root), cwd=root, stderr_path=work / "gid_local_1m.err"),
            "gid_tiny": lambda: Run([mr, "--profile", "local", "--month", FROM, *stages, "--force"],
                                    env=gid_env(tiny), cwd=tiny, stderr_path=work / "gid_tiny.err"),
            # Right after gid_local_1m (a full run that keeps every file's part): the month
            # again with one of its eight exports re-delivered changed.
            "gid_inc_1m": lambda: incremental(redelivery, root, inc_reads, "gid_inc_1m"),
        }

        def incremental(redelivery, root, reads, name):
            """One export of the month re-delivered, then the month run without --force."""
            redelivery.next()
            res = Run([mr, "--profile", "local", "--month", FROM, *stages], env=gid_env(root), cwd=root,
                      stderr_path=work / f"{name}.err")
            reads.append(redelivery.bytes_read())
            return res

        if big:
            contenders["gid_big"] = lambda: Run([mr, "--profile", "local", "--month", FROM, *stages, "--force"],
                                                env=gid_env(big["root"]), cwd=big["root"],
                                                stderr_path=work / "gid_big.err")

            # The same re-delivery at scale: the fixed costs of a run (start-up, publishing)
            # no longer hide what incremental months save.
            contenders["gid_big_inc"] = lambda: incremental(big_redelivery, big["root"], big_inc_reads,
                                                            "gid_big_inc")
        if not curl:
            del contenders["floor_curl"]
        if BASELINE:
            def base_env(moto=None):
                env = gid_env(root, moto)
                if BASELINE_CONFIG:
                    env["GID_CONFIG_DIR"] = BASELINE_CONFIG
                return env
            contenders["base_aws"] = lambda: Run([BASELINE, "--profile", "aws", *gid_args], env=base_env(moto),
                                                 cwd=root, stderr_path=work / "base_aws.err", server=moto)
            contenders["base_local"] = lambda: Run([BASELINE, "--profile", "local", *gid_args], env=base_env(),
                                                   cwd=root, stderr_path=work / "base_local.err")
            contenders["base_local_1m"] = lambda: Run(
                [BASELINE, "--profile", "local", "--month", FROM, *stages, "--force"],
                env=base_env(), cwd=root, stderr_path=work / "base_local_1m.err")
        for r in range(REPEAT):
            for name, run in contenders.items():
                res = run()
                info = json.loads(res.stdout.strip().splitlines()[-1]) if res.cmd[0] == py else {}
                entry = {
                    "wall": res.wall,
                    # Python contenders: timed inside, after their imports; gid: the process.
                    "work": info.get("work_s", res.wall),
                    "rss_mb": res.rss_mb,
                    "cpu": res.cpu,
                    "server_cpu": res.server_cpu,
                    "requests": gid_requests(res.stdout) if res.cmd[0] != py else None,
                    "rows": info.get("rows", gid_rows(res.stdout)),
                }
                if name == "floor_curl":
                    fetched = sum(int(n) for n in res.stdout.split())
                    if fetched != data["bytes"]:
                        raise RuntimeError(f"curl fetched {fetched} bytes, expected {data['bytes']}")
                results.setdefault(name, []).append(entry)
                log(f"round {r + 1}/{REPEAT} {name:13s} {entry['work']:7.2f} s  {entry['rss_mb']:7.0f} MB")
    finally:
        moto.stop()
        redelivery.restore()
        if big_redelivery:
            big_redelivery.restore()
    load_after = load()
    total_s = time.perf_counter() - t0
    report = render(data, results, upload_s, load_before, load_after, total_s, inc_reads, big, big_inc_reads)
    print(report)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(report)
    log(f"wrote {OUT}")
    shutil.rmtree(work, ignore_errors=True)


def verdict(value, limit):
    """Whether a figure meets its target, and by how much it misses."""
    if limit is None:
        return ""
    return "met" if value <= limit else f"missed by {value / limit:.2f}x"


def med(results, name, field):
    return statistics.median(e[field] for e in results[name])


def versions():
    import importlib.metadata as md

    out = {p: md.version(p) for p in ("pandas", "polars", "duckdb", "boto3", "moto")}
    gid = subprocess.run([TARGET / "release" / "monthly-report", "--version"], capture_output=True, text=True)
    out["gid"] = gid.stdout.strip().split()[-1] if gid.returncode == 0 else "?"
    return out


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def render(data, results, upload_s, load_before, load_after, total_s, inc_reads, big, big_inc_reads):
    mb = data["bytes"] / 1e6
    rows = med(results, "gid_local", "rows")
    v = versions()
    labels = [
        *([("floor_curl", f"raw floor: GET every object, curl --parallel {FLOOR_THREADS}", "moto")]
          if "floor_curl" in results else []),
        ("floor", f"raw floor: GET every object, {FLOOR_THREADS} threads (boto3)", "moto"),
        ("gid_aws", f"gid monthly-report, aws profile, --jobs {JOBS}", "moto"),
        ("course", "course pipeline (boto3 + pandas)", "moto"),
        ("gid_local", f"gid monthly-report, local profile, --jobs {JOBS}", "disk"),
        ("polars", f"polars {v['polars']} (Python), same aggregation", "disk"),
        ("polars_full", f"polars {v['polars']}: every column as text + Parquet, as gid's ingest", "disk"),
        ("duckdb", f"DuckDB {v['duckdb']} (Python), same aggregation", "disk"),
        ("gid_local_seq", "gid monthly-report, local profile, --jobs 1 (RSS check)", "disk"),
        ("gid_local_1m", "gid monthly-report, local, one month (RSS check)", "disk"),
        ("gid_inc_1m", f"gid monthly-report, local, the same month after 1 of {FILES_PER_MONTH} files changed "
                       "(incremental, no --force)", "disk"),
        *([("gid_big", f"gid monthly-report, local, one month of {big['bytes'] / 1e9:.2f} GB "
                       f"({FILES_PER_MONTH} x {BIG_MONTH_ROWS} rows)", "disk"),
           ("gid_big_inc", f"gid monthly-report, local, the {big['bytes'] / 1e9:.2f} GB month after 1 of "
                           f"{FILES_PER_MONTH} files changed (incremental)", "disk")] if big else []),
    ]
    if BASELINE:
        labels += [
            ("base_aws", f"baseline {Path(BASELINE).name}, aws profile, --jobs {JOBS}", "moto"),
            ("base_local", f"baseline {Path(BASELINE).name}, local profile, --jobs {JOBS}", "disk"),
            ("base_local_1m", f"baseline {Path(BASELINE).name}, local, one month", "disk"),
        ]
    lines = [
        "| run | reads | wall s | MB/s | rows/s | peak RSS MB | CPU s | moto CPU s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, label, src in labels:
        t = med(results, name, "work")
        rss = max(e["rss_mb"] for e in results[name])
        cpu = med(results, name, "cpu")
        server = f"{med(results, name, 'server_cpu'):.1f}" if src == "moto" else "—"
        one_month = name.endswith("_1m")
        size = data["first_month_bytes"] / 1e6 if one_month else mb
        n = rows * size / mb if one_month else rows  # rows in proportion to bytes
        if name.startswith("gid_big"):
            size = big["bytes"] / 1e6
            n = med(results, name, "rows")
        lines.append(f"| {label} | {src} | {t:.2f} | {size / t:.0f} | {n / t / 1e6:.2f} M | {rss:.0f} | {cpu:.1f} "
                     f"| {server} |")
    g_aws, g_local = med(results, "gid_aws", "work"), med(results, "gid_local", "work")
    floor_name = "floor_curl" if "floor_curl" in results else "floor"
    ratios = {
        "gid/floor": g_aws / med(results, floor_name, "work"),
        "gid/floor-boto3": g_aws / med(results, "floor", "work"),
        "seed/gid": med(results, "course", "work") / g_aws,
        "gid/duckdb": g_local / med(results, "duckdb", "work"),
        "gid/polars": g_local / med(results, "polars", "work"),
        "gid/polars-full": g_local / med(results, "polars_full", "work"),
    }
    largest = data["largest_month_bytes"] / 1e6
    rss_local = max(e["rss_mb"] for e in results["gid_local"])
    rss_aws = max(e["rss_mb"] for e in results["gid_aws"])
    rss_1m = max(e["rss_mb"] for e in results["gid_local_1m"])
    rss_seq = max(e["rss_mb"] for e in results["gid_local_seq"])
    fixed = max(e["rss_mb"] for e in results["gid_tiny"])
    first = data["first_month_bytes"] / 1e6
    full_1m, inc_1m = med(results, "gid_local_1m", "work"), med(results, "gid_inc_1m", "work")
    changed, kept = inc_reads[-1]
    inc_bytes = (changed + kept) / 1e6
    big_rows = []
    if big:
        rss_big = max(e["rss_mb"] for e in results["gid_big"])
        big_mb = big["bytes"] / 1e6
        big_full, big_inc = med(results, "gid_big", "work"), med(results, "gid_big_inc", "work")
        big_changed, big_kept = big_inc_reads[-1]
        big_rows = [
            (f"gid peak RSS, one month of {big_mb / 1e3:.2f} GB (local)",
             f"{rss_big:.0f} MB = {fixed:.0f} fixed + {(rss_big - fixed) / big_mb:.2f}x the month", rss_big, 1500,
             "≤ 1.5 GB"),
            (f"gid incremental / full rerun of the {big_mb / 1e3:.2f} GB month, wall",
             f"{big_inc / big_full:.2f} ({big_inc:.2f} / {big_full:.2f} s)", big_inc / big_full, 0.25, "≤ 0.25"),
            (f"gid incremental / full rerun of the {big_mb / 1e3:.2f} GB month, bytes read",
             f"{(big_changed + big_kept) / 1e6 / big_mb:.2f} ({big_changed / 1e6:.0f} MB changed CSV + "
             f"{big_kept / 1e6:.0f} MB of the others' parts or CSV / {big_mb:.0f} MB)", (big_changed + big_kept) / 1e6 / big_mb, 0.25,
             "≤ 0.25"),
        ]
    per_month = lambda rss: (rss - fixed) / JOBS / largest  # noqa: E731 (per month in flight)
    floor_label = "curl" if floor_name == "floor_curl" else "boto3"
    cpu_full = med(results, "gid_local", "cpu") / med(results, "polars_full", "cpu")
    variable_1m = (rss_1m - fixed) / first
    # (what, value as shown, value compared, limit, target as the issue words it)
    ratio_rows = [
        (f"gid/floor (aws, moto; floor = {floor_label})", f"{ratios['gid/floor']:.2f}", ratios["gid/floor"],
         4.0 if floor_label == "curl" else 1.5, "≤ 4 (curl)" if floor_label == "curl" else "≤ 1.5 (boto3)"),
        ("gid/floor with the boto3 floor", f"{ratios['gid/floor-boto3']:.2f}", ratios["gid/floor-boto3"], 1.5,
         "≤ 1.5"),
        ("seed/gid (course pipeline / gid, moto)", f"{ratios['seed/gid']:.1f}", None, None, "—"),
        ("gid/duckdb (local)", f"{ratios['gid/duckdb']:.2f}", None, None, "—"),
        ("gid/polars (local; polars counting one column)", f"{ratios['gid/polars']:.2f}", ratios["gid/polars"], 2.0,
         "≤ 2"),
        ("gid/polars-full, wall (local; polars reading every column and writing Parquet too)",
         f"{ratios['gid/polars-full']:.2f}", ratios["gid/polars-full"], 1.0, "≤ 1"),
        ("gid/polars-full, CPU s (local)", f"{cpu_full:.2f}", cpu_full, 1.0, "≤ 1"),
        ("gid peak RSS, one month (local): fixed + variable",
         f"{rss_1m:.0f} MB = {fixed:.0f} fixed + {variable_1m:.1f}x the month's {first:.1f} MB", variable_1m, 1.0,
         "fixed + ≤ 1.0x the month"),
        (f"gid peak RSS, 12 months --jobs {JOBS} (local / aws)",
         f"{rss_local:.0f} / {rss_aws:.0f} MB = fixed + {per_month(rss_local):.1f}x / {per_month(rss_aws):.1f}x the "
         "largest month per month in flight", max(per_month(rss_local), per_month(rss_aws)), 1.0,
         "fixed + ≤ 1.0x per month in flight"),
        (f"gid peak RSS, 12 months --jobs 1 / one month (local)", f"{rss_seq:.0f} / {rss_1m:.0f} MB = "
         f"{rss_seq / rss_1m:.2f}", rss_seq / rss_1m, 1.05, "1 (independent of months; 5 % noise)"),
        (f"gid incremental / full rerun of one month, wall (1 of {FILES_PER_MONTH} files changed)",
         f"{inc_1m / full_1m:.2f} ({inc_1m:.2f} / {full_1m:.2f} s)", inc_1m / full_1m, 0.25, "≤ 0.25"),
        ("gid incremental / full rerun of one month, bytes read",
         f"{inc_bytes / first:.2f} ({changed / 1e6:.1f} MB changed CSV + {kept / 1e6:.1f} MB of the 7 others' parts "
         f"or CSV / "
         f"{first:.1f} MB of CSV)", inc_bytes / first, 0.25, "≤ 0.25"),
        *big_rows,
    ]
    spec = data["spec"]
    out = [
        "# gid benchmark (`make bench`)",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}; machine: {os.cpu_count()} cores, "
        f"{cpu_model()}; load average before {load_before[0]:.2f}, after {load_after[0]:.2f}",
        f"- dataset: BENCH_SCALE={SCALE:g} → {spec['from']}..{spec['to']}, {spec['files']} files x {spec['rows']} rows "
        f"per month + 1 empty file (gid-admin sample, seed {spec['seed']}, with dirty rows): {len(data['files'])} objects, "
        f"{mb:.0f} MB, {rows / 1e6:.2f} M good rows; largest month {largest:.1f} MB",
        f"- gid {v['gid']} release build, stages ingest+aggregate+publish, --force, --jobs {JOBS}, ingest.concurrency 8; "
        f"Python {platform.python_version()}: pandas {v['pandas']}, polars {v['polars']}, duckdb {v['duckdb']}, "
        f"boto3 {v['boto3']}, moto {v['moto']}",
        f"- {REPEAT} rounds, every contender once per round (interleaved); medians shown, peak RSS is the max. "
        "Python contenders are timed after their imports; gid as the whole process.",
        "",
        *lines,
        "",
        "| ratio | value | target (issue 12) | |",
        "|---|---:|---|---|",
        *(f"| {label} | {value} | {target} | {verdict(x, limit)} |" for label, value, x, limit, target in ratio_rows),
        *([
            f"| after/before wall, aws | {g_aws / med(results, 'base_aws', 'work'):.2f} | — | |",
            f"| after/before wall, local | {g_local / med(results, 'base_local', 'work'):.2f} | — | |",
            f"| after/before CPU, local | {med(results, 'gid_local', 'cpu') / med(results, 'base_local', 'cpu'):.2f} "
            "| — | |",
            f"| after/before peak RSS, local 12 months / one month | "
            f"{rss_local / max(e['rss_mb'] for e in results['base_local']):.2f} / "
            f"{rss_1m / max(e['rss_mb'] for e in results['base_local_1m']):.2f} | — | |",
        ] if BASELINE else []),
        "",
        f"moto_server is one Python process on the same 2 cores: its CPU (last column) is time gid "
        f"cannot use. gid made {med(results, 'gid_aws', 'requests') or 0:.0f} S3 requests (GET/PUT/HEAD/LIST: inputs, "
        f"table, quarantine, summary, site, index, run manifests); the floor {len(data['files']) + 1}.",
        "",
        f"Setup (not timed above): dataset {'generated in %.1f s' % data['generated_s'] if data['generated_s'] else 'reused'}, "
        f"copied into moto_server in {upload_s:.1f} s; whole bench {total_s:.0f} s"
        + (f"; release build {float(os.environ['BENCH_BUILD_SECONDS']):.0f} s"
           if os.environ.get("BENCH_BUILD_SECONDS") else "")
        + ".",
        "",
    ]
    return "\n".join(out)


if __name__ == "__main__":
    main()
