//! A small W3C WebDriver client for the browser tests: `chromedriver` driving headless Chromium
//! over its HTTP API, spoken with a `TcpStream` and `serde_json` (no npm, no WebDriver crate).
//!
//! [`Browser::start`] finds `chromium` and `chromedriver` (or says why not: the test is skipped,
//! or fails when `CHATPROTO_REQUIRE_BROWSER=1`, as in CI), starts the driver on a free loopback
//! port in its own process group, and kills that group (by its id) on drop, so no browser
//! outlives the test. Every wait polls a DOM condition, bounded by [`BROWSER_DEADLINE`].

use super::TempDir;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The longest a DOM condition may take to hold (a debug server and two browsers share a loaded
/// 2-core machine). A guard against hangs, not a performance bound.
pub const BROWSER_DEADLINE: Duration = Duration::from_secs(30);

/// The W3C key of an element reference in WebDriver JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The environment variable that turns a missing browser from a skip into a failure.
const REQUIRE: &str = "CHATPROTO_REQUIRE_BROWSER";

/// Chromium's flags: headless, and quiet on the network (a closed network refuses Chromium's
/// own background connections, which would otherwise stall or spam the test).
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

/// A running `chromedriver` and the directory its browsers keep their profiles in.
pub struct Browser {
    driver: Child,
    port: u16,
    chromium: PathBuf,
    dir: TempDir,
    sessions: std::cell::Cell<u32>,
}

impl Browser {
    /// Starts chromedriver, or returns `None` after printing why the browser tests are skipped
    /// (Chromium or chromedriver missing). Panics instead when `CHATPROTO_REQUIRE_BROWSER=1`.
    pub fn start() -> Option<Browser> {
        let required = std::env::var(REQUIRE).is_ok_and(|v| v == "1");
        let chromium = find_program("CHATPROTO_CHROMIUM", &["chromium", "chromium-browser", "google-chrome"]);
        let driver = find_program("CHATPROTO_CHROMEDRIVER", &["chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            let why = "chromium and chromedriver are needed (apt-get install chromium chromium-driver)";
            assert!(!required, "{REQUIRE}=1 but the browser is missing: {why}");
            eprintln!("skipped: browser test: {why}");
            return None;
        };
        let port = free_port();
        let mut cmd = Command::new(&driver);
        cmd.arg(format!("--port={port}")).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        // Its own process group: on drop the driver and every browser it started go together.
        cmd.process_group(0);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("start {}: {e}", driver.display()));
        let browser =
            Browser { driver: child, port, chromium, dir: TempDir::new("browser"), sessions: std::cell::Cell::new(0) };
        let end = Instant::now() + BROWSER_DEADLINE;
        while browser.request("GET", "/status", None).map(|v| v["ready"] != json!(true)).unwrap_or(true) {
            assert!(Instant::now() < end, "chromedriver did not become ready on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(browser)
    }

    /// Opens a new browser window (its own profile) of `width`×`height` CSS pixels.
    #[track_caller]
    pub fn session(&self, width: u32, height: u32) -> Session<'_> {
        let n = self.sessions.get() + 1;
        self.sessions.set(n);
        let profile = self.dir.path().join(format!("profile-{n}"));
        let downloads = self.downloads(n);
        std::fs::create_dir_all(&downloads).expect("create the downloads directory");
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        args.push(format!("--window-size={width},{height}"));
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            // The tests' TLS servers use a self-signed certificate made for the test.
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": self.chromium,
                "args": args,
                "prefs": { "download.default_directory": downloads, "download.prompt_for_download": false },
            },
        }}});
        let value = self.request("POST", "/session", Some(caps)).unwrap_or_else(|e| panic!("new session: {e}"));
        let id = value["sessionId"].as_str().unwrap_or_else(|| panic!("no session id in {value}")).to_string();
        let session = Session { browser: self, id, downloads };
        // Exact CSS pixels whatever the window manager would allow (headless has a minimum width).
        session.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({
                "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600,
            }),
        );
        session.color_scheme(false);
        // Finding an element waits (bounded) for it to appear, as a user would wait to click it.
        let implicit = BROWSER_DEADLINE.as_millis() as u64;
        session.cmd("POST", "/timeouts", Some(json!({ "implicit": implicit })));
        session
    }

    fn downloads(&self, n: u32) -> PathBuf {
        self.dir.path().join(format!("downloads-{n}"))
    }

    /// One WebDriver command: the response's `value`, or the driver's error as text.
    fn request(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        http_json(self.port, method, path, body)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this struct created (its id is the driver's pid).
        unsafe { libc::kill(-(self.driver.id() as i32), libc::SIGKILL) };
        let _ = self.driver.wait();
    }
}

/// One browser window. Closed (with its Chromium) on drop.
pub struct Session<'a> {
    browser: &'a Browser,
    id: String,
    /// Where this window's downloads land.
    downloads: PathBuf,
}

impl Session<'_> {
    #[track_caller]
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let full = format!("/session/{}{path}", self.id);
        self.browser.request(method, &full, body).unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
    }

    /// A Chrome DevTools command through chromedriver (emulation of screens and colour schemes).
    #[track_caller]
    pub fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.cmd("POST", "/goog/cdp/execute", Some(json!({ "cmd": cmd, "params": params })))
    }

    /// Makes the page see `prefers-color-scheme: dark` (or light), and `prefers-reduced-motion`
    /// (so that nothing slides under a click).
    pub fn color_scheme(&self, dark: bool) {
        let scheme = if dark { "dark" } else { "light" };
        let features = json!([
            { "name": "prefers-color-scheme", "value": scheme },
            { "name": "prefers-reduced-motion", "value": "reduce" },
        ]);
        self.cdp("Emulation.setEmulatedMedia", json!({ "features": features }));
    }

    /// Loads `url` (and waits for the page's load event, as WebDriver does).
    #[track_caller]
    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) in the page; its return value.
    #[track_caller]
    pub fn js(&self, script: &str, args: &[Value]) -> Value {
        self.cmd("POST", "/execute/sync", Some(json!({ "script": script, "args": args })))
    }

    /// Runs `script` asynchronously: it ends by calling `arguments[arguments.length - 1]` with
    /// its result (bounded by the driver's script timeout).
    #[track_caller]
    pub fn js_async(&self, script: &str, args: &[Value]) -> Value {
        self.cmd("POST", "/execute/async", Some(json!({ "script": script, "args": args })))
    }

    /// Polls `script` until it returns something truthy (bounded); returns that value.
    #[track_caller]
    pub fn wait(&self, what: &str, script: &str, args: &[Value]) -> Value {
        let end = Instant::now() + BROWSER_DEADLINE;
        loop {
            let v = self.js(script, args);
            let truthy =
                !matches!(&v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("") && v != json!([]);
            if truthy {
                return v;
            }
            if Instant::now() >= end {
                let body = self.js("return document.body.innerText", &[]);
                panic!("the page never showed {what}; its text:\n{}", body.as_str().unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The element matching a CSS selector, once there is one (bounded wait).
    #[track_caller]
    pub fn find(&self, css: &str) -> String {
        let v = self.cmd("POST", "/element", Some(json!({ "using": "css selector", "value": css })));
        v[ELEMENT].as_str().unwrap_or_else(|| panic!("no element id for {css}: {v}")).to_string()
    }

    /// Clicks the element matching `css`, as a user would.
    #[track_caller]
    pub fn click(&self, css: &str) {
        let el = self.find(css);
        self.cmd("POST", &format!("/element/{el}/click"), Some(json!({})));
    }

    /// Types `text` into the element matching `css` (`\u{e007}` is Enter); a file input takes a
    /// path.
    #[track_caller]
    pub fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css);
        self.cmd("POST", &format!("/element/{el}/value"), Some(json!({ "text": text })));
    }

    /// Presses and releases one key (a WebDriver key code such as [`ESCAPE`] or [`TAB`]) on
    /// whatever has the focus.
    #[track_caller]
    pub fn press(&self, key: &str) {
        let actions = json!([{ "type": "key", "id": "keyboard", "actions": [
            { "type": "keyDown", "value": key }, { "type": "keyUp", "value": key },
        ]}]);
        self.cmd("POST", "/actions", Some(json!({ "actions": actions })));
    }

    /// The file this window downloaded as `name`, once it is complete with `len` bytes (bounded
    /// wait: Chromium writes a `.crdownload` first and renames it at the end).
    #[track_caller]
    pub fn downloaded(&self, name: &str, len: usize) -> Vec<u8> {
        let path = self.downloads.join(name);
        let end = Instant::now() + BROWSER_DEADLINE;
        loop {
            match std::fs::read(&path) {
                Ok(bytes) if bytes.len() == len => return bytes,
                _ => {}
            }
            assert!(Instant::now() < end, "{} never held {len} bytes", path.display());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A PNG of the viewport.
    #[track_caller]
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let v = self.cmd("GET", "/screenshot", None);
        base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or_default()).expect("screenshot is base64")
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _ = self.browser.request("DELETE", &format!("/session/{}", self.id), None);
    }
}

/// `Enter`, for [`Session::type_into`] and [`Session::press`].
pub const ENTER: &str = "\u{e007}";
/// `Escape`, for [`Session::press`].
pub const ESCAPE: &str = "\u{e00c}";
/// `Tab`, for [`Session::press`].
pub const TAB: &str = "\u{e004}";

/// The program named by env `var`, else the first of `names` found on PATH.
fn find_program(var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var) {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| is_executable(p)))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A loopback port nobody listens on right now (bound to 0, then released).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// One HTTP/1.1 request with a JSON body to 127.0.0.1:`port`; the JSON `value` of the answer.
fn http_json(port: u16, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect to chromedriver: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(120))).map_err(|e| e.to_string())?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).and_then(|()| s.write_all(body.as_bytes())).map_err(|e| e.to_string())?;
    // chromedriver keeps the connection open whatever we ask: read exactly one response.
    let (head, payload) = read_response(&mut s)?;
    let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or("bad status line")?;
    let json: Value = serde_json::from_slice(&payload).map_err(|e| format!("chromedriver sent bad JSON: {e}"))?;
    let value = json.get("value").cloned().unwrap_or(Value::Null);
    if status != 200 {
        return Err(format!("HTTP {status}: {} {}", value["error"], value["message"]));
    }
    Ok(value)
}

/// Reads one HTTP response: its head (lower-cased) and its body, by Content-Length or chunked.
fn read_response(s: &mut TcpStream) -> Result<(String, Vec<u8>), String> {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let mut fill = |raw: &mut Vec<u8>| -> Result<bool, String> {
        let n = s.read(&mut chunk).map_err(|e| format!("read from chromedriver: {e}"))?;
        raw.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    };
    let split = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if !fill(&mut raw)? {
            return Err("chromedriver closed before a whole response head".into());
        }
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let length = head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok());
    let chunked = head.contains("transfer-encoding: chunked") || head.contains("transfer-encoding:chunked");
    loop {
        let body = &raw[split + 4..];
        let complete = match length {
            Some(n) => body.len() >= n,
            None if chunked => body.windows(5).any(|w| w == b"0\r\n\r\n"),
            None => false,
        };
        if complete {
            break;
        }
        if !fill(&mut raw)? {
            break;
        }
    }
    let mut body = raw[split + 4..].to_vec();
    if let Some(n) = length {
        body.truncate(n);
    } else if chunked {
        body = dechunk(&body)?;
    }
    Ok((head, body))
}

/// The body of a chunked transfer encoding.
fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").ok_or("bad chunk")?;
        let size = std::str::from_utf8(&b[..eol]).ok().and_then(|s| usize::from_str_radix(s.trim(), 16).ok());
        let size = size.ok_or("bad chunk size")?;
        if size == 0 || b.len() < eol + 2 + size {
            return Ok(out);
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[(eol + 4 + size).min(b.len())..];
    }
}
