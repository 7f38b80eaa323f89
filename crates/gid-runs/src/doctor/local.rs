//! The local profile's checks: the data root, the bucket folders, the work bucket's
//! probes, the outbox and threshold topics; and the offline engines' checks, which
//! `enrich.engines = "local"` asks for on either profile.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gid_core::Config;
use gid_notify::{LocalOutbox, Threshold};
use gid_storage::{BucketAdmin, LocalStore, ObjectStore, StorageError, DATA_ROOT_MARKER};

use super::{bucket_roles, storage_words, topic_checks, work_probes, BucketRole, Check};

/// Where the image labeller's weights are looked for: `$GID_IMAGE_MODEL`, else what
/// `make models` writes. The same rule as `gid_enrich`'s `ImageClassifier::default_model_path`
/// (a test holds them together), repeated here so gid-admin does not link the engines.
pub(super) fn image_model_path() -> PathBuf {
    if let Some(path) = std::env::var_os("GID_IMAGE_MODEL").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache/gid-models/efficientnet-lite0.safetensors")
}

/// How long an engine may take to say its version.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn examine(config: &Config, thresholds: &[Threshold]) -> Vec<Check> {
    let mut checks = Vec::new();
    let root = &config.local.data_root;
    let shown = std::path::absolute(root).unwrap_or_else(|_| root.clone());
    let marked_before = root.join(DATA_ROOT_MARKER).is_file();
    match LocalStore::open(root) {
        Ok(store) => {
            let detail = if marked_before {
                format!(
                    "{}: gid's data root (marked by {DATA_ROOT_MARKER})",
                    shown.display()
                )
            } else {
                format!(
                    "{}: created and marked as gid's data root now, as every run would",
                    shown.display()
                )
            };
            checks.push(Check::ok("local.data-root", "data root", detail));
            checks.extend(storage_checks(config, &store, &shown).await);
        }
        Err(e) => {
            checks.push(Check::fail(
                "local.data-root",
                "data root",
                e.to_string(),
                "set local.data_root (GID__LOCAL__DATA_ROOT) to gid's data root, or to a new or empty folder",
            ));
            checks.push(Check::skipped(
                "buckets",
                "buckets",
                "the data root is not usable",
            ));
        }
    }
    checks.push(outbox_check(&config.notify.outbox_dir));
    let prefix = crate::backend::topic_prefix(config).unwrap_or_default();
    let outbox = LocalOutbox::new(&config.notify.outbox_dir);
    checks.extend(topic_checks(&outbox, thresholds, &prefix).await);
    checks
}

/// The offline engines (`enrich.engines = "local"`), whichever profile stores the data.
pub(super) async fn engine_checks() -> Vec<Check> {
    vec![
        apertium_check().await,
        tesseract_check().await,
        image_model_check(&image_model_path()),
    ]
}

/// Bucket folders, then the work bucket's probes.
async fn storage_checks(config: &Config, store: &LocalStore, root: &Path) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut work_usable = false;
    for role in bucket_roles(config) {
        let check = bucket_folder_check(store, &role, root).await;
        work_usable |= role.key == "work" && check.status == super::Status::Ok;
        checks.push(check);
    }
    checks.extend(work_probes(store, &config.buckets.work, work_usable).await);
    checks
}

/// A bucket folder: present, or created now when every run would create it (work,
/// reports), or missing.
async fn bucket_folder_check(store: &LocalStore, role: &BucketRole, root: &Path) -> Check {
    let bucket = &role.bucket;
    let id = format!("bucket.{}", role.key);
    let name = format!("bucket {bucket}");
    let folder = root.join(bucket.as_str());
    let used = role.used_for;
    match store.list_page(bucket, "", None, 1).await {
        Ok(_) => Check::ok(
            id,
            name,
            format!("folder {} present; {used}", folder.display()),
        ),
        Err(StorageError::NoSuchBucket { .. }) if matches!(role.key, "work" | "reports") => {
            match store.create_bucket(bucket).await {
                Ok(()) => Check::ok(
                    id,
                    name,
                    format!(
                        "folder {} created now, as every run creates it; {used}",
                        folder.display()
                    ),
                ),
                Err(e) => Check::fail(
                    id,
                    name,
                    format!("folder {} cannot be created: {e}; {used}", folder.display()),
                    "make the data root writable, or set local.data_root to a writable folder",
                ),
            }
        }
        Err(StorageError::NoSuchBucket { .. }) => Check::problem(
            role.required,
            id,
            name,
            format!("folder {} does not exist; {used}", folder.display()),
            format!("create it: gid-admin bucket create {bucket}"),
        ),
        Err(e) => {
            let (what, todo) = storage_words(&e);
            Check::problem(role.required, id, name, what, todo)
        }
    }
}

/// The outbox folder: writable (created when missing, as the first alert would).
fn outbox_check(outbox: &Path) -> Check {
    let (id, name) = ("local.outbox", "outbox");
    let shown = std::path::absolute(outbox).unwrap_or_else(|_| outbox.to_owned());
    let existed = outbox.is_dir();
    let probe = outbox.join(format!(
        ".gid-doctor-{}.probe",
        gid_core::RunOwner::current().run_id
    ));
    let written = std::fs::create_dir_all(outbox)
        .and_then(|()| std::fs::write(&probe, b"gid-admin doctor probe\n"))
        .and_then(|()| std::fs::remove_file(&probe));
    match written {
        Ok(()) => Check::ok(
            id,
            name,
            format!(
                "{} is writable{}: the notify stage writes topics, subscriptions and messages here",
                shown.display(),
                if existed { "" } else { " (created now)" }
            ),
        ),
        Err(e) => Check::fail(
            id,
            name,
            format!(
                "cannot write in {}: {e}; the notify stage writes every alert here",
                shown.display()
            ),
            "make the folder writable, or set notify.outbox_dir (GID__NOTIFY__OUTBOX_DIR)",
        ),
    }
}

/// Runs an engine's program with `args`; `None` when it is not installed.
async fn engine_output(program: &str, args: &[&str]) -> Option<Result<String, String>> {
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(ENGINE_TIMEOUT, child).await {
        Err(_) => Some(Err(format!(
            "gave no answer within {} s",
            ENGINE_TIMEOUT.as_secs()
        ))),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => None,
        Ok(Err(e)) => Some(Err(e.to_string())),
        // tesseract prints its version on stderr in some builds, stdout in others.
        Ok(Ok(out)) => Some(Ok(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))),
    }
}

async fn apertium_check() -> Check {
    let (id, name) = ("engine.apertium", "engine apertium");
    let needs =
        "scooter-pickups translates Spanish descriptions with it (monthly-report does not need it)";
    let install = "install it: make engines (Debian: apt-get install apertium apertium-eng-spa)";
    match engine_output("apertium", &["-l"]).await {
        None => Check::warn(id, name, format!("not installed: {needs}"), install),
        Some(Err(e)) => Check::warn(
            id,
            name,
            format!("`apertium -l` failed ({e}): {needs}"),
            install,
        ),
        Some(Ok(modes)) if modes.lines().any(|l| l.trim() == "spa-eng") => {
            Check::ok(id, name, format!("lists spa-eng: {needs}"))
        }
        Some(Ok(_)) => Check::warn(
            id,
            name,
            format!("installed without the spa-eng pair: {needs}"),
            "install the pair: apt-get install apertium-eng-spa",
        ),
    }
}

async fn tesseract_check() -> Check {
    let (id, name) = ("engine.tesseract", "engine tesseract");
    let needs = "the text-in-photos engine uses it; no pipeline runs that engine yet";
    let install =
        "install it: make engines (Debian: apt-get install tesseract-ocr tesseract-ocr-eng)";
    match engine_output("tesseract", &["--version"]).await {
        None => Check::warn(id, name, format!("not installed: {needs}"), install),
        Some(Err(e)) => Check::warn(
            id,
            name,
            format!("`tesseract --version` failed ({e}): {needs}"),
            install,
        ),
        Some(Ok(text)) => {
            let version = text.lines().next().unwrap_or("tesseract").trim().to_owned();
            Check::ok(id, name, format!("{version}: {needs}"))
        }
    }
}

fn image_model_check(path: &Path) -> Check {
    let (id, name) = ("engine.image-model", "engine image model");
    let needs = "scooter-pickups labels photos with it and fails without it (monthly-report does not need it)";
    let install = "run `make models`, or point GID_IMAGE_MODEL at efficientnet-lite0.safetensors";
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() && meta.len() > 0 => Check::ok(
            id,
            name,
            format!(
                "{} ({:.1} MB): {needs}",
                path.display(),
                meta.len() as f64 / 1e6
            ),
        ),
        Ok(_) => Check::warn(
            id,
            name,
            format!(
                "{} is not a model file (empty, or a folder): {needs}",
                path.display()
            ),
            install,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Check::warn(
            id,
            name,
            format!("{} does not exist: {needs}", path.display()),
            install,
        ),
        Err(e) => Check::warn(
            id,
            name,
            format!("{} cannot be read ({e}): {needs}", path.display()),
            install,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn a_missing_image_model_warns_naming_the_file_and_the_pipeline_that_needs_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nowhere.safetensors");
        let check = image_model_check(&missing);
        assert_eq!(check.status, Status::Warn);
        assert!(check.detail.contains(&missing.display().to_string()));
        assert!(check.detail.contains("scooter-pickups"));
        std::fs::write(&missing, b"weights").unwrap();
        assert_eq!(image_model_check(&missing).status, Status::Ok);
    }

    #[cfg(feature = "enrich")]
    #[test]
    fn the_model_path_rule_is_the_image_labellers() {
        assert_eq!(
            image_model_path(),
            gid_enrich::local::labels::ImageClassifier::default_model_path()
        );
    }

    #[tokio::test]
    async fn a_program_that_is_not_installed_reads_as_missing() {
        assert!(engine_output("gid-no-such-engine", &[]).await.is_none());
    }
}
