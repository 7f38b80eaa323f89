//! kill -9 at many points of a monthly-report run (ingest, aggregate, publish, notify),
//! then rerun: the same final objects as an uninterrupted run, an index that never
//! references a missing object, and never a duplicate alert.

use crate::support_aws;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use gid_e2e::fault_proxy::{Fault, FaultProxy, ProxyRequest, Rule};
use gid_e2e::{assert_success, gid_command, moto_endpoint, moto_sns_endpoint, stderr};
use support_aws::{assert_index_complete, snapshot, sns_messages, Target, World};

fn any(_: &ProxyRequest) -> bool {
    true
}

/// Runs monthly-report through proxies whose rules may kill it; returns whether it was killed.
fn run_until_killed(
    world: &World,
    target: &Target,
    s3_rules: impl FnOnce(Fault) -> Vec<Rule>,
    sns_rules: impl FnOnce(Fault) -> Vec<Rule>,
) -> bool {
    let pid = Arc::new(AtomicU32::new(0));
    let killer = {
        let pid = pid.clone();
        Fault::Hook(Arc::new(move || {
            let pid = pid.load(Ordering::SeqCst);
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }))
    };
    let s3 = FaultProxy::start(&moto_endpoint(), s3_rules(killer.clone()));
    let sns = FaultProxy::start(&moto_sns_endpoint(), sns_rules(killer));
    let mut command = gid_command("monthly-report", "aws");
    command
        .args([
            "--config",
            target.config.to_str().unwrap(),
            "--month",
            "2019-01",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in world.env(target, &s3.endpoint, &sns.endpoint) {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    pid.store(child.id(), Ordering::SeqCst);
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(9)
}

/// Reruns after a crash. An alert claimed but not recorded as sent is reported "in
/// doubt"; the operator looks at its topic and either resends it (it never went out) or
/// confirms it (it did): either way exactly one message, and the month is settled.
fn rerun(world: &World, target: &Target) {
    let out = world.run(
        target,
        &moto_endpoint(),
        &moto_sns_endpoint(),
        &["--month", "2019-01"],
    );
    if out.status.success() {
        return;
    }
    let err = stderr(&out);
    assert!(
        err.contains("in doubt") && !err.contains("InDoubt"),
        "a rerun after a crash fails only over alerts in doubt, in words: {err}"
    );
    let in_doubt: Vec<&String> = [&target.trash, &target.streets]
        .into_iter()
        .filter(|topic| err.contains(&format!("topic {topic}: in doubt")))
        .collect();
    assert_eq!(in_doubt.len(), 1, "one crash, one alert in doubt: {err}");
    let went_out = !sns_messages(in_doubt[0]).is_empty();
    let decision = if went_out {
        "--confirm-in-doubt"
    } else {
        "--resend-in-doubt"
    };
    assert_success(&world.run(
        target,
        &moto_endpoint(),
        &moto_sns_endpoint(),
        &["--month", "2019-01", "--stage", "notify", decision],
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_reruns_to_the_uninterrupted_result() {
    let world = World::new(&["2019-01"]).await;
    // The uninterrupted run, counting its requests through pass-through proxies.
    let reference = world.target().await;
    let (s3, sns) = (
        FaultProxy::start(&moto_endpoint(), vec![]),
        FaultProxy::start(&moto_sns_endpoint(), vec![]),
    );
    assert_success(&world.run(
        &reference,
        &s3.endpoint,
        &sns.endpoint,
        &["--month", "2019-01"],
    ));
    let (s3_requests, sns_requests) = (
        s3.stats.requests.load(Ordering::SeqCst),
        sns.stats.requests.load(Ordering::SeqCst),
    );
    let expected = snapshot(&reference).await;
    assert!(
        s3_requests > 20 && sns_requests >= 4,
        "{s3_requests} S3 and {sns_requests} SNS requests"
    );

    // Kill points spread over the whole run's S3 requests, then over its SNS requests.
    let mut points: Vec<(&str, u64)> = (1..=8)
        .map(|i| ("s3", (s3_requests * i / 9).max(1)))
        .collect();
    points.extend((1..=sns_requests).map(|k| ("sns", k)));
    let mut killed = 0;
    for (service, k) in &points {
        let target = world.target().await;
        let at_kth = |fault: Fault| vec![Rule::new(any, fault).every(*k, u64::MAX).limit(1)];
        let was_killed = if *service == "s3" {
            run_until_killed(&world, &target, at_kth, |_| vec![])
        } else {
            run_until_killed(&world, &target, |_| vec![], at_kth)
        };
        assert!(
            was_killed,
            "{service} request {k}: the run was killed there"
        );
        killed += 1;
        // At the moment of the crash, whatever index exists is complete.
        assert_index_complete(&target).await;
        rerun(&world, &target);
        let got = snapshot(&target).await;
        assert_eq!(
            got, expected,
            "{service} request {k}: rerun differs from the uninterrupted run"
        );
        assert_eq!(
            sns_messages(&target.trash).len(),
            1,
            "{service} request {k}: one trash alert"
        );
        assert_eq!(
            sns_messages(&target.streets).len(),
            1,
            "{service} request {k}: one streets alert"
        );
    }
    eprintln!("crash points: {killed} ({s3_requests} S3 and {sns_requests} SNS requests per run)");
}
