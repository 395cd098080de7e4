//! `tandem-bench web`: the web dashboard's figures (issue 20), each beside
//! the terminal path it stands next to, measured in one run:
//!
//! - **first render**: from navigation start to the dashboard's first
//!   render of every session (`performance` mark `tandem-first-render`,
//!   set by dashboard.js) in headless Chromium, with N live sessions;
//!   beside it `tandem list` with the same rows, run by run alternating.
//! - **change to page**: from just before `tandem set NAME --title T`
//!   starts to the page showing `T` (a MutationObserver stamps
//!   `Date.now()`); the command's own time is printed beside.
//! - **keystroke to echo**: one byte typed into a shell agent's terminal
//!   over the dashboard's WebSocket (after taking control) until its echo
//!   comes back, alternating with the same through `tandem attach` in a
//!   PTY. Target ≤ 30 ms median. And the same in the session page:
//!   from xterm.js taking the key (`term.input`, which fires its `onData`
//!   as a keypress does) to xterm.js having parsed the echo, so the
//!   browser's WebSocket and xterm.js's parser are counted; the key
//!   event's own dispatch and the paint (one frame at most) are not.
//! - **memory**: the `tandem serve` process's resident set with N
//!   sessions, with no page open and with P dashboard pages open.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use thirtyfour::prelude::*;

use crate::fixture::{self, Layout, Shape};
use crate::process::{StopAll, Tandem, run, run_timed};
use crate::pty::Pty;
use crate::stats::{median, ms};

/// Measure the web dashboard: first render, change latency, keystroke
/// echo, memory
#[derive(clap::Args, Debug)]
pub struct WebArgs {
    /// The tandem binary to measure
    #[arg(long)]
    tandem: PathBuf,
    /// Live sessions (shell agents)
    #[arg(long, default_value_t = 50)]
    sessions: usize,
    /// Dashboard pages open for the memory figure
    #[arg(long, default_value_t = 5)]
    pages: usize,
    /// Timed runs of each figure
    #[arg(long, default_value_t = 15)]
    runs: usize,
    /// The Chromium binary
    #[arg(long, default_value = "/usr/bin/chromium")]
    chromium: PathBuf,
    /// The ChromeDriver binary
    #[arg(long, default_value = "/usr/bin/chromedriver")]
    chromedriver: PathBuf,
}

/// The keystroke-to-echo target, median, milliseconds.
const ECHO_TARGET_MS: f64 = 30.0;

/// A child process killed (by pid) and reaped when dropped.
struct Owned(Child);

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn epoch_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn line(report: &mut String, name: &str, samples: &[f64], unit: &str) -> Result<()> {
    Ok(crate::stats::line(report, 44, name, samples, unit)?)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// `tandem serve` started in the repository, its login URL read from its
/// first line.
struct Server {
    child: Owned,
    host: String,
    token: String,
}

fn serve(tandem: &Tandem) -> Result<Server> {
    let mut child = tandem
        .cmd(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start tandem serve")?;
    let mut out = BufReader::new(child.stdout.take().context("serve's stdout")?);
    let child = Owned(child);
    let mut first = String::new();
    out.read_line(&mut first)?;
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let url = first.trim().rsplit(' ').next().unwrap_or_default();
    let Some((host, token)) = url.strip_prefix("http://").and_then(|r| r.split_once("/?token=")) else {
        bail!("tandem serve printed {first:?}, expected its login URL");
    };
    Ok(Server { child, host: host.to_owned(), token: token.to_owned() })
}

/// chromedriver on a free port and one headless Chromium session.
struct Browser {
    rt: tokio::runtime::Runtime,
    driver: WebDriver,
    _chromedriver: Owned,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start(args: &WebArgs) -> Result<Browser> {
        ensure!(args.chromium.is_file(), "{} is missing: apt-get install chromium", args.chromium.display());
        ensure!(
            args.chromedriver.is_file(),
            "{} is missing: apt-get install chromium-driver",
            args.chromedriver.display()
        );
        let port = free_port()?;
        let chromedriver = Owned(
            Command::new(&args.chromedriver)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("cannot start chromedriver")?,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            ensure!(Instant::now() < deadline, "chromedriver did not listen on {port} within 20 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let profile = tempfile::Builder::new().prefix("tandem-bench-chromium-").tempdir()?;
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(&args.chromium.display().to_string())?;
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
            "--window-size=1280,900",
            &format!("--user-data-dir={}", profile.path().display()),
        ] {
            caps.add_arg(arg)?;
        }
        let driver = rt.block_on(WebDriver::new(format!("http://127.0.0.1:{port}"), caps))?;
        Ok(Browser { rt, driver, _chromedriver: chromedriver, _profile: profile })
    }

    fn js(&self, script: &str) -> Result<serde_json::Value> {
        Ok(self.rt.block_on(self.driver.execute(script, Vec::new()))?.json().clone())
    }

    /// Runs `script` until it answers something other than null or
    /// false, for at most 30 s.
    fn wait_js(&self, what: &str, script: &str) -> Result<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.js(script)?;
            if !(v.is_null() || v == serde_json::Value::Bool(false)) {
                return Ok(v);
            }
            ensure!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn goto(&self, url: &str) -> Result<()> {
        Ok(self.rt.block_on(self.driver.goto(url))?)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let driver = self.driver.clone();
        let _ = self.rt.block_on(driver.quit());
    }
}

pub fn run_cmd(args: &WebArgs) -> Result<()> {
    let bin = std::path::absolute(&args.tandem)?;
    ensure!(bin.is_file(), "--tandem {}: no such file", bin.display());
    ensure!(args.runs >= 1 && args.sessions >= 1, "--runs and --sessions must be at least 1");
    let temp = tempfile::Builder::new().prefix("tandem-bench-web-").tempdir()?;
    let layout = Layout::new(temp.path())?;
    let tandem = layout.tandem(bin);
    let _stop = StopAll(&tandem);
    eprintln!("making a repository with {} sessions ...", args.sessions);
    fixture::build(&layout, Shape { files: 200, dirs: 10, sessions: 0 }, None)?;
    run(&mut tandem.cmd(["daemon", "start"]))?;
    for i in 0..args.sessions {
        tandem.new_session_at(&format!("s{i:02}"), "head")?;
    }
    let server = serve(&tandem)?;
    let base = format!("http://{}", server.host);
    let rss_idle = rss_kib(server.child.0.id());
    let browser = Browser::start(args)?;
    // Log in: the token URL sets the cookie and redirects to `/`.
    browser.goto(&format!("{base}/?token={}", server.token))?;
    let rendered = format!(
        "const m = performance.getEntriesByName('tandem-first-render'); \
         return m.length && document.querySelectorAll('tr[data-session]').length >= {} ? m[0].startTime : null;",
        args.sessions
    );
    browser.wait_js("the first render", &rendered)?;

    // First render, alternating with `tandem list` of the same rows.
    let (mut render, mut list) = (Vec::new(), Vec::new());
    for _ in 0..args.runs {
        browser.goto(&format!("{base}/"))?;
        let at = browser.wait_js("the first render", &rendered)?;
        render.push(at.as_f64().unwrap_or(f64::NAN));
        list.push(ms(run_timed(&mut tandem.cmd(["list"]), None)?.1));
    }

    // Change to page.
    browser.js(
        "window.__seen = null; window.__want = null; \
         new MutationObserver(() => { if (window.__want && !window.__seen && \
           document.getElementById('groups').textContent.includes(window.__want)) window.__seen = Date.now(); }) \
         .observe(document.getElementById('groups'), {childList: true, subtree: true, characterData: true}); return true;",
    )?;
    let (mut change, mut set_cmd) = (Vec::new(), Vec::new());
    for k in 0..args.runs {
        let title = format!("bench-title-{k}");
        browser.js(&format!("window.__seen = null; window.__want = '{title}'; return true;"))?;
        let before = epoch_ms();
        let took = run_timed(&mut tandem.cmd(["set", "s00", "--title", &title]), None)?.1;
        let seen = browser.wait_js("the new title on the page", "return window.__seen")?;
        change.push(seen.as_f64().unwrap_or(f64::NAN) - before);
        set_cmd.push(ms(took));
    }

    // Keystroke to echo: the web terminal against `tandem attach`.
    // Two sessions, so neither client sees the other's echo.
    let id = session_id(&tandem, "s01")?;
    let mut socket = terminal(&server, &id)?;
    let mut attach = attach(&tandem, "s02")?;
    let (mut web, mut tty) = (Vec::new(), Vec::new());
    for k in 0..args.runs {
        let key = [b'a' + u8::try_from(k % 26).unwrap_or(0)];
        web.push(echo_web(&mut socket, key[0])?);
        tty.push(attach.echo(key[0], "tandem attach")?);
    }
    drop(attach);
    drop(socket);
    let page = page_echo(&browser, &base, &id, args.runs)?;

    // Memory with pages open.
    for _ in 1..args.pages {
        let handle = browser.rt.block_on(browser.driver.new_tab())?;
        browser.rt.block_on(browser.driver.switch_to_window(handle))?;
        browser.goto(&format!("{base}/"))?;
        browser.wait_js("the first render", &rendered)?;
    }
    let rss_pages = rss_kib(server.child.0.id());

    let mut report = String::new();
    writeln!(report, "tandem serve with {} sessions, {} runs each, alternating", args.sessions, args.runs)?;
    writeln!(report, "{:<44} {:>10} {:>20}", "figure", "median", "min–max")?;
    line(&mut report, "dashboard first render (navigation → rows)", &render, "ms")?;
    line(&mut report, "  beside: tandem list (same rows)", &list, "ms")?;
    line(&mut report, "change → page (tandem set --title start)", &change, "ms")?;
    line(&mut report, "  beside: the tandem set command itself", &set_cmd, "ms")?;
    line(&mut report, "keystroke → echo, web terminal (WebSocket)", &web, "ms")?;
    line(&mut report, "keystroke → echo, in the page (xterm.js)", &page, "ms")?;
    line(&mut report, "  beside: keystroke → echo, tandem attach", &tty, "ms")?;
    writeln!(
        report,
        "server memory (RSS): {} KiB with no page, {} KiB with {} pages open",
        rss_idle, rss_pages, args.pages
    )?;
    let mid = median(&page).unwrap_or(f64::NAN);
    let verdict = if mid <= ECHO_TARGET_MS { "met" } else { "MISSED" };
    writeln!(report, "target: web keystroke → echo ≤ {ECHO_TARGET_MS} ms median: {verdict}")?;
    print!("{report}");
    Ok(())
}

/// Keystroke to echo inside the session page: takes control, then for
/// each run gives xterm.js a key and waits (in the page) until the line
/// under the cursor shows it, then erases it again.
fn page_echo(browser: &Browser, base: &str, id: &str, runs: usize) -> Result<Vec<f64>> {
    browser.goto(&format!("{base}/session/{id}"))?;
    browser.wait_js(
        "the terminal",
        "return typeof terminal === 'object' && terminal.open && terminal.ws && terminal.ws.readyState === 1",
    )?;
    browser.js("document.getElementById('take-control').click(); return true;")?;
    browser.wait_js("control", "return terminal.control === true")?;
    // Let the redraw after taking control settle.
    std::thread::sleep(Duration::from_millis(300));
    let script = r"
        const [key, done] = [arguments[0], arguments[arguments.length - 1]];
        const t = terminal.term;
        const line = () => { const b = t.buffer.active; const l = b.getLine(b.baseY + b.cursorY); return l ? l.translateToString(false, 0, b.cursorX) : ''; };
        const before = line();
        const start = performance.now();
        const sub = t.onWriteParsed(() => {
          if (line() === before + key) {
            const took = performance.now() - start;
            sub.dispose();
            const back = t.onWriteParsed(() => { if (line() === before) { back.dispose(); done(took); } });
            t.input('');
          }
        });
        t.input(key);
        setTimeout(() => done(null), 10000);";
    let mut samples = Vec::new();
    for k in 0..runs {
        let key = char::from(b'a' + u8::try_from(k % 26).unwrap_or(0)).to_string();
        let took = browser.rt.block_on(browser.driver.execute_async(script, vec![serde_json::Value::String(key)]))?;
        let took = took.json().as_f64().context("no echo in the page within 10 s")?;
        samples.push(took);
    }
    Ok(samples)
}

fn session_id(tandem: &Tandem, name: &str) -> Result<String> {
    let out = run(&mut tandem.cmd(["list", "--json"]))?;
    let rows: serde_json::Value = serde_json::from_str(&out)?;
    rows.as_array()
        .into_iter()
        .flatten()
        .find(|r| r["name"] == name)
        .and_then(|r| r["id"].as_str().map(str::to_owned))
        .with_context(|| format!("no session {name} in tandem list --json"))
}

type Socket = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

/// The session's terminal over the dashboard's WebSocket, in control.
fn terminal(server: &Server, id: &str) -> Result<Socket> {
    use tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}/api/sessions/{id}/terminal", server.host).into_client_request()?;
    let headers = request.headers_mut();
    headers.insert("Origin", format!("http://{}", server.host).parse()?);
    headers.insert("Cookie", format!("tandem_token={}", server.token).parse()?);
    let (mut socket, _) = tungstenite::connect(request)?;
    socket.send(tungstenite::Message::text(r#"{"type":"control"}"#))?;
    // Let the screen's first redraw pass.
    drain(&mut socket, Duration::from_millis(300))?;
    Ok(socket)
}

fn drain(socket: &mut Socket, quiet: Duration) -> Result<()> {
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = socket.get_ref() {
        s.set_read_timeout(Some(quiet))?;
    }
    loop {
        match socket.read() {
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
            {
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Types `key`, waits for it to come back, then erases it (Backspace)
/// and lets that echo pass; answers the first wait in milliseconds.
fn echo_web(socket: &mut Socket, key: u8) -> Result<f64> {
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = socket.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
    }
    let input = |byte: u8| format!(r#"{{"type":"input","data":"{}"}}"#, char::from(byte).escape_default());
    let start = Instant::now();
    socket.send(tungstenite::Message::text(input(key)))?;
    loop {
        match socket.read()? {
            tungstenite::Message::Binary(bytes) if bytes.contains(&key) => break,
            _ => {}
        }
        ensure!(start.elapsed() < Duration::from_secs(10), "no echo over the WebSocket within 10 s");
    }
    let took = ms(start.elapsed());
    socket.send(tungstenite::Message::text(r#"{"type":"input","data":"\u007f"}"#))?;
    drain(socket, Duration::from_millis(50))?;
    Ok(took)
}

/// `tandem attach NAME` in a PTY.
fn attach(tandem: &Tandem, name: &str) -> Result<Pty> {
    let mut cmd = portable_pty::CommandBuilder::new(&tandem.bin);
    cmd.args(["attach", name]);
    cmd.cwd(&tandem.repo);
    cmd.env("TANDEM_HOME", &tandem.home);
    Pty::start(cmd)
}
