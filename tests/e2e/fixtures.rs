//! The seeded world most tests start from: what `gid-admin sample` writes into a local
//! data root (the contacts list, each month's exports and, when `GID_SAMPLE_IMAGES` names
//! a folder as `make test` does, the request photos), built through the `gid-sample`
//! library and the local store instead of spawning gid-admin, so a test pays no process
//! and states its data in code. `gid_admin`'s and `operations`' tests of the `sample`
//! command itself still run the binary.

use std::path::Path;

use bytes::Bytes;
use gid_core::{Config, Month, MonthRange, ObjectKey, Profile};
use gid_sample::{SampleMonth, SampleSpec};
use gid_storage::{content_type_for, BucketAdmin, LocalStore, ObjectStore, PutOptions};

/// `gid-admin sample --from <from> --to <to>` with `spec`, into `root`; each month's
/// sample (with its ground truth), in calendar order.
pub(crate) async fn seed(root: &Path, from: &str, to: &str, spec: &SampleSpec) -> Vec<SampleMonth> {
    let config = Config::load(Some(&gid_e2e::config_dir()), Some(Profile::Local), None)
        .expect("the repository's config loads");
    let layout = config.layout().expect("the default layout is valid");
    let buckets = &config.buckets;
    let store = LocalStore::open(root).expect("a fresh data root opens");
    let csv = PutOptions::new("text/csv; charset=utf-8");
    let put = |bucket, key: ObjectKey, body: Vec<u8>, options: PutOptions| {
        let store = &store;
        async move {
            store.create_bucket(bucket).await.unwrap();
            store
                .put(bucket, &key, Bytes::from(body), &options)
                .await
                .unwrap();
        }
    };
    let contacts = ObjectKey::new(config.notify.contacts_key.clone()).unwrap();
    let contacts_csv = gid_sample::CONTACTS_CSV.as_bytes().to_vec();
    put(&buckets.staging, contacts, contacts_csv, csv.clone()).await;
    let photos = sample_photos();
    let range = MonthRange::new(month(from), month(to)).expect("from <= to");
    let mut months = Vec::new();
    for month in range.months() {
        let sample = gid_sample::generate_month(month, spec);
        for file in &sample.files {
            let key = layout.month_key(month, &file.name);
            put(&buckets.requests, key, file.bytes.clone(), csv.clone()).await;
        }
        for key in &sample.truth.images {
            if let Some(i) = gid_sample::photo_for(key, photos.len()) {
                let key = ObjectKey::new(key.clone()).unwrap();
                let options = PutOptions::new(content_type_for(&key));
                put(&buckets.images, key, photos[i].clone(), options).await;
            }
        }
        months.push(sample);
    }
    months
}

/// [`seed`] from sync code, inside a test's runtime too.
pub(crate) fn seed_blocking(
    root: &Path,
    from: &str,
    to: &str,
    spec: &SampleSpec,
) -> Vec<SampleMonth> {
    // On a thread of its own: a runtime cannot block inside a test's runtime.
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap()
                    .block_on(seed(root, from, to, spec))
            })
            .join()
            .expect("seeding the sample panicked")
    })
}

/// The default sample (`gid-admin sample --from <from> --to <to>`), for a sync test.
pub(crate) fn seed_default(root: &Path, from: &str, to: &str) -> Vec<SampleMonth> {
    seed_blocking(root, from, to, &SampleSpec::default())
}

fn month(text: &str) -> Month {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// The photos of `GID_SAMPLE_IMAGES`, in name order, as gid-admin sample reads them; none
/// when the variable is unset.
fn sample_photos() -> Vec<Vec<u8>> {
    let Some(dir) = std::env::var_os("GID_SAMPLE_IMAGES") else {
        return Vec::new();
    };
    let mut named: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("GID_SAMPLE_IMAGES={}: {e}", Path::new(&dir).display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "png" || e == "jpg"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    named.sort();
    named.into_iter().map(|(_, bytes)| bytes).collect()
}
