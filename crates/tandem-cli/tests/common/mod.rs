//! The test environment: a temporary `TANDEM_HOME`, home folder and git
//! repositories, and the real `tandem` binary run with a clean
//! environment. `Pty` drives a command in a real pseudo-terminal and reads
//! its screen through a terminal emulator.

#![allow(dead_code)]

pub mod anthropic;
pub mod browser;
pub mod gemini;
pub mod github;
pub mod http;
pub mod openai;
pub mod sshd;
pub mod web;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

/// The shell agent's prompt in tests (from the test home's `.bashrc`).
pub const PROMPT: &str = "tsh$";

/// How long a test waits for something a process does.
pub const WAIT: Duration = Duration::from_secs(20);

pub struct TestEnv {
    pub tmp: tempfile::TempDir,
    /// `TANDEM_HOME`.
    pub tandem_home: PathBuf,
    /// `HOME` for every process (no user dotfiles leak in).
    pub home: PathBuf,
    /// A repository with one commit on `main`.
    pub repo: PathBuf,
    /// Extra environment for `tandem` (and so for agents).
    pub env: Vec<(String, String)>,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let tmp = tempfile::Builder::new().prefix("td").tempdir_in("/tmp").expect("tempdir");
        let root = tmp.path().to_path_buf();
        let home = root.join("home");
        std::fs::create_dir_all(&home).expect("home");
        std::fs::write(
            home.join(".gitconfig"),
            "[user]\n\tname = Test\n\temail = test@example.com\n[init]\n\tdefaultBranch = main\n",
        )
        .expect("gitconfig");
        // A prompt tests can wait for (root's default ends in `#`).
        std::fs::write(home.join(".bashrc"), "PS1='tsh$ '\n").expect("bashrc");
        let env = TestEnv { tandem_home: root.join("th"), home, repo: root.join("repo"), tmp, env: Vec::new() };
        env.git_in(&root, &["init", "-q", "-b", "main", "repo"]);
        std::fs::write(env.repo.join("README.md"), "# test repo\n").expect("write");
        env.git(&["add", "README.md"]);
        env.git(&["commit", "-q", "-m", "initial commit"]);
        env
    }

    /// `git ARGS…` in `dir`, whatever its exit status.
    pub fn command_git_in(&self, dir: &Path, args: &[&str]) -> Output {
        Command::new("git")
            .current_dir(dir)
            .args(args)
            .env("HOME", &self.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_EDITOR", "true")
            .output()
            .expect("git runs")
    }

    /// `tandem list --archived --json`, parsed.
    pub fn archived(&self) -> Vec<serde_json::Value> {
        serde_json::from_str::<serde_json::Value>(&self.ok(&["list", "--archived", "--json"]))
            .expect("json")
            .as_array()
            .expect("array")
            .clone()
    }

    /// The `tandem` binary under test.
    pub fn bin() -> PathBuf {
        PathBuf::from(env!("CARGO_BIN_EXE_tandem"))
    }

    fn base_env(&self, cmd: &mut Command) {
        cmd.env_clear()
            .env("PATH", std::env::var("TEST_PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".to_owned()))
            .env("HOME", &self.home)
            .env("TANDEM_HOME", &self.tandem_home)
            .env("SHELL", "/bin/bash")
            .env("TERM", "xterm-256color")
            .env("LANG", "C.UTF-8")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("TANDEM_LOG", "info");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
    }

    /// A `tandem` command in `dir`, environment set.
    pub fn command_in(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(Self::bin());
        self.base_env(&mut cmd);
        cmd.current_dir(dir).args(args).stdin(Stdio::null());
        cmd
    }

    /// Runs `tandem ARGS` in the repository.
    #[must_use = "assert on the output"]
    pub fn tandem(&self, args: &[&str]) -> Output {
        self.tandem_in(&self.repo, args)
    }

    #[must_use = "assert on the output"]
    pub fn tandem_in(&self, dir: &Path, args: &[&str]) -> Output {
        self.command_in(dir, args).output().expect("run tandem")
    }

    /// Runs `tandem ARGS`, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.tandem(args);
        assert!(out.status.success(), "tandem {args:?} failed: {}\n{}", out.status, stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `tandem ARGS`, asserts it fails with exit 1 and an error in
    /// tandem's format on stderr: one `error: ` line, then only
    /// `caused by: ` and `hint: ` lines (issue 19). Returns the error as
    /// one line, causes after `: ` and hints after `; `, the way
    /// `Failure`'s text reads, so tests can match a message and its hint
    /// in one string.
    pub fn fails(&self, args: &[&str]) -> String {
        self.fails_in(&self.repo, args)
    }

    pub fn fails_in(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.tandem_in(dir, args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "tandem {args:?} should fail with exit 1; stderr: {err}");
        error_line(&err).unwrap_or_else(|| panic!("tandem {args:?}: expected an error in tandem's format, got:\n{err}"))
    }

    /// `git ARGS` in the repository; asserts success; returns stdout.
    pub fn git(&self, args: &[&str]) -> String {
        self.git_in(&self.repo, args)
    }

    /// `git ARGS` in `dir`; asserts success; returns stdout.
    ///
    /// `git worktree list` that fails on a worktree a concurrent `git
    /// worktree add` (a pool refill) has half made ("failed to read
    /// .git/worktrees/NAME/commondir") is tried again, up to 25 times
    /// 20 ms apart, as tandem's own `git::worktree_list` does.
    pub fn git_in(&self, dir: &Path, args: &[&str]) -> String {
        let mut tries = 0;
        loop {
            let out = Command::new("git")
                .current_dir(dir)
                .args(args)
                .env("HOME", &self.home)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env_remove("GIT_DIR")
                .env_remove("GIT_INDEX_FILE")
                .output()
                .expect("run git");
            let half_made = args.starts_with(&["worktree", "list"]) && stderr(&out).contains("/worktrees/");
            if !out.status.success() && half_made && tries < 25 {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            assert!(out.status.success(), "git {args:?} failed: {}", stderr(&out));
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
    }

    /// Writes `text` to `file` (relative to worktree `wt`, its folders
    /// made) and commits it there with `message`.
    pub fn commit_in(&self, wt: &Path, file: &str, text: &str, message: &str) {
        if let Some(dir) = Path::new(file).parent() {
            std::fs::create_dir_all(wt.join(dir)).expect("mkdir");
        }
        std::fs::write(wt.join(file), text).expect("write");
        self.git_in(wt, &["add", file]);
        self.git_in(wt, &["commit", "-q", "-m", message]);
    }

    /// `tandem list --json`, parsed.
    pub fn sessions(&self) -> Vec<serde_json::Value> {
        let out = self.ok(&["list", "--json"]);
        serde_json::from_str::<serde_json::Value>(&out)
            .expect("list --json is JSON")
            .as_array()
            .expect("an array")
            .clone()
    }

    pub fn session(&self, name: &str) -> serde_json::Value {
        self.sessions()
            .into_iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no session {name} in tandem list"))
    }

    /// Writes the user's `config.toml` (under `TANDEM_HOME`).
    pub fn user_config(&self, text: &str) {
        let dir = self.tandem_home.join("config");
        std::fs::create_dir_all(&dir).expect("config dir");
        std::fs::write(dir.join("config.toml"), text).expect("config");
    }

    /// The worktree of a session, from `tandem list --json`.
    pub fn path_of(&self, name: &str) -> PathBuf {
        PathBuf::from(self.session(name)["path"].as_str().expect("path"))
    }

    /// Waits until the session's `state` is `state`.
    pub fn wait_state(&self, name: &str, state: &str) -> serde_json::Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let s = self.session(name);
            if s["state"] == state {
                return s;
            }
            if Instant::now() >= deadline {
                // What the agent did, so a failure in CI can be read.
                let history = String::from_utf8_lossy(&self.tandem(&["history", name]).stdout).into_owned();
                let logs = String::from_utf8_lossy(&self.tandem(&["logs", name]).stdout).into_owned();
                let tail: Vec<&str> = logs.lines().rev().take(30).collect();
                // Also among the closing lines of scripts/test.sh, which CI keeps.
                let last: Vec<&str> = history.lines().rev().take(4).collect();
                note(&format!(
                    "wait_state({name}, {state}) timed out; state {}; last events: {}",
                    s["state"],
                    last.join(" | ")
                ));
                panic!(
                    "session {name} never became {state}: {s}\nhistory:\n{}\nlast lines of its logs:\n{}",
                    history,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything that says what the repository holds: branches, worktrees
    /// and refs. Equal before and after a refused command. Checkpoint refs
    /// are left out: the supervisor makes them on its own time, when an
    /// agent's turn ends (issue 22).
    pub fn repo_state(&self) -> String {
        let refs = self.git(&["for-each-ref", "--format=%(refname) %(objectname)"]);
        let refs: Vec<&str> = refs.lines().filter(|l| !l.starts_with("refs/tandem/checkpoints/")).collect();
        format!(
            "{}\n{}\n{}",
            refs.join("\n"),
            self.git(&["worktree", "list", "--porcelain"]),
            self.git(&["status", "--porcelain"])
        )
    }

    /// The supervisor's pid, from its lock file.
    pub fn supervisor_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.tandem_home.join("run/supervisor.lock")).ok()?.trim().parse().ok()
    }

    /// Starts `tandem ARGS` in the repository inside a real PTY.
    pub fn pty(&self, args: &[&str], rows: u16, cols: u16) -> Pty {
        let mut cmd = CommandBuilder::new(Self::bin());
        cmd.args(args);
        cmd.cwd(&self.repo);
        cmd.env_clear();
        let mut std_cmd = Command::new("true");
        self.base_env(&mut std_cmd);
        for (k, v) in std_cmd.get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        Pty::spawn(cmd, rows, cols)
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // Stop what the test started: the supervisor and every host (they
        // are detached on purpose, so nothing else would).
        if let Some(pid) = self.supervisor_pid() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        let db = self.tandem_home.join("state/tandem.db");
        let Ok(conn) = rusqlite::Connection::open(&db) else { return };
        let Ok(mut stmt) = conn.prepare("SELECT agent_pid, host_pid FROM sessions") else { return };
        let pids: Vec<(Option<i32>, Option<i32>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map(|rows| rows.filter_map(Result::ok).collect())
            .unwrap_or_default();
        for (agent, host) in pids {
            if let Some(pid) = agent {
                let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
            if let Some(pid) = host {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
        }
        // A killed host removes no cgroup: remove the sandboxed sessions'
        // (tandem_core::limits) rather than leave them on the machine.
        let Ok(mut stmt) = conn.prepare("SELECT id FROM sessions WHERE sandbox = 'workspace'") else { return };
        let ids: Vec<String> =
            stmt.query_map([], |r| r.get(0)).map(|rows| rows.filter_map(Result::ok).collect()).unwrap_or_default();
        for id in ids {
            let _ = Command::new(Self::bin())
                .args(["sandbox-limit", "--remove", &tandem_core::limits::cgroup_name(&id)])
                .stdin(Stdio::null())
                .status();
        }
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `f` until it returns `Some`, for at most [`WAIT`].
pub fn wait_for<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    wait_within(what, WAIT, f)
}

/// Polls `f` until it returns `Some`, for at most `timeout`.
pub fn wait_within<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A process in a real pseudo-terminal, its screen kept by a `vt100`
/// emulator.
pub struct Pty {
    pub screen: Arc<Mutex<vt100::Parser>>,
    /// Everything the process wrote, raw.
    pub raw: Arc<Mutex<Vec<u8>>>,
    /// Set once the reader got the end of the output: every process
    /// holding the terminal has closed it.
    ended: Arc<std::sync::atomic::AtomicBool>,
    writer: Box<dyn Write + Send>,
    master: Box<dyn portable_pty::MasterPty + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
}

impl Pty {
    pub fn spawn(cmd: CommandBuilder, rows: u16, cols: u16) -> Pty {
        let pair =
            native_pty_system().openpty(PtySize { rows, cols, pixel_width: 0, pixel_height: 0 }).expect("openpty");
        let child = pair.slave.spawn_command(cmd).expect("spawn in pty");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("reader");
        let writer = pair.master.take_writer().expect("writer");
        let screen = Arc::new(Mutex::new(vt100::Parser::new(rows, cols, 1000)));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let ended = Arc::new(std::sync::atomic::AtomicBool::new(false));
        {
            let (screen, raw, ended) = (Arc::clone(&screen), Arc::clone(&raw), Arc::clone(&ended));
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = reader.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    screen.lock().expect("screen").process(&buf[..n]);
                    raw.lock().expect("raw").extend_from_slice(&buf[..n]);
                }
                ended.store(true, std::sync::atomic::Ordering::SeqCst);
            });
        }
        Pty { screen, raw, ended, writer, master: pair.master, child }
    }

    /// The screen's text now.
    pub fn contents(&self) -> String {
        self.screen.lock().expect("screen").screen().contents()
    }

    /// Everything written so far, escape sequences included, lossily.
    pub fn raw_text(&self) -> String {
        String::from_utf8_lossy(&self.raw.lock().expect("raw")).into_owned()
    }

    /// Waits until the screen shows `text`; returns the screen.
    pub fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let contents = self.contents();
            if contents.contains(text) {
                return contents;
            }
            assert!(Instant::now() < deadline, "screen never showed {text:?}; it shows:\n{contents}");
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Waits until the raw output holds `text` (the last bytes can arrive
    /// after the process has exited); returns the raw output.
    pub fn wait_for_raw(&self, text: &str) -> String {
        wait_for(&format!("{text:?} in the output"), || {
            let raw = self.raw_text();
            raw.contains(text).then_some(raw)
        })
    }

    /// Waits until every process holding the terminal has closed it, so
    /// nothing more can come; returns all the raw output. For asserting
    /// what the output does *not* hold.
    pub fn wait_all_output(&self) -> String {
        wait_for("the end of the terminal's output", || {
            self.ended.load(std::sync::atomic::Ordering::SeqCst).then(|| self.raw_text())
        })
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write to pty");
        self.writer.flush().expect("flush pty");
    }

    /// Types a line and Enter (as a separate write, as a person would).
    pub fn type_line(&mut self, line: &str) {
        self.send(line.as_bytes());
        std::thread::sleep(Duration::from_millis(50));
        self.send(b"\r");
    }

    pub fn resize(&self, rows: u16, cols: u16) {
        self.master.resize(PtySize { rows, cols, pixel_width: 0, pixel_height: 0 }).expect("resize");
        self.screen.lock().expect("screen").screen_mut().set_size(rows, cols);
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self) -> u32 {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.exit_code();
            }
            assert!(Instant::now() < deadline, "process in pty did not exit; screen:\n{}", self.contents());
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// The real CLI of agent `name` (`claude`, `codex`, `gemini`):
/// `TANDEM_TEST_<NAME>`, else the one `scripts/test.sh` installs into
/// `.tools/<name>`, else `<name>` on `PATH`.
pub fn agent_binary(name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(format!("TANDEM_TEST_{}", name.to_uppercase())) {
        return Some(PathBuf::from(path));
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../.tools/{name}/node_modules/.bin/{name}"));
    if local.exists() {
        return Some(local);
    }
    tandem_core::process::which(name, std::env::var_os("PATH").as_deref(), Path::new("/"))
}

/// Agent `name`'s CLI and a test environment, or `None` (the test is
/// skipped, saying so) when the CLI is absent and
/// `TANDEM_TEST_REQUIRE_AGENTS` is unset (`.ci/run` sets it, so CI never
/// skips).
pub fn agent_and_env(name: &str) -> Option<(PathBuf, TestEnv)> {
    let Some(cli) = agent_binary(name) else {
        assert!(
            std::env::var_os("TANDEM_TEST_REQUIRE_AGENTS").is_none(),
            "the {name} CLI is required here but was not found; run `bash scripts/test.sh`, which installs it"
        );
        skipped(&format!("the {name} CLI is not installed; `bash scripts/test.sh` installs it"));
        return None;
    };
    Some((cli, TestEnv::new()))
}

/// What the model stand-ins answer tandem's one-shot questions (a title
/// after the first prompt, a summary on archive), which Codex and Gemini
/// send with their tools like any prompt.
pub const ONE_SHOT_REPLY: &str = "Stub title";

/// Whether a request's conversation (as JSON text) is one of tandem's
/// one-shot questions ([`ONE_SHOT_REPLY`]).
pub fn is_one_shot(conversation: &str) -> bool {
    conversation.contains("Answer with the title only") || conversation.contains("Answer with the summary only")
}

/// A line for the suite's summary (the fault matrix's size and result):
/// printed to stderr, and appended to the file `TANDEM_TEST_NOTES` names,
/// which `scripts/test.sh` prints at the end.
pub fn note(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
    if let Some(file) = std::env::var_os("TANDEM_TEST_NOTES") {
        let written = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&file)
            .and_then(|mut f| f.write_all(format!("{}\n", line.replace('\n', " ")).as_bytes()));
        written.expect("TANDEM_TEST_NOTES names a file a note can be added to");
    }
}

/// Says why a test did not run, on the real stderr (the test harness
/// captures `eprintln!` of a passing test, and a skip must be seen), and
/// appends `test: reason` to the file `TANDEM_TEST_SKIPS` names, which
/// `scripts/test.sh` sets: its closing line counts the test as skipped,
/// not passed. The caller returns at once.
pub fn skipped(reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED: {reason}");
    if let Some(file) = std::env::var_os("TANDEM_TEST_SKIPS") {
        let test = std::thread::current().name().unwrap_or("a test").to_owned();
        let line = format!("{test}: {}\n", reason.replace('\n', " "));
        let written = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&file)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        written.expect("TANDEM_TEST_SKIPS names a file a skip can be counted in");
    }
}

/// `stderr` as one line if it is one error in tandem's format (`error: `,
/// then `caused by: ` and `hint: ` lines): the causes joined with `: `,
/// the hints with `; `. `None` for anything else.
pub fn error_line(stderr: &str) -> Option<String> {
    let mut lines = stderr.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next()?;
    if !first.starts_with("error: ") {
        return None;
    }
    let (mut line, mut hints) = (first.to_owned(), String::new());
    for l in lines {
        if let Some(cause) = l.strip_prefix("caused by: ") {
            if !hints.is_empty() {
                return None;
            }
            line.push_str(": ");
            line.push_str(cause);
        } else if let Some(hint) = l.strip_prefix("hint: ") {
            hints.push_str("; ");
            hints.push_str(hint);
        } else {
            return None;
        }
    }
    Some(line + hints.as_str())
}

/// Records one Claude Code hook event for session `id` the way the agent
/// does: `tandem hook` with the event's JSON on stdin.
pub fn hook_event(env: &TestEnv, id: &str, payload: &serde_json::Value) {
    let mut child = env
        .command_in(&env.repo, &["hook"])
        .env("TANDEM_SESSION_ID", id)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tandem hook");
    child.stdin.take().expect("stdin").write_all(payload.to_string().as_bytes()).expect("write payload");
    let out = child.wait_with_output().expect("tandem hook");
    assert!(out.status.success(), "{}", stderr(&out));
}
