//! Running git, tandem and the shell baseline: argument vectors, captured
//! output, and failures that show the command and its stderr.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Git variables that would point a `git -C DIR` elsewhere.
const GIT_DISCOVERY_VARS: [&str; 5] =
    ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY"];

/// Runs `cmd` to completion (stdin from `input`, or null) with stdout and
/// stderr captured, and returns its stdout as text with the wall-clock time
/// from spawn to exit.
///
/// # Errors
/// The program could not start, or exited unsuccessfully; the message
/// carries the command line, the exit status and its stderr.
pub fn run_timed(cmd: &mut Command, input: Option<&[u8]>) -> Result<(String, Duration)> {
    timed(cmd, input, false)
}

/// [`run_timed`] for commands whose exit code 1 is an answer, not a
/// failure (`git merge-tree` when a merge conflicts).
///
/// # Errors
/// As [`run_timed`], for other exit codes.
pub fn run_timed_any_exit(cmd: &mut Command, input: Option<&[u8]>) -> Result<(String, Duration)> {
    timed(cmd, input, true)
}

/// Runs `cmd` as [`run_timed`] does; `exit_1_ok`: exit code 1 is an
/// answer too.
fn timed(cmd: &mut Command, input: Option<&[u8]>, exit_1_ok: bool) -> Result<(String, Duration)> {
    cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("cannot start {}", describe(cmd)))?;
    if let Some(bytes) = input {
        // Dropped at the end of the statement, so the child sees EOF.
        child.stdin.take().expect("stdin is piped").write_all(bytes)?;
    }
    let output = child.wait_with_output().with_context(|| format!("waiting for {}", describe(cmd)))?;
    let took = start.elapsed();
    if !(exit_1_ok && output.status.code() == Some(1)) {
        check(cmd, &output)?;
    }
    Ok((String::from_utf8_lossy(&output.stdout).into_owned(), took))
}

/// [`run_timed`] without the time: runs `cmd` and returns its stdout.
///
/// # Errors
/// As [`run_timed`].
pub fn run(cmd: &mut Command) -> Result<String> {
    run_timed(cmd, None).map(|(out, _)| out)
}

fn check(cmd: &Command, output: &Output) -> Result<()> {
    if output.status.success() {
        return Ok(());
    }
    bail!(
        "{} failed ({})\nstderr: {}\nstdout: {}",
        describe(cmd),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim_end(),
        String::from_utf8_lossy(&output.stdout).trim_end()
    )
}

/// The command line as one readable string, for messages.
fn describe(cmd: &Command) -> String {
    let mut words = vec![cmd.get_program().to_string_lossy().into_owned()];
    words.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    words.join(" ")
}

/// `git -C dir` as a user would type it: their configuration, no repository
/// discovery variables, C locale.
#[must_use]
pub fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(dir).env("LC_ALL", "C");
    for var in GIT_DISCOVERY_VARS {
        cmd.env_remove(var);
    }
    cmd
}

/// `git -C dir` for building fixtures: a fixed identity and dates (so
/// commits are reproducible), no signing and no automatic gc (which would
/// repack in the background while we measure).
#[must_use]
pub fn fixture_git(dir: &Path) -> Command {
    let mut cmd = git(dir);
    cmd.args([
        "-c",
        "user.name=bench",
        "-c",
        "user.email=bench@example.com",
        "-c",
        "commit.gpgsign=false",
        "-c",
        "gc.auto=0",
        "-c",
        "core.hooksPath=/dev/null",
    ]);
    cmd.env("GIT_AUTHOR_DATE", "1700000000 +0000").env("GIT_COMMITTER_DATE", "1700000000 +0000");
    cmd
}

/// The tandem binary under test, with its state isolated in one home.
#[derive(Debug, Clone)]
pub struct Tandem {
    /// Path to the `tandem` executable.
    pub bin: PathBuf,
    /// Its `TANDEM_HOME`.
    pub home: PathBuf,
    /// The repository commands run in (their working directory).
    pub repo: PathBuf,
}

impl Tandem {
    /// `tandem ARGS...` run in the repository with `TANDEM_HOME` set.
    #[must_use]
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args).current_dir(&self.repo).env("TANDEM_HOME", &self.home);
        for var in GIT_DISCOVERY_VARS {
            cmd.env_remove(var);
        }
        cmd
    }

    /// `tandem new NAME --bg --agent shell`; returns the new worktree's path
    /// and how long the command took.
    ///
    /// # Errors
    /// The command failed, or its stdout was not `name<TAB>path`.
    pub fn new_session(&self, name: &str) -> Result<(PathBuf, Duration)> {
        let (out, took) = run_timed(&mut self.cmd(["new", name, "--bg", "--agent", "shell"]), None)?;
        let line = out.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
        let Some((slug, path)) = line.split_once('\t') else {
            bail!("tandem new {name} printed {out:?}, expected `name<TAB>path`");
        };
        if slug != name {
            bail!("tandem new {name} created session {slug:?}");
        }
        Ok((PathBuf::from(path), took))
    }

    /// `tandem new NAME --bg --agent shell --base BASE`; returns the new
    /// worktree's path and how long the command took.
    ///
    /// # Errors
    /// As [`Tandem::new_session`].
    pub fn new_session_at(&self, name: &str, base: &str) -> Result<(PathBuf, Duration)> {
        let (out, took) = run_timed(&mut self.cmd(["new", name, "--bg", "--agent", "shell", "--base", base]), None)?;
        let line = out.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
        let Some((_, path)) = line.split_once('\t') else {
            bail!("tandem new {name} printed {out:?}, expected `name<TAB>path`");
        };
        Ok((PathBuf::from(path), took))
    }

    /// The paths of this tandem's home (its store, its supervisor's lock).
    ///
    /// # Errors
    /// Never for a home that is set; as `Paths::from_vars`.
    pub fn paths(&self) -> Result<tandem_core::paths::Paths> {
        Ok(tandem_core::paths::Paths::from_vars(|k| (k == "TANDEM_HOME").then(|| self.home.clone()))?)
    }

    /// `tandem daemon stop`, ignoring the answer; for clean-up paths.
    pub fn stop_daemon(&self) {
        if let Err(e) = run(&mut self.cmd(["daemon", "stop"])) {
            eprintln!("warning: {e:#}");
        }
    }
}

/// When dropped, whatever happened: stops the agents still running in a
/// tandem home (a failed fixture build leaves some), then its supervisor.
pub struct StopAll<'a>(pub &'a Tandem);

impl Drop for StopAll<'_> {
    fn drop(&mut self) {
        let tandem = self.0;
        if tandem.repo.join(".git").exists() {
            let listed = run(&mut tandem.cmd(["list", "--json"]))
                .and_then(|out| Ok(serde_json::from_str::<serde_json::Value>(&out)?));
            let rows = listed.as_ref().ok().and_then(|v| v.as_array()).into_iter().flatten();
            let live = |row: &&serde_json::Value| {
                ["starting", "running", "idle", "needs-input"].iter().any(|s| row["state"] == *s)
            };
            for row in rows.filter(live) {
                if let Some(name) = row["name"].as_str()
                    && let Err(e) = run(&mut tandem.cmd(["stop", name]))
                {
                    eprintln!("warning: {e:#}");
                }
            }
        }
        tandem.stop_daemon();
    }
}

/// The running supervisor's pid, from its lock file (`<runtime>/supervisor.lock`,
/// which holds the pid while the supervisor runs).
///
/// # Errors
/// No supervisor runs for this home, or its lock file holds no pid.
pub fn supervisor_pid(tandem: &Tandem) -> Result<i32> {
    let lock = tandem.paths()?.supervisor_lock();
    let text = std::fs::read_to_string(&lock).with_context(|| format!("reading {}", lock.display()))?;
    let pid: i32 = text.trim().parse().with_context(|| format!("{} holds no pid: {text:?}", lock.display()))?;
    anyhow::ensure!(tandem_core::process::is_running(pid), "the supervisor (pid {pid}) is not running");
    Ok(pid)
}

/// CPU time a process has used, itself and the children it waited for
/// (`utime + stime + cutime + cstime` of `/proc/PID/stat`, in clock
/// ticks, 100 a second on Linux): the git commands a supervisor runs are
/// counted once it reaps them.
#[must_use]
pub fn cpu_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime..cstime are fields 14..17.
    fields.get(11..15)?.iter().map(|f| f.parse::<u64>().ok()).sum()
}

/// Milliseconds in `ticks` clock ticks (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
#[must_use]
pub fn ticks_ms(ticks: u64) -> f64 {
    ticks as f64 * 10.0
}

/// Whether `pid` has a child running git (`comm` starting with `git`):
/// work the supervisor waits on, whose CPU shows only once reaped. Reads
/// each thread's `children` file (a child belongs to the thread that
/// started it).
fn git_child(pid: i32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return false };
    tasks.flatten().any(|task| {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        children.split_whitespace().any(|child| {
            std::fs::read_to_string(format!("/proc/{child}/comm")).is_ok_and(|comm| comm.starts_with("git"))
        })
    })
}

/// What a supervisor did in the background after a command returned.
#[derive(Debug, Clone, Copy)]
pub struct Settled {
    /// From `start` until the supervisor's last work (CPU used or a git
    /// child running), before it stayed idle.
    pub until_idle: Duration,
    /// CPU time it used (with its reaped children) from the call on, ms.
    pub cpu_ms: f64,
}

/// How long a supervisor must do nothing to count as idle: its periodic
/// threads wake less often than this and use no measurable CPU when they do.
const QUIET: Duration = Duration::from_millis(300);

/// Waits until the supervisor `pid` is idle (no CPU tick used and no git
/// child running for [`QUIET`]) and says when its last work was, counted
/// from `start`, and how much CPU it used since `ticks_at_start`.
///
/// # Errors
/// Not idle within `limit`, or the supervisor ended.
pub fn wait_idle(pid: i32, start: Instant, ticks_at_start: u64, limit: Duration) -> Result<Settled> {
    let mut last_ticks = ticks_at_start;
    let mut last_work = start;
    loop {
        let now = Instant::now();
        let ticks = cpu_ticks(pid).with_context(|| format!("the supervisor (pid {pid}) ended"))?;
        if ticks != last_ticks || git_child(pid) {
            last_ticks = ticks;
            last_work = now;
        }
        if now.duration_since(last_work) >= QUIET {
            return Ok(Settled {
                until_idle: last_work.duration_since(start),
                cpu_ms: ticks_ms(last_ticks.saturating_sub(ticks_at_start)),
            });
        }
        anyhow::ensure!(now.duration_since(start) < limit, "the supervisor was not idle within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Drops the kernel's page cache (`sync`, then 3 into
/// `/proc/sys/vm/drop_caches`); false where not permitted (not root, or
/// a container that forbids it).
#[must_use]
pub fn drop_caches() -> bool {
    let _ = Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3\n").is_ok()
}
