//! HTTP/1.1 plumbing shared by the fault proxy (tests/faults/proxy.rs) and
//! the load model's accounting proxy (benches/src/bin/load.rs): read one
//! request off a client socket, forward it upstream over a kept-alive
//! connection, write the reply back.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The reason phrase of `status` (`Unknown` for a code it lacks).
pub fn canonical_reason(status: u16) -> &'static str {
    hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown")
}

/// One parsed request.
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// Reads one request from `socket`; `None` when the client closed it.
pub async fn read_request(socket: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Request> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_owned(), first.next()?.to_owned());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let mut chunk = [0u8; 64 * 1024];
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = Bytes::copy_from_slice(&buf[head_end..head_end + len]);
    buf.drain(..head_end + len);
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

pub type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

pub async fn connect(upstream: &str) -> Option<Sender> {
    let stream = TcpStream::connect(upstream).await.ok()?;
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .ok()?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Some(sender)
}

/// Forwards `req`; the reply's status, headers and body.
pub async fn forward(
    upstream: &str,
    sender: &mut Option<Sender>,
    req: &Request,
) -> Option<(u16, Vec<(String, String)>, Bytes)> {
    // A pooled upstream connection may have been closed by DynamoDB Local:
    // one fresh connection, then give up (the client sees a reset).
    for _ in 0..2 {
        if sender.as_ref().is_none_or(|s| s.is_closed()) {
            *sender = connect(upstream).await;
        }
        let s = sender.as_mut()?;
        if s.ready().await.is_err() {
            *sender = None;
            continue;
        }
        let mut builder = hyper::Request::builder()
            .method(req.method.as_str())
            .uri(req.path.as_str());
        for (k, v) in &req.headers {
            if k.eq_ignore_ascii_case("content-length") {
                continue;
            }
            builder = builder.header(k.as_str(), v.as_str());
        }
        let request = builder
            .header("content-length", req.body.len())
            .body(Full::new(req.body.clone()))
            .ok()?;
        match s.send_request(request).await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let headers = resp
                    .headers()
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_owned(),
                            v.to_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect();
                let body = resp.into_body().collect().await.ok()?.to_bytes();
                return Some((status, headers, body));
            }
            Err(_) => *sender = None,
        }
    }
    None
}

pub async fn write_reply(
    socket: &mut TcpStream,
    status: u16,
    reason: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n");
    for (k, v) in headers {
        if ["content-length", "transfer-encoding", "connection"]
            .iter()
            .any(|h| k.eq_ignore_ascii_case(h))
        {
            continue;
        }
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    socket.write_all(&bytes).await?;
    socket.flush().await
}
