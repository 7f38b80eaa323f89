//! Publish as a stage: the month's summary → its report files on the site, the site's
//! trends (from every published month's summary, kept in the trends state), then the
//! site's index.

use std::collections::BTreeMap;

use bytes::Bytes;
use gid_aggregate::MonthSummary;
use gid_core::{Config, Month, ObjectKey};
use gid_publish::trends_key;
use gid_publish::{
    render_month, render_trends, Headline, PageText, PublishError, PublishedReport, RenderedFile,
    TrendsState, INDEX_KEY, MONTH_FILES, REPORT_FILES, SITE_ROOT_FILES, TRENDS_CSV, TRENDS_HTML,
    TRENDS_STATE_KEY,
};
use gid_storage::{PutCondition, PutOptions, StorageError};

use super::runner::{MonthContext, OnStop, Ran, StageRun};
use super::{MonthRun, Published, SiteTranslations, Stage, StageError, StageOutcome};
use crate::manifest::{self, Manifest, ObjectRef};

/// The publish stage.
pub(crate) struct PublishStage;

/// Trends state writes lost to another process's publish before giving up (each retry
/// reads the state again).
const TRENDS_ATTEMPTS: u32 = 10;
/// The month's pages that each other language of `publish.languages` gets too.
const TRANSLATED_FILES: [&str; 2] = ["final_report.html", "chart.html"];

impl StageRun for PublishStage {
    const STAGE: Stage = Stage::Publish;
    const ON_STOP: OnStop = OnStop::SafePoints;
    /// The summary as read: its ETag keys the month's entry in the trends state.
    type Found = ObjectRef;

    fn config_hash(&self, c: &Config) -> String {
        site_config_hash(c)
    }

    /// The month's summary.
    async fn inputs(
        &self,
        ctx: &MonthContext<'_>,
    ) -> Result<(Vec<ObjectRef>, ObjectRef), StageError> {
        let summary = ctx
            .work_input(ctx.keys.summary(), "summary", Stage::Aggregate)
            .await?;
        Ok((vec![summary.clone()], summary))
    }

    async fn plan(&self, ctx: &MonthContext<'_>) -> Result<StageOutcome, StageError> {
        let run = ctx.run;
        let reports = &run.config.buckets.reports;
        let trends_state = ctx.work_url(&TRENDS_STATE_KEY);
        Ok(StageOutcome::Planned {
            stage: Stage::Publish,
            reads: vec![ctx.work_url(&ctx.keys.summary()), trends_state.clone()],
            writes: REPORT_FILES
                .iter()
                .map(|f| format!("s3://{reports}/{}", run.layout.month_key(ctx.month, f)))
                .chain(translated_writes(ctx, &TRANSLATED_FILES))
                .chain([TRENDS_CSV, TRENDS_HTML].map(|f| format!("s3://{reports}/{f}")))
                .chain(
                    run.config
                        .publish
                        .translated_languages()
                        .into_iter()
                        .map(|lang| format!("s3://{reports}/{} (translated)", trends_key(lang))),
                )
                .chain([
                    trends_state,
                    format!("s3://{reports}/{INDEX_KEY} (regenerated last)"),
                ])
                .collect(),
        })
    }

    async fn run(&self, ctx: &mut MonthContext<'_>, read: ObjectRef) -> Result<Ran, StageError> {
        let run = ctx.run;
        // Cloned, not taken: notify, after publish, uses the summary too.
        let summary = match ctx.summary.clone() {
            Some(summary) => summary,
            None => run.load_summary(ctx.month).await?,
        };
        let services: Vec<String> = summary.services.iter().map(|g| g.name.clone()).collect();
        let mut english: Vec<String> = PageText::PHRASES.iter().map(|p| p.to_string()).collect();
        english.extend(services.iter().cloned());
        let cache = gid_core::WorkKeys::new(&run.layout, ctx.month).enrich_cache(SITE_TRANSLATIONS);
        // Kept for the trends page, which shares these texts: they are not asked twice.
        let (answers, mut translations) = run
            .translate_site_texts(ctx.month, &cache, &english)
            .await?;
        let texts: Vec<PageText> = std::iter::once(PageText::english())
            .chain(answers.iter().map(|(lang, answers)| {
                page_text(lang, PageText::PHRASES, &services, answers.clone())
            }))
            .collect();
        let files = render_month(&run.layout, &summary, &run.service_info(), &texts);
        let headline = Headline::of(&summary);
        let reports_bucket = run.config.buckets.reports.clone();
        let (published, trends_translations) = match run
            .publish_with_trends(&files, &summary, &read.etag, headline, &answers)
            .await
        {
            Err(StageError::Publish(PublishError::Stopped)) => {
                return Err(run
                    .interrupted()
                    .unwrap_or(StageError::Publish(PublishError::Stopped)))
            }
            other => other?,
        };
        let outcome = StageOutcome::Published(Published {
            objects: published
                .objects
                .iter()
                .map(|w| ObjectRef::written(&reports_bucket, w))
                .collect(),
            index_entries: published.index_entries,
            links_expire_at: published.links_expire_at,
            site_translations: (run.config.publish.languages.len() > 1).then(|| {
                translations.add(trends_translations);
                translations
            }),
        });
        // The manifest records the month's own files only: the trends change with every
        // other month's publish, and would make this month look changed.
        let month_keys: Vec<&ObjectKey> = files.iter().map(|f| &f.key).collect();
        let written = published
            .objects
            .into_iter()
            .filter(|w| month_keys.contains(&&w.key))
            .collect();
        Ok(Ran {
            outcome,
            bucket: reports_bucket,
            written,
        })
    }

    /// The month's files are as the last publish left them, but the index may not list
    /// them: see [`MonthRun::repair_index`].
    async fn unchanged(&self, ctx: &MonthContext<'_>, last: &Manifest) -> Result<(), StageError> {
        ctx.run.repair_index(ctx.month, last).await
    }
}

/// The configuration a site publish hashes: the site's bucket and layout and every
/// publish setting.
pub(super) fn site_config_hash(c: &Config) -> String {
    manifest::config_hash(&[
        c.buckets.reports.as_str(),
        &c.layout.month_prefix,
        // Not user-facing: every publish setting, in a stable form, so any change
        // republishes (existing manifests hold this exact form).
        &format!("{:?}", c.publish),
        // The files a site holds: a gid that adds one republishes every month.
        &MONTH_FILES.join(","),
        &SITE_ROOT_FILES.join(","),
    ])
}

/// A dry run of a site publish: it reads the work object `reads`, writes the month's
/// `files` and, for each other language of `publish.languages`, its `translated` pages
/// (`es/2019/jan/…`), then the index.
#[cfg(feature = "enrich")]
pub(super) fn site_plan(
    ctx: &MonthContext<'_>,
    stage: Stage,
    reads: gid_core::ObjectKey,
    files: &[&str],
    translated: &[&str],
) -> StageOutcome {
    let run = ctx.run;
    let reports = &run.config.buckets.reports;
    StageOutcome::Planned {
        stage,
        reads: vec![ctx.work_url(&reads)],
        writes: files
            .iter()
            .map(|f| format!("s3://{reports}/{}", run.layout.month_key(ctx.month, f)))
            .chain(translated_writes(ctx, translated))
            .chain([format!("s3://{reports}/{INDEX_KEY} (regenerated last)")])
            .collect(),
    }
}

/// What a dry run says a publish writes of the month's `files` in each language of
/// `publish.languages` but English.
fn translated_writes<'a>(
    ctx: &'a MonthContext<'_>,
    files: &'a [&str],
) -> impl Iterator<Item = String> + 'a {
    let run = ctx.run;
    let reports = &run.config.buckets.reports;
    run.config
        .publish
        .translated_languages()
        .into_iter()
        .flat_map(move |lang| {
            files.iter().map(move |f| {
                let key = gid_publish::page_key(&run.layout, ctx.month, lang, f);
                format!("s3://{reports}/{key} (translated)")
            })
        })
}

impl MonthRun {
    /// Publishes a stage's `files` and the index: what was published, and how to turn
    /// the stage's outcome into what the runner records. A stop at the site's safe point
    /// is the stage's interruption.
    #[cfg(feature = "enrich")]
    pub(super) async fn publish_stage(
        &self,
        files: &[gid_publish::RenderedFile],
    ) -> Result<(Published, impl FnOnce(StageOutcome) -> Ran), StageError> {
        let published = match self.publish_files(files, None).await {
            Err(PublishError::Stopped) => {
                return Err(self
                    .interrupted()
                    .unwrap_or(StageError::Publish(PublishError::Stopped)))
            }
            other => other?,
        };
        let reports = self.config.buckets.reports.clone();
        let outcome = Published {
            objects: published
                .objects
                .iter()
                .map(|w| ObjectRef::written(&reports, w))
                .collect(),
            index_entries: published.index_entries,
            links_expire_at: published.links_expire_at,
            site_translations: None,
        };
        let ran = move |outcome| Ran {
            outcome,
            bucket: reports,
            written: published.objects,
        };
        Ok((outcome, ran))
    }

    /// Puts the month's files and the site's trends, then the index (last), and records
    /// the month in the trends state.
    ///
    /// The state is read, the month's entry replaced, the trends rendered and put, and the
    /// state written only if it is still the version read (`If-Match`, `If-None-Match`
    /// when there was none). A publisher in another process that wrote it meanwhile makes
    /// the write lose; this one then starts again from the state as it now is, so the
    /// trends last put were rendered from a state holding every month whose publish
    /// finished — the index's argument (`ReportSite::rebuild_index`).
    async fn publish_with_trends(
        &self,
        month_files: &[RenderedFile],
        summary: &MonthSummary,
        summary_etag: &str,
        headline: Headline,
        answers: &[(String, BTreeMap<String, String>)],
    ) -> Result<(PublishedReport, SiteTranslations), StageError> {
        let _turn = self.site_lock.lock().await;
        let key = ObjectKey::new(TRENDS_STATE_KEY).expect("valid key");
        let shutdown = self.shutdown.clone();
        let stop = move || shutdown.is_requested();
        let mut translations = SiteTranslations::default();
        for _ in 0..TRENDS_ATTEMPTS {
            let (mut state, condition) = self.trends_state(summary.month()).await?;
            state.record(summary_etag, summary);
            let (texts, tally) = self.trends_texts(summary.month(), &state, answers).await?;
            translations.add(tally);
            let mut files = month_files.to_vec();
            files.extend(render_trends(&self.layout, &state, &texts));
            let published = self
                .site()
                .with_headline(headline.clone())
                .publish_unless(&files, &stop)
                .await?;
            let written = self
                .store
                .put(
                    self.work(),
                    &key,
                    Bytes::from(state.to_json()),
                    &PutOptions::new("application/json").with_condition(condition),
                )
                .await;
            match written {
                Ok(_) => return Ok((published, translations)),
                Err(StorageError::PreconditionFailed { .. }) => {
                    tracing::debug!(month = %summary.month, "another publisher recorded a month in the trends meanwhile; rebuilding them");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StageError::Storage(StorageError::PreconditionFailed {
            bucket: self.work().clone(),
            key: TRENDS_STATE_KEY.to_owned(),
        }))
    }

    /// The trends state and the condition that writes it back only over that version.
    /// Without one (the first publish, or a site published before trends existed) it is
    /// seeded with the summaries of the months the site already holds, other than `month`.
    async fn trends_state(&self, month: Month) -> Result<(TrendsState, PutCondition), StageError> {
        let key = ObjectKey::new(TRENDS_STATE_KEY).expect("valid key");
        match self.store.get(self.work(), &key).await {
            Ok(object) => {
                let state = TrendsState::from_json(&self.work_url(&key), &object.body)
                    .map_err(PublishError::from)?;
                return Ok((state, PutCondition::IfMatch(object.meta.etag)));
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        let mut state = TrendsState::default();
        let reports = &self.config.buckets.reports;
        let mut published: Vec<Month> = gid_storage::list_all(self.store.as_ref(), reports, "")
            .await?
            .iter()
            .filter(|o| o.key.file_name() == "final_report.csv")
            .filter_map(|o| self.layout.month_of_key(o.key.as_str()))
            .filter(|m| *m != month)
            .collect();
        published.sort();
        published.dedup();
        for other in published {
            let summary_key = gid_core::WorkKeys::new(&self.layout, other).summary();
            match self.store.get(self.work(), &summary_key).await {
                Ok(object) => {
                    let summary =
                        MonthSummary::from_json(&self.work_url(&summary_key), &object.body)?;
                    state.record(&object.meta.etag, &summary);
                }
                Err(e) if e.is_not_found() => {
                    tracing::warn!(month = %other, "the site has this month's report but the work bucket no longer has its summary; the trends leave it out");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok((state, PutCondition::IfNoneMatch))
    }
}

/// The cache of a month's page translations (work bucket, beside the enrich cache): the
/// same kind of answer cache, so a rerun asks no engine anything it answered before.
/// The trends page's, whose service names span every month, is the same name at the work
/// bucket's root.
pub(crate) const SITE_TRANSLATIONS: &str = "site-translations.json";

/// A page's text in `lang` from the engine's `answers` (English → translation): its
/// `phrases` and `services`; anything unanswered stays English.
fn page_text(
    lang: &str,
    phrases: &'static [&'static str],
    services: &[String],
    mut answers: BTreeMap<String, String>,
) -> PageText {
    let services = services
        .iter()
        .filter_map(|s| answers.get(s).map(|t| (s.clone(), t.clone())))
        .collect();
    let phrases = phrases
        .iter()
        .filter_map(|p| answers.remove(*p).map(|t| (*p, t)))
        .collect();
    PageText::translated(lang, phrases, services)
}

impl MonthRun {
    /// The month pages' text in every language of `publish.languages`, English first:
    /// the fixed phrases and `services` translated through the Translator port, with the
    /// translations of a page's own `extra` texts (English → translation; empty for
    /// English).
    #[cfg(feature = "enrich")]
    pub(crate) async fn page_texts(
        &self,
        month: Month,
        services: &[String],
        extra: &[String],
    ) -> Result<Vec<(PageText, BTreeMap<String, String>)>, StageError> {
        let mut texts: Vec<String> = PageText::PHRASES.iter().map(|p| p.to_string()).collect();
        texts.extend(services.iter().cloned());
        texts.extend(extra.iter().cloned());
        let cache = gid_core::WorkKeys::new(&self.layout, month).enrich_cache(SITE_TRANSLATIONS);
        let (translated, _) = self.translate_site_texts(month, &cache, &texts).await?;
        let mut pages = vec![(PageText::english(), BTreeMap::new())];
        for (lang, answers) in translated {
            let extra = extra
                .iter()
                .filter_map(|e| answers.get(e).map(|t| (e.clone(), t.clone())))
                .collect();
            pages.push((
                page_text(&lang, PageText::PHRASES, services, answers),
                extra,
            ));
        }
        Ok(pages)
    }

    /// The trends page's text in every language of `publish.languages`, English first:
    /// its fixed phrases and the service names of every month in `state`, translated
    /// through the Translator port with the site's cache (the work bucket's
    /// [`SITE_TRANSLATIONS`]), so only a service new to the site costs an engine call.
    /// `month` is the month whose publish rebuilds the trends; `known` its pages'
    /// translations (language → English → translation), which are not asked again.
    ///
    /// The month's publish holds the site's turn, so publishes in one process never
    /// race on the cache; one in another process may overwrite it, which loses answers
    /// (asked again later), never mixes them up.
    async fn trends_texts(
        &self,
        month: Month,
        state: &TrendsState,
        known: &[(String, BTreeMap<String, String>)],
    ) -> Result<(Vec<PageText>, SiteTranslations), StageError> {
        let services: Vec<String> = state.service_names().map(str::to_owned).collect();
        let asked_before =
            |text: &String| known.iter().all(|(_, answers)| answers.contains_key(text));
        let texts: Vec<String> = PageText::TRENDS_PHRASES
            .iter()
            .map(|p| p.to_string())
            .chain(services.iter().cloned())
            .filter(|text| known.is_empty() || !asked_before(text))
            .collect();
        let cache = ObjectKey::new(SITE_TRANSLATIONS).expect("valid key");
        let (translated, tally) = self.translate_site_texts(month, &cache, &texts).await?;
        let texts = std::iter::once(PageText::english())
            .chain(translated.into_iter().map(|(lang, mut answers)| {
                if let Some((_, before)) = known.iter().find(|(l, _)| *l == lang) {
                    answers.extend(before.iter().map(|(en, t)| (en.clone(), t.clone())));
                }
                page_text(&lang, PageText::TRENDS_PHRASES, &services, answers)
            }))
            .collect();
        Ok((texts, tally))
    }

    /// `texts` (English) in every other language of `publish.languages`: language →
    /// English → translation, in the configured order. Answers come from the month's
    /// cache when they can; the rest go to the engine in one batch per language.
    pub(crate) async fn translate_site_texts(
        &self,
        month: Month,
        cache_key: &ObjectKey,
        texts: &[String],
    ) -> Result<(Vec<(String, BTreeMap<String, String>)>, SiteTranslations), StageError> {
        let others = self.config.publish.translated_languages();
        if others.is_empty() {
            return Ok(Default::default());
        }
        #[cfg(feature = "enrich")]
        if let Some(translator) = &self.translator {
            return self
                .translate_into(translator.as_ref(), &others, month, cache_key, texts)
                .await;
        }
        // Without engines in the build, or a translator, only an English site can be
        // published.
        let _ = (month, cache_key, texts);
        Err(StageError::NoTranslator {
            langs: others.join(", "),
        })
    }

    /// [`MonthRun::translate_site_texts`] into `others` through `translator`.
    #[cfg(feature = "enrich")]
    async fn translate_into(
        &self,
        translator: &dyn gid_enrich::ports::Translator,
        others: &[&str],
        month: Month,
        cache_key: &ObjectKey,
        texts: &[String],
    ) -> Result<(Vec<(String, BTreeMap<String, String>)>, SiteTranslations), StageError> {
        use gid_enrich::cache::AnswerCache;
        use gid_enrich::ports::{LanguageCode, Translation};

        let failed = |lang: &str, source| StageError::Translate {
            month,
            lang: lang.to_owned(),
            source,
        };
        let key = cache_key;
        let store = self.store.as_ref();
        let mut cache = AnswerCache::load(store, self.work(), key)
            .await
            .map_err(|e| failed(others[0], e))?;
        let english = LanguageCode::english();
        let mut out = Vec::with_capacity(others.len());
        for &lang in others {
            let target = LanguageCode(lang.to_owned());
            let kind = format!("site:{english}>{lang}");
            let answers: Result<Vec<Translation>, _> = cache
                .answers(&translator.engine(), &kind, texts, |misses| {
                    let (english, target) = (&english, &target);
                    async move { translator.translate(&misses, Some(english), target).await }
                })
                .await;
            let answers = match answers {
                Ok(answers) => answers,
                Err(e) => {
                    // Answers of the languages before this one were paid for: keep them.
                    let _ = cache.save(store, self.work(), key).await;
                    return Err(failed(lang, e));
                }
            };
            out.push((
                lang.to_owned(),
                texts
                    .iter()
                    .cloned()
                    .zip(answers.into_iter().map(|t| t.text))
                    .collect(),
            ));
        }
        cache
            .save(store, self.work(), key)
            .await
            .map_err(|e| failed(&out[0].0, e))?;
        let tally = SiteTranslations {
            engine_calls: cache.calls.values().sum(),
            texts_sent: cache.inputs_sent.values().sum(),
            cache_hits: cache.hits,
        };
        tracing::info!(
            %month,
            engine_calls = tally.engine_calls,
            texts_sent = tally.texts_sent,
            cache_hits = tally.cache_hits,
            cache = %key,
            "translated the site's pages"
        );
        Ok((out, tally))
    }

    /// The month's site files are unchanged, but another publisher's index may have lost
    /// them (a gid version without the index protocol, a crash between a file and the
    /// index): rebuild the index when it misses any of them.
    pub(super) async fn repair_index(
        &self,
        month: gid_core::Month,
        last: &Manifest,
    ) -> Result<(), StageError> {
        let keys: Vec<&str> = last.outputs.iter().map(|o| o.key.as_str()).collect();
        let site = self.site();
        if site.index_lists(&keys).await? {
            return Ok(());
        }
        tracing::warn!(%month, bucket = %site.bucket(), "the site index does not list this month's reports; rebuilding it");
        let _turn = self.site_lock.lock().await;
        site.rebuild_index().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::month::tests::{assert_hash_follows, plan_of, runner, world};
    use crate::month::RunOptions;
    use gid_aggregate::GroupCount;
    use gid_core::WorkKeys;
    use gid_storage::Backend;
    use std::sync::Arc;

    /// Writes a month's summary where aggregate would, with `potholes` requests.
    async fn aggregated(run: &MonthRun, month: &str, potholes: u64) {
        let summary = MonthSummary {
            month: month.into(),
            total_requests: potholes,
            services: vec![GroupCount {
                name: "Pothole".into(),
                request_count: potholes,
            }],
            ..MonthSummary::default()
        };
        let key = WorkKeys::new(&run.layout, summary.month()).summary();
        run.store
            .put(
                run.work(),
                &key,
                Bytes::from(summary.to_json()),
                &PutOptions::new("application/json"),
            )
            .await
            .unwrap();
    }

    async fn publish(run: &MonthRun, month: &str) {
        let outcome = run
            .run_month(month.parse().unwrap(), &[Stage::Publish], &())
            .await;
        assert!(outcome.is_ok(), "{:?}", outcome.failure);
    }

    /// A world where January (4 potholes) and February (7) are aggregated and January is
    /// published.
    async fn two_months_with_january_published() -> (tempfile::TempDir, Arc<dyn Backend>, MonthRun)
    {
        let dir = tempfile::tempdir().unwrap();
        let (config, store) = world(dir.path()).await;
        let run = runner(&config, &store, RunOptions::default());
        aggregated(&run, "2019-01", 4).await;
        aggregated(&run, "2019-02", 7).await;
        publish(&run, "2019-01").await;
        (dir, store, run)
    }

    async fn trends_csv(store: &Arc<dyn Backend>, run: &MonthRun) -> String {
        let key = ObjectKey::new(TRENDS_CSV).unwrap();
        let object = store.get(&run.config.buckets.reports, &key).await.unwrap();
        String::from_utf8(object.body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn republishing_one_month_updates_the_trends_without_reading_the_other_summaries() {
        let (_dir, store, run) = two_months_with_january_published().await;
        publish(&run, "2019-02").await;
        // February's summary is gone from the work bucket: the trends keep it from their
        // state, which is what makes a republish read one object, not every month.
        let february = WorkKeys::new(&run.layout, "2019-02".parse().unwrap()).summary();
        store.delete(run.work(), &february).await.unwrap();
        aggregated(&run, "2019-01", 5).await;
        publish(&run, "2019-01").await;
        let csv = trends_csv(&store, &run).await;
        assert!(csv.contains("2019-01,Pothole,all,,requests,5\n"), "{csv}");
        assert!(csv.contains("2019-02,Pothole,all,,requests,7\n"), "{csv}");
        assert!(
            csv.contains("2019-02,Pothole,all,,requests_change,2\n"),
            "{csv}"
        );
    }

    #[tokio::test]
    async fn a_month_republished_as_unchanged_is_skipped_although_the_trends_moved_on() {
        let (_dir, _store, run) = two_months_with_january_published().await;
        publish(&run, "2019-02").await;
        let again = run
            .run_month("2019-01".parse().unwrap(), &[Stage::Publish], &())
            .await;
        assert!(
            matches!(again.stages[..], [StageOutcome::Skipped { .. }]),
            "{:?}",
            again.stages
        );
    }

    #[tokio::test]
    async fn trends_without_a_state_start_from_the_months_already_on_the_site() {
        let (_dir, store, run) = two_months_with_january_published().await;
        // A site published before trends existed has no state.
        let state = ObjectKey::new(TRENDS_STATE_KEY).unwrap();
        store.delete(run.work(), &state).await.unwrap();
        publish(&run, "2019-02").await;
        let csv = trends_csv(&store, &run).await;
        assert!(csv.contains("2019-01,Pothole,all,,requests,4\n"), "{csv}");
        assert!(csv.contains("2019-02,Pothole,all,,requests,7\n"), "{csv}");
    }

    #[tokio::test]
    async fn a_dry_run_of_publish_names_the_month_files_and_the_index_last() {
        let (reads, writes) = plan_of(&PublishStage).await;
        assert_eq!(
            reads,
            [
                "s3://gid-work/2019/jan/summary.json",
                "s3://gid-work/trends.json"
            ]
        );
        assert_eq!(
            writes,
            [
                "s3://gid-reports/2019/jan/final_report.csv",
                "s3://gid-reports/2019/jan/final_report.html",
                "s3://gid-reports/2019/jan/chart.html",
                "s3://gid-reports/2019/jan/map.html",
                "s3://gid-reports/2019/jan/summary.json",
                "s3://gid-reports/trends.csv",
                "s3://gid-reports/trends.html",
                "s3://gid-work/trends.json",
                "s3://gid-reports/index.html (regenerated last)",
            ]
        );
    }

    #[cfg(feature = "enrich")]
    #[tokio::test]
    async fn a_dry_run_names_the_pages_each_language_of_the_site_gets() {
        let dir = tempfile::tempdir().unwrap();
        let (mut config, store) = world(dir.path()).await;
        config.publish.languages = vec!["en".into(), "es".into()];
        let run = runner(&config, &store, RunOptions::default());
        let ctx = MonthContext::new(&run, "2019-01".parse().unwrap(), &());
        let writes = |outcome| match outcome {
            StageOutcome::Planned { writes, .. } => writes,
            other => panic!("{other:?}"),
        };
        let pickups = crate::month::enrich::PickupsPublishStage;
        assert_eq!(
            writes(pickups.plan(&ctx).await.unwrap()),
            [
                "s3://gid-reports/2019/jan/scooter_pickups.csv",
                "s3://gid-reports/2019/jan/scooter_pickups.html",
                "s3://gid-reports/es/2019/jan/scooter_pickups.html (translated)",
                "s3://gid-reports/index.html (regenerated last)",
            ]
        );
        let publish = writes(PublishStage.plan(&ctx).await.unwrap());
        for translated in [
            "s3://gid-reports/es/2019/jan/final_report.html (translated)",
            "s3://gid-reports/es/2019/jan/chart.html (translated)",
            "s3://gid-reports/es/trends.html (translated)",
        ] {
            assert!(publish.contains(&translated.to_owned()), "{publish:?}");
        }
    }

    #[test]
    fn the_publish_hash_changes_with_the_publish_settings_and_not_with_the_notify_ones() {
        assert_hash_follows(
            &PublishStage,
            |c| c.publish.report_cache_control = "no-store".into(),
            |c| c.notify.ledger_name = "ledger.json".into(),
        );
    }
}
