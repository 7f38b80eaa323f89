//! Publish as a stage: the month's summary → its report files on the site, then the
//! site's index.

use std::collections::BTreeMap;

use gid_core::{Config, Month};
use gid_publish::{render_month, PageText, PublishError, INDEX_KEY, SOURCE_LANG};

use super::runner::{MonthContext, OnStop, Ran, StageRun};
use super::{MonthRun, Published, Stage, StageError, StageOutcome};
use crate::manifest::{self, Manifest, ObjectRef};

/// The publish stage.
pub(crate) struct PublishStage;

/// The month's site files, as a dry run names them.
const SITE_FILES: [&str; 3] = ["final_report.csv", "final_report.html", "chart.html"];
/// The month's pages that each other language of `publish.languages` gets too.
const TRANSLATED_FILES: [&str; 2] = ["final_report.html", "chart.html"];

impl StageRun for PublishStage {
    const STAGE: Stage = Stage::Publish;
    const ON_STOP: OnStop = OnStop::SafePoints;
    type Found = ();

    fn config_hash(&self, c: &Config) -> String {
        manifest::config_hash(&[
            c.buckets.reports.as_str(),
            &c.layout.month_prefix,
            // Not user-facing: every publish setting, in a stable form, so any change
            // republishes (existing manifests hold this exact form).
            &format!("{:?}", c.publish),
        ])
    }

    /// The month's summary.
    async fn inputs(&self, ctx: &MonthContext<'_>) -> Result<(Vec<ObjectRef>, ()), StageError> {
        let summary = ctx
            .work_input(ctx.keys.summary(), "summary", Stage::Aggregate)
            .await?;
        Ok((vec![summary], ()))
    }

    async fn plan(&self, ctx: &MonthContext<'_>) -> Result<StageOutcome, StageError> {
        let run = ctx.run;
        let reports = &run.config.buckets.reports;
        Ok(StageOutcome::Planned {
            stage: Stage::Publish,
            reads: vec![ctx.work_url(&ctx.keys.summary())],
            writes: SITE_FILES
                .iter()
                .map(|f| format!("s3://{reports}/{}", run.layout.month_key(ctx.month, f)))
                .chain(
                    run.config
                        .publish
                        .languages
                        .iter()
                        .filter(|l| l.as_str() != SOURCE_LANG)
                        .flat_map(|lang| {
                            TRANSLATED_FILES.iter().map(move |f| {
                                let key = gid_publish::page_key(&run.layout, ctx.month, lang, f);
                                format!("s3://{reports}/{key} (translated)")
                            })
                        }),
                )
                .chain([format!("s3://{reports}/{INDEX_KEY} (regenerated last)")])
                .collect(),
        })
    }

    async fn run(&self, ctx: &mut MonthContext<'_>, (): ()) -> Result<Ran, StageError> {
        let run = ctx.run;
        let reports_bucket = run.config.buckets.reports.clone();
        // Cloned, not taken: notify, after publish, uses the summary too.
        let summary = match ctx.summary.clone() {
            Some(summary) => summary,
            None => run.load_summary(ctx.month).await?,
        };
        let services: Vec<String> = summary.services.iter().map(|g| g.name.clone()).collect();
        let texts: Vec<PageText> = run
            .page_texts(ctx.month, &services, &[])
            .await?
            .into_iter()
            .map(|(text, _)| text)
            .collect();
        let files = render_month(&run.layout, &summary, &run.service_info(), &texts);
        let headline = gid_publish::Headline::of(&summary);
        let published = match run.publish_files(&files, Some(headline)).await {
            Err(PublishError::Stopped) => {
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
        });
        Ok(Ran {
            outcome,
            bucket: reports_bucket,
            written: published.objects,
        })
    }

    /// The month's files are as the last publish left them, but the index may not list
    /// them: see [`MonthRun::repair_index`].
    async fn unchanged(&self, ctx: &MonthContext<'_>, last: &Manifest) -> Result<(), StageError> {
        ctx.run.repair_index(ctx.month, last).await
    }
}

/// The cache of a month's page translations (work bucket, beside the enrich cache): the
/// same kind of answer cache, so a rerun asks no engine anything it answered before.
#[cfg(feature = "enrich")]
pub(crate) const SITE_TRANSLATIONS: &str = "site-translations.json";

/// What translating a month's pages cost (logged per month).
#[cfg(feature = "enrich")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TranslationTally {
    /// Calls to the translation engine (one per language with anything uncached).
    engine_calls: u64,
    /// Texts sent to it.
    texts_sent: u64,
    /// Texts answered from the cache.
    cache_hits: u64,
}

impl MonthRun {
    /// The month pages' text in every language of `publish.languages`, English first:
    /// the fixed phrases and `services` translated through the Translator port, with the
    /// translations of a page's own `extra` texts (English → translation; empty for
    /// English).
    pub(crate) async fn page_texts(
        &self,
        month: Month,
        services: &[String],
        extra: &[String],
    ) -> Result<Vec<(PageText, BTreeMap<String, String>)>, StageError> {
        let mut texts: Vec<String> = PageText::PHRASES.iter().map(|p| p.to_string()).collect();
        texts.extend(services.iter().cloned());
        texts.extend(extra.iter().cloned());
        let translated = self.translate_site_texts(month, &texts).await?;
        let mut pages = vec![(PageText::english(), BTreeMap::new())];
        for (lang, mut answers) in translated {
            let phrases = PageText::PHRASES
                .iter()
                .filter_map(|p| answers.remove(*p).map(|t| (*p, t)))
                .collect();
            let services = services
                .iter()
                .filter_map(|s| answers.get(s).map(|t| (s.clone(), t.clone())))
                .collect();
            let extra = extra
                .iter()
                .filter_map(|e| answers.get(e).map(|t| (e.clone(), t.clone())))
                .collect();
            pages.push((PageText::translated(&lang, phrases, services), extra));
        }
        Ok(pages)
    }

    /// `texts` (English) in every other language of `publish.languages`: language →
    /// English → translation, in the configured order. Answers come from the month's
    /// cache when they can; the rest go to the engine in one batch per language.
    #[cfg(feature = "enrich")]
    pub(crate) async fn translate_site_texts(
        &self,
        month: Month,
        texts: &[String],
    ) -> Result<Vec<(String, BTreeMap<String, String>)>, StageError> {
        use gid_enrich::cache::AnswerCache;
        use gid_enrich::ports::{LanguageCode, Translation};

        let others: Vec<&String> = self
            .config
            .publish
            .languages
            .iter()
            .filter(|l| l.as_str() != SOURCE_LANG)
            .collect();
        if others.is_empty() {
            return Ok(Vec::new());
        }
        let Some(translator) = &self.translator else {
            return Err(StageError::NoTranslator {
                langs: others
                    .iter()
                    .map(|l| l.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let failed = |lang: &str, source| StageError::Translate {
            month,
            lang: lang.to_owned(),
            source,
        };
        let key = gid_core::WorkKeys::new(&self.layout, month).enrich_cache(SITE_TRANSLATIONS);
        let store = self.store.as_ref();
        let mut cache = AnswerCache::load(store, self.work(), &key)
            .await
            .map_err(|e| failed(others[0], e))?;
        let english = LanguageCode::english();
        let mut out = Vec::with_capacity(others.len());
        for lang in others {
            let target = LanguageCode(lang.clone());
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
                    let _ = cache.save(store, self.work(), &key).await;
                    return Err(failed(lang, e));
                }
            };
            out.push((
                lang.clone(),
                texts
                    .iter()
                    .cloned()
                    .zip(answers.into_iter().map(|t| t.text))
                    .collect(),
            ));
        }
        cache
            .save(store, self.work(), &key)
            .await
            .map_err(|e| failed(&out[0].0, e))?;
        let tally = TranslationTally {
            engine_calls: cache.calls.values().sum(),
            texts_sent: cache.inputs_sent.values().sum(),
            cache_hits: cache.hits,
        };
        tracing::info!(
            %month,
            engine_calls = tally.engine_calls,
            texts_sent = tally.texts_sent,
            cache_hits = tally.cache_hits,
            "translated the month's pages"
        );
        Ok(out)
    }

    /// Without engines in the build, only an English site can be published.
    #[cfg(not(feature = "enrich"))]
    pub(crate) async fn translate_site_texts(
        &self,
        _month: Month,
        _texts: &[String],
    ) -> Result<Vec<(String, BTreeMap<String, String>)>, StageError> {
        let others: Vec<&str> = self
            .config
            .publish
            .languages
            .iter()
            .map(String::as_str)
            .filter(|l| *l != SOURCE_LANG)
            .collect();
        if others.is_empty() {
            Ok(Vec::new())
        } else {
            Err(StageError::NoTranslator {
                langs: others.join(", "),
            })
        }
    }

    /// The month's site files are unchanged, but another publisher's index may have lost
    /// them (a gid version without the index protocol, a crash between a file and the
    /// index): rebuild the index when it misses any of them.
    async fn repair_index(
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
    use crate::month::tests::{assert_hash_follows, plan_of};

    #[tokio::test]
    async fn a_dry_run_of_publish_names_the_month_files_and_the_index_last() {
        let (reads, writes) = plan_of(&PublishStage).await;
        assert_eq!(reads, ["s3://gid-work/2019/jan/summary.json"]);
        assert_eq!(
            writes,
            [
                "s3://gid-reports/2019/jan/final_report.csv",
                "s3://gid-reports/2019/jan/final_report.html",
                "s3://gid-reports/2019/jan/chart.html",
                "s3://gid-reports/index.html (regenerated last)",
            ]
        );
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
