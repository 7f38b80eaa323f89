//! gid-admin's S3 toolbox against moto_server (and presign on the local backend), and
//! object transfers that stream: multipart uploads on moto, bounded memory locally.

use std::io::{Read, Seek, Write};
use std::path::Path;
use std::process::Command;

use gid_e2e::{
    assert_failure_says, assert_success, bin, config_dir, http_get, moto_endpoint, run_local,
    run_with_env, stderr, stdout, unique,
};

fn admin(env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    run_with_env("gid-admin", args, env, "aws")
}

#[test]
fn gid_admin_covers_the_s3_operations() {
    let endpoint = moto_endpoint();
    let env = [("AWS_ENDPOINT_URL", endpoint.as_str())];
    let bucket = unique("gid-admin");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("contacts.csv");
    std::fs::write(&file, "Name,Department\nAna,trash\n").unwrap();
    let file = file.to_str().unwrap();

    assert_success(&admin(&env, &["bucket", "create", &bucket]));
    assert!(stdout(&admin(&env, &["bucket", "list"])).contains(&bucket));

    let out = admin(
        &env,
        &[
            "object",
            "upload",
            file,
            &bucket,
            "--key",
            "staging/contacts.csv",
            "--acl",
            "public-read",
        ],
    );
    assert_success(&out);
    assert!(stdout(&out).contains("text/csv"), "{}", stdout(&out));
    let head = stdout(&admin(
        &env,
        &["object", "head", &bucket, "staging/contacts.csv"],
    ));
    assert!(head.contains("content_type\ttext/csv"), "{head}");
    assert!(head.contains("size\t26"), "{head}");
    assert_eq!(
        stdout(&admin(
            &env,
            &["acl", "get", &bucket, "staging/contacts.csv"]
        ))
        .trim(),
        "public-read"
    );

    let url = stdout(&admin(&env, &["url", &bucket, "staging/contacts.csv"]));
    assert_eq!(
        url.trim(),
        format!("{endpoint}/{bucket}/staging/contacts.csv")
    );
    assert_eq!(
        http_get(url.trim()),
        (200, b"Name,Department\nAna,trash\n".to_vec())
    );

    // A private JSON object: inferred Content-Type, anonymous reads refused, presign works.
    let json = dir.path().join("alerts.json");
    std::fs::write(&json, "{\"sent\":[]}").unwrap();
    assert_success(&admin(
        &env,
        &["object", "upload", json.to_str().unwrap(), &bucket],
    ));
    let head = stdout(&admin(&env, &["object", "head", &bucket, "alerts.json"]));
    assert!(head.contains("content_type\tapplication/json"), "{head}");
    assert_eq!(http_get(&format!("{endpoint}/{bucket}/alerts.json")).0, 403);
    let presigned = stdout(&admin(
        &env,
        &["presign", &bucket, "alerts.json", "--expires", "600"],
    ));
    assert!(presigned.contains("X-Amz-Expires=600"), "{presigned}");
    assert_eq!(http_get(presigned.trim()), (200, b"{\"sent\":[]}".to_vec()));
    assert_success(&admin(
        &env,
        &["acl", "set", &bucket, "alerts.json", "--acl", "public-read"],
    ));
    assert_eq!(http_get(&format!("{endpoint}/{bucket}/alerts.json")).0, 200);

    let listing = stdout(&admin(&env, &["object", "list", &bucket]));
    assert_eq!(listing.lines().count(), 2, "{listing}");
    let limited = stdout(&admin(
        &env,
        &["object", "list", &bucket, "--max-keys", "1"],
    ));
    assert_eq!(limited.lines().count(), 1, "{limited}");
    let prefixed = stdout(&admin(
        &env,
        &["object", "list", &bucket, "--prefix", "staging/"],
    ));
    assert!(prefixed.contains("staging/contacts.csv") && !prefixed.contains("alerts.json"));

    let out_file = dir.path().join("back.csv");
    assert_success(&admin(
        &env,
        &[
            "object",
            "download",
            &bucket,
            "staging/contacts.csv",
            "-o",
            out_file.to_str().unwrap(),
        ],
    ));
    assert_eq!(
        std::fs::read(&out_file).unwrap(),
        b"Name,Department\nAna,trash\n"
    );

    let refused = admin(&env, &["bucket", "delete", &bucket]);
    assert_failure_says(&refused, "is not empty; use --force");
    assert_success(&admin(&env, &["object", "delete", &bucket, "alerts.json"]));
    let out = admin(&env, &["bucket", "delete", &bucket, "--force"]);
    assert_success(&out);
    assert!(
        stdout(&out).contains("1 objects deleted"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&admin(&env, &["bucket", "list"])).contains(&bucket));
}

#[test]
fn gid_admin_presign_on_the_local_backend_is_a_file_url() {
    let dir = tempfile::tempdir().unwrap();
    let root = &dir.path().join("data");
    let file = dir.path().join("r.csv");
    std::fs::write(&file, "a\n").unwrap();
    assert_success(&run_local(
        "gid-admin",
        root,
        &["bucket", "create", "gid-reports"],
    ));
    assert_success(&run_local(
        "gid-admin",
        root,
        &["object", "upload", file.to_str().unwrap(), "gid-reports"],
    ));
    let url = stdout(&run_local(
        "gid-admin",
        root,
        &["presign", "gid-reports", "r.csv"],
    ));
    let path = url.trim().strip_prefix("file://").expect("a file URL");
    assert_eq!(std::fs::read(path).unwrap(), b"a\n");
    let bad = run_local(
        "gid-admin",
        root,
        &["object", "head", "gid-reports", "../etc/passwd"],
    );
    assert_failure_says(&bad, "'..' segment");
}

/// Writes a file of `mib` MiB whose every MiB differs from the others, a MiB at a time.
fn write_patterned(path: &Path, mib: usize) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for block in 0..mib {
        let chunk: Vec<u8> = (0..1024 * 1024)
            .map(|i| (block as u8).wrapping_mul(31) ^ (i % 253) as u8)
            .collect();
        file.write_all(&chunk).unwrap();
    }
    file.flush().unwrap();
}

/// Whether two files hold the same bytes, compared a MiB at a time.
fn same_bytes(a: &Path, b: &Path) -> bool {
    let (mut a, mut b) = (
        std::fs::File::open(a).unwrap(),
        std::fs::File::open(b).unwrap(),
    );
    let (mut x, mut y) = (vec![0; 1024 * 1024], vec![0; 1024 * 1024]);
    loop {
        let n = a.read(&mut x).unwrap();
        if b.read_exact(&mut y[..n]).is_err() {
            return false;
        }
        if x[..n] != y[..n] {
            return false;
        }
        if n == 0 {
            return b.read(&mut y).unwrap() == 0;
        }
    }
}

/// Runs gid-admin on the local profile and returns whether it succeeded, its stderr and
/// its peak resident memory in MiB, as the kernel accounted it to the process (wait4).
///
/// The process is started by a small Python parent that forks and execs it, not by this
/// test binary: std spawns with vfork semantics (the child shares this process's memory
/// until exec), and Linux keeps the largest RSS a process had across exec, so a child
/// spawned from here inherits the peak of the whole test binary — of every other test
/// running beside it. Python's fork copies a ~10 MB interpreter instead.
fn local_admin_peak_mib(root: &Path, args: &[&str]) -> (bool, String, u64) {
    const FORK_EXEC_WAIT4: &str = "import os, sys
pid = os.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss, os.waitstatus_to_exitcode(status))";
    let log = tempfile::tempfile().unwrap();
    let out = Command::new("python3")
        .args(["-c", FORK_EXEC_WAIT4])
        .arg(bin("gid-admin"))
        .arg("--config-dir")
        .arg(config_dir())
        .args(["--profile", "local"])
        .args(args)
        .env("GID__LOCAL__DATA_ROOT", root)
        .env_remove("RUST_LOG")
        .stderr(log.try_clone().unwrap())
        .output()
        .expect("python3 runs");
    let mut stderr = String::new();
    let mut log = log;
    log.seek(std::io::SeekFrom::Start(0)).unwrap();
    log.read_to_string(&mut stderr).unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    let (max_rss_kib, code) = said
        .trim()
        .split_once(' ')
        .unwrap_or_else(|| panic!("the wait4 parent said {said:?}: {stderr}"));
    let max_rss_kib: u64 = max_rss_kib.parse().unwrap();
    (code == "0", stderr, max_rss_kib / 1024)
}

#[test]
fn gid_admin_moves_a_200_mb_file_in_and_out_of_the_local_store_in_bounded_memory() {
    const MIB: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let source = dir.path().join("large.bin");
    write_patterned(&source, MIB);
    assert_success(&run_local(
        "gid-admin",
        &root,
        &["bucket", "create", "gid-staging"],
    ));
    let (ok, log, upload_peak) = local_admin_peak_mib(
        &root,
        &["object", "upload", source.to_str().unwrap(), "gid-staging"],
    );
    assert!(ok, "{log}");
    let target = dir.path().join("back.bin");
    let (ok, log, download_peak) = local_admin_peak_mib(
        &root,
        &[
            "object",
            "download",
            "gid-staging",
            "large.bin",
            "-o",
            target.to_str().unwrap(),
        ],
    );
    assert!(ok, "{log}");
    assert!(same_bytes(&source, &target), "the download differs");
    let bound = MIB as u64 / 3;
    assert!(
        upload_peak < bound && download_peak < bound,
        "peak memory for a {MIB} MiB file: upload {upload_peak} MiB, download {download_peak} MiB (bound {bound} MiB)"
    );
}

#[test]
fn gid_admin_uploads_a_large_file_in_parts_and_downloads_it_whole() {
    let endpoint = moto_endpoint();
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("GID__AWS__MULTIPART_THRESHOLD_MB", "5"),
        ("GID__AWS__MULTIPART_PART_MB", "5"),
    ];
    let bucket = unique("gid-admin-multipart");
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("large.bin");
    write_patterned(&source, 12);
    assert_success(&admin(&env, &["bucket", "create", &bucket]));

    let out = admin(
        &env,
        &["object", "upload", source.to_str().unwrap(), &bucket],
    );
    assert_success(&out);
    let printed = stdout(&out);
    let etag = printed
        .trim()
        .rsplit_once("etag ")
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no ETag in {printed}"));
    assert!(
        etag.ends_with("-3"),
        "three parts (5 + 5 + 2 MiB): {printed}"
    );
    assert!(printed.contains("12582912 bytes"), "{printed}");
    let head = stdout(&admin(&env, &["object", "head", &bucket, "large.bin"]));
    assert!(
        head.contains("size\t12582912") && head.contains(&format!("etag\t{etag}")),
        "{head}"
    );
    let (status, uploads) = http_get(&format!("{endpoint}/{bucket}?uploads"));
    assert_eq!(status, 200);
    assert!(
        !String::from_utf8_lossy(&uploads).contains("<UploadId>"),
        "no multipart upload is left open"
    );

    let target = dir.path().join("back.bin");
    let out = admin(
        &env,
        &[
            "object",
            "download",
            &bucket,
            "large.bin",
            "-o",
            target.to_str().unwrap(),
        ],
    );
    assert_success(&out);
    assert!(same_bytes(&source, &target), "the download differs");
    let piped = admin(
        &env,
        &["object", "download", &bucket, "large.bin", "-o", "-"],
    );
    assert_success(&piped);
    assert!(
        piped.stdout == std::fs::read(&source).unwrap(),
        "stdout differs from the file"
    );
    assert_success(&admin(&env, &["bucket", "delete", &bucket, "--force"]));
}

/// Runs gid-admin on the aws profile with `--output json`; returns its one document.
fn admin_json(env: &[(&str, &str)], args: &[&str]) -> serde_json::Value {
    let args: Vec<&str> = args.iter().copied().chain(["--output", "json"]).collect();
    let out = admin(env, &args);
    assert_success(&out);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", stdout(&out)))
}

#[test]
fn gid_admin_subscribes_one_endpoint_once_and_deletes_its_topic_on_sns() {
    let endpoint = moto_endpoint();
    // A prefix of this test's own, so the shared moto_server's other topics stay apart.
    let prefix = format!("{}-", unique("t"));
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("GID__NOTIFY__TOPIC_PREFIX", prefix.as_str()),
    ];
    let email = [
        "subscribe",
        "--topic",
        "trash",
        "--email",
        "crew@example.org",
    ];

    let planned = admin_json(&env, &[&email[..], &["--dry-run"]].concat());
    assert_eq!(planned["result"], "would_subscribe");
    assert_eq!(planned["topic_created"], true);
    let done = admin_json(&env, &email);
    assert_eq!(done["result"], "subscribed");
    assert_eq!(done["sns_topic"], format!("{prefix}trash"));
    let topic = done["topic_arn"].as_str().unwrap().to_owned();
    let again = admin_json(&env, &email);
    assert_eq!(again["result"], "already_subscribed");
    assert_eq!(again["subscription_arn"], done["subscription_arn"]);

    let planned = admin_json(&env, &["topic", "delete", "trash", "--dry-run"]);
    assert_eq!(planned["subscriptions"], 1);
    assert_eq!(planned["deleted"], false);
    let deleted = admin_json(&env, &["topic", "delete", &topic]);
    assert_eq!(deleted["deleted"], true);
    assert_eq!(deleted["topic"], "trash");
    let gone = admin(&env, &["topic", "delete", "trash"]);
    assert!(!gone.status.success());
    assert!(
        stderr(&gone).contains(&format!(
            "topic trash (SNS topic {prefix}trash) does not exist"
        )),
        "{}",
        stderr(&gone)
    );
}

/// Runs a gid binary on the local profile with a stdout nobody reads: the pipe's read end
/// is closed before the process starts, so its first write to stdout fails with EPIPE, as
/// behind `| head -1` once head has its line.
fn run_with_closed_stdout(name: &str, data_root: &Path, args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    gid_e2e::gid_command(name, "local")
        .env("GID__LOCAL__DATA_ROOT", data_root)
        .env("GID__NOTIFY__OUTBOX_DIR", data_root.join("outbox"))
        .args(args)
        .stdout(writer)
        .output()
        .unwrap()
}

#[test]
fn a_reader_that_closes_stdout_early_ends_the_output_quietly_with_the_commands_exit_code() {
    let root = tempfile::tempdir().unwrap();
    let sample = [
        "sample", "--month", "2019-01", "--files", "3", "--rows", "20",
    ];
    let runs: [(&str, &[&str]); 2] = [
        ("gid-admin", &sample),
        (
            "monthly-report",
            &["--month", "2019-01", "--output", "json"],
        ),
    ];
    for (name, args) in runs {
        let out = run_with_closed_stdout(name, root.path(), args);
        let err = stderr(&out);
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{name}: {err}"
        );
        assert_eq!(out.status.code(), Some(0), "{name}: {err}");
    }
    // A streamed download stops where the reader stopped, without an error.
    let listing = stdout(&run_local(
        "gid-admin",
        root.path(),
        &["object", "list", "gid-requests", "--prefix", "2019/jan/"],
    ));
    let key = listing
        .lines()
        .find_map(|line| line.split_whitespace().find(|w| w.ends_with(".csv")))
        .unwrap_or_else(|| panic!("no export listed: {listing}"))
        .to_owned();
    let out = run_with_closed_stdout(
        "gid-admin",
        root.path(),
        &["object", "download", "gid-requests", &key, "--output", "-"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}
