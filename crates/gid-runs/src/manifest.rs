//! Run manifests: what a stage of a month read, wrote and counted, so an unchanged rerun
//! can be skipped, an interrupted backfill resumed and `gid-admin runs` can tell each
//! month's state.
//!
//! A manifest lives next to the month's stage outputs
//! (`gid-work/2019/jan/manifests/ingest.json`). A stage is skipped when its last manifest
//! says it succeeded with the same gid version, the same stage configuration and the
//! same inputs (key + ETag + size), and its outputs still exist unchanged.

use chrono::{DateTime, Utc};
use gid_core::{BucketName, ObjectKey, RunOwner};
use gid_storage::{ObjectMeta, ObjectStore, StorageError, WrittenObject};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

/// The gid version recorded in every manifest; a new version reruns everything.
pub const GID_VERSION: &str = env!("CARGO_PKG_VERSION");

/// One object a stage read or wrote, as it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    /// The bucket it is in.
    pub bucket: String,
    /// Its key.
    pub key: String,
    /// Its ETag when the stage read or wrote it.
    pub etag: String,
    /// Its size in bytes.
    pub size: u64,
}

impl ObjectRef {
    /// The object `meta` describes, in `bucket`.
    pub fn new(bucket: &BucketName, meta: &ObjectMeta) -> Self {
        Self {
            bucket: bucket.to_string(),
            key: meta.key.to_string(),
            etag: meta.etag.clone(),
            size: meta.size,
        }
    }

    /// An output as its put returned it.
    pub fn written(bucket: &BucketName, written: &WrittenObject) -> Self {
        Self {
            bucket: bucket.to_string(),
            key: written.key.to_string(),
            etag: written.etag.clone(),
            size: written.size,
        }
    }
}

/// Where a stage run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Started and not finished: still running, or killed (see [`Manifest::owner`]).
    Running,
    /// Finished; its outputs are recorded.
    Succeeded,
    /// Ended with an error (recorded in `error`).
    Failed,
    /// Stopped by a signal (SIGTERM, SIGINT) before it finished; a rerun resumes.
    Interrupted,
    /// Finished, but another run was still sending some of its alerts: the next run
    /// checks them again rather than trusting this one.
    Deferred,
}

impl RunState {
    /// The state as manifests and `gid-admin runs` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Interrupted => "interrupted",
            RunState::Deferred => "deferred",
        }
    }
}

/// The record of one stage run of one month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The stage's name (`ingest`, `enrich`, ...).
    pub stage: String,
    /// The month, as `2019-01`.
    pub month: String,
    /// How the run stands.
    pub state: RunState,
    /// The gid version that ran it: another version reruns the stage.
    pub gid_version: String,
    /// Hash of the configuration that shapes this stage's outputs.
    pub config_hash: String,
    /// When the stage started.
    pub started_at: DateTime<Utc>,
    /// When it ended; `None` while it runs.
    pub finished_at: Option<DateTime<Utc>>,
    /// What it read, with the ETags it saw.
    pub inputs: Vec<ObjectRef>,
    /// What it wrote, as its puts returned them.
    pub outputs: Vec<ObjectRef>,
    /// Rows in its output table, where it has one.
    pub rows: Option<u64>,
    /// Rows ingest quarantined.
    pub quarantined: Option<u64>,
    /// The error that ended it, in words.
    pub error: Option<String>,
    /// The process that wrote it (absent in manifests of older gid versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<RunOwner>,
}

impl Manifest {
    /// The state to show: a `running` manifest whose process is known to have ended was
    /// killed mid-stage (SIGKILL, OOM, a full disk that kept it from recording the end).
    pub fn observed_state(&self) -> ObservedState {
        match (
            self.state,
            self.owner.as_ref().and_then(RunOwner::is_running),
        ) {
            (RunState::Running, Some(false)) => ObservedState::Abandoned,
            (state, _) => ObservedState::Recorded(state),
        }
    }
}

/// A manifest's state as `gid-admin runs` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObservedState {
    /// What the manifest says, believed: its process is alive or it ended.
    Recorded(RunState),
    /// Recorded `running`, but its process ended without recording how the stage ended.
    Abandoned,
}

impl std::fmt::Display for ObservedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ObservedState::Recorded(state) => f.write_str(state.as_str()),
            ObservedState::Abandoned => f.write_str("abandoned (its process ended mid-stage)"),
        }
    }
}

impl Manifest {
    /// Whether this manifest proves a rerun with `inputs` and `config_hash` would
    /// change nothing (outputs are checked separately: they need the store).
    pub fn covers(&self, inputs: &[ObjectRef], config_hash: &str) -> bool {
        self.state == RunState::Succeeded
            && self.gid_version == GID_VERSION
            && self.config_hash == config_hash
            && self.inputs == inputs
    }
}

/// A stable hash of the configuration text that shapes a stage.
pub fn config_hash(parts: &[&str]) -> String {
    let mut hasher = Md5::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}

/// Reads a manifest; `None` when there is none (or it is unreadable, which means the
/// same: the stage has to run).
pub async fn load(
    store: &dyn ObjectStore,
    bucket: &BucketName,
    key: &ObjectKey,
) -> Result<Option<Manifest>, StorageError> {
    match store.get(bucket, key).await {
        Ok(object) => Ok(serde_json::from_slice(&object.body).ok()),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// True when every recorded output is still there with the recorded ETag.
pub async fn outputs_intact(store: &dyn ObjectStore, manifest: &Manifest) -> bool {
    for output in &manifest.outputs {
        let (Ok(bucket), Ok(key)) = (
            BucketName::new(output.bucket.clone()),
            ObjectKey::new(output.key.clone()),
        ) else {
            return false;
        };
        match store.head(&bucket, &key).await {
            Ok(meta) if meta.etag == output.etag => {}
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(state: RunState) -> Manifest {
        Manifest {
            stage: "ingest".into(),
            month: "2019-01".into(),
            state,
            gid_version: GID_VERSION.into(),
            config_hash: config_hash(&["a"]),
            started_at: Utc::now(),
            finished_at: Some(Utc::now()),
            inputs: vec![ObjectRef {
                bucket: "gid-requests".into(),
                key: "2019/jan/a.csv".into(),
                etag: "e1".into(),
                size: 3,
            }],
            outputs: vec![],
            rows: Some(1),
            quarantined: Some(0),
            error: None,
            owner: None,
        }
    }

    #[test]
    fn only_a_succeeded_run_with_identical_inputs_and_config_covers_a_rerun() {
        let m = manifest(RunState::Succeeded);
        let same = m.inputs.clone();
        assert!(m.covers(&same, &config_hash(&["a"])));
        assert!(!m.covers(&same, &config_hash(&["b"])), "config changed");
        let mut changed = same.clone();
        changed[0].etag = "e2".into();
        assert!(
            !m.covers(&changed, &config_hash(&["a"])),
            "an input changed"
        );
        assert!(!m.covers(&[], &config_hash(&["a"])), "an input disappeared");
        assert!(!manifest(RunState::Failed).covers(&same, &config_hash(&["a"])));
        assert!(!manifest(RunState::Running).covers(&same, &config_hash(&["a"])));
    }

    #[test]
    fn config_hash_separates_parts() {
        assert_ne!(config_hash(&["ab", "c"]), config_hash(&["a", "bc"]));
    }
}
