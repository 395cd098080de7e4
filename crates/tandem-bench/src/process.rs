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
