//! The HTTP worker: serves a proxy by calling HTTP services. A request body is an HTTP/1.1
//! request message (see [`message`]); the reply is the HTTP/1.1 response message, with the
//! status as its rcode.
//!
//! Outcomes: 2xx and 3xx are a success; 4xx an application failure with rcode = status, not
//! retried (but 408 and 429, which say "later", are retried); 5xx, connection errors and
//! timeouts are "retry later", so the hub's retry policy applies. The request's remaining time
//! bounds the whole exchange, and a request whose time is up before it starts is not sent.

pub mod message;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};

use super::{Request, Responder, Response, Service};
use message::{RequestMessage, Target};

/// Which built-in roots TLS trusts (beside `--ca-file`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Roots {
    /// The system's store and the webpki (Mozilla) roots.
    Both,
    /// The webpki (Mozilla) roots compiled in.
    Webpki,
    /// The system's certificate store.
    System,
    /// None: only `--ca-file`.
    None,
}

impl std::str::FromStr for Roots {
    type Err = String;
    fn from_str(s: &str) -> Result<Roots, String> {
        match s {
            "both" => Ok(Roots::Both),
            "webpki" => Ok(Roots::Webpki),
            "system" => Ok(Roots::System),
            "none" => Ok(Roots::None),
            _ => Err(format!("'{s}': expected both, webpki, system or none")),
        }
    }
}

/// What the HTTP worker calls and how.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Relative request paths are appended to this URL (`https://api.example.com/v1`).
    pub base_url: String,
    /// Hosts (`name` or `name:port`) that absolute URLs in requests may name; the base URL's
    /// host is always allowed.
    pub allow_hosts: Vec<String>,
    /// Requests in flight at once (also the capacity announced to the hub).
    pub concurrency: usize,
    /// The time limit of a request that has no deadline of its own.
    pub timeout: Duration,
    /// The longest a connection may take to open.
    pub connect_timeout: Duration,
    /// The largest response body passed on; a larger one fails the request.
    pub max_response: usize,
    /// The built-in roots TLS trusts.
    pub roots: Roots,
    /// Extra trusted CA certificates (PEM).
    pub ca_file: Option<PathBuf>,
    /// A client certificate chain and its key (PEM), for services that want one.
    pub client_cert: Option<PathBuf>,
    /// The key of `client_cert` (PEM).
    pub client_key: Option<PathBuf>,
    /// Headers sent with every request unless the request sets the same header.
    pub headers: Vec<(String, String)>,
    /// `Authorization: Bearer <token>` unless the request sets Authorization.
    pub bearer_token: Option<String>,
    /// `user:password` for `Authorization: Basic` unless the request sets Authorization.
    pub basic_auth: Option<String>,
    /// Speak HTTP/2 without TLS (over TLS it is negotiated).
    pub http2_prior_knowledge: bool,
    /// A header set to a key that stays the same across the retries of one request (for
    /// services that deduplicate, such as `Idempotency-Key`).
    pub idempotency_header: Option<String>,
}

impl HttpConfig {
    /// Defaults for `base_url`: 64 in flight, 30 s without a deadline, 8 MiB responses.
    pub fn new(base_url: impl Into<String>) -> HttpConfig {
        HttpConfig {
            base_url: base_url.into(),
            allow_hosts: Vec::new(),
            concurrency: 64,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_response: 8 << 20,
            roots: Roots::Both,
            ca_file: None,
            client_cert: None,
            client_key: None,
            headers: Vec::new(),
            bearer_token: None,
            basic_auth: None,
            http2_prior_knowledge: false,
            idempotency_header: None,
        }
    }
}

/// The HTTP worker as a [`Service`]: each request runs as a task of its own single-threaded
/// runtime, which also runs the worker loop.
pub struct HttpService {
    inner: Arc<Inner>,
    rt: tokio::runtime::Runtime,
}

struct Inner {
    client: reqwest::Client,
    base: reqwest::Url,
    allow: Vec<String>,
    timeout: Duration,
    max_response: usize,
    idempotency: Option<HeaderName>,
}

impl HttpService {
    /// Checks the configuration, reads the certificate files and builds the client.
    pub fn new(cfg: &HttpConfig) -> Result<HttpService, String> {
        let base = reqwest::Url::parse(&cfg.base_url)
            .map_err(|e| format!("--base-url '{}': {e}", cfg.base_url))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(format!(
                "--base-url '{}': an http:// or https:// URL with a host is needed",
                cfg.base_url
            ));
        }
        let mut allow: Vec<String> = cfg
            .allow_hosts
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        allow.push(host_port(&base));
        let client = build_client(cfg)?;
        let idempotency = match &cfg.idempotency_header {
            None => None,
            Some(h) => Some(
                HeaderName::from_bytes(h.as_bytes())
                    .map_err(|_| format!("--idempotency-header '{h}' is not a header name"))?,
            ),
        };
        // One thread: the worker loop and the requests' tasks share it (see Service::runtime);
        // more throughput comes from more workers (`dco worker http --threads`).
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the HTTP runtime: {e}"))?;
        Ok(HttpService {
            inner: Arc::new(Inner {
                client,
                base,
                allow,
                timeout: cfg.timeout,
                max_response: cfg.max_response,
                idempotency,
            }),
            rt,
        })
    }
}

impl Service for HttpService {
    fn runtime(&self) -> Option<&tokio::runtime::Runtime> {
        Some(&self.rt)
    }

    fn start(&self, mut req: Request, responder: Responder) {
        let inner = self.inner.clone();
        self.rt.spawn(async move {
            let cancel = req.cancel_signal();
            let answer = tokio::select! {
                r = inner.run(&mut req) => r,
                () = cancel.cancelled() => Response::cancelled("cancelled by the hub"),
            };
            responder.send(answer);
        });
    }
}

/// `host` or `host:port` as written in the allow-list (port only when not the scheme's).
fn host_port(u: &reqwest::Url) -> String {
    let host = u.host_str().unwrap_or("").to_ascii_lowercase();
    match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

/// A URL as shown in messages: without its query, which may carry keys.
fn shown_url(u: &reqwest::Url) -> String {
    format!("{}://{}{}", u.scheme(), host_port(u), u.path())
}

/// An error and its causes in one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let part = c.to_string();
        if !s.contains(&part) {
            s.push_str(": ");
            s.push_str(&part);
        }
        cur = c.source();
    }
    s
}

fn malformed(words: String) -> Response {
    Response::failure(
        400,
        message::worker_response(
            400,
            "malformed-request",
            &format!("dco http worker: {words}"),
        ),
    )
}

impl Inner {
    async fn run(&self, req: &mut Request) -> Response {
        let budget = req.remaining().unwrap_or(self.timeout);
        if budget < Duration::from_millis(1) {
            return Response::timed_out("its time ran out before it was sent");
        }
        let (method, url, headers, body_at) = match self.prepare(req) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let body = Bytes::from(std::mem::take(&mut req.body)).slice(body_at..);
        // For messages only, made when one is needed.
        let shown = || format!("{method} {}", shown_url(&url));
        let mut r = self
            .client
            .request(method.clone(), url.clone())
            .headers(headers)
            .body(body);
        if let Some(h) = &self.idempotency {
            r = r.header(
                h.clone(),
                format!("dco-{:016x}-{}", req.session, req.request),
            );
        }
        let exchange = async {
            let mut resp = r.send().await?;
            let status = resp.status().as_u16();
            let head = std::mem::take(resp.headers_mut());
            let body = read_limited(resp, self.max_response).await?;
            Ok::<_, Fetch>((status, head, body))
        };
        match tokio::time::timeout(budget, exchange).await {
            Err(_) => Response::retry_later(format!(
                "{}: no answer within {} ms",
                shown(),
                budget.as_millis()
            )),
            Ok(Err(Fetch::Http(e))) if e.is_timeout() => Response::retry_later(format!(
                "{}: no answer within {} ms",
                shown(),
                budget.as_millis()
            )),
            Ok(Err(Fetch::Http(e))) => Response::retry_later(format!("{}: {}", shown(), chain(&e))),
            Ok(Err(Fetch::TooLarge(n))) => Response::failure(
                502,
                message::worker_response(
                    502,
                    "response-too-large",
                    &format!(
                        "dco http worker: the response of {} is {n} bytes or more, over the \
                         worker's limit of {} bytes (--max-response)",
                        shown(),
                        self.max_response
                    ),
                ),
            ),
            Ok(Ok((status, head, body))) => {
                let mut out = Vec::with_capacity(body.len() + 64 * head.len() + 32);
                message::write_response(
                    status,
                    head.iter().map(|(n, v)| (n.as_str(), v.as_bytes())),
                    &body,
                    &mut out,
                );
                match status {
                    408 | 429 => retry_status(&shown(), status, &body).with_rcode(status as i32),
                    200..=399 => Response::success(out).with_rcode(status as i32),
                    400..=499 => Response::failure(status as i32, out),
                    _ => retry_status(&shown(), status, &body).with_rcode(status as i32),
                }
            }
        }
    }

    /// The method, URL, headers and where the body starts, or the answer for a request
    /// that cannot be sent.
    #[allow(clippy::result_large_err)]
    fn prepare(
        &self,
        req: &Request,
    ) -> Result<(reqwest::Method, reqwest::Url, HeaderMap, usize), Response> {
        let m: RequestMessage<'_> = message::parse_request(&req.body).map_err(malformed)?;
        let method = reqwest::Method::from_bytes(m.method.as_bytes())
            .map_err(|_| malformed(format!("'{}' is not an HTTP method", m.method)))?;
        let url = match &m.target {
            Target::Path(p) => {
                let joined = message::join(self.base.as_str(), p);
                reqwest::Url::parse(&joined)
                    .map_err(|e| malformed(format!("the path '{p}' makes no URL: {e}")))?
            }
            Target::Absolute(a) => {
                let u = reqwest::Url::parse(a)
                    .map_err(|e| malformed(format!("'{a}' is not a URL: {e}")))?;
                let hp = host_port(&u);
                let host = u.host_str().unwrap_or("").to_ascii_lowercase();
                if !self.allow.iter().any(|h| *h == hp || *h == host) {
                    return Err(Response::failure(
                        403,
                        message::worker_response(
                            403,
                            "host-not-allowed",
                            &format!(
                                "dco http worker: {hp} is not on the worker's allow-list \
                                 (--allow-host); use a path relative to the base URL"
                            ),
                        ),
                    ));
                }
                u
            }
        };
        let mut headers = HeaderMap::with_capacity(m.headers.len());
        for (n, v) in &m.headers {
            let name = HeaderName::from_bytes(n.as_bytes())
                .map_err(|_| malformed(format!("'{n}' is not a header name")))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| malformed(format!("the value of header '{n}' is not valid")))?;
            headers.append(name, value);
        }
        let body_at = m.body.as_ptr() as usize - req.body.as_ptr() as usize;
        Ok((method, url, headers, body_at))
    }
}

fn retry_status(shown: &str, status: u16, body: &[u8]) -> Response {
    let snippet: String = String::from_utf8_lossy(&body[..body.len().min(160)])
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let snippet = snippet.trim();
    let mut words = format!("{shown} answered {status} {}", message::reason(status));
    if !snippet.is_empty() {
        words.push_str(": ");
        words.push_str(snippet);
    }
    Response::retry_later(words)
}

enum Fetch {
    Http(reqwest::Error),
    TooLarge(usize),
}

impl From<reqwest::Error> for Fetch {
    fn from(e: reqwest::Error) -> Fetch {
        Fetch::Http(e)
    }
}

/// The whole response body, or TooLarge as soon as it passes `max`.
async fn read_limited(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, Fetch> {
    if let Some(n) = resp.content_length() {
        if n > max as u64 {
            return Err(Fetch::TooLarge(n.min(usize::MAX as u64) as usize));
        }
    }
    let mut body = Vec::with_capacity(resp.content_length().unwrap_or(0) as usize);
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > max {
            return Err(Fetch::TooLarge(body.len() + chunk.len()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn build_client(cfg: &HttpConfig) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(cfg.connect_timeout)
        .pool_max_idle_per_host(cfg.concurrency.max(1))
        .tcp_nodelay(true)
        .user_agent(concat!("dco/", env!("CARGO_PKG_VERSION")));
    b = match cfg.roots {
        Roots::Both => b,
        Roots::Webpki => b.tls_built_in_native_certs(false),
        Roots::System => b.tls_built_in_webpki_certs(false),
        Roots::None => b.tls_built_in_root_certs(false),
    };
    if let Some(path) = &cfg.ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("--ca-file {}: {}", path.display(), chain(&e)))?;
        if certs.is_empty() {
            return Err(format!(
                "--ca-file {}: no PEM certificate in it",
                path.display()
            ));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    match (&cfg.client_cert, &cfg.client_key) {
        (None, None) => {}
        (Some(cert), Some(key)) => {
            let mut pem = std::fs::read(cert)
                .map_err(|e| format!("--client-cert {}: {e}", cert.display()))?;
            pem.push(b'\n');
            pem.extend(
                std::fs::read(key).map_err(|e| format!("--client-key {}: {e}", key.display()))?,
            );
            let id = reqwest::Identity::from_pem(&pem)
                .map_err(|e| format!("--client-cert/--client-key: {}", chain(&e)))?;
            b = b.identity(id);
        }
        _ => return Err("--client-cert and --client-key go together".into()),
    }
    if cfg.http2_prior_knowledge {
        b = b.http2_prior_knowledge();
    }
    let mut defaults = HeaderMap::new();
    for (n, v) in &cfg.headers {
        let name = HeaderName::from_bytes(n.trim().as_bytes())
            .map_err(|_| format!("--header: '{n}' is not a header name"))?;
        let value = HeaderValue::from_str(v.trim())
            .map_err(|_| format!("--header {n}: the value is not valid"))?;
        defaults.append(name, value);
    }
    let auth = match (&cfg.bearer_token, &cfg.basic_auth) {
        (Some(_), Some(_)) => return Err("a bearer token and basic auth exclude each other".into()),
        (Some(t), None) => Some(format!("Bearer {}", t.trim())),
        (None, Some(up)) => {
            if !up.contains(':') {
                return Err("basic auth must be given as user:password".into());
            }
            Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(up.trim_end_matches(['\r', '\n']))
            ))
        }
        (None, None) => None,
    };
    if let Some(a) = auth {
        let mut v = HeaderValue::from_str(&a)
            .map_err(|_| "the credentials have characters a header cannot carry".to_string())?;
        v.set_sensitive(true);
        defaults.insert(AUTHORIZATION, v);
    }
    b = b.default_headers(defaults);
    b.build()
        .map_err(|e| format!("cannot build the HTTP client: {}", chain(&e)))
}
