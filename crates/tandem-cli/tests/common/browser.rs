//! A real Chromium driven through chromedriver (WebDriver, the
//! `thirtyfour` client), and `tandem serve` under a test's `TANDEM_HOME`.
//!
//! - [`Browser`]: starts `chromedriver --port=0` in its own process group
//!   (ended by that group's id on drop), then one headless Chromium
//!   session with a fresh profile. thirtyfour is async: the helper keeps a
//!   current-thread tokio runtime and offers sync-looking calls
//!   ([`Browser::js`], [`Browser::click`], …), so tests stay plain
//!   `#[test]`s.
//! - `tandem serve` itself is [`super::web::Serve`].
//! - [`request`]: one raw HTTP/1.1 request, for the refusals (missing
//!   token, foreign `Origin`, a WebSocket upgrade) a browser would not
//!   send as such.
//!
//! Screenshots go to `target/test-artefacts/<name>.png` (next to the test
//! binary's target folder, so `CARGO_TARGET_DIR` is followed).

use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use thirtyfour::prelude::*;
use thirtyfour::{ChromiumLikeCapabilities, WebDriver};

use super::{WAIT, skipped};

/// The Chromium the Debian package `chromium` installs.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Its driver, from the Debian package `chromium-driver`.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A headless Chromium with one WebDriver session.
pub struct Browser {
    rt: tokio::runtime::Runtime,
    driver: Option<WebDriver>,
    chromedriver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a browser at 1280×800; `None` (the test is
    /// skipped, saying so) when Chromium or chromedriver is not installed
    /// and `TANDEM_TEST_REQUIRE_AGENTS` is unset (`.ci/run` sets it, and
    /// `scripts/test.sh` installs both).
    pub fn start() -> Option<Browser> {
        if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
            assert!(
                std::env::var_os("TANDEM_TEST_REQUIRE_AGENTS").is_none(),
                "Chromium and chromedriver are required here but {CHROMIUM} or {CHROMEDRIVER} is missing; \
                 run `bash scripts/test.sh`, which installs them"
            );
            skipped("Chromium or chromedriver is not installed; `bash scripts/test.sh` installs them");
            return None;
        }
        // Three tries: under a full suite's load a chromedriver has once
        // said nothing in 20 s; a new one is started in its place.
        let mut started = None;
        for _ in 0..3 {
            let mut command = Command::new(CHROMEDRIVER);
            command.arg("--port=0").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
            let mut chromedriver = command.spawn().expect("start chromedriver");
            let stdout = chromedriver.stdout.take().expect("chromedriver's stdout");
            let port = read_first(stdout, WAIT, |line| {
                line.split("started successfully on port ")
                    .nth(1)?
                    .trim_end_matches(['.', '\n', '\r'])
                    .parse::<u16>()
                    .ok()
            });
            match port {
                Some(port) => {
                    started = Some((chromedriver, port));
                    break;
                }
                None => {
                    let _ = chromedriver.kill();
                    let _ = chromedriver.wait();
                }
            }
        }
        let Some((chromedriver, port)) = started else {
            panic!("chromedriver did not say which port it listens on, three times");
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
        let profile = tempfile::Builder::new().prefix("chromium").tempdir_in("/tmp").expect("a profile folder");
        let mut browser = Browser { rt, driver: None, chromedriver, _profile: profile };
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(CHROMIUM).expect("binary");
        caps.set_browser_log_level(thirtyfour::LoggingPrefsLogLevel::Warning).expect("log level");
        for arg in [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,800",
            &format!("--user-data-dir={}", browser._profile.path().display()),
        ] {
            caps.add_arg(arg).expect("an argument");
        }
        let driver = browser
            .rt
            .block_on(WebDriver::new(format!("http://127.0.0.1:{port}"), caps))
            .expect("a Chromium session through chromedriver");
        browser.driver = Some(driver);
        Some(browser)
    }

    /// The WebDriver session (for calls the helpers here do not cover;
    /// run them with [`Browser::block_on`]).
    pub fn driver(&self) -> &WebDriver {
        self.driver.as_ref().expect("the session is open")
    }

    /// Runs `future` to its end on the helper's runtime.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.rt.block_on(future)
    }

    /// Opens `url` and waits for its load event.
    pub fn goto(&self, url: &str) {
        self.block_on(self.driver().goto(url)).unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) in the
    /// page; answers what it returns.
    pub fn js(&self, script: &str, args: Vec<Value>) -> Value {
        let ret = self.block_on(self.driver().execute(script, args)).unwrap_or_else(|e| panic!("script failed: {e}"));
        ret.json().clone()
    }

    /// Polls `script` until it returns something other than `null`,
    /// `undefined` or `false`, for at most `timeout`; answers that value.
    /// Panics with `what` (and the page's text) when time runs out.
    pub fn wait_js(&self, what: &str, timeout: Duration, script: &str, args: Vec<Value>) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.js(script, args.clone());
            if !(v.is_null() || v == Value::Bool(false)) {
                return v;
            }
            if Instant::now() >= deadline {
                let text = self.js("return document.body ? document.body.innerText : ''", vec![]);
                panic!(
                    "timed out after {timeout:?} waiting for {what}; the page shows:\n{}\nthe console said:\n{}",
                    text.as_str().unwrap_or(""),
                    self.console().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The page's console warnings and errors so far (script errors,
    /// Content-Security-Policy refusals, failed requests).
    pub fn console(&self) -> Vec<String> {
        self.block_on(self.driver().browser_log())
            .map(|entries| entries.into_iter().map(|e| format!("{} {}", e.level, e.message)).collect())
            .unwrap_or_default()
    }

    /// Waits until an element matches `css` (for at most [`WAIT`]);
    /// answers its visible text.
    pub fn wait_text(&self, css: &str) -> String {
        let v = self.wait_js(
            &format!("an element {css}"),
            WAIT,
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;",
            vec![css.into()],
        );
        v.as_str().unwrap_or_default().to_owned()
    }

    /// The first element matching `css`, waiting for it for at most
    /// [`WAIT`].
    pub fn find(&self, css: &str) -> WebElement {
        self.wait_js(
            &format!("an element {css}"),
            WAIT,
            "return document.querySelector(arguments[0]) !== null",
            vec![css.into()],
        );
        self.block_on(self.driver().find(By::Css(css))).unwrap_or_else(|e| panic!("find {css}: {e}"))
    }

    /// A click on the first element matching `css`, as a person makes
    /// it: scrolled to the middle of the screen, refused (panics) when
    /// something else covers its centre, then WebDriver's real mouse
    /// click, checked to have reached the element. A live page can move
    /// things between WebDriver's hit test and its click (the dashboard
    /// redraws its rows on every change; a terminal that held the focus
    /// scrolls the page): then the click is made again, up to five times.
    /// Should chromedriver call the click intercepted although the
    /// element was uncovered just before, it is clicked from the page.
    pub fn click(&self, css: &str) {
        for _ in 0..5 {
            let element = self.find(css);
            let covered = self.js(
                r"const e = document.querySelector(arguments[0]);
                  e.scrollIntoView({block: 'center', inline: 'center'});
                  const r = e.getBoundingClientRect();
                  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
                  window.__tandemClicked = false;
                  e.addEventListener('click', () => { window.__tandemClicked = true; }, {once: true, capture: true});
                  return hit && (hit === e || e.contains(hit)) ? null : (hit ? hit.outerHTML.slice(0, 200) : 'nothing');",
                vec![css.into()],
            );
            if !covered.is_null() {
                let shot = self.screenshot("click-failed", None);
                panic!("{css} is covered by {covered} (the page as it was: {})", shot.display());
            }
            match self.block_on(element.click()) {
                // A link that was followed leaves a new page without the mark.
                Ok(()) if self.js("return window.__tandemClicked !== false", vec![]) == Value::Bool(true) => return,
                Ok(()) => continue,
                Err(e) if e.to_string().contains("stale") => continue,
                Err(e) if e.to_string().contains("intercepted") => {
                    self.js("document.querySelector(arguments[0]).click()", vec![css.into()]);
                    return;
                }
                Err(e) => {
                    let shot = self.screenshot("click-failed", None);
                    panic!("click {css}: {e}\n(the page as it was: {})", shot.display());
                }
            }
        }
        let shot = self.screenshot("click-failed", None);
        panic!("five clicks on {css} did not reach it (the page as it was: {})", shot.display());
    }

    /// Types `text` into the element matching `css`, as key presses.
    pub fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.block_on(element.send_keys(text)).unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// The page's viewport as a phone's (`mobile`: touch, the page's
    /// viewport meta honoured) or a desktop's, `width`×`height` CSS pixels.
    pub fn viewport(&self, width: u32, height: u32, mobile: bool) {
        let params = serde_json::json!({
            "width": width, "height": height, "deviceScaleFactor": if mobile { 2 } else { 1 }, "mobile": mobile,
        });
        self.block_on(self.driver().cdp().send_raw("Emulation.setDeviceMetricsOverride", params))
            .unwrap_or_else(|e| panic!("set the viewport: {e}"));
    }

    /// Saves the page as `target/test-artefacts/<name>.png`; with
    /// `TANDEM_UPDATE_SCREENSHOTS=1` also as `docs/<docs>` when `docs` is
    /// given. Answers the artefact's path.
    pub fn screenshot(&self, name: &str, docs: Option<&str>) -> PathBuf {
        let png = self.block_on(self.driver().screenshot_as_png()).expect("a screenshot");
        let dir = artefacts();
        std::fs::create_dir_all(&dir).expect("the artefacts folder");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, &png).expect("write the screenshot");
        if let Some(docs) = docs
            && std::env::var("TANDEM_UPDATE_SCREENSHOTS").as_deref() == Ok("1")
        {
            let to = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs").join(docs);
            std::fs::write(&to, &png).expect("write the screenshot into docs/");
        }
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(driver) = self.driver.take() {
            let _ = self.rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), driver.quit()).await });
        }
        // chromedriver and any Chromium it left: its own process group.
        let pgid = nix::unistd::Pid::from_raw(self.chromedriver.id() as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.chromedriver.wait();
    }
}

/// `target/test-artefacts`, found from the test binary's own path
/// (`<target>/debug/deps/runner-…`), so `CARGO_TARGET_DIR` is followed.
pub fn artefacts() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let target = exe.ancestors().nth(3).expect("the target folder").to_path_buf();
    target.join("test-artefacts")
}

/// Reads `stream` line by line on a thread (to its end, so the writer is
/// never blocked) and answers the first `pick(line)` that is `Some`, or
/// `None` after `timeout`.
fn read_first<T: Send + 'static>(
    stream: impl Read + Send + 'static,
    timeout: Duration,
    pick: impl Fn(&str) -> Option<T> + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if !sent && let Some(v) = pick(&line) {
                let _ = tx.send(v);
                sent = true;
            }
        }
    });
    rx.recv_timeout(timeout).ok()
}

/// One raw HTTP/1.1 request to `addr` (`Host` is the address, then
/// `headers`), answered status and body.
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to tandem serve");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("connection")) {
        text.push_str("Connection: close\r\n");
    }
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        text.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    text.push_str("\r\n");
    text.push_str(body);
    stream.write_all(text.as_bytes()).expect("send the request");
    // A 101 keeps the connection open: read only the head then.
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
        if answer.starts_with(b"HTTP/1.1 101") && answer.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}
