//! `contacts.csv` → department topics with SMS and email subscriptions.
//!
//! The file has the columns Name, Department, Email and Phone (header names in any case,
//! surrounding spaces ignored, other columns ignored, a UTF-8 BOM allowed). A row that
//! cannot be used is reported with its line and reason and skipped; the rest proceed.
//! Either Email or Phone may be empty (the contact is then reached the other way), not both.
//! The department picks the topic through a [`DepartmentTable`]; topics are gid's, named
//! with its [`TopicPrefix`]. Names are carried as data for reports only: they never reach
//! a topic, a subscription or a message.

use std::collections::{BTreeSet, HashMap};

use crate::departments::{department_key, DepartmentNote, DepartmentUse};
use crate::{
    create_gid_topic, DepartmentTable, EmailAddress, Endpoint, InvalidInput, PhoneNumber, Protocol,
    Subscription, SubscriptionArn, SubscriptionStatus, TopicAdmin, TopicArn, TopicName,
    TopicPrefix,
};

const BOM: &[u8] = b"\xEF\xBB\xBF";
const NAME: &str = "name";
const DEPARTMENT: &str = "department";
const EMAIL: &str = "email";
const PHONE: &str = "phone";

/// Why the file as a whole cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContactsError {
    /// The file has no header row.
    #[error("{source_name} is empty: expected a header row Name,Department,Email,Phone and one row per contact")]
    Empty {
        /// Where the file came from, e.g. `s3://gid-staging/contacts.csv`.
        source_name: String,
    },
    /// The header lacks a column gid needs.
    #[error("{source_name}: the header lacks {} (found {}); expected Name,Department,Email,Phone", .missing.join(", "), quoted_list(.found))]
    MissingColumns {
        /// Where the file came from.
        source_name: String,
        /// The columns the header lacks.
        missing: Vec<&'static str>,
        /// The header's names, as in the file.
        found: Vec<String>,
    },
    /// The header row is not CSV (e.g. an unterminated quote).
    #[error("{source_name}:1: the header row cannot be read: {message}")]
    Header {
        /// Where the file came from.
        source_name: String,
        /// The CSV reader's complaint.
        message: String,
    },
}

/// Header names as the file has them, each quoted (control characters escaped, since the
/// file is anyone's), `"name", "phone"`; `nothing` for an empty header.
fn quoted_list(names: &[String]) -> String {
    if names.is_empty() {
        return "nothing".to_owned();
    }
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why one row was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactProblem {
    /// The row has a different number of fields than the header.
    FieldCount {
        /// Fields in the row.
        found: usize,
        /// Columns in the header.
        expected: usize,
    },
    /// The department is empty: the row routes to no topic.
    MissingDepartment,
    /// The department has no letter or digit (`&&&`): it names no department.
    BadDepartment(InvalidInput),
    /// The phone number is not E.164 (after dropping separators).
    BadPhone(InvalidInput),
    /// The email address is not one SNS takes.
    BadEmail(InvalidInput),
    /// Neither a phone number nor an email address.
    NoEndpoint,
    /// The row's bytes are not UTF-8 (often a Latin-1 export).
    InvalidUtf8,
    /// The CSV structure is broken (e.g. an unterminated quote).
    Malformed {
        /// The CSV reader's complaint.
        message: String,
    },
}

impl std::fmt::Display for ContactProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::FieldCount { found, expected } => {
                write!(f, "{found} fields, expected {expected}")
            }
            Self::MissingDepartment => f.write_str("the department is empty"),
            Self::BadDepartment(e) | Self::BadPhone(e) | Self::BadEmail(e) => e.fmt(f),
            Self::NoEndpoint => f.write_str("neither a phone number nor an email address"),
            Self::InvalidUtf8 => f.write_str("not valid UTF-8 (save the file as UTF-8)"),
            Self::Malformed { message } => write!(f, "malformed CSV: {message}"),
        }
    }
}

/// A skipped row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedContact {
    /// 1-based line where the row starts (the header is line 1).
    pub line: u64,
    /// Why it was skipped.
    pub reason: ContactProblem,
    /// The row as it was in the file (lossily decoded if it was not UTF-8).
    pub raw: String,
}

/// A usable contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// 1-based line where the row starts (the header is line 1).
    pub line: u64,
    /// As written in the file; data for reports only.
    pub name: String,
    /// As written in the file (matched without regard to case and spaces).
    pub department: String,
    /// The short name of the department's topic, from the [`DepartmentTable`].
    pub topic: TopicName,
    /// Where this contact is reached, without endpoints an earlier row of the same
    /// department already gave (those are in [`ContactList::duplicates`]).
    pub endpoints: Vec<Endpoint>,
}

/// An endpoint given again for the same department, collapsed into the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateEndpoint {
    /// The line that gave it again.
    pub line: u64,
    /// The line that gave it first.
    pub first_line: u64,
    /// The department's topic (short name).
    pub topic: TopicName,
    /// The endpoint given twice.
    pub endpoint: Endpoint,
}

/// A parsed `contacts.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactList {
    /// Where it came from (e.g. `s3://gid-staging/contacts.csv`), for messages.
    pub source: String,
    /// The usable rows, in file order.
    pub contacts: Vec<Contact>,
    /// The skipped rows, in file order; the others were still read.
    pub rejected: Vec<RejectedContact>,
    /// Endpoints given again for a department, collapsed into the first.
    pub duplicates: Vec<DuplicateEndpoint>,
    /// Each department once (as matched: without regard to case and spaces), in the order
    /// the file first names it, with where its contacts go.
    pub departments: Vec<DepartmentUse>,
}

/// Column positions of the fields gid reads.
struct Columns {
    name: usize,
    department: usize,
    email: usize,
    phone: usize,
    count: usize,
}

impl Columns {
    fn from_header(source_name: &str, header: &csv::ByteRecord) -> Result<Self, ContactsError> {
        let names: Vec<String> = header
            .iter()
            .map(|f| String::from_utf8_lossy(f).trim().to_lowercase())
            .collect();
        // The first column of a name wins; a repeated column is ignored.
        let find = |wanted: &str| names.iter().position(|n| n == wanted);
        let (name, department, email, phone) =
            (find(NAME), find(DEPARTMENT), find(EMAIL), find(PHONE));
        let missing: Vec<&'static str> = [
            (NAME, name),
            (DEPARTMENT, department),
            (EMAIL, email),
            (PHONE, phone),
        ]
        .into_iter()
        .filter(|(_, at)| at.is_none())
        .map(|(n, _)| n)
        .collect();
        match (name, department, email, phone) {
            (Some(name), Some(department), Some(email), Some(phone)) => Ok(Self {
                name,
                department,
                email,
                phone,
                count: names.len(),
            }),
            _ => Err(ContactsError::MissingColumns {
                source_name: source_name.to_owned(),
                missing,
                found: names,
            }),
        }
    }
}

impl ContactList {
    /// Parses the file's bytes, routing each department through `departments`. Only a
    /// missing or unusable header fails the whole file; bad rows land in
    /// [`rejected`](Self::rejected), repeated endpoints (on the same topic) in
    /// [`duplicates`](Self::duplicates).
    pub fn parse(
        source_name: &str,
        bytes: &[u8],
        departments: &DepartmentTable,
    ) -> Result<Self, ContactsError> {
        let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ContactsError::Empty {
                source_name: source_name.to_owned(),
            });
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(bytes);
        let mut record = csv::ByteRecord::new();
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => {
                return Err(ContactsError::Empty {
                    source_name: source_name.to_owned(),
                })
            }
            Err(e) => {
                return Err(ContactsError::Header {
                    source_name: source_name.to_owned(),
                    message: e.to_string(),
                })
            }
        }
        let columns = Columns::from_header(source_name, &record)?;

        let mut list = ContactList {
            source: source_name.to_owned(),
            contacts: Vec::new(),
            rejected: Vec::new(),
            duplicates: Vec::new(),
            departments: Vec::new(),
        };
        // (topic, endpoint as compared) → the line that first gave it.
        let mut seen: HashMap<(TopicName, EndpointKey), u64> = HashMap::new();
        // A department's key → its entry in `list.departments`, so each is routed once.
        let mut department_at: HashMap<String, usize> = HashMap::new();
        loop {
            let start = reader.position().clone();
            let read = reader.read_byte_record(&mut record);
            let end = reader.position().byte() as usize;
            let line = start.line();
            let parsed = match read {
                Ok(false) => break,
                Ok(true) => parse_row(&record, &columns),
                Err(e) => Err(ContactProblem::Malformed {
                    message: e.to_string(),
                }),
            };
            match parsed {
                Ok(row) => {
                    let at = *department_at
                        .entry(department_key(&row.department))
                        .or_insert_with(|| {
                            list.departments.push(DepartmentUse {
                                route: departments.route(&row.department),
                                department: row.department.clone(),
                                lines: Vec::new(),
                            });
                            list.departments.len() - 1
                        });
                    let used = &mut list.departments[at];
                    used.lines.push(line);
                    let mut contact = Contact {
                        line,
                        name: row.name,
                        department: row.department,
                        topic: used.route.topic.clone(),
                        endpoints: row.endpoints,
                    };
                    contact.endpoints.retain(|endpoint| {
                        let key = (contact.topic.clone(), EndpointKey::of(endpoint));
                        match seen.get(&key) {
                            Some(&first_line) => {
                                list.duplicates.push(DuplicateEndpoint {
                                    line,
                                    first_line,
                                    topic: key.0,
                                    endpoint: endpoint.clone(),
                                });
                                false
                            }
                            None => {
                                seen.insert(key, line);
                                true
                            }
                        }
                    });
                    // A row whose every endpoint was a repeat adds nothing; its notes say why.
                    if !contact.endpoints.is_empty() {
                        list.contacts.push(contact);
                    }
                }
                Err(reason) => {
                    let span = &bytes[(start.byte() as usize).min(end)..end];
                    list.rejected.push(RejectedContact {
                        line,
                        reason,
                        raw: String::from_utf8_lossy(span)
                            .trim_end_matches(['\r', '\n'])
                            .to_owned(),
                    });
                }
            }
        }
        Ok(list)
    }

    /// How many subscriptions the list asks for.
    pub fn endpoint_count(&self) -> usize {
        self.contacts.iter().map(|c| c.endpoints.len()).sum()
    }

    /// What an operator should know about the list's departments, each named once: the
    /// ones the table does not list (sent to the default topic, with the listed one they
    /// resemble), and the ones whose topic none of the `alerted` topics (the thresholds')
    /// is, whose contacts would never get an alert.
    pub fn department_notes<'a>(
        &self,
        alerted: impl IntoIterator<Item = &'a TopicName>,
    ) -> Vec<DepartmentNote> {
        let alerted: BTreeSet<&TopicName> = alerted.into_iter().collect();
        crate::departments::notes(&self.departments, &alerted).collect()
    }
}

/// An endpoint as duplicates are judged: its protocol and address, email addresses without
/// regard to case, exactly as [`Subscription::delivers_to`] compares them. Hashable, so
/// finding whether a topic already delivers to an endpoint costs the same with a million
/// subscriptions as with ten.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct EndpointKey(Protocol, String);

impl EndpointKey {
    pub(crate) fn of(endpoint: &Endpoint) -> Self {
        Self::new(endpoint.protocol(), endpoint.address())
    }

    pub(crate) fn of_subscription(subscription: &Subscription) -> Self {
        Self::new(subscription.protocol.clone(), &subscription.endpoint)
    }

    pub(crate) fn new(protocol: Protocol, address: &str) -> Self {
        let address = match protocol {
            Protocol::Email => address.to_ascii_lowercase(),
            _ => address.to_owned(),
        };
        Self(protocol, address)
    }
}

/// A usable row, before its department is routed.
struct Row {
    name: String,
    department: String,
    endpoints: Vec<Endpoint>,
}

fn parse_row(record: &csv::ByteRecord, columns: &Columns) -> Result<Row, ContactProblem> {
    if record.len() != columns.count {
        return Err(ContactProblem::FieldCount {
            found: record.len(),
            expected: columns.count,
        });
    }
    let field = |i: usize| {
        std::str::from_utf8(&record[i])
            .map(str::trim)
            .map_err(|_| ContactProblem::InvalidUtf8)
    };
    let (name, department, email, phone) = (
        field(columns.name)?,
        field(columns.department)?,
        field(columns.email)?,
        field(columns.phone)?,
    );
    if department.is_empty() {
        return Err(ContactProblem::MissingDepartment);
    }
    if !department.chars().any(char::is_alphanumeric) {
        return Err(ContactProblem::BadDepartment(InvalidInput::Department {
            department: department.to_owned(),
            reason: "it has no letters or digits",
        }));
    }
    let mut endpoints = Vec::with_capacity(2);
    if !phone.is_empty() {
        let phone = PhoneNumber::new(phone).map_err(ContactProblem::BadPhone)?;
        endpoints.push(Endpoint::Sms(phone));
    }
    if !email.is_empty() {
        let email = EmailAddress::new(email).map_err(ContactProblem::BadEmail)?;
        endpoints.push(Endpoint::Email(email));
    }
    if endpoints.is_empty() {
        return Err(ContactProblem::NoEndpoint);
    }
    Ok(Row {
        name: name.to_owned(),
        department: department.to_owned(),
        endpoints,
    })
}

/// One endpoint of one contact, and its subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactSubscription {
    /// The contact's line in contacts.csv.
    pub line: u64,
    /// The contact's name, as written.
    pub name: String,
    /// The department's topic.
    pub topic: TopicArn,
    /// The address subscribed.
    pub endpoint: Endpoint,
    /// `None` for an existing subscription still pending confirmation (SNS lists those
    /// without an ARN).
    pub subscription: Option<SubscriptionArn>,
    /// As the topic's listing showed it after subscribing (if that listing failed: SMS
    /// confirmed, email pending, as on AWS).
    pub status: SubscriptionStatus,
}

/// An endpoint that could not be subscribed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedContact {
    /// The contact's line in contacts.csv.
    pub line: u64,
    /// The contact's name, as written.
    pub name: String,
    /// The department's topic (short name).
    pub topic: TopicName,
    /// The address that was not subscribed.
    pub endpoint: Endpoint,
    /// The error, as a message (one topic failure is shared by all its contacts).
    pub reason: String,
}

/// What [`subscribe_contacts`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscribeReport {
    /// The department topics (gid's, with the prefix), created when missing.
    pub topics: Vec<TopicArn>,
    /// New subscriptions.
    pub subscribed: Vec<ContactSubscription>,
    /// Already there (confirmed or pending confirmation): left alone.
    pub already_subscribed: Vec<ContactSubscription>,
    /// Endpoints that could not be subscribed; the others still were.
    pub failed: Vec<FailedContact>,
}

/// How far [`subscribe_contacts_with_progress`] has got: endpoints handled (subscribed,
/// found already subscribed or failed) out of all the list asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscribeProgress {
    /// Endpoints handled so far.
    pub done: usize,
    /// Endpoints to handle.
    pub total: usize,
}

/// Subscribes every contact to its department's topic (gid's, named with `prefix`) by SMS
/// and by email, creating the topics on demand. Endpoints the topic already has (confirmed
/// or still pending) are left alone, so a rerun adds nothing. A failure (even of a whole
/// topic) is recorded in the report and the other contacts proceed.
pub async fn subscribe_contacts(
    notifier: &dyn TopicAdmin,
    prefix: &TopicPrefix,
    contacts: &ContactList,
) -> SubscribeReport {
    subscribe_contacts_with_progress(notifier, prefix, contacts, &|_| {}).await
}

/// [`subscribe_contacts`], calling `progress` after each endpoint.
///
/// The cost is linear in the number of endpoints: each topic's subscriptions are listed
/// once before and once after, and an endpoint is looked up by [`EndpointKey`], not
/// searched for in the listing.
pub async fn subscribe_contacts_with_progress(
    notifier: &dyn TopicAdmin,
    prefix: &TopicPrefix,
    contacts: &ContactList,
    progress: &(dyn Fn(SubscribeProgress) + Send + Sync),
) -> SubscribeReport {
    let mut report = SubscribeReport::default();
    let mut tick = {
        let total = contacts.endpoint_count();
        let mut done = 0;
        move |handled: usize| {
            done += handled;
            progress(SubscribeProgress { done, total });
        }
    };
    for (topic, members) in by_department(contacts) {
        let prepared = async {
            let arn = create_gid_topic(notifier, prefix, topic).await?;
            let existing = notifier.list_subscriptions(Some(&arn)).await?;
            Ok::<_, crate::NotifyError>((arn, existing))
        }
        .await;
        let (arn, existing) = match prepared {
            Ok(ready) => ready,
            Err(e) => {
                tracing::warn!(%topic, error = %e, "department topic unusable; its contacts are skipped");
                for contact in members {
                    for endpoint in &contact.endpoints {
                        report.failed.push(FailedContact {
                            line: contact.line,
                            name: contact.name.clone(),
                            topic: topic.clone(),
                            endpoint: endpoint.clone(),
                            reason: e.to_string(),
                        });
                    }
                    tick(contact.endpoints.len());
                }
                continue;
            }
        };
        let existing: HashMap<EndpointKey, &Subscription> = existing
            .iter()
            .map(|s| (EndpointKey::of_subscription(s), s))
            .collect();
        report.topics.push(arn.clone());
        let first_new = report.subscribed.len();
        for contact in members {
            for endpoint in &contact.endpoints {
                let done = |subscription, status| ContactSubscription {
                    line: contact.line,
                    name: contact.name.clone(),
                    topic: arn.clone(),
                    endpoint: endpoint.clone(),
                    subscription,
                    status,
                };
                if let Some(found) = existing.get(&EndpointKey::of(endpoint)) {
                    report
                        .already_subscribed
                        .push(done(found.arn.clone(), found.status));
                } else {
                    match notifier.subscribe(&arn, endpoint).await {
                        // Provisional status: SMS needs no confirmation, email does on AWS.
                        // Corrected from the topic's listing below.
                        Ok(sub) => report.subscribed.push(done(
                            Some(sub),
                            match endpoint {
                                Endpoint::Sms(_) => SubscriptionStatus::Confirmed,
                                Endpoint::Email(_) => SubscriptionStatus::PendingConfirmation,
                            },
                        )),
                        Err(e) => report.failed.push(FailedContact {
                            line: contact.line,
                            name: contact.name.clone(),
                            topic: topic.clone(),
                            endpoint: endpoint.clone(),
                            reason: e.to_string(),
                        }),
                    }
                }
                tick(1);
            }
        }
        // Whether a new email subscription waits for confirmation depends on the backend
        // (AWS: yes; moto and the default local outbox: no), so ask rather than guess.
        let fresh = &mut report.subscribed[first_new..];
        if !fresh.is_empty() {
            match notifier.list_subscriptions(Some(&arn)).await {
                Ok(listed) => {
                    let statuses: HashMap<EndpointKey, SubscriptionStatus> = listed
                        .iter()
                        .map(|s| (EndpointKey::of_subscription(s), s.status))
                        .collect();
                    for new in fresh {
                        if let Some(status) = statuses.get(&EndpointKey::of(&new.endpoint)) {
                            new.status = *status;
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(topic = %arn, error = %e, "statuses of new subscriptions not confirmed")
                }
            }
        }
    }
    tracing::info!(
        topics = report.topics.len(),
        subscribed = report.subscribed.len(),
        already = report.already_subscribed.len(),
        failed = report.failed.len(),
        "contacts subscribed"
    );
    report
}

/// The contacts grouped by department topic, departments in the order they first appear
/// so the report reads like the file.
fn by_department(contacts: &ContactList) -> Vec<(&TopicName, Vec<&Contact>)> {
    let mut groups: Vec<(&TopicName, Vec<&Contact>)> = Vec::new();
    let mut position: HashMap<&TopicName, usize> = HashMap::new();
    for contact in &contacts.contacts {
        let at = *position.entry(&contact.topic).or_insert_with(|| {
            groups.push((&contact.topic, Vec::new()));
            groups.len() - 1
        });
        groups[at].1.push(contact);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::Faulty;
    use crate::Notifier as _;
    use crate::{EmailConfirmation, LocalOutbox, Protocol};

    fn parse(text: &str) -> ContactList {
        ContactList::parse("contacts.csv", text.as_bytes(), &DepartmentTable::default()).unwrap()
    }

    fn prefix() -> TopicPrefix {
        TopicPrefix::default()
    }

    fn name(n: &str) -> TopicName {
        TopicName::new(n).unwrap()
    }

    #[test]
    fn good_rows_become_contacts_on_department_topics() {
        let list = parse(
            "Name,Department,Email,Phone\n\
             Pat Smith,Trash,pat@example.org,+16195550100\n\
             Lee Wong,Streets,lee@example.org,\n\
             Sam Diaz,streets,,+1 (619) 555-0101\n",
        );
        assert!(list.rejected.is_empty(), "{:?}", list.rejected);
        let summary: Vec<(u64, &str, Vec<String>)> = list
            .contacts
            .iter()
            .map(|c| {
                (
                    c.line,
                    c.topic.as_str(),
                    c.endpoints.iter().map(ToString::to_string).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    2,
                    "trash",
                    vec![
                        "sms:+16195550100".to_owned(),
                        "email:pat@example.org".to_owned()
                    ]
                ),
                (3, "streets", vec!["email:lee@example.org".to_owned()]),
                (4, "streets", vec!["sms:+16195550101".to_owned()]),
            ]
        );
        assert_eq!(list.endpoint_count(), 4);
    }

    #[test]
    fn bad_rows_are_reported_with_line_and_reason_and_the_rest_kept() {
        let list = parse(
            "Name,Department,Email,Phone\n\
             Good One,Trash,one@example.org,+16195550100\n\
             Bad Phone,Trash,two@example.org,619-555-0102\n\
             Bad Email,Trash,not-an-address,+16195550103\n\
             No Dept,,four@example.org,+16195550104\n\
             Too,Many,Fields,+16195550105,extra\n\
             Nothing,Trash,,\n\
             \"Unclosed,Trash,x@example.org,+16195550106\n",
        );
        let reasons: Vec<(u64, String)> = list
            .rejected
            .iter()
            .map(|r| (r.line, r.reason.to_string()))
            .collect();
        assert_eq!(list.contacts.len(), 1, "{reasons:?}");
        assert_eq!(list.contacts[0].line, 2);
        let lines: Vec<u64> = reasons.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [3, 4, 5, 6, 7, 8], "{reasons:?}");
        assert!(matches!(
            list.rejected[0].reason,
            ContactProblem::BadPhone(_)
        ));
        assert!(reasons[0].1.contains("619-555-0102") && reasons[0].1.contains("E.164"));
        assert!(matches!(
            list.rejected[1].reason,
            ContactProblem::BadEmail(_)
        ));
        assert_eq!(list.rejected[2].reason, ContactProblem::MissingDepartment);
        assert_eq!(
            list.rejected[3].reason,
            ContactProblem::FieldCount {
                found: 5,
                expected: 4
            }
        );
        assert_eq!(list.rejected[4].reason, ContactProblem::NoEndpoint);
        assert_eq!(list.rejected[3].raw, "Too,Many,Fields,+16195550105,extra");
    }

    #[test]
    fn headers_are_matched_in_any_case_order_and_with_a_bom() {
        let text = "\u{feff} phone , EMAIL,Notes, Department ,NAME\r\n\
                    +16195550100,pat@example.org,on call,Trash,Pat\r\n";
        let list = parse(text);
        assert_eq!(list.contacts.len(), 1, "{:?}", list.rejected);
        assert_eq!(list.contacts[0].name, "Pat");
        assert_eq!(list.contacts[0].department, "Trash");
        assert_eq!(list.contacts[0].endpoints.len(), 2);
    }

    #[test]
    fn a_header_without_the_columns_fails_the_file_naming_what_is_missing() {
        let err = ContactList::parse(
            "s3://gid-staging/contacts.csv",
            b"Name,Email\nPat,p@x.org\n",
            &DepartmentTable::default(),
        )
        .unwrap_err();
        assert!(
            matches!(&err, ContactsError::MissingColumns { missing, .. } if missing == &["department", "phone"]),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "s3://gid-staging/contacts.csv: the header lacks department, phone (found \"name\", \"email\"); \
             expected Name,Department,Email,Phone"
        );
        assert!(matches!(
            ContactList::parse("c.csv", b"\xEF\xBB\xBF \n", &DepartmentTable::default()),
            Err(ContactsError::Empty { .. })
        ));
    }

    #[test]
    fn duplicate_endpoints_in_a_department_collapse_with_a_note() {
        let list = parse(
            "Name,Department,Email,Phone\n\
             Pat,Trash,pat@example.org,+16195550100\n\
             Pat again,TRASH,PAT@example.org,+1 619 555 0100\n\
             Pat elsewhere,Streets,pat@example.org,+16195550100\n\
             Pat new phone,Trash,pat@example.org,+16195550199\n",
        );
        assert!(list.rejected.is_empty());
        let lines: Vec<u64> = list.contacts.iter().map(|c| c.line).collect();
        // Line 3 repeats both endpoints of line 2 (same department in another case, phone
        // reformatted, email in capitals); line 5 adds only its new phone.
        assert_eq!(lines, [2, 4, 5]);
        assert_eq!(list.contacts[2].endpoints.len(), 1);
        let notes: Vec<(u64, u64, String)> = list
            .duplicates
            .iter()
            .map(|d| (d.line, d.first_line, d.endpoint.to_string()))
            .collect();
        assert_eq!(
            notes,
            [
                (3, 2, "sms:+16195550100".to_owned()),
                (3, 2, "email:PAT@example.org".to_owned()),
                (5, 2, "email:pat@example.org".to_owned()),
            ]
        );
    }

    #[test]
    fn emails_differing_only_in_case_are_duplicates() {
        let list = parse(
            "Name,Department,Email,Phone\n\
             A,Trash,Pat@example.org,\n\
             B,Trash,pat@EXAMPLE.org,\n",
        );
        assert_eq!(list.contacts.len(), 1);
        assert_eq!(list.contacts[0].endpoints[0].address(), "Pat@example.org");
        assert_eq!(list.duplicates.len(), 1);
        assert_eq!(list.duplicates[0].line, 3);
    }

    #[test]
    fn names_with_injection_attempts_are_kept_as_plain_data() {
        let list = parse(
            "Name,Department,Email,Phone\n\
             \"=HYPERLINK(\"\"http://evil\"\"),<script>alert(1)</script>\",Trash,pat@example.org,+16195550100\n\
             \"Robert'); DROP TABLE contacts;--\",Trash,bob@example.org,\n\
             $(rm -rf /),Trash,,+16195550101\n",
        );
        let names: Vec<&str> = list.contacts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "=HYPERLINK(\"http://evil\"),<script>alert(1)</script>",
                "Robert'); DROP TABLE contacts;--",
                "$(rm -rf /)",
            ]
        );
        assert!(list.contacts.iter().all(|c| c.topic.as_str() == "trash"));
    }

    #[test]
    fn latin1_rows_are_rejected_not_garbled() {
        let mut bytes = b"Name,Department,Email,Phone\n".to_vec();
        bytes.extend_from_slice(b"Jos\xe9,Trash,jose@example.org,+16195550100\n");
        bytes.extend_from_slice(b"Ana,Trash,ana@example.org,+16195550101\n");
        let list = ContactList::parse("c.csv", &bytes, &DepartmentTable::default()).unwrap();
        assert_eq!(list.rejected.len(), 1);
        assert_eq!(list.rejected[0].reason, ContactProblem::InvalidUtf8);
        assert_eq!(list.rejected[0].line, 2);
        assert_eq!(list.contacts.len(), 1);
    }

    #[test]
    fn departments_route_through_the_table_and_unlisted_ones_are_noted_once() {
        let list = parse(
            "Name,Department,Email,Phone\n\
             A,Trash,a@example.org,\n\
             B,Streets & Sidewalks,b@example.org,\n\
             C, trash ,c@example.org,\n\
             D,Trsh,d@example.org,\n\
             E,Streets,e@example.org,\n\
             F,TRSH,f@example.org,\n\
             G,&&&,g@example.org,\n",
        );
        let topics: Vec<(u64, &str)> = list
            .contacts
            .iter()
            .map(|c| (c.line, c.topic.as_str()))
            .collect();
        assert_eq!(
            topics,
            [
                (2, "trash"),
                (3, "streets"),
                (4, "trash"),
                (5, "streets"),
                (6, "streets"),
                (7, "streets"),
            ]
        );
        assert_eq!(list.rejected.len(), 1);
        assert!(
            list.rejected[0]
                .reason
                .to_string()
                .contains("no letters or digits"),
            "{}",
            list.rejected[0].reason
        );
        assert_eq!(
            notes_with_alerts_on_trash_and_streets(&list),
            [
                "department \"Streets & Sidewalks\" (line 3) is not in notify.departments: subscribed to streets",
                "department \"Trsh\" (lines 5, 7) is not in notify.departments: subscribed to streets; did you mean \"Trash\"?",
            ]
        );
    }

    /// The list's notes on departments when thresholds alert `trash` and `streets`.
    fn notes_with_alerts_on_trash_and_streets(list: &ContactList) -> Vec<String> {
        let (trash, streets) = (name("trash"), name("streets"));
        list.department_notes([&trash, &streets])
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_department_whose_topic_no_threshold_alerts_is_noted() {
        let table = DepartmentTable::new(
            [("Trash", name("trash")), ("Graffiti", name("graffiti"))],
            name("streets"),
        )
        .unwrap();
        let list = ContactList::parse(
            "contacts.csv",
            b"Name,Department,Email,Phone\nA,Graffiti,a@example.org,\nB,Trash,b@example.org,\n",
            &table,
        )
        .unwrap();
        assert_eq!(
            notes_with_alerts_on_trash_and_streets(&list),
            ["department \"Graffiti\" (line 2) maps to topic graffiti, which no threshold alerts: its subscribers will never get an alert"]
        );
    }

    #[tokio::test]
    async fn contacts_are_subscribed_to_prefixed_topics() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = LocalOutbox::new(dir.path());
        let list = parse("Name,Department,Email,Phone\nA,Streets & Sidewalks,,+16195550100\n");
        let prefix = TopicPrefix::new("city_gid_").unwrap();
        let report = subscribe_contacts(&outbox, &prefix, &list).await;
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        assert_eq!(
            crate::test_support::topic_names(&outbox).await,
            ["city_gid_streets"]
        );
    }

    const CONTACTS: &str = "Name,Department,Email,Phone\n\
        Pat,Trash,pat@example.org,+16195550100\n\
        Lee,Streets,lee@example.org,+16195550101\n\
        Sam,Trash,,+16195550102\n";

    #[tokio::test]
    async fn contacts_are_subscribed_once_and_a_rerun_adds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = LocalOutbox::new(dir.path());
        let list = parse(CONTACTS);
        let first = subscribe_contacts(&outbox, &prefix(), &list).await;
        assert!(first.failed.is_empty(), "{:?}", first.failed);
        let topics: Vec<&str> = first.topics.iter().map(|t| t.name()).collect();
        assert_eq!(topics, ["gid-trash", "gid-streets"]);
        assert_eq!(first.subscribed.len(), 5);
        assert!(first.already_subscribed.is_empty());
        assert!(
            first
                .subscribed
                .iter()
                .all(|s| s.status == SubscriptionStatus::Confirmed),
            "the default outbox confirms email at once: {:?}",
            first.subscribed
        );

        let second = subscribe_contacts(&outbox, &prefix(), &list).await;
        assert!(second.subscribed.is_empty(), "{:?}", second.subscribed);
        assert_eq!(second.already_subscribed.len(), 5);
        let all = outbox.list_subscriptions(None).await.unwrap();
        assert_eq!(all.len(), 5, "no duplicates: {all:?}");
        let trash_sms = all
            .iter()
            .filter(|s| s.topic.name() == "gid-trash" && s.protocol == Protocol::Sms)
            .count();
        assert_eq!(trash_sms, 2);
    }

    #[tokio::test]
    async fn pending_email_subscriptions_count_as_existing() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = LocalOutbox::with_email_confirmation(dir.path(), EmailConfirmation::Pending);
        let list = parse(CONTACTS);
        let first = subscribe_contacts(&outbox, &prefix(), &list).await;
        let statuses: Vec<(String, SubscriptionStatus)> = first
            .subscribed
            .iter()
            .map(|s| (s.endpoint.protocol().to_string(), s.status))
            .collect();
        assert!(
            statuses
                .iter()
                .all(|(p, st)| (p == "email") == (*st == SubscriptionStatus::PendingConfirmation)),
            "{statuses:?}"
        );
        let rerun = subscribe_contacts(&outbox, &prefix(), &list).await;
        assert!(rerun.subscribed.is_empty(), "{:?}", rerun.subscribed);
        let pending: Vec<&ContactSubscription> = rerun
            .already_subscribed
            .iter()
            .filter(|s| s.status == SubscriptionStatus::PendingConfirmation)
            .collect();
        assert_eq!(pending.len(), 2, "the two email subscriptions");
        assert!(pending.iter().all(|s| s.subscription.is_none()));
        assert_eq!(outbox.list_subscriptions(None).await.unwrap().len(), 5);
    }

    #[tokio::test]
    async fn progress_counts_every_endpoint_once_failed_departments_included() {
        let dir = tempfile::tempdir().unwrap();
        let notifier = Faulty::new(LocalOutbox::new(dir.path())).failing_topic("gid-streets");
        let seen = std::sync::Mutex::new(Vec::new());
        let report =
            subscribe_contacts_with_progress(&notifier, &prefix(), &parse(CONTACTS), &|p| {
                seen.lock().unwrap().push(p.done);
                assert_eq!(p.total, 5);
            })
            .await;
        assert_eq!(report.subscribed.len() + report.failed.len(), 5);
        // Trash's three endpoints one by one, then the failed Streets topic's two at once.
        assert_eq!(seen.into_inner().unwrap(), [1, 2, 3, 5]);
    }

    #[tokio::test]
    async fn one_failing_department_or_contact_never_stops_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let notifier = Faulty::new(LocalOutbox::new(dir.path()))
            .failing_topic("gid-streets")
            .failing_endpoint("+16195550102");
        let report = subscribe_contacts(&notifier, &prefix(), &parse(CONTACTS)).await;
        let failed: Vec<(u64, String)> = report
            .failed
            .iter()
            .map(|f| (f.line, f.endpoint.to_string()))
            .collect();
        assert_eq!(
            failed,
            [
                // Trash first (it appears first in the file): Sam's number is refused.
                (4, "sms:+16195550102".to_owned()),
                (3, "sms:+16195550101".to_owned()),
                (3, "email:lee@example.org".to_owned()),
            ]
        );
        assert!(report.failed[0].reason.contains("opted out"));
        assert!(report.failed[1].reason.contains("HTTP 503"));
        assert_eq!(report.subscribed.len(), 2, "Pat's two endpoints on trash");
    }
}
