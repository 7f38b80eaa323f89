//! Departments → threshold topics (`[notify.departments]` and `notify.default_topic`).
//!
//! A contact's department decides which topic it is subscribed to, and so which alerts it
//! gets. Deriving the topic from the department's name (the first design) subscribed
//! "Streets & Sidewalks" to `streets-sidewalks`, which no threshold alerts, and a misspelled
//! "Trsh" to a topic of its own: both silently never got an alert. Now a table names the
//! departments; every other department goes to one default topic, and
//! [`ContactList::department_notes`](crate::ContactList::department_notes) says which
//! departments took that route, and which land on a topic no threshold alerts.

use std::collections::BTreeSet;
use std::fmt;

use crate::{InvalidInput, TopicName};

/// Below this similarity (normalized Damerau-Levenshtein) a listed department is not
/// offered as what an unlisted one meant.
const SUGGESTION_MIN_SIMILARITY: f64 = 0.6;

/// A department as matched: without regard to case and whitespace (`Trash`, `TRASH`,
/// `Street s` and `streets` are one department each way they are written).
pub(crate) fn department_key(department: &str) -> String {
    department
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    /// As written in the table.
    name: String,
    key: String,
    topic: TopicName,
}

/// Which topic each department's contacts are subscribed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepartmentTable {
    listed: Vec<Listed>,
    default_topic: TopicName,
}

/// Where one department's contacts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The topic (short name) the contacts are subscribed to.
    pub topic: TopicName,
    /// Named in the table. A department named like the default topic (`Streets` when the
    /// default is `streets`) counts as named: it lands where its name says.
    pub listed: bool,
    /// For a department the table does not name, the listed department it most resembles
    /// (a likely misspelling: `Trsh` → `Trash`).
    pub suggestion: Option<String>,
}

impl DepartmentTable {
    /// A table from (department, topic short name) pairs and the topic of every other
    /// department. Two departments that match each other (`Trash` and `trash `) are
    /// refused, as is a department with no letter or digit.
    pub fn new<D: Into<String>>(
        departments: impl IntoIterator<Item = (D, TopicName)>,
        default_topic: TopicName,
    ) -> Result<Self, InvalidInput> {
        let mut listed: Vec<Listed> = Vec::new();
        for (name, topic) in departments {
            let name = name.into();
            let key = department_key(&name);
            if !key.chars().any(char::is_alphanumeric) {
                return Err(InvalidInput::Department {
                    department: name,
                    reason: "it has no letters or digits",
                });
            }
            if listed.iter().any(|l| l.key == key) {
                return Err(InvalidInput::Department {
                    department: name,
                    reason:
                        "it is listed twice (departments match without regard to case and spaces)",
                });
            }
            listed.push(Listed { name, key, topic });
        }
        Ok(Self {
            listed,
            default_topic,
        })
    }

    /// The course's split: `Trash` → `trash`, every other department → `streets`.
    pub fn course_default() -> Self {
        let topic = |t: &str| TopicName::new(t).expect("valid topic");
        Self::new([("Trash", topic("trash"))], topic("streets")).expect("valid default")
    }

    /// The topic of departments the table does not name.
    pub fn default_topic(&self) -> &TopicName {
        &self.default_topic
    }

    /// Every topic a department can be routed to: the listed ones and the default.
    pub fn topics(&self) -> BTreeSet<&TopicName> {
        self.listed
            .iter()
            .map(|l| &l.topic)
            .chain([&self.default_topic])
            .collect()
    }

    /// Where the department's contacts go.
    pub fn route(&self, department: &str) -> Route {
        let key = department_key(department);
        if let Some(listed) = self.listed.iter().find(|l| l.key == key) {
            return Route {
                topic: listed.topic.clone(),
                listed: true,
                suggestion: None,
            };
        }
        let named_like_default = key == department_key(self.default_topic.as_str());
        let suggestion = if named_like_default {
            None
        } else {
            self.listed
                .iter()
                .map(|l| (strsim::normalized_damerau_levenshtein(&key, &l.key), l))
                .filter(|(score, _)| *score >= SUGGESTION_MIN_SIMILARITY)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, l)| l.name.clone())
        };
        Route {
            topic: self.default_topic.clone(),
            listed: named_like_default,
            suggestion,
        }
    }
}

impl Default for DepartmentTable {
    fn default() -> Self {
        Self::course_default()
    }
}

/// A department as one contacts list uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepartmentUse {
    /// As the first of its rows wrote it.
    pub department: String,
    /// Where its contacts go.
    pub route: Route,
    /// The lines of its contacts, in file order.
    pub lines: Vec<u64>,
}

/// Something an operator should know about a department of the contacts list: its
/// contacts may not get the alerts they are meant to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepartmentNote {
    /// Not in `notify.departments`: its contacts went to the default topic.
    NotListed {
        /// The department as the contacts file wrote it.
        department: String,
        /// contacts.csv lines (1-based) with it.
        lines: Vec<u64>,
        /// The default topic they went to.
        topic: TopicName,
        /// The listed department it most likely means, if any.
        suggestion: Option<String>,
    },
    /// Its topic is one no threshold alerts: its contacts will never get an alert.
    NeverAlerted {
        /// The department as the contacts file wrote it.
        department: String,
        /// contacts.csv lines (1-based) with it.
        lines: Vec<u64>,
        /// Its topic (short name).
        topic: TopicName,
    },
}

/// At most this many lines are named; the rest are counted.
const LINES_SHOWN: usize = 5;

/// `line 4`, `lines 4, 9`, `lines 4, 9, 12, 15, 20 and 3 more`.
fn write_lines(f: &mut fmt::Formatter<'_>, lines: &[u64]) -> fmt::Result {
    let shown: Vec<String> = lines.iter().take(LINES_SHOWN).map(u64::to_string).collect();
    let word = if lines.len() == 1 { "line" } else { "lines" };
    write!(f, "{word} {}", shown.join(", "))?;
    if lines.len() > LINES_SHOWN {
        write!(f, " and {} more", lines.len() - LINES_SHOWN)?;
    }
    Ok(())
}

impl fmt::Display for DepartmentNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Departments come from the file: escaped, so control characters cannot forge lines.
        match self {
            Self::NotListed {
                department,
                lines,
                topic,
                suggestion,
            } => {
                write!(f, "department \"{}\" (", department.escape_debug())?;
                write_lines(f, lines)?;
                write!(f, ") is not in notify.departments: subscribed to {topic}")?;
                match suggestion {
                    Some(s) => write!(f, "; did you mean \"{}\"?", s.escape_debug()),
                    None => Ok(()),
                }
            }
            Self::NeverAlerted {
                department,
                lines,
                topic,
            } => {
                write!(f, "department \"{}\" (", department.escape_debug())?;
                write_lines(f, lines)?;
                write!(
                    f,
                    ") maps to topic {topic}, which no threshold alerts: its subscribers will never get an alert"
                )
            }
        }
    }
}

/// The notes for each department of a list, in the order the departments appear: first
/// whether it was listed, then whether its topic is alerted by any of `alerted`.
pub(crate) fn notes<'a>(
    departments: &'a [DepartmentUse],
    alerted: &BTreeSet<&TopicName>,
) -> impl Iterator<Item = DepartmentNote> + 'a {
    let alerted: BTreeSet<TopicName> = alerted.iter().map(|t| (*t).clone()).collect();
    departments.iter().flat_map(move |d| {
        let mut notes = Vec::new();
        if !d.route.listed {
            notes.push(DepartmentNote::NotListed {
                department: d.department.clone(),
                lines: d.lines.clone(),
                topic: d.route.topic.clone(),
                suggestion: d.route.suggestion.clone(),
            });
        }
        if !alerted.contains(&d.route.topic) {
            notes.push(DepartmentNote::NeverAlerted {
                department: d.department.clone(),
                lines: d.lines.clone(),
                topic: d.route.topic.clone(),
            });
        }
        notes
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str) -> TopicName {
        TopicName::new(n).unwrap()
    }

    #[test]
    fn the_course_split_sends_trash_to_trash_and_every_other_department_to_streets() {
        let table = DepartmentTable::course_default();
        let topic = |d: &str| table.route(d).topic.to_string();
        assert_eq!(topic("Trash"), "trash");
        assert_eq!(topic("Streets"), "streets");
        assert_eq!(topic("Streets & Sidewalks"), "streets");
        assert_eq!(topic("Storm Water"), "streets");
        assert!(table.route("Trash").listed);
        assert!(
            table.route("Streets").listed,
            "named like the default topic"
        );
        assert!(!table.route("Streets & Sidewalks").listed);
    }

    #[test]
    fn departments_match_without_regard_to_case_and_spaces() {
        let table = DepartmentTable::new(
            [
                ("Trash", name("trash")),
                ("Streets & Sidewalks", name("streets")),
                ("Graffiti", name("graffiti")),
            ],
            name("streets"),
        )
        .unwrap();
        for written in [" TRASH", "trash", "Tr ash", "tRaSh\t"] {
            let route = table.route(written);
            assert_eq!(
                (route.topic.as_str(), route.listed),
                ("trash", true),
                "{written:?}"
            );
        }
        assert!(table.route("streets&sidewalks").listed);
        assert_eq!(table.route("GRAFFITI").topic.as_str(), "graffiti");
        let err = DepartmentTable::new(
            [("Trash", name("trash")), ("TRASH ", name("streets"))],
            name("streets"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("listed twice"), "{err}");
    }

    #[test]
    fn a_misspelled_department_goes_to_the_default_topic_with_the_name_it_resembles() {
        let table = DepartmentTable::course_default();
        let route = table.route("Trsh");
        assert_eq!(route.topic.as_str(), "streets");
        assert!(!route.listed);
        assert_eq!(route.suggestion.as_deref(), Some("Trash"));
        assert_eq!(table.route("Parks").suggestion, None, "nothing close");
    }

    #[test]
    fn notes_name_each_department_once_with_its_lines() {
        let uses = [
            DepartmentUse {
                department: "Trsh".into(),
                route: DepartmentTable::course_default().route("Trsh"),
                lines: vec![4, 9],
            },
            DepartmentUse {
                department: "Graffiti".into(),
                route: Route {
                    topic: name("graffiti"),
                    listed: true,
                    suggestion: None,
                },
                lines: (2..=9).collect(),
            },
        ];
        let (trash, streets) = (name("trash"), name("streets"));
        let alerted = BTreeSet::from([&trash, &streets]);
        let said: Vec<String> = notes(&uses, &alerted).map(|n| n.to_string()).collect();
        assert_eq!(
            said,
            [
                "department \"Trsh\" (lines 4, 9) is not in notify.departments: subscribed to streets; did you mean \"Trash\"?",
                "department \"Graffiti\" (lines 2, 3, 4, 5, 6 and 3 more) maps to topic graffiti, which no threshold alerts: its subscribers will never get an alert",
            ]
        );
    }
}
