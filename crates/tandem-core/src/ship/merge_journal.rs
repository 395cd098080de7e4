//! What a local `merge` was doing, written before it changes anything,
//! so a merge killed at any point (Ctrl-C, a closed terminal, `kill -9`
//! of the CLI and its git child) can be finished or rolled back
//! (issue 17, finding 6).
//!
//! A killed `git merge` leaves the target's worktree half rewritten and
//! its `index.lock` behind, while the target branch still names the old
//! commit. The journal (`merge.json` in the session's own folder, out of
//! the agent's reach: it says which commit to reset the user's checkout
//! to) records the target, where it is checked out, its commit before
//! the merge and the tree the merge makes. [`recover`] reads it on the
//! next `merge`, `merge --abort` or `doctor --fix`:
//!
//! - a merge still running (its tandem process alive) or a git process
//!   still at work in the worktree (holding the index lock, or running
//!   there) is waited for, never raced;
//! - a stale `index.lock` (and the other lock files a killed git leaves:
//!   `ORIG_HEAD.lock`, the target's ref lock…) is removed;
//! - a merge that had not landed is rolled back: `git reset --hard` to the
//!   old commit (the target was clean when the merge began, tandem checks
//!   that first; what its worktree holds then, the half-done checkout or
//!   edits made since, is first kept in a snapshot commit at
//!   `refs/tandem/sync/<slug>/<time>-<commit>-rollback-<owner tag>`) and the files
//!   the merge added removed when they hold exactly the merge's bytes; a
//!   rebase left in the session's worktree is aborted, commits made
//!   meanwhile kept;
//! - a merge that had landed is finished (`merge`) or undone (`--abort`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::git;
use crate::paths::Paths;

use super::ShipError;
use crate::model::Finding;

/// The journal's file name in a session's own folder.
pub const JOURNAL: &str = "merge.json";

/// What a local merge is doing; written before its first change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journal {
    /// The session merged, its name, branch and worktree.
    pub session_id: String,
    pub slug: String,
    pub branch: String,
    pub worktree: PathBuf,
    /// The repository's main worktree (where `git` runs for refs).
    pub repo: PathBuf,
    /// The local branch merged into.
    pub target: String,
    /// The worktree the merge runs in: the one that has `target` checked
    /// out, or a temporary one (`temporary`).
    pub place: PathBuf,
    pub temporary: bool,
    /// `target`'s commit before the merge.
    pub old_target: String,
    /// The session branch's commit before the merge (a rebase moves it).
    pub old_branch: String,
    /// The tree the merge checks out, when known before it runs (all
    /// modes but rebase, whose tree is the rebased branch's).
    pub result_tree: Option<String>,
    /// `commit`, `squash`, `rebase` or `ff`.
    pub mode: String,
    /// The tandem process running the merge, and its start time (clock
    /// ticks after boot, `/proc/<pid>/stat` field 22) when known, so a
    /// reused pid is not taken for it.
    pub pid: u32,
    #[serde(default)]
    pub pid_start: Option<u64>,
    /// When it began, unix seconds.
    pub started: i64,
}

/// What [`recover`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    /// The target and its worktree are back at `old` (the commit before
    /// the merge); what its worktree held before the rollback (the
    /// half-done checkout, or edits made since) is kept at the ref `kept`.
    RolledBack { old: String, kept: Option<String> },
    /// The merge had landed: the target is at `commit`.
    Landed { commit: String },
    /// The target moved elsewhere since (to `now`), or its worktree was
    /// switched to another branch; `--abort` left both and only dropped
    /// the record.
    Left { now: String },
}

/// Writes `journal` into `state` (a session's folder) atomically: a
/// temporary file, flushed, renamed over [`JOURNAL`].
///
/// # Errors
/// I/O errors.
pub fn write(state: &Path, journal: &Journal) -> std::io::Result<()> {
    std::fs::create_dir_all(state)?;
    let tmp = state.join(format!("{JOURNAL}.tmp"));
    let text = serde_json::to_vec_pretty(journal).map_err(std::io::Error::other)?;
    crate::paths::write_private(&tmp, &text)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, state.join(JOURNAL))
}

/// The journal in `state`, if a merge left one.
#[must_use]
pub fn read(state: &Path) -> Option<Journal> {
    serde_json::from_slice(&std::fs::read(state.join(JOURNAL)).ok()?).ok()
}

/// Removes the journal from `state` (the merge is over).
pub fn remove(state: &Path) {
    let _ = std::fs::remove_file(state.join(JOURNAL));
}

/// Every journal under `sessions` (the folder of all sessions' folders),
/// with the folder it is in.
#[must_use]
pub fn all(sessions: &Path) -> Vec<(PathBuf, Journal)> {
    let mut found: Vec<(PathBuf, Journal)> = std::fs::read_dir(sessions)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| read(&e.path()).map(|j| (e.path(), j)))
        .collect();
    found.sort_by_key(|(_, j)| j.started);
    found
}

/// When process `pid` started, in clock ticks after boot
/// (`/proc/<pid>/stat` field 22); `None` without `/proc`.
#[must_use]
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the tandem process of `journal` still runs, so its merge is
/// not over: its pid is alive, started when the journal says, and runs
/// this same executable.
#[must_use]
pub fn still_running(journal: &Journal) -> bool {
    let pid = journal.pid;
    if pid == std::process::id() {
        return false;
    }
    let Ok(raw) = i32::try_from(pid) else { return false };
    if nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None).is_err() {
        return false;
    }
    if journal.pid_start.is_some() && start_time(pid) != journal.pid_start {
        return false;
    }
    match (std::fs::read_link(format!("/proc/{pid}/exe")), std::env::current_exe()) {
        (Ok(theirs), Ok(ours)) => theirs == ours,
        // No /proc to tell: a live pid is taken to be the merge.
        _ => true,
    }
}

/// The lock files a git killed during a merge in `worktree` may leave:
/// its index, `HEAD`, `ORIG_HEAD`, the merge state, `packed-refs` and
/// the `refs` given (`refs/heads/main`), each `<file>.lock`, absolute.
fn merge_locks(worktree: &Path, refs: &[String]) -> Vec<PathBuf> {
    let mut names: Vec<String> = ["index", "HEAD", "ORIG_HEAD", "MERGE_HEAD", "AUTO_MERGE", "packed-refs"]
        .iter()
        .map(|n| format!("{n}.lock"))
        .collect();
    names.extend(refs.iter().map(|r| format!("{r}.lock")));
    let mut args = vec!["rev-parse".to_owned(), "--path-format=absolute".to_owned()];
    for name in &names {
        args.extend(["--git-path".to_owned(), name.clone()]);
    }
    git::read(worktree, &args).map(|out| out.lines().map(PathBuf::from).collect()).unwrap_or_default()
}

/// Removes the lock files a killed git left in `worktree`
/// ([`merge_locks`]) when no git process is at work there
/// ([`crate::process::git_at_work`]).
///
/// # Errors
/// [`ShipError::GitBusy`] when one is.
fn clear_stale_locks(worktree: &Path, refs: &[String]) -> Result<(), ShipError> {
    let locks = merge_locks(worktree, refs);
    if let Some(pid) = crate::process::git_at_work(worktree, &locks) {
        return Err(ShipError::GitBusy { path: worktree.to_owned(), pid });
    }
    for lock in locks.iter().filter(|l| l.exists()) {
        tracing::info!(lock = %lock.display(), "removing a lock file an interrupted merge left");
        std::fs::remove_file(lock).map_err(ShipError::State)?;
    }
    Ok(())
}

/// Finishes or rolls back the merge `journal` (read from `state`)
/// describes, then removes the journal. A merge that had not landed is
/// rolled back; one that had is left (`undo_landed` false: the caller
/// finishes its own steps) or undone, its target put back at the old
/// commit (`undo_landed` true, `merge --abort`).
///
/// # Errors
/// [`ShipError::MergeRunning`] while its tandem process runs,
/// [`ShipError::GitBusy`] while a git process is at work there,
/// [`ShipError::MergeMoved`] when the target moved elsewhere since,
/// git errors.
pub fn recover(state: &Path, journal: &Journal, undo_landed: bool) -> Result<Recovered, ShipError> {
    let j = journal;
    if still_running(j) {
        return Err(ShipError::MergeRunning { slug: j.slug.clone(), pid: j.pid });
    }
    let place_exists = j.place.join(".git").exists();
    if place_exists {
        let refs = [format!("refs/heads/{}", j.target), format!("refs/heads/{}", j.branch)];
        clear_stale_locks(&j.place, &refs)?;
    } else if j.temporary
        && let Some(pid) = crate::process::git_at_work(&j.place, &[])
    {
        // The `git worktree add` of a CLI killed as it began: the
        // worktree it is making would outlive the removal below.
        return Err(ShipError::GitBusy { path: j.place.clone(), pid });
    }
    let target_ref = format!("refs/heads/{}", j.target);
    let tip = git::resolve_commit(&j.repo, &target_ref)?.unwrap_or_default();
    let landed = tip != j.old_target;
    // The user may have switched the worktree to another branch since:
    // then its files are not the merge's to reset.
    let switched = place_exists
        && !j.temporary
        && git::read(&j.place, &["symbolic-ref", "--quiet", "HEAD"]).ok().as_deref() != Some(target_ref.as_str());
    if switched || (landed && !git::test(&j.repo, &["merge-base", "--is-ancestor", &j.old_target, &tip])?) {
        if !undo_landed {
            return Err(ShipError::MergeMoved { slug: j.slug.clone(), target: j.target.clone() });
        }
        remove(state);
        return Ok(Recovered::Left { now: tip });
    }
    // A rebase (`merge --rebase`) left in the session's worktree.
    if j.mode == "rebase" && !landed && j.worktree.is_dir() {
        // The agent's own git runs there: its lock is its own business.
        super::abort_rebase(&j.worktree, &j.branch, &j.slug, state)?;
    }
    if landed && place_exists {
        // git may die after its commit and before it cleans up (a killed
        // CLI closes the pipe git then prints to): the merge state it
        // leaves would make the user's next commit a second merge.
        let _ = git::run(&j.place, &["merge", "--quit"]);
        if let Ok(squash) = git::read(&j.place, &["rev-parse", "--path-format=absolute", "--git-path", "SQUASH_MSG"]) {
            let _ = std::fs::remove_file(squash);
        }
    }
    let mut kept = None;
    let outcome = if landed && !undo_landed {
        Recovered::Landed { commit: tip }
    } else {
        if j.temporary {
            // Nothing but the target's ref matters in a temporary
            // worktree, which goes below.
            if landed {
                let why = "tandem: merge --abort";
                git::run(&j.repo, &["update-ref", "-m", why, &target_ref, &j.old_target, &tip])?;
            }
        } else if landed {
            // The checkout had finished; what was edited since stays (git
            // refuses when it would not).
            git::run(&j.place, &["reset", "--quiet", "--keep", &j.old_target])?;
        } else if place_exists {
            // The target was clean when the merge began: every change in
            // its worktree is the half-done checkout's.
            let result = match &j.result_tree {
                Some(tree) => tree.clone(),
                None => git::read(&j.repo, &["rev-parse", &format!("refs/heads/{}^{{tree}}", j.branch)])?,
            };
            // What the user may have done there since is kept all the
            // same: nothing is lost without `--force`.
            if git::status(&j.place)?.changed > 0 {
                let what = format!("tandem: {} before rolling back the merge of {}", j.target, j.slug);
                let snapshot = git::snapshot_commit(&j.place, state, &what, &[])?;
                let (now, short, owner) = (crate::unix_now(), git::short(&snapshot), super::owner_tag()?);
                let name = format!("refs/tandem/sync/{}/{now}-{short}-rollback-{owner}", j.slug);
                git::create_ref(&j.repo, &name, &snapshot)?;
                kept = Some(name);
            }
            git::run(&j.place, &["reset", "--quiet", "--hard", &j.old_target])?;
            remove_added_files(&j.place, &j.old_target, &result)?;
        }
        Recovered::RolledBack { old: j.old_target.clone(), kept }
    };
    if j.temporary {
        if place_exists {
            let _ = git::worktree_remove(&j.repo, &j.place, true);
        }
        let _ = std::fs::remove_dir_all(&j.place);
        let _ = git::worktree_prune(&j.repo);
    }
    remove(state);
    Ok(outcome)
}

/// Removes from `place` (reset to `old`) the files `result` adds to `old`
/// that the interrupted checkout wrote: untracked now, and holding
/// exactly the bytes of `result`'s version; then the folders this left
/// empty. Anything else stays.
fn remove_added_files(place: &Path, old: &str, result: &str) -> Result<(), ShipError> {
    let added = git::read(place, &["diff", "--name-only", "-z", "--no-renames", "--diff-filter=A", old, result])?;
    let added: std::collections::HashSet<&str> = added.split('\0').filter(|p| !p.is_empty()).collect();
    if added.is_empty() {
        return Ok(());
    }
    let tree = git::read(place, &["ls-tree", "-r", "-z", "--full-tree", result])?;
    let wanted: Vec<(&str, &str)> = tree
        .split('\0')
        .filter_map(|e| {
            let (meta, path) = e.split_once('\t')?;
            let oid = meta.split(' ').nth(2)?;
            (meta.starts_with("100") && added.contains(path)).then_some((path, oid))
        })
        .filter(|(path, _)| place.join(path).symlink_metadata().is_ok_and(|m| m.is_file()))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let mut cmd = git::command(place);
    cmd.args(["hash-object", "--no-filters", "--stdin-paths"]);
    let input: String = wanted.iter().map(|(p, _)| format!("{p}\n")).collect();
    let hashes = String::from_utf8_lossy(&git::output_with_stdin(cmd, input.as_bytes())?).into_owned();
    for ((path, oid), hash) in wanted.iter().zip(hashes.lines()) {
        if hash != *oid {
            continue;
        }
        let file = place.join(path);
        let _ = std::fs::remove_file(&file);
        // Folders the checkout made for it, while empty.
        let mut dir = file.parent();
        while let Some(d) = dir.filter(|d| *d != place) {
            if std::fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
    }
    Ok(())
}

/// `doctor`'s part: each interrupted merge into this repository (by
/// `repo_root`), as a finding; with `fix`, rolled back (or, when it had
/// landed, finished).
#[must_use]
pub fn doctor(paths: &Paths, repo_root: &Path, fix: bool) -> Vec<Finding> {
    let same = |a: &Path| a.canonicalize().ok() == repo_root.canonicalize().ok();
    let mut findings = Vec::new();
    for (state, j) in all(&paths.state_dir.join("sessions")) {
        if !same(&j.repo) {
            continue;
        }
        if still_running(&j) {
            findings.push(Finding {
                session: Some(j.slug.clone()),
                problem: format!("a merge of {} into {} is running (pid {})", j.slug, j.target, j.pid),
                remedy: "left alone: it ends by itself".into(),
                fixed: false,
            });
            continue;
        }
        let problem = format!(
            "interrupted merge of {} into {}: {} may hold a half-done checkout (the merge began at unix time {})",
            j.slug,
            j.target,
            j.place.display(),
            j.started
        );
        let (remedy, fixed) = match fix.then(|| recover(&state, &j, false)) {
            Some(Ok(Recovered::RolledBack { old, kept })) => {
                let kept = kept.map(|r| format!(" (what its worktree held is kept at {r})")).unwrap_or_default();
                let (target, old, slug) = (&j.target, git::short(&old), &j.slug);
                (format!("rolled {target} back to {old}{kept}; merge again with `tandem merge {slug}`"), true)
            }
            Some(Ok(Recovered::Landed { commit } | Recovered::Left { now: commit })) => {
                (format!("the merge had landed ({} is at {}); cleared its record", j.target, git::short(&commit)), true)
            }
            Some(Err(e)) => (e.to_string(), false),
            None => (
                format!("roll it back with `tandem merge --abort {0}`, or finish it with `tandem merge {0}`", j.slug),
                false,
            ),
        };
        findings.push(Finding { session: Some(j.slug.clone()), problem, remedy, fixed });
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_of_this_process_or_of_a_reused_pid_is_not_running() {
        let me = std::process::id();
        let journal = Journal {
            session_id: "id".into(),
            slug: "s".into(),
            branch: "s".into(),
            worktree: PathBuf::from("/nowhere"),
            repo: PathBuf::from("/nowhere"),
            target: "main".into(),
            place: PathBuf::from("/nowhere"),
            temporary: false,
            old_target: "0".repeat(40),
            old_branch: "0".repeat(40),
            result_tree: None,
            mode: "commit".into(),
            pid: me,
            pid_start: start_time(me),
            started: 0,
        };
        assert!(start_time(me).is_some(), "/proc/self/stat has a start time");
        assert!(!still_running(&journal), "this process is the merge itself");
        // The parent runs (the test harness), yet started at another time.
        let parent = std::os::unix::process::parent_id();
        let reused = Journal { pid: parent, pid_start: start_time(parent).map(|t| t + 1), ..journal.clone() };
        assert!(!still_running(&reused));
        let sessions = tempfile::tempdir().expect("tempdir");
        let state = sessions.path().join("one");
        write(&state, &journal).expect("write");
        assert_eq!(read(&state).map(|j| j.pid), Some(me));
        assert_eq!(all(sessions.path()).len(), 1);
        remove(&state);
        assert!(read(&state).is_none() && all(sessions.path()).is_empty());
    }

    /// A CLI killed as its `git worktree add` of the temporary merge
    /// worktree began: that git runs on, orphaned, and would make the
    /// worktree after a rollback removed it. Recovery waits for it.
    #[test]
    fn a_git_still_making_the_temporary_worktree_is_waited_for() {
        let dir = tempfile::tempdir().expect("tempdir");
        let place = dir.path().join("merge-worktree");
        // A git that names the place and runs until its stdin closes.
        let mut git = std::process::Command::new("git")
            .args(["hash-object", "--stdin", "--"])
            .arg(&place)
            .current_dir(dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("git");
        let pid = git.id();
        let journal = Journal {
            session_id: "id".into(),
            slug: "s".into(),
            branch: "s".into(),
            worktree: dir.path().join("session"),
            repo: dir.path().to_owned(),
            target: "release".into(),
            place: place.clone(),
            temporary: true,
            old_target: "0".repeat(40),
            old_branch: "0".repeat(40),
            result_tree: None,
            mode: "commit".into(),
            pid: u32::MAX,
            pid_start: None,
            started: 0,
        };
        let state = dir.path().join("state");
        write(&state, &journal).expect("write");
        // `comm` reads `git` once exec is done; spawn returns after it.
        let busy = recover(&state, &journal, true);
        drop(git.stdin.take());
        let _ = git.wait();
        assert!(matches!(busy, Err(ShipError::GitBusy { pid: p, .. }) if p == pid), "{busy:?}");
        assert!(read(&state).is_some(), "the journal stays for the next try");
    }
}
