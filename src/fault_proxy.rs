//! A fault-injecting HTTP proxy for tests: it sits between gid and moto_server on
//! 127.0.0.1 and, by rule, answers S3 `SlowDown` (503) or `InternalError` (500), SNS
//! `Throttling`, closes the connection half-way through a response body, answers too
//! late (past the client's timeout), or runs a hook (a test kills the gid process there).
//! Every other request is forwarded unchanged. Each connection carries one request
//! (`Connection: close`), which keeps the proxy simple and the faults deterministic.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct ProxyRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ProxyRequest {
    /// The body as text (lossy UTF-8), for JSON and query protocols.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The SNS/query-protocol action (`Publish`, `CreateTopic`, ...), if any.
    pub fn action(&self) -> Option<String> {
        let body = String::from_utf8_lossy(&self.body);
        body.split('&')
            .find_map(|kv| kv.strip_prefix("Action="))
            .map(str::to_owned)
    }
}

/// What to do to a matching request.
#[derive(Clone)]
pub enum Fault {
    /// 503 with S3's `SlowDown` error.
    SlowDown,
    /// 500 with S3's `InternalError`.
    InternalError,
    /// 400 with SNS's `Throttling` error.
    SnsThrottling,
    /// Forward, then send the headers and half the body and close the connection.
    CloseMidBody,
    /// Forward, but answer only after this long (past the client's attempt timeout).
    Delay(Duration),
    /// Run the hook (e.g. kill the client) and drop the connection unanswered.
    Hook(Arc<dyn Fn() + Send + Sync>),
    /// Run the hook (e.g. send the client SIGTERM), then forward and answer as usual: the
    /// request in flight completes.
    HookThenForward(Arc<dyn Fn() + Send + Sync>),
    /// Forward, run the hook (which may block, holding the answer back), then answer:
    /// the client gets a response as of when it asked, however late it arrives.
    ForwardThenHook(Arc<dyn Fn() + Send + Sync>),
}

impl Fault {
    fn name(&self) -> &'static str {
        match self {
            Fault::SlowDown => "slowdown-503",
            Fault::InternalError => "internal-error-500",
            Fault::SnsThrottling => "sns-throttling",
            Fault::CloseMidBody => "close-mid-body",
            Fault::Delay(_) => "slow-response",
            Fault::Hook(_) => "hook",
            Fault::HookThenForward(_) => "hook-then-forward",
            Fault::ForwardThenHook(_) => "forward-then-hook",
        }
    }
}

type Matcher = Arc<dyn Fn(&ProxyRequest) -> bool + Send + Sync>;

/// Which matching requests a rule faults: the n-th (1-based) matching request and every
/// `period`-th after it, at most `limit` times.
#[derive(Clone)]
pub struct Rule {
    matcher: Matcher,
    fault: Fault,
    first: u64,
    period: u64,
    limit: u64,
    seen: Arc<AtomicU64>,
    fired: Arc<AtomicU64>,
}

impl Rule {
    /// Faults every matching request (until `limit`).
    pub fn new(
        matcher: impl Fn(&ProxyRequest) -> bool + Send + Sync + 'static,
        fault: Fault,
    ) -> Self {
        Self {
            matcher: Arc::new(matcher),
            fault,
            first: 1,
            period: 1,
            limit: u64::MAX,
            seen: Arc::default(),
            fired: Arc::default(),
        }
    }

    /// Starts at the `first`-th matching request, then every `period`-th.
    pub fn every(mut self, first: u64, period: u64) -> Self {
        self.first = first.max(1);
        self.period = period.max(1);
        self
    }

    /// At most `limit` faults.
    pub fn limit(mut self, limit: u64) -> Self {
        self.limit = limit;
        self
    }

    fn fires(&self, request: &ProxyRequest) -> bool {
        if !(self.matcher)(request) {
            return false;
        }
        let n = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        let due = n >= self.first && (n - self.first).is_multiple_of(self.period);
        if due && self.fired.fetch_add(1, Ordering::SeqCst) < self.limit {
            return true;
        }
        false
    }
}

/// Counts of what the proxy did.
#[derive(Debug, Default)]
pub struct ProxyStats {
    pub requests: AtomicU64,
    faults: Mutex<Vec<&'static str>>,
}

impl ProxyStats {
    /// Faults injected, by kind.
    pub fn faults(&self) -> std::collections::BTreeMap<&'static str, usize> {
        let mut map = std::collections::BTreeMap::new();
        for f in self.faults.lock().unwrap().iter() {
            *map.entry(*f).or_default() += 1;
        }
        map
    }

    pub fn total_faults(&self) -> usize {
        self.faults.lock().unwrap().len()
    }
}

/// The running proxy; it stops when dropped.
pub struct FaultProxy {
    pub endpoint: String,
    pub stats: Arc<ProxyStats>,
    stop: Arc<AtomicBool>,
}

/// Reads one HTTP/1.1 request: line, headers, and a Content-Length or chunked body.
pub(crate) fn read_request(reader: &mut impl BufRead) -> Option<ProxyRequest> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let mut request = ProxyRequest {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    if request
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        // Keep the chunked framing as it was: it is forwarded byte for byte.
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line).ok()?;
            request.body.extend_from_slice(size_line.as_bytes());
            let size = usize::from_str_radix(size_line.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            request.body.extend_from_slice(&chunk);
            if size == 0 {
                break;
            }
        }
    } else if let Some(length) = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
    {
        let mut body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
        request.body = body;
    }
    Some(request)
}

fn forward(upstream: &str, request: &ProxyRequest) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(upstream)?;
    let mut head = format!("{} {} HTTP/1.1\r\n", request.method, request.path);
    for (k, v) in &request.headers {
        if !k.eq_ignore_ascii_case("connection") {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(&request.body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    Ok(response)
}

/// Splits a raw response into its header block (with `Connection: close` forced) and body.
fn close_connection(response: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(response.len());
    let head = String::from_utf8_lossy(&response[..split]);
    let mut out = String::new();
    for line in head.split("\r\n") {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    let body = response.get(split + 4..).unwrap_or_default().to_vec();
    (out.into_bytes(), body)
}

fn error_response(status: u16, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} Fault\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn s3_error(status: u16, code: &str, message: &str) -> Vec<u8> {
    error_response(
        status,
        "application/xml",
        &format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>fault</RequestId></Error>"),
    )
}

fn serve(mut client: TcpStream, upstream: &str, rules: &[Rule], stats: &ProxyStats) {
    let Some(request) = read_request(&mut BufReader::new(client.try_clone().unwrap())) else {
        return;
    };
    stats.requests.fetch_add(1, Ordering::SeqCst);
    let fault = rules
        .iter()
        .find(|r| r.fires(&request))
        .map(|r| r.fault.clone());
    if let Some(f) = &fault {
        stats.faults.lock().unwrap().push(f.name());
    }
    let _ = match fault {
        Some(Fault::SlowDown) => client.write_all(&s3_error(503, "SlowDown", "Please reduce your request rate.")),
        Some(Fault::InternalError) => client.write_all(&s3_error(500, "InternalError", "We encountered an internal error. Please try again.")),
        Some(Fault::SnsThrottling) => client.write_all(&error_response(
            400,
            "text/xml",
            "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>fault</RequestId></ErrorResponse>",
        )),
        Some(Fault::Hook(hook)) => {
            hook();
            Ok(())
        }
        Some(Fault::HookThenForward(hook)) => {
            hook();
            forward(upstream, &request).and_then(|r| {
                let (head, body) = close_connection(&r);
                client.write_all(&head).and_then(|()| client.write_all(&body))
            })
        }
        Some(Fault::ForwardThenHook(hook)) => forward(upstream, &request).and_then(|r| {
            hook();
            let (head, body) = close_connection(&r);
            client.write_all(&head).and_then(|()| client.write_all(&body))
        }),
        Some(Fault::CloseMidBody) => match forward(upstream, &request) {
            Ok(response) => {
                let (head, body) = close_connection(&response);
                client
                    .write_all(&head)
                    .and_then(|()| client.write_all(&body[..body.len() / 2]))
            }
            Err(e) => Err(e),
        },
        Some(Fault::Delay(wait)) => {
            let response = forward(upstream, &request);
            std::thread::sleep(wait);
            response.and_then(|r| {
                let (head, body) = close_connection(&r);
                client.write_all(&head).and_then(|()| client.write_all(&body))
            })
        }
        None => forward(upstream, &request).and_then(|r| {
            let (head, body) = close_connection(&r);
            client.write_all(&head).and_then(|()| client.write_all(&body))
        }),
    };
    let _ = client.shutdown(std::net::Shutdown::Both);
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str, rules: Vec<Rule>) -> Self {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let stats = Arc::new(ProxyStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (stats2, stop2) = (stats.clone(), stop.clone());
        let rules = Arc::new(rules);
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        let (upstream, rules, stats) =
                            (upstream.clone(), rules.clone(), stats2.clone());
                        std::thread::spawn(move || serve(stream, &upstream, &rules, &stats));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Self {
            endpoint,
            stats,
            stop,
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
