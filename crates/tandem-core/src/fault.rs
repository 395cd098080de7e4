//! Named fault points for the crash tests (issue 17).
//!
//! tandem promises that a `kill -9` at any step leaves a state the next
//! command reconciles. The crash tests prove it by arming a fault point by
//! name: the process that reaches it kills itself with `SIGKILL`, exactly
//! as a user's `kill -9`, a closed terminal or an OOM kill would, with no
//! destructor, no `Drop` and no flush run.
//!
//! Arming is by file, so one fault can be aimed at whichever process
//! reaches the point first (the CLI, the supervisor, a host) without
//! restarting any of them: `TANDEM_FAULTS` names the file, inherited by
//! every process tandem starts. Each line of the file is
//!
//! ```text
//! <point> [<delay ms> [self|git]]
//! ```
//!
//! - `<point>`: a name passed to [`point`] (e.g. `archive.trashed`), or
//!   `git:<first two git arguments joined by ->` (e.g. `git:worktree-add`,
//!   `git:rebase`), which fires when tandem starts that git command.
//! - `<delay ms>` (git points only, default 0): how long after git started
//!   the kill comes; 0 kills at once, as `spawn` returns (git has just
//!   been exec'd), however loaded the machine.
//! - `self` (default) kills the tandem process that runs git (git itself
//!   runs on, orphaned, as it would after a real kill of the supervisor);
//!   `git` kills only the git child, so tandem sees git fail.
//!
//! A point fires once: the process that reaches it first renames the file
//! to `<file>.fired` (one rename wins) and writes there the point and its
//! pid, so a test can wait for the kill. Release builds compile every
//! point to nothing (SQLite's crash tests and shpool's `test_hooks` work
//! the same way): an environment variable can never kill a user's tandem.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

/// The variable naming the fault file (see the module docs).
pub const FAULTS_VAR: &str = "TANDEM_FAULTS";

/// Who a git fault point kills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Victim {
    /// The tandem process that started git.
    Myself,
    /// Only the git child.
    Git,
}

/// A fault point: in debug builds, when the fault file arms `name`, the
/// calling process kills itself with `SIGKILL` here. Does nothing in
/// release builds or when nothing is armed.
pub fn point(name: &str) {
    if let Some((_, _)) = take(name) {
        kill_self();
    }
}

/// For [`crate::git::output`]: when `git:<sub>` is armed for the git
/// command `args` (its arguments after the `-C DIR -c …` prefix) starts a
/// thread that, after the armed delay, kills the chosen victim. `child`
/// is the git process just spawned.
pub fn git_started(args: &[String], child: &Child) {
    if !cfg!(debug_assertions) || std::env::var_os(FAULTS_VAR).is_none() {
        return;
    }
    let name = format!("git:{}", args.iter().take(2).map(String::as_str).collect::<Vec<_>>().join("-"));
    let one = format!("git:{}", args.first().map_or("", String::as_str));
    let Some((delay, victim)) = take(&name).or_else(|| take(&one)) else { return };
    let pid = child.id();
    let strike = move || match victim {
        Victim::Myself => kill_self(),
        Victim::Git => {
            // The caller waits for this child, so its pid is not reused.
            let _ = signal::kill(Pid::from_raw(pid.cast_signed()), Signal::SIGKILL);
        }
    };
    if delay.is_zero() {
        // At once, not from a thread a loaded machine may run only after
        // git has finished (the fault would then never strike).
        strike();
    } else {
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            strike();
        });
    }
}

/// If the fault file arms `name`, claims it (renames the file to
/// `.fired`) and returns its delay and victim.
fn take(name: &str) -> Option<(Duration, Victim)> {
    if !cfg!(debug_assertions) {
        return None;
    }
    take_from(&PathBuf::from(std::env::var_os(FAULTS_VAR)?), name)
}

/// [`take`] with the fault file given.
fn take_from(file: &Path, name: &str) -> Option<(Duration, Victim)> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.split_whitespace().next() == Some(name))?;
    let mut words = line.split_whitespace().skip(1);
    let delay = Duration::from_millis(words.next().and_then(|w| w.parse().ok()).unwrap_or(0));
    let victim = if words.next() == Some("git") { Victim::Git } else { Victim::Myself };
    let mut fired = file.as_os_str().to_owned();
    fired.push(".fired");
    // One rename wins: a point fires once, in one process.
    std::fs::rename(file, &fired).ok()?;
    let _ = std::fs::write(&fired, format!("{name} {}\n", std::process::id()));
    Some((delay, victim))
}

fn kill_self() {
    // SIGKILL cannot be caught: no destructor or flush runs, as with `kill -9`.
    let _ = signal::kill(Pid::this(), Signal::SIGKILL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unarmed_point_does_nothing_and_an_armed_one_is_claimed_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("faults");
        assert!(take_from(&file, "rm.trashed").is_none(), "nothing armed");
        std::fs::write(&file, "archive.trashed\ngit:worktree-add 250 git\n").expect("arm");
        assert!(take_from(&file, "rm.trashed").is_none(), "another point");
        assert_eq!(take_from(&file, "git:worktree-add"), Some((Duration::from_millis(250), Victim::Git)));
        assert!(!file.exists(), "claimed: the file became .fired");
        assert!(take_from(&file, "archive.trashed").is_none(), "a fault fires once");
        let fired = std::fs::read_to_string(dir.path().join("faults.fired")).expect("fired");
        assert!(fired.starts_with("git:worktree-add "), "{fired}");
    }
}
