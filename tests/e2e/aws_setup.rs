//! The aws profile as real accounts configure it: every source of the standard credential
//! chain, the region, service-specific endpoints, retry settings, and messages an operator
//! can act on. Run against moto_server (and stub endpoints for what moto cannot be: an SSO
//! portal, IMDS, the ECS credentials endpoint), through the real binaries.

use std::path::Path;
use std::process::Output;

use gid_e2e::{
    assert_success, gid_command, moto_endpoint, stderr, stdout, unique, StubResponse, StubServer,
};

/// An AWS environment of its own: a home folder with `~/.aws/config`, none of the caller's
/// AWS variables, IMDS off unless a test turns it on.
struct AwsHome {
    dir: tempfile::TempDir,
}

impl AwsHome {
    fn new(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".aws")).unwrap();
        std::fs::write(dir.path().join(".aws/config"), config).unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs a gid binary on the aws profile with only `env` as AWS settings.
    fn run(&self, binary: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
        let mut command = gid_command(binary, "aws");
        for name in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_ENDPOINT_URL",
        ] {
            command.env_remove(name);
        }
        command
            .args(args)
            .env("HOME", self.path())
            .env("AWS_CONFIG_FILE", self.path().join(".aws/config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.path().join(".aws/credentials"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("GID__LOCAL__DATA_ROOT", self.path().join("data"));
        for (k, v) in env {
            command.env(k, v);
        }
        command.output().expect("binary runs")
    }
}

fn no_debug_text(out: &Output) {
    let err = stderr(out);
    assert!(
        !err.contains("DEBUG") && !err.contains("DispatchFailure") && !err.contains(" { "),
        "default verbosity shows gid's own lines only: {err}"
    );
}

#[test]
fn a_credential_process_profile_is_asked_once_for_every_client_of_a_run() {
    let home = AwsHome::new("");
    let marker = home.path().join("asked");
    let script = home.path().join("credentials.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho asked >> '{}'\necho '{{\"Version\": 1, \"AccessKeyId\": \"gid-process-key\", \"SecretAccessKey\": \"gid-process-secret\"}}'\n",
            marker.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(
        home.path().join(".aws/config"),
        format!(
            "[profile gid-process]\nregion = us-east-1\ncredential_process = {}\n",
            script.display()
        ),
    )
    .unwrap();
    let moto = moto_endpoint();
    let buckets = [
        ("GID__BUCKETS__REQUESTS", unique("gid-req")),
        ("GID__BUCKETS__WORK", unique("gid-work")),
        ("GID__BUCKETS__REPORTS", unique("gid-rep")),
        ("GID__BUCKETS__STAGING", unique("gid-stg")),
    ];
    let mut env: Vec<(&str, &str)> =
        vec![("AWS_PROFILE", "gid-process"), ("AWS_ENDPOINT_URL", &moto)];
    env.extend(buckets.iter().map(|(k, v)| (*k, v.as_str())));
    for (_, bucket) in &buckets {
        assert_success(&home.run("gid-admin", &env, &["bucket", "create", bucket]));
    }
    assert_success(&home.run("gid-admin", &env, &["sample", "--month", "2019-01"]));
    let asked_before = std::fs::read_to_string(&marker).unwrap().lines().count();

    // S3 and SNS (the notify stage) in one run: one credential lookup.
    let out = home.run("monthly-report", &env, &["--month", "2019-01"]);
    assert_success(&out);
    no_debug_text(&out);
    let asked = std::fs::read_to_string(&marker).unwrap().lines().count() - asked_before;
    assert_eq!(asked, 1, "one credential cache for S3 and SNS");
}

#[test]
fn an_sso_profile_without_a_token_says_to_log_in() {
    let home = AwsHome::new(
        "[profile gid-sso]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Reader\nregion = us-east-1\n\n\
         [sso-session corp]\nsso_start_url = https://example.awsapps.com/start\nsso_region = us-east-1\n",
    );
    let moto = moto_endpoint();
    let out = home.run(
        "gid-admin",
        &[("AWS_PROFILE", "gid-sso"), ("AWS_ENDPOINT_URL", &moto)],
        &["object", "list", "gid-anything"],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("aws sso login --profile gid-sso"), "{err}");
    no_debug_text(&out);
}

#[test]
fn without_a_region_gid_says_how_to_set_one_instead_of_guessing() {
    let home = AwsHome::new("[profile bare]\n");
    let out = home.run(
        "gid-admin",
        &[
            ("AWS_PROFILE", "bare"),
            ("AWS_ACCESS_KEY_ID", "k"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ],
        &["object", "list", "gid-anything"],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    for hint in ["no AWS region", "aws.region", "AWS_REGION", "profile bare"] {
        assert!(err.contains(hint), "{hint}: {err}");
    }
}

#[test]
fn a_service_specific_s3_endpoint_with_a_host_name_is_addressed_path_style() {
    let home = AwsHome::new("");
    // moto by host name, set for S3 alone: virtual-hosted addressing would ask DNS for
    // <bucket>.localhost.
    let s3 = moto_endpoint().replace("127.0.0.1", "localhost");
    let bucket = unique("gid-edge");
    let env = [
        ("AWS_ENDPOINT_URL_S3", s3.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "k"),
        ("AWS_SECRET_ACCESS_KEY", "s"),
    ];
    assert_success(&home.run("gid-admin", &env, &["bucket", "create", &bucket]));
    let listed = home.run("gid-admin", &env, &["object", "list", &bucket]);
    assert_success(&listed);
    no_debug_text(&listed);
    let url = home.run("gid-admin", &env, &["url", &bucket, "index.html"]);
    assert_eq!(stdout(&url).trim(), format!("{s3}/{bucket}/index.html"));
}

#[test]
fn an_unreachable_endpoint_reads_as_one_sentence() {
    let home = AwsHome::new("");
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let out = home.run(
        "gid-admin",
        &[
            ("AWS_ENDPOINT_URL", &closed),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "k"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("GID__AWS__MAX_ATTEMPTS", "1"),
        ],
        &["object", "list", "gid-edge"],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("gid: list s3://gid-edge/: connection refused by ")
            && err.contains(&closed),
        "{err}"
    );
    no_debug_text(&out);
    let verbose = home.run(
        "gid-admin",
        &[
            ("AWS_ENDPOINT_URL", &closed),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "k"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("GID__AWS__MAX_ATTEMPTS", "1"),
        ],
        &["-v", "object", "list", "gid-edge"],
    );
    assert!(
        stderr(&verbose).contains("tcp connect error"),
        "-v shows the SDK's detail"
    );
}

/// Credentials from a stub endpoint (IMDS, ECS), then S3 on moto with them.
fn list_buckets_with(home: &AwsHome, env: &[(&str, &str)]) -> Output {
    let moto = moto_endpoint();
    let mut all = vec![
        ("AWS_ENDPOINT_URL", moto.as_str()),
        ("AWS_REGION", "us-east-1"),
    ];
    all.extend_from_slice(env);
    home.run("gid-admin", &all, &["bucket", "list"])
}

const ROLE_CREDENTIALS: &str = r#"{"Code": "Success", "LastUpdated": "2026-01-01T00:00:00Z", "Type": "AWS-HMAC", "AccessKeyId": "gid-role-key", "SecretAccessKey": "gid-role-secret", "Token": "gid-role-token", "Expiration": "2099-01-01T00:00:00Z"}"#;

#[test]
fn an_instance_role_is_read_from_imds_v2() {
    let home = AwsHome::new("");
    let imds = StubServer::start(vec![
        StubResponse::ok(
            &[("x-aws-ec2-metadata-token-ttl-seconds", "21600")],
            "gid-imds-token",
        ),
        StubResponse::ok(&[], "gid-role"),
        StubResponse::ok(&[], ROLE_CREDENTIALS),
    ]);
    let out = list_buckets_with(
        &home,
        &[
            ("AWS_EC2_METADATA_DISABLED", "false"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.endpoint),
        ],
    );
    assert_success(&out);
    let asked: Vec<String> = imds
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        asked
            .first()
            .is_some_and(|r| r.starts_with("PUT /latest/api/token")),
        "IMDSv2 takes a session token first: {asked:?}"
    );
    assert!(
        asked
            .iter()
            .any(|r| r.ends_with("/iam/security-credentials/gid-role")),
        "{asked:?}"
    );
}

#[test]
fn an_ecs_task_role_is_read_from_the_container_endpoint() {
    let home = AwsHome::new("");
    let ecs = StubServer::start(vec![StubResponse::ok(
        &[("Content-Type", "application/json")],
        ROLE_CREDENTIALS,
    )]);
    let uri = format!("{}/v2/credentials/gid-task", ecs.endpoint);
    let out = list_buckets_with(&home, &[("AWS_CONTAINER_CREDENTIALS_FULL_URI", &uri)]);
    assert_success(&out);
    assert_eq!(ecs.requests().len(), 1, "one lookup, cached");
}

#[test]
fn a_web_identity_token_is_exchanged_with_sts() {
    // EKS IRSA and Pod Identity's web-identity flavour: a token file and a role ARN; STS
    // (moto's) answers AssumeRoleWithWebIdentity.
    let home = AwsHome::new("");
    let token = home.path().join("token");
    std::fs::write(
        &token,
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJnaWQifQ.c2lnbmF0dXJl",
    )
    .unwrap();
    let token = token.to_str().unwrap().to_owned();
    let out = list_buckets_with(
        &home,
        &[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", &token),
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/gid-runner"),
            ("AWS_ROLE_SESSION_NAME", "gid-test"),
        ],
    );
    assert_success(&out);
}

/// The attempts gid-admin makes against a store that always fails, under `env`.
fn attempts_against_a_failing_store(env: &[(&str, &str)], profile_config: &str) -> usize {
    let home = AwsHome::new(profile_config);
    let stub = StubServer::start(vec![StubResponse::s3_error(
        500,
        "InternalError",
        "We encountered an internal error.",
    )]);
    let mut all = vec![
        ("AWS_ENDPOINT_URL", stub.endpoint.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "k"),
        ("AWS_SECRET_ACCESS_KEY", "s"),
        // Short backoff: the attempts are what counts here.
        ("GID__AWS__OPERATION_TIMEOUT_SECS", "60"),
    ];
    all.extend_from_slice(env);
    let out = home.run("gid-admin", &all, &["object", "head", "gid-stub", "k"]);
    assert!(!out.status.success());
    stub.requests().len()
}

#[test]
fn retry_settings_follow_the_aws_chain_unless_gid_sets_them() {
    assert_eq!(
        attempts_against_a_failing_store(&[("AWS_MAX_ATTEMPTS", "2")], ""),
        2,
        "AWS_MAX_ATTEMPTS applies"
    );
    assert_eq!(
        attempts_against_a_failing_store(
            &[("AWS_PROFILE", "retrying")],
            "[profile retrying]\nmax_attempts = 4\nretry_mode = adaptive\n"
        ),
        4,
        "the profile's max_attempts applies"
    );
    assert_eq!(
        attempts_against_a_failing_store(
            &[("AWS_MAX_ATTEMPTS", "2"), ("GID__AWS__MAX_ATTEMPTS", "1")],
            ""
        ),
        1,
        "gid's own setting wins"
    );
}

#[test]
fn json_logs_are_flat_objects_and_nothing_else_reaches_stderr() {
    let home = AwsHome::new("");
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let out = home.run(
        "gid-admin",
        &[
            ("AWS_ENDPOINT_URL", &closed),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "k"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("GID__AWS__MAX_ATTEMPTS", "1"),
        ],
        &["--log-format", "json", "object", "list", "gid-edge"],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    let records: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let error = records
        .iter()
        .find(|r| r["level"] == "ERROR")
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("connection refused by")),
        "the message is a top-level field: {error}"
    );
    assert!(error.get("fields").is_none(), "flat: {error}");
}
