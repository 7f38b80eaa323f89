//! The aws profile's checks: region, credentials, identity, buckets, the work bucket's
//! probes, the reports bucket's public reads, SNS, threshold topics, the SMS sandbox.

use futures::future::join_all;
use gid_aws::{AwsContext, IdentityError, ResolvedCredentials, Service};
use gid_core::{Config, FailureKind, PublishConfig, SiteAccess};
use gid_notify::{Notifier, NotifyError, SmsSandbox, SnsNotifier, Threshold};
use gid_storage::{
    AclMode, BucketExposure, BucketReach, PolicyJudge, PolicyVerdict, S3Options, S3Store,
    StorageError,
};

use super::{
    bucket_roles, failure_words, storage_words, topic_checks, work_probes, BucketRole, Check,
};

pub(super) async fn examine(config: &Config, thresholds: &[Threshold]) -> Vec<Check> {
    let mut checks = Vec::new();
    let aws = match crate::aws_context(config).await {
        Ok(aws) => aws,
        Err(_) => {
            checks.push(Check::fail(
                "aws.region",
                "region",
                "no AWS region: neither aws.region, AWS_REGION nor the AWS profile names one, and no custom endpoint is set",
                "set aws.region in gid's config (GID__AWS__REGION), AWS_REGION, or `region` in the AWS profile",
            ));
            checks.push(Check::skipped(
                "aws",
                "everything else",
                "every AWS client needs the region",
            ));
            return checks;
        }
    };
    checks.push(region_check(config, aws));

    match aws.resolve_credentials().await {
        Ok(credentials) => checks.push(credentials_check(&credentials)),
        Err(e) => {
            let kind = match &e {
                IdentityError::Credentials { kind, .. } | IdentityError::Sts { kind, .. } => kind,
            };
            let (what, todo) = failure_words(kind);
            checks.push(Check::fail("aws.credentials", "credentials", what, todo));
            checks.push(Check::skipped(
                "aws",
                "everything else",
                "every AWS request needs credentials",
            ));
            return checks;
        }
    }
    checks.push(identity_check(aws.caller_identity().await));

    let store = S3Store::new(aws, &S3Options::from_config(&config.aws));
    let roles = bucket_roles(config);
    let reaches = join_all(roles.iter().map(|r| store.bucket_reach(&r.bucket))).await;
    let mut usable = Vec::new();
    for (role, reach) in roles.iter().zip(reaches) {
        let check = bucket_check(role, store.region(), reach);
        if check.status == super::Status::Ok {
            usable.push(role.key);
        }
        checks.push(check);
    }
    checks.extend(work_probes(&store, &config.buckets.work, usable.contains(&"work")).await);
    let reports = &config.buckets.reports;
    let public_name = format!("public reads {reports}");
    if usable.contains(&"reports") {
        let exposure = store.exposure(reports).await;
        checks.push(public_reads_check(&public_name, &exposure, &config.publish));
    } else {
        checks.push(Check::skipped(
            "bucket.reports.public-reads",
            public_name,
            "the reports bucket is not usable",
        ));
    }

    let notifier = SnsNotifier::new(aws, config.notify.sns_endpoint_url.as_deref());
    let at = notifier.endpoint().unwrap_or("AWS").to_owned();
    match notifier.list_topics().await {
        Ok(topics) => {
            checks.push(Check::ok(
                "sns",
                "sns",
                format!(
                    "reachable at {at}; {} visible",
                    super::plural(topics.len(), "topic", "topics")
                ),
            ));
            let prefix = crate::backend::topic_prefix(config).unwrap_or_default();
            checks.extend(topic_checks(&notifier, thresholds, &prefix).await);
            let custom = notifier.endpoint().is_some();
            checks.push(sandbox_check(notifier.sms_sandbox().await, custom));
        }
        Err(e) => {
            let (what, todo) = notify_words(&e);
            checks.push(Check::fail(
                "sns",
                "sns",
                format!("SNS at {at} cannot be used: {what}; the notify stage needs it"),
                todo,
            ));
            checks.push(Check::skipped("topics", "topics", "SNS is not usable"));
            checks.push(Check::skipped(
                "sns.sms-sandbox",
                "sms sandbox",
                "SNS is not usable",
            ));
        }
    }
    checks
}

/// The region and where each service is reached.
fn region_check(config: &Config, aws: &AwsContext) -> Check {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty());
    let s3 = aws.endpoint(Service::S3);
    let source = if config.aws.region.is_some() {
        "set by aws.region"
    } else if set("AWS_REGION") {
        "from AWS_REGION"
    } else if set("AWS_DEFAULT_REGION") {
        "from AWS_DEFAULT_REGION"
    } else if s3.is_some() {
        "from the AWS profile, or the us-east-1 fallback for a custom endpoint"
    } else {
        "from the AWS profile or the instance's metadata"
    };
    let sns = config
        .notify
        .sns_endpoint_url
        .clone()
        .or_else(|| aws.endpoint(Service::Sns));
    let endpoints = match (s3, sns) {
        (None, None) => "AWS's own endpoints".to_owned(),
        (s3, sns) => format!(
            "S3 at {}, SNS at {}",
            s3.as_deref().unwrap_or("AWS"),
            sns.as_deref().unwrap_or("AWS")
        ),
    };
    Check::ok(
        "aws.region",
        "region",
        format!("{}, {source}; {endpoints}", aws.region()),
    )
}

fn credentials_check(credentials: &ResolvedCredentials) -> Check {
    use gid_aws::CredentialSource as S;
    let profile = match (credentials.source, std::env::var("AWS_PROFILE")) {
        (S::Profile | S::Sso | S::CredentialProcess | S::AssumeRole, Ok(p)) if !p.is_empty() => {
            format!(" (AWS profile {p})")
        }
        _ => String::new(),
    };
    let lifetime = match (credentials.temporary, credentials.expires) {
        (_, Some(at)) => format!(
            "session credentials, expire at {}",
            chrono::DateTime::<chrono::Utc>::from(at).format("%Y-%m-%d %H:%M UTC")
        ),
        (true, None) => "session credentials".to_owned(),
        (false, None) => "long-term keys".to_owned(),
    };
    Check::ok(
        "aws.credentials",
        "credentials",
        format!(
            "{}{profile}: access key {}, {lifetime}",
            credentials.source, credentials.access_key
        ),
    )
}

/// Whom STS says the credentials belong to. An endpoint that does not implement STS
/// (S3-compatible stores, some emulators) makes the check `skipped`; credentials STS
/// refuses fail it; anything else leaves it a warning.
fn identity_check(identity: Result<gid_aws::CallerIdentity, IdentityError>) -> Check {
    let (id, name) = ("aws.identity", "identity");
    let error = match identity {
        Ok(who) => return Check::ok(id, name, format!("account {}, {}", who.account, who.arn)),
        Err(e) => e,
    };
    let (kind, endpoint, custom) = match &error {
        IdentityError::Sts {
            kind,
            endpoint,
            custom_endpoint,
            ..
        } => (kind, endpoint.as_str(), *custom_endpoint),
        IdentityError::Credentials { kind, .. } => (kind, "AWS", false),
    };
    let (what, todo) = failure_words(kind);
    match kind {
        FailureKind::NoCredentials
        | FailureKind::SsoLoginRequired { .. }
        | FailureKind::CredentialsExpired
        | FailureKind::CredentialsRejected => Check::fail(
            id,
            name,
            format!("STS refuses the credentials: {what}"),
            todo,
        ),
        _ if custom => Check::skipped(
            id,
            name,
            format!(
                "the endpoint {endpoint} does not answer STS GetCallerIdentity, as emulators and S3-compatible stores often do not: {what}"
            ),
        ),
        _ => Check::warn(
            id,
            name,
            format!("could not ask STS who the credentials are: {what}"),
            todo,
        ),
    }
}

/// Whether a bucket exists, is reachable by these credentials and sits in the client's
/// region.
fn bucket_check(
    role: &BucketRole,
    client_region: &str,
    reach: Result<BucketReach, StorageError>,
) -> Check {
    let bucket = &role.bucket;
    let id = format!("bucket.{}", role.key);
    let name = format!("bucket {bucket}");
    let used = role.used_for;
    let other_region = |region: Option<String>| {
        let region = region.unwrap_or_else(|| "another region".into());
        Check::problem(
            role.required,
            id.clone(),
            name.clone(),
            format!("is in {region}, but gid signs for {client_region}: S3 would redirect every request; {used}"),
            format!("set aws.region = \"{region}\" (or AWS_REGION), or name a bucket in {client_region} as buckets.{}", role.key),
        )
    };
    match reach {
        Ok(BucketReach::Reachable { region: Some(r) }) if r != client_region => {
            other_region(Some(r))
        }
        Ok(BucketReach::Reachable { region }) => Check::ok(
            id,
            name,
            format!(
                "exists{}, reachable; {used}",
                region.map(|r| format!(" in {r}")).unwrap_or_default()
            ),
        ),
        Ok(BucketReach::OtherRegion { region }) => other_region(region),
        Ok(BucketReach::Missing) => Check::problem(
            role.required,
            id,
            name,
            format!("does not exist; {used}"),
            format!("create it: gid-admin bucket create {bucket} (or name another as buckets.{})", role.key),
        ),
        Ok(BucketReach::Forbidden) => Check::problem(
            role.required,
            id,
            name,
            format!("access denied: these credentials may not use it (or S3 will not say whether it exists); {used}"),
            format!("grant the identity above s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject on {bucket}, or check buckets.{}", role.key),
        ),
        Err(e) => {
            let (what, todo) = storage_words(&e);
            Check::problem(
                role.required,
                id,
                name,
                format!("unreachable: {what}; {used}"),
                todo,
            )
        }
    }
}

/// Whether anonymous readers can get the site's files, judged against what
/// `publish.access` makes publish do.
fn public_reads_check(name: &str, exposure: &BucketExposure, publish: &PublishConfig) -> Check {
    let id = "bucket.reports.public-reads";
    let unreadable: Vec<String> = [
        exposure.public_access_block.as_ref().err(),
        exposure.acls.as_ref().err(),
        exposure.policy.as_ref().err(),
    ]
    .into_iter()
    .flatten()
    .map(|e| e.to_string())
    .collect();
    let (Ok(block), Ok(acls), Ok(policy)) = (
        &exposure.public_access_block,
        &exposure.acls,
        &exposure.policy,
    ) else {
        return Check::warn(
            id,
            name,
            format!("cannot tell who may read the site: {}", unreadable.join("; ")),
            "allow this identity s3:GetBucketPublicAccessBlock, s3:GetBucketOwnershipControls and s3:GetBucketPolicyStatus so the doctor can tell",
        );
    };
    let block = block.unwrap_or_default();
    let by_policy = matches!(policy, PolicyVerdict::Public(_)) && !block.restrict_public_buckets;
    let judged = match policy {
        PolicyVerdict::Public(PolicyJudge::Gid) | PolicyVerdict::NotPublic(PolicyJudge::Gid) => {
            " (gid's reading of the policy: the endpoint does not answer GetBucketPolicyStatus)"
        }
        _ => "",
    };
    let policy_note = match (policy, by_policy) {
        (_, true) => format!("the bucket policy grants public reads{judged}"),
        (PolicyVerdict::Public(_), false) => format!(
            "the bucket policy would grant public reads, but the public access block restricts it (RestrictPublicBuckets){judged}"
        ),
        (PolicyVerdict::NotPublic(_), _) => format!("the bucket policy grants no public reads{judged}"),
        (PolicyVerdict::NoPolicy, _) => "no bucket policy".to_owned(),
    };
    let listing = match &exposure.acl_grants_to_everyone {
        Ok(grants) if grants.iter().any(|g| g == "READ" || g == "FULL_CONTROL") => {
            "; the bucket ACL also lets anyone list it"
        }
        _ => "",
    };
    let expires = publish.presign_expires_secs;
    match publish.access {
        SiteAccess::Presign if by_policy => Check::warn(
            id,
            name,
            format!("public although publish.access = presign (a private site): {policy_note}{listing}"),
            "remove the public statement from the bucket policy, or set publish.access = \"bucket-policy\" if the site is meant to be public",
        ),
        SiteAccess::Presign => Check::ok(
            id,
            name,
            format!("private, as publish.access = presign wants: the index links presigned URLs that expire after {expires} s; {policy_note}{listing}"),
        ),
        SiteAccess::Acl if *acls == AclMode::Disabled => Check::fail(
            id,
            name,
            "ACLs are disabled (BucketOwnerEnforced), so every publish PUT with publish.access = acl would be refused",
            "run `gid-admin site init --access acl` to enable ACLs, or set publish.access = \"bucket-policy\" and run `gid-admin site init`",
        ),
        SiteAccess::Acl if block.block_public_acls => Check::fail(
            id,
            name,
            "the public access block refuses public ACLs (BlockPublicAcls), so every publish PUT with publish.access = acl would be denied",
            "run `gid-admin site init --access acl` to allow public ACLs, or set publish.access = \"bucket-policy\" and run `gid-admin site init`",
        ),
        SiteAccess::Acl if block.ignore_public_acls && !by_policy => Check::warn(
            id,
            name,
            format!("not public: the public access block ignores public ACLs (IgnorePublicAcls) and {policy_note}, so the site's links answer 403 although publish.access = acl"),
            "run `gid-admin site init --access acl`",
        ),
        SiteAccess::Acl => Check::ok(
            id,
            name,
            format!("public reads by object ACL: publish puts each file public-read; {policy_note}{listing}"),
        ),
        SiteAccess::BucketPolicy if by_policy => Check::ok(
            id,
            name,
            format!("public reads by bucket policy, as publish.access = bucket-policy wants; {policy_note}{listing}"),
        ),
        SiteAccess::BucketPolicy => Check::warn(
            id,
            name,
            format!("not public: {policy_note}, so the site's links answer 403 (publish.access = bucket-policy publishes without ACLs)"),
            "run `gid-admin site init` (it shows the policy and the public access block change before making them)",
        ),
    }
}

/// The SMS sandbox status. An endpoint that lacks the operation (emulators) makes the
/// check `skipped`; on AWS an unreadable status is a warning.
fn sandbox_check(status: Result<SmsSandbox, NotifyError>, custom_endpoint: bool) -> Check {
    let (id, name) = ("sns.sms-sandbox", "sms sandbox");
    match status {
        Ok(SmsSandbox::Production) => Check::ok(id, name, "off: SMS reach any phone number"),
        Ok(SmsSandbox::InSandbox) => Check::warn(
            id,
            name,
            "on: SMS reach only phone numbers verified in the account's SMS sandbox",
            "verify the contacts' numbers (SNS console, Text messaging, Sandbox destination phone numbers) or request production access",
        ),
        Err(e) => {
            let (what, todo) = notify_words(&e);
            if custom_endpoint {
                Check::skipped(
                    id,
                    name,
                    format!("the SNS endpoint does not answer GetSMSSandboxAccountStatus, as emulators do not: {what}"),
                )
            } else {
                Check::warn(
                    id,
                    name,
                    format!("could not read the SMS sandbox status: {what}"),
                    todo,
                )
            }
        }
    }
}

fn notify_words(error: &NotifyError) -> (String, String) {
    match error {
        NotifyError::Service { kind, .. } => failure_words(kind),
        NotifyError::Storage(e) => storage_words(e),
        other => (other.to_string(), "run with -v for the detail".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gid_core::BucketName;
    use gid_storage::PublicAccessBlock;

    use crate::doctor::Status;

    fn service_error(kind: FailureKind) -> NotifyError {
        NotifyError::Service {
            operation: "read the SMS sandbox status of",
            target: "the account".into(),
            kind,
            detail: None,
        }
    }

    #[test]
    fn an_emulator_without_the_sms_sandbox_operation_skips_that_check() {
        // moto answers GetSMSSandboxAccountStatus with a bare HTTP 500.
        let check = sandbox_check(
            Err(service_error(FailureKind::ServerError { status: 500 })),
            true,
        );
        assert_eq!(check.status, Status::Skipped);
        assert!(check
            .detail
            .contains("does not answer GetSMSSandboxAccountStatus"));
        let on_aws = sandbox_check(Err(service_error(FailureKind::AccessDenied)), false);
        assert_eq!(on_aws.status, Status::Warn);
        assert_eq!(
            sandbox_check(Ok(SmsSandbox::InSandbox), false).status,
            Status::Warn
        );
    }

    fn sts_error(kind: FailureKind, custom_endpoint: bool) -> IdentityError {
        IdentityError::Sts {
            endpoint: "http://127.0.0.1:9000".into(),
            custom_endpoint,
            kind,
            detail: gid_aws::SdkDetail::new(std::io::Error::other("x")),
        }
    }

    #[test]
    fn an_endpoint_without_sts_skips_the_identity_but_refused_credentials_fail_it() {
        let no_sts = identity_check(Err(sts_error(
            FailureKind::ServerError { status: 500 },
            true,
        )));
        assert_eq!(no_sts.status, Status::Skipped);
        assert!(no_sts
            .detail
            .contains("http://127.0.0.1:9000 does not answer STS"));
        let refused = identity_check(Err(sts_error(FailureKind::CredentialsRejected, true)));
        assert_eq!(refused.status, Status::Fail);
        let unreachable_aws = identity_check(Err(sts_error(FailureKind::TimedOut, false)));
        assert_eq!(unreachable_aws.status, Status::Warn);
    }

    fn role(required: bool) -> BucketRole {
        BucketRole {
            key: "work",
            bucket: BucketName::new("gid-work").unwrap(),
            used_for: "every stage keeps its outputs here",
            required,
        }
    }

    #[test]
    fn a_missing_bucket_fails_and_says_how_to_create_it() {
        let check = bucket_check(&role(true), "us-east-1", Ok(BucketReach::Missing));
        assert_eq!(check.status, Status::Fail);
        assert!(check
            .action
            .unwrap()
            .contains("gid-admin bucket create gid-work"));
        let optional = bucket_check(&role(false), "us-east-1", Ok(BucketReach::Missing));
        assert_eq!(optional.status, Status::Warn);
    }

    #[test]
    fn a_bucket_in_another_region_fails_naming_both_regions() {
        let check = bucket_check(
            &role(true),
            "us-east-1",
            Ok(BucketReach::OtherRegion {
                region: Some("eu-west-1".into()),
            }),
        );
        assert_eq!(check.status, Status::Fail);
        assert!(check
            .detail
            .contains("is in eu-west-1, but gid signs for us-east-1"));
        assert!(check.action.unwrap().contains("aws.region = \"eu-west-1\""));
    }

    fn exposure(
        block: Option<PublicAccessBlock>,
        acls: AclMode,
        policy: PolicyVerdict,
    ) -> BucketExposure {
        BucketExposure {
            public_access_block: Ok(block),
            acls: Ok(acls),
            policy: Ok(policy),
            acl_grants_to_everyone: Ok(Vec::new()),
        }
    }

    fn publish(access: SiteAccess) -> PublishConfig {
        PublishConfig {
            access,
            website: false,
            presign_expires_secs: 3600,
            index_cache_control: String::new(),
            report_cache_control: String::new(),
            service_info: Default::default(),
            service_info_default: String::new(),
            languages: vec!["en".into()],
        }
    }

    #[test]
    fn public_reads_are_judged_against_what_publish_will_do() {
        let acl = publish(SiteAccess::Acl);
        let judge =
            |e: &BucketExposure, p: &PublishConfig| public_reads_check("public reads", e, p);

        let acl_ok = judge(
            &exposure(None, AclMode::Enabled, PolicyVerdict::NoPolicy),
            &acl,
        );
        assert_eq!(acl_ok.status, Status::Ok);
        assert!(acl_ok.detail.starts_with("public reads by object ACL"));

        let blocked = PublicAccessBlock {
            block_public_acls: true,
            ..Default::default()
        };
        let denied = judge(
            &exposure(Some(blocked), AclMode::Enabled, PolicyVerdict::NoPolicy),
            &acl,
        );
        assert_eq!(
            denied.status,
            Status::Fail,
            "publish's PUTs would be refused"
        );
        assert!(denied
            .action
            .as_deref()
            .unwrap()
            .contains("site init --access acl"));

        let enforced = exposure(None, AclMode::Disabled, PolicyVerdict::NoPolicy);
        assert_eq!(judge(&enforced, &acl).status, Status::Fail);

        let bucket_policy = publish(SiteAccess::BucketPolicy);
        let not_yet = judge(&enforced, &bucket_policy);
        assert_eq!(not_yet.status, Status::Warn);
        assert!(not_yet
            .action
            .as_deref()
            .unwrap()
            .contains("gid-admin site init"));

        let by_policy = exposure(
            None,
            AclMode::Disabled,
            PolicyVerdict::Public(PolicyJudge::S3),
        );
        assert_eq!(judge(&by_policy, &bucket_policy).status, Status::Ok);
        let restricted = PublicAccessBlock {
            restrict_public_buckets: true,
            ..Default::default()
        };
        let restricted = exposure(
            Some(restricted),
            AclMode::Disabled,
            PolicyVerdict::Public(PolicyJudge::S3),
        );
        assert_eq!(judge(&restricted, &bucket_policy).status, Status::Warn);

        let private = publish(SiteAccess::Presign);
        let presigned = judge(&enforced, &private);
        assert_eq!(presigned.status, Status::Ok);
        assert!(presigned.detail.contains("expire after 3600 s"));
        assert_eq!(judge(&by_policy, &private).status, Status::Warn);
    }
}
