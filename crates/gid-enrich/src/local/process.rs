//! The local engines that are programs (Tesseract, Apertium), run one way.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;

/// Runs `program args` with `input` on its stdin and answers its stdout, or why it did not
/// run (naming the Debian `packages` that install it) or failed (its exit status and
/// stderr). The input is written beside the read, so a program that answers while still
/// reading cannot block on a full pipe. A program that stops reading early and exits with
/// success has answered: its status says more than the broken pipe.
pub(crate) async fn run_engine(
    program: &str,
    args: &[&str],
    input: Vec<u8>,
    packages: &str,
) -> Result<Vec<u8>, String> {
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!("cannot start `{program}` ({e}); install it with `make engines` (Debian {packages})")
        })?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let writer = tokio::spawn(async move {
        stdin.write_all(&input).await?;
        stdin.shutdown().await
    });
    let output = child
        .wait_with_output()
        .await
        .map_err(|e| format!("{program} failed: {e}"))?;
    let _ = writer.await;
    if !output.status.success() {
        return Err(format!(
            "`{program} {}` exited with {}: {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(output.stdout)
}
