//! Offline engines of the local backend: everything runs on this machine, from files that
//! `make models` installs; nothing is fetched at run time.

pub mod labels;
