//! A month's counts, accumulated table by table.
//!
//! Ingest tallies each export as it is parsed (on its parser thread, while other files
//! download) and merges the tallies, so the aggregate stage of the same run finishes the
//! month's summary without reading its table back, and the month's table is never built
//! in memory when nothing needs it. [`summarise`](crate::summarise) is one tally of the
//! whole table: both give the same summary, by construction and by test.

use polars_core::prelude::*;

use crate::{
    case_age, cross_counts, grid, group_counts, is_closed, label, parse_age, parse_position,
    text_column, AggregateError, CaseAge, GridPoint, MapCell, MapPoints, MonthSummary, OpenClosed,
    ServiceCaseAge, Values, CASE_AGE_DAYS, COUNCIL_DISTRICT, LAT, LONG, MAP_CELL_CAP,
    MAP_CELL_DEGREES, NOT_SPECIFIED, SERVICE_NAME, STATUS,
};

/// Distinct values of a column in the order first seen, each with a small id.
#[derive(Debug, Clone, Default)]
struct Names {
    ids: PlHashMap<String, u32>,
    names: Vec<String>,
}

impl Names {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_owned());
        self.ids.insert(name.to_owned(), id);
        id
    }

    /// Ids in `self` of every name of `other`, by `other`'s id.
    fn merge(&mut self, other: &Names) -> Vec<u32> {
        other.names.iter().map(|name| self.id(name)).collect()
    }

    fn as_strs(&self) -> Vec<&str> {
        self.names.iter().map(String::as_str).collect()
    }
}

/// Adds `n` to `counts[group][service]`, growing the table as new ids appear.
fn add(counts: &mut Vec<Vec<u64>>, group: u32, service: u32, n: u64) {
    let (group, service) = (group as usize, service as usize);
    if counts.len() <= group {
        counts.resize_with(group + 1, Vec::new);
    }
    let row = &mut counts[group];
    if row.len() <= service {
        row.resize(service + 1, 0);
    }
    row[service] += n;
}

/// Counts by group × service of one optional column (`status`, `council_district`).
#[derive(Debug, Clone, Default)]
struct CrossTally {
    /// Whether any table tallied had the column: a table without it counts its rows as
    /// [`NOT_SPECIFIED`] once merged with one that has it, as the combined table would.
    present: bool,
    groups: Names,
    /// `[group][service]`.
    counts: Vec<Vec<u64>>,
}

impl CrossTally {
    fn merge(&mut self, other: &CrossTally, services: &[u32], mine: &[u64], theirs: &[u64]) {
        match (self.present, other.present) {
            (_, false) => {
                if self.present {
                    let unknown = self.groups.id(NOT_SPECIFIED);
                    for (service, &n) in theirs.iter().enumerate() {
                        add(&mut self.counts, unknown, services[service], n);
                    }
                }
            }
            (present, true) => {
                if !present {
                    // The rows tallied so far had no such column.
                    let unknown = self.groups.id(NOT_SPECIFIED);
                    for (service, &n) in mine.iter().enumerate() {
                        add(&mut self.counts, unknown, service as u32, n);
                    }
                    self.present = true;
                }
                let groups = self.groups.merge(&other.groups);
                for (group, per_service) in other.counts.iter().enumerate() {
                    for (service, &n) in per_service.iter().enumerate().filter(|(_, n)| **n > 0) {
                        add(&mut self.counts, groups[group], services[service], n);
                    }
                }
            }
        }
    }

    /// Per-group totals, and the counts as (group, service) pairs.
    fn finish(&self, services: &[&str]) -> (Vec<crate::GroupCount>, Vec<crate::CrossCount>) {
        let groups = self.groups.as_strs();
        let totals: Vec<u64> = self.counts.iter().map(|per| per.iter().sum()).collect();
        let mut pairs: PlHashMap<(&str, &str), u64> = PlHashMap::default();
        for (group, per_service) in self.counts.iter().enumerate() {
            for (service, &n) in per_service.iter().enumerate().filter(|(_, n)| **n > 0) {
                pairs.insert((groups[group], services[service]), n);
            }
        }
        (group_counts(&groups, &totals), cross_counts(pairs))
    }
}

/// What a month's summary is made of, for one table or several merged.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    rows: u64,
    services: Names,
    /// Rows per service id.
    per_service: Vec<u64>,
    statuses: CrossTally,
    districts: CrossTally,
    /// Every row's case age in days (rows with a usable one).
    ages: Vec<u32>,
    ages_by_service: Vec<Vec<u32>>,
    /// The cells on the finest grid; district ids are in `districts.groups`.
    points: Vec<GridPoint>,
    without_coordinates: u64,
}

impl Tally {
    /// The columns [`Tally::of`] reads (a table may lack any but `service_name`): a reader
    /// that only tallies need not decode the others.
    pub const COLUMNS: [&'static str; 6] = [
        SERVICE_NAME,
        STATUS,
        COUNCIL_DISTRICT,
        CASE_AGE_DAYS,
        LAT,
        LONG,
    ];

    /// Tallies a table (a month's, or one export's rows). `service_name` is required; a
    /// table without `status`, `council_district`, `case_age_days` or coordinates gets
    /// empty breakdowns for them.
    pub fn of(frame: &DataFrame) -> Result<Self, AggregateError> {
        let mut tally = Tally::default();
        if frame.height() == 0 && frame.width() == 0 {
            return Ok(tally);
        }
        let height = frame.height();
        let service = text_column(frame, SERVICE_NAME)?;
        if service.is_none() {
            return Err(AggregateError::MissingColumn(SERVICE_NAME));
        }
        let status = text_column(frame, STATUS)?;
        let district = text_column(frame, COUNCIL_DISTRICT)?;
        let age = text_column(frame, CASE_AGE_DAYS)?;
        let lat = text_column(frame, LAT)?;
        let long = text_column(frame, LONG)?;
        tally.rows = height as u64;
        tally.statuses.present = status.is_some();
        tally.districts.present = district.is_some();
        tally.points.reserve(height);

        // Each row's text values are interned to small ids first (one hash of one string
        // per column), so the cross counts are dense arrays and the map's cells hash four
        // integers: hashing and comparing tuples of strings per row was most of the stage.
        let columns = [&service, &status, &district, &age, &lat, &long].map(Values::of);
        let [mut services, mut statuses, mut districts, mut ages, mut lats, mut longs] = columns;
        for _ in 0..height {
            let service_value = services.next();
            let status_value = statuses.next();
            let district_value = districts.next();
            let age_value = ages.next();
            let (lat, long) = (lats.next(), longs.next());
            let service_id = tally.services.id(label(service_value));
            if tally.per_service.len() <= service_id as usize {
                tally.per_service.resize(service_id as usize + 1, 0);
            }
            tally.per_service[service_id as usize] += 1;
            let district_id = tally.districts.groups.id(label(district_value));
            if status.is_some() {
                let status_id = tally.statuses.groups.id(label(status_value));
                add(&mut tally.statuses.counts, status_id, service_id, 1);
            }
            if district.is_some() {
                add(&mut tally.districts.counts, district_id, service_id, 1);
            }
            // Parsed on every row: a plain number reads faster than its text hashes.
            let days = parse_age(age_value);
            if let Some(days) = days {
                tally.ages.push(days);
                if tally.ages_by_service.len() <= service_id as usize {
                    tally
                        .ages_by_service
                        .resize_with(service_id as usize + 1, Vec::new);
                }
                tally.ages_by_service[service_id as usize].push(days);
            }
            match parse_position(lat, long) {
                Some((lat, long)) => tally.points.push((
                    (lat / MAP_CELL_DEGREES).floor() as i32,
                    (long / MAP_CELL_DEGREES).floor() as i32,
                    service_id,
                    district_id,
                )),
                None => tally.without_coordinates += 1,
            }
        }
        Ok(tally)
    }

    /// Rows tallied.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Adds `other`'s rows, as if both tables had been one (columns combined by name).
    pub fn merge(&mut self, other: &Tally) {
        let services = self.services.merge(&other.services);
        let mine = self.per_service.clone();
        self.statuses
            .merge(&other.statuses, &services, &mine, &other.per_service);
        // District ids also key the map's points; districts absent from a table were
        // interned as NOT_SPECIFIED there too.
        self.districts
            .merge(&other.districts, &services, &mine, &other.per_service);
        let districts = self.districts.groups.merge(&other.districts.groups);
        for (service, &n) in other.per_service.iter().enumerate() {
            let id = services[service] as usize;
            if self.per_service.len() <= id {
                self.per_service.resize(id + 1, 0);
            }
            self.per_service[id] += n;
        }
        self.ages.extend_from_slice(&other.ages);
        for (service, ages) in other.ages_by_service.iter().enumerate() {
            let id = services[service] as usize;
            if self.ages_by_service.len() <= id {
                self.ages_by_service.resize_with(id + 1, Vec::new);
            }
            self.ages_by_service[id].extend_from_slice(ages);
        }
        self.points.extend(
            other
                .points
                .iter()
                .map(|&(lat, long, s, d)| (lat, long, services[s as usize], districts[d as usize])),
        );
        self.without_coordinates += other.without_coordinates;
        self.rows += other.rows;
    }

    /// The month's summary.
    pub fn finish(mut self, month: gid_core::Month) -> MonthSummary {
        let services_seen = self.services.as_strs();
        let services = group_counts(&services_seen, &self.per_service);
        let (by_status, status_by_service) = self.statuses.finish(&services_seen);
        let (by_district, district_by_service) = self.districts.finish(&services_seen);
        let open_closed = self.statuses.present.then(|| {
            let mut open_closed = OpenClosed::default();
            for status in &by_status {
                if is_closed(&status.name) {
                    open_closed.closed += status.request_count;
                } else {
                    open_closed.open += status.request_count;
                }
            }
            open_closed
        });

        let districts_seen = self.districts.groups.as_strs();
        let (coarsening, cell_ids) = grid(&self.points);
        let cells: PlHashMap<(i32, i32, &str, &str), u64> = cell_ids
            .into_iter()
            .map(|((lat, long, service, district), n)| {
                (
                    (
                        lat,
                        long,
                        services_seen[service as usize],
                        districts_seen[district as usize],
                    ),
                    n,
                )
            })
            .collect();
        let mut cells: Vec<MapCell> = cells
            .into_iter()
            .map(
                |((lat_cell, long_cell, service, district), request_count)| MapCell {
                    lat_cell,
                    long_cell,
                    service: service.to_owned(),
                    council_district: district.to_owned(),
                    request_count,
                },
            )
            .collect();
        cells.sort_by(|a, b| {
            b.request_count
                .cmp(&a.request_count)
                .then_with(|| (a.lat_cell, a.long_cell).cmp(&(b.lat_cell, b.long_cell)))
                .then_with(|| a.service.cmp(&b.service))
                .then_with(|| a.council_district.cmp(&b.council_district))
        });
        let beyond_cap = cells
            .iter()
            .skip(MAP_CELL_CAP)
            .map(|c| c.request_count)
            .sum();
        cells.truncate(MAP_CELL_CAP);

        let mut ages_by_service: PlHashMap<&str, &mut Vec<u32>> = self
            .ages_by_service
            .iter_mut()
            .enumerate()
            .filter(|(_, ages)| !ages.is_empty())
            .map(|(service, ages)| (services_seen[service], ages))
            .collect();
        let case_age_by_service: Vec<ServiceCaseAge> = services
            .iter()
            .filter_map(|g| {
                let ages = ages_by_service.get_mut(g.name.as_str())?;
                Some(ServiceCaseAge {
                    service: g.name.clone(),
                    age: case_age(ages)?,
                })
            })
            .collect();
        let case_age: Option<CaseAge> = case_age(&mut self.ages);
        MonthSummary {
            month: month.to_string(),
            total_requests: self.rows,
            services,
            by_status,
            by_council_district: by_district,
            status_by_service,
            district_by_service,
            open_closed,
            case_age,
            case_age_by_service,
            map: MapPoints {
                coarsening,
                cells,
                without_coordinates: self.without_coordinates,
                beyond_cap,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars_core::functions::concat_df_diagonal;

    fn month() -> gid_core::Month {
        "2019-01".parse().unwrap()
    }

    #[test]
    fn tallies_of_files_merged_give_the_summary_of_their_combined_table() {
        // Drifted files: one without status, one without districts and coordinates, one
        // with neither; names with spaces, nulls and a service that only one file has.
        let a = df!(
            "service_name" => ["Pothole", "Graffiti", " Pothole ", "Pothole"],
            "status" => [Some("Closed"), Some("New"), None, Some("Referred")],
            "council_district" => [Some("3"), Some("1"), Some("3"), None],
            "case_age_days" => [Some("4"), Some("12.0"), Some("-1"), None],
            "lat" => ["32.71", "32.75", "0", "32.71"],
            "long" => ["-117.16", "-117.10", "0", "-117.16"]
        )
        .unwrap();
        let b = df!(
            "service_name" => ["Graffiti", "Tree", "Pothole"],
            "council_district" => [Some("1"), Some("9"), Some(" ")],
            "case_age_days" => [Some("30"), Some("2"), Some("7")],
            "lat" => ["32.75", "32.80", "32.72"],
            "long" => ["-117.10", "-117.20", "-117.15"]
        )
        .unwrap();
        let c = df!(
            "service_name" => [Some("Tree"), None],
            "status" => ["In Process", "Closed"]
        )
        .unwrap();
        let d = df!("service_name" => ["Sidewalk"]).unwrap();
        let files = [a, b, c, d];
        let combined = concat_df_diagonal(&files).unwrap();
        // A chunk per file: the table's columns are read chunk after chunk.
        assert!(combined.first_col_n_chunks() > 1);
        let whole = crate::summarise(month(), &combined).unwrap();
        // In any order: the summary sorts everything it lists.
        for order in [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]] {
            let mut tally = Tally::default();
            for i in order {
                tally.merge(&Tally::of(&files[i]).unwrap());
            }
            assert_eq!(tally.rows(), 10);
            assert_eq!(tally.finish(month()), whole, "order {order:?}");
        }
        assert_eq!(whole.count_of(NOT_SPECIFIED), 1);
        assert!(whole.open_closed.is_some());
    }
}
