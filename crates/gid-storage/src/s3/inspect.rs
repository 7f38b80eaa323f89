//! What S3 says about a bucket's reachability and exposure, for a preflight
//! (`gid-admin doctor`): where the bucket is and whether these credentials reach it
//! (HeadBucket), and what decides whether anonymous readers can get its objects — the
//! public access block, object ownership (ACLs on or off), the bucket policy's status and
//! the bucket ACL's grants to everyone. These are facts, read without changing anything;
//! what they mean for gid's configuration is the caller's to judge.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{ObjectOwnership, Permission, Type};
use gid_core::BucketName;

use super::{classify, S3Store, ALL_USERS};
use crate::StorageError;

/// What HeadBucket answered for a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketReach {
    /// It exists and these credentials may use it; `region` as S3 reports it.
    Reachable {
        /// The bucket's region.
        region: Option<String>,
    },
    /// It exists in another region than the client's: S3 redirects (301) every request.
    OtherRegion {
        /// The bucket's region.
        region: Option<String>,
    },
    /// No such bucket (404).
    Missing,
    /// S3 refused (403): the bucket exists but these credentials may not use it (or, without
    /// `s3:ListBucket`, S3 will not even say whether it exists).
    Forbidden,
}

/// A bucket's public access block (all `false` is the same as none configured).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublicAccessBlock {
    /// PUTs with a public ACL are refused (AccessDenied).
    pub block_public_acls: bool,
    /// Public ACLs are stored but ignored: such objects are not public.
    pub ignore_public_acls: bool,
    /// Bucket policies that grant public access are refused.
    pub block_public_policy: bool,
    /// A public bucket policy grants nothing to anonymous readers.
    pub restrict_public_buckets: bool,
}

/// Whether ACLs take effect on a bucket (its Object Ownership setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclMode {
    /// ACLs take effect (ObjectWriter, BucketOwnerPreferred, or no ownership controls).
    Enabled,
    /// BucketOwnerEnforced: ACLs are disabled; a PUT carrying one is refused with
    /// `AccessControlListNotSupported`.
    Disabled,
}

/// Who judged whether the bucket policy is public.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyJudge {
    /// S3 itself (GetBucketPolicyStatus).
    S3,
    /// gid's own reading of the policy document, because the endpoint does not answer
    /// GetBucketPolicyStatus (emulators, S3-compatible stores): an `Allow` of `s3:GetObject`
    /// to `*` without conditions counts as public.
    Gid,
}

/// What the bucket policy grants anonymous readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyVerdict {
    /// The bucket has no policy.
    NoPolicy,
    /// The policy lets anyone read objects.
    Public(PolicyJudge),
    /// It has a policy that does not.
    NotPublic(PolicyJudge),
}

/// Everything that decides whether anonymous readers can get a bucket's objects; each
/// part read on its own, so one refused read (say, no `s3:GetBucketPolicyStatus`
/// permission) leaves the others usable.
#[derive(Debug)]
pub struct BucketExposure {
    /// `None`: no public access block configured on the bucket.
    pub public_access_block: Result<Option<PublicAccessBlock>, StorageError>,
    /// Whether the bucket takes object ACLs.
    pub acls: Result<AclMode, StorageError>,
    /// What its policy grants anonymous readers.
    pub policy: Result<PolicyVerdict, StorageError>,
    /// The permissions the bucket ACL grants to everyone (`READ` lets anyone list it).
    pub acl_grants_to_everyone: Result<Vec<String>, StorageError>,
}

/// What S3-compatible stores answer for an operation they do not have.
pub(crate) const NOT_IMPLEMENTED: &str = "NotImplemented";

impl S3Store {
    /// The region every request of this store is signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The custom endpoint S3 is reached at (`None`: AWS's own).
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// HeadBucket: whether the bucket exists, these credentials reach it, and its region.
    /// An `Err` is anything else: the endpoint unreachable, credentials refused, …
    pub async fn bucket_reach(&self, bucket: &BucketName) -> Result<BucketReach, StorageError> {
        let error = match self
            .client
            .head_bucket()
            .bucket(bucket.as_str())
            .send()
            .await
        {
            Ok(output) => {
                return Ok(BucketReach::Reachable {
                    region: output.bucket_region().map(str::to_owned),
                })
            }
            Err(error) => error,
        };
        let response = error.raw_response();
        let status = response.map(|r| r.status().as_u16());
        let region = response
            .and_then(|r| r.headers().get("x-amz-bucket-region"))
            .map(str::to_owned);
        match status {
            Some(404) => Ok(BucketReach::Missing),
            Some(403)
                if error
                    .code()
                    .is_none_or(|c| c == "Forbidden" || c == "AccessDenied") =>
            {
                Ok(BucketReach::Forbidden)
            }
            Some(301) => Ok(BucketReach::OtherRegion { region }),
            _ => Err(classify(
                self.endpoint.as_deref(),
                "head bucket",
                bucket,
                "",
                error,
            )),
        }
    }

    /// The bucket's public access block; `None` when none is configured.
    pub async fn public_access_block(
        &self,
        bucket: &BucketName,
    ) -> Result<Option<PublicAccessBlock>, StorageError> {
        match self
            .client
            .get_public_access_block()
            .bucket(bucket.as_str())
            .send()
            .await
        {
            Ok(output) => {
                Ok(output
                    .public_access_block_configuration()
                    .map(|c| PublicAccessBlock {
                        block_public_acls: c.block_public_acls().unwrap_or(false),
                        ignore_public_acls: c.ignore_public_acls().unwrap_or(false),
                        block_public_policy: c.block_public_policy().unwrap_or(false),
                        restrict_public_buckets: c.restrict_public_buckets().unwrap_or(false),
                    }))
            }
            // S3-compatible stores without the feature (MinIO, Ceph) have no block either.
            Err(e)
                if matches!(
                    e.code(),
                    Some("NoSuchPublicAccessBlockConfiguration" | NOT_IMPLEMENTED)
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(classify(
                self.endpoint.as_deref(),
                "get public access block of",
                bucket,
                "",
                e,
            )),
        }
    }

    /// Whether ACLs take effect on the bucket (its ownership controls).
    pub async fn acl_mode(&self, bucket: &BucketName) -> Result<AclMode, StorageError> {
        match self
            .client
            .get_bucket_ownership_controls()
            .bucket(bucket.as_str())
            .send()
            .await
        {
            Ok(output) => {
                let enforced = output.ownership_controls().is_some_and(|c| {
                    c.rules()
                        .iter()
                        .any(|r| r.object_ownership() == &ObjectOwnership::BucketOwnerEnforced)
                });
                Ok(if enforced {
                    AclMode::Disabled
                } else {
                    AclMode::Enabled
                })
            }
            // Buckets without ownership controls behave as ObjectWriter: ACLs apply.
            Err(e)
                if matches!(
                    e.code(),
                    Some("OwnershipControlsNotFoundError" | NOT_IMPLEMENTED)
                ) =>
            {
                Ok(AclMode::Enabled)
            }
            Err(e) => Err(classify(
                self.endpoint.as_deref(),
                "get ownership controls of",
                bucket,
                "",
                e,
            )),
        }
    }

    /// Whether the bucket policy lets anyone read: S3's own judgement when the endpoint
    /// answers GetBucketPolicyStatus, else gid's reading of the policy document.
    pub async fn policy_verdict(&self, bucket: &BucketName) -> Result<PolicyVerdict, StorageError> {
        let status = self
            .client
            .get_bucket_policy_status()
            .bucket(bucket.as_str())
            .send()
            .await;
        match status {
            Ok(output) => {
                if let Some(public) = output.policy_status().and_then(|s| s.is_public()) {
                    return Ok(if public {
                        PolicyVerdict::Public(PolicyJudge::S3)
                    } else {
                        PolicyVerdict::NotPublic(PolicyJudge::S3)
                    });
                }
            }
            Err(e) if e.code() == Some("NoSuchBucketPolicy") => return Ok(PolicyVerdict::NoPolicy),
            Err(e) if matches!(e.code(), Some("AccessDenied" | "NoSuchBucket")) => {
                return Err(classify(
                    self.endpoint.as_deref(),
                    "get policy status of",
                    bucket,
                    "",
                    e,
                ))
            }
            // Anything else: an endpoint that does not implement the operation (moto
            // answers it with a bucket listing), so read the policy instead.
            Err(e) => {
                tracing::debug!(%bucket, code = e.code().unwrap_or("none"), "GetBucketPolicyStatus unusable; reading the policy")
            }
        }
        Ok(match self.bucket_policy(bucket).await? {
            None => PolicyVerdict::NoPolicy,
            Some(policy) if policy_grants_public_read(&policy) => {
                PolicyVerdict::Public(PolicyJudge::Gid)
            }
            Some(_) => PolicyVerdict::NotPublic(PolicyJudge::Gid),
        })
    }

    /// The bucket's policy document; `None` when it has none.
    pub async fn bucket_policy(&self, bucket: &BucketName) -> Result<Option<String>, StorageError> {
        match self
            .client
            .get_bucket_policy()
            .bucket(bucket.as_str())
            .send()
            .await
        {
            Ok(output) => Ok(output.policy().map(str::to_owned)),
            Err(e) if e.code() == Some("NoSuchBucketPolicy") => Ok(None),
            Err(e) => Err(classify(
                self.endpoint.as_deref(),
                "get policy of",
                bucket,
                "",
                e,
            )),
        }
    }

    /// The permissions the bucket's ACL grants to everyone (the AllUsers group).
    pub async fn bucket_acl_grants_to_everyone(
        &self,
        bucket: &BucketName,
    ) -> Result<Vec<String>, StorageError> {
        let output = self
            .client
            .get_bucket_acl()
            .bucket(bucket.as_str())
            .send()
            .await
            .map_err(|e| classify(self.endpoint.as_deref(), "get acl of", bucket, "", e))?;
        Ok(output
            .grants()
            .iter()
            .filter(|g| {
                g.grantee()
                    .is_some_and(|who| who.r#type() == &Type::Group && who.uri() == Some(ALL_USERS))
            })
            .filter_map(|g| g.permission().map(Permission::as_str).map(str::to_owned))
            .collect())
    }

    /// Every fact about the bucket's exposure, read concurrently.
    pub async fn exposure(&self, bucket: &BucketName) -> BucketExposure {
        let (public_access_block, acls, policy, acl_grants_to_everyone) = tokio::join!(
            self.public_access_block(bucket),
            self.acl_mode(bucket),
            self.policy_verdict(bucket),
            self.bucket_acl_grants_to_everyone(bucket),
        );
        BucketExposure {
            public_access_block,
            acls,
            policy,
            acl_grants_to_everyone,
        }
    }
}

/// Whether a policy document lets anyone get objects: a statement that allows
/// `s3:GetObject` (or `s3:Get*`, `s3:*`, `*`) to the principal `*` without conditions.
/// Conditions (source IP, VPC, referer) make S3 itself call a policy non-public too.
fn policy_grants_public_read(policy: &str) -> bool {
    let Ok(document) = serde_json::from_str::<serde_json::Value>(policy) else {
        return false;
    };
    let statements = match &document["Statement"] {
        serde_json::Value::Array(all) => all.clone(),
        one @ serde_json::Value::Object(_) => vec![one.clone()],
        _ => return false,
    };
    let strings = |value: &serde_json::Value| -> Vec<String> {
        match value {
            serde_json::Value::String(s) => vec![s.clone()],
            serde_json::Value::Array(all) => all
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    };
    statements.iter().any(|s| {
        let anyone = match &s["Principal"] {
            serde_json::Value::String(p) => p == "*",
            serde_json::Value::Object(p) => p
                .get("AWS")
                .is_some_and(|aws| strings(aws).iter().any(|a| a == "*")),
            _ => false,
        };
        let reads = strings(&s["Action"])
            .iter()
            .any(|a| matches!(a.as_str(), "s3:GetObject" | "s3:Get*" | "s3:*" | "*"));
        s["Effect"] == "Allow" && anyone && reads && s.get("Condition").is_none()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_allowing_anyone_to_get_objects_is_public() {
        let public = r#"{"Version":"2012-10-17","Statement":[{"Sid":"site","Effect":"Allow",
            "Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::gid-reports/*"}]}"#;
        assert!(policy_grants_public_read(public));
        let aws_star = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":["*"]},
            "Action":["s3:ListBucket","s3:GetObject"],"Resource":"*"}}"#;
        assert!(policy_grants_public_read(aws_star));
    }

    #[test]
    fn policies_limited_by_principal_condition_or_effect_are_not_public() {
        let one_account = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},
            "Action":"s3:GetObject","Resource":"*"}]}"#;
        let from_one_network = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject",
            "Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#;
        let denial = r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"*"}]}"#;
        let writes = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"*"}]}"#;
        for policy in [one_account, from_one_network, denial, writes, "not json"] {
            assert!(!policy_grants_public_read(policy), "{policy}");
        }
    }
}
