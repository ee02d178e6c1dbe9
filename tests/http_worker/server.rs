#![allow(dead_code)]
//! A real HTTP server on 127.0.0.1 (hyper, HTTP/1.1 and HTTP/2, optionally TLS) whose answers
//! the request path chooses:
//!
//! - `/echo...`: 200; the body is the request body; `x-method`, `x-target` and `x-version`
//!   say what arrived, and each request header `x-*` or `authorization` comes back as
//!   `x-echo-<name>`.
//! - `/status/N`: status N.
//! - `/flaky/KEY/N`: 503 for the first N requests of KEY, then 200.
//! - `/slow/MS`: 200 after MS milliseconds (counts requests in flight and requests dropped
//!   before they were answered).
//! - `/bytes/N`: 200 with N bytes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::Mutex;

#[derive(Default)]
pub struct State {
    pub hits: AtomicU64,
    pub inflight: AtomicU64,
    pub max_inflight: AtomicU64,
    pub dropped: AtomicU64,
    flaky: Mutex<HashMap<String, u64>>,
}

pub struct HttpServer {
    pub addr: SocketAddr,
    pub state: Arc<State>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// A CA and a server certificate for `localhost` and 127.0.0.1 it signed, made for the test.
pub struct TestPki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    /// A client certificate the same CA signed, and its key.
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

impl TestPki {
    pub fn new() -> TestPki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "dco test CA");
        ca.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .unwrap();
        let cert = leaf.signed_by(&key, &ca_cert, &ca_key).unwrap();
        let client_key = rcgen::KeyPair::generate().unwrap();
        let mut client = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        client
            .distinguished_name
            .push(rcgen::DnType::CommonName, "dco worker");
        client.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client.signed_by(&client_key, &ca_cert, &ca_key).unwrap();
        TestPki {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
        }
    }
}

impl HttpServer {
    /// Plain HTTP (HTTP/1.1, and HTTP/2 with prior knowledge).
    pub fn start() -> HttpServer {
        HttpServer::start_with(None)
    }

    /// HTTPS with the test PKI's server certificate; ALPN offers h2 and http/1.1.
    pub fn start_tls(pki: &TestPki) -> HttpServer {
        HttpServer::start_tls_with(pki, false)
    }

    /// HTTPS that also wants a client certificate signed by the test CA.
    pub fn start_tls_client_auth(pki: &TestPki) -> HttpServer {
        HttpServer::start_tls_with(pki, true)
    }

    fn start_tls_with(pki: &TestPki, client_auth: bool) -> HttpServer {
        use tokio_rustls::rustls;
        let certs = vec![rustls::pki_types::CertificateDer::from(pem_der(
            &pki.cert_pem,
        ))];
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
            rustls::pki_types::PrivatePkcs8KeyDer::from(pem_der(&pki.key_pem)),
        );
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if client_auth {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(rustls::pki_types::CertificateDer::from(pem_der(
                    &pki.ca_pem,
                )))
                .unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut cfg = builder.with_single_cert(certs, key).unwrap();
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        HttpServer::start_with(Some(tokio_rustls::TlsAcceptor::from(Arc::new(cfg))))
    }

    fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> HttpServer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(State::default());
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let st = state.clone();
        rt.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let st = st.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| answer(st.clone(), req));
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match tls {
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(tcp), svc).await;
                        }
                        Some(acceptor) => {
                            if let Ok(s) = acceptor.accept(tcp).await {
                                let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                            }
                        }
                    }
                });
            }
        });
        HttpServer {
            addr,
            state,
            rt: Some(rt),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn pem_der(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

/// Counts a slow request in flight; if dropped before `done`, the client went away.
struct InFlight {
    st: Arc<State>,
    done: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.st.inflight.fetch_sub(1, Ordering::SeqCst);
        if !self.done {
            self.st.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn reply(status: u16, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .body(Full::new(body.into()))
        .unwrap()
}

async fn answer(
    st: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    st.hits.fetch_add(1, Ordering::SeqCst);
    let path = req.uri().path().to_string();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let r = match parts.as_slice() {
        ["echo", ..] => {
            let method = req.method().to_string();
            let target = req
                .uri()
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default();
            let version = format!("{:?}", req.version());
            let mut b = Response::builder()
                .status(200)
                .header("x-method", method)
                .header("x-target", target)
                .header("x-version", version);
            for (n, v) in req.headers() {
                let n = n.as_str();
                if n.starts_with("x-") || n == "authorization" {
                    b = b.header(format!("x-echo-{n}"), v.clone());
                }
            }
            let body = req
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            b.body(Full::new(body)).unwrap()
        }
        ["status", n] => {
            let n: u16 = n.parse().unwrap_or(500);
            reply(n, format!("status {n}"))
        }
        ["flaky", key, n] => {
            let n: u64 = n.parse().unwrap_or(1);
            let seen = {
                let mut m = st.flaky.lock();
                let c = m.entry(key.to_string()).or_insert(0);
                *c += 1;
                *c
            };
            if seen <= n {
                reply(503, "try later")
            } else {
                reply(200, format!("ok after {n}"))
            }
        }
        ["slow", ms] => {
            let ms: u64 = ms.parse().unwrap_or(1000);
            let now = st.inflight.fetch_add(1, Ordering::SeqCst) + 1;
            st.max_inflight.fetch_max(now, Ordering::SeqCst);
            let mut guard = InFlight {
                st: st.clone(),
                done: false,
            };
            tokio::time::sleep(Duration::from_millis(ms)).await;
            guard.done = true;
            reply(200, "slow")
        }
        ["bytes", n] => {
            let n: usize = n.parse().unwrap_or(0);
            reply(200, vec![b'x'; n])
        }
        _ => reply(404, "no such test route"),
    };
    Ok(r)
}
