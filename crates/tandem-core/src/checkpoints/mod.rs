//! Checkpoints (issue 22): the whole worktree of a session at the end of
//! every agent turn, and right before tandem itself changes it (sync,
//! merge, restore, rewind), so any turn can be undone.
//!
//! A checkpoint is a snapshot commit ([`git::worktree_state`], the same
//! as `rm --force` makes): its tree is the working tree, tracked changes
//! and untracked files that are not ignored (plus changed
//! `.worktreeinclude` copies), written through a temporary index in the
//! state folder; its first parent is `HEAD`, a further parent the index
//! as the agent left it when that differs from both, and the branch tip
//! when `HEAD` is elsewhere. Nothing in the worktree, its index, `HEAD` or
//! branch changes. The commit is kept by
//! `refs/tandem/checkpoints/<session id>/<n>` ([`ref_name`]) and
//! described by a store row (number, time, cause, the turn's prompt,
//! diffstat against the checkpoint before).
//!
//! Order, for crash safety: trees and the commit first (objects no ref
//! names yet), then the row (which allocates `n`; not listed yet), then
//! the ref, then the row marked ready (listed). A kill in between leaves
//! a row that is not listed; [`mend_refs`] (at every supervisor start)
//! writes its ref, the commit being there, and lists it. The temporary indexes are named by pid, and
//! [`git::sweep_scratch`] removes those of a killed process.
//!
//! Where they are safe: the refs live in the repository's common folder.
//! A sandboxed agent's git sees a private repository
//! ([`crate::sandbox_git`]), so it cannot reach them; an agent that is
//! not fenced runs as the user and can delete them like any ref.

mod rewind;

use std::path::Path;

pub use rewind::{Rewind, RewindDone, check, hold_unless_rewinding, rewind};

use crate::git::{self, GitError};
use crate::model::{Cause, Checkpoint};
use crate::paths::Paths;
use crate::repo::Repository;
use crate::session;
use crate::store::{EventKind, NewEvent, Session, Store, StoreError};

/// Where a session's checkpoint refs live.
pub const REF_PREFIX: &str = "refs/tandem/checkpoints/";

/// The ref keeping checkpoint `n` of session `session_id`.
#[must_use]
pub fn ref_name(session_id: &str, n: u32) -> String {
    format!("{REF_PREFIX}{session_id}/{n}")
}

/// Errors from checkpoints and rewinds.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("session `{slug}` has no checkpoint {n}; {}", newest_hint(*newest, slug))]
    NoSuch { slug: String, n: u32, newest: Option<u32> },
    #[error("session `{slug}` has no worktree to checkpoint or rewind; `tandem restore {slug}` brings it back")]
    NoWorktree { slug: String },
    #[error(
        "session `{slug}`'s agent is in the middle of a turn; wait for it to end (`tandem list`), `tandem interrupt {slug}`, or add `--stop` to stop the agent first"
    )]
    MidTurn { slug: String },
    #[error("session `{slug}` has no rewind to undo; `tandem checkpoints {slug}` lists what there is")]
    NothingToUndo { slug: String },
    #[error(
        "`{path}` is not a path inside session `{slug}`'s worktree; give paths relative to its top folder, as `tandem diff {slug} --name-only` shows them"
    )]
    BadPath { slug: String, path: String },
    #[error(
        "`{path}` is in neither checkpoint {n} of session `{slug}` nor its worktree, so there is nothing to rewind; `tandem diff {slug} --checkpoint {n} --name-only` lists what that turn changed"
    )]
    NoSuchPath { slug: String, n: u32, path: String },
    #[error(
        "session `{slug}`'s index is locked ({lock}): a git command runs in its worktree, or one was killed there; wait for it and run `tandem rewind {slug}` again (if no git runs there, delete that file first), or rewind some paths only with `--files`, which leaves the index alone; nothing was changed"
    )]
    IndexLocked { slug: String, lock: String },
    #[error(
        "cannot write `{path}` back into session `{slug}`'s worktree: {error}; the rewind stopped there, and `tandem rewind {slug} --undo` puts back what was there before it"
    )]
    Write {
        slug: String,
        path: String,
        #[source]
        error: std::io::Error,
    },
    #[error(
        "session `{slug}` is sandboxed, and its branch moves only through its sandbox; rewind without `--hard` (the files go back, the commits stay)"
    )]
    HardInSandbox { slug: String },
    #[error("checkpoint {n}'s HEAD commit {head} is gone from the repository; rewind without `--hard`")]
    HeadGone { n: u32, head: String },
    #[error(
        "session `{slug}` runs `{agent}`, which cannot resume its conversation from an earlier turn; only `claude-structured` can (Claude Code's `--resume-session-at`); rewind without `--conversation`"
    )]
    NoConversationRewind { slug: String, agent: String },
    #[error(
        "checkpoint {n} of session `{slug}` has no message of the agent's to resume from (not a turn's checkpoint, or the agent gave none); rewind without `--conversation`"
    )]
    NoMessage { slug: String, n: u32 },
}

fn newest_hint(newest: Option<u32>, slug: &str) -> String {
    match newest {
        Some(n) => format!("its checkpoints go up to {n}: `tandem checkpoints {slug}` lists them"),
        None => "it has none yet (one is made when a turn of its agent changes something)".to_owned(),
    }
}

/// What [`take`] is asked for.
#[derive(Debug, Clone, Copy)]
pub struct Take {
    pub cause: Cause,
    /// For [`Cause::Rewind`]: the checkpoint the rewind goes to.
    pub rewound_to: Option<u32>,
    /// Make one even when nothing changed since the last.
    pub force: bool,
    /// The user's `checkpoints.keep`: older ones are pruned.
    pub keep: u32,
}

impl Take {
    /// A checkpoint for `cause`, only if something changed.
    #[must_use]
    pub fn of(cause: Cause, keep: u32) -> Take {
        Take { cause, rewound_to: None, force: false, keep }
    }
}

/// Makes a checkpoint of `session`'s worktree now, as `ask` says.
///
/// `None` when there is nothing to keep: no worktree, or (unless
/// `ask.force`) nothing changed since the session's last checkpoint (its
/// base commit, for the first). A sandboxed session's work is read back
/// first. Prunes the session's oldest checkpoints past `ask.keep`.
///
/// # Errors
/// [`CheckpointError::Git`] and [`CheckpointError::Store`].
pub fn take(
    paths: &Paths,
    repo: &Repository,
    store: &Store,
    session: &Session,
    ask: Take,
) -> Result<Option<Checkpoint>, CheckpointError> {
    take_with(paths, repo, store, session, ask, &[])
}

/// [`take`], the checkpoint also holding the ignored files `ignored`
/// (paths relative to the worktree's top): those a rewind is about to
/// overwrite or delete.
///
/// # Errors
/// As [`take`].
pub fn take_with(
    paths: &Paths,
    repo: &Repository,
    store: &Store,
    session: &Session,
    ask: Take,
    ignored: &[std::path::PathBuf],
) -> Result<Option<Checkpoint>, CheckpointError> {
    let Take { cause, rewound_to, force, keep } = ask;
    if !session.path.is_dir() {
        return Ok(None);
    }
    session::sync_sandboxed(paths, repo, session);
    let tip = format!("refs/heads/{}", session.branch);
    let mut included = session::include::changed(&repo.worktree, &session.path, &session.included);
    included.extend(ignored.iter().filter(|p| !included.contains(p)).cloned().collect::<Vec<_>>());
    let last = store.last_checkpoint(&session.id)?;
    // The turn whose end this is, asked before the state is read: a turn
    // that ends meanwhile must not lend its prompt to a state read before
    // its work (the state may instead hold the next turn's first work,
    // which `overtaken` relabels when that turn ends).
    let (prompt, last_event) = store.turn_prompt(&session.id, last.as_ref().map_or(0, |(_, event)| *event))?;
    let state = git::worktree_state(&session.path, &paths.state_dir, &[tip], &included)?;
    // Once the state is read: a prompt sent before may have changed it.
    let read_at = crate::unix_now_ms();
    let (before_tree, after_event) = match &last {
        Some((c, event)) => {
            if !force && c.tree == state.tree && c.head == state.head && c.index_tree == state.index_tree {
                if cause == Cause::Turn {
                    overtaken(store, session, c, *event)?;
                }
                return Ok(None);
            }
            (c.tree.clone(), *event)
        }
        None => {
            let base_tree = base_tree(session)?;
            let unchanged = base_tree == state.tree
                && state.head.as_deref() == Some(session.base_commit.as_str())
                && state.index_tree.as_deref().is_none_or(|t| *t == base_tree);
            if !force && unchanged {
                return Ok(None);
            }
            (base_tree, 0)
        }
    };
    let (files, added, removed) = diffstat(&session.path, &before_tree, &state.tree)?;
    let message = format!("tandem: checkpoint of session {} ({})", session.slug, cause.as_str());
    let commit = git::commit_state(&session.path, &state, &message)?;
    crate::fault::point("checkpoint.committed");
    let turn = cause == Cause::Turn;
    let checkpoint = Checkpoint {
        n: 0,
        commit,
        tree: state.tree,
        head: state.head,
        index_tree: state.index_tree,
        at_ms: read_at,
        cause,
        rewound_to,
        prompt: if turn { prompt.map(|p| first_line(&p)) } else { None },
        agent: session.agent.clone(),
        files,
        added,
        removed,
        message_id: if turn { store.last_message_id(&session.id, after_event, last_event)? } else { None },
    };
    let checkpoint = store.add_checkpoint(&session.id, &checkpoint, last_event)?;
    crate::fault::point("checkpoint.stored");
    write_ref(&repo.root, &session.id, &checkpoint)?;
    store.checkpoint_ready(&session.id, checkpoint.n)?;
    let text = match cause {
        Cause::Turn => format!("checkpoint {}: {}", checkpoint.n, stat_text(&checkpoint)),
        other => format!("checkpoint {} before {}: {}", checkpoint.n, other.as_str(), stat_text(&checkpoint)),
    };
    let data = serde_json::json!({ "checkpoint": checkpoint.n, "cause": cause.as_str() });
    let event = NewEvent { session_id: &session.id, kind: EventKind::State, text, data: Some(data), indexed: false };
    store.add_events(&[event])?;
    prune(repo, store, &session.id, keep)?;
    Ok(Some(checkpoint))
}

/// The two trees `tandem diff NAME --checkpoint N [--to M]` compares:
/// without `to`, what checkpoint `n` changed (from the checkpoint before
/// it, or the session's base commit for its first); with it, from `n` to
/// `to`.
///
/// # Errors
/// [`CheckpointError::NoSuch`] for a number it does not have.
pub fn diff_range(
    store: &Store,
    session: &Session,
    n: u32,
    to: Option<u32>,
) -> Result<(String, String), CheckpointError> {
    let all = store.checkpoints(&session.id)?;
    let find = |n: u32| {
        all.iter().find(|c| c.n == n).ok_or_else(|| CheckpointError::NoSuch {
            slug: session.slug.clone(),
            n,
            newest: all.first().map(|c| c.n),
        })
    };
    let at = find(n)?;
    if let Some(to) = to {
        return Ok((at.tree.clone(), find(to)?.tree.clone()));
    }
    let before = match all.iter().find(|c| c.n < n) {
        Some(c) => c.tree.clone(),
        None => format!("{}^{{tree}}", session.base_commit),
    };
    Ok((before, at.tree.clone()))
}

/// What a checkpoint is, in a few words, as every front end shows it: the
/// turn's prompt (first line, as sent: untrusted, escape it to show), or
/// the command it was made before.
#[must_use]
pub fn describe(c: &Checkpoint) -> String {
    match (c.cause, &c.prompt, c.rewound_to) {
        (Cause::Turn, Some(prompt), _) => prompt.clone(),
        (Cause::Turn, None, _) => "(a turn with no prompt sent through tandem)".to_owned(),
        (Cause::Rewind, _, Some(to)) => format!("before rewind to {to}"),
        (cause, _, _) => format!("before {}", cause.as_str()),
    }
}

/// A checkpoint as `tandem checkpoints --json`, the web API and the MCP
/// tool answer it: its fields plus `ref`.
#[must_use]
pub fn to_json(session_id: &str, c: &Checkpoint) -> serde_json::Value {
    let mut v = serde_json::to_value(c).unwrap_or_default();
    v["ref"] = ref_name(session_id, c.n).into();
    v
}

/// `2 files, +10 -3`.
#[must_use]
pub fn stat_text(c: &Checkpoint) -> String {
    let files = if c.files == 1 { "1 file".to_owned() } else { format!("{} files", c.files) };
    format!("{files}, +{} -{}", c.added, c.removed)
}

fn first_line(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    crate::rows::truncate(line, 200)
}

fn write_ref(dir: &Path, session_id: &str, c: &Checkpoint) -> Result<(), GitError> {
    let name = ref_name(session_id, c.n);
    let reason = format!("tandem: checkpoint {} ({})", c.n, c.cause.as_str());
    git::run(dir, &["update-ref", "-m", &reason, &name, &c.commit, ""]).map(drop)
}

/// Files changed, lines added and removed between two trees
/// (`git diff-tree --numstat`, renames as delete and add).
fn diffstat(dir: &Path, from: &str, to: &str) -> Result<(u32, u32, u32), GitError> {
    let out = git::read(dir, &["diff-tree", "-r", "--numstat", "--no-renames", from, to])?;
    let (mut files, mut added, mut removed) = (0u32, 0u32, 0u32);
    for line in out.lines() {
        let mut parts = line.splitn(3, '\t');
        let (Some(a), Some(r), Some(_)) = (parts.next(), parts.next(), parts.next()) else { continue };
        files += 1;
        added = added.saturating_add(a.parse().unwrap_or(0));
        removed = removed.saturating_add(r.parse().unwrap_or(0));
    }
    Ok((files, added, removed))
}

/// Deletes a session's checkpoints past the newest `keep` (at least 1):
/// their refs first, then their rows.
///
/// # Errors
/// [`CheckpointError::Git`] and [`CheckpointError::Store`].
pub fn prune(repo: &Repository, store: &Store, session_id: &str, keep: u32) -> Result<Vec<u32>, CheckpointError> {
    let all = store.checkpoints(session_id)?;
    let old: Vec<u32> = all.iter().skip(keep.max(1) as usize).map(|c| c.n).collect();
    if old.is_empty() {
        return Ok(old);
    }
    delete_refs(&repo.root, old.iter().map(|n| ref_name(session_id, *n)))?;
    store.delete_checkpoints(session_id, &old)?;
    Ok(old)
}

/// Deletes refs in one `git update-ref --stdin` transaction.
fn delete_refs(dir: &Path, names: impl Iterator<Item = String>) -> Result<(), GitError> {
    let input: String = names.map(|n| format!("delete {n}\n")).collect();
    if input.is_empty() {
        return Ok(());
    }
    let mut cmd = git::command(dir);
    cmd.args(["update-ref", "--stdin"]);
    git::output_with_stdin(cmd, input.as_bytes()).map(drop)
}

/// Deletes every checkpoint of a session (refs and rows): for `gc` of a
/// removed session's snapshot.
///
/// # Errors
/// [`CheckpointError::Git`] and [`CheckpointError::Store`].
pub fn delete_all(repo: &Repository, store: &Store, session_id: &str) -> Result<usize, CheckpointError> {
    let ns = store.checkpoint_numbers(session_id)?;
    delete_refs(&repo.root, ns.iter().map(|n| ref_name(session_id, *n)))?;
    store.delete_checkpoints(session_id, &ns)?;
    Ok(ns.len())
}

/// Makes every checkpoint row of `repo` at least `min_age` old whole
/// after a crash: a row whose ref is missing (the process was killed
/// between the two) gets it back when its commit is there, and is dropped
/// when not; `.lock` files git left under the checkpoint refs at least
/// `min_age` old go. At a supervisor's start, after the last one's git
/// commands were ended, any age; while it runs (a killed CLI's `sync`
/// checkpoint), a minute, so a checkpoint being made is never raced.
/// Returns what was mended, one line each.
///
/// # Errors
/// [`CheckpointError::Git`] and [`CheckpointError::Store`].
pub fn mend_refs(
    repo: &Repository,
    store: &Store,
    repo_id: i64,
    min_age: std::time::Duration,
) -> Result<Vec<String>, CheckpointError> {
    let mut mended = Vec::new();
    remove_stale_locks(&repo.common_dir.join(REF_PREFIX), min_age, &mut mended);
    let cutoff = crate::unix_now_ms().saturating_sub(i64::try_from(min_age.as_millis()).unwrap_or(i64::MAX));
    let rows: Vec<_> = store.repo_checkpoints(repo_id)?.into_iter().filter(|(_, c, _)| c.at_ms <= cutoff).collect();
    if rows.is_empty() {
        return Ok(mended);
    }
    let listed = git::read(&repo.root, &["for-each-ref", "--format=%(refname)", REF_PREFIX])?;
    let present: std::collections::HashSet<&str> = listed.lines().collect();
    for (session_id, c, ready) in rows {
        let name = ref_name(&session_id, c.n);
        if present.contains(name.as_str()) {
            if !ready {
                store.checkpoint_ready(&session_id, c.n)?;
                mended.push(format!("listed checkpoint {} of {session_id}: its ref was written", c.n));
            }
            continue;
        }
        if git::resolve_commit(&repo.root, &c.commit)?.is_some() {
            // Written meanwhile by the process that made it: nothing to do.
            if let Err(e) = write_ref(&repo.root, &session_id, &c)
                && git::resolve_commit(&repo.root, &name)?.is_none()
            {
                return Err(e.into());
            }
            store.checkpoint_ready(&session_id, c.n)?;
            mended.push(format!("wrote the missing ref {name}"));
        } else {
            store.delete_checkpoints(&session_id, &[c.n])?;
            mended.push(format!("dropped checkpoint {} of {session_id}: its commit is gone", c.n));
        }
    }
    Ok(mended)
}

fn remove_stale_locks(dir: &Path, lock_age: std::time::Duration, mended: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            remove_stale_locks(&path, lock_age, mended);
        } else if path.extension().is_some_and(|e| e == "lock")
            && meta.modified().ok().and_then(|t| t.elapsed().ok()).is_some_and(|age| age >= lock_age)
            && std::fs::remove_file(&path).is_ok()
        {
            mended.push(format!("removed the stale lock {}", path.display()));
        }
    }
}

/// Bytes on disk of what only checkpoints keep in `repo` (`git rev-list
/// --disk-usage` of the checkpoint refs, less what branches, tags,
/// remote-tracking refs and archive snapshots keep), and how many refs.
///
/// # Errors
/// [`CheckpointError::Git`].
pub fn disk_use(repo: &Repository) -> Result<(u64, usize), CheckpointError> {
    let listed = git::read(&repo.root, &["for-each-ref", "--format=%(refname)", REF_PREFIX])?;
    let count = listed.lines().count();
    if count == 0 {
        return Ok((0, 0));
    }
    let bytes = git::read(
        &repo.root,
        &[
            "rev-list",
            "--objects",
            "--disk-usage",
            "--glob=refs/tandem/checkpoints/*",
            "--not",
            "--branches",
            "--tags",
            "--remotes",
            "--glob=refs/tandem/archive/*",
        ],
    )?;
    Ok((bytes.trim().parse().unwrap_or(0), count))
}

/// A turn ended with the worktree as the newest checkpoint holds. When
/// that checkpoint's state was read (its `at_ms`: once the read ended)
/// after this turn's prompt was sent (the checkpointer ran late, once
/// the next turn had begun), and a file it changed was written after
/// the turn it was labelled with had ended, it holds this turn's work
/// and so this turn's end: it is relabelled with this turn. A turn that
/// only talked leaves the checkpoint as it is.
///
/// # Errors
/// [`StoreError`](crate::store::StoreError)s.
pub fn turn_ended_unchanged(store: &Store, session: &Session) -> Result<(), CheckpointError> {
    match store.last_checkpoint(&session.id)? {
        Some((last, event)) => overtaken(store, session, &last, event),
        None => Ok(()),
    }
}

/// Whether a file checkpoint `last` changed (against the checkpoint
/// before it, else the session's base) was written at or after
/// `since_ms` (unix ms): its modification time, or for a deleted file
/// its folder's.
///
/// # Errors
/// Git and store errors.
fn written_since(store: &Store, session: &Session, last: &Checkpoint, since_ms: i64) -> Result<bool, CheckpointError> {
    let before = match last.n.checked_sub(1).map(|n| store.checkpoint(&session.id, n)).transpose()?.flatten() {
        Some(previous) => previous.tree,
        None => base_tree(session)?,
    };
    let names =
        git::read(&session.path, &["diff-tree", "-r", "-z", "--name-only", "--no-renames", &before, &last.tree])?;
    let written = |path: &Path| {
        path.symlink_metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_millis()).ok())
            .is_some_and(|ms| ms >= since_ms)
    };
    Ok(names.split('\0').filter(|n| !n.is_empty()).any(|name| {
        let path = session.path.join(name);
        if path.symlink_metadata().is_ok() {
            written(&path)
        } else {
            path.ancestors().skip(1).find(|dir| dir.is_dir()).is_some_and(written)
        }
    }))
}

/// The tree of the session's base commit; the empty tree when that
/// commit cannot be found.
///
/// # Errors
/// [`GitError`]s.
fn base_tree(session: &Session) -> Result<String, GitError> {
    match git::resolve_tree(&session.path, &session.base_commit)? {
        Some(tree) => Ok(tree),
        None => git::read(&session.path, &["hash-object", "-t", "tree", "/dev/null"]),
    }
}

/// [`turn_ended_unchanged`] with the newest checkpoint read.
fn overtaken(store: &Store, session: &Session, last: &Checkpoint, event: i64) -> Result<(), CheckpointError> {
    let (prompt, upto) = store.turn_prompt(&session.id, event)?;
    let Some(prompt) = prompt else { return Ok(()) };
    let sent = store.prompt_sent_at(&session.id, event, upto)?;
    let Some(sent) = sent.filter(|sent| *sent <= last.at_ms) else { return Ok(()) };
    // Written after the labelled turn's last event (its end): a file
    // time is the kernel's coarse clock, a few ms behind, so the next
    // prompt's time would be too close to tell.
    let since = store.event_at(&session.id, event)?.unwrap_or(sent);
    if !written_since(store, session, last, since)? {
        return Ok(());
    }
    let message = store.last_message_id(&session.id, event, upto)?;
    store.relabel_checkpoint(&session.id, last.n, Some(&first_line(&prompt)), upto, message.as_deref())?;
    Ok(())
}
