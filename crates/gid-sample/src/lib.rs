//! Deterministic synthetic "Get It Done" exports, with the ground truth they encode.
//!
//! [`generate_month`] returns the CSV files of one month (several parts, the GID column
//! set, a realistic service mix, some Spanish descriptions, quoted commas and newlines,
//! a BOM, schema drift between files, an empty file and a few dirty rows) together with
//! [`GroundTruth`]: the per-service counts of the good rows and the location of every
//! dirty row. Tests compare gid's outputs against that truth; `gid-admin sample` loads
//! the files into a bucket for the demo.
//!
//! ```
//! use gid_sample::{generate_month, SampleSpec};
//! let month = "2019-01".parse().unwrap();
//! let sample = generate_month(month, &SampleSpec::default());
//! assert!(sample.truth.total_rows > 0);
//! assert!(sample.files.len() >= 3);
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;

use gid_core::Month;

/// The GID export columns, in the order the city publishes them.
pub const COLUMNS: [&str; 13] = [
    "service_request_id",
    "date_requested",
    "case_age_days",
    "service_name",
    "case_record_type",
    "status",
    "lat",
    "long",
    "council_district",
    "comm_plan_name",
    "case_origin",
    "public_description",
    "image",
];

/// The service mix: (service_name, case_record_type, relative weight).
const SERVICES: [(&str, &str, u32); 12] = [
    ("Illegal Dumping", "ESD Complaint/Report", 22),
    ("Encampment", "ESD Complaint/Report", 14),
    ("Graffiti - Public", "TSW", 12),
    ("Pothole", "TSW", 10),
    ("Missed Collection", "ESD Complaint/Report", 8),
    ("Shared Mobility Device", "Parking", 8),
    ("Street Light Maintenance", "TSW", 6),
    ("Parking", "Parking", 6),
    ("Sidewalk Repair Issue", "TSW", 5),
    ("Tree Maintenance", "TSW", 4),
    ("Dead Animal", "ESD Complaint/Report", 3),
    ("Other", "Other", 2),
];

const STATUSES: [(&str, u32); 4] = [
    ("Closed", 60),
    ("In Process", 25),
    ("New", 10),
    ("Referred", 5),
];
const ORIGINS: [&str; 4] = ["Mobile", "Web", "Phone", "Email"];
const COMMUNITIES: [&str; 8] = [
    "Downtown",
    "North Park",
    "Pacific Beach",
    "Mission Valley",
    "Barrio Logan",
    "City Heights",
    "La Jolla",
    "Clairemont Mesa",
];

const ENGLISH: [&str; 10] = [
    "Large pile of furniture and trash bags left on the sidewalk",
    "Deep pothole in the right lane, cars are swerving to avoid it",
    "Graffiti on the wall behind the library",
    "Scooter left lying across the sidewalk, blocking the ramp",
    "Two scooters dumped in the bushes, this is terrible",
    "Street light has been out for a week, it is dangerous at night",
    "Thank you for the quick cleanup, great job",
    "Mattress, couch, and TV dumped in the alley",
    "Tent blocking the sidewalk near the bus stop",
    "Trash bins were not collected on Tuesday",
];

const SPANISH: [&str; 6] = [
    "El patinete eléctrico está bloqueando la acera",
    "Hay basura y muebles abandonados en la calle",
    "Un bache muy grande en la calle, es peligroso",
    "La luz de la calle no funciona desde hace una semana",
    "Patinetes tirados en la entrada del parque, es horrible",
    "Gracias por limpiar la calle tan rápido",
];

/// What residents write about shared e-scooters, in English and Spanish.
const SCOOTER_ENGLISH: [&str; 6] = [
    "Scooter left lying across the sidewalk, blocking the ramp",
    "Two scooters dumped in the bushes, this is terrible",
    "E-scooter parked in front of my driveway again, I cannot get my car out",
    "Scooter parked neatly by the bike rack, thanks",
    "Broken scooter abandoned on the boardwalk, dangerous for runners",
    "Scooter in the bike lane",
];
const SCOOTER_SPANISH: [&str; 4] = [
    "El patinete eléctrico está bloqueando la acera",
    "Patinetes tirados en la entrada del parque, es horrible",
    "La patineta está estacionada en la banqueta desde ayer",
    "Hay un patinete roto en la parada del autobús, es peligroso",
];

/// Descriptions that must survive CSV quoting and HTML rendering intact.
const TRICKY: [&str; 4] = [
    "Couch, mattress, and boxes dumped \"again\" next to the school",
    "Line one of the report\nline two, with a comma",
    "<script>alert(\"gid\")</script> left on the wall",
    "Tom's cart & <b>boxes</b> blocking the alley",
];

/// A department contacts list for the alerting demo: good rows, a bad phone, a bad
/// email, a duplicate and a name that tries to inject markup.
pub const CONTACTS_CSV: &str = "Name,Department,Email,Phone
Maria Lopez,Trash,maria.lopez@example.org,+16195550101
Dev Patel,Trash,dev.patel@example.org,+16195550102
Kim Nguyen,Streets,kim.nguyen@example.org,+16195550103
\"Robert'); DROP TABLE contacts;--\",Streets,robert@example.org,+16195550104
Sam Jones,Streets,sam.jones@example,+16195550105
Ana Ruiz,Trash,ana.ruiz@example.org,619-555
Maria Lopez,Trash,maria.lopez@example.org,+16195550101
";

/// Which of `photos` sample photographs to store under an image key, or `None` to leave
/// the key without an object (one in seven: requests whose photo never arrived).
/// Deterministic, so demo and tests agree on which requests have which photo.
pub fn photo_for(image_key: &str, photos: usize) -> Option<usize> {
    // FNV-1a: stable across runs and platforms, unlike std's hasher.
    let hash = image_key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    if photos == 0 || hash % 7 == 0 {
        None
    } else {
        Some((hash / 7 % photos as u64) as usize)
    }
}

/// `n` deterministic pseudo-random bytes: what lands in an export folder when a binary
/// file is misnamed `.csv` (ingest must skip it as not text, not fail the month).
pub fn binary_noise(n: usize) -> Vec<u8> {
    let mut bytes = vec![0; n];
    fastrand::Rng::with_seed(0x9E37_79B9_7F4A_7C15).fill(&mut bytes);
    bytes
}

/// How much data to generate.
#[derive(Debug, Clone)]
pub struct SampleSpec {
    /// CSV parts per month (at least 3: the clean, the drifted and the dirty part).
    pub files_per_month: usize,
    /// Rows generated in each part, dirty ones included.
    pub rows_per_file: usize,
    /// Add the dirty rows and the empty file.
    pub dirty: bool,
    /// The same seed gives the same bytes, so tests can pin counts.
    pub seed: u64,
}

impl Default for SampleSpec {
    fn default() -> Self {
        Self {
            files_per_month: 4,
            rows_per_file: 300,
            dirty: true,
            seed: 2019,
        }
    }
}

/// One generated export file.
#[derive(Debug, Clone)]
pub struct SampleFile {
    /// The file name within the month's folder.
    pub name: String,
    /// The file's CSV bytes, as a city export would have them.
    pub bytes: Vec<u8>,
}

/// Why a dirty row must be quarantined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirtyKind {
    /// Extra fields after the header's columns.
    TooManyFields,
    /// Fewer fields than the header has columns.
    TooFewFields,
    /// A `date_requested` that is no date.
    BadDate,
}

/// A row the generator made dirty on purpose: file name and 1-based physical line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirtyRow {
    /// The [`SampleFile::name`] it is in.
    pub file: String,
    /// Where the row starts: the line the quarantine must name.
    pub line: u64,
    /// The reason the quarantine must give.
    pub kind: DirtyKind,
}

/// What a correct pipeline must find in the generated files.
#[derive(Debug, Clone, Default)]
pub struct GroundTruth {
    /// Good rows per service_name.
    pub service_counts: BTreeMap<String, u64>,
    /// Good rows of the month: the requests a correct ingest counts.
    pub total_rows: u64,
    /// Every row made dirty on purpose, each of which must be quarantined.
    pub dirty: Vec<DirtyRow>,
    /// Keys (relative to the images bucket) referenced by the `image` column.
    pub images: Vec<String>,
}

/// A generated month.
#[derive(Debug, Clone)]
pub struct SampleMonth {
    /// The month every good row is dated in.
    pub month: Month,
    /// The month's exports, to upload under its prefix.
    pub files: Vec<SampleFile>,
    /// What ingest and aggregate must make of `files`.
    pub truth: GroundTruth,
}

fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

fn weighted<'a, T>(rng: &mut fastrand::Rng, items: &'a [(T, u32)]) -> &'a T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut pick = rng.u32(0..total);
    for (item, w) in items {
        if pick < *w {
            return item;
        }
        pick -= w;
    }
    &items[items.len() - 1].0
}

struct Row {
    fields: BTreeMap<&'static str, String>,
}

impl Row {
    fn render(&self, columns: &[&str]) -> String {
        columns
            .iter()
            .map(|c| quote(self.fields.get(c).map(String::as_str).unwrap_or("")))
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn make_row(rng: &mut fastrand::Rng, month: Month, id: u64, iso_t: bool) -> Row {
    let services: Vec<((&str, &str), u32)> =
        SERVICES.iter().map(|(s, t, w)| ((*s, *t), *w)).collect();
    let (service, record_type) = *weighted(rng, &services);
    let statuses: Vec<(&str, u32)> = STATUSES.to_vec();
    let status = *weighted(rng, &statuses);
    let day = rng.u32(1..=u32::from(month.days()));
    let sep = if iso_t { 'T' } else { ' ' };
    let date = format!(
        "{:04}-{:02}-{:02}{sep}{:02}:{:02}:{:02}",
        month.year(),
        month.number(),
        day,
        rng.u32(0..24),
        rng.u32(0..60),
        rng.u32(0..60)
    );
    let scooter = service == "Shared Mobility Device";
    let (spanish, english): (&[&str], &[&str]) = if scooter {
        (&SCOOTER_SPANISH, &SCOOTER_ENGLISH)
    } else {
        (&SPANISH, &ENGLISH)
    };
    // The same number of draws for every service, so changing one list leaves the rest of
    // the generated data as it was.
    let description = match rng.u32(0..100) {
        0..=2 => TRICKY[rng.usize(0..TRICKY.len())].to_owned(),
        3..=17 => spanish[rng.usize(0..spanish.len())].to_owned(),
        18..=25 => String::new(),
        _ => english[rng.usize(0..english.len())].to_owned(),
    };
    let id_text = format!("{:04}{:02}{id:06}", month.year(), month.number());
    let image = if service == "Shared Mobility Device" && rng.bool() {
        format!("{}/{}/{id_text}.png", month.year(), month.abbreviation())
    } else {
        String::new()
    };
    let mut fields = BTreeMap::new();
    fields.insert("service_request_id", id_text);
    fields.insert("date_requested", date);
    fields.insert("case_age_days", rng.u32(0..400).to_string());
    fields.insert("service_name", service.to_owned());
    fields.insert("case_record_type", record_type.to_owned());
    fields.insert("status", status.to_owned());
    fields.insert("lat", format!("{:.6}", 32.70 + rng.f64() * 0.25));
    fields.insert("long", format!("{:.6}", -117.25 + rng.f64() * 0.2));
    fields.insert("council_district", rng.u32(1..=9).to_string());
    fields.insert(
        "comm_plan_name",
        COMMUNITIES[rng.usize(0..COMMUNITIES.len())].to_owned(),
    );
    fields.insert(
        "case_origin",
        ORIGINS[rng.usize(0..ORIGINS.len())].to_owned(),
    );
    fields.insert("public_description", description);
    fields.insert("image", image);
    Row { fields }
}

/// Generates one month of exports. The same `(month, spec)` always gives the same bytes.
pub fn generate_month(month: Month, spec: &SampleSpec) -> SampleMonth {
    let seed = spec.seed ^ (u64::from(month.year()) * 100 + u64::from(month.number()));
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut truth = GroundTruth::default();
    let mut files = Vec::new();
    let mut next_id = 1u64;
    let parts = spec.files_per_month.max(3);

    for part in 0..parts {
        let name = format!("part-{:03}.csv", part + 1);
        // Part 2 drifts: reordered columns, no case_age_days/image, an extra column, and
        // space-separated timestamps.
        let drifted = part == 1;
        let columns: Vec<&str> = if drifted {
            let mut c: Vec<&str> = COLUMNS
                .iter()
                .copied()
                .filter(|c| *c != "case_age_days" && *c != "image")
                .collect();
            c.reverse();
            c.push("source_system");
            c
        } else {
            COLUMNS.to_vec()
        };
        let crlf = part == 0;
        let newline = if crlf { "\r\n" } else { "\n" };
        let mut text = String::new();
        if part == 0 {
            text.push('\u{feff}');
        }
        text.push_str(&columns.join(","));
        text.push_str(newline);
        let mut line = 1u64;
        let dirty_part = spec.dirty && part == parts - 1;
        for r in 0..spec.rows_per_file {
            let mut row = make_row(&mut rng, month, next_id, !drifted);
            next_id += 1;
            if drifted {
                row.fields.insert("source_system", "legacy-crm".to_owned());
            }
            let mut rendered = row.render(&columns);
            let dirty = if dirty_part && r % 97 == 13 {
                Some(match (r / 97) % 3 {
                    0 => {
                        rendered.push_str(",unexpected,extra");
                        DirtyKind::TooManyFields
                    }
                    1 => {
                        rendered = rendered.split(',').take(5).collect::<Vec<_>>().join(",");
                        DirtyKind::TooFewFields
                    }
                    _ => {
                        row.fields
                            .insert("date_requested", "31/02/2019 25:61".to_owned());
                        rendered = row.render(&columns);
                        DirtyKind::BadDate
                    }
                })
            } else {
                None
            };
            // Cutting a row short could leave a quote open; only cut rows without quotes.
            if dirty == Some(DirtyKind::TooFewFields) && rendered.contains('"') {
                rendered = row.render(&columns);
                rendered.push_str(",unexpected,extra");
                truth.dirty.push(DirtyRow {
                    file: name.clone(),
                    line: line + 1,
                    kind: DirtyKind::TooManyFields,
                });
            } else if let Some(kind) = dirty {
                truth.dirty.push(DirtyRow {
                    file: name.clone(),
                    line: line + 1,
                    kind,
                });
            } else {
                *truth
                    .service_counts
                    .entry(row.fields["service_name"].clone())
                    .or_default() += 1;
                truth.total_rows += 1;
                let image = &row.fields["image"];
                if !drifted && !image.is_empty() {
                    truth.images.push(image.clone());
                }
            }
            line += 1 + rendered.matches('\n').count() as u64;
            let _ = write!(text, "{rendered}{newline}");
        }
        files.push(SampleFile {
            name,
            bytes: text.into_bytes(),
        });
    }
    if spec.dirty {
        files.push(SampleFile {
            name: "part-empty.csv".to_owned(),
            bytes: Vec::new(),
        });
    }
    SampleMonth {
        month,
        files,
        truth,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic() {
        let m = Month::new(2019, 1).unwrap();
        let a = generate_month(m, &SampleSpec::default());
        let b = generate_month(m, &SampleSpec::default());
        assert_eq!(a.files[0].bytes, b.files[0].bytes);
        assert_eq!(a.truth.service_counts, b.truth.service_counts);
    }

    #[test]
    fn truth_adds_up_and_marks_dirty_rows() {
        let m = Month::new(2019, 2).unwrap();
        let spec = SampleSpec::default();
        let s = generate_month(m, &spec);
        let dirty = s.truth.dirty.len() as u64;
        assert!(dirty >= 3, "expected each kind of dirty row, got {dirty}");
        assert_eq!(
            s.truth.total_rows + dirty,
            (spec.files_per_month * spec.rows_per_file) as u64
        );
        assert_eq!(
            s.truth.service_counts.values().sum::<u64>(),
            s.truth.total_rows
        );
        assert!(
            s.files[0].bytes.starts_with("\u{feff}".as_bytes()),
            "first part has a BOM"
        );
    }
}
