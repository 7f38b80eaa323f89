//! Credentials never leak: every binary runs with recognisable fake AWS credentials in its
//! environment, at the most verbose log level (`-vv`, trace, text and JSON), on both
//! profiles (the aws one against moto_server), through successes, dry runs and errors; then
//! every output is searched for them: stdout, stderr, every object written to every
//! bucket, every file under the local data root, the outbox.

use std::path::Path;
use std::process::Output;

use gid_core::BucketName;
use gid_e2e::{assert_success, moto_endpoint, moto_sns_endpoint, run_with_env, stderr, unique};
use gid_storage::{list_all, ObjectStore};

const ACCESS_KEY_ID: &str = "AKIAGIDTESTCANARY0001";
const SECRET_ACCESS_KEY: &str = "gid/canary/secret/Zq9xW2vB7nM4kL1pR8tY5uI3oP6aS0dF";
const SESSION_TOKEN: &str = "GIDCANARYSESSIONTOKEN0001/FwoGZXIvYXdzEJr+canary/token==";

/// What must never appear: each credential, and fragments that survive escaping,
/// percent-encoding or truncation.
fn needles() -> Vec<&'static str> {
    vec![
        ACCESS_KEY_ID,
        SECRET_ACCESS_KEY,
        "Zq9xW2vB7nM4kL1pR8tY5uI3oP6aS0dF",
        "gid%2Fcanary%2Fsecret",
        SESSION_TOKEN,
        "GIDCANARYSESSIONTOKEN0001",
        "FwoGZXIvYXdzEJr",
    ]
}

/// Collects every output and what it was, and checks each for credentials.
#[derive(Default)]
struct Scan {
    scanned: usize,
    leaks: Vec<String>,
}

impl Scan {
    fn check(&mut self, what: &str, bytes: &[u8]) {
        self.scanned += 1;
        let text = String::from_utf8_lossy(bytes);
        for needle in needles() {
            if let Some(at) = text.find(needle) {
                let from = text[..at]
                    .char_indices()
                    .rev()
                    .nth(120)
                    .map_or(0, |(i, _)| i);
                let context: String = text[from..].chars().take(300).collect();
                self.leaks
                    .push(format!("{what} contains {needle:?}: …{context}…"));
            }
        }
    }

    fn output(&mut self, what: &str, output: &Output) {
        self.check(&format!("{what} stdout"), &output.stdout);
        self.check(&format!("{what} stderr"), &output.stderr);
    }

    fn tree(&mut self, root: &Path) {
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    self.check(&path.display().to_string(), &std::fs::read(&path).unwrap());
                }
            }
        }
    }

    fn assert_clean(&self, least: usize) {
        assert!(
            self.leaks.is_empty(),
            "credentials leaked:\n{}",
            self.leaks.join("\n")
        );
        assert!(
            self.scanned >= least,
            "only {} outputs scanned",
            self.scanned
        );
    }
}

fn canary_env<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
        ("AWS_SESSION_TOKEN", SESSION_TOKEN),
        ("AWS_REGION", "us-east-1"),
    ];
    env.extend_from_slice(extra);
    env
}

#[test]
fn the_scanner_finds_a_planted_credential() {
    // The assertions below are only as good as the scanner.
    for planted in [
        format!("x-amz-security-token: {SESSION_TOKEN}"),
        "X-Amz-Security-Token=GIDCANARYSESSIONTOKEN0001%2FFwoGZXIvYXdzEJr%2B".to_owned(),
        "secret=gid%2Fcanary%2Fsecret%2FZq9".to_owned(),
        "secret_access_key: \"...Zq9xW2vB7nM4kL1pR8tY5uI3oP6aS0dF\"".to_owned(),
        "Credential=AKIAGIDTESTCANARY0001/20190101".to_owned(),
    ] {
        let mut scan = Scan::default();
        scan.check("planted", planted.as_bytes());
        assert!(!scan.leaks.is_empty(), "{planted} not found");
    }
}

#[test]
fn local_profile_outputs_hold_no_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let outbox = root.join("outbox");
    let env = canary_env(&[
        ("GID__LOCAL__DATA_ROOT", root.to_str().unwrap()),
        ("GID__NOTIFY__OUTBOX_DIR", outbox.to_str().unwrap()),
    ]);
    let mut scan = Scan::default();
    let mut run = |name: &str, args: &[&str], must_succeed: bool| {
        let out = run_with_env(name, args, &env, "local");
        if must_succeed {
            assert_success(&out);
        }
        scan.output(&format!("{name} {}", args.join(" ")), &out);
    };
    run(
        "gid-admin",
        &["-vv", "sample", "--from", "2019-01", "--to", "2019-01"],
        true,
    );
    run("gid-admin", &["-vv", "subscribe"], true);
    run(
        "monthly-report",
        &["-vv", "--month", "2019-01", "--dry-run"],
        true,
    );
    run("monthly-report", &["-vv", "--month", "2019-01"], true);
    run(
        "monthly-report",
        &[
            "-vv",
            "--log-format",
            "json",
            "--month",
            "2019-01",
            "--force",
        ],
        true,
    );
    run(
        "scooter-pickups",
        &["-vv", "--month", "2019-01", "--dry-run"],
        true,
    );
    run(
        "gid-admin",
        &["-vv", "runs", "--from", "2019-01", "--to", "2019-01"],
        true,
    );
    run(
        "gid-admin",
        &["-vv", "presign", "gid-reports", "index.html"],
        true,
    );
    run(
        "gid-admin",
        &["-vv", "object", "head", "gid-reports", "missing.html"],
        false,
    );
    run("monthly-report", &["-vv", "--month", "2018-01"], false);
    scan.tree(&root);
    scan.assert_clean(25);
    eprintln!("local profile: {} outputs scanned", scan.scanned);
}

#[tokio::test]
async fn aws_profile_outputs_and_objects_hold_no_credentials() {
    let endpoint = moto_endpoint();
    let sns = moto_sns_endpoint();
    let names: Vec<String> = ["gid-req", "gid-rep", "gid-img", "gid-stg", "gid-wrk"]
        .iter()
        .map(|p| unique(p))
        .collect();
    let env = canary_env(&[
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("GID__NOTIFY__SNS_ENDPOINT_URL", sns.as_str()),
        ("GID__BUCKETS__REQUESTS", names[0].as_str()),
        ("GID__BUCKETS__REPORTS", names[1].as_str()),
        ("GID__BUCKETS__IMAGES", names[2].as_str()),
        ("GID__BUCKETS__STAGING", names[3].as_str()),
        ("GID__BUCKETS__WORK", names[4].as_str()),
    ]);
    let mut scan = Scan::default();
    let mut run = |name: &str, args: &[&str], must_succeed: bool| {
        let out = run_with_env(name, args, &env, "aws");
        if must_succeed {
            assert_success(&out);
        }
        scan.output(&format!("{name} {}", args.join(" ")), &out);
        out
    };
    // An error before the buckets exist: the message must not carry the credentials.
    let missing = run("monthly-report", &["-vv", "--month", "2019-01"], false);
    assert!(!missing.status.success());
    for b in &names {
        run("gid-admin", &["-vv", "bucket", "create", b], true);
    }
    run(
        "gid-admin",
        &["-vv", "sample", "--from", "2019-01", "--to", "2019-01"],
        true,
    );
    run("gid-admin", &["-vv", "subscribe"], true);
    run(
        "monthly-report",
        &["-vv", "--month", "2019-01", "--dry-run"],
        true,
    );
    let verbose = ["-v", "--month", "2019-01", "--stage", "ingest", "--force"];
    run("monthly-report", &verbose, true);
    let traced = run("monthly-report", &["-vv", "--month", "2019-01"], true);
    // The trace really is the SDK's: requests, signing and HTTP are in it.
    let trace = stderr(&traced);
    assert!(
        trace.contains("aws_smithy") || trace.contains("aws_sigv4") || trace.contains("hyper"),
        "-vv shows the SDK's trace: {}",
        &trace[..trace.len().min(2000)]
    );
    run(
        "monthly-report",
        &[
            "-vv",
            "--log-format",
            "json",
            "--month",
            "2019-01",
            "--force",
        ],
        true,
    );
    run(
        "scooter-pickups",
        &["-vv", "--month", "2019-01", "--dry-run"],
        true,
    );
    run("gid-admin", &["-vv", "object", "list", &names[1]], true);
    run(
        "gid-admin",
        &["-vv", "object", "head", &names[1], "missing.html"],
        false,
    );
    run(
        "gid-admin",
        &["-vv", "runs", "--from", "2019-01", "--to", "2019-01"],
        true,
    );
    run("gid-admin", &["-vv", "topic", "list"], true);
    run("gid-admin", &["-vv", "url", &names[1], "index.html"], true);
    // A presigned URL is a bearer credential by design (X-Amz-Credential names the key id,
    // and a session token rides along): only the secret key must be absent from it.
    let presign = run_with_env(
        "gid-admin",
        &["-vv", "presign", &names[1], "index.html"],
        &env,
        "aws",
    );
    assert_success(&presign);
    let url = String::from_utf8_lossy(&presign.stdout).into_owned();
    assert!(url.contains("X-Amz-Signature="), "{url}");
    assert!(!url.contains(SECRET_ACCESS_KEY) && !url.contains("Zq9xW2vB7nM4kL1pR8tY5uI3oP6aS0dF"));
    let presign_log = String::from_utf8_lossy(&presign.stderr).into_owned();
    scan.check("gid-admin presign stderr", presign_log.as_bytes());

    // Every object of every bucket.
    let store = crate::support_aws::s3().await;
    let mut objects = 0;
    for name in &names {
        let bucket = BucketName::new(name.clone()).unwrap();
        for meta in list_all(&store, &bucket, "").await.unwrap() {
            let object = store.get(&bucket, &meta.key).await.unwrap();
            scan.check(&format!("s3://{name}/{}", meta.key), &object.body);
            objects += 1;
        }
    }
    assert!(objects >= 15, "the run wrote its objects: {objects}");
    scan.assert_clean(40);
    eprintln!(
        "aws profile: {} outputs scanned ({objects} objects)",
        scan.scanned
    );
}
