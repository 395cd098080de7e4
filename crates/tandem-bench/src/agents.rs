//! `tandem-bench agents`: how a session host and the history compare
//! with tmux and with the targets of the agents issue.
//!
//! - **throughput**: 64 MiB of coloured lines printed by an agent, until
//!   its session reads `exited` (tandem: `tandem new --agent "…; cat
//!   FILE"`, the host's emulator, log and store), against a tmux pane
//!   running the same `cat` until `tmux wait-for` returns, and beside the
//!   floor: the same `cat` in a bare PTY read to its end. Both agents wait
//!   on a FIFO, so timing starts after `tandem new` returned and after the
//!   tmux server and window exist. Target ≤ 0.7× tmux. What each keeps:
//!   tmux 2,000 lines of history per pane in memory (its default); the
//!   host only the screen, with every byte in the PTY log on disk.
//! - **memory**: 20 sessions that printed nothing, and 20 that each
//!   printed 2,000 lines of 120 characters: the hosts' and the
//!   supervisor's proportional set size together, against the tmux server
//!   holding 20 windows of the same (`history-limit 2000`). Targets
//!   ≤ 0.4 MiB per idle host, ≤ 0.5× tmux with the scrollback.
//! - **latency**: from an agent's hook event (`tandem hook`, as Claude
//!   Code runs it) to `tandem list --json` showing the new state. Target
//!   < 200 ms.
//! - **ingest**: history events per second, through `tandem hook` (one
//!   process per event, the interactive path; every hook must succeed and
//!   every event be stored) and through the structured path's batching
//!   reader (in process; its rows counted too).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::process::{StopAll, Tandem, fixture_git, run};
use crate::stats::median;

/// Compare a tandem host with tmux (throughput, memory) and time the
/// state and history paths
#[derive(clap::Args, Debug)]
pub struct AgentsArgs {
    /// The tandem binary to measure
    #[arg(long)]
    tandem: PathBuf,
    /// Timed runs of each side of each comparison
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// MiB of output for the throughput comparison
    #[arg(long, default_value_t = 64)]
    mib: usize,
    /// Idle sessions for the memory comparison
    #[arg(long, default_value_t = 20)]
    sessions: usize,
    /// Print the results as JSON instead of a table
    #[arg(long)]
    json: bool,
}

/// One measured figure against its target.
#[derive(Debug, Serialize, Default)]
struct Figure {
    name: &'static str,
    /// tandem's median.
    tandem: f64,
    /// tandem's min and max over the runs (none for a single reading).
    tandem_range: Option<(f64, f64)>,
    baseline: Option<f64>,
    baseline_range: Option<(f64, f64)>,
    unit: &'static str,
    ratio: Option<f64>,
    target: String,
    met: bool,
    /// What else goes with the figure (what each side keeps, a floor).
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

/// Min and max of `v`; `None` for fewer than two samples.
fn range(v: &[f64]) -> Option<(f64, f64)> {
    (v.len() > 1)
        .then(|| (v.iter().copied().fold(f64::INFINITY, f64::min), v.iter().copied().fold(f64::NEG_INFINITY, f64::max)))
}

pub fn run_cmd(args: &AgentsArgs) -> Result<()> {
    let bin = std::path::absolute(&args.tandem)?;
    anyhow::ensure!(bin.is_file(), "--tandem {}: no such file", bin.display());
    anyhow::ensure!(which("tmux"), "tmux is not installed; it is the baseline (apt-get install tmux)");
    let dir = tempfile::Builder::new().prefix("tandem-bench-agents-").tempdir()?;
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo)?;
    run(fixture_git(&repo).args(["init", "-q", "-b", "main"]))?;
    run(fixture_git(&repo).args(["commit", "-q", "--allow-empty", "-m", "init"]))?;
    let tandem = Tandem { bin, home: dir.path().join("home"), repo };
    let _stop = StopAll(&tandem);
    let tmux = Tmux { socket: format!("tandem-bench-{}", std::process::id()) };
    let _kill = KillTmux(&tmux);

    let mut figures = Vec::new();
    figures.push(throughput(&tandem, &tmux, dir.path(), args)?);
    figures.push(memory(&tandem, &tmux, args.sessions, false)?);
    figures.push(memory(&tandem, &tmux, args.sessions, true)?);
    let fake = dir.path().join("fake-bin");
    figures.push(latency(&tandem, &fake, args.runs.max(5))?);
    figures.extend(ingest(&tandem, dir.path(), &fake)?);

    if args.json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        print!("{}", table(&figures, args));
    }
    Ok(())
}

fn table(figures: &[Figure], args: &AgentsArgs) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} runs each where timed, medians (min–max)", args.runs);
    let _ = writeln!(out, "{:<18} {:>28} {:>28} {:>8}   {:<20} result", "", "tandem", "baseline", "ratio", "target");
    let show = |v: f64, r: Option<(f64, f64)>, unit: &str| match r {
        Some((lo, hi)) => format!("{v:.1} {unit} ({lo:.1}–{hi:.1})"),
        None => format!("{v:.1} {unit}"),
    };
    for f in figures {
        let baseline = f.baseline.map_or_else(String::new, |b| show(b, f.baseline_range, f.unit));
        let ratio = f.ratio.map_or_else(String::new, |r| format!("{r:.2}×"));
        let result = if f.target.is_empty() {
            ""
        } else if f.met {
            "ok"
        } else {
            "MISSED"
        };
        let _ = writeln!(
            out,
            "{:<18} {:>28} {:>28} {:>8}   {:<20} {result}",
            f.name,
            show(f.tandem, f.tandem_range, f.unit),
            baseline,
            ratio,
            f.target
        );
    }
    for f in figures {
        if let Some(note) = &f.note {
            let _ = writeln!(out, "  {}: {note}", f.name);
        }
    }
    out
}

/// Writes `mib` MiB of lines with colour escapes (SGR 31–36 and reset).
pub(crate) fn coloured_file(path: &Path, mib: f64) -> Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut written = 0;
    let mut n = 0u64;
    while (written as f64) < mib * 1024.0 * 1024.0 {
        let line =
            format!("\x1b[3{}mline {n:08}\x1b[0m the quick brown fox jumps over the lazy agent {n:x}\n", n % 6 + 1);
        file.write_all(line.as_bytes())?;
        written += line.len();
        n += 1;
    }
    file.flush()?;
    Ok(())
}

/// A FIFO the agents of the throughput figure wait on before printing,
/// so that timing starts once both sides are set up.
struct Gate(PathBuf);

impl Gate {
    fn new(path: PathBuf) -> Result<Gate> {
        let _ = std::fs::remove_file(&path);
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .with_context(|| format!("mkfifo {}", path.display()))?;
        Ok(Gate(path))
    }

    /// A shell command that waits for the gate, then runs `then`.
    fn then(&self, then: &str) -> String {
        format!("cat {} >/dev/null; {then}", self.0.display())
    }

    /// Opens the gate (opening its FIFO for writing waits until the agent
    /// has it open for reading; closing it ends the agent's wait) and
    /// returns when it was asked to open: the start of the timing.
    fn open(&self) -> Result<Instant> {
        let start = Instant::now();
        drop(std::fs::OpenOptions::new().write(true).open(&self.0)?);
        Ok(start)
    }
}

fn throughput(tandem: &Tandem, tmux: &Tmux, dir: &Path, args: &AgentsArgs) -> Result<Figure> {
    eprintln!("measuring throughput ({} MiB of coloured output) ...", args.mib);
    let file = dir.join("flood.txt");
    coloured_file(&file, args.mib as f64)?;
    let gate = Gate::new(dir.join("gate"))?;
    // A script without single quotes: tandem splits an agent's command
    // line as a shell would, without running one; tmux runs it with `sh -c`.
    let script = gate.then(&format!("cat {}", file.display()));
    let command = format!("sh -c '{script}'");
    let (mut t, mut b, mut floor) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..args.runs {
        let name = format!("flood-{i}");
        run(&mut tandem.cmd(["new", &name, "--bg", "--agent", &command]))?;
        let id = session_field(tandem, &name, "id")?;
        let host = host_pid(tandem, &id).context("the flood session's host pid")?;
        let start = gate.open()?;
        // The host exits once it has taken all output and recorded the
        // end; watching its pid costs nothing (polling `list` would take
        // a core from the host being measured).
        while tandem_core::process::is_running(host) {
            std::thread::sleep(Duration::from_millis(2));
        }
        wait_state(tandem, &name, "exited", Duration::from_secs(600))?;
        t.push(start.elapsed().as_secs_f64() * 1000.0);
        run(&mut tandem.cmd(["rm", "--wait", &name]))?;

        // The server and the window exist before the timing starts.
        let channel = format!("flood-{i}");
        tmux.cmd(&["-f", "/dev/null", "new-session", "-d", "-x", "80", "-y", "24", "sleep 100000"])?;
        tmux.cmd(&["set-option", "-g", "history-limit", "2000"])?;
        tmux.cmd(&["new-window", "-d", &format!("{script}; tmux -L {} wait-for -S {channel}", tmux.socket)])?;
        let start = gate.open()?;
        tmux.cmd(&["wait-for", &channel])?;
        b.push(start.elapsed().as_secs_f64() * 1000.0);
        tmux.kill_server();

        floor.push(raw_pty(&script, &gate)?);
    }
    let m = |v: &[f64]| median(v).unwrap_or_default();
    let ratio = m(&t) / m(&b);
    Ok(Figure {
        name: "throughput",
        tandem: m(&t),
        tandem_range: range(&t),
        baseline: Some(m(&b)),
        baseline_range: range(&b),
        unit: "ms",
        ratio: Some(ratio),
        target: "≤ 0.7× tmux".into(),
        met: ratio <= 0.7,
        note: Some(format!(
            "floor, the same cat in a bare PTY read to its end: {:.1} ms{}; tmux keeps 2,000 lines \
             of history per pane in memory, the host only the screen, every byte in the PTY log on disk",
            m(&floor),
            range(&floor).map_or_else(String::new, |(lo, hi)| format!(" ({lo:.1}–{hi:.1})"))
        )),
    })
}

/// `sh -c SCRIPT` in a bare 80×24 PTY, its output read until the PTY closes;
/// the time from opening `gate`, in ms.
fn raw_pty(script: &str, gate: &Gate) -> Result<f64> {
    use std::io::Read as _;
    let pty = portable_pty::native_pty_system()
        .openpty(portable_pty::PtySize { rows: 24, cols: 80, pixel_width: 0, pixel_height: 0 })
        .map_err(|e| anyhow::anyhow!("openpty: {e}"))?;
    let mut cmd = portable_pty::CommandBuilder::new("sh");
    cmd.args(["-c", script]);
    let mut child = pty.slave.spawn_command(cmd).map_err(|e| anyhow::anyhow!("spawn in a PTY: {e}"))?;
    drop(pty.slave);
    let mut reader = pty.master.try_clone_reader().map_err(|e| anyhow::anyhow!("{e}"))?;
    let reading = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        // EIO once the last writer of the slave side is gone.
        while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
        Instant::now()
    });
    let start = gate.open()?;
    let end = reading.join().map_err(|_| anyhow::anyhow!("the PTY reader panicked"))?;
    let _ = child.wait();
    Ok(end.duration_since(start).as_secs_f64() * 1000.0)
}

/// The lines of the scrollback case: 2,000 lines of 120 characters.
/// (No single quote: it goes inside `sh -c '…'`.)
const SCROLLBACK: &str = r#"i=0; while [ $i -lt 2000 ]; do printf "%0120d\n" $i; i=$((i+1)); done"#;

fn memory(tandem: &Tandem, tmux: &Tmux, sessions: usize, printed: bool) -> Result<Figure> {
    let what = if printed { "2,000 lines of 120 characters each" } else { "that printed nothing" };
    eprintln!("measuring memory ({sessions} idle sessions {what}) ...");
    let print = if printed { format!("{SCROLLBACK}; ") } else { String::new() };
    let command = format!("sh -c '{print}exec sleep 100000'");
    for i in 0..sessions {
        run(&mut tandem.cmd(["new", &format!("idle-{i}"), "--bg", "--agent", &command]))?;
    }
    tmux.cmd(&["-f", "/dev/null", "new-session", "-d", "-x", "80", "-y", "24", "sleep 100000"])?;
    tmux.cmd(&["set-option", "-g", "history-limit", "2000"])?;
    for _ in 0..sessions {
        tmux.cmd(&["new-window", "-d", &format!("{print}exec sleep 100000")])?;
    }
    let listed: serde_json::Value = serde_json::from_str(&run(&mut tandem.cmd(["list", "--json"]))?)?;
    let hosts: Vec<i32> = listed
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["name"].as_str().is_some_and(|n| n.starts_with("idle-")))
        .filter_map(|r| host_pid(tandem, r["id"].as_str()?))
        .collect();
    anyhow::ensure!(hosts.len() == sessions, "found {} of {sessions} hosts", hosts.len());
    let server: i32 = tmux.output(&["display-message", "-p", "#{pid}"])?.trim().parse().context("tmux pid")?;
    let supervisor = crate::process::supervisor_pid(tandem)?;
    // The host template that forked the hosts (their parent), when they
    // were forked: needed, so counted with them.
    let mut templates: Vec<i32> =
        hosts.iter().filter_map(|&h| parent_pid(h)).filter(|&p| p != 1 && p != supervisor).collect();
    templates.sort_unstable();
    templates.dedup();
    // Measured once every side has taken its output: no CPU used for a while.
    for &pid in hosts.iter().chain(&templates).chain([&server, &supervisor]) {
        let ticks = crate::process::cpu_ticks(pid).unwrap_or(0);
        crate::process::wait_idle(pid, Instant::now(), ticks, Duration::from_secs(60))?;
    }
    let hosts_kib: u64 = hosts.iter().map(|&p| rss_kib(p)).sum();
    let template_kib: u64 = templates.iter().map(|&p| rss_kib(p)).sum();
    let supervisor_kib = rss_kib(supervisor);
    let tandem_kib = hosts_kib + template_kib + supervisor_kib;
    let tmux_kib = rss_kib(server);
    for i in 0..sessions {
        run(&mut tandem.cmd(["rm", "--force", &format!("idle-{i}")]))?;
    }
    tmux.kill_server();
    let ratio = tandem_kib as f64 / tmux_kib as f64;
    // Per host: the hosts and the template that forked them, shared out.
    let per_host = (hosts_kib + template_kib) as f64 / sessions as f64;
    let note = format!(
        "hosts {hosts_kib} KiB + host template {template_kib} KiB ({per_host:.0} KiB per host) + supervisor \
         {supervisor_kib} KiB; proportional set sizes (Pss of /proc/PID/smaps_rollup)"
    );
    let (name, target, met) = if printed {
        ("memory scrollback", "≤ 0.5× tmux".to_owned(), ratio <= 0.5)
    } else {
        ("memory silent", "≤ 410 KiB per host".to_owned(), per_host <= 0.4 * 1024.0)
    };
    Ok(Figure {
        name,
        tandem: tandem_kib as f64,
        baseline: Some(tmux_kib as f64),
        unit: "KiB",
        ratio: Some(ratio),
        target,
        met,
        note: Some(note),
        ..Figure::default()
    })
}

fn latency(tandem: &Tandem, fake: &Path, samples: u32) -> Result<Figure> {
    eprintln!("measuring the state latency (hook event to `tandem list`) ...");
    // A `claude` that does nothing: tandem starts it with its hooks, and
    // the bench plays Claude's part by running `tandem hook` itself.
    std::fs::create_dir_all(fake)?;
    let script = fake.join("claude");
    std::fs::write(&script, "#!/bin/sh\nexec sleep 100000\n")?;
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let path = format!("{}:{}", fake.display(), std::env::var("PATH").unwrap_or_default());
    run(tandem.cmd(["new", "lat", "--bg", "--agent", "claude"]).env("PATH", &path))?;
    let id = session_field(tandem, "lat", "id")?;
    let mut times = Vec::new();
    for i in 0..samples {
        let (event, state) = if i % 2 == 0 { ("UserPromptSubmit", "running") } else { ("Stop", "idle") };
        let payload = serde_json::json!({ "hook_event_name": event, "prompt": "go", "last_assistant_message": "done" });
        let start = Instant::now();
        send_hook(tandem, &id, &payload)?;
        wait_state(tandem, "lat", state, Duration::from_secs(10))?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    run(&mut tandem.cmd(["rm", "--force", "lat"]))?;
    let m = median(&times).unwrap_or_default();
    Ok(Figure {
        name: "latency",
        tandem: m,
        tandem_range: range(&times),
        unit: "ms",
        target: "< 200 ms".into(),
        met: m < 200.0,
        ..Figure::default()
    })
}

fn ingest(tandem: &Tandem, dir: &Path, fake: &Path) -> Result<Vec<Figure>> {
    eprintln!("measuring history ingest ...");
    // Through `tandem hook`, one process per event, into a Claude
    // session (the fake `claude` of the latency figure): hook events of
    // other agents are not Claude's and are not stored.
    let path = format!("{}:{}", fake.display(), std::env::var("PATH").unwrap_or_default());
    run(tandem.cmd(["new", "ingest", "--bg", "--agent", "claude"]).env("PATH", &path))?;
    let id = session_field(tandem, "ingest", "id")?;
    let n = 200;
    let start = Instant::now();
    for i in 0..n {
        let payload = serde_json::json!({
            "hook_event_name": "PostToolUse",
            "tool_name": "Bash",
            "tool_input": { "command": format!("echo bench-{i}") },
            "tool_response": { "stdout": format!("bench-{i}\n"), "stderr": "" },
        });
        send_hook(tandem, &id, &payload).with_context(|| format!("event {i}: the ingest figure is void"))?;
    }
    let hooks = f64::from(n) / start.elapsed().as_secs_f64();
    // Every event stored: each command's text in some row of the history.
    let store = tandem_core::store::Store::open(&tandem.home.join("state/tandem.db"))?;
    let texts: Vec<String> = store.events(&id, 0, usize::MAX)?.into_iter().map(|e| e.text).collect();
    let stored = |i: i32| {
        let word = format!("bench-{i}");
        texts.iter().any(|t| t.ends_with(&word) || t.contains(&format!("{word}\n")) || t.contains(&format!("{word} ")))
    };
    let missing: Vec<i32> = (0..n).filter(|&i| !stored(i)).collect();
    if let Some(first) = missing.first() {
        bail!("{} of {n} hook events were not stored (first: bench-{first}); the ingest figure is void", missing.len());
    }
    drop(store);
    run(&mut tandem.cmd(["rm", "--force", "ingest"]))?;

    // Through the structured reader, in batches, into a fresh store.
    use tandem_core::agent::claude_stream::ClaudeStream;
    use tandem_core::agent::driver::{Driver, Recorder};
    use tandem_core::store::Store;
    let store = Store::open(&dir.join("ingest.db"))?;
    let repo = store.upsert_repo(Path::new("/bench/.git"), Path::new("/bench"))?;
    store.insert_session(&bench_session(repo))?;
    let (mut driver, mut rec) = (ClaudeStream::new(), Recorder::new("bench"));
    let lines = 100_000;
    let start = Instant::now();
    for i in 0..lines {
        let line = serde_json::json!({
            "type": "assistant",
            "message": { "content": [{ "type": "text", "text": format!("message {i} of a flood") }] },
        })
        .to_string();
        driver.line(&mut rec, &store, &line)?;
        if rec.batched() >= Recorder::BATCH {
            rec.flush(&store)?;
        }
    }
    rec.flush(&store)?;
    let stream = f64::from(lines) / start.elapsed().as_secs_f64();
    let stored = store.events("bench", 0, usize::MAX)?.len();
    anyhow::ensure!(
        stored >= lines as usize,
        "the structured reader stored {stored} of {lines} events; the ingest figure is void"
    );
    Ok(vec![
        Figure {
            name: "ingest hook",
            tandem: hooks,
            unit: "ev/s",
            met: true,
            note: Some(format!("{n} events, every `tandem hook` succeeded and every event was stored")),
            ..Figure::default()
        },
        Figure {
            name: "ingest json",
            tandem: stream,
            unit: "ev/s",
            met: true,
            note: Some(format!("{lines} events, all stored")),
            ..Figure::default()
        },
    ])
}

/// Runs `tandem hook` for session `id` with `payload` on its stdin, as
/// Claude Code runs it.
///
/// # Errors
/// It could not start, or failed (with its stderr).
pub(crate) fn send_hook(tandem: &Tandem, id: &str, payload: &serde_json::Value) -> Result<()> {
    let mut hook = tandem
        .cmd(["hook"])
        .env("TANDEM_SESSION_ID", id)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    hook.stdin.take().context("stdin")?.write_all(payload.to_string().as_bytes())?;
    let done = hook.wait_with_output()?;
    if !done.status.success() {
        bail!("tandem hook failed ({}): {}", done.status, String::from_utf8_lossy(&done.stderr).trim());
    }
    Ok(())
}

/// A running session row for the in-process ingest store.
fn bench_session(repo_id: i64) -> tandem_core::store::Session {
    tandem_core::store::Session {
        id: "bench".into(),
        repo_id,
        slug: "bench".into(),
        branch: "bench".into(),
        agent: "claude-structured".into(),
        path: PathBuf::from("/bench"),
        base_ref: "main".into(),
        base_commit: "0".into(),
        state: tandem_core::store::SessionState::Running,
        created_at: 0,
        updated_at: 0,
        owns_branch: true,
        ..tandem_core::store::Session::default()
    }
}

fn session_field(tandem: &Tandem, name: &str, field: &str) -> Result<String> {
    let listed: serde_json::Value = serde_json::from_str(&run(&mut tandem.cmd(["list", "--json"]))?)?;
    listed
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["name"] == name)
        .and_then(|r| r[field].as_str().map(str::to_owned))
        .with_context(|| format!("no {field} for session {name}"))
}

/// Polls `tandem list --json` until session `name` shows `state`.
fn wait_state(tandem: &Tandem, name: &str, state: &str, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if session_field(tandem, name, "state").is_ok_and(|s| s == state) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("session {name} did not become {state} in {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The host pid of session `id`, from its row in the store.
/// The parent of process `pid` (field 4 of `/proc/PID/stat`, after the
/// parenthesised command name).
fn parent_pid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

fn host_pid(tandem: &Tandem, id: &str) -> Option<i32> {
    let store = tandem_core::store::Store::open(&tandem.home.join("state/tandem.db")).ok()?;
    store.session(id).ok()??.host_pid
}

/// Memory of a process in KiB: its proportional set size (`Pss` in
/// `/proc/PID/smaps_rollup`: private pages, plus shared ones divided
/// among the processes sharing them, so 20 hosts running one binary are
/// not charged its code 20 times), else its `VmRSS`.
fn rss_kib(pid: i32) -> u64 {
    let field = |file: &str, key: &str| -> Option<u64> {
        std::fs::read_to_string(format!("/proc/{pid}/{file}"))
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|v| v.split_whitespace().next()?.parse().ok()))
    };
    field("smaps_rollup", "Pss:").or_else(|| field("status", "VmRSS:")).unwrap_or(0)
}

fn which(program: &str) -> bool {
    Command::new(program).arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// A tmux server of its own (`-L SOCKET`).
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> Result<()> {
        self.output(args).map(drop)
    }

    fn output(&self, args: &[&str]) -> Result<String> {
        run(Command::new("tmux").arg("-L").arg(&self.socket).args(args))
    }

    fn kill_server(&self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

struct KillTmux<'a>(&'a Tmux);

impl Drop for KillTmux<'_> {
    fn drop(&mut self) {
        self.0.kill_server();
    }
}
