//! Test harness for gid's end-to-end tests (`tests/`): locating the built binaries,
//! running them against a scratch data root, and reaching the shared moto_server that
//! `make test` starts.

// The end-to-end tests' harness, not a library anyone builds on.
#![allow(missing_docs)]

pub mod fault_proxy;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The stages that make the site (`ingest`, `aggregate`, `publish`), as arguments.
pub const SITE_STAGES: &[&str] = &["--stage", "ingest,aggregate,publish"];

/// January 2019's site: [`SITE_STAGES`] of `--month 2019-01`.
pub const JANUARY_SITE: &[&str] = &["--month", "2019-01", "--stage", "ingest,aggregate,publish"];

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

/// The repository: where cargo says the tested package is when it runs the tests, else
/// where this was compiled. (A target dir shared by clones at different paths can hold a
/// test binary another clone built: cargo's fingerprints do not include the absolute path,
/// so the compile-time path may name that other clone.)
pub fn repo_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

/// The repository's config directory.
pub fn config_dir() -> PathBuf {
    repo_root().join("config")
}

/// Runs a gid binary on the local profile with `data_root` as its data root and the
/// local outbox beside it (`<data_root>/outbox`).
pub fn run_local(name: &str, data_root: &Path, args: &[&str]) -> Output {
    let outbox = data_root.join("outbox");
    run_with_env(
        name,
        args,
        &[
            ("GID__LOCAL__DATA_ROOT", data_root.to_str().unwrap()),
            ("GID__NOTIFY__OUTBOX_DIR", outbox.to_str().unwrap()),
        ],
        "local",
    )
}

/// A gid binary set up as the tests run it: the repository's config, `profile`, no log
/// filter from the caller's shell. Alerts go out to topics without subscribers
/// (`notify.allow_unsubscribed`): most tests are about the site and subscribe nobody;
/// tests of alert delivery subscribe contacts, and the refusal has its own test.
pub fn gid_command(name: &str, profile: &str) -> Command {
    let mut command = Command::new(bin(name));
    command
        .arg("--config-dir")
        .arg(config_dir())
        .arg("--profile")
        .arg(profile)
        .env_remove("RUST_LOG")
        .env_remove("GID__PROFILE")
        .env("GID__NOTIFY__ALLOW_UNSUBSCRIBED", "true");
    command
}

/// Runs a gid binary with extra environment variables and a profile.
pub fn run_with_env(name: &str, args: &[&str], env: &[(&str, &str)], profile: &str) -> Output {
    let mut command = gid_command(name, profile);
    command.args(args);
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

/// Asserts that the command failed and said `needle` on stderr (shown when it did not).
pub fn assert_failure_says(output: &Output, needle: &str) {
    assert!(
        !output.status.success(),
        "expected a failure: {}",
        stdout(output)
    );
    assert!(stderr(output).contains(needle), "{}", stderr(output));
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `docs/run-summary.schema.json`: the shape of `--output json` documents.
pub fn run_summary_schema() -> PathBuf {
    repo_root().join("docs/run-summary.schema.json")
}

/// Checks a run summary document against `docs/run-summary.schema.json` with Python's
/// `jsonschema` (draft 2020-12, formats checked), which `make test-deps` installs with
/// moto; panics naming every violation.
pub fn assert_valid_run_summary(document: &serde_json::Value) {
    use std::io::Write;
    const VALIDATE: &str = r#"
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
cls = jsonschema.Draft202012Validator
cls.check_schema(schema)
validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
errors = sorted(validator.iter_errors(json.load(sys.stdin)), key=lambda e: list(e.absolute_path))
for e in errors:
    print("/".join(map(str, e.absolute_path)) or "(document)", ":", e.message)
sys.exit(1 if errors else 0)
"#;
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(VALIDATE)
        .arg(run_summary_schema())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (make test-deps installs jsonschema)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(document.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the run summary does not match docs/run-summary.schema.json:\n{}{}\ndocument: {document:#}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The run summary a binary printed with `--output json`: its whole stdout, exactly one
/// JSON document on one line, valid against the schema, whose `exit_code` is the
/// process's exit code.
pub fn run_summary(output: &Output) -> serde_json::Value {
    let text = stdout(output);
    let line = text.strip_suffix('\n').unwrap_or_else(|| {
        panic!(
            "--output json prints one line ending in a newline, got:\n{text}\n--- stderr\n{}",
            stderr(output)
        )
    });
    assert!(
        !line.contains('\n'),
        "--output json prints one line and nothing else on stdout, got:\n{text}"
    );
    let document: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{text}"));
    assert_valid_run_summary(&document);
    assert_eq!(
        document["exit_code"].as_i64(),
        output.status.code().map(i64::from),
        "the document's exit_code is the process's"
    );
    document
}

/// Runs a gid binary on the local profile (see [`run_local`]) with `--output json` and
/// returns the process's output and its run summary.
pub fn run_local_json(name: &str, data_root: &Path, args: &[&str]) -> (Output, serde_json::Value) {
    let args: Vec<&str> = args.iter().copied().chain(["--output", "json"]).collect();
    let output = run_local(name, data_root, &args);
    let document = run_summary(&output);
    (output, document)
}

/// A month of a run summary, by `YYYY-MM`.
pub fn summary_month<'a>(document: &'a serde_json::Value, month: &str) -> &'a serde_json::Value {
    document["months"]
        .as_array()
        .and_then(|months| months.iter().find(|m| m["month"] == month))
        .unwrap_or_else(|| panic!("no month {month} in {document:#}"))
}

/// A stage of a run summary's month (`ingest`, `aggregate`, `publish`, `notify`, `enrich`).
pub fn summary_stage<'a>(
    document: &'a serde_json::Value,
    month: &str,
    stage: &str,
) -> &'a serde_json::Value {
    summary_month(document, month)["stages"]
        .as_array()
        .and_then(|stages| stages.iter().find(|s| s["stage"] == stage))
        .unwrap_or_else(|| panic!("no stage {stage} in {month} of {document:#}"))
}

/// What a run's `<service>: N requests, R retries (T throttled, E server errors)` line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLine {
    pub requests: u64,
    pub retries: u64,
    pub throttled: u64,
}

/// The request line monthly-report prints for `service` (`s3`, `sns`; also when a month
/// failed); `None` when it printed none, a panic when the line is not in this shape.
pub fn request_line(stdout: &str, service: &str) -> Option<RequestLine> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(service)?.strip_prefix(": "))?;
    // "31 requests, 5 retries (5 throttled, 0 server errors)"
    let number = |part: &str| part.split(' ').next()?.parse().ok();
    let parse = || {
        let (counts, answers) = line.split_once(" (")?;
        let (requests, retries) = counts.split_once(", ")?;
        Some(RequestLine {
            requests: number(requests)?,
            retries: number(retries)?,
            throttled: number(answers)?,
        })
    };
    Some(parse().unwrap_or_else(|| panic!("unexpected request line {service}: {line}")))
}

/// The endpoint of the moto_server `make test` started (scripts/with-moto.sh).
/// Tests that need it fail loudly rather than skip when it is missing.
pub fn moto_endpoint() -> String {
    std::env::var("GID_TEST_MOTO_ENDPOINT").expect(
        "GID_TEST_MOTO_ENDPOINT is not set: run the AWS tests through `make test` \
         (scripts/with-moto.sh starts moto_server on 127.0.0.1)",
    )
}

/// The moto_server reserved for reading back SNS state through `/moto-api/data.json`
/// (see scripts/with-moto.sh for why it is separate).
pub fn moto_sns_endpoint() -> String {
    std::env::var("GID_TEST_MOTO_SNS_ENDPOINT")
        .expect("GID_TEST_MOTO_SNS_ENDPOINT is not set: run the AWS tests through `make test`")
}

/// A unique lowercase suffix for names in the shared moto_server (buckets, topics).
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{}-{nanos:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// An anonymous HTTP GET (what a reader of the public site sees): the status code and
/// the body, whatever the status.
pub fn http_get(url: &str) -> (u16, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let body = response
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .unwrap_or_else(|e| panic!("GET {url}: reading the body: {e}"));
    (response.status().as_u16(), body)
}

/// One canned HTTP response of a [`StubServer`].
#[derive(Debug, Clone)]
pub struct StubResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// A binary body (e.g. CBOR), sent instead of `body` when set.
    pub body_bytes: Option<Vec<u8>>,
}

impl StubResponse {
    /// An AWS-style XML error (as S3 sends them).
    pub fn s3_error(status: u16, code: &str, message: &str) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), "application/xml".into())],
            body: format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>stub</RequestId></Error>"
            ),
            body_bytes: None,
        }
    }

    /// A 200 answer of the awsJson1_1 protocol (Comprehend, Rekognition).
    pub fn json(body: &str) -> Self {
        Self {
            status: 200,
            headers: vec![("Content-Type".into(), "application/x-amz-json-1.1".into())],
            body: body.to_owned(),
            body_bytes: None,
        }
    }

    /// An AWS JSON-protocol error, e.g. `(400, "ThrottlingException", "Rate exceeded")`.
    pub fn json_error(status: u16, error_type: &str, message: &str) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), "application/x-amz-json-1.1".into())],
            body: format!(r#"{{"__type":"{error_type}","message":"{message}"}}"#),
            body_bytes: None,
        }
    }

    /// A Smithy RPC v2 CBOR answer (the protocol aws-sdk-translate speaks): `body` is CBOR.
    pub fn cbor(status: u16, body: Vec<u8>) -> Self {
        Self {
            status,
            headers: vec![
                ("Content-Type".into(), "application/cbor".into()),
                ("smithy-protocol".into(), "rpc-v2-cbor".into()),
            ],
            body: String::new(),
            body_bytes: Some(body),
        }
    }

    pub fn ok(headers: &[(&str, &str)], body: &str) -> Self {
        Self {
            status: 200,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.to_owned(),
            body_bytes: None,
        }
    }
}

/// What a [`StubServer`] received: the same parsed request the fault proxy sees.
pub type StubRequest = fault_proxy::ProxyRequest;

/// An HTTP server on 127.0.0.1 answering each request with the next canned response
/// (the last one repeats), recording every request. For behaviours moto does not emulate
/// (ACL-less buckets, throttling bursts). It stops when dropped.
pub struct StubServer {
    pub endpoint: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<StubRequest>>>,
    server: std::sync::Arc<tiny_http::Server>,
}

impl StubServer {
    pub fn start(responses: Vec<StubResponse>) -> Self {
        let server =
            std::sync::Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("a free port"));
        let address = server.server_addr().to_ip().expect("a TCP address");
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (seen, serving) = (requests.clone(), server.clone());
        std::thread::spawn(move || {
            // Ends when `Drop` unblocks the server.
            for (served, mut request) in serving.incoming_requests().enumerate() {
                let mut body = Vec::new();
                if std::io::Read::read_to_end(request.as_reader(), &mut body).is_err() {
                    continue;
                }
                seen.lock().unwrap().push(StubRequest {
                    method: request.method().to_string(),
                    path: request.url().to_owned(),
                    headers: request
                        .headers()
                        .iter()
                        .map(|h| (h.field.to_string(), h.value.to_string()))
                        .collect(),
                    body,
                });
                let _ = request.respond(responses[served.min(responses.len() - 1)].to_tiny());
            }
        });
        Self {
            endpoint: format!("http://{address}"),
            requests,
            server,
        }
    }

    pub fn requests(&self) -> Vec<StubRequest> {
        self.requests.lock().unwrap().clone()
    }
}

impl StubResponse {
    fn to_tiny(&self) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
        let body = self
            .body_bytes
            .clone()
            .unwrap_or_else(|| self.body.as_bytes().to_vec());
        self.headers.iter().fold(
            tiny_http::Response::from_data(body).with_status_code(self.status),
            |response, (name, value)| {
                response.with_header(
                    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
                        .expect("a valid header"),
                )
            },
        )
    }
}

impl Drop for StubServer {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

/// A small HTML checker for gid's generated pages (maud output: well-formed, attribute
/// values in double quotes). It tokenises tags and text the way a browser's tokenizer
/// starts a tag (`<` then a letter, `/` or `!`), so an injected tag or attribute cannot
/// hide from it behind odd spacing or case.
pub mod html {
    /// One start or end tag.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Tag {
        /// Lowercased; `/p` for an end tag, `!doctype` for the doctype.
        pub name: String,
        /// Attribute names (lowercased) and values (entities decoded).
        pub attributes: Vec<(String, String)>,
    }

    /// The tags of a page in order (end tags as `/name`, the doctype as `!doctype`), and its
    /// text content with character references decoded — tokenized by html5gum, which follows
    /// the WHATWG tokenizer a browser uses, so an injection that a browser would read as a
    /// tag is read as one here. The contents of `<style>` and `<script>` are raw text, as in a
    /// browser, and not part of the text.
    pub fn parse(page: &str) -> (Vec<Tag>, String) {
        use html5gum::{DefaultEmitter, Token, Tokenizer};
        let text_of = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        let mut emitter = DefaultEmitter::default();
        emitter.naively_switch_states(true);
        let (mut tags, mut text) = (Vec::new(), String::new());
        let mut in_raw_text = false;
        for token in Tokenizer::new_with_emitter(page, emitter).flatten() {
            match token {
                Token::StartTag(tag) => {
                    let name = text_of(&tag.name);
                    in_raw_text = name == "style" || name == "script";
                    let attributes = tag
                        .attributes
                        .iter()
                        .map(|(name, value)| (text_of(name), text_of(&value.value)))
                        .collect();
                    tags.push(Tag { name, attributes });
                }
                Token::EndTag(tag) => {
                    in_raw_text = false;
                    tags.push(Tag {
                        name: format!("/{}", text_of(&tag.name)),
                        attributes: Vec::new(),
                    });
                }
                Token::Doctype(_) => tags.push(Tag {
                    name: "!doctype".to_owned(),
                    attributes: Vec::new(),
                }),
                Token::String(chars) if !in_raw_text => text.push_str(&text_of(&chars.value)),
                Token::String(_) | Token::Comment(_) | Token::Error(_) => {}
            }
        }
        (tags, text)
    }

    /// The tags gid's pages are made of; anything else on a page was injected.
    pub const ALLOWED_TAGS: [&str; 34] = [
        "!doctype", "html", "head", "meta", "title", "style", "body", "p", "a", "h1", "h2", "h3",
        "ol", "ul", "li", "table", "caption", "thead", "tbody", "tfoot", "tr", "th", "td", "svg",
        "rect", "circle", "polyline", "time", "text", "header", "nav", "span", "strong", "link",
    ];

    /// Everything on a page that could run script or leave the site: returns one line per
    /// problem (empty when the page is inert). gid pages have no script at all by design.
    pub fn executable_content(page: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if page.to_ascii_lowercase().contains("<script") {
            problems.push("the page contains \"<script\"".to_owned());
        }
        // Style sheets that load or run something (text elsewhere is escaped data).
        let lower = page.to_ascii_lowercase();
        let mut rest = lower.as_str();
        while let Some(open) = rest.find("<style") {
            let close = rest[open..]
                .find("</style")
                .map_or(rest.len(), |n| open + n);
            for needle in ["@import", "url(", "expression("] {
                if rest[open..close].contains(needle) {
                    problems.push(format!("a style sheet contains {needle:?}"));
                }
            }
            rest = &rest[close..];
        }
        let (tags, _) = parse(page);
        let (mut in_head, mut styles) = (false, 0);
        for tag in &tags {
            match tag.name.as_str() {
                "head" => in_head = true,
                "/head" => in_head = false,
                "style" => {
                    styles += 1;
                    if !in_head || styles > 1 {
                        problems.push("a <style> element beyond the page's own".to_owned());
                    }
                }
                _ => {}
            }
            let name = tag.name.trim_start_matches('/');
            if !ALLOWED_TAGS.contains(&name) {
                problems.push(format!("unexpected tag <{}>", tag.name));
            }
            for (attr, value) in &tag.attributes {
                if attr.starts_with("on") {
                    problems.push(format!("event handler {attr}={value:?} on <{}>", tag.name));
                }
                if [
                    "href",
                    "src",
                    "xlink:href",
                    "action",
                    "formaction",
                    "srcdoc",
                ]
                .contains(&attr.as_str())
                    && !is_safe_link(value)
                {
                    problems.push(format!(
                        "{attr}={value:?} on <{}> is not a relative or http(s)/file link",
                        tag.name
                    ));
                }
                if attr == "style"
                    || (attr == "http-equiv" && value.eq_ignore_ascii_case("refresh"))
                {
                    problems.push(format!("{attr}={value:?} on <{}>", tag.name));
                }
            }
        }
        problems
    }

    /// `./x`, `../x`, a bare relative file name (no scheme), `http(s)://` or `file://`.
    pub fn is_safe_link(href: &str) -> bool {
        let lower: String = href
            .chars()
            .filter(|c| !c.is_ascii_whitespace() && !c.is_control())
            .collect::<String>()
            .to_ascii_lowercase();
        if lower.starts_with("./")
            || lower.starts_with("../")
            || lower.starts_with("http://")
            || lower.starts_with("https://")
            || lower.starts_with("file://")
        {
            return true;
        }
        // A relative path: no scheme before the first '/', '?' or '#'.
        let head = lower.split(['/', '?', '#']).next().unwrap_or_default();
        !head.contains(':') && !lower.starts_with("//") && !lower.is_empty()
    }

    /// Every `href` of a page, in order.
    /// The `href` of the first link whose `attr` is `value` (e.g. `rel="next"`).
    pub fn link_with(page: &str, attr: &str, value: &str) -> Option<String> {
        parse(page)
            .0
            .into_iter()
            .filter(|t| t.name == "a")
            .find(|t| t.attributes.iter().any(|(a, v)| a == attr && v == value))
            .and_then(|t| t.attributes.into_iter().find(|(a, _)| a == "href"))
            .map(|(_, v)| v)
    }

    /// The `id` of the `li` or `h2` that holds the element with id `anchor` (where a link
    /// to `#anchor` lands), and the hrefs of the links inside that `li`.
    pub fn landing(page: &str, anchor: &str) -> Option<(String, Vec<String>)> {
        let tags = parse(page).0;
        let id_of = |t: &Tag| {
            t.attributes
                .iter()
                .find(|(a, _)| a == "id")
                .map(|(_, v)| v.clone())
        };
        let at = tags
            .iter()
            .position(|t| id_of(t).as_deref() == Some(anchor))?;
        let start = tags[..=at]
            .iter()
            .rposition(|t| t.name == "li" || t.name == "h2")?;
        let end_name = format!("/{}", tags[start].name);
        let links = tags[start..]
            .iter()
            .take_while(|t| t.name != end_name)
            .flat_map(|t| t.attributes.iter())
            .filter(|(a, _)| a == "href")
            .map(|(_, v)| v.clone())
            .collect();
        Some((id_of(&tags[start])?, links))
    }

    pub fn hrefs(page: &str) -> Vec<String> {
        parse(page)
            .0
            .into_iter()
            .flat_map(|t| t.attributes)
            .filter(|(a, _)| a == "href")
            .map(|(_, v)| v)
            .collect()
    }
}
