//! The report site's address, and what `gid-admin site init` changes on the reports
//! bucket so the public can read the site the configured way ([`SiteAccess`]).
//!
//! Planning is separate from applying: [`plan`] turns the bucket's current settings into
//! the list of [`SiteChange`]s (each printable, the policy in full), `--dry-run` prints
//! them, and [`apply`] makes them in the one order S3 accepts — the public access block
//! first (a public policy is refused while `BlockPublicPolicy` is on), then ownership,
//! policy and website.

use std::fmt;

use gid_core::{BucketName, Config, Layout, ObjectKey, Profile, SiteAccess};
use gid_publish::{site_policy, INDEX_KEY};
use gid_storage::{
    AclMode, BucketSiteState, PublicAccessBlock, S3Store, SignedStore, StorageError,
};

use crate::backend::{aws_context, BackendError};

/// The statement id gid's policy statement carries, so a rerun replaces it and leaves the
/// bucket's other statements alone.
const SITE_STATEMENT_ID: &str = "GidPublicSiteRead";

/// One change to the reports bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteChange {
    /// Change the bucket's public access block.
    PublicAccessBlock {
        /// The block now (`None`: none set).
        from: Option<PublicAccessBlock>,
        /// The block the site needs.
        to: PublicAccessBlock,
    },
    /// Turn on object ACLs (Object Ownership → BucketOwnerPreferred).
    EnableAcls,
    /// The whole new policy document (gid's statement merged into the bucket's others).
    Policy {
        /// The policy as JSON.
        document: String,
    },
    /// Serve the bucket as a static website.
    Website {
        /// The index document (`index.html`).
        index: String,
    },
}

impl fmt::Display for SiteChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SiteChange::PublicAccessBlock { from, to } => {
                let on = |b: &PublicAccessBlock| match b.enabled() {
                    v if v.is_empty() => "all off".to_owned(),
                    v => format!("{} on", v.join(", ")),
                };
                let from = from.as_ref().map_or("none".to_owned(), on);
                write!(f, "public access block: {from} -> {}", on(to))
            }
            SiteChange::EnableAcls => write!(
                f,
                "object ownership: BucketOwnerEnforced -> BucketOwnerPreferred (ACLs enabled)"
            ),
            SiteChange::Policy { document } => {
                write!(
                    f,
                    "bucket policy (s3:GetObject on the site's files for everyone):\n{document}"
                )
            }
            SiteChange::Website { index } => {
                write!(f, "static website hosting: on, index document {index}")
            }
        }
    }
}

/// Why the site's settings could not be planned or applied.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error(transparent)]
    /// The backend could not be opened.
    Backend(#[from] BackendError),
    #[error(transparent)]
    /// A read or write of the bucket failed.
    Storage(#[from] StorageError),
    #[error(
        "the bucket policy of {bucket} is not valid JSON ({reason}): fix or delete it \
         (`aws s3api delete-bucket-policy --bucket {bucket}`) and run site init again"
    )]
    /// The bucket's policy is not JSON gid can merge its statement into.
    ForeignPolicy {
        /// The reports bucket.
        bucket: BucketName,
        /// The JSON parser's complaint.
        reason: String,
    },
    #[error("configuration layout: {0}")]
    /// `layout` in the configuration is not usable.
    Layout(String),
    #[error(
        "a private site (publish.access = \"presign\") cannot be a static website: website \
         endpoints serve public objects only; drop --website or choose --access bucket-policy"
    )]
    /// `--website` was asked for a site only presigned links can read.
    PrivateWebsite,
}

/// The changes that make `bucket` serve the site with `access`, given its settings now.
pub fn plan(
    bucket: &BucketName,
    layout: &Layout,
    partition: &str,
    access: SiteAccess,
    website: bool,
    state: &BucketSiteState,
) -> Result<Vec<SiteChange>, SiteError> {
    if website && access == SiteAccess::Presign {
        return Err(SiteError::PrivateWebsite);
    }
    let block = state.public_access_block.unwrap_or_default();
    let mut changes = Vec::new();
    match access {
        SiteAccess::BucketPolicy => {
            if !block.allows_public_policy() {
                changes.push(SiteChange::PublicAccessBlock {
                    from: state.public_access_block,
                    to: PublicAccessBlock {
                        block_public_policy: false,
                        restrict_public_buckets: false,
                        ..block
                    },
                });
            }
            let document = merged_policy(bucket, state.policy.as_deref(), layout, partition)?;
            if !same_json(state.policy.as_deref(), &document) {
                changes.push(SiteChange::Policy { document });
            }
        }
        SiteAccess::Acl => {
            if !block.allows_public_acls() {
                changes.push(SiteChange::PublicAccessBlock {
                    from: state.public_access_block,
                    to: PublicAccessBlock {
                        block_public_acls: false,
                        ignore_public_acls: false,
                        ..block
                    },
                });
            }
            if state.acls == AclMode::Disabled {
                changes.push(SiteChange::EnableAcls);
            }
        }
        SiteAccess::Presign => {}
    }
    if website && state.website_index.as_deref() != Some(INDEX_KEY) {
        changes.push(SiteChange::Website {
            index: INDEX_KEY.to_owned(),
        });
    }
    Ok(changes)
}

/// Makes `changes` on `bucket`, in the order [`plan`] gave them.
pub async fn apply(
    store: &S3Store,
    bucket: &BucketName,
    changes: &[SiteChange],
) -> Result<(), StorageError> {
    for change in changes {
        match change {
            SiteChange::PublicAccessBlock { to, .. } => {
                store.put_public_access_block(bucket, *to).await?
            }
            SiteChange::EnableAcls => store.enable_acls(bucket).await?,
            SiteChange::Policy { document } => store.put_bucket_policy(bucket, document).await?,
            SiteChange::Website { index } => store.enable_website(bucket, index).await?,
        }
    }
    Ok(())
}

/// Reads the reports bucket's settings and plans; the S3 store to apply the plan with.
pub async fn plan_for(
    config: &Config,
    access: SiteAccess,
    website: bool,
) -> Result<(S3Store, Vec<SiteChange>), SiteError> {
    let aws = aws_context(config).await?;
    let store = S3Store::new(aws, &gid_storage::S3Options::from_config(&config.aws));
    let bucket = &config.buckets.reports;
    let state = store.site_state(bucket).await?;
    let partition = partition_of(store.region());
    let changes = plan(
        bucket,
        &config
            .layout()
            .map_err(|e| SiteError::Layout(e.to_string()))?,
        partition,
        access,
        website,
        &state,
    )?;
    Ok((store, changes))
}

/// gid's statement merged into the bucket's current policy: other statements kept,
/// a previous gid statement replaced.
fn merged_policy(
    bucket: &BucketName,
    current: Option<&str>,
    layout: &Layout,
    partition: &str,
) -> Result<String, SiteError> {
    let ours_text = site_policy(bucket, layout, partition);
    let Some(current) = current else {
        return Ok(ours_text);
    };
    let ours: serde_json::Value = serde_json::from_str(&ours_text).expect("our policy is JSON");
    let mut document: serde_json::Value =
        serde_json::from_str(current).map_err(|e| SiteError::ForeignPolicy {
            bucket: bucket.clone(),
            reason: e.to_string(),
        })?;
    let statements = match document.get_mut("Statement") {
        Some(serde_json::Value::Array(statements)) => statements,
        // A single statement object is legal IAM; make it a list to add ours.
        Some(single) => {
            *single = serde_json::Value::Array(vec![single.take()]);
            single.as_array_mut().expect("just made an array")
        }
        None => {
            document["Statement"] = serde_json::Value::Array(Vec::new());
            document["Statement"].as_array_mut().expect("just made")
        }
    };
    statements.retain(|s| s.get("Sid").and_then(|v| v.as_str()) != Some(SITE_STATEMENT_ID));
    statements.extend(
        ours["Statement"]
            .as_array()
            .expect("ours has statements")
            .clone(),
    );
    Ok(serde_json::to_string_pretty(&document).expect("a policy serialises"))
}

fn same_json(current: Option<&str>, wanted: &str) -> bool {
    let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).ok();
    current
        .and_then(parse)
        .is_some_and(|c| Some(c) == parse(wanted))
}

/// The ARN partition of a region (`aws`, `aws-cn`, `aws-us-gov`).
fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Where the public (or, for a presigned site, the operator) opens the site.
pub async fn site_url(config: &Config, store: &dyn SignedStore) -> Result<String, SiteError> {
    let bucket = &config.buckets.reports;
    let index = ObjectKey::new(INDEX_KEY).expect("the index key is valid");
    if config.profile == Profile::Aws {
        match config.publish.access {
            SiteAccess::Presign => {
                let expires = std::time::Duration::from_secs(config.publish.presign_expires_secs);
                return Ok(store.presign_get(bucket, &index, expires).await?);
            }
            _ if config.publish.website => {
                let aws = aws_context(config).await?;
                if aws.endpoint(gid_aws::Service::S3).is_none() {
                    return Ok(gid_storage::website_endpoint(bucket, aws.region()));
                }
            }
            _ => {}
        }
    }
    Ok(store.public_url(bucket, &index))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket() -> BucketName {
        BucketName::new("gid-reports").unwrap()
    }

    fn layout() -> Layout {
        Layout::new("{year}/{mon}/").unwrap()
    }

    /// The plan for gid-reports under `{year}/{mon}/` on AWS.
    fn plan_of(
        access: SiteAccess,
        website: bool,
        state: &BucketSiteState,
    ) -> Result<Vec<SiteChange>, SiteError> {
        plan(&bucket(), &layout(), "aws", access, website, state)
    }

    /// A bucket as S3 creates it since April 2023.
    fn new_bucket() -> BucketSiteState {
        BucketSiteState {
            public_access_block: Some(PublicAccessBlock::ALL_ON),
            acls: AclMode::Disabled,
            policy: None,
            website_index: None,
        }
    }

    #[test]
    fn a_new_bucket_opens_to_a_policy_but_keeps_acls_blocked() {
        let changes = plan_of(SiteAccess::BucketPolicy, true, &new_bucket()).unwrap();
        assert_eq!(changes.len(), 3, "{changes:?}");
        assert_eq!(
            changes[0],
            SiteChange::PublicAccessBlock {
                from: Some(PublicAccessBlock::ALL_ON),
                to: PublicAccessBlock {
                    block_public_acls: true,
                    ignore_public_acls: true,
                    block_public_policy: false,
                    restrict_public_buckets: false,
                },
            }
        );
        assert!(
            matches!(&changes[1], SiteChange::Policy { document } if document.contains("GidPublicSiteRead"))
        );
        assert_eq!(
            changes[2],
            SiteChange::Website {
                index: "index.html".into()
            }
        );
        let shown = changes[0].to_string();
        assert_eq!(
            shown,
            "public access block: BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, \
             RestrictPublicBuckets on -> BlockPublicAcls, IgnorePublicAcls on"
        );
    }

    #[test]
    fn a_configured_bucket_needs_no_change() {
        let mut state = new_bucket();
        let changes = plan_of(SiteAccess::BucketPolicy, true, &state).unwrap();
        for change in &changes {
            match change {
                SiteChange::PublicAccessBlock { to, .. } => state.public_access_block = Some(*to),
                SiteChange::Policy { document } => state.policy = Some(document.clone()),
                SiteChange::Website { index } => state.website_index = Some(index.clone()),
                SiteChange::EnableAcls => unreachable!("bucket-policy keeps ACLs off"),
            }
        }
        let again = plan_of(SiteAccess::BucketPolicy, true, &state).unwrap();
        assert!(again.is_empty(), "{again:?}");
    }

    #[test]
    fn the_buckets_other_policy_statements_are_kept_and_ours_replaced() {
        let state = BucketSiteState {
            policy: Some(
                r#"{"Version":"2012-10-17","Statement":[
                    {"Sid":"Logs","Effect":"Allow","Principal":{"Service":"logging.s3.amazonaws.com"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::gid-reports/logs/*"},
                    {"Sid":"GidPublicSiteRead","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::gid-reports/*"}]}"#
                    .into(),
            ),
            public_access_block: None,
            ..new_bucket()
        };
        let changes = plan_of(SiteAccess::BucketPolicy, false, &state).unwrap();
        let [SiteChange::Policy { document }] = changes.as_slice() else {
            panic!("{changes:?}")
        };
        let document: serde_json::Value = serde_json::from_str(document).unwrap();
        let statements = document["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[0]["Sid"], "Logs");
        assert_eq!(
            statements[1]["Resource"][0], "arn:aws:s3:::gid-reports/index.html",
            "the old bucket-wide grant is replaced"
        );
    }

    #[test]
    fn acl_access_enables_acls_and_public_acls_only() {
        let changes = plan_of(SiteAccess::Acl, false, &new_bucket()).unwrap();
        assert_eq!(
            changes,
            [
                SiteChange::PublicAccessBlock {
                    from: Some(PublicAccessBlock::ALL_ON),
                    to: PublicAccessBlock {
                        block_public_acls: false,
                        ignore_public_acls: false,
                        block_public_policy: true,
                        restrict_public_buckets: true,
                    },
                },
                SiteChange::EnableAcls,
            ]
        );
    }

    #[test]
    fn a_private_site_changes_nothing_and_cannot_be_a_website() {
        assert!(plan_of(SiteAccess::Presign, false, &new_bucket())
            .unwrap()
            .is_empty());
        assert!(matches!(
            plan_of(SiteAccess::Presign, true, &new_bucket()),
            Err(SiteError::PrivateWebsite)
        ));
    }

    #[test]
    fn partitions_follow_the_region() {
        assert_eq!(partition_of("us-west-2"), "aws");
        assert_eq!(partition_of("cn-north-1"), "aws-cn");
        assert_eq!(partition_of("us-gov-west-1"), "aws-us-gov");
    }
}
