//! Test harness for gid's end-to-end tests (`tests/`): locating the built binaries,
//! running them against a scratch data root, and reaching the shared moto_server that
//! `make test` starts.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A built gid binary (`monthly-report`, `gid-admin`, ...). `make test` builds them first.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/<test> → target/debug/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `make test` (or `cargo build --workspace --bins` first)",
        path.display()
    );
    path
}

/// The repository's config directory.
pub fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

/// Runs a gid binary on the local profile with `data_root` as its data root.
pub fn run_local(name: &str, data_root: &Path, args: &[&str]) -> Output {
    run_with_env(
        name,
        args,
        &[("GID__LOCAL__DATA_ROOT", data_root.to_str().unwrap())],
        "local",
    )
}

/// Runs a gid binary with extra environment variables and a profile.
pub fn run_with_env(name: &str, args: &[&str], env: &[(&str, &str)], profile: &str) -> Output {
    let mut command = Command::new(bin(name));
    command
        .arg("--config-dir")
        .arg(config_dir())
        .arg("--profile")
        .arg(profile)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("GID__PROFILE");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("binary runs")
}

/// Asserts a command succeeded, showing its output if not.
pub fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "command failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The endpoint of the moto_server `make test` started (scripts/with-moto.sh).
/// Tests that need it fail loudly rather than skip when it is missing.
pub fn moto_endpoint() -> String {
    std::env::var("GID_TEST_MOTO_ENDPOINT").expect(
        "GID_TEST_MOTO_ENDPOINT is not set: run the AWS tests through `make test` \
         (scripts/with-moto.sh starts moto_server on 127.0.0.1)",
    )
}
