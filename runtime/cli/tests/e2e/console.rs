//! The web console of `cairn dev` in a real browser: headless Chromium
//! (Debian's `chromium`, `ensure_chromium` in scripts/lib.sh) driven over
//! the DevTools protocol, running the page's own JavaScript. Runs the swap
//! saga (both outcomes) and the background check, then drives the console:
//! the list, the journal with its compensations, a signal and a cancel sent
//! from the page, the components page. Screenshots go to
//! `target/console-screenshots/`, and to `docs/img/` with
//! `CAIRN_UPDATE_SCREENSHOTS=1`.

use crate::dev::{DevServer, registered};
use crate::support::*;
use base64::Engine as _;
use cairn_test_artifacts::BACKGROUND_CHECK;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

/// A headless Chromium and one page of it, over the DevTools protocol.
struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    session: String,
    next: u64,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    fn launch() -> Self {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--remote-debugging-port=0",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium is not installed: run `source scripts/lib.sh; ensure_chromium`");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("chromium did not open its DevTools endpoint");
        let hostport = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let stream = TcpStream::connect(&hostport).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let (ws, _) = tungstenite::client(url.as_str(), stream).expect("DevTools websocket");
        let mut b = Self {
            child,
            ws,
            session: String::new(),
            next: 0,
            _profile: profile,
        };
        let t = b.call("Target.createTarget", json!({"url": "about:blank"}));
        let target = t["targetId"].as_str().unwrap().to_string();
        let s = b.call(
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        );
        b.session = s["sessionId"].as_str().unwrap().to_string();
        b.call("Page.enable", json!({}));
        b.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
        );
        b
    }

    /// One DevTools command (on the page once attached); its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        self.ws.send(Message::text(msg.to_string())).unwrap();
        loop {
            let m = self.ws.read().expect("DevTools connection");
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["id"] == id {
                if let Some(e) = v.get("error") {
                    panic!("{method}: {e}");
                }
                return v["result"].clone();
            }
        }
    }

    /// Evaluates JavaScript in the page (awaiting a promise); its value.
    fn eval(&mut self, js: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": js, "awaitPromise": true, "returnByValue": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{js}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Waits until `js` is true in the page.
    #[track_caller]
    fn wait(&mut self, what: &str, js: &str) {
        let t = Instant::now();
        loop {
            if self.eval(&format!("!!({js})")) == json!(true) {
                return;
            }
            if t.elapsed() > Duration::from_secs(60) {
                let body = self.eval("document.body.innerText");
                panic!("timed out waiting for {what} ({js}); the page says:\n{body}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Opens `url` and waits for the console to draw `hash`.
    fn open(&mut self, url: &str, hash: &str) {
        self.call("Page.navigate", json!({"url": url}));
        self.wait(
            "the page",
            &format!("document.body && document.body.dataset.ready === {hash:?}"),
        );
    }

    fn screenshot(&mut self, name: &str) {
        let r = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap();
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let dir = root.join("target/console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), &png).unwrap();
        if std::env::var("CAIRN_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
            std::fs::create_dir_all(root.join("docs/img")).unwrap();
            std::fs::write(root.join("docs/img").join(name), &png).unwrap();
        }
    }

    /// Fills a field the way typing does (value, then an input event).
    fn fill(&mut self, selector: &str, text: &str) {
        self.eval(&format!(
            "(() => {{ const e = document.querySelector({selector:?}); e.focus(); e.value = {text:?}; e.dispatchEvent(new Event('input', {{bubbles: true}})); }})()"
        ));
    }

    /// A key pressed on the keyboard (to the focused element).
    fn press(&mut self, key: &str, code: u32) {
        for kind in ["keyDown", "keyUp"] {
            let text = if key == "Enter" && kind == "keyDown" {
                "\r"
            } else {
                ""
            };
            self.call(
                "Input.dispatchKeyEvent",
                json!({"type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code,
                       "nativeVirtualKeyCode": code, "text": text}),
            );
        }
    }

    fn click(&mut self, selector: &str) {
        self.wait(selector, &format!("document.querySelector({selector:?})"));
        self.eval(&format!("document.querySelector({selector:?}).click()"));
    }

    /// Confirms the page's confirmation dialog.
    fn confirm(&mut self) {
        self.wait(
            "the confirmation",
            "document.querySelector('#confirm').open",
        );
        // The dialog is focused on its safe choice.
        assert_eq!(
            self.eval("document.activeElement.id"),
            "confirm-no",
            "focus starts on Cancel"
        );
        self.click("#confirm-yes");
        self.wait(
            "the dialog to close",
            "!document.querySelector('#confirm').open",
        );
    }
}

fn text_count(b: &mut Browser, selector: &str) -> u64 {
    b.eval(&format!("document.querySelectorAll({selector:?}).length"))
        .as_u64()
        .unwrap()
}

#[test]
fn the_console_shows_executions_and_sends_signals_and_cancels() {
    let c = registered();
    c.run(&["register", BACKGROUND_CHECK]).ok();
    let dev = DevServer::start(&c, &[]);
    let base = format!("http://{}/", dev.addr);
    // The swap saga, both outcomes; two background checks.
    let ok: Value = serde_json::from_str(SWAP_OK).unwrap();
    let failing: Value = serde_json::from_str(&swap_failing_at(3)).unwrap();
    let a = dev.ok(json!({"action": "start", "workflow": "swap", "id": "order-7", "input": ok, "wait_ms": 30000}));
    assert_eq!(a["status"], "completed");
    let a = dev.ok(json!({"action": "start", "workflow": "swap", "id": "order-8", "input": failing, "wait_ms": 30000}));
    assert_eq!(a["status"], "failed");
    for id in ["bc-jane", "bc-john"] {
        let a = dev.ok(
            json!({"action": "start", "workflow": "background_check", "id": id,
            "input": {"candidate": "Jane Doe", "counties": ["Kings"]}}),
        );
        assert_eq!(a["status"], "waiting", "{a}");
    }

    let mut b = Browser::launch();
    // The list shows them, live.
    b.open(&base, "#/");
    b.wait(
        "the executions",
        "document.querySelector('#executions tbody')",
    );
    for id in [
        "order-7",
        "order-8",
        "bc-jane",
        "bc-john",
        "bc-jane/county/Kings",
    ] {
        b.wait(id, &format!("document.querySelector('tr[data-id={id:?}]')"));
    }
    b.screenshot("console-list.png");
    // Filters: by status, by id prefix.
    b.eval("document.querySelector('#f-status').value = 'failed'");
    b.click("form.filters button[type=submit]");
    b.wait(
        "the failed filter",
        "document.querySelectorAll('#executions tbody tr').length === 1 && document.querySelector('tr[data-id=\"order-8\"]')",
    );
    b.eval("document.querySelector('#f-status').value = ''");
    b.fill("#f-prefix", "bc-jane");
    b.click("form.filters button[type=submit]");
    b.wait(
        "the prefix filter",
        "document.querySelectorAll('#executions tbody tr').length === 2",
    );

    // The keyboard reaches an execution: focus its link, press Enter.
    b.eval("document.querySelector('tr[data-id=\"bc-jane\"] a').focus()");
    b.press("Enter", 13);
    b.wait(
        "the execution's page",
        "document.body.dataset.ready === '#/x/bc-jane'",
    );

    // The failed swap: its journal, the failed step, the compensations.
    b.open(&format!("{base}#/x/order-8"), "#/x/order-8");
    b.wait(
        "the journal",
        "document.querySelectorAll('#timeline li').length === 7",
    );
    assert_eq!(text_count(&mut b, "#timeline li.err"), 1, "step 3 failed");
    assert_eq!(
        text_count(&mut b, "#timeline .compensation"),
        2,
        "two compensations"
    );
    let failure = b.eval("document.querySelector('#failure').innerText");
    assert!(
        failure.as_str().unwrap().contains("compensated"),
        "{failure}"
    );
    // Payloads are collapsible, pretty-printed JSON.
    b.click("#timeline li[data-index='1'] details summary");
    let pre =
        b.eval("document.querySelector('#timeline li[data-index=\"1\"] details pre').innerText");
    assert!(pre.as_str().unwrap().contains("\"tx\""), "{pre}");
    b.screenshot("console-execution.png");

    // The background check: its child is linked; a signal sent from the
    // child's page finishes it, and the pages follow live.
    b.open(&format!("{base}#/x/bc-jane"), "#/x/bc-jane");
    b.wait("what it waits for", "document.querySelector('#waiting')");
    b.click("#timeline a[href='#/x/bc-jane%2Fcounty%2FKings']");
    b.wait(
        "the child's page",
        "document.body.dataset.ready === '#/x/bc-jane%2Fcounty%2FKings' && document.querySelector('#signal-form')",
    );
    b.fill("#sig-name", "court_result");
    b.fill("#sig-payload", r#"{"records": []}"#);
    b.click("#sig-send");
    b.confirm();
    dev.wait_status("bc-jane/county/Kings", "completed", Duration::from_secs(60));
    b.wait(
        "the live update to completed",
        "document.querySelector('#status [data-status]').dataset.status === 'completed'",
    );
    dev.wait_status("bc-jane", "completed", Duration::from_secs(60));
    b.open(&format!("{base}#/x/bc-jane"), "#/x/bc-jane");
    b.screenshot("console-background-check.png");

    // A cancel from the page: the other check ends cancelled, and so does
    // its child.
    b.open(&format!("{base}#/x/bc-john"), "#/x/bc-john");
    b.fill("#c-reason", "candidate withdrew");
    b.click("#c-send");
    b.confirm();
    dev.wait_status("bc-john", "cancelled", Duration::from_secs(60));
    dev.wait_status("bc-john/county/Kings", "cancelled", Duration::from_secs(60));
    b.wait(
        "the live update to cancelled",
        "document.querySelector('#status [data-status]').dataset.status === 'cancelled'",
    );
    let h = dev.ok(json!({"action": "history", "id": "bc-john"}));
    assert!(
        h["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "cancel-requested" && e["reason"] == "candidate withdrew"),
        "{h}"
    );

    // Pages: 30 more swaps make a second page of the list (25 a page).
    for i in 0..30 {
        dev.ok(json!({"action": "start", "workflow": "swap", "id": format!("more-{i:02}"), "input": ok, "wait_ms": 30000}));
    }
    b.open(&base, "#/");
    b.wait(
        "a full first page",
        "document.querySelectorAll('#executions tbody tr').length === 25 && document.querySelector('tr[data-id=\"more-29\"]')",
    );
    b.click("#next-page");
    b.wait(
        "the second page",
        "document.querySelector('.pager .meta').innerText === 'page 2' && document.querySelector('tr[data-id=\"order-7\"]')",
    );
    assert_eq!(
        b.eval("document.querySelector('tr[data-id=\"more-29\"]') === null"),
        true,
        "page 2 does not repeat page 1"
    );

    // A dismissed confirmation sends nothing.
    let before = dev.describe("order-7");
    b.open(&base, "#/");
    b.fill("#s-workflow", "swap");
    b.fill("#s-id", "never-started");
    b.click("#start-form button[type=submit]");
    b.wait(
        "the confirmation",
        "document.querySelector('#confirm').open",
    );
    // Escape dismisses it, as any dialog.
    b.press("Escape", 27);
    b.wait(
        "the dialog to close",
        "!document.querySelector('#confirm').open",
    );
    std::thread::sleep(Duration::from_millis(300));
    let r = dev.api(json!({"action": "describe", "id": "never-started"}));
    assert_eq!(r.status, 404, "a dismissed start writes nothing");
    assert_eq!(dev.describe("order-7"), before);

    // A nondeterminism park: the banner, and the divergent entry marked.
    dev.ok(json!({"action": "start", "workflow": "ordered", "id": "nd", "input": null}));
    let r = c.run(&["resume", "nd", "--component", TESTKIT_CHANGED, "--no-wait"]);
    assert_eq!(r.code, 3, "parked: {r:?}");
    b.open(&format!("{base}#/x/nd"), "#/x/nd");
    b.wait("the park", "document.querySelector('#parked')");
    let banner = b.eval("document.querySelector('#parked').innerText");
    assert!(banner.as_str().unwrap().contains("CRN100"), "{banner}");
    assert_eq!(
        b.eval("[...document.querySelectorAll('#timeline li.parked-at')].map(li => li.dataset.index).join(',')"),
        "1",
        "entry 1 is where the code diverged"
    );
    b.screenshot("console-parked.png");

    // The components page, with a replay check.
    b.open(&format!("{base}#/components"), "#/components");
    b.wait(
        "the components",
        "document.querySelectorAll('tr[data-hash]').length === 4",
    );
    b.eval("[...document.querySelectorAll('tr[data-hash]')].find(r => r.innerText.includes('swap')).querySelector('button').click()");
    b.wait(
        "the replay check",
        "document.querySelectorAll('#replay tbody tr').length === 20",
    );
    // The 20 most recent swaps (the sample), each compatible.
    let verdicts = b.eval(
        "[...new Set([...document.querySelectorAll('#replay tbody .badge')].map(x => x.innerText))].join(',')",
    );
    assert_eq!(verdicts, "compatible");
    b.screenshot("console-components.png");
}
