//! Who is running: an identity for this process that other processes can read from a
//! ledger claim or a run manifest and check.
//!
//! Several gid processes share buckets (a backfill Job's pods, an overlapping CronJob, an
//! operator's rerun). When one finds work claimed by another, it must tell "still running,
//! leave it" from "died, needs a decision". A [`RunOwner`] records the process's run id,
//! host and pid, and — so a pid is never read in the wrong place — the kernel boot and PID
//! namespace it belongs to and the process's start time. [`RunOwner::is_running`] answers
//! only where that is certain; elsewhere callers fall back on a lease.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A process doing gid work, as recorded in claims and manifests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOwner {
    /// Random, one per process: tells two runs apart even on one host.
    pub run_id: String,
    /// The host name the process runs on.
    pub host: String,
    /// Its process id (meaningful only with `pid_scope`).
    pub pid: u32,
    /// `<boot id>/<pid namespace>`: where `pid` means this process. Absent where unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_scope: Option<String>,
    /// The process's start time in clock ticks since boot: a reused pid has another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_start: Option<u64>,
    /// When the run started.
    pub started_at: DateTime<Utc>,
}

impl RunOwner {
    /// This process.
    pub fn current() -> &'static RunOwner {
        static CURRENT: OnceLock<RunOwner> = OnceLock::new();
        CURRENT.get_or_init(|| {
            let pid = std::process::id();
            RunOwner {
                run_id: format!("{:016x}", fastrand::u64(..)),
                host: hostname(),
                pid,
                pid_scope: pid_scope(),
                pid_start: process_start(pid),
                started_at: Utc::now(),
            }
        })
    }

    /// Whether this is the current process.
    pub fn is_current(&self) -> bool {
        self.run_id == Self::current().run_id
    }

    /// `Some(true)` when the owner is this process or a process this one can see running,
    /// `Some(false)` when it certainly ended (same kernel and PID namespace, and its pid is
    /// gone or belongs to a process started later), `None` when this process cannot tell
    /// (another host, container or kernel): then only a lease can say.
    pub fn is_running(&self) -> Option<bool> {
        if self.is_current() {
            return Some(true);
        }
        let here = Self::current();
        let same_scope = self.pid_scope.is_some() && self.pid_scope == here.pid_scope;
        if !same_scope || self.host != here.host {
            return None;
        }
        Some(match (process_start(self.pid), self.pid_start) {
            (Some(now), Some(then)) => now == then,
            (Some(_), None) => true,
            (None, _) => false,
        })
    }
}

impl std::fmt::Display for RunOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "run {} (pid {} on {}, started {})",
            self.run_id,
            self.pid,
            self.host,
            self.started_at.format("%Y-%m-%d %H:%M:%S UTC")
        )
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "unknown-host".to_owned())
}

fn pid_scope() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let namespace = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(format!("{}/{}", boot.trim(), namespace.display()))
}

/// Field 22 of `/proc/<pid>/stat` (start time in clock ticks after boot); `None` when the
/// process does not exist.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_running_and_a_finished_child_is_not() {
        let me = RunOwner::current();
        assert_eq!(me.is_running(), Some(true));
        assert!(me.pid_start.is_some() && me.pid_scope.is_some());

        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let gone = RunOwner {
            run_id: "0".into(),
            pid,
            pid_start: Some(1),
            ..me.clone()
        };
        assert_eq!(gone.is_running(), Some(false));

        let elsewhere = RunOwner {
            run_id: "1".into(),
            host: "another-pod".into(),
            ..me.clone()
        };
        assert_eq!(
            elsewhere.is_running(),
            None,
            "another host: only a lease can tell"
        );
    }

    #[test]
    fn a_reused_pid_is_not_the_owner() {
        let me = RunOwner::current();
        let earlier_process_with_my_pid = RunOwner {
            run_id: "2".into(),
            pid_start: me.pid_start.map(|t| t.saturating_sub(1)),
            ..me.clone()
        };
        assert_eq!(earlier_process_with_my_pid.is_running(), Some(false));
    }
}
