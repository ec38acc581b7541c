//! A real HTTP (or HTTPS, with a CA made at test time) server on
//! 127.0.0.1 for the HTTP tests: a thread per connection, one request per
//! connection, and a record of every request it saw.
//!
//! Routes:
//! - `GET /json`: `{"hello": "world"}`
//! - `POST /echo`: `{"got": <the JSON body>, "key": <Idempotency-Key>}`
//! - `GET /flaky/<name>?fail=N`: 503 to the first N requests of `<name>`,
//!   then `{"attempt": n}`
//! - `GET /hang`: never answers
//! - `GET /big?bytes=N`: N bytes, byte i = i % 251, in 64 KiB writes
//! - `GET /status/<code>`: that status
//! - `POST /v1/traces`: an OTLP/HTTP collector (200, empty answer)
//! - a "cloud API" for the provision example: `POST /resources` (`{name,
//!   kind}`; the same Idempotency-Key gives the same resource), `GET
//!   /resources/<id>` (`{id, status}`: `ready` at the 6th poll for `slow-*`
//!   names, the 2nd for others), `DELETE /resources/<id>`
//!
//! Also used by the tests crate (`#[path]`), so it needs nothing but std,
//! rustls and rcgen.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Lowercase names.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

#[derive(Default)]
struct State {
    seen: Mutex<Vec<Seen>>,
    counts: Mutex<HashMap<String, u32>>,
    cloud: Mutex<Cloud>,
}

/// The resources of the "cloud API".
#[derive(Default)]
struct Cloud {
    by_key: HashMap<String, String>,
    /// id -> (name, polls so far)
    resources: HashMap<String, (String, u32)>,
    created: u32,
    deleted: Vec<String>,
}

/// The running server (its threads end with the test process).
pub struct TestServer {
    pub port: u16,
    tls: bool,
    state: Arc<State>,
    /// The CA's certificate (PEM file), for HTTPS.
    pub ca_pem: Option<PathBuf>,
}

impl TestServer {
    /// Plain HTTP.
    pub fn http() -> Self {
        Self::start(None, None)
    }

    /// HTTPS for `localhost`, its certificate signed by a CA made now; the
    /// CA's PEM is written into `dir`.
    pub fn https(dir: &Path) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "Cairn test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &Issuer::new(ca, ca_key))
            .unwrap();
        let pem = dir.join("test-ca.pem");
        std::fs::write(&pem, ca_cert.pem()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
        Self::start(Some(Arc::new(config)), Some(pem))
    }

    fn start(tls: Option<Arc<rustls::ServerConfig>>, ca_pem: Option<PathBuf>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State::default());
        let s = state.clone();
        let is_tls = tls.is_some();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (s, tls) = (s.clone(), tls.clone());
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
                    match tls {
                        Some(config) => {
                            let Ok(c) = rustls::ServerConnection::new(config) else {
                                return;
                            };
                            serve(rustls::StreamOwned::new(c, conn), &s);
                        }
                        None => serve(conn, &s),
                    }
                });
            }
        });
        Self {
            port,
            tls: is_tls,
            state,
            ca_pem,
        }
    }

    /// The URL of `path` (`/json`).
    pub fn url(&self, path: &str) -> String {
        match self.tls {
            true => format!("https://localhost:{}{path}", self.port),
            false => format!("http://127.0.0.1:{}{path}", self.port),
        }
    }

    /// What `--allow-http` needs for this server.
    pub fn host_port(&self) -> String {
        match self.tls {
            true => format!("localhost:{}", self.port),
            false => format!("127.0.0.1:{}", self.port),
        }
    }

    /// The ids the cloud API deleted, in order.
    pub fn deleted(&self) -> Vec<String> {
        self.state.cloud.lock().unwrap().deleted.clone()
    }

    /// The requests whose path starts with `prefix`, in arrival order.
    pub fn seen(&self, prefix: &str) -> Vec<Seen> {
        let seen = self.state.seen.lock().unwrap();
        seen.iter()
            .filter(|s| s.path.starts_with(prefix))
            .cloned()
            .collect()
    }
}

fn serve<S: Read + Write>(stream: S, state: &State) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    // A client may send even an empty body chunked; leaving its bytes unread
    // would make closing the socket a reset.
    if headers
        .get("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            if reader.read_line(&mut size).unwrap_or(0) == 0 {
                return;
            }
            let Ok(n) = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
            else {
                return;
            };
            if n == 0 {
                // Trailers, then the empty line.
                loop {
                    let mut t = String::new();
                    if reader.read_line(&mut t).unwrap_or(0) == 0 || t.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let mut chunk = vec![0; n + 2];
            if reader.read_exact(&mut chunk).is_err() {
                return;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    let seen = Seen {
        method: method.clone(),
        path: path.clone(),
        headers: headers.clone(),
        body: body.clone(),
    };
    state.seen.lock().unwrap().push(seen);
    let mut out = reader.into_inner();
    let (route, query) = path.split_once('?').unwrap_or((&path, ""));
    let param = |name: &str| -> Option<u64> {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
    };
    let json = |out: &mut S, status: u16, v: serde_json::Value| {
        respond(out, status, "application/json", v.to_string().as_bytes())
    };
    match (method.as_str(), route) {
        ("GET", "/json") => json(&mut out, 200, serde_json::json!({"hello": "world"})),
        ("POST", "/echo") => {
            let got: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let key = headers.get("idempotency-key").cloned();
            json(&mut out, 200, serde_json::json!({"got": got, "key": key}))
        }
        ("GET", r) if r.starts_with("/flaky/") => {
            let n = {
                let mut counts = state.counts.lock().unwrap();
                let c = counts.entry(r.to_string()).or_insert(0);
                *c += 1;
                *c
            };
            if u64::from(n) <= param("fail").unwrap_or(0) {
                respond(&mut out, 503, "text/plain", b"busy, try again")
            } else {
                json(&mut out, 200, serde_json::json!({"attempt": n}))
            }
        }
        ("GET", "/hang") => std::thread::sleep(Duration::from_secs(120)),
        ("GET", "/big") => {
            let n = param("bytes").unwrap_or(0) as usize;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {n}\r\nconnection: close\r\n\r\n"
            );
            if out.write_all(head.as_bytes()).is_err() {
                return;
            }
            let mut sent = 0;
            while sent < n {
                let chunk: Vec<u8> = (sent..(sent + 65536).min(n))
                    .map(|i| (i % 251) as u8)
                    .collect();
                if out.write_all(&chunk).is_err() {
                    return;
                }
                sent += chunk.len();
            }
            let _ = out.flush();
        }
        ("POST", "/resources") => {
            let req: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let key = headers.get("idempotency-key").cloned().unwrap_or_default();
            let mut cloud = state.cloud.lock().unwrap();
            let id = match cloud.by_key.get(&key) {
                Some(id) => id.clone(),
                None => {
                    cloud.created += 1;
                    let id = format!("{}-{}", req["kind"].as_str().unwrap_or("r"), cloud.created);
                    let name = req["name"].as_str().unwrap_or("").to_string();
                    cloud.by_key.insert(key, id.clone());
                    cloud.resources.insert(id.clone(), (name, 0));
                    id
                }
            };
            drop(cloud);
            json(
                &mut out,
                201,
                serde_json::json!({"id": id, "status": "creating"}),
            )
        }
        ("GET", r) if r.starts_with("/resources/") => {
            let id = &r["/resources/".len()..];
            let mut cloud = state.cloud.lock().unwrap();
            let Some((name, polls)) = cloud.resources.get_mut(id) else {
                drop(cloud);
                return respond(&mut out, 404, "text/plain", b"no such resource");
            };
            *polls += 1;
            let needed = if name.starts_with("slow-") { 6 } else { 2 };
            let status = if *polls >= needed {
                "ready"
            } else {
                "creating"
            };
            drop(cloud);
            json(
                &mut out,
                200,
                serde_json::json!({"id": id, "status": status}),
            )
        }
        ("DELETE", r) if r.starts_with("/resources/") => {
            let id = &r["/resources/".len()..];
            let mut cloud = state.cloud.lock().unwrap();
            let found = cloud.resources.remove(id).is_some();
            if found {
                cloud.deleted.push(id.to_string());
            }
            drop(cloud);
            match found {
                true => respond(&mut out, 204, "text/plain", b""),
                false => respond(&mut out, 404, "text/plain", b"no such resource"),
            }
        }
        // The court-records service of the background check: requests and
        // reminders are filed (and recorded in `seen`); answers come later,
        // as signals.
        ("POST", "/requests") | ("POST", "/requests/reminders") => {
            json(&mut out, 202, serde_json::json!({"filed": true}))
        }
        ("GET", r) if r.starts_with("/status/") => {
            let code = r["/status/".len()..].parse().unwrap_or(500);
            respond(&mut out, code, "text/plain", b"as you asked")
        }
        // An OpenTelemetry collector's OTLP/HTTP traces endpoint: the
        // requests are in `seen`; the answer is an empty
        // ExportTraceServiceResponse (zero bytes of protobuf).
        ("POST", "/v1/traces") => respond(&mut out, 200, "application/x-protobuf", b""),
        _ => respond(&mut out, 404, "text/plain", b"no such route"),
    }
}

fn respond<S: Write>(out: &mut S, status: u16, content_type: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = out.write_all(head.as_bytes());
    let _ = out.write_all(body);
    let _ = out.flush();
}

/// The checksum `httpkit`'s streaming activity computes, for `/big?bytes=n`.
pub fn big_checksum(n: usize) -> u64 {
    (0..n).fold(0u64, |s, i| {
        s.wrapping_mul(31).wrapping_add((i % 251) as u64)
    })
}
