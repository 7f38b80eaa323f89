//! Bucket settings that decide who may read the report site: Block Public Access, Object
//! Ownership, the bucket policy and static website hosting. `gid-admin site init` reads
//! them, plans the changes a [`gid_core::SiteAccess`] needs, and applies them here.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    IndexDocument, ObjectOwnership, OwnershipControls, OwnershipControlsRule,
    PublicAccessBlockConfiguration, WebsiteConfiguration,
};

use gid_core::BucketName;

use super::inspect::{AclMode, PublicAccessBlock};
use super::{classify, S3Store};
use crate::StorageError;

impl PublicAccessBlock {
    /// Every public grant blocked: the default of new buckets.
    pub const ALL_ON: Self = Self {
        block_public_acls: true,
        ignore_public_acls: true,
        block_public_policy: true,
        restrict_public_buckets: true,
    };

    /// Whether a bucket policy granting public reads can be put and takes effect.
    pub fn allows_public_policy(self) -> bool {
        !self.block_public_policy && !self.restrict_public_buckets
    }

    /// Whether public-read object ACLs can be put and take effect.
    pub fn allows_public_acls(self) -> bool {
        !self.block_public_acls && !self.ignore_public_acls
    }

    /// The settings names that are on, as S3 spells them.
    pub fn enabled(self) -> Vec<&'static str> {
        [
            (self.block_public_acls, "BlockPublicAcls"),
            (self.ignore_public_acls, "IgnorePublicAcls"),
            (self.block_public_policy, "BlockPublicPolicy"),
            (self.restrict_public_buckets, "RestrictPublicBuckets"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

/// What a bucket's site-related settings are now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketSiteState {
    /// `None` when the bucket has no public access block configuration.
    pub public_access_block: Option<PublicAccessBlock>,
    /// Whether ACLs take effect (Object Ownership other than `BucketOwnerEnforced`).
    pub acls: AclMode,
    /// The bucket policy document, if any.
    pub policy: Option<String>,
    /// The website index document, when static website hosting is on.
    pub website_index: Option<String>,
}

impl S3Store {
    /// Reads the bucket's Block Public Access, Object Ownership, policy and website
    /// settings; a setting that was never configured reads as `None`.
    pub async fn site_state(&self, bucket: &BucketName) -> Result<BucketSiteState, StorageError> {
        let public_access_block = self.public_access_block(bucket).await?;
        let acls = self.acl_mode(bucket).await?;
        let policy = self.bucket_policy(bucket).await?;
        let website_index = match self
            .client()
            .get_bucket_website()
            .bucket(bucket.as_str())
            .send()
            .await
        {
            Ok(out) => out.index_document().map(|d| d.suffix().to_owned()),
            Err(e)
                if matches!(
                    e.code(),
                    Some("NoSuchWebsiteConfiguration" | super::inspect::NOT_IMPLEMENTED)
                ) =>
            {
                None
            }
            Err(e) => return Err(self.failed("read the website configuration of", bucket, e)),
        };
        Ok(BucketSiteState {
            public_access_block,
            acls,
            policy,
            website_index,
        })
    }

    /// Replaces the bucket's Block Public Access settings.
    pub async fn put_public_access_block(
        &self,
        bucket: &BucketName,
        block: PublicAccessBlock,
    ) -> Result<(), StorageError> {
        self.client()
            .put_public_access_block()
            .bucket(bucket.as_str())
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(block.block_public_acls)
                    .ignore_public_acls(block.ignore_public_acls)
                    .block_public_policy(block.block_public_policy)
                    .restrict_public_buckets(block.restrict_public_buckets)
                    .build(),
            )
            .send()
            .await
            .map(drop)
            .map_err(|e| self.failed("change the public access block of", bucket, e))
    }

    /// Replaces the bucket's policy with `policy` (a JSON document).
    pub async fn put_bucket_policy(
        &self,
        bucket: &BucketName,
        policy: &str,
    ) -> Result<(), StorageError> {
        self.client()
            .put_bucket_policy()
            .bucket(bucket.as_str())
            .policy(policy)
            .send()
            .await
            .map(drop)
            .map_err(|e| self.failed("put the bucket policy of", bucket, e))
    }

    /// Enables object ACLs (Object Ownership = BucketOwnerPreferred), for `access = "acl"`.
    pub async fn enable_acls(&self, bucket: &BucketName) -> Result<(), StorageError> {
        let rule = OwnershipControlsRule::builder()
            .object_ownership(ObjectOwnership::BucketOwnerPreferred)
            .build()
            .expect("object ownership is set");
        let controls = OwnershipControls::builder()
            .rules(rule)
            .build()
            .expect("rules are set");
        self.client()
            .put_bucket_ownership_controls()
            .bucket(bucket.as_str())
            .ownership_controls(controls)
            .send()
            .await
            .map(drop)
            .map_err(|e| self.failed("change the object ownership of", bucket, e))
    }

    /// Turns on static website hosting with `index` as the index document.
    pub async fn enable_website(
        &self,
        bucket: &BucketName,
        index: &str,
    ) -> Result<(), StorageError> {
        let index = IndexDocument::builder()
            .suffix(index)
            .build()
            .expect("suffix is set");
        self.client()
            .put_bucket_website()
            .bucket(bucket.as_str())
            .website_configuration(
                WebsiteConfiguration::builder()
                    .index_document(index)
                    .build(),
            )
            .send()
            .await
            .map(drop)
            .map_err(|e| self.failed("enable website hosting on", bucket, e))
    }

    /// The bucket's static website endpoint on AWS (HTTP only, as S3 serves websites);
    /// `None` at a custom endpoint, which has no website endpoint gid could know.
    pub fn website_url(&self, bucket: &BucketName) -> Option<String> {
        if self.endpoint().is_some() {
            return None;
        }
        Some(website_endpoint(bucket, self.region()))
    }

    fn failed<E>(
        &self,
        operation: &'static str,
        bucket: &BucketName,
        err: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> StorageError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        classify(self.endpoint(), operation, bucket, "", err)
    }
}

/// Regions whose website endpoints are spelled `s3-website-<region>` (the older ones);
/// every other region uses `s3-website.<region>`.
const DASHED_WEBSITE_REGIONS: &[&str] = &[
    "us-east-1",
    "us-west-1",
    "us-west-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "eu-west-1",
    "sa-east-1",
    "us-gov-west-1",
];

/// The static website endpoint of `bucket` in `region` (HTTP only, as S3 serves websites).
pub fn website_endpoint(bucket: &BucketName, region: &str) -> String {
    let separator = if DASHED_WEBSITE_REGIONS.contains(&region) {
        '-'
    } else {
        '.'
    };
    format!("http://{bucket}.s3-website{separator}{region}.amazonaws.com/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn website_endpoints_follow_the_region_spelling() {
        let bucket = BucketName::new("gid-reports").unwrap();
        assert_eq!(
            website_endpoint(&bucket, "us-west-2"),
            "http://gid-reports.s3-website-us-west-2.amazonaws.com/"
        );
        assert_eq!(
            website_endpoint(&bucket, "eu-central-1"),
            "http://gid-reports.s3-website.eu-central-1.amazonaws.com/"
        );
    }

    #[test]
    fn a_new_buckets_block_allows_neither_a_public_policy_nor_public_acls() {
        let block = PublicAccessBlock::ALL_ON;
        assert!(!block.allows_public_policy() && !block.allows_public_acls());
        let policy_only = PublicAccessBlock {
            block_public_policy: false,
            restrict_public_buckets: false,
            ..block
        };
        assert!(policy_only.allows_public_policy() && !policy_only.allows_public_acls());
        assert_eq!(
            policy_only.enabled(),
            ["BlockPublicAcls", "IgnorePublicAcls"]
        );
    }
}
