//! What makes the site public on today's buckets: a bucket policy granting anonymous
//! `s3:GetObject` on the site's own files — the index and each month's report pages — and
//! on nothing else the bucket may hold.

use gid_core::{BucketName, Layout};

/// Files at the site's root that the public reads.
pub const SITE_ROOT_FILES: &[&str] = &[crate::INDEX_KEY, crate::TRENDS_HTML, crate::TRENDS_CSV];

/// Root files that each other language of the site gets too, under its folder
/// (`es/trends.html`): `*/trends.html` in the policy, as a month folder's `*` already
/// covers a translation's `es/2019/jan/`.
pub const TRANSLATED_ROOT_FILES: &[&str] = &[crate::TRENDS_HTML];

/// The files the monthly report writes in each month's folder.
pub const REPORT_FILES: &[&str] = &[
    "final_report.csv",
    "final_report.html",
    "chart.html",
    "map.html",
    "summary.json",
];

/// The files each month's folder holds: the report's ([`REPORT_FILES`], which
/// [`crate::render_month`] writes) and scooter-pickups' two. A translation's folder
/// (`es/2019/jan/`) is covered by the same resources: IAM's `*` matches `/` too, so
/// `*/*/chart.html` matches `es/2019/jan/chart.html`.
pub const MONTH_FILES: &[&str] = &[
    "final_report.csv",
    "final_report.html",
    "chart.html",
    "map.html",
    "summary.json",
    "scooter_pickups.csv",
    "scooter_pickups.html",
];

/// The bucket policy for `bucket`'s site under `layout`: one statement allowing
/// `s3:GetObject` to everyone on the root files and on the month files under any month
/// folder (`{year}/{mon}/final_report.csv` becomes `*/*/final_report.csv`), so any other
/// object an operator keeps in the bucket stays private.
///
/// Resources name the files rather than the folder shape (`????/???/*`, tighter still)
/// because S3-compatible stores differ in IAM's `?` wildcard — moto_server answers 500 —
/// while `*` works everywhere.
pub fn site_policy(bucket: &BucketName, layout: &Layout, partition: &str) -> String {
    let month_folder = layout
        .template()
        .replace("{year}", "*")
        .replace("{mon}", "*")
        .replace("{mm}", "*");
    let resources: Vec<String> = SITE_ROOT_FILES
        .iter()
        .map(|file| format!("arn:{partition}:s3:::{bucket}/{file}"))
        .chain(
            TRANSLATED_ROOT_FILES
                .iter()
                .map(|file| format!("arn:{partition}:s3:::{bucket}/*/{file}")),
        )
        .chain(
            MONTH_FILES
                .iter()
                .map(|file| format!("arn:{partition}:s3:::{bucket}/{month_folder}{file}")),
        )
        .collect();
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "GidPublicSiteRead",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": resources,
        }]
    });
    serde_json::to_string_pretty(&policy).expect("a policy serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_grants_reads_of_the_site_files_only() {
        let bucket = BucketName::new("gid-reports").unwrap();
        let layout = Layout::new("{year}/{mon}/").unwrap();
        let policy: serde_json::Value =
            serde_json::from_str(&site_policy(&bucket, &layout, "aws")).unwrap();
        let statement = &policy["Statement"][0];
        assert_eq!(statement["Action"], "s3:GetObject");
        assert_eq!(statement["Principal"], "*");
        assert_eq!(
            statement["Resource"],
            serde_json::json!([
                "arn:aws:s3:::gid-reports/index.html",
                "arn:aws:s3:::gid-reports/trends.html",
                "arn:aws:s3:::gid-reports/trends.csv",
                "arn:aws:s3:::gid-reports/*/trends.html",
                "arn:aws:s3:::gid-reports/*/*/final_report.csv",
                "arn:aws:s3:::gid-reports/*/*/final_report.html",
                "arn:aws:s3:::gid-reports/*/*/chart.html",
                "arn:aws:s3:::gid-reports/*/*/map.html",
                "arn:aws:s3:::gid-reports/*/*/summary.json",
                "arn:aws:s3:::gid-reports/*/*/scooter_pickups.csv",
                "arn:aws:s3:::gid-reports/*/*/scooter_pickups.html"
            ])
        );
        let nested = Layout::new("reports/{year}-{mm}/").unwrap();
        let policy = site_policy(&bucket, &nested, "aws-cn");
        assert!(
            policy.contains("arn:aws-cn:s3:::gid-reports/reports/*-*/chart.html"),
            "{policy}"
        );
    }

    #[test]
    fn every_file_a_month_publishes_is_readable_under_the_policy() {
        let layout = Layout::new("{year}/{mon}/").unwrap();
        let summary = gid_aggregate::MonthSummary {
            month: "2019-01".into(),
            total_requests: 0,
            services: vec![],
            by_status: vec![],
            by_council_district: vec![],
            ..Default::default()
        };
        let bucket = BucketName::new("gid-reports").unwrap();
        let policy: serde_json::Value =
            serde_json::from_str(&site_policy(&bucket, &layout, "aws")).unwrap();
        let resources: Vec<&str> = policy["Statement"][0]["Resource"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        let texts = [
            crate::PageText::english(),
            crate::PageText::translated("es", Default::default(), Default::default()),
        ];
        let mut files =
            crate::render_month(&layout, &summary, &crate::ServiceInfo::default(), &texts);
        let mut trends = crate::TrendsState::default();
        trends.record("etag", &summary);
        files.extend(crate::render_trends(&layout, &trends, &texts));
        for key in ["es/2019/jan/chart.html", "es/trends.html"] {
            assert!(files.iter().any(|f| f.key.as_str() == key), "{key}");
        }
        let readable = |key: &str| {
            let arn = format!("arn:aws:s3:::gid-reports/{key}");
            resources.iter().any(|r| iam_matches(r, &arn))
        };
        for file in &files {
            assert!(
                readable(file.key.as_str()),
                "{} is not in the policy",
                file.key
            );
        }
        for key in [
            "2019/jan/scooter_pickups.html",
            "es/2019/jan/scooter_pickups.html",
        ] {
            assert!(readable(key), "{key} is not in the policy");
        }
        assert!(!readable("2019/jan/summary.json.bak"));
        assert!(!readable("es/trends.json"));
    }

    /// IAM's `*` (any run of characters, `/` included), the only wildcard the policy uses.
    fn iam_matches(pattern: &str, value: &str) -> bool {
        let mut parts = pattern.split('*');
        let first = parts.next().unwrap_or("");
        let Some(mut rest) = value.strip_prefix(first) else {
            return false;
        };
        let parts: Vec<&str> = parts.collect();
        for (i, part) in parts.iter().enumerate() {
            if i == parts.len() - 1 {
                return rest.ends_with(part);
            }
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        rest.is_empty()
    }
}
