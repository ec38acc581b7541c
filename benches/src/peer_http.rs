//! `cairn-peer http`: the client/server shape. A client drives `cairn dev`
//! over HTTP (`POST /api`, `start` with `wait_ms`), the way the peers'
//! clients drive their servers: the same workload and phases as `bench`,
//! with the server's CPU and memory counted beside the client's.
//!
//! The client is plain blocking HTTP/1.1 with keep-alive, one connection
//! per worker thread (as many as executions in flight): small next to the
//! server, and measured.

use super::{COMPENSATED, Window, cpu_ms, peak_rss_mib, percentile, round};
use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One keep-alive connection to `cairn dev`.
struct Conn {
    addr: String,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    fn open(addr: &str) -> Result<Self> {
        let s = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(120)))?;
        Ok(Self {
            addr: addr.to_string(),
            reader: BufReader::new(s.try_clone()?),
            writer: s,
        })
    }

    /// POST /api; the status and the body.
    fn post(&mut self, body: &Value) -> Result<(u16, Value)> {
        let body = body.to_string();
        write!(
            self.writer,
            "POST /api HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        )?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("not an HTTP answer: {line:?}"))?;
        let mut len = None;
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse::<usize>().ok();
            }
        }
        let len = len.context("an answer without a content-length")?;
        let mut buf = vec![0; len];
        self.reader.read_exact(&mut buf)?;
        Ok((status, serde_json::from_slice(&buf)?))
    }
}

/// Start with wait of one swap; its latency, its outcome checked.
fn swap(conn: &mut Conn, id: &str, fail: bool) -> Result<Duration> {
    let t = Instant::now();
    let (status, a) = conn.post(&json!({
        "v": 1, "action": "start", "workflow": "swap", "id": id, "wait_ms": 60000,
        "input": {"a": "alice", "b": "bob", "foo": 10, "bar": 20, "fail_at_step": if fail { Some(3) } else { None }},
    }))?;
    let elapsed = t.elapsed();
    ensure!(status == 200, "{id}: HTTP {status}: {a}");
    match (a["status"].as_str(), fail) {
        (Some("completed"), false) => Ok(elapsed),
        (Some("failed"), true)
            if a["failure"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(COMPENSATED)) =>
        {
            Ok(elapsed)
        }
        _ => bail!("{id}: unexpected answer (fail={fail}): {a}"),
    }
}

/// `n` swaps one after another; latencies, sorted.
fn one_by_one(addr: &str, prefix: &str, n: usize, fail: bool) -> Result<Vec<Duration>> {
    let mut conn = Conn::open(addr)?;
    let mut lat = (0..n)
        .map(|i| swap(&mut conn, &format!("{prefix}-{i}"), fail))
        .collect::<Result<Vec<_>>>()?;
    lat.sort();
    Ok(lat)
}

/// `n` swaps, `in_flight` at a time (one connection per worker).
fn concurrently(addr: &str, prefix: &str, n: usize, in_flight: usize) -> Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..in_flight.min(n))
        .map(|_| {
            let (next, addr, prefix) = (next.clone(), addr.to_string(), prefix.to_string());
            std::thread::spawn(move || -> Result<()> {
                let mut conn = Conn::open(&addr)?;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return Ok(());
                    }
                    swap(&mut conn, &format!("{prefix}-{i}"), false)?;
                }
            })
        })
        .collect();
    for w in workers {
        w.join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
    }
    Ok(())
}

/// A `cairn dev` on its own store, stopped (SIGTERM) when dropped.
struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(cairn: &Path, dir: &Path, port: u16) -> Result<Server> {
    let db = dir.join("cairn.db");
    let status = Command::new(cairn)
        .arg("--db")
        .arg(&db)
        .args(["register", cairn_test_artifacts::SWAP_SAGA])
        .stdout(Stdio::null())
        .status()
        .context("running cairn register")?;
    ensure!(status.success(), "cairn register failed");
    let log = std::fs::File::create(dir.join("server.log"))?;
    let child = Command::new(cairn)
        .arg("--db")
        .arg(&db)
        .args(["dev", "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting cairn dev")?;
    let server = Server { child };
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        ensure!(
            t.elapsed() < Duration::from_secs(60),
            "cairn dev did not listen on 127.0.0.1:{port} (see {})",
            dir.join("server.log").display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(server)
}

fn bounded<T: Send + 'static>(
    secs: u64,
    what: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .with_context(|| format!("phase '{what}' took longer than {secs} s"))?
}

/// The phases of `bench`, through `cairn dev` over HTTP.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    cairn: PathBuf,
    dir: PathBuf,
    json_path: PathBuf,
    port: u16,
    counts: super::Counts,
) -> Result<()> {
    let super::Counts {
        warmup,
        seq,
        tp,
        in_flight,
        fail,
        phase_timeout,
    } = counts;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let server = start_server(&cairn, &dir, port)?;
    let spid = server.child.id();
    let me = std::process::id();
    let addr = format!("127.0.0.1:{port}");
    let cpu = |pid| cpu_ms(pid);
    let mut out = serde_json::Map::new();
    out.insert("engine".into(), "cairn-dev".into());
    out.insert(
        "config".into(),
        "`cairn dev` (one process: HTTP API, engine, embedded SQLite WAL synchronous=FULL: every journal entry fsynced before the next effect); client: HTTP/1.1 keep-alive, `start` with `wait_ms`, one connection per execution in flight".into(),
    );

    let w = Window::open();
    let a = addr.clone();
    bounded(phase_timeout, "warm-up", move || {
        one_by_one(&a, "warm", warmup / 2, false)?;
        concurrently(&a, "warm-c", warmup - warmup / 2, in_flight)
    })?;
    let mut m = serde_json::Map::new();
    m.insert("n".into(), warmup.into());
    w.close(&mut m);
    out.insert("warmup".into(), m.into());

    let w = Window::open();
    let (s0, c0) = (cpu(spid), cpu(me));
    let a = addr.clone();
    let lat = bounded(phase_timeout, "sequential", move || {
        one_by_one(&a, "seq", seq, false)
    })?;
    let mut m = serde_json::Map::new();
    m.insert("n".into(), seq.into());
    m.insert("p50_ms".into(), percentile(&lat, 0.50).into());
    m.insert("p95_ms".into(), percentile(&lat, 0.95).into());
    m.insert("p99_ms".into(), percentile(&lat, 0.99).into());
    m.insert("max_ms".into(), percentile(&lat, 1.0).into());
    m.insert(
        "cpu_ms".into(),
        json!({"server": round(cpu(spid) - s0, 1), "client": round(cpu(me) - c0, 1)}),
    );
    w.close(&mut m);
    eprintln!("cairn-dev: sequential {m:?}");
    out.insert("sequential".into(), m.into());

    let w = Window::open();
    let (s0, c0) = (cpu(spid), cpu(me));
    let t = Instant::now();
    let a = addr.clone();
    bounded(phase_timeout, "throughput", move || {
        concurrently(&a, "tp", tp, in_flight)
    })?;
    let wall = t.elapsed().as_secs_f64();
    let (server_cpu, client_cpu) = (cpu(spid) - s0, cpu(me) - c0);
    let mut m = serde_json::Map::new();
    m.insert("n".into(), tp.into());
    m.insert("in_flight".into(), in_flight.into());
    m.insert("exec_per_s".into(), round(tp as f64 / wall, 1).into());
    m.insert(
        "cpu_ms".into(),
        json!({"server": round(server_cpu, 1), "client": round(client_cpu, 1)}),
    );
    m.insert(
        "cpu_ms_per_exec".into(),
        round((server_cpu + client_cpu) / tp as f64, 3).into(),
    );
    m.insert(
        "cpu_ms_per_exec_excl_client".into(),
        round(server_cpu / tp as f64, 3).into(),
    );
    w.close(&mut m);
    eprintln!("cairn-dev: throughput {m:?}");
    out.insert("throughput".into(), m.into());

    let w = Window::open();
    let a = addr.clone();
    let lat = bounded(phase_timeout, "failing", move || {
        one_by_one(&a, "fail", fail, true)
    })?;
    let mut m = serde_json::Map::new();
    m.insert("n".into(), fail.into());
    m.insert("p50_ms".into(), percentile(&lat, 0.50).into());
    m.insert("p95_ms".into(), percentile(&lat, 0.95).into());
    m.insert("ok".into(), true.into());
    m.insert(
        "checked".into(),
        format!("{fail}/{fail} ended failed with '{COMPENSATED}'").into(),
    );
    w.close(&mut m);
    out.insert("failing".into(), m.into());

    let (srss, crss) = (peak_rss_mib(spid), peak_rss_mib(me));
    out.insert(
        "rss_mib".into(),
        json!({"server": round(srss, 1), "client": round(crss, 1), "total": round(srss + crss, 1)}),
    );
    drop(server);
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&Value::Object(out))?,
    )?;
    Ok(())
}
