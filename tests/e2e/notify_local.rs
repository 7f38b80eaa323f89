//! Alerts end to end on the local backend: contacts subscribed from the staging bucket,
//! threshold alerts in the outbox, never twice for a month unless forced.

use std::path::Path;

use gid_core::Month;
use gid_e2e::{
    assert_failure_says, assert_success, run_local, run_local_json, stderr, stdout, summary_stage,
    StubResponse, StubServer,
};
use gid_notify::{LocalOutbox, Notifier, TopicName};
use gid_sample::{generate_month, SampleSpec};
use serde_json::Value;

fn messages(root: &Path) -> Vec<serde_json::Value> {
    let dir = root.join("outbox/messages");
    let mut names: Vec<_> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => return vec![],
    };
    names.sort();
    names
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

#[test]
fn threshold_alerts_reach_subscribed_contacts_once_per_month() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    crate::fixtures::seed_default(root, "2019-01", "2019-01");

    let out = run_local("gid-admin", root, &["subscribe"]);
    assert_success(&out);
    assert!(
        stdout(&out)
            .contains("4 contacts → 2 topics: 8 subscribed, 0 already subscribed, 2 rejected rows"),
        "{}",
        stdout(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains("contacts.csv line 6: email address \"sam.jones@example\" is invalid"),
        "{err}"
    );
    // Off a terminal, progress is a log line (at most every few seconds, and at the end).
    assert!(err.contains("subscribed 8 of 8 endpoints"), "{err}");
    assert!(
        err.contains("contacts.csv line 7: phone number \"619-555\" is invalid"),
        "{err}"
    );
    let again = run_local("gid-admin", root, &["subscribe"]);
    assert!(
        stdout(&again).contains("0 subscribed, 8 already subscribed"),
        "{}",
        stdout(&again)
    );

    assert_success(&run_local("monthly-report", root, &["--month", "2019-01"]));
    let truth = generate_month(Month::new(2019, 1).unwrap(), &SampleSpec::default()).truth;
    let sent = messages(root);
    let texts: Vec<&str> = sent
        .iter()
        .map(|m| m["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            format!(
                "Trash violations count is now {} for 2019-01",
                truth.service_counts["Illegal Dumping"]
            ),
            format!(
                "Pothole count is now {} for 2019-01",
                truth.service_counts["Pothole"]
            ),
        ]
    );
    let trash = &sent[0];
    assert_eq!(trash["subject"], "Trash violations above 100 in 2019-01");
    let endpoints: Vec<&str> = trash["delivered_to"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["endpoint"].as_str().unwrap())
        .collect();
    assert_eq!(
        endpoints.len(),
        4,
        "two trash contacts, SMS and email each: {endpoints:?}"
    );
    assert!(endpoints.contains(&"+16195550101") && endpoints.contains(&"dev.patel@example.org"));

    // Past the manifests (a rerun of the stage itself), the ledger still refuses to resend.
    std::fs::remove_file(root.join("gid-work/2019/jan/manifests/notify.json")).unwrap();
    let topics = |doc: &serde_json::Value, outcome: &str| -> Vec<String> {
        summary_stage(doc, "2019-01", "notify")["counts"][outcome]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["topic"].as_str().unwrap().to_owned())
            .collect()
    };
    let (rerun, doc) = run_local_json(
        "monthly-report",
        root,
        &["--month", "2019-01", "--stage", "notify"],
    );
    assert_success(&rerun);
    assert!(topics(&doc, "sent").is_empty(), "{doc:#}");
    assert_eq!(topics(&doc, "already_sent"), ["trash", "streets"]);
    assert_eq!(messages(root).len(), 2);

    let (forced, doc) = run_local_json(
        "monthly-report",
        root,
        &["--month", "2019-01", "--stage", "notify", "--force"],
    );
    assert_success(&forced);
    assert_eq!(topics(&doc, "sent"), ["trash", "streets"]);
    assert_eq!(messages(root).len(), 4);
}

#[test]
fn gid_admin_manages_topics_subscriptions_and_direct_sms() {
    let dir = tempfile::tempdir().unwrap();
    let root = &dir.path().join("data");
    let contacts = dir.path().join("contacts.csv");
    std::fs::write(
        &contacts,
        "Name,Department,Email,Phone\nAna,Trash,ana@example.org,+16195550100\nBo,Trsh,,+16195550101\n",
    )
    .unwrap();
    let out = run_local(
        "gid-admin",
        root,
        &["subscribe", "--file", contacts.to_str().unwrap()],
    );
    assert_success(&out);
    assert!(
        stderr(&out).contains(
            "department \"Trsh\" (line 3) is not in notify.departments: subscribed to streets; did you mean \"Trash\"?"
        ),
        "{}",
        stderr(&out)
    );
    assert_success(&run_local(
        "gid-admin",
        root,
        &["topic", "create", "critical"],
    ));
    // Operators name topics short; the topics themselves carry gid's prefix.
    let topics = stdout(&run_local("gid-admin", root, &["topic", "list"]));
    assert!(
        topics.contains(":gid-trash")
            && topics.contains(":gid-critical")
            && topics.lines().any(|l| l.starts_with("trash ")),
        "{topics}"
    );

    let listed = stdout(&run_local(
        "gid-admin",
        root,
        &["subscriptions", "list", "--topic", "trash"],
    ));
    assert!(
        listed.contains("sms") && listed.contains("ana@example.org"),
        "{listed}"
    );
    let out = run_local(
        "gid-admin",
        root,
        &["unsubscribe", "--topic", "trash", "--protocol", "sms"],
    );
    assert_success(&out);
    assert!(stdout(&out).starts_with("removed 1"), "{}", stdout(&out));
    let listed = stdout(&run_local(
        "gid-admin",
        root,
        &["subscriptions", "list", "--topic", "trash"],
    ));
    assert!(
        !listed.contains("+16195550100") && listed.contains("ana@example.org"),
        "{listed}"
    );

    assert_success(&run_local(
        "gid-admin",
        root,
        &[
            "publish",
            "--topic",
            "trash",
            "--subject",
            "Test",
            "--message",
            "hello",
        ],
    ));
    assert_eq!(messages(root)[0]["message"], "hello");
    assert_success(&run_local(
        "gid-admin",
        root,
        &[
            "sms",
            "send",
            "--phone",
            "+16195550100",
            "--message",
            "pick up",
        ],
    ));
    let sms: Vec<_> = std::fs::read_dir(root.join("outbox/sms"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(sms.len(), 1);
    let sent: serde_json::Value = serde_json::from_slice(&std::fs::read(&sms[0]).unwrap()).unwrap();
    assert_eq!(
        sent["message_attributes"],
        serde_json::json!({"AWS.SNS.SMS.SMSType": "Transactional"}),
        "never the account's default (Promotional)"
    );
    let bad = run_local(
        "gid-admin",
        root,
        &["sms", "send", "--phone", "555", "--message", "x"],
    );
    assert!(
        !bad.status.success() && stderr(&bad).contains("E.164"),
        "{}",
        stderr(&bad)
    );

    let refused = run_local("gid-admin", root, &["topic", "prune"]);
    assert!(
        !refused.status.success() && stderr(&refused).contains("rerun with --yes"),
        "{}",
        stderr(&refused)
    );
    assert_success(&run_local("gid-admin", root, &["topic", "prune", "--yes"]));
    let topics = stdout(&run_local("gid-admin", root, &["topic", "list"]));
    assert!(
        !topics.contains(":gid-trash") && topics.contains(":gid-critical"),
        "{topics}"
    );
}

/// Runs gid-admin with `--output json`, checks it succeeded and returns its one document.
fn admin_json(root: &Path, args: &[&str]) -> Value {
    let args: Vec<&str> = args.iter().copied().chain(["--output", "json"]).collect();
    let out = run_local("gid-admin", root, &args);
    assert_success(&out);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", stdout(&out)))
}

fn subscription_count(root: &Path, topic: &str) -> usize {
    let listed = stdout(&run_local(
        "gid-admin",
        root,
        &["subscriptions", "list", "--topic", topic],
    ));
    listed.lines().skip(1).count()
}

#[test]
fn one_endpoint_is_subscribed_once_and_a_dry_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let phone = [
        "subscribe",
        "--topic",
        "trash",
        "--sms",
        "+1 (619) 555-0100",
    ];

    let planned = admin_json(root, &[&phone[..], &["--dry-run"]].concat());
    assert_eq!(planned["result"], "would_subscribe");
    assert_eq!(planned["topic_created"], true);
    assert_eq!(planned["sns_topic"], "gid-trash");
    assert!(
        stdout(&run_local("gid-admin", root, &["topic", "list"]))
            .trim()
            .is_empty(),
        "a dry run creates no topic"
    );

    let done = admin_json(root, &phone);
    assert_eq!(done["result"], "subscribed");
    assert_eq!(done["protocol"], "sms");
    assert_eq!(
        done["endpoint"], "+16195550100",
        "written as contacts rows are"
    );
    assert_eq!(done["status"], "confirmed");
    assert!(done["subscription_arn"]
        .as_str()
        .unwrap()
        .contains(":gid-trash:"));

    let again = run_local("gid-admin", root, &phone);
    assert_success(&again);
    assert!(
        stdout(&again).contains("already subscribed to trash")
            && stdout(&again).contains("nothing changed"),
        "{}",
        stdout(&again)
    );
    let email = [
        "subscribe",
        "--topic",
        "trash",
        "--email",
        "Pat@Example.org",
    ];
    assert_eq!(admin_json(root, &email)["result"], "subscribed");
    let email_again = [
        "subscribe",
        "--topic",
        "trash",
        "--email",
        "pat@example.org",
    ];
    assert_eq!(
        admin_json(root, &email_again)["result"],
        "already_subscribed"
    );
    assert_eq!(subscription_count(root, "trash"), 2);

    let bad = run_local(
        "gid-admin",
        root,
        &["subscribe", "--topic", "streets", "--sms", "619-555"],
    );
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("--sms: phone number \"619-555\" is invalid")
            && stderr(&bad).contains("nothing subscribed"),
        "{}",
        stderr(&bad)
    );
    assert!(!stdout(&run_local("gid-admin", root, &["topic", "list"])).contains("streets"));
}

#[tokio::test]
async fn topic_delete_takes_a_name_or_an_arn_and_needs_force_for_a_topic_without_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let phone = ["subscribe", "--topic", "trash", "--sms", "+16195550100"];
    let trash = admin_json(root, &phone)["topic_arn"]
        .as_str()
        .unwrap()
        .to_owned();
    // Another team's topic in the same account: no gid prefix.
    let outbox = LocalOutbox::new(root.join("outbox"));
    let payroll = outbox
        .create_topic(&TopicName::new("payroll-alerts").unwrap())
        .await
        .unwrap();

    let planned = admin_json(root, &["topic", "delete", "trash", "--dry-run"]);
    assert_eq!(planned["deleted"], false);
    assert_eq!(planned["subscriptions"], 1);
    assert_eq!(
        subscription_count(root, "trash"),
        1,
        "a dry run deletes nothing"
    );

    let missing = run_local("gid-admin", root, &["topic", "delete", "graffiti"]);
    assert_failure_says(
        &missing,
        "topic graffiti (SNS topic gid-graffiti) does not exist",
    );
    let full_name = run_local("gid-admin", root, &["topic", "delete", "gid-trash"]);
    assert_failure_says(&full_name, "did you mean trash?");

    let refused = run_local("gid-admin", root, &["topic", "delete", payroll.as_str()]);
    assert!(!refused.status.success());
    let err = stderr(&refused);
    assert!(
        err.contains("is not gid's") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        outbox.list_topics().await.unwrap().len(),
        2,
        "refused: nothing deleted"
    );
    let forced = admin_json(root, &["topic", "delete", payroll.as_str(), "--force"]);
    assert_eq!(forced["deleted"], true);
    assert_eq!(forced["topic"], Value::Null, "not one of gid's");

    let deleted = admin_json(root, &["topic", "delete", &trash]);
    assert_eq!(
        (deleted["deleted"].clone(), deleted["topic"].clone()),
        (Value::Bool(true), "trash".into())
    );
    assert!(outbox.list_topics().await.unwrap().is_empty());
    let gone = run_local("gid-admin", root, &["topic", "delete", &trash]);
    assert_failure_says(&gone, "does not exist");
}

#[test]
fn subscribe_reads_the_contacts_list_from_a_url_and_never_shows_its_signature() {
    let csv = "Name,Department,Email,Phone\nAna,Trash,ana@example.org,+16195550100\nBo,Streets,,+16195550101\n";
    let server = StubServer::start(vec![StubResponse::ok(&[("Content-Type", "text/csv")], csv)]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let url = format!("{}/contacts.csv?X-Amz-Signature=s3cr3t", server.endpoint);
    let doc = admin_json(root, &["subscribe", "--file", &url]);
    assert_eq!(doc["subscribed"], 3);
    assert_eq!(doc["source"], format!("{}/contacts.csv", server.endpoint));
    assert_eq!(
        server.requests()[0].path,
        "/contacts.csv?X-Amz-Signature=s3cr3t"
    );

    let expired = StubServer::start(vec![StubResponse::s3_error(
        403,
        "AccessDenied",
        "Request has expired",
    )]);
    let url = format!("{}/contacts.csv?X-Amz-Signature=s3cr3t", expired.endpoint);
    let out = run_local("gid-admin", root, &["subscribe", "--file", &url]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "downloading {}/contacts.csv failed: the server answered HTTP 403",
            expired.endpoint
        )) && err.contains("ask for a new one"),
        "{err}"
    );
    assert!(
        !err.contains("s3cr3t") && !stdout(&out).contains("s3cr3t"),
        "{err}"
    );
}
