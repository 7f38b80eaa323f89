//! The SNS backend against moto_server, which `scripts/with-moto.sh` (used by `make test`)
//! starts and names in `GID_TEST_MOTO_ENDPOINT`.
//!
//! What was sent is read back through moto's own API (`/moto-api/data.json`), not taken
//! from the SDK's answers. One moto serves every test of the workspace at once, so each
//! test uses topic and bucket names of its own and never resets the server.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use gid_core::{BucketName, Month, ObjectKey};
use gid_notify::{
    create_gid_topic, evaluate_and_send, prune_topics, subscribe_contacts, unsubscribe_all,
    AlertLedger, AlertPolicy, AlertResult, ContactList, DepartmentTable, EmailAddress, Endpoint,
    LedgerLocation, Notifier, PhoneNumber, Protocol, Resend, SmsAttributes, SnsNotifier,
    SnsSettings, SubscriptionStatus, Threshold, TopicAdmin, TopicArn, TopicName, TopicPrefix,
};
use gid_storage::{list_all, BucketAdmin, ObjectStore, S3Settings, S3Store};
use serde_json::Value;

/// The moto_server reserved for tests that read `/moto-api/data.json` (no test deletes
/// S3 buckets there, which would make that endpoint answer 500).
fn moto_endpoint() -> String {
    std::env::var("GID_TEST_MOTO_SNS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "GID_TEST_MOTO_SNS_ENDPOINT is not set: the SNS tests need moto_server. Run them with \
             `make test`, or `scripts/with-moto.sh cargo test -p gid-notify`, which start it"
        )
    })
}

/// A name no other test (in this process or another) uses on the shared moto.
fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

async fn sns() -> SnsNotifier {
    SnsNotifier::connect(&SnsSettings {
        endpoint_url: Some(moto_endpoint()),
        max_attempts: 2,
        operation_timeout: Duration::from_secs(30),
        ..SnsSettings::default()
    })
    .await
    .expect("AWS configuration")
}

async fn s3() -> S3Store {
    S3Store::connect(&S3Settings {
        endpoint_url: Some(moto_endpoint()),
        max_attempts: 2,
        operation_timeout: Duration::from_secs(30),
        ..S3Settings::default()
    })
    .await
    .expect("AWS configuration")
}

/// `GET path` on moto with a bare HTTP/1.0 request (the answer ends when moto closes).
fn http_get(path: &str) -> (u16, Vec<u8>) {
    let endpoint = moto_endpoint();
    let host = endpoint
        .strip_prefix("http://")
        .expect("moto endpoint is http://host:port")
        .trim_end_matches('/');
    let mut stream = TcpStream::connect(host).unwrap_or_else(|e| panic!("connect {host}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP response has a header block");
    let status_line = String::from_utf8_lossy(&response[..split]);
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {status_line}"));
    (status, response[split + 4..].to_vec())
}

/// moto's whole SNS state.
fn moto_sns() -> Value {
    // data.json answers 500 while an S3 multipart upload is unfinished somewhere on the
    // shared server (MOTO.md); such uploads are short-lived, so wait a little.
    for _ in 0..20 {
        let (status, body) = http_get("/moto-api/data.json");
        if status == 200 {
            let mut state: Value = serde_json::from_slice(&body).expect("data.json is JSON");
            return state["sns"].take();
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("moto's /moto-api/data.json kept failing (an unfinished S3 multipart upload on the shared server?)");
}

/// A topic prefix of this test's own, so the test's topics are told apart from every other
/// test's on the shared moto (and pruning them touches nobody else's).
fn unique_prefix() -> TopicPrefix {
    TopicPrefix::new(format!("{}-", unique("p"))).unwrap()
}

/// What moto recorded as published to `topic`: (message id, message, subject), merging the
/// duplicate `Topic` entries moto keeps per `create_topic` call.
fn sent_to(topic: &TopicArn) -> Vec<(String, String, Option<String>)> {
    sent_with_attributes(topic)
        .into_iter()
        .map(|(id, message, subject, _)| (id, message, subject))
        .collect()
}

/// [`sent_to`] with the message attributes moto recorded for each publish (as sent:
/// name → `{"Type": "String", "Value": …}`).
fn sent_with_attributes(topic: &TopicArn) -> Vec<(String, String, Option<String>, Value)> {
    let state = moto_sns();
    let mut sent: Vec<(String, String, Option<String>, Value)> = Vec::new();
    for entry in state["Topic"].as_array().expect("Topic list") {
        if entry["arn"] != topic.as_str() {
            continue;
        }
        for n in entry["sent_notifications"]
            .as_array()
            .expect("notifications")
        {
            let id = n[0].as_str().expect("message id").to_owned();
            if !sent.iter().any(|(seen, ..)| *seen == id) {
                sent.push((
                    id,
                    n[1].as_str().expect("message").to_owned(),
                    n[2].as_str().map(str::to_owned),
                    n[3].clone(),
                ));
            }
        }
    }
    sent
}

fn jan() -> Month {
    "2019-01".parse().unwrap()
}

#[tokio::test]
async fn sns_backend_passes_the_conformance_suite() {
    let notifier = sns().await;
    gid_notify::conformance::run_all(&notifier, &unique("conf")).await;
}

#[tokio::test]
async fn published_messages_and_direct_sms_are_what_moto_received() {
    let notifier = sns().await;
    let topic = notifier
        .create_topic(&TopicName::new(unique("readback")).unwrap())
        .await
        .unwrap();
    let id = notifier
        .publish(
            &topic,
            Some("Pothole above 30 in 2019-01"),
            "Pothole count is now 45 for 2019-01",
        )
        .await
        .unwrap();
    assert_eq!(
        sent_to(&topic),
        [(
            id.to_string(),
            "Pothole count is now 45 for 2019-01".to_owned(),
            Some("Pothole above 30 in 2019-01".to_owned())
        )]
    );

    let phone = PhoneNumber::new("+1 619 555 0177").unwrap();
    let sms_id = notifier
        .send_sms(&phone, "Your request was closed")
        .await
        .unwrap();
    let state = moto_sns();
    let sms = state["SMS"]
        .as_array()
        .expect("SMS list")
        .iter()
        .find(|s| s["message_id"] == sms_id.as_str())
        .unwrap_or_else(|| panic!("moto has no SMS {sms_id}"));
    assert_eq!(sms["phone_number"], "+16195550177");
    assert_eq!(sms["message"], "Your request was closed");
    notifier.delete_topic(&topic).await.unwrap();
}

#[tokio::test]
async fn contacts_subscribe_once_and_threshold_alerts_reach_subscribers_once_per_month() {
    let sms = SmsAttributes::new(
        gid_core::SmsType::Transactional,
        Some("SanDiegoGID"),
        Some("+16195550199"),
    )
    .unwrap();
    let notifier = sns().await.with_sms_attributes(sms);
    let store = s3().await;
    // A prefix of this run's own keeps its trash/streets topics apart from other tests'.
    let prefix = unique_prefix();
    // "Streets & Sidewalks" is no topic of its own: the course's split sends it to streets.
    let csv = "Name,Department,Email,Phone\n\
         Pat,Trash,pat@example.org,+16195550100\n\
         Sam,trash ,,+16195550101\n\
         Lee,Streets & Sidewalks,lee@example.org,+16195550102\n\
         Bad,Trash,bad@example.org,555-0103\n";
    let contacts =
        ContactList::parse("contacts.csv", csv.as_bytes(), &DepartmentTable::default()).unwrap();
    assert_eq!(contacts.rejected.len(), 1);
    assert_eq!(contacts.rejected[0].line, 5);

    let first = subscribe_contacts(&notifier, &prefix, &contacts).await;
    assert!(first.failed.is_empty(), "{:?}", first.failed);
    assert_eq!(first.subscribed.len(), 5);
    // AWS would leave the two email subscriptions pending; moto confirms them at once.
    assert!(
        first
            .subscribed
            .iter()
            .all(|s| s.status == SubscriptionStatus::Confirmed),
        "{:?}",
        first.subscribed
    );
    let (trash, streets) = (first.topics[0].clone(), first.topics[1].clone());
    assert_eq!(trash.name(), format!("{prefix}trash"));
    assert_eq!(streets.name(), format!("{prefix}streets"));
    let on_streets = notifier.list_subscriptions(Some(&streets)).await.unwrap();
    let mut endpoints: Vec<String> = on_streets.iter().map(|s| s.endpoint.clone()).collect();
    endpoints.sort();
    assert_eq!(
        endpoints,
        ["+16195550102", "lee@example.org"],
        "Streets & Sidewalks lands on {prefix}streets"
    );
    let rerun = subscribe_contacts(&notifier, &prefix, &contacts).await;
    assert!(rerun.subscribed.is_empty(), "{:?}", rerun.subscribed);
    assert_eq!(rerun.already_subscribed.len(), 5);
    let on_trash = notifier.list_subscriptions(Some(&trash)).await.unwrap();
    assert_eq!(on_trash.len(), 3, "no duplicates on moto: {on_trash:?}");
    assert_eq!(
        on_trash
            .iter()
            .filter(|s| s.protocol == Protocol::Sms)
            .count(),
        2
    );

    let bucket = BucketName::new(unique("gid-notify")).unwrap();
    store.create_bucket(&bucket).await.unwrap();
    let ledger = LedgerLocation::new(
        bucket.clone(),
        ObjectKey::new("2019/jan/alerts.json").unwrap(),
    );
    let short = |n: &str| TopicName::new(n).unwrap();
    let thresholds = [
        Threshold::new("Illegal Dumping", 100, short("trash"), "Trash violations").unwrap(),
        Threshold::new("Pothole", 30, short("streets"), "Pothole").unwrap(),
    ];
    let alert = |counts: HashMap<&'static str, u64>, force: bool| {
        let (notifier, store, ledger, thresholds) = (&notifier, &store, &ledger, &thresholds);
        let policy = AlertPolicy {
            resend: Resend::from(force),
            topic_prefix: prefix.clone(),
            ..AlertPolicy::default()
        };
        async move {
            evaluate_and_send(
                notifier,
                store,
                ledger,
                jan(),
                |s| counts.get(s).copied().unwrap_or(0),
                thresholds,
                policy,
            )
            .await
            .unwrap()
        }
    };

    let report = alert(
        HashMap::from([("Illegal Dumping", 123), ("Pothole", 30)]),
        false,
    )
    .await;
    let AlertResult::Sent { message_id, .. } = &report.outcomes[0].result else {
        panic!("{report:?}")
    };
    assert_eq!(report.outcomes[1].result, AlertResult::Below);
    assert_eq!(
        sent_to(&trash),
        [(
            message_id.to_string(),
            "Trash violations count is now 123 for 2019-01".to_owned(),
            Some("Trash violations above 100 in 2019-01".to_owned())
        )]
    );
    assert!(sent_to(&streets).is_empty(), "30 is not above 30");
    // The alert's SMS deliveries go out Transactional, from the configured sender.
    let attribute = |value: &str| serde_json::json!({"Type": "String", "Value": value});
    assert_eq!(
        sent_with_attributes(&trash)[0].3,
        serde_json::json!({
            "AWS.SNS.SMS.SMSType": attribute("Transactional"),
            "AWS.SNS.SMS.SenderID": attribute("SanDiegoGID"),
            "AWS.MM.SMS.OriginationNumber": attribute("+16195550199"),
        })
    );

    let again = alert(
        HashMap::from([("Illegal Dumping", 123), ("Pothole", 30)]),
        false,
    )
    .await;
    assert_eq!(again.sent().count(), 0);
    assert_eq!(sent_to(&trash).len(), 1, "a rerun sends nothing new");

    let later = alert(
        HashMap::from([("Illegal Dumping", 125), ("Pothole", 45)]),
        false,
    )
    .await;
    assert_eq!(later.sent().count(), 1, "only the newly crossed threshold");
    assert_eq!(sent_to(&trash).len(), 1);
    let streets_sent = sent_to(&streets);
    assert_eq!(streets_sent.len(), 1);
    assert_eq!(streets_sent[0].1, "Pothole count is now 45 for 2019-01");

    let forced = alert(
        HashMap::from([("Illegal Dumping", 125), ("Pothole", 45)]),
        true,
    )
    .await;
    assert_eq!(forced.sent().count(), 2);
    let trash_sent = sent_to(&trash);
    assert_eq!(trash_sent.len(), 2, "force resends");
    assert_eq!(
        trash_sent[1].1,
        "Trash violations count is now 125 for 2019-01"
    );

    let book = AlertLedger::load(&store, &ledger).await.unwrap();
    let times: Vec<u32> = book.entries().iter().map(|e| e.times_sent).collect();
    assert_eq!(times, [2, 2], "the ledger in S3 counts each send");

    for topic in [&trash, &streets] {
        notifier.delete_topic(topic).await.unwrap();
    }
    let keys: Vec<ObjectKey> = list_all(&store, &bucket, "")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    store.delete_many(&bucket, &keys).await.unwrap();
    store.delete_bucket(&bucket).await.unwrap();
}

#[tokio::test]
async fn bulk_unsubscribe_removes_only_the_protocol_asked_for() {
    let notifier = sns().await;
    let topic = notifier
        .create_topic(&TopicName::new(unique("bulk")).unwrap())
        .await
        .unwrap();
    for n in ["+16195550110", "+16195550111"] {
        let phone = Endpoint::Sms(PhoneNumber::new(n).unwrap());
        notifier.subscribe(&topic, &phone).await.unwrap();
    }
    let email = Endpoint::Email(EmailAddress::new("pat@example.org").unwrap());
    notifier.subscribe(&topic, &email).await.unwrap();

    let report = unsubscribe_all(&notifier, &topic, Some(Protocol::Sms))
        .await
        .unwrap();
    assert_eq!(report.removed.len(), 2);
    let left = notifier.list_subscriptions(Some(&topic)).await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].protocol, Protocol::Email);
    notifier.delete_topic(&topic).await.unwrap();
}

#[tokio::test]
async fn prune_deletes_only_prefixed_topics_and_leaves_kept_and_unprefixed_ones() {
    let notifier = sns().await;
    let prefix = unique_prefix();
    let short = |n: &str| TopicName::new(n).unwrap();
    let mut doomed = Vec::new();
    for name in ["trash", "old-test"] {
        doomed.push(
            create_gid_topic(&notifier, &prefix, &short(name))
                .await
                .unwrap(),
        );
    }
    let kept = create_gid_topic(&notifier, &prefix, &short("critical"))
        .await
        .unwrap();
    // Topics of other teams, made by hand: one even starts like the prefix, without its '-'.
    let lookalike = prefix.as_str().trim_end_matches('-').to_owned() + "trash";
    let mut others = Vec::new();
    for name in [lookalike, unique("payroll-alerts")] {
        others.push(notifier.create_topic(&short(&name)).await.unwrap());
    }

    let report = prune_topics(&notifier, &prefix, &[short("critical")])
        .await
        .unwrap();
    let mut deleted = report.deleted.clone();
    deleted.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    doomed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(deleted, doomed);
    assert_eq!(report.kept, std::slice::from_ref(&kept));
    assert!(report.others >= 2, "{report:?}");
    let left = notifier.list_topics().await.unwrap();
    for topic in others.iter().chain([&kept]) {
        assert!(left.contains(topic), "{topic} was deleted");
    }
    for topic in &doomed {
        assert!(!left.contains(topic), "{topic} was not deleted");
    }
    for topic in others.iter().chain([&kept]) {
        notifier.delete_topic(topic).await.unwrap();
    }
}

/// Accepts one HTTP request on 127.0.0.1, answers it as SNS answers a Publish, and hands
/// back the request's body.
fn one_publish_answered() -> (String, std::thread::JoinHandle<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut reader = std::io::BufReader::new(stream);
        let mut length = 0;
        loop {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let answer = "<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\
            <PublishResult><MessageId>m-1</MessageId></PublishResult>\
            <ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></PublishResponse>";
        write!(
            reader.get_mut(),
            "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
            answer.len()
        )
        .unwrap();
        String::from_utf8(body).unwrap()
    });
    (endpoint, handle)
}

// moto 5.2.1 keeps only the number and text of a direct SMS (not its attributes), so what
// `gid-admin sms send` asks SNS for is read off the request itself.
#[tokio::test]
async fn a_direct_sms_is_published_with_the_configured_sms_attributes() {
    let (endpoint, request) = one_publish_answered();
    let notifier = SnsNotifier::connect(&SnsSettings {
        endpoint_url: Some(endpoint),
        max_attempts: 1,
        ..SnsSettings::default()
    })
    .await
    .expect("AWS configuration")
    .with_sms_attributes(
        SmsAttributes::new(gid_core::SmsType::Transactional, Some("SanDiegoGID"), None).unwrap(),
    );
    let phone = PhoneNumber::new("+16195550177").unwrap();
    notifier
        .send_sms(&phone, "Your request was closed")
        .await
        .unwrap();
    let body = request.join().unwrap();
    assert!(body.contains("&PhoneNumber=%2B16195550177"), "{body}");
    // entry.N.Name / entry.N.Value.DataType / entry.N.Value.StringValue, in any order of N.
    let mut entries: std::collections::BTreeMap<&str, Vec<(&str, &str)>> = Default::default();
    for field in body.split('&') {
        let Some(rest) = field.strip_prefix("MessageAttributes.entry.") else {
            continue;
        };
        let (index, rest) = rest.split_once('.').unwrap();
        let (part, value) = rest.split_once('=').unwrap();
        entries.entry(index).or_default().push((part, value));
    }
    let mut attributes: Vec<Vec<(&str, &str)>> = entries
        .into_values()
        .map(|mut parts| {
            parts.sort();
            parts
        })
        .collect();
    attributes.sort();
    assert_eq!(
        attributes,
        [
            [
                ("Name", "AWS.SNS.SMS.SMSType"),
                ("Value.DataType", "String"),
                ("Value.StringValue", "Transactional"),
            ],
            [
                ("Name", "AWS.SNS.SMS.SenderID"),
                ("Value.DataType", "String"),
                ("Value.StringValue", "SanDiegoGID"),
            ],
        ]
    );
}
