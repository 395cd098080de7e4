// Whole on purpose (issue 18): reconcile and doctor share one list of
// findings and their repairs; split, a repair would drift from its finding.
//! Crash safety and repair.
//!
//! [`reconcile`] runs when a supervisor starts (the previous one may have
//! been killed mid-operation) and brings every session to a state that
//! needs no explanation: a creation cut short is undone (the half-checked
//! out worktree git left locked as `initializing`, the branch made for
//! it, the row), an archive or removal cut short is finished, a restore
//! cut short is taken back (the row still says archived), a task left
//! with no trial is dropped, and a session whose host died is `lost`. (The
//! git commands the killed supervisor left running were ended before:
//! `supervisor::end_orphans`.)
//!
//! [`doctor`] looks for what the user (or another tool) did by hand, or
//! a crash left: a worktree folder deleted, a branch deleted or switched,
//! a repository moved, a checkout git left locked `initializing`, folders
//! in tandem's worktrees folder that no session has (a lost database:
//! `--fix` adopts them). It explains each finding and, with `fix`,
//! repairs it with git's own tools (`git worktree prune` / `repair`, a
//! branch recreated at its last known commit). A worktree locked by the
//! user is never pruned.

use std::ffi::OsStr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use super::{SessionError, end, open_repo, same_path, undo_create, unsaved_work, worktrees_dir};
use crate::git;
use crate::paths::Paths;
use crate::repo::Repository;
use crate::store::{Session, SessionState, Store};

/// Brings the store in line with the hosts alive now and finishes or
/// undoes operations cut short. Returns one line per action taken.
///
/// # Errors
/// Store errors; a session whose repository cannot be opened is skipped.
pub fn reconcile(paths: &Paths, store: &Store) -> Result<Reconciled, SessionError> {
    let mut actions = Vec::new();
    let mut waiting = Vec::new();
    let live = [SessionState::Creating, SessionState::Running, SessionState::Stopped, SessionState::Exited];
    let all = store.sessions_in(&[&live[..], &[SessionState::Lost, SessionState::Archived]].concat())?;
    for session in all {
        let host_alive = session.host_pid.is_some_and(crate::process::is_alive)
            && UnixStream::connect(paths.host_socket(&session.id)).is_ok();
        let repo = || -> Result<(Repository, crate::config::Config), SessionError> {
            let root = store.repo_root(session.repo_id)?.unwrap_or_else(|| session.path.clone());
            open_repo(paths, &root)
        };
        if let Some(op) = session.pending.as_deref() {
            if host_alive {
                continue; // its agent still runs: the operation had not begun for real
            }
            let Ok((repo, config)) = repo() else { continue };
            let done = match op {
                "restore" => {
                    // Cut short: the row still says archived; take the
                    // checkout back, so `tandem restore` starts over.
                    let path = worktrees_dir(paths, &repo, &config).join(&session.slug);
                    let undone = if interrupted_restore(paths, &repo, &session, &path)? {
                        discard_checkout(&repo, &path)
                    } else {
                        Ok(())
                    };
                    store.set_pending(&session.id, None)?;
                    undone
                }
                "archive" => end::archive(paths, store, &repo, &config, &session, &[]).map(drop),
                "remove-force" | "remove" => {
                    end::remove(paths, store, &repo, &config, &session, op == "remove-force", &[], None)
                        .and_then(|_| end::finish_remove(&repo, store, &session))
                }
                _ => Ok(()),
            };
            match done {
                Ok(()) if op == "restore" => actions.push(format!(
                    "undid the interrupted restore of session {}; `tandem restore {}` brings it back",
                    session.slug, session.slug
                )),
                Ok(()) => actions.push(format!("finished the interrupted {op} of session {}", session.slug)),
                Err(e) => {
                    store.set_pending(&session.id, None)?;
                    // With its hint: a refused rm names `tandem rm --force`.
                    let e = crate::model::error::Failure::of(&e);
                    actions.push(format!("left session {} as it is: {e}", session.slug));
                }
            }
            continue;
        }
        match session.state {
            SessionState::Creating if !host_alive => {
                let Ok((repo, _)) = repo() else { continue };
                match settle_creation(&repo, store, &session) {
                    Ok(Some(action)) => actions.push(action),
                    Ok(None) => waiting.push(session.id.clone()),
                    Err(e) => {
                        tracing::warn!(session = %session.slug, error = %e, "cannot undo an interrupted creation yet");
                        waiting.push(session.id.clone());
                    }
                }
            }
            // No git for the usual archived session, whose folder is gone
            // (a restore checks out where the session was); `restore`
            // itself handles git's record of a folder that is gone too.
            SessionState::Archived if session.path.exists() => {
                let Ok((repo, config)) = repo() else { continue };
                let path = worktrees_dir(paths, &repo, &config).join(&session.slug);
                if path.exists() && interrupted_restore(paths, &repo, &session, &path)? {
                    discard_checkout(&repo, &path)?;
                    actions.push(format!(
                        "undid the interrupted restore of session {}; `tandem restore {}` brings it back",
                        session.slug, session.slug
                    ));
                }
            }
            SessionState::Running if !host_alive => {
                tracing::warn!(session = %session.slug, "host is gone; marking the session lost");
                store.set_state(&session.id, SessionState::Lost, None)?;
                actions.push(format!("session {}'s host is gone; it is lost", session.slug));
            }
            _ => {}
        }
    }
    // Removals answered but not yet pruned.
    for session in store.unfinished_removals()? {
        let root = store.repo_root(session.repo_id)?.unwrap_or_else(|| session.path.clone());
        let Ok((repo, _)) = open_repo(paths, &root) else { continue };
        match end::finish_remove(&repo, store, &session) {
            Ok(()) => actions.push(format!("finished removing session {}", session.slug)),
            Err(e) => {
                store.set_pending(&session.id, None)?;
                actions.push(format!("left removed session {}'s branch as it is: {e}", session.slug));
            }
        }
    }
    // Tasks whose every trial's creation was undone (above, or by a
    // `task new` that saw its first trial fail) are as if never made.
    for slug in store.delete_tasks_without_trials(None)? {
        actions.push(format!("dropped task {slug}: it was interrupted before any trial was made"));
    }
    Ok(Reconciled { actions, waiting })
}

/// What [`reconcile`] did, one line per action, and the interrupted
/// creations it could not settle yet (their ids): a `git worktree add`
/// of the killed process still at work on the worktree (it runs on,
/// orphaned, and would make the worktree after an undo removed it), or
/// an undo git refused meanwhile. [`settle_creations`] tries them again.
#[derive(Debug, Default)]
pub struct Reconciled {
    pub actions: Vec<String>,
    pub waiting: Vec<String>,
}

/// Settles the interrupted creations `ids` that [`reconcile`] left
/// waiting, where each is still `creating` with no live host; returns
/// what it did and the ones still waiting.
///
/// # Errors
/// Store errors.
pub fn settle_creations(paths: &Paths, store: &Store, ids: &[String]) -> Result<Reconciled, SessionError> {
    let mut done = Reconciled::default();
    for id in ids {
        let Some(session) = store.session(id)? else { continue };
        let host_alive = session.host_pid.is_some_and(crate::process::is_alive);
        if session.state != SessionState::Creating || host_alive {
            continue;
        }
        let root = store.repo_root(session.repo_id)?.unwrap_or_else(|| session.path.clone());
        let Ok((repo, _)) = open_repo(paths, &root) else { continue };
        match settle_creation(&repo, store, &session) {
            Ok(Some(action)) => done.actions.push(action),
            Ok(None) | Err(_) => done.waiting.push(id.clone()),
        }
    }
    Ok(done)
}

/// Undoes the creation of `session` cut short (kept, stopped, when its
/// worktree is whole and holds work), and says so; `None` while a git
/// process is still at work on its worktree.
///
/// # Errors
/// Git and store errors.
fn settle_creation(repo: &Repository, store: &Store, session: &Session) -> Result<Option<String>, SessionError> {
    if let Some(pid) = crate::process::git_at_work(&session.path, &[]) {
        tracing::info!(session = %session.slug, pid, "an interrupted creation's git is still at work; waiting");
        return Ok(None);
    }
    let complete = session.path.is_dir()
        && git::worktree_list(&repo.root)?.iter().any(|w| same_path(&w.path, &session.path) && w.locked.is_none());
    if complete && unsaved_work(repo, session)?.is_some() {
        store.set_state(&session.id, SessionState::Stopped, None)?;
        return Ok(Some(format!("session {} was interrupted while starting; it is stopped", session.slug)));
    }
    undo_create(repo, store, session)?;
    Ok(Some(format!("undid the interrupted creation of session {}", session.slug)))
}

/// Whether `path`, where `tandem restore` checks an archived session out,
/// holds a restore cut short (the row still says archived): a checkout
/// git left locked `initializing`, or one of the session's branch that
/// holds nothing beyond what is kept (clean, or exactly the session's
/// snapshot). Anything else there is left for `doctor` to explain.
pub(super) fn interrupted_restore(
    paths: &Paths,
    repo: &Repository,
    session: &Session,
    path: &Path,
) -> Result<bool, SessionError> {
    let worktrees = git::worktree_list(&repo.root)?;
    if half_checked_out(&worktrees, path) {
        return Ok(true);
    }
    // `restore` marks the row before it checks anything out.
    if session.pending.as_deref() == Some("restore") {
        return Ok(path.exists() || worktrees.iter().any(|w| same_path(&w.path, path)));
    }
    let branch = format!("refs/heads/{}", session.branch);
    let Some(entry) = worktrees.iter().find(|w| same_path(&w.path, path)) else { return Ok(false) };
    if entry.branch.as_deref() != Some(branch.as_str()) || entry.locked.is_some() || !path.is_dir() {
        return Ok(false);
    }
    if !git::status(path)?.is_dirty() {
        return Ok(true);
    }
    let Some(snapshot) = &session.archive_ref else { return Ok(false) };
    let kept = git::read(&repo.root, &["rev-parse", "--verify", "--quiet", &format!("{snapshot}^{{tree}}")]).ok();
    Ok(kept.is_some() && kept == git::worktree_tree(path, &paths.state_dir).ok())
}

/// Takes back a checkout tandem's own `git worktree add` began at `path`
/// and never finished (git left it locked `initializing`, half the files
/// written; issue 17, finding 5), or finished for a step that did not
/// (a restore whose row still says archived): nothing of the user's is in
/// it. `git worktree remove --force --force` removes it, lock and all;
/// when git refuses (its `.git` file not yet written), the lock is lifted
/// and the folder renamed into the trash beside it, and git's record
/// pruned.
///
/// # Errors
/// Git errors from the prune; I/O errors from the rename.
pub(super) fn discard_checkout(repo: &Repository, path: &Path) -> Result<(), SessionError> {
    let listed = || -> Result<bool, SessionError> {
        Ok(git::worktree_list(&repo.root)?.iter().any(|w| same_path(&w.path, path)))
    };
    if listed()? && git::worktree_remove(&repo.root, path, true).is_err() {
        let _ = git::run(&repo.root, &[OsStr::new("worktree"), OsStr::new("unlock"), path.as_os_str()]);
        if path.exists() {
            let trash = end::trash_dir(path.parent().unwrap_or(Path::new("/")));
            std::fs::create_dir_all(&trash)?;
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            std::fs::rename(path, trash.join(format!("{}-{name}-half", crate::unix_now())))?;
        }
    }
    git::worktree_prune(&repo.root)?;
    Ok(())
}

/// Whether git lists a worktree at `path` still locked `initializing`:
/// its `git worktree add` was cut short.
fn half_checked_out(worktrees: &[git::WorktreeEntry], path: &Path) -> bool {
    worktrees.iter().any(|w| same_path(&w.path, path) && w.locked.as_deref() == Some(INITIALIZING))
}

/// The lock reason `git worktree add` writes while it checks out.
const INITIALIZING: &str = "initializing";

pub use crate::model::Finding;

/// Finds (and with `fix`, repairs) what was done by hand to this
/// repository's sessions.
///
/// # Errors
/// Git and store errors.
pub fn doctor(paths: &Paths, store: &Store, repo: &Repository, fix: bool) -> Result<Vec<Finding>, SessionError> {
    let mut findings = Vec::new();
    let repo_id = store.upsert_repo(&repo.common_dir, &repo.root)?;
    moved_repositories(store, repo, repo_id, fix, &mut findings)?;
    let config = open_repo(paths, &repo.root)?.1;
    let worktrees = git::worktree_list(&repo.root)?;
    let sessions = store.sessions(repo_id)?;
    for session in &sessions {
        let mut found = |problem: String, remedy: String, fixed: bool| {
            findings.push(Finding { session: Some(session.slug.clone()), problem, remedy, fixed });
        };
        if session.state == SessionState::Archived {
            let path = worktrees_dir(paths, repo, &config).join(&session.slug);
            if interrupted_restore(paths, repo, session, &path)? {
                let fixed = fix && discard_checkout(repo, &path).is_ok();
                found(
                    format!(
                        "the restore of this archived session was cut short; {} holds its half checkout",
                        path.display()
                    ),
                    format!(
                        "take the checkout back (branch and snapshot keep everything); then `tandem restore {}`",
                        session.slug
                    ),
                    fixed,
                );
            }
            continue;
        }
        if session.state == SessionState::Removed {
            continue;
        }
        let listed = worktrees.iter().find(|w| same_path(&w.path, &session.path));
        let branch_ref = format!("refs/heads/{}", session.branch);
        let branch_tip = git::resolve_commit(&repo.root, &branch_ref)?;
        if half_checked_out(&worktrees, &session.path) {
            let remedy = format!(
                "check branch {} out there again; the half checkout goes, the branch keeps every commit",
                session.branch
            );
            let fixed = fix && {
                discard_checkout(repo, &session.path)?;
                check_out_again(repo, session, branch_tip.is_some())?;
                true
            };
            found(
                format!(
                    "the checkout of {} was cut short (git left it locked `{INITIALIZING}`)",
                    session.path.display()
                ),
                remedy,
                fixed,
            );
            continue;
        }
        if !session.path.is_dir() {
            if listed.is_some_and(|w| w.locked.is_some()) {
                found(
                    format!("worktree folder {} is gone, and git has it locked", session.path.display()),
                    "left alone: a locked worktree is never pruned; unlock it with `git worktree unlock`".into(),
                    false,
                );
                continue;
            }
            let remedy = format!("prune git's record and check the branch out again at {}", session.path.display());
            let fixed = fix && {
                git::worktree_prune(&repo.root)?;
                check_out_again(repo, session, branch_tip.is_some())?;
                true
            };
            found(format!("worktree folder {} was deleted by hand", session.path.display()), remedy, fixed);
            continue;
        }
        if listed.is_none() || !session.path.join(".git").exists() {
            let fixed = fix && git::run(&repo.root, &["worktree", "repair", &session.path.to_string_lossy()]).is_ok();
            found(
                format!("{} is no longer linked to the repository", session.path.display()),
                "relink it with `git worktree repair`".into(),
                fixed,
            );
            continue;
        }
        let on = listed.and_then(|w| w.branch.as_deref()).map(|b| b.trim_start_matches("refs/heads/").to_owned());
        if branch_tip.is_none() && on.as_deref() == Some(session.branch.as_str()) {
            let at = session.last_commit.clone().unwrap_or_else(|| session.base_commit.clone());
            let fixed = fix && git::create_branch(&repo.root, &session.branch, &at).is_ok();
            found(
                format!("branch {} was deleted by hand", session.branch),
                format!("recreate it at its last known commit {}", git::short(&at)),
                fixed,
            );
        } else if on.as_deref() != Some(session.branch.as_str()) {
            let what = on.as_deref().map_or_else(|| "a detached HEAD".to_owned(), |b| format!("branch {b}"));
            match on {
                Some(other) if !super::is_protected(repo, &config, &other)? => {
                    let fixed = fix && store.set_branch(&session.id, &other).is_ok();
                    found(
                        format!(
                            "the worktree was switched by hand to {what} (the session's branch is {})",
                            session.branch
                        ),
                        format!("make {other} the session's branch; {} stays as it is", session.branch),
                        fixed,
                    );
                }
                _ => found(
                    format!("the worktree was switched by hand to {what} (the session's branch is {})", session.branch),
                    format!(
                        "left alone; switch back with `git -C {} switch {}`",
                        session.path.display(),
                        session.branch
                    ),
                    false,
                ),
            }
        }
        if let Some(tip) = git::resolve_commit(&repo.root, &branch_ref)? {
            store.set_last_commit(&session.id, &tip)?;
        }
    }
    orphans(paths, store, repo, repo_id, &config, &sessions, fix, &mut findings)?;
    let trash = end::trash_dir(&worktrees_dir(paths, repo, &config));
    let leftovers = std::fs::read_dir(&trash).map(|d| d.count()).unwrap_or(0);
    if leftovers > 0 {
        let fixed = fix && {
            std::fs::read_dir(&trash).into_iter().flatten().flatten().for_each(|e| end::delete_tree(&e.path()));
            true
        };
        findings.push(Finding {
            session: None,
            problem: format!("{leftovers} removed worktree(s) still in {}", trash.display()),
            remedy: "delete them".into(),
            fixed,
        });
    }
    findings.extend(crate::ship::merge_journal::doctor(paths, &repo.root, fix));
    Ok(findings)
}

/// Folders in tandem's worktrees folder for `repo` that no session has:
/// the database lost them (deleted or replaced while the supervisor ran,
/// issue 17, finding 7), or a crash left them. A git worktree on a branch
/// is adopted back into a session (named after its folder, its live host
/// with it when one runs there); a checkout git left locked
/// `initializing` is taken back; anything else is explained and left
/// alone.
#[allow(clippy::too_many_arguments)]
fn orphans(
    paths: &Paths,
    store: &Store,
    repo: &Repository,
    repo_id: i64,
    config: &crate::config::Config,
    sessions: &[Session],
    fix: bool,
    findings: &mut Vec<Finding>,
) -> Result<(), SessionError> {
    let Ok(entries) = std::fs::read_dir(worktrees_dir(paths, repo, config)) else { return Ok(()) };
    let worktrees = git::worktree_list(&repo.root)?;
    let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with('.') || !path.is_dir() || sessions.iter().any(|s| same_path(&s.path, &path)) {
            continue;
        }
        let shown = path.display();
        let (problem, remedy, fixed) = match worktrees.iter().find(|w| same_path(&w.path, &path)) {
            Some(w) if w.locked.as_deref() == Some(INITIALIZING) => (
                format!("{shown} is a checkout cut short (git left it locked `{INITIALIZING}`) that no session owns"),
                "take it back; nothing was made in it".to_owned(),
                fix && discard_checkout(repo, &path).is_ok(),
            ),
            Some(w) if w.locked.is_none() && w.branch.is_some() => {
                let branch = w.branch.as_deref().unwrap_or_default().trim_start_matches("refs/heads/").to_owned();
                let slug = super::slugs::slugify(&name);
                if slug.is_empty() || store.session_by_slug(repo_id, &slug)?.is_some() {
                    (
                        format!("worktree {shown} (branch {branch}) belongs to no session"),
                        format!(
                            "left alone: a session is named `{slug}` already; move the folder, then run `tandem doctor --fix` again"
                        ),
                        false,
                    )
                } else {
                    let adopted =
                        if fix { Some(adopt(paths, store, repo, repo_id, &path, &branch, &slug)?) } else { None };
                    let how = match &adopted {
                        Some(s) if s.state == SessionState::Running => " (its agent still runs; attach to it)",
                        _ => "",
                    };
                    (
                        format!("worktree {shown} (branch {branch}) belongs to no session: the database lost it"),
                        format!("adopt it as session {slug}{how}"),
                        adopted.is_some(),
                    )
                }
            }
            Some(_) => (
                format!("worktree {shown} belongs to no session, and is locked or on a detached HEAD"),
                format!(
                    "left alone; switch it to a branch (`git -C {shown} switch -c NAME`), then run `tandem doctor --fix` again"
                ),
                false,
            ),
            None => (
                format!(
                    "{shown} is in tandem's worktrees folder but is neither a session's worktree nor a git worktree"
                ),
                "left alone: look through it, then delete it or move it away".to_owned(),
                false,
            ),
        };
        findings.push(Finding { session: None, problem, remedy, fixed });
    }
    Ok(())
}

/// Makes a session of the worktree at `path` on `branch`, named `slug`,
/// that no session had. Its base is the repository's default branch
/// (where they part), else its own tip; its agent is the shell. A host
/// still serving an agent in that folder keeps its session id, so the
/// session is `running` again with it; else it is `stopped`. tandem did
/// not make the branch as far as it knows, so removing the session keeps
/// it.
fn adopt(
    paths: &Paths,
    store: &Store,
    repo: &Repository,
    repo_id: i64,
    path: &Path,
    branch: &str,
    slug: &str,
) -> Result<Session, SessionError> {
    let tip = git::resolve_commit(&repo.root, &format!("refs/heads/{branch}"))?.unwrap_or_default();
    let base = git::default_branch(&repo.root)?
        .and_then(|b| git::resolve_commit(&repo.root, &format!("refs/heads/{b}")).ok().flatten().map(|c| (b, c)));
    let (base_ref, base_commit) = match base {
        Some((name, at)) => (name, git::merge_base(&repo.root, &tip, &at)?.unwrap_or(at)),
        // No base branch known: the tip itself (never the word `HEAD`,
        // which would later name the session's own HEAD).
        None => (tip.clone(), tip.clone()),
    };
    let host = live_host_in(paths, store, path);
    let now = crate::unix_now();
    let id = host.as_ref().map_or_else(new_id, |(id, _, _)| id.clone());
    let command = host
        .as_ref()
        .and_then(|(_, _, agent)| std::fs::read(format!("/proc/{agent}/cmdline")).ok())
        .map(|raw| {
            raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
        })
        .unwrap_or_default();
    let session = Session {
        id,
        repo_id,
        slug: slug.to_owned(),
        branch: branch.to_owned(),
        agent: "shell".to_owned(),
        command,
        path: path.to_path_buf(),
        base_ref,
        base_commit,
        state: if host.is_some() { SessionState::Running } else { SessionState::Stopped },
        host_pid: host.as_ref().map(|h| h.1),
        agent_pid: host.as_ref().map(|h| h.2),
        created_at: now,
        updated_at: now,
        last_commit: Some(tip),
        ..Session::default()
    };
    store.insert_session(&session)?;
    crate::paths::create_private_dir(&paths.session_dir(&session.id))?;
    Ok(session)
}

/// A new session id: 12 hex digits.
fn new_id() -> String {
    use rand::RngCore;
    let mut id = [0u8; 6];
    rand::rng().fill_bytes(&mut id);
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// The host serving an agent whose working folder is `path` (or inside
/// it) and whose session the store does not have: `(session id, host
/// pid, agent pid)`. Asks each host socket with no row for its welcome
/// (its session id and agent pid) and the kernel for its pid.
fn live_host_in(paths: &Paths, store: &Store, path: &Path) -> Option<(String, i32, i32)> {
    use crate::protocol::{ClientMode, ClientMsg, HostMsg};
    let dir = paths.host_socket("x").parent()?.to_path_buf();
    let want = path.canonicalize().ok()?;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_suffix(".sock") else { continue };
        if store.session(id).ok().flatten().is_some() {
            continue;
        }
        let Ok(mut stream) = UnixStream::connect(entry.path()) else { continue };
        let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
        if crate::protocol::send(&mut stream, &ClientMsg::hello(ClientMode::Control)).is_err() {
            continue;
        }
        let Ok(Some(HostMsg::Welcome { session_id, agent_pid, .. })) = crate::protocol::recv::<HostMsg>(&mut stream)
        else {
            continue;
        };
        let Ok(creds) = nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials) else {
            continue;
        };
        let cwd = std::fs::read_link(format!("/proc/{agent_pid}/cwd")).ok();
        if session_id == id && cwd.is_some_and(|c| c.starts_with(&want)) {
            return Some((session_id, creds.pid(), agent_pid));
        }
    }
    None
}

/// `doctor --fix`'s way back to a session's worktree once what stood at
/// its path is gone: the branch recreated at its last known commit when
/// it is gone too (`has_branch` false), then checked out at the path.
fn check_out_again(repo: &Repository, session: &Session, has_branch: bool) -> Result<(), SessionError> {
    if !has_branch {
        let at = session.last_commit.as_deref().unwrap_or(&session.base_commit);
        git::create_branch(&repo.root, &session.branch, at)?;
    }
    std::fs::create_dir_all(session.path.parent().unwrap_or(Path::new("/")))?;
    git::worktree_add_existing(&repo.root, &session.path, &session.branch)?;
    crate::fault::point("doctor.worktree-added");
    Ok(())
}

/// Repositories in the store whose `.git` is gone but whose sessions'
/// worktrees still exist and belong to `repo` once relinked: the
/// repository was moved (here).
fn moved_repositories(
    store: &Store,
    repo: &Repository,
    repo_id: i64,
    fix: bool,
    findings: &mut Vec<Finding>,
) -> Result<(), SessionError> {
    for (old_id, common_dir, root) in store.repos()? {
        if old_id == repo_id || common_dir.exists() {
            continue;
        }
        let sessions: Vec<Session> = store.sessions(old_id)?;
        let paths: Vec<PathBuf> = sessions
            .iter()
            .filter(|s| s.path.is_dir() && crate::repo::admin_dir(&s.path).is_some_and(|g| g.starts_with(&common_dir)))
            .map(|s| s.path.clone())
            .collect();
        if paths.is_empty() || !looks_like(repo, &paths[0], &common_dir) {
            continue;
        }
        let fixed = fix && {
            let mut args = vec!["worktree".to_owned(), "repair".to_owned()];
            args.extend(paths.iter().map(|p| p.to_string_lossy().into_owned()));
            git::run(&repo.root, &args)?;
            store.merge_repo(old_id, repo_id)?;
            true
        };
        findings.push(Finding {
            session: None,
            problem: format!(
                "the repository moved from {} to {}; {} session(s) still point at the old place",
                root.display(),
                repo.root.display(),
                sessions.len()
            ),
            remedy: "relink their worktrees with `git worktree repair` and record the new place".into(),
            fixed,
        });
    }
    Ok(())
}

/// Whether `repo` has an admin folder for the worktree at `path` of the
/// same name as the one under the old common dir.
fn looks_like(repo: &Repository, path: &Path, old_common: &Path) -> bool {
    crate::repo::admin_dir(path)
        .and_then(|g| g.strip_prefix(old_common).ok().map(Path::to_path_buf))
        .is_some_and(|rel| repo.common_dir.join(rel).is_dir())
}
