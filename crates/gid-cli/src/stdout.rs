//! Standard output that a reader may close early (`gid-admin object list … | head -1`).
//!
//! `println!` panics when the reader has gone ("failed printing to stdout: Broken pipe").
//! Restoring the default SIGPIPE action instead would end the process by a signal at its
//! first write, which loses the exit code a scheduler reads (a run whose summary nobody
//! reads still ran, and alerts in doubt are exit 3) and stops a command mid-way. So output
//! goes through [`write_stdout`] (the [`outln!`](crate::outln) and [`out!`](crate::out)
//! macros): once the reader is gone, later output is dropped and the command ends as it
//! would have, with its own exit code.

use std::fmt;
use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write to stdout failed: the rest of the output has nowhere to go.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);

/// Writes to stdout and flushes. A closed reader (`EPIPE`) ends the output quietly; any
/// other failure (a full disk behind a redirect) is said once on stderr, since the output
/// is lost.
pub fn write_stdout(args: fmt::Arguments<'_>) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if !STDOUT_GONE.swap(true, Ordering::Relaxed) && e.kind() != ErrorKind::BrokenPipe {
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "gid: could not write to standard output ({e}); the rest of the output is lost"
                );
            }
        }
    }
}

/// Whether a failed write means the reader of stdout went away: a command streaming bytes
/// stops there, quietly, as [`write_stdout`] does.
pub fn is_closed_reader(error: &std::io::Error) -> bool {
    error.kind() == ErrorKind::BrokenPipe
}

/// `println!` that ends quietly when the reader of stdout has gone (see the module docs).
#[macro_export]
macro_rules! outln {
    () => {
        $crate::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` that ends quietly when the reader of stdout has gone (see the module docs).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::write_stdout(format_args!($($arg)*))
    };
}
