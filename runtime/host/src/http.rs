//! `wasi:http` for activities: outgoing requests sent by the host, TLS done
//! by the host, and the allow-list that decides where they may go.
//!
//! - **Where**: activity mode links `wasi:http/outgoing-handler` and
//!   `wasi:http/types` (wasmtime-wasi-http); workflow mode does not, so a
//!   workflow's request traps with CRN305 like any other denied import.
//! - **Allow-list** ([`HttpAllowList`]): every request's host and port are
//!   checked before anything is sent. A refused request fails in the guest
//!   with `HTTP-request-denied`, and the attempt fails with a non-retryable
//!   [`crate::GuestError::HttpDenied`] naming the host and the flag to add,
//!   whatever the guest did with the error (the instance is not reused).
//! - **TLS**: rustls on aws-lc-rs (the provider the AWS SDK already builds),
//!   trusting the system's roots (`rustls-native-certs`: `/etc/ssl/certs`,
//!   `SSL_CERT_FILE`) plus the operator's extra roots (PEM files). The
//!   client and its root store are built on the first allowed request, so a
//!   host that never sends one never reads the system's certificates.
//! - **Connections** are pooled per sandbox (hyper's client): activities of
//!   all executions share warm connections to the same origin.
//! - **Time**: nothing here has its own deadline unless the guest sets one
//!   in its request options; the activity's per-attempt timeout bounds every
//!   request, and dropping the attempt drops its requests.

use http_body_util::BodyExt;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// Which hosts activities may send HTTP requests to: `*` (any), `HOST`
/// (any port), `HOST:PORT`, `*.SUFFIX[:PORT]` (its subdomains), IPv6 in
/// brackets (`[::1]:8080`). Empty: no request is allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpAllowList {
    any: bool,
    entries: Vec<AllowEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowEntry {
    /// Lowercase; `*.example.com` matches the subdomains of example.com.
    host: String,
    port: Option<u16>,
}

impl HttpAllowList {
    /// Parses entries (each may also be a comma-separated list).
    pub fn parse<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Result<Self, String> {
        let mut list = Self::default();
        for item in items {
            for raw in item
                .as_ref()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                list.add(raw)?;
            }
        }
        Ok(list)
    }

    /// Allows every host.
    pub fn any() -> Self {
        Self {
            any: true,
            entries: Vec::new(),
        }
    }

    fn add(&mut self, raw: &str) -> Result<(), String> {
        if raw == "*" {
            self.any = true;
            return Ok(());
        }
        let bad = |why: &str| format!("--allow-http {raw}: {why} (expected HOST, HOST:PORT or *)");
        if raw.contains('/') || raw.contains('@') {
            return Err(bad("a host, not a URL"));
        }
        let (host, port) = match raw.strip_prefix('[') {
            Some(rest) => {
                let (ip, after) = rest.split_once(']').ok_or_else(|| bad("unclosed ["))?;
                let port = match after {
                    "" => None,
                    p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ]"))?),
                };
                (format!("[{}]", ip.to_ascii_lowercase()), port)
            }
            None => match raw.rsplit_once(':') {
                Some((h, p)) => (h.to_ascii_lowercase(), Some(p)),
                None => (raw.to_ascii_lowercase(), None),
            },
        };
        let port = match port {
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| bad("the port is not a number"))?,
            ),
            None => None,
        };
        let name = host.strip_prefix("*.").unwrap_or(&host);
        if name.is_empty() || name.contains('*') {
            return Err(bad("empty host or a * inside it"));
        }
        self.entries.push(AllowEntry {
            host: host.trim_end_matches('.').to_string(),
            port,
        });
        Ok(())
    }

    /// Whether nothing is allowed.
    pub fn is_empty(&self) -> bool {
        !self.any && self.entries.is_empty()
    }

    /// Whether a request to `host` (as in a URI: IPv6 in brackets) on
    /// `port` may be sent.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        if self.any {
            return true;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.entries.iter().any(|e| {
            let host_ok = match e.host.strip_prefix("*.") {
                Some(suffix) => host
                    .strip_suffix(suffix)
                    .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
                None => e.host == host,
            };
            host_ok && e.port.is_none_or(|p| p == port)
        })
    }
}

impl fmt::Display for HttpAllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.any {
            return f.write_str("*");
        }
        let items: Vec<String> = self
            .entries
            .iter()
            .map(|e| match e.port {
                Some(p) => format!("{}:{p}", e.host),
                None => e.host.clone(),
            })
            .collect();
        f.write_str(&items.join(","))
    }
}

type PooledClient = Client<HttpsConnector<HttpConnector>, WasiBody>;

/// The sandbox's HTTP client: the allow-list, the extra roots, and the
/// pooled client built on first use.
pub(crate) struct HttpClient {
    allow: HttpAllowList,
    extra_roots: Vec<CertificateDer<'static>>,
    client: OnceLock<Result<PooledClient, String>>,
}

impl HttpClient {
    /// Reads and checks the extra root files now, so a bad file stops the
    /// host at start, not at the first request.
    pub(crate) fn new(allow: HttpAllowList, extra_roots: &[PathBuf]) -> Result<Self, String> {
        let mut roots = Vec::new();
        for path in extra_roots {
            let pem = std::fs::read(path).map_err(|e| {
                format!(
                    "cannot read the extra root certificates {}: {e}",
                    path.display()
                )
            })?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{}: not a PEM certificate file: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "{}: no certificate (-----BEGIN CERTIFICATE-----) in it",
                    path.display()
                ));
            }
            let mut store = rustls::RootCertStore::empty();
            for c in &certs {
                store.add(c.clone()).map_err(|e| {
                    format!(
                        "{}: a certificate is not a usable root: {e}",
                        path.display()
                    )
                })?;
            }
            roots.extend(certs);
        }
        Ok(Self {
            allow,
            extra_roots: roots,
            client: OnceLock::new(),
        })
    }

    fn client(&self) -> Result<&PooledClient, HttpError> {
        self.client
            .get_or_init(|| build_client(&self.extra_roots))
            .as_ref()
            .map_err(|e| HttpError::InternalError(Some(e.clone())))
    }

    async fn send(
        self: Arc<Self>,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<(http::Response<WasiBody>, IoFuture), HttpError> {
        let client = self.client()?;
        let https = request.uri().scheme() == Some(&http::uri::Scheme::HTTPS);
        let (request, guest_body) = split_bodiless(request);
        let response = client.request(request);
        let response = match options.and_then(|o| o.first_byte_timeout) {
            Some(t) => tokio::time::timeout(t, response)
                .await
                .map_err(|_| HttpError::ConnectionReadTimeout)?,
            None => response.await,
        }
        .map_err(|e| classify(e, https))?;
        let response = response.map(|body| body.map_err(HttpError::from).boxed_unsync());
        Ok((
            response,
            Box::new(async move {
                // Until the guest finishes the body hyper did not want.
                if let Some(mut body) = guest_body {
                    while let Some(Ok(_)) = body.frame().await {}
                }
                Ok(())
            }),
        ))
    }
}

/// A GET, HEAD or CONNECT without framing headers: hyper sends it with no
/// body and drops the body at once, and a guest that then writes or
/// finishes its (empty) body, as wstd always does, finds the stream closed
/// (a race the guest mostly wins). Such a request goes to hyper with an
/// empty body; the guest's body is kept, and drained, until it finishes.
fn split_bodiless(request: http::Request<WasiBody>) -> (http::Request<WasiBody>, Option<WasiBody>) {
    use http::{Method, header};
    let bodiless = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::CONNECT
    ) && !request.headers().contains_key(header::CONTENT_LENGTH)
        && !request.headers().contains_key(header::TRANSFER_ENCODING);
    if !bodiless {
        return (request, None);
    }
    let (parts, body) = request.into_parts();
    let empty = http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync();
    (http::Request::from_parts(parts, empty), Some(body))
}

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

fn build_client(extra_roots: &[CertificateDer<'static>]) -> Result<PooledClient, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::warn!("reading the system's root certificates: {e}");
    }
    let (system, _) = roots.add_parsable_certificates(native.certs);
    for c in extra_roots {
        roots
            .add(c.clone())
            .map_err(|e| format!("extra root certificate: {e}"))?;
    }
    tracing::debug!(
        system,
        extra = extra_roots.len(),
        "activity HTTP client: root certificates loaded"
    );
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(https))
}

/// The `wasi:http` error code for a failed request, with the cause's text
/// where the code alone would hide it (TLS, DNS).
fn classify(e: hyper_util::client::legacy::Error, https: bool) -> HttpError {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    let mut tls = false;
    let mut io_kind = None;
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        if s.downcast_ref::<rustls::Error>().is_some() {
            tls = true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            io_kind.get_or_insert(io.kind());
            if io.get_ref().is_some_and(|i| i.is::<rustls::Error>()) {
                tls = true;
            }
        }
        source = s.source();
    }
    // The TLS error may come boxed in ways a downcast does not see through;
    // a connect error of an HTTPS request that is invalid data, or that
    // names a certificate, is a TLS failure too.
    let tls = tls
        || (https
            && e.is_connect()
            && (io_kind == Some(std::io::ErrorKind::InvalidData) || text.contains("certificate")));
    if tls {
        return HttpError::InternalError(Some(format!(
            "TLS: {text} (a private CA? give its PEM file to the host: --http-extra-roots FILE, CAIRN_HTTP_EXTRA_ROOTS)"
        )));
    }
    match io_kind {
        Some(std::io::ErrorKind::ConnectionRefused) => HttpError::ConnectionRefused,
        Some(std::io::ErrorKind::TimedOut) => HttpError::ConnectionTimeout,
        _ if e.is_connect() && text.contains("dns error") => HttpError::DnsError {
            rcode: Some(text),
            info_code: None,
        },
        _ => HttpError::InternalError(Some(text)),
    }
}

/// The hooks of one activity instance: the shared client, and the first
/// request the allow-list refused.
pub(crate) struct ActivityHttp {
    client: Arc<HttpClient>,
    /// `host:port` of the first refused request.
    pub(crate) denied: Option<String>,
}

impl ActivityHttp {
    pub(crate) fn new(client: Arc<HttpClient>) -> Self {
        Self {
            client,
            denied: None,
        }
    }
}

impl WasiHttpHooks for ActivityHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>
    {
        let uri = request.uri();
        let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let host = uri.host().unwrap_or_default();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        if !self.client.allow.allows(host, port) {
            self.denied.get_or_insert_with(|| format!("{host}:{port}"));
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        Box::new(self.client.clone().send(request, options))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_list_matches_hosts_ports_and_subdomains() {
        let l = HttpAllowList::parse([
            "api.example.com",
            "127.0.0.1:8080, [::1]:9000",
            "*.corp.test:443",
        ])
        .unwrap();
        assert!(l.allows("api.example.com", 443));
        assert!(l.allows("API.Example.com.", 80));
        assert!(!l.allows("example.com", 443));
        assert!(l.allows("127.0.0.1", 8080));
        assert!(!l.allows("127.0.0.1", 8081));
        assert!(l.allows("[::1]", 9000));
        assert!(l.allows("a.b.corp.test", 443));
        assert!(!l.allows("corp.test", 443));
        assert!(!l.allows("evilcorp.test", 443));
        assert!(!l.allows("a.corp.test", 80));
        assert!(HttpAllowList::parse(["*"]).unwrap().allows("anything", 1));
        assert!(HttpAllowList::default().is_empty());
        assert!(!HttpAllowList::default().allows("localhost", 80));
    }

    #[test]
    fn bad_entries_are_refused_with_the_expected_form() {
        for bad in ["http://x.com", "x.com:http", "[::1", "*", "a.*.com"] {
            let r = HttpAllowList::parse([bad]);
            if bad == "*" {
                assert!(r.is_ok());
                continue;
            }
            let e = r.unwrap_err();
            assert!(e.contains("HOST:PORT"), "{bad}: {e}");
        }
    }
}
