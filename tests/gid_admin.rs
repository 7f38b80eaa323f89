//! gid-admin's S3 toolbox against moto_server (and presign on the local backend).

use gid_e2e::{
    assert_success, http_get, moto_endpoint, run_local, run_with_env, stderr, stdout, unique,
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
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("not empty (use --force"),
        "{}",
        stderr(&refused)
    );
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
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("'..' segment"), "{}", stderr(&bad));
}
