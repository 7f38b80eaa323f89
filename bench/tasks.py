#!/usr/bin/env python3
"""The Python contenders of `make bench`, one per subcommand, each run as its own process
so the harness can read its peak RSS.

    tasks.py course  --endpoint URL --months 2019-01..2019-12 --out DIR   (boto3 + pandas on moto)
    tasks.py floor   --endpoint URL --threads 8                          (GET every input, nothing else)
    tasks.py polars  --root DATA_ROOT --months … --out DIR               (local disk)
    tasks.py polars-full --root DATA_ROOT --months … --out DIR           (all columns + Parquet)
    tasks.py duckdb  --root DATA_ROOT --months … --out DIR               (local disk)

Each prints one JSON line on stdout: {"work_s": seconds after the imports, "bytes": input
bytes read, "rows": data rows aggregated, "counts": {month: {service: n}}}. `work_s`
starts after the library imports (pandas alone takes ~0.5 s to import), so the Python
contenders are timed at their best; the harness reports the process wall time as well.
"""

import argparse
import json
import sys
import time

MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]


def month_list(spec):
    """'2019-01..2019-12' → [(2019, 1), …]."""
    start, _, end = spec.partition("..")
    end = end or start
    y, m = map(int, start.split("-"))
    ey, em = map(int, end.split("-"))
    out = []
    while (y, m) <= (ey, em):
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def prefix(year, month):
    return f"{year}/{MONTHS[month - 1]}/"


def s3_client(endpoint, pool=10):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="gid-bench",
        aws_secret_access_key="gid-bench",
        config=Config(max_pool_connections=pool),
    )


def list_keys(s3, bucket, prefix_):
    """Every key under the prefix. The course's `list_objects` call stops at the first
    1000 keys; this follows ListObjectsV2 pages so nothing is silently left out."""
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix_):
        keys.extend(page.get("Contents", []))
    return keys


def course(args):
    """The course's pipeline (boto3 + pandas), per month: list the month's exports, get
    and read each into pandas, concat, count requests per service_name, write the report
    as CSV and borderless HTML, upload both public-read, then rebuild the bucket listing
    page (index.html) the same way. Deviations needed to run on real exports at all:
    ListObjectsV2 pagination (see list_keys), `on_bad_lines="skip"` (else the first row
    with an extra field raises ParserError and the month is lost) and skipping empty files
    (else EmptyDataError)."""
    import os

    import pandas as pd

    started = time.perf_counter()
    s3 = s3_client(args.endpoint)
    total_bytes = rows = 0
    counts = {}
    for year, month in month_list(args.months):
        df_list = []
        for obj in list_keys(s3, "gid-requests", prefix(year, month)):
            response = s3.get_object(Bucket="gid-requests", Key=obj["Key"])
            total_bytes += obj["Size"]
            try:
                df_list.append(pd.read_csv(response["Body"], on_bad_lines="skip"))
            except pd.errors.EmptyDataError:
                continue
        df = pd.concat(df_list)
        rows += len(df)
        agg_df = df.groupby(["service_name"])[["service_request_id"]].count()
        agg_df = agg_df.rename(columns={"service_request_id": "request_count"})
        agg_df = agg_df.sort_values("request_count", ascending=False)
        counts[f"{year}-{month:02d}"] = {k: int(v) for k, v in agg_df["request_count"].items()}
        csv_path = os.path.join(args.out, f"{MONTHS[month - 1]}_final_report.csv")
        html_path = os.path.join(args.out, f"{MONTHS[month - 1]}_final_report.html")
        agg_df.to_csv(csv_path)
        agg_df.to_html(html_path, border=0)
        s3.upload_file(
            Filename=csv_path,
            Bucket="gid-reports",
            Key=prefix(year, month) + "final_report.csv",
            ExtraArgs={"ACL": "public-read"},
        )
        s3.upload_file(
            Filename=html_path,
            Bucket="gid-reports",
            Key=prefix(year, month) + "final_report.html",
            ExtraArgs={"ContentType": "text/html", "ACL": "public-read"},
        )
        objects_df = pd.DataFrame(list_keys(s3, "gid-reports", ""))
        objects_df["Link"] = "http://gid-reports.s3.amazonaws.com/" + objects_df["Key"]
        listing = os.path.join(args.out, "report_listing.html")
        objects_df.to_html(listing, columns=["Link", "LastModified", "Size"], render_links=True)
        s3.upload_file(
            Filename=listing,
            Bucket="gid-reports",
            Key="index.html",
            ExtraArgs={"ContentType": "text/html", "ACL": "public-read"},
        )
    return {"work_s": time.perf_counter() - started, "bytes": total_bytes, "rows": rows, "counts": counts}


def floor(args):
    """The raw-transfer floor: list the requests bucket and GET every object's bytes with a
    thread pool, nothing else (no parsing, no writes). boto3 releases the GIL while it waits
    on sockets; the server (moto_server, one Python process) is the bottleneck, not the
    client (BENCH_FLOOR_THREADS varies the pool)."""
    from concurrent.futures import ThreadPoolExecutor

    started = time.perf_counter()
    s3 = s3_client(args.endpoint, pool=args.threads + 2)
    keys = [o["Key"] for o in list_keys(s3, "gid-requests", "")]

    def fetch(key):
        return len(s3.get_object(Bucket="gid-requests", Key=key)["Body"].read())

    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        total = sum(pool.map(fetch, keys))
    return {"work_s": time.perf_counter() - started, "bytes": total, "rows": 0, "objects": len(keys)}


def month_files(root, year, month):
    import glob
    import os

    files = sorted(glob.glob(os.path.join(root, "gid-requests", prefix(year, month), "*.csv")))
    # Both engines refuse a zero-byte file; gid skips it with a warning.
    return [f for f in files if os.path.getsize(f) > 0], sum(os.path.getsize(f) for f in files)


def polars_task(args):
    """polars (Python), per month: lazily scan every export as text (schemas drift between
    files), diagonal concat by column name, count per service_name, write the CSV."""
    import os

    import polars as pl

    started = time.perf_counter()
    total_bytes = rows = 0
    counts = {}
    for year, month in month_list(args.months):
        files, size = month_files(args.root, year, month)
        total_bytes += size
        scans = [
            pl.scan_csv(f, infer_schema=False, truncate_ragged_lines=True, raise_if_empty=False)
            for f in files
        ]
        agg = (
            pl.concat(scans, how="diagonal")
            .group_by("service_name")
            .agg(pl.len().alias("request_count"))
            .sort(["request_count", "service_name"], descending=[True, False])
            .collect()
        )
        rows += int(agg["request_count"].sum())
        counts[f"{year}-{month:02d}"] = dict(zip(agg["service_name"].to_list(), agg["request_count"].to_list()))
        agg.write_csv(os.path.join(args.out, f"polars_{year}_{month:02d}.csv"))
    return {"work_s": time.perf_counter() - started, "bytes": total_bytes, "rows": rows, "counts": counts}


def polars_full_task(args):
    """polars (Python) doing the work gid's ingest does besides validation: read every
    column of every export as text, diagonal concat, write the month's table as Parquet
    (polars' defaults), then count per service_name from the table."""
    import os

    import polars as pl

    started = time.perf_counter()
    total_bytes = rows = 0
    counts = {}
    for year, month in month_list(args.months):
        files, size = month_files(args.root, year, month)
        total_bytes += size
        frames = [
            pl.read_csv(f, infer_schema=False, truncate_ragged_lines=True, raise_if_empty=False) for f in files
        ]
        table = pl.concat(frames, how="diagonal")
        table.write_parquet(os.path.join(args.out, f"polars_{year}_{month:02d}.parquet"))
        agg = table.group_by("service_name").agg(pl.len().alias("request_count"))
        rows += int(agg["request_count"].sum())
        counts[f"{year}-{month:02d}"] = dict(zip(agg["service_name"].to_list(), agg["request_count"].to_list()))
    return {"work_s": time.perf_counter() - started, "bytes": total_bytes, "rows": rows, "counts": counts}


def duckdb_task(args):
    """DuckDB, per month: read_csv over the month's exports (union_by_name for the drifted
    file, all_varchar, ignore_errors skips rows with the wrong field count, as gid
    quarantines them), GROUP BY service_name, write the result as CSV."""
    import os

    import duckdb

    started = time.perf_counter()
    con = duckdb.connect()
    total_bytes = rows = 0
    counts = {}
    for year, month in month_list(args.months):
        files, size = month_files(args.root, year, month)
        total_bytes += size
        out = os.path.join(args.out, f"duckdb_{year}_{month:02d}.csv")
        query = (
            "SELECT service_name, count(*) AS request_count FROM read_csv($files, header=true, "
            "union_by_name=true, all_varchar=true, ignore_errors=true) "
            "GROUP BY service_name ORDER BY request_count DESC, service_name"
        )
        result = con.execute(query, {"files": files}).fetchall()
        with open(out, "w", encoding="utf-8") as f:
            f.write("service_name,request_count\n")
            for name, n in result:
                f.write(f'"{name}",{n}\n')
        rows += sum(n for _, n in result)
        counts[f"{year}-{month:02d}"] = {name: n for name, n in result}
    return {"work_s": time.perf_counter() - started, "bytes": total_bytes, "rows": rows, "counts": counts}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=["course", "floor", "polars", "polars-full", "duckdb"])
    parser.add_argument("--endpoint")
    parser.add_argument("--root")
    parser.add_argument("--months", default="2019-01..2019-12")
    parser.add_argument("--out", default=".")
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    run = {
        "course": course,
        "floor": floor,
        "polars": polars_task,
        "polars-full": polars_full_task,
        "duckdb": duckdb_task,
    }[args.task]
    print(json.dumps(run(args)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
