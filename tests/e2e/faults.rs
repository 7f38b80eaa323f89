//! monthly-report (ingest → aggregate → publish → notify) through a fault-injecting proxy
//! in front of moto: every fault mix either ends in outputs byte-identical to a
//! fault-free run, or — when faults outlast the retry budget — in a clear error with the
//! previous site intact and no partial month published.

use crate::support_aws;

use std::time::Duration;

use gid_e2e::fault_proxy::{Fault, FaultProxy, ProxyRequest, Rule};
use gid_e2e::{assert_success, moto_endpoint, moto_sns_endpoint, stderr, stdout};
use gid_storage::ObjectStore;
use support_aws::{assert_index_complete, snapshot, sns_messages, World};

fn any(_: &ProxyRequest) -> bool {
    true
}

fn get(r: &ProxyRequest) -> bool {
    r.method == "GET"
}

fn put(r: &ProxyRequest) -> bool {
    r.method == "PUT"
}

fn publish(r: &ProxyRequest) -> bool {
    r.action().as_deref() == Some("Publish")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_mix_ends_in_the_fault_free_outputs() {
    let world = World::new(&["2019-01"]).await;
    let expected = world.reference_snapshot(&["--month", "2019-01"]).await;
    assert!(
        expected.0.len() >= 4,
        "reference run published: {:?}",
        expected.0.keys()
    );

    let mixes: Vec<(&str, Vec<Rule>, Vec<Rule>)> = vec![
        (
            "s3 SlowDown 503 on every 4th request",
            vec![Rule::new(any, Fault::SlowDown).every(1, 4).limit(25)],
            vec![],
        ),
        (
            "s3 InternalError 500 on every 5th request",
            vec![Rule::new(any, Fault::InternalError).every(2, 5).limit(20)],
            vec![],
        ),
        (
            "responses cut off mid-body on every 3rd GET",
            vec![Rule::new(get, Fault::CloseMidBody).every(1, 3).limit(10)],
            vec![],
        ),
        (
            "slow responses past the timeout on 3 PUTs",
            vec![Rule::new(put, Fault::Delay(Duration::from_secs(3)))
                .every(2, 4)
                .limit(3)],
            vec![],
        ),
        (
            "SNS throttling on publishes",
            vec![],
            vec![Rule::new(publish, Fault::SnsThrottling)
                .every(1, 1)
                .limit(3)],
        ),
        (
            "everything at once",
            vec![
                Rule::new(get, Fault::CloseMidBody).every(2, 5).limit(5),
                Rule::new(any, Fault::SlowDown).every(3, 6).limit(10),
                Rule::new(put, Fault::InternalError).every(1, 7).limit(5),
            ],
            vec![Rule::new(any, Fault::SnsThrottling).every(1, 3).limit(4)],
        ),
    ];
    let mut report = Vec::new();
    for (name, s3_rules, sns_rules) in mixes {
        let target = world.target().await;
        let s3 = FaultProxy::start(&moto_endpoint(), s3_rules);
        let sns = FaultProxy::start(&moto_sns_endpoint(), sns_rules);
        let out = world.run(
            &target,
            &s3.endpoint,
            &sns.endpoint,
            &["--month", "2019-01"],
        );
        assert!(
            out.status.success(),
            "{name}: the run must survive ({:?} {:?}):\n{}\n{}",
            s3.stats.faults(),
            sns.stats.faults(),
            stdout(&out),
            stderr(&out)
        );
        let injected = s3.stats.total_faults() + sns.stats.total_faults();
        assert!(injected > 0, "{name}: no fault was injected");
        let said = stdout(&out);
        let retries: u64 = ["s3", "sns"]
            .into_iter()
            .filter_map(|service| gid_e2e::request_line(&said, service))
            .map(|l| l.retries)
            .sum();
        assert!(
            retries > 0,
            "{name}: the summary reports the retries: {said}"
        );
        let got = snapshot(&target).await;
        assert_eq!(got.1, expected.1, "{name}: index links differ");
        for (key, bytes) in &expected.0 {
            let key_in_target = key.clone();
            assert_eq!(
                got.0.get(&key_in_target),
                Some(bytes),
                "{name}: {key} differs"
            );
        }
        assert_eq!(
            sns_messages(&target.trash).len(),
            1,
            "{name}: exactly one trash alert"
        );
        assert_eq!(
            sns_messages(&target.streets).len(),
            1,
            "{name}: exactly one streets alert"
        );
        report.push(format!("{name}: {injected} faults, {retries} retries"));
    }
    eprintln!("fault mixes survived:\n  {}", report.join("\n  "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_past_the_retry_budget_fail_clearly_and_leave_the_site_as_it_was() {
    let world = World::new(&["2019-01", "2019-02"]).await;
    let target = world.target().await;
    assert_success(&world.run(
        &target,
        &moto_endpoint(),
        &moto_sns_endpoint(),
        &["--month", "2019-01"],
    ));
    let store = support_aws::s3().await;
    let reports = gid_core::BucketName::new(target.reports.clone()).unwrap();
    let index_key = gid_core::ObjectKey::new("index.html").unwrap();
    let index_before = store.get(&reports, &index_key).await.unwrap().body;
    let site_before = snapshot(&target).await;

    // February's report files: the first one lands, every later PUT to the site is refused.
    let february_puts = |r: &ProxyRequest| {
        r.method == "PUT"
            && r.path.contains(&format!("/{}/", "2019/feb"))
            && !r.path.contains("gid-work")
    };
    let reports_name = target.reports.clone();
    let to_site = move |r: &ProxyRequest| {
        r.method == "PUT" && r.path.starts_with(&format!("/{reports_name}/"))
    };
    let s3 = FaultProxy::start(
        &moto_endpoint(),
        vec![Rule::new(move |r| to_site(r) && february_puts(r), Fault::SlowDown).every(2, 1)],
    );
    let out = world.run(
        &target,
        &s3.endpoint,
        &moto_sns_endpoint(),
        &["--month", "2019-02"],
    );
    assert!(!out.status.success(), "persistent faults fail the run");
    let err = stderr(&out);
    assert!(err.contains("2019-02 publish: publishing s3://"), "{err}");
    // The retries back off with jitter: either they run out (the error is the last
    // SlowDown: "still throttled") or the operation's time budget does first (a timeout); then the run's
    // request line says the store was throttling.
    let said = gid_e2e::stdout(&out);
    let throttled = gid_e2e::request_line(&said, "s3").map_or(0, |l| l.throttled);
    assert!(
        err.contains("still throttled after every retry")
            || (err.contains("no answer in time") && throttled > 0),
        "the error or the request line says why: {err}\n{said}"
    );

    assert_eq!(
        store.get(&reports, &index_key).await.unwrap().body,
        index_before,
        "the index is untouched"
    );
    let site_only = |s: (std::collections::BTreeMap<String, String>, _)| {
        s.0.into_iter()
            .filter(|(k, _)| k.starts_with("reports/"))
            .collect::<Vec<_>>()
    };
    let site_after = snapshot(&target).await;
    assert_eq!(
        site_only(site_after),
        site_only(site_before),
        "January is intact and nothing of February is published"
    );
    assert_index_complete(&target).await;
    assert!(
        gid_storage::list_all(&store, &reports, "2019/feb/")
            .await
            .unwrap()
            .is_empty(),
        "the February file that did land was removed again"
    );
}
