//! The publish stage (a sink): a month's [`MonthSummary`] → report files on the public
//! site, then a regenerated `index.html`.
//!
//! The protocol keeps the site consistent at every moment: (1) render every file of the
//! month in memory, (2) put each with its Content-Type, Cache-Control and ACL, (3) list
//! the bucket (all pages) and render the index, (4) put `index.html` **last**. A crash
//! before (4) leaves the old index, which only references objects that exist; a rerun
//! repeats (1)–(4) idempotently.
//!
//! Access ([`gid_core::SiteAccess`]): `bucket-policy` puts objects without ACLs (a bucket
//! policy grants reads of the site's keys: [`site_policy`]); `acl` puts them `public-read`;
//! `presign` keeps them private and links the index to presigned URLs, whose expiry the
//! report carries. A bucket that refuses what the configured access needs fails the
//! publish with a [`PublishError`] naming the setting that fits it and the command that
//! fixes it — never a silent switch to another access.

mod map;
mod render;
mod site;
mod trends;

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use gid_aggregate::MonthSummary;
use gid_core::{Acl, BucketName, FailureKind, Layout, ObjectKey, SiteAccess};
use gid_storage::{
    list_all, ObjectMeta, PutCondition, PutOptions, SignedStore, StorageError, WrittenObject,
};

pub use map::map_html;
pub use render::{
    chart_html, final_report_csv, final_report_html, index_html, index_link_text,
    neutralise_formula, relative_href, table_csv, table_page, Headline, IndexEntry, MonthNav,
    ServiceInfo, SiteHeader, SiteMonth, SitePage, TextTable, TRENDS_FILE,
};
pub use render::{lang_folder, PageText, SOURCE_LANG};
pub use site::{site_policy, MONTH_FILES, REPORT_FILES, SITE_ROOT_FILES, TRANSLATED_ROOT_FILES};
pub use trends::{
    render_trends, trends_csv, trends_html, trends_key, TrendsError, TrendsMonth, TrendsState,
    TRENDS_CSV, TRENDS_HTML, TRENDS_STATE_KEY,
};

/// The key of the site index at the bucket root.
pub const INDEX_KEY: &str = "index.html";
/// Index rewrites lost to other publishers before giving up (each retry re-lists).
const INDEX_ATTEMPTS: u32 = 20;
const CSV: &str = "text/csv; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json";

/// Why publishing failed. The previous index is still in place when this is returned.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// A month's file could not be put; the files this call created were removed.
    #[error("publishing s3://{bucket}/{key}: {source}")]
    Put {
        /// The reports bucket.
        bucket: BucketName,
        /// The file that failed.
        key: String,
        /// The store's error (access, throttling, …).
        #[source]
        source: StorageError,
    },
    /// `access = "acl"` on a bucket whose Object Ownership is BucketOwnerEnforced.
    #[error(
        "bucket {bucket} has ACLs disabled (Object Ownership = BucketOwnerEnforced, the default \
         since April 2023), so publish.access = \"acl\" cannot make the site public: set \
         publish.access = \"bucket-policy\" and run `gid-admin site init` (or enable ACLs with \
         `gid-admin site init --access acl`)"
    )]
    AclsDisabled {
        /// The reports bucket.
        bucket: BucketName,
    },
    /// `access = "acl"` refused with AccessDenied: Block Public Access (or a missing
    /// `s3:PutObjectAcl` permission).
    #[error(
        "bucket {bucket} refused a public-read object (access denied): its Block Public Access \
         settings block public ACLs (BlockPublicAcls), or the credentials lack \
         s3:PutObjectAcl. Run `gid-admin site init --access acl` to allow public ACLs on it, or \
         set publish.access = \"bucket-policy\" and run `gid-admin site init`"
    )]
    PublicAclBlocked {
        /// The reports bucket.
        bucket: BucketName,
    },
    /// Listing the site or writing `index.html` failed; the month's files are in place and
    /// the next publish rebuilds the index.
    #[error("regenerating the index of {bucket}: {source}")]
    Index {
        /// The reports bucket.
        bucket: BucketName,
        /// The store's error.
        #[source]
        source: StorageError,
    },
    /// Every conditional write of the index lost to another publisher.
    #[error("the index of {bucket} kept changing under other publishers ({attempts} attempts)")]
    IndexContended {
        /// The reports bucket.
        bucket: BucketName,
        /// Rebuilds tried before giving up.
        attempts: u32,
    },
    /// The trends state in the work bucket does not parse.
    #[error(transparent)]
    Trends(#[from] TrendsError),
    /// Asked to stop before every file was put; the files this call created were removed.
    #[error(
        "stopped before the month's files were all published; nothing of it was left on the site"
    )]
    Stopped,
}

/// A file rendered in memory, ready to put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Where it goes in the reports bucket.
    pub key: ObjectKey,
    /// Sent with the put, so browsers render the file instead of downloading it.
    pub content_type: &'static str,
    /// The rendered bytes.
    pub body: Bytes,
}

impl RenderedFile {
    /// A file of any type.
    pub fn new(key: ObjectKey, content_type: &'static str, body: impl Into<Bytes>) -> Self {
        Self {
            key,
            content_type,
            body: body.into(),
        }
    }

    /// A CSV file (UTF-8, so spreadsheets read accents right).
    pub fn csv(key: ObjectKey, body: impl Into<Bytes>) -> Self {
        Self::new(key, CSV, body)
    }

    /// An HTML page (UTF-8).
    pub fn html(key: ObjectKey, body: impl Into<Bytes>) -> Self {
        Self::new(key, HTML, body)
    }
}

/// The month's report files: `final_report.csv`, `final_report.html`, `chart.html`, the
/// two pages again under each other language's folder (`es/2019/jan/chart.html`), one per
/// [`PageText`] of `texts` (English first; the CSV is data and stays one file), then
/// `map.html` and `summary.json` (the aggregate's own bytes, as a download).
pub fn render_month(
    layout: &Layout,
    summary: &MonthSummary,
    info: &ServiceInfo,
    texts: &[PageText],
) -> Vec<RenderedFile> {
    let month = summary.month();
    let langs: Vec<String> = texts.iter().map(|t| t.lang().to_owned()).collect();
    let mut files = vec![RenderedFile::csv(
        layout.month_key(month, "final_report.csv"),
        final_report_csv(summary),
    )];
    for text in texts {
        let nav = MonthNav::new(layout, month).in_language(text.lang(), &langs);
        files.push(RenderedFile::html(
            page_key(layout, month, text.lang(), "final_report.html"),
            final_report_html(summary, &nav, info, text),
        ));
        files.push(RenderedFile::html(
            page_key(layout, month, text.lang(), "chart.html"),
            chart_html(summary, &nav, text),
        ));
    }
    files.push(RenderedFile::html(
        layout.month_key(month, "map.html"),
        map_html(summary),
    ));
    files.push(RenderedFile::new(
        layout.month_key(month, "summary.json"),
        JSON,
        summary.to_json(),
    ));
    files
}

/// Where a month's page in `lang` goes: `2019/jan/chart.html`, `es/2019/jan/chart.html`.
pub fn page_key(layout: &Layout, month: gid_core::Month, lang: &str, file: &str) -> ObjectKey {
    let key = layout.month_key(month, file);
    ObjectKey::new(format!("{}{key}", lang_folder(lang)))
        .expect("a language code and a month key make a valid key")
}

/// How published objects are made readable, and their caching.
#[derive(Debug, Clone)]
pub struct SiteSettings {
    /// `publish.access`: public ACLs, a bucket policy, or presigned links in the index.
    pub access: SiteAccess,
    /// How long presigned links work (`publish.presign_expires_secs`).
    pub presign_expires: Duration,
    /// Cache-Control of `index.html`: short, since every publish changes it.
    pub index_cache_control: String,
    /// Cache-Control of a month's files, which change only when the month is rerun.
    pub report_cache_control: String,
}

/// What was published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedReport {
    /// The month's files as written (the index is not among them: every month rewrites it).
    pub objects: Vec<WrittenObject>,
    /// Objects listed in the regenerated index.
    pub index_entries: usize,
    /// With `access = "presign"`: when the index's links stop working.
    pub links_expire_at: Option<DateTime<Utc>>,
}

/// The public report website in one bucket.
#[derive(Debug)]
pub struct ReportSite<'a> {
    store: &'a dyn SignedStore,
    bucket: BucketName,
    layout: Layout,
    settings: SiteSettings,
    /// The numbers of the month being published, so that the index's headline costs no
    /// read when that month is the latest.
    headline: Option<Headline>,
}

impl<'a> ReportSite<'a> {
    /// The site in `bucket` of `store`, its month folders laid out by `layout`.
    pub fn new(
        store: &'a dyn SignedStore,
        bucket: BucketName,
        layout: Layout,
        settings: SiteSettings,
    ) -> Self {
        Self {
            store,
            bucket,
            layout,
            settings,
            headline: None,
        }
    }

    /// The headline of the month this site object publishes: used when it is the latest
    /// month, instead of reading that month's `final_report.csv` back.
    pub fn with_headline(mut self, headline: Headline) -> Self {
        self.headline = Some(headline);
        self
    }

    /// The reports bucket, for messages and the run summary.
    pub fn bucket(&self) -> &BucketName {
        &self.bucket
    }

    fn acl(&self) -> Option<Acl> {
        (self.settings.access == SiteAccess::Acl).then_some(Acl::PublicRead)
    }

    fn links_presigned(&self) -> bool {
        self.settings.access == SiteAccess::Presign
    }

    /// When links presigned now stop working (`None` unless the site is presigned).
    fn links_expire_at(&self) -> Option<DateTime<Utc>> {
        self.links_presigned().then(|| {
            Utc::now()
                + chrono::Duration::from_std(self.settings.presign_expires)
                    .unwrap_or(chrono::Duration::MAX)
        })
    }

    async fn put(
        &self,
        key: &ObjectKey,
        body: Bytes,
        content_type: &str,
        cache_control: &str,
        condition: PutCondition,
    ) -> Result<WrittenObject, PublishError> {
        let options = PutOptions::new(content_type)
            .with_cache_control(cache_control)
            .with_acl(self.acl())
            .with_condition(condition);
        let with_acl = options.acl.is_some();
        self.store
            .put(&self.bucket, key, body, &options)
            .await
            .map_err(|source| match source {
                StorageError::AclNotSupported { .. } => PublishError::AclsDisabled {
                    bucket: self.bucket.clone(),
                },
                StorageError::Service {
                    kind: FailureKind::AccessDenied,
                    ..
                } if with_acl => PublishError::PublicAclBlocked {
                    bucket: self.bucket.clone(),
                },
                source => PublishError::Put {
                    bucket: self.bucket.clone(),
                    key: key.to_string(),
                    source,
                },
            })
    }

    /// Puts the rendered files, then regenerates the index (last). If a put fails, the
    /// files this call created are deleted again (best effort), so a month that was not
    /// on the site before does not appear half-published; files that existed before keep
    /// whichever version they have, and the old index still references only them.
    pub async fn publish(&self, files: &[RenderedFile]) -> Result<PublishedReport, PublishError> {
        self.publish_unless(files, &|| false).await
    }

    /// [`Self::publish`], checking `stop` before each file: once it says stop, the files
    /// this call created are removed and [`PublishError::Stopped`] returned (the index is
    /// not touched), so a stopped run leaves no half-published month.
    pub async fn publish_unless(
        &self,
        files: &[RenderedFile],
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<PublishedReport, PublishError> {
        let existing = self.existing(files).await?;
        let mut created = Vec::new();
        let mut written = Vec::with_capacity(files.len());
        for file in files {
            if stop() {
                self.roll_back(&created).await;
                return Err(PublishError::Stopped);
            }
            let put = self
                .put(
                    &file.key,
                    file.body.clone(),
                    file.content_type,
                    &self.settings.report_cache_control,
                    PutCondition::None,
                )
                .await;
            match put {
                Ok(object) => written.push(object),
                Err(e) => {
                    self.roll_back(&created).await;
                    return Err(e);
                }
            }
            if !existing.contains(&file.key) {
                created.push(file.key.clone());
            }
        }
        let index_entries = match self.rebuild_index().await {
            Ok(entries) => entries,
            Err(e) => {
                self.roll_back(&created).await;
                return Err(e);
            }
        };
        Ok(PublishedReport {
            objects: written,
            index_entries,
            links_expire_at: self.links_expire_at(),
        })
    }

    /// Which of `files` are already on the site (a failed publish removes only the others).
    /// One listing per folder the files go to (a month's files share one; a folder inside
    /// another is not listed again) rather than a HEAD per file.
    async fn existing(
        &self,
        files: &[RenderedFile],
    ) -> Result<std::collections::HashSet<ObjectKey>, PublishError> {
        let mut folders: Vec<&str> = files
            .iter()
            .map(|f| {
                let key = f.key.as_str();
                &key[..key.rfind('/').map_or(0, |i| i + 1)]
            })
            .collect();
        folders.sort_unstable();
        folders.dedup();
        // A folder inside another listed one is in that listing already (the trends files
        // at the root make the root's listing cover the month's folder).
        let listed = folders.clone();
        folders.retain(|f| !listed.iter().any(|o| o.len() < f.len() && f.starts_with(o)));
        let mut existing = std::collections::HashSet::new();
        for folder in folders {
            let listed = list_all(self.store, &self.bucket, folder)
                .await
                .map_err(|source| PublishError::Put {
                    bucket: self.bucket.clone(),
                    key: folder.to_owned(),
                    source,
                })?;
            existing.extend(listed.into_iter().map(|o| o.key));
        }
        Ok(existing)
    }

    async fn roll_back(&self, created: &[ObjectKey]) {
        if created.is_empty() {
            return;
        }
        match self.store.delete_many(&self.bucket, created).await {
            Ok(()) => tracing::warn!(
                bucket = %self.bucket,
                removed = created.len(),
                "publishing failed; removed the files this run had created"
            ),
            Err(e) => tracing::warn!(
                bucket = %self.bucket,
                error = %e,
                "publishing failed and the files it created could not be removed; the index does not list them"
            ),
        }
    }

    /// Lists the whole bucket and rewrites `index.html`; returns how many objects it lists.
    ///
    /// Several publishers (months of a backfill in other processes) rewrite the index at
    /// once. Each reads the index's ETag, then lists, then writes conditionally on the index
    /// still being that version (`If-Match`, or `If-None-Match` when there was none); a
    /// publisher whose write loses starts again. So every index that lands was rendered
    /// from a listing taken after the previous index landed, and the last one lists every
    /// object whose publisher finished: none is lost, whatever the interleaving.
    pub async fn rebuild_index(&self) -> Result<usize, PublishError> {
        let index_error = |source| PublishError::Index {
            bucket: self.bucket.clone(),
            source,
        };
        let key = ObjectKey::new(INDEX_KEY).expect("valid key");
        for attempt in 0..INDEX_ATTEMPTS {
            // The index's version is read before the listing, not taken from it: a
            // listing is no snapshot (a key listed early may be written after a key listed
            // late), so only an index version seen *before* the listing proves the listing
            // holds every object whose publisher wrote an index up to then.
            let condition = match self.store.head(&self.bucket, &key).await {
                Ok(current) => PutCondition::IfMatch(current.etag),
                Err(e) if e.is_not_found() => PutCondition::IfNoneMatch,
                Err(source) => return Err(index_error(source)),
            };
            let mut objects: Vec<ObjectMeta> = list_all(self.store, &self.bucket, "")
                .await
                .map_err(index_error)?
                .into_iter()
                .filter(|o| o.key.as_str() != INDEX_KEY)
                .collect();
            // Newest month first; within a month, by key. Objects outside months go last.
            objects.sort_by(|a, b| {
                let ma = self.layout.month_of_key(a.key.as_str());
                let mb = self.layout.month_of_key(b.key.as_str());
                mb.cmp(&ma).then_with(|| a.key.cmp(&b.key))
            });
            let mut entries = Vec::with_capacity(objects.len());
            for o in &objects {
                let href = if self.links_presigned() {
                    self.store
                        .presign_get(&self.bucket, &o.key, self.settings.presign_expires)
                        .await
                        .map_err(index_error)?
                } else {
                    relative_href(o.key.as_str())
                };
                entries.push(IndexEntry {
                    key: o.key.to_string(),
                    href,
                    last_modified: o.last_modified,
                    size: o.size,
                });
            }
            let mut header = SiteHeader::from_entries(&self.layout, &entries);
            header.headline = self.headline(&header).await;
            let page = index_html("Get It Done reports", &header, &entries);
            let written = self
                .put(
                    &key,
                    Bytes::from(page),
                    HTML,
                    &self.settings.index_cache_control,
                    condition,
                )
                .await;
            match written {
                Ok(_) => return Ok(entries.len()),
                Err(PublishError::Put {
                    source: StorageError::PreconditionFailed { .. },
                    ..
                }) => {
                    tracing::debug!(bucket = %self.bucket, attempt, "another publisher rewrote the index; listing again");
                    // Spread the retries of publishers that lost together.
                    let pause = 10 + fastrand::u64(..20 * u64::from(attempt + 1));
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(PublishError::IndexContended {
            bucket: self.bucket.clone(),
            attempts: INDEX_ATTEMPTS,
        })
    }

    /// The latest month's numbers: the ones given with [`Self::with_headline`] when they are
    /// that month's, else from its `final_report.csv` (one GET). A month whose
    /// file cannot be read still gets its links: the header then goes without numbers
    /// rather than failing the publish.
    async fn headline(&self, header: &SiteHeader) -> Option<Headline> {
        let latest = header.months.first()?.month;
        if let Some(known) = self.headline.as_ref().filter(|h| h.month == latest) {
            return Some(known.clone());
        }
        let key = self.layout.month_key(latest, "final_report.csv");
        let body = match self.store.get(&self.bucket, &key).await {
            Ok(object) => object.body,
            Err(e) => {
                tracing::warn!(bucket = %self.bucket, %key, error = %e, "the index goes without the latest month's numbers");
                return None;
            }
        };
        let mut services = Vec::new();
        for record in csv::Reader::from_reader(body.as_ref()).records() {
            let record = record.ok()?;
            let (Some(name), Some(count)) = (record.get(1), record.get(2)) else {
                return None;
            };
            services.push(gid_aggregate::GroupCount {
                name: render::restore_formula(name).to_owned(),
                request_count: count.parse().ok()?,
            });
        }
        Some(Headline {
            month: latest,
            total_requests: services.iter().map(|g| g.request_count).sum(),
            services: services.len(),
            top: services.into_iter().take(3).collect(),
        })
    }

    /// Whether `index.html` lists every key of `keys` (a missing index lists nothing).
    pub async fn index_lists(&self, keys: &[&str]) -> Result<bool, PublishError> {
        let key = ObjectKey::new(INDEX_KEY).expect("valid key");
        let index = match self.store.get(&self.bucket, &key).await {
            Ok(index) => index,
            Err(e) if e.is_not_found() => return Ok(false),
            Err(source) => {
                return Err(PublishError::Index {
                    bucket: self.bucket.clone(),
                    source,
                })
            }
        };
        let page = String::from_utf8_lossy(&index.body);
        Ok(keys.iter().all(|k| page.contains(&index_link_text(k))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gid_aggregate::GroupCount;
    use gid_storage::{BucketAdmin, LocalStore, ObjectAcls, ObjectStore, UrlSigner};
    use std::sync::Arc;

    fn summary(month: &str) -> MonthSummary {
        MonthSummary {
            month: month.into(),
            total_requests: 5,
            services: vec![GroupCount {
                name: "Pothole".into(),
                request_count: 5,
            }],
            by_status: vec![],
            by_council_district: vec![],
            ..Default::default()
        }
    }

    /// The month's files of [`summary`], in English only, with the default info links.
    fn english_month(layout: &Layout, month: &str) -> Vec<RenderedFile> {
        render_month(
            layout,
            &summary(month),
            &ServiceInfo::default(),
            &[PageText::english()],
        )
    }

    fn access(access: SiteAccess) -> SiteSettings {
        SiteSettings {
            access,
            presign_expires: Duration::from_secs(3600),
            index_cache_control: "max-age=60".into(),
            report_cache_control: "max-age=300".into(),
        }
    }

    #[tokio::test]
    async fn a_publisher_whose_listing_went_stale_never_drops_another_months_reports() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let bucket = BucketName::new("gid-reports").unwrap();
        store.create_bucket(&bucket).await.unwrap();
        let layout = Layout::new("{year}/{mon}/").unwrap();
        let hold = Arc::new(HeldListing::default());
        hold.armed.store(true, std::sync::atomic::Ordering::SeqCst);
        let slow_store = TestStore {
            hold: Some(hold.clone()),
            ..TestStore::new(store.clone())
        };
        let slow = ReportSite::new(
            &slow_store,
            bucket.clone(),
            layout.clone(),
            access(SiteAccess::BucketPolicy),
        );
        let fast = ReportSite::new(
            &store,
            bucket.clone(),
            layout.clone(),
            access(SiteAccess::BucketPolicy),
        );
        // January lists the site, February publishes whole meanwhile, then January's
        // listing (without February) comes back.
        let (jan_files, feb_files) = (
            english_month(&layout, "2019-01"),
            english_month(&layout, "2019-02"),
        );
        let january = slow.publish(&jan_files);
        let february = async {
            hold.listed.notified().await;
            let published = fast.publish(&feb_files).await;
            hold.release.notify_one();
            published
        };
        let (january, february) = tokio::join!(january, february);
        january.unwrap();
        february.unwrap();
        let index = store
            .get(&bucket, &ObjectKey::new(INDEX_KEY).unwrap())
            .await
            .unwrap();
        let index = String::from_utf8(index.body.to_vec()).unwrap();
        for key in ["2019/jan/final_report.csv", "2019/feb/final_report.csv"] {
            assert!(index.contains(&index_link_text(key)), "{key} lost: {index}");
        }
    }

    #[tokio::test]
    async fn a_month_published_with_root_files_lists_the_site_once_before_its_index() {
        let dir = tempfile::tempdir().unwrap();
        let bucket = BucketName::new("gid-reports").unwrap();
        let local = LocalStore::new(dir.path());
        local.create_bucket(&bucket).await.unwrap();
        let store = gid_storage::InstrumentedStore::new(Arc::new(local));
        let layout = Layout::new("{year}/{mon}/").unwrap();
        let site = ReportSite::new(
            &store,
            bucket.clone(),
            layout.clone(),
            access(SiteAccess::BucketPolicy),
        );
        let mut files = english_month(&layout, "2019-01");
        files.push(RenderedFile::new(
            ObjectKey::new("trends.csv").unwrap(),
            "text/csv; charset=utf-8",
            "month\n2019-01\n",
        ));

        site.publish(&files).await.unwrap();

        let lists = store
            .counts()
            .lists
            .load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(
            lists, 2,
            "one listing of the root (covering the month's folder) for what exists, one for the index"
        );
    }

    #[tokio::test]
    async fn publish_writes_index_last_listing_every_month() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let bucket = BucketName::new("gid-reports").unwrap();
        store.create_bucket(&bucket).await.unwrap();
        let layout = Layout::new("{year}/{mon}/").unwrap();
        let site = ReportSite::new(
            &store,
            bucket.clone(),
            layout.clone(),
            access(SiteAccess::Acl),
        );
        site.publish(&english_month(&layout, "2019-01"))
            .await
            .unwrap();
        let report = site
            .publish(&english_month(&layout, "2019-02"))
            .await
            .unwrap();
        assert_eq!(report.index_entries, 10);

        let objects = list_all(&store, &bucket, "").await.unwrap();
        let index = objects
            .iter()
            .find(|o| o.key.as_str() == INDEX_KEY)
            .unwrap();
        assert!(
            objects
                .iter()
                .all(|o| o.last_modified <= index.last_modified),
            "index.html is the newest object"
        );
        let page =
            String::from_utf8(store.get(&bucket, &index.key).await.unwrap().body.to_vec()).unwrap();
        // The header's numbers are read back from the latest month's CSV.
        assert!(
            page.contains("Latest month, <strong>2019-02</strong>: 5 requests across 1 services; most requested: Pothole (5)."),
            "{page}"
        );
        let feb = page.find("./2019/feb/chart.html").unwrap();
        let jan = page.find("./2019/jan/chart.html").unwrap();
        assert!(feb < jan, "newest month first");
        let head = store.head(&bucket, &index.key).await.unwrap();
        assert_eq!(head.cache_control.as_deref(), Some("max-age=60"));
        assert_eq!(
            store.get_acl(&bucket, &index.key).await.unwrap(),
            Acl::PublicRead
        );
    }

    /// A local store with what tests need of a real one: a bucket that refuses ACLs (like
    /// BucketOwnerEnforced), and a whole-bucket listing answered late (a slow publisher).
    #[derive(Debug)]
    struct TestStore {
        inner: LocalStore,
        refuse_acls: bool,
        /// Answers a public-read put AccessDenied, as Block Public Access does.
        deny_public_acls: bool,
        hold: Option<Arc<HeldListing>>,
    }

    /// Holds back the answer of the next whole-bucket listing until released.
    #[derive(Debug, Default)]
    struct HeldListing {
        armed: std::sync::atomic::AtomicBool,
        listed: tokio::sync::Notify,
        release: tokio::sync::Notify,
    }

    impl TestStore {
        fn new(inner: LocalStore) -> Self {
            Self {
                inner,
                refuse_acls: false,
                deny_public_acls: false,
                hold: None,
            }
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for TestStore {
        fn backend(&self) -> &'static str {
            "test"
        }

        async fn list_page(
            &self,
            b: &BucketName,
            prefix: &str,
            continuation: Option<String>,
            max_keys: u32,
        ) -> Result<gid_storage::ListPage, StorageError> {
            let page = self
                .inner
                .list_page(b, prefix, continuation, max_keys)
                .await;
            if let Some(hold) = self.hold.as_ref().filter(|_| prefix.is_empty()) {
                if hold.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
                    hold.listed.notify_one();
                    hold.release.notified().await;
                }
            }
            page
        }

        async fn get(
            &self,
            b: &BucketName,
            k: &ObjectKey,
        ) -> Result<gid_storage::StoredObject, StorageError> {
            self.inner.get(b, k).await
        }

        async fn head(&self, b: &BucketName, k: &ObjectKey) -> Result<ObjectMeta, StorageError> {
            self.inner.head(b, k).await
        }

        async fn put(
            &self,
            b: &BucketName,
            k: &ObjectKey,
            body: Bytes,
            options: &PutOptions,
        ) -> Result<WrittenObject, StorageError> {
            if options.acl.is_some() && self.refuse_acls {
                return Err(StorageError::AclNotSupported { bucket: b.clone() });
            }
            if options.acl == Some(Acl::PublicRead) && self.deny_public_acls {
                return Err(StorageError::Service {
                    operation: "put",
                    bucket: b.to_string(),
                    key: k.to_string(),
                    kind: FailureKind::AccessDenied,
                    detail: None,
                });
            }
            self.inner.put(b, k, body, options).await
        }

        async fn delete(&self, b: &BucketName, k: &ObjectKey) -> Result<(), StorageError> {
            self.inner.delete(b, k).await
        }
    }

    #[async_trait::async_trait]
    impl UrlSigner for TestStore {
        fn public_url(&self, b: &BucketName, k: &ObjectKey) -> String {
            self.inner.public_url(b, k)
        }

        async fn presign_get(
            &self,
            b: &BucketName,
            k: &ObjectKey,
            expires: Duration,
        ) -> Result<String, StorageError> {
            self.inner.presign_get(b, k, expires).await
        }
    }

    /// Publishes January with `access` on `store`; the error, if any.
    async fn publish_january(store: &TestStore, access_mode: SiteAccess) -> Option<PublishError> {
        let bucket = BucketName::new("gid-reports").unwrap();
        store.inner.create_bucket(&bucket).await.unwrap();
        let layout = Layout::new("{year}/{mon}/").unwrap();
        let site = ReportSite::new(store, bucket, layout.clone(), access(access_mode));
        site.publish(&english_month(&layout, "2019-01")).await.err()
    }

    #[tokio::test]
    async fn a_bucket_without_acls_refuses_acl_access_and_the_error_says_what_fits() {
        let dir = tempfile::tempdir().unwrap();
        let store = TestStore {
            refuse_acls: true,
            ..TestStore::new(LocalStore::new(dir.path()))
        };
        let err = publish_january(&store, SiteAccess::Acl).await.unwrap();
        assert!(matches!(err, PublishError::AclsDisabled { .. }), "{err}");
        let said = err.to_string();
        assert!(
            said.contains("BucketOwnerEnforced")
                && said.contains("publish.access = \"bucket-policy\"")
                && said.contains("gid-admin site init"),
            "{said}"
        );
        let left = list_all(&store, &BucketName::new("gid-reports").unwrap(), "")
            .await
            .unwrap();
        assert!(left.is_empty(), "nothing half-published: {left:?}");
        // The same bucket publishes with the modern access.
        assert!(publish_january(&store, SiteAccess::BucketPolicy)
            .await
            .is_none());
    }

    #[tokio::test]
    async fn block_public_access_refusing_public_acls_says_how_to_allow_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = TestStore {
            deny_public_acls: true,
            ..TestStore::new(LocalStore::new(dir.path()))
        };
        let err = publish_january(&store, SiteAccess::Acl).await.unwrap();
        assert!(
            matches!(err, PublishError::PublicAclBlocked { .. }),
            "{err}"
        );
        let said = err.to_string();
        assert!(
            said.contains("Block Public Access") && said.contains("site init --access acl"),
            "{said}"
        );
    }

    #[tokio::test]
    async fn a_bucket_policy_site_puts_no_acls() {
        let dir = tempfile::tempdir().unwrap();
        let store = TestStore {
            refuse_acls: true,
            ..TestStore::new(LocalStore::new(dir.path()))
        };
        assert!(publish_january(&store, SiteAccess::BucketPolicy)
            .await
            .is_none());
        let bucket = BucketName::new("gid-reports").unwrap();
        let index = store
            .get(&bucket, &ObjectKey::new(INDEX_KEY).unwrap())
            .await
            .unwrap();
        let page = String::from_utf8(index.body.to_vec()).unwrap();
        assert!(
            page.contains("href=\"./2019/jan/final_report.csv\""),
            "{page}"
        );
    }

    #[tokio::test]
    async fn a_private_site_links_to_presigned_urls() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let bucket = BucketName::new("gid-reports").unwrap();
        store.create_bucket(&bucket).await.unwrap();
        let layout = Layout::new("{year}/{mon}/").unwrap();
        let site = ReportSite::new(
            &store,
            bucket.clone(),
            layout.clone(),
            access(SiteAccess::Presign),
        );
        let published = site
            .publish(&english_month(&layout, "2019-01"))
            .await
            .unwrap();
        let expires = published.links_expire_at.expect("presigned links expire");
        assert!(
            expires > Utc::now() + chrono::Duration::minutes(59),
            "{expires}"
        );
        let key = ObjectKey::new(INDEX_KEY).unwrap();
        let page =
            String::from_utf8(store.get(&bucket, &key).await.unwrap().body.to_vec()).unwrap();
        assert!(page.contains("href=\"file://"), "{page}");
        assert_eq!(store.get_acl(&bucket, &key).await.unwrap(), Acl::Private);
    }
}
