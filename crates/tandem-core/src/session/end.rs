//! Ending sessions and bringing them back: `rm`, `archive`, `restore`,
//! `gc`, and the trash.
//!
//! A worktree is never deleted in place. Once nothing in it would be lost
//! (checked, or snapshotted under
//! `refs/tandem/archive/<slug>/<time>-<owner tag>`),
//! it is renamed into `<worktrees dir>/.trash/` on the same filesystem,
//! its `.git` link is deleted so nothing can take it for a worktree, and
//! `git worktree prune` forgets it: that returns in milliseconds where
//! `git worktree remove` takes seconds on a large tree (DESIGN.md). For
//! `rm`, the prune and the branch's deletion run just after the answer,
//! still under the repository's lock ([`finish_remove`]). The files are
//! deleted by a background thread; what a crash leaves there, `tandem gc`
//! deletes.
//!
//! Each operation records itself in the row's `pending` column first and
//! clears it last, so [`super::repair::reconcile`] can finish one cut
//! short by a `kill -9`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{SessionError, hook_env, plural, repo_hooks, unsaved_work_given, worktrees_dir};
use crate::config::Config;
use crate::git;
use crate::host::screen;
use crate::model::RemoveReport;
use crate::paths::Paths;
use crate::repo::Repository;
use crate::store::{Session, SessionState, Store};

/// The trash folder beside a repository's worktrees.
#[must_use]
pub fn trash_dir(worktrees: &Path) -> PathBuf {
    worktrees.join(".trash")
}

/// Removes a session whose agent is no longer running: snapshot if
/// `force` and anything would be lost (else refuse), teardown hooks, the
/// worktree into the trash, and mark the row removed with
/// [`FINISH_REMOVE`] pending; [`finish_remove`] must follow (prune, and
/// delete the branch if tandem made it). `checked`: what [`super::unsaved_work`] said, when the
/// caller asked it since the agent last ran (else it is asked here).
/// Returns the report and notes.
///
/// # Errors
/// [`SessionError::WouldLoseWork`] without `force`; git and store errors.
#[allow(clippy::too_many_arguments)]
pub fn remove(
    paths: &Paths,
    store: &Store,
    repo: &Repository,
    config: &Config,
    session: &Session,
    force: bool,
    env: &[(String, String)],
    checked: Option<Option<String>>,
) -> Result<(RemoveReport, Vec<String>), SessionError> {
    let unsaved = match checked {
        Some(unsaved) => unsaved,
        None => unsaved_work_given(repo, session, None, None)?,
    };
    if let (Some(what), false) = (&unsaved, force) {
        return Err(SessionError::WouldLoseWork { slug: session.slug.clone(), what: what.clone() });
    }
    store.set_pending(&session.id, Some(if force { "remove-force" } else { "remove" }))?;
    let archive_ref = before_discard(store, session, || {
        Ok(match (resumed(session), unsaved.is_some()) {
            // A removal cut short after its snapshot and the worktree: that
            // snapshot holds it all.
            (Some(kept), _) if !session.path.is_dir() => Some(kept),
            (kept, true) => Some(keep_snapshot(paths, store, repo, session, kept)?),
            (kept, false) => kept,
        })
    })?;
    crate::fault::point("rm.snapshotted");
    let mut notes = Vec::new();
    teardown(paths, store, repo, config, session, env, &mut notes)?;
    discard_worktree(paths, repo, config, session, env, false, &mut notes)?;
    crate::fault::point("rm.trashed");
    store.mark_removed(&session.id, archive_ref.as_deref(), Some(FINISH_REMOVE))?;
    let report = RemoveReport {
        slug: session.slug.clone(),
        branch: session.branch.clone(),
        path: session.path.clone(),
        archive_ref,
    };
    Ok((report, notes))
}

/// The `pending` mark of a removed session whose git bookkeeping
/// ([`finish_remove`]) is still to do.
pub const FINISH_REMOVE: &str = "finish-remove";

/// The end of a removal begun by [`remove`]: `git worktree prune`
/// forgets the worktree now in the trash, the branch goes if tandem made
/// it, and the row's `pending` mark is cleared. The supervisor runs it
/// under the repository's lock right after answering `rm` (`rm --wait`:
/// before), so the next tandem command on the repository sees it done;
/// [`super::repair::reconcile`] runs it after a crash.
///
/// # Errors
/// Git and store errors.
pub fn finish_remove(repo: &Repository, store: &Store, session: &Session) -> Result<(), SessionError> {
    git::worktree_prune(&repo.root)?;
    if session.owns_branch {
        git::delete_branch_if_present(&repo.root, &session.branch)?;
    }
    if session.review_of.is_some() {
        // Deleting a ref that is gone is no error (`update-ref -d`).
        let _ = git::delete_ref(&repo.root, &crate::ship::review::start_ref(&session.id));
    }
    store.set_pending(&session.id, None)?;
    Ok(())
}

/// Archives a session whose agent is no longer running: stores a
/// summary, snapshots dirty work, runs teardown hooks, moves the worktree
/// to the trash, and keeps branch, history and metadata. Returns the
/// archived row and notes.
///
/// # Errors
/// Git and store errors.
pub fn archive(
    paths: &Paths,
    store: &Store,
    repo: &Repository,
    config: &Config,
    session: &Session,
    env: &[(String, String)],
) -> Result<(Session, Vec<String>), SessionError> {
    store.set_pending(&session.id, Some("archive"))?;
    let (summary, archive_ref) = before_discard(store, session, || {
        // A summary command the repository set runs only once approved.
        let summary = summarize(paths, repo, &repo_hooks::approved_config(store, repo, config)?, session, env);
        // Dirty files, a detached HEAD's commits, an operation under way,
        // changed included files: what goes with the worktree is snapshotted.
        let holds = !super::worktree_only_work(repo, session, None)?.is_empty();
        let archive_ref = match (resumed(session), holds) {
            (Some(kept), _) if !session.path.is_dir() => Some(kept),
            (kept, true) => Some(keep_snapshot(paths, store, repo, session, kept)?),
            (kept, false) => kept,
        };
        crate::fault::point("archive.snapshotted");
        if let Some(tip) = git::resolve_commit(&repo.root, &format!("refs/heads/{}", session.branch))? {
            store.set_last_commit(&session.id, &tip)?;
        }
        Ok((summary, archive_ref))
    })?;
    let mut notes = Vec::new();
    teardown(paths, store, repo, config, session, env, &mut notes)?;
    discard_worktree(paths, repo, config, session, env, true, &mut notes)?;
    crate::fault::point("archive.trashed");
    store.mark_archived(&session.id, archive_ref.as_deref(), &summary)?;
    let session = store.session(&session.id)?.ok_or_else(|| SessionError::NotFound { name: session.slug.clone() })?;
    Ok((session, notes))
}

/// Brings an archived session's worktree back from its branch (recreated
/// from its last known commit if it was deleted), re-applies the
/// snapshot of its dirty work, copies `.worktreeinclude` files and runs
/// the setup hooks. The row becomes `stopped`; the caller starts the
/// agent.
///
/// # Errors
/// [`SessionError::NotArchived`], [`SessionError::RestoreBlocked`], git and
/// store errors.
pub fn restore(
    paths: &Paths,
    store: &Store,
    repo: &Repository,
    config: &Config,
    session: &Session,
    env: &[(String, String)],
) -> Result<(Session, Vec<String>), SessionError> {
    if session.state != SessionState::Archived {
        return Err(SessionError::NotArchived { slug: session.slug.clone(), state: session.state.as_str() });
    }
    let mut notes = Vec::new();
    let path = worktrees_dir(paths, repo, config).join(&session.slug);
    if super::repair::interrupted_restore(paths, repo, session, &path)? {
        // A restore cut short by a `kill -9` (issue 17, finding 5).
        super::repair::discard_checkout(repo, &path)?;
    } else if path.exists() {
        return Err(SessionError::RestoreBlocked { slug: session.slug.clone(), path });
    }
    // Marked first: whatever is at `path` while the row says archived
    // and `restore` is pending came from the branch and the snapshot
    // alone (the agent starts after), so a restore cut short or failed
    // is taken back whole ([`super::repair::interrupted_restore`]).
    store.set_pending(&session.id, Some("restore"))?;
    let checked_out = (|| -> Result<(), SessionError> {
        if !git::branch_exists(&repo.root, &session.branch)? {
            let at = session.last_commit.clone().unwrap_or_else(|| session.base_commit.clone());
            git::create_branch(&repo.root, &session.branch, &at)?;
            notes.push(format!("branch {} was gone; recreated it at {}", session.branch, git::short(&at)));
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // An archive whose `git worktree prune` failed left git's record
        // of the folder it took away; git refuses to add over it.
        git::worktree_prune(&repo.root)?;
        git::worktree_add_existing(&repo.root, &path, &session.branch)?;
        crate::fault::point("restore.worktree-added");
        if let Some(snapshot) = &session.archive_ref {
            // The snapshot's tree is the whole worktree as it was,
            // untracked files included; `restore` puts it back without
            // touching HEAD.
            git::run(&path, &["restore", "--source", snapshot, "--worktree", "--", "."])?;
            notes.push(format!("re-applied the uncommitted work kept in {snapshot}"));
        }
        Ok(())
    })();
    if let Err(e) = checked_out {
        // Nothing of the user's is in a checkout this restore made.
        if let Err(undo) = super::repair::discard_checkout(repo, &path) {
            tracing::warn!(error = %undo, "cannot take back the failed restore's checkout");
        }
        let _ = store.set_pending(&session.id, None);
        return Err(e);
    }
    store.mark_restored(&session.id, &path)?;
    let mut restored =
        store.session(&session.id)?.ok_or_else(|| SessionError::NotFound { name: session.slug.clone() })?;
    super::finish_worktree(paths, store, repo, config, &mut restored, env, &mut notes)?;
    Ok((restored, notes))
}

pub use crate::model::GcReport;

/// Drops this repository's archive refs
/// (`refs/tandem/archive/<slug>/<time>-<owner tag>`), the tips `sync`
/// kept (`refs/tandem/sync/<slug>/<time>-<commit>-<owner tag>`) and trash
/// entries older than `older_than`, and only those this state folder
/// made: a ref whose owner tag is another's is left alone (issue 17:
/// another `TANDEM_HOME`'s `gc` dropped this one's snapshots). A ref from
/// before owner tags counts as this state folder's only when its store
/// proves it: a session row points at it (a snapshot), or a session of
/// the same name is in its store (a sync tip). The snapshot of a session
/// still archived is kept.
///
/// # Errors
/// Git and store errors; I/O errors reading the owner tag.
pub fn gc(
    paths: &Paths,
    store: &Store,
    repo: &Repository,
    config: &Config,
    older_than: Duration,
) -> Result<GcReport, SessionError> {
    let cutoff = crate::unix_now() - i64::try_from(older_than.as_secs()).unwrap_or(i64::MAX);
    let mut report = GcReport::default();
    let owner = paths.owner_tag()?;
    let sessions = match store.find_repo(&repo.common_dir)? {
        // Removed rows too: they point at the snapshots `rm --force` kept.
        Some(id) => {
            let mut all = store.sessions(id)?;
            all.extend(store.sessions_in(&[SessionState::Removed])?.into_iter().filter(|s| s.repo_id == id));
            all
        }
        None => Vec::new(),
    };
    let needed: Vec<&str> = sessions
        .iter()
        .filter(|s| s.state == SessionState::Archived)
        .filter_map(|s| s.archive_ref.as_deref())
        .collect();
    // Snapshots of removed or archived work, and tips kept by `sync`.
    let mut refs = git::refs_under(&repo.root, "refs/tandem/archive/")?;
    refs.extend(git::refs_under(&repo.root, "refs/tandem/sync/")?);
    for (name, _) in refs {
        let last = name.rsplit('/').next().unwrap_or_default();
        let stamp = last.split('-').next().and_then(|t| t.parse::<i64>().ok());
        if stamp.is_none_or(|t| t >= cutoff) {
            continue;
        }
        let tag = last.rsplit('-').next().filter(|t| crate::paths::is_owner_tag(t));
        let ours = match tag {
            Some(tag) => tag == owner,
            None => {
                let slug = name.split('/').nth(3).unwrap_or_default();
                sessions.iter().any(|s| s.archive_ref.as_deref() == Some(name.as_str()))
                    || (name.starts_with("refs/tandem/sync/") && sessions.iter().any(|s| s.slug == slug))
            }
        };
        if !ours {
            report.others.push(name);
        } else if needed.contains(&name.as_str()) {
            report.kept.push(name);
        } else {
            git::delete_ref(&repo.root, &name)?;
            report.refs.push(name);
        }
    }
    let trash = trash_dir(&worktrees_dir(paths, repo, config));
    for entry in std::fs::read_dir(&trash).into_iter().flatten().flatten() {
        let stamp = entry.file_name().to_string_lossy().split('-').next().and_then(|t| t.parse::<i64>().ok());
        if stamp.is_some_and(|t| t < cutoff) {
            delete_tree(&entry.path());
            report.trash.push(entry.path());
        }
    }
    Ok(report)
}

/// Runs the part of an `rm` or `archive` that comes before the worktree
/// goes. On an error nothing is gone yet, so the row's `pending` mark is
/// cleared: the next supervisor must not finish an operation the user saw
/// fail (a snapshot already made stays recorded).
fn before_discard<T>(
    store: &Store,
    session: &Session,
    f: impl FnOnce() -> Result<T, SessionError>,
) -> Result<T, SessionError> {
    let done = f();
    if done.is_err() && session.pending.is_none() {
        let _ = store.set_pending(&session.id, None);
    }
    done
}

/// The snapshot an `rm` or `archive` cut short had already made and
/// recorded: `session` is the row as [`super::repair::reconcile`] read it
/// (its `pending` mark set), so its `archive_ref` was written by the
/// interrupted run ([`keep_snapshot`]; `restore` clears it). Reused as
/// is only when the worktree is gone; else it is snapshotted again.
fn resumed(session: &Session) -> Option<String> {
    session.pending.as_ref().and(session.archive_ref.clone())
}

/// [`super::snapshot`], recorded in the row at once, before the worktree
/// goes (issue 17: a kill after the worktree went to the trash left the
/// snapshot unlinked, and `gc` then dropped it).
///
/// `previous`: the snapshot an interrupted run made while the worktree is
/// still there. The worktree may have changed since (a file saved before
/// the next command finished the run), so it is snapshotted again; when
/// nothing changed (same tree and parents) the previous one is kept and
/// no second ref is made.
fn keep_snapshot(
    paths: &Paths,
    store: &Store,
    repo: &Repository,
    session: &Session,
    previous: Option<String>,
) -> Result<String, SessionError> {
    let name = super::snapshot(paths, repo, session)?;
    if let Some(previous) = previous {
        let content = |r: &str| git::read(&repo.root, &["show", "-s", "--format=%T %P", "--end-of-options", r]).ok();
        if content(&previous).is_some_and(|c| Some(c) == content(&name)) {
            git::delete_ref(&repo.root, &name)?;
            return Ok(previous);
        }
    }
    store.set_archive_ref(&session.id, &name)?;
    Ok(name)
}

/// Runs the teardown hooks (approved ones only) in the worktree.
fn teardown(
    paths: &Paths,
    store: &Store,
    repo: &Repository,
    config: &Config,
    session: &Session,
    env: &[(String, String)],
    notes: &mut Vec<String>,
) -> Result<(), SessionError> {
    if !session.path.is_dir() {
        return Ok(());
    }
    let hook_env = hook_env(repo, session, env);
    let log = paths.session_dir(&session.id).join("hooks.log");
    let _ = crate::paths::create_private_dir(&paths.session_dir(&session.id));
    for hook in repo_hooks::all(repo, config).into_iter().filter(|h| h.kind == "teardown") {
        if !repo_hooks::may_run(store, &hook)? {
            notes.push(format!("teardown hook `{}` is not approved; skipped", hook.command));
        } else {
            let ran = super::fence(paths, repo, config, session, env, None)
                .map_err(|e| format!("teardown hook `{}` was not run: {e}", hook.command))
                .and_then(|fence| {
                    repo_hooks::run("teardown", &hook.command, &session.path, &hook_env, &log, fence.as_ref())
                });
            if let Err(why) = ran {
                notes.push(why);
            }
        }
    }
    Ok(())
}

/// Takes the worktree away: the `worktree_remove` hook when configured,
/// else a rename into the trash plus `git worktree prune`, with the files
/// deleted in the background (`git worktree remove` when the trash is on
/// another filesystem).
fn discard_worktree(
    paths: &Paths,
    repo: &Repository,
    config: &Config,
    session: &Session,
    env: &[(String, String)],
    prune: bool,
    notes: &mut Vec<String>,
) -> Result<(), SessionError> {
    let command = config.hooks.worktree_remove.trim();
    if !command.is_empty() {
        let hook_env = hook_env(repo, session, env);
        repo_hooks::run_replacement("worktree_remove", command, &repo.root, &hook_env)
            .map_err(|message| SessionError::Hook { message })?;
        return Ok(());
    }
    if session.path.is_dir() {
        let trash = trash_dir(&worktrees_dir(paths, repo, config));
        std::fs::create_dir_all(&trash)?;
        let entry = trash.join(format!("{}-{}", crate::unix_now(), session.id));
        match std::fs::rename(&session.path, &entry) {
            Ok(()) => {
                let _ = std::fs::remove_file(entry.join(".git"));
                std::thread::spawn(move || {
                    crate::process::lower_thread_priority();
                    delete_tree(&entry);
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot move the worktree to the trash; removing it in place");
                git::worktree_remove(&repo.root, &session.path, true)?;
                notes.push(format!("{} was removed in place ({e})", session.path.display()));
            }
        }
    }
    if prune {
        // The folder is gone: git's record of it is bookkeeping that
        // `git worktree prune` (the next rm, or `tandem doctor --fix`)
        // finishes; the archive stands.
        if let Err(e) = git::worktree_prune(&repo.root) {
            notes.push(format!("git still lists the removed worktree ({e}); `tandem doctor --fix` prunes it"));
        }
    }
    Ok(())
}

/// Deletes a folder tree, making read-only folders writable if needed.
pub fn delete_tree(dir: &Path) {
    if std::fs::remove_dir_all(dir).is_ok() || !dir.exists() {
        return;
    }
    fn writable(dir: &Path) {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                writable(&entry.path());
            }
        }
    }
    writable(dir);
    if let Err(e) = std::fs::remove_dir_all(dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot empty the trash; `tandem gc` will retry");
    }
}

/// A few sentences on what a session did: from `archive.summary_command`,
/// else a one-shot `claude -p` for a Claude Code session, else its last
/// lines of output and its diffstat.
fn summarize(paths: &Paths, repo: &Repository, config: &Config, session: &Session, env: &[(String, String)]) -> String {
    let diffstat = if session.path.is_dir() {
        git::diff_shortstat(&session.path, &session.base_commit).unwrap_or_default()
    } else {
        String::new()
    };
    let commits = git::log_oneline(&repo.root, &format!("{}..refs/heads/{}", session.base_commit, session.branch), 20)
        .unwrap_or_default();
    let dir = paths.session_dir(&session.id);
    let (rows, cols) = screen::read_size(&dir);
    let text = screen::replay(&dir, rows, cols).map(|mut p| screen::text(&mut p)).unwrap_or_default();
    let lines: Vec<&str> = text.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(40)..].join("\n");
    let changes = if diffstat.is_empty() { "no changes against its base".to_owned() } else { diffstat.clone() };
    let material = format!(
        "Session {} (branch {}, agent {}{}).\nChanges: {changes}\nCommits:\n{}\nLast output:\n{tail}\n",
        session.slug,
        session.branch,
        session.agent,
        session.meta.title.as_deref().map(|t| format!(", title \"{t}\"")).unwrap_or_default(),
        commits.join("\n"),
    );
    let cwd = if session.path.is_dir() { session.path.clone() } else { repo.root.clone() };
    let command = config.archive.summary_command.trim();
    let written = if !command.is_empty() {
        let argv = vec!["/bin/sh".to_owned(), "-c".to_owned(), command.to_owned()];
        // A sandboxed session's summary command runs inside its fence
        // (issue 16); when the fence cannot be made, it does not run.
        let argv = match session.sandbox {
            None => Some(argv),
            Some(_) => super::fence(paths, repo, config, session, env, None)
                .ok()
                .flatten()
                .and_then(|fence| fence.wrap(&argv, env, false).ok()),
        };
        argv.and_then(|argv| {
            let mut cmd = Command::new(&argv[0]);
            cmd.args(&argv[1..]);
            one_shot(cmd, &cwd, env, Some(&material))
        })
    } else {
        let question = format!(
            "In two or three plain sentences, summarize what this coding session did, for a list of archived \
             sessions. Answer with the summary only.\n\n{material}"
        );
        agent_one_shot(session, &cwd, env, &question)
    };
    written.unwrap_or_else(|| {
        let last = lines.iter().rev().take(3).rev().copied().collect::<Vec<_>>().join(" / ");
        let commits = plural(commits.len(), "commit");
        match (last.is_empty(), diffstat.is_empty()) {
            (true, true) => format!("{commits}; no changes"),
            (true, false) => format!("{commits}; {diffstat}"),
            (false, true) => format!("{commits}; last output: {last}"),
            (false, false) => format!("{commits}; {diffstat}; last output: {last}"),
        }
    })
}

/// Runs a summary command for at most 90 s; its trimmed stdout, or `None`
/// when it fails, prints nothing or takes too long.
/// Asks `session`'s agent `question` once ([`crate::agent::one_shot`]) in
/// `cwd` (a sandboxed session's: in an empty folder, [`one_shot_dir`]);
/// `None` for agents without a one-shot mode, a missing program, a
/// failure or a timeout.
pub(crate) fn agent_one_shot(
    session: &Session,
    cwd: &Path,
    env: &[(String, String)],
    question: &str,
) -> Option<String> {
    let program = session.command.first().filter(|p| Path::new(p).exists())?;
    let argv = crate::agent::one_shot(&session.agent, program, question)?;
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    let (_scratch, cwd) = one_shot_dir(session, cwd)?;
    one_shot(cmd, &cwd, env, None)
}

/// Where a one-shot question about `session` runs outside any fence:
/// `cwd`, but for a sandboxed session a new empty folder (removed when the
/// guard, the first item, drops). An agent CLI reads the project
/// settings of the folder it runs in (Claude Code runs the hooks of
/// `.claude/settings.json` under `-p` without asking; Gemini starts the
/// MCP servers of `.gemini/settings.json`), and a sandboxed agent writes
/// its worktree (issue 16). `None` when no folder can be made.
pub(crate) fn one_shot_dir(session: &Session, cwd: &Path) -> Option<(Option<tempfile::TempDir>, PathBuf)> {
    if session.sandbox.is_none() {
        return Some((None, cwd.to_path_buf()));
    }
    let scratch = tempfile::Builder::new().prefix("tandem-ask-").tempdir().ok()?;
    let path = scratch.path().to_path_buf();
    Some((Some(scratch), path))
}

pub(crate) fn one_shot(mut cmd: Command, cwd: &Path, env: &[(String, String)], stdin: Option<&str>) -> Option<String> {
    cmd.current_dir(cwd).env_clear().envs(env.iter().map(|(k, v)| (k, v)));
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().ok()?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let text = text.to_owned();
        std::thread::spawn(move || pipe.write_all(text.as_bytes()));
    }
    let mut stdout = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
        out
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > Duration::from_secs(90) => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => return None,
        }
    };
    let out = reader.join().ok()?;
    let out = out.trim();
    (status.success() && !out.is_empty()).then(|| out.to_owned())
}
