//! What `tandem list` shows beside the stored row, and the session's
//! live state checked against its host process.
//!
//! Git facts come in two parts, gathered so that their cost stays that
//! of the plain-git baseline (one `git status` per worktree) however many
//! sessions there are:
//! - [`WorktreeFacts`] need a scan of the worktree (`git status`). The
//!   scans run in parallel, as many at once as there are cores; then one
//!   `git cat-file --batch` reads the HEAD version of every changed file
//!   of every session, and the line counts are diffed here.
//! - [`RefFacts`] need only refs and commits, and are gathered for all
//!   sessions of a repository at once: one `git for-each-ref` for every
//!   tip, one `git for-each-ref --format=%(ahead-behind:BASE)` per
//!   distinct base (git 2.41; older gits get one `rev-list` per session),
//!   and one `git diff-tree --stdin` for the diffstats of the commits.
//!
//! The supervisor keeps both in a cache ([`crate::supervisor::watch`]),
//! keyed by the commits they were computed from and invalidated by
//! inotify events in the worktree, so a repeated `tandem list` runs no
//! `git status` at all.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use crate::git;
use crate::process;
use crate::store::{Session, SessionState};

// The facts are plain data sent to clients: they live in [`crate::model`].
pub use crate::model::{DiffStat, GitFacts, RefFacts, WorktreeFacts};

/// Scans one worktree (`git status`) and returns its facts, with the
/// uncommitted diffstat still to be filled from the HEAD blobs listed.
fn scan_worktree(session: &Session) -> (WorktreeFacts, Vec<(String, String)>) {
    if !session.path.join(".git").exists() {
        return (WorktreeFacts::default(), Vec::new());
    }
    let Ok(status) = git::status(&session.path) else {
        return (WorktreeFacts { exists: true, ..WorktreeFacts::default() }, Vec::new());
    };
    let paths = (status.unstaged_paths.len() <= WorktreeFacts::MAX_PATHS).then(|| status.unstaged_paths.into());
    let facts = WorktreeFacts {
        exists: true,
        changed: u32::try_from(status.changed).unwrap_or(u32::MAX),
        untracked: u32::try_from(status.untracked).unwrap_or(u32::MAX),
        head: status.head,
        uncommitted: DiffStat::default(),
        paths,
    };
    (facts, status.head_blobs)
}

/// Reads blobs with one `git cat-file --batch` in `dir`: `oid` → bytes.
fn read_blobs(dir: &Path, oids: &[&str]) -> HashMap<String, Vec<u8>> {
    let mut blobs = HashMap::new();
    if oids.is_empty() {
        return blobs;
    }
    let input: String = oids.iter().map(|o| format!("{o}\n")).collect();
    let mut cmd = git::command(dir);
    cmd.args(["cat-file", "--batch"]);
    let Ok(out) = git::output_with_stdin(cmd, input.as_bytes()) else { return blobs };
    let mut rest = &out[..];
    while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
        let header = String::from_utf8_lossy(&rest[..nl]).into_owned();
        rest = &rest[nl + 1..];
        let mut parts = header.split(' ');
        let (Some(oid), Some(_kind), Some(size)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let Ok(size) = size.parse::<usize>() else { continue }; // `<oid> missing`
        if rest.len() < size {
            break;
        }
        blobs.insert(oid.to_owned(), rest[..size].to_vec());
        rest = &rest[(size + 1).min(rest.len())..];
    }
    blobs
}

/// Lines added and removed from `old` to `new` (a line diff, as `git
/// diff --shortstat` counts); binary content counts as a changed file
/// with no lines.
fn line_changes(old: &[u8], new: &[u8]) -> (u32, u32) {
    if old.contains(&0) || new.contains(&0) {
        return (0, 0);
    }
    let (old, new) = (String::from_utf8_lossy(old), String::from_utf8_lossy(new));
    let diff = similar::TextDiff::from_lines(old.as_ref(), new.as_ref());
    let (mut ins, mut del) = (0u32, 0u32);
    for change in diff.iter_all_changes() {
        match change.tag() {
            similar::ChangeTag::Insert => ins += 1,
            similar::ChangeTag::Delete => del += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    (ins, del)
}

/// Every branch and remote-tracking ref of the repository and its commit
/// (one `git for-each-ref`).
///
/// # Errors
/// As [`git::output`].
pub fn ref_tips(repo: &Path) -> Result<HashMap<String, String>, git::GitError> {
    Ok(git::read(repo, &["for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/", "refs/remotes/"])?
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(r, o)| (r.to_owned(), o.to_owned())))
        .collect())
}

/// The ref a session's `ahead`/`behind` count against: its base as named
/// (so `behind` grows as the base moves on), or the recorded commit when
/// the name no longer resolves (or was `HEAD`).
#[must_use]
pub fn base_of(session: &Session, tips: &HashMap<String, String>) -> String {
    for candidate in [format!("refs/heads/{}", session.base_ref), format!("refs/remotes/{}", session.base_ref)] {
        if tips.contains_key(&candidate) {
            return candidate;
        }
    }
    session.base_commit.clone()
}

/// The remote's default branch as a ref (`refs/remotes/origin/main`).
#[must_use]
pub fn remote_base(repo: &Path) -> Option<String> {
    let remote = git::remotes(repo).ok()?.into_iter().next()?;
    let head = git::remote_head(repo, &remote).ok()??;
    Some(format!("refs/remotes/{remote}/{head}"))
}

/// Ref facts for each session, in order, in a few batched git calls
/// (none for no sessions). `tips` maps every ref to its commit
/// ([`ref_tips`]); `remote` is the remote's default branch as a ref
/// ([`remote_base`]).
#[must_use]
pub fn ref_facts(
    repo: &Path,
    sessions: &[&Session],
    tips: &HashMap<String, String>,
    remote: Option<&str>,
) -> Vec<RefFacts> {
    if sessions.is_empty() {
        return Vec::new();
    }
    let remote = remote.filter(|r| tips.contains_key(*r)).map(str::to_owned);
    let mut facts: Vec<RefFacts> = sessions
        .iter()
        .map(|s| RefFacts {
            tip: tips.get(&format!("refs/heads/{}", s.branch)).cloned(),
            remote_base: remote.as_ref().map(|r| r.trim_start_matches("refs/remotes/").to_owned()),
            ..RefFacts::default()
        })
        .collect();
    // ahead/behind, grouped by base.
    let mut by_base: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, s) in sessions.iter().enumerate() {
        if facts[i].tip.is_some() {
            by_base.entry(base_of(s, tips)).or_default().push(i);
        }
    }
    for (base, members) in &by_base {
        let counts = ahead_behind_many(repo, base, members.iter().map(|&i| sessions[i].branch.as_str()));
        for (&i, c) in members.iter().zip(counts) {
            (facts[i].ahead, facts[i].behind) = (c.map(|c| c.0), c.map(|c| c.1));
        }
    }
    if let Some(remote) = &remote {
        let members: Vec<usize> = (0..sessions.len()).filter(|&i| facts[i].tip.is_some()).collect();
        let counts = ahead_behind_many(repo, remote, members.iter().map(|&i| sessions[i].branch.as_str()));
        for (&i, c) in members.iter().zip(counts) {
            facts[i].behind_remote = c.map(|c| c.1);
        }
    }
    // Diffstats of the commits, one diff-tree for all: each input line
    // `<tip> <base>` reads as a commit and its parent.
    let pairs: Vec<(usize, String)> = sessions
        .iter()
        .enumerate()
        .filter_map(|(i, s)| facts[i].tip.clone().filter(|t| t != &s.base_commit).map(|t| (i, t)))
        .collect();
    let unique_tips = pairs.iter().map(|(_, t)| t).collect::<std::collections::HashSet<_>>().len() == pairs.len();
    if !pairs.is_empty() && unique_tips {
        let input: String = pairs.iter().map(|(i, t)| format!("{t} {}\n", sessions[*i].base_commit)).collect();
        let mut cmd = git::command(repo);
        cmd.args(["--no-optional-locks", "diff-tree", "--stdin", "--shortstat"]);
        if let Ok(out) = git::output_with_stdin(cmd, input.as_bytes()) {
            let text = String::from_utf8_lossy(&out);
            let mut current: Option<&str> = None;
            let mut stats: HashMap<&str, DiffStat> = HashMap::new();
            for line in text.lines() {
                if line.starts_with(' ') {
                    if let Some(tip) = current {
                        stats.insert(tip, DiffStat::parse(line));
                    }
                } else if !line.is_empty() {
                    current = Some(line.trim());
                }
            }
            for (i, tip) in &pairs {
                facts[*i].committed = stats.get(tip.as_str()).copied().unwrap_or_default();
            }
        }
    } else {
        for (i, tip) in &pairs {
            let range = format!("{}..{tip}", sessions[*i].base_commit);
            facts[*i].committed =
                git::read(repo, &["diff", "--shortstat", &range]).map(|t| DiffStat::parse(&t)).unwrap_or_default();
        }
    }
    facts
}

/// `(ahead, behind)` of each branch against `base`: one
/// `for-each-ref --format=%(ahead-behind:BASE)` (git 2.41 or newer), else
/// one `rev-list --left-right --count` per branch.
fn ahead_behind_many<'a>(repo: &Path, base: &str, branches: impl Iterator<Item = &'a str>) -> Vec<Option<(u32, u32)>> {
    let refs: Vec<String> = branches.map(|b| format!("refs/heads/{b}")).collect();
    let format = format!("--format=%(refname) %(ahead-behind:{base})");
    let mut args = vec!["for-each-ref", format.as_str()];
    args.extend(refs.iter().map(String::as_str));
    if let Ok(out) = git::read(repo, &args) {
        let counts: HashMap<&str, (u32, u32)> = out
            .lines()
            .filter_map(|l| {
                let mut parts = l.split(' ');
                let name = parts.next()?;
                Some((name, (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?)))
            })
            .collect();
        if !counts.is_empty() || refs.is_empty() {
            return refs.iter().map(|r| counts.get(r.as_str()).copied()).collect();
        }
    }
    refs.iter().map(|r| git::ahead_behind(repo, base, r).ok()).collect()
}

/// Worktree facts for each session, in order: one `git status` per
/// worktree, at most one per core at a time, then one `git cat-file
/// --batch` for the HEAD versions of every changed file, diffed here.
#[must_use]
pub fn worktree_facts_many(sessions: &[&Session]) -> Vec<WorktreeFacts> {
    let workers = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get).min(sessions.len());
    let next = Mutex::new(0usize);
    let results = Mutex::new(vec![(WorktreeFacts::default(), Vec::new()); sessions.len()]);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = {
                        let mut n = next.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        let i = *n;
                        *n += 1;
                        i
                    };
                    let Some(session) = sessions.get(i) else { break };
                    let scanned = scan_worktree(session);
                    results.lock().unwrap_or_else(std::sync::PoisonError::into_inner)[i] = scanned;
                }
            });
        }
    });
    let mut scanned = results.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    const NEW: &str = "0000000000000000000000000000000000000000";
    let oids: Vec<&str> = scanned
        .iter()
        .flat_map(|(_, blobs)| blobs.iter().map(|(_, oid)| oid.as_str()))
        .filter(|oid| !oid.bytes().all(|b| b == b'0'))
        .collect::<std::collections::HashSet<_>>()
        .into_iter()
        .collect();
    let dir = sessions.iter().find(|s| s.path.is_dir()).map(|s| s.path.clone());
    let blobs = dir.map(|d| read_blobs(&d, &oids)).unwrap_or_default();
    for ((facts, changed), session) in scanned.iter_mut().zip(sessions) {
        for (path, oid) in changed.iter() {
            let old: &[u8] = if oid.bytes().all(|b| b == b'0') || oid == NEW {
                &[]
            } else {
                blobs.get(oid).map_or(&[][..], Vec::as_slice)
            };
            let new = std::fs::read(session.path.join(path)).unwrap_or_default();
            if old == new.as_slice() {
                continue; // staged and unstaged changes that cancel out
            }
            let (ins, del) = line_changes(old, &new);
            facts.uncommitted.files += 1;
            facts.uncommitted.insertions += ins;
            facts.uncommitted.deletions += del;
        }
    }
    scanned.into_iter().map(|(facts, _)| facts).collect()
}

/// The state a session reports: `lost` for a `running` one whose host
/// is gone; for a running agent that reports what it does (Claude Code),
/// `running`, `needs-input`, `asking` or `idle` as it last said,
/// `starting` until it first says; `failed` for one that exited with a
/// non-zero code; else the stored state.
#[must_use]
pub fn reported_state(session: &Session) -> &'static str {
    reported_state_of(live_state(session), session, crate::agent::reports_state(&session.agent))
}

/// [`reported_state`] given the session's live state ([`live_state`])
/// and whether its agent reports its state
/// ([`crate::agent::reports_state`]): no process is looked at and no
/// command line parsed, so a list of 200 rows checks each once.
#[must_use]
pub fn reported_state_of(live: SessionState, session: &Session, reports: bool) -> &'static str {
    match live {
        SessionState::Running if reports => session.activity.map_or("starting", |a| a.as_str()),
        // An agent that exited with an error (or was killed) did not
        // finish: `failed`, never `exited` like one that ended well.
        SessionState::Exited if session.exit_code.is_some_and(|c| c != 0) => "failed",
        state => state.as_str(),
    }
}

/// The state to show: a `running` session whose host process is gone is
/// `lost`.
#[must_use]
pub fn live_state(session: &Session) -> SessionState {
    if session.state == SessionState::Running && !session.host_pid.is_some_and(process::is_alive) {
        SessionState::Lost
    } else {
        session.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_changes_count_like_git() {
        assert_eq!(line_changes(b"a\nb\nc\n", b"a\nB\nc\nd\n"), (2, 1));
        assert_eq!(line_changes(b"", b"x\ny\n"), (2, 0));
        assert_eq!(line_changes(b"x\n", b""), (0, 1));
        assert_eq!(line_changes(b"\0bin", b"\0other"), (0, 0));
    }

    #[test]
    fn shortstat_parses_every_shape() {
        assert_eq!(
            DiffStat::parse(" 3 files changed, 10 insertions(+), 2 deletions(-)"),
            DiffStat { files: 3, insertions: 10, deletions: 2 }
        );
        assert_eq!(
            DiffStat::parse(" 1 file changed, 1 deletion(-)"),
            DiffStat { files: 1, insertions: 0, deletions: 1 }
        );
        assert_eq!(DiffStat::parse(""), DiffStat::default());
    }
}
