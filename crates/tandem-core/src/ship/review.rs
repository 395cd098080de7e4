//! Review sessions (`tandem review NAME`): a second agent reads what a
//! session's agent did and says what it finds.
//!
//! The review session is an ordinary session with three differences:
//! - it starts at the reviewed session's current state: its `HEAD`, plus a
//!   snapshot commit of its uncommitted and untracked work when there is
//!   any (the reviewed worktree is untouched), and it compares against
//!   the reviewed session's base, so `tandem diff` of both agree;
//! - its checkout is read-only: every file and folder below the worktree's
//!   top loses its write bits (root ignores them, so the prompt also
//!   says not to edit, and Codex runs with `sandbox_mode=read-only`);
//! - whenever its agent ends a turn, the last message of that turn is
//!   copied into the reviewed session's history as a `review` event (a
//!   store trigger, see `store`), where `tandem history NAME` shows it.
//!
//! Its start commit is kept under `refs/tandem/review/<id>`, so removing
//! the review session counts as unsaved only what the reviewer added.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::git::{self, GitError};
use crate::store::{EventKind, Session, Store, StoreError};

/// The most diff text put into the prompt, in bytes; the prompt says
/// how to see the rest. Claude Code's TUI takes its prompt as one
/// argument, which Linux caps at 128 KiB (`MAX_ARG_STRLEN`).
pub const DIFF_LIMIT: usize = 60_000;

/// The ref that keeps a review session's start commit.
#[must_use]
pub fn start_ref(session_id: &str) -> String {
    format!("refs/tandem/review/{session_id}")
}

/// The commit a review of `session` starts at: its `HEAD`, or a snapshot
/// commit on top of it when the worktree has uncommitted or untracked
/// work.
///
/// # Errors
/// Git errors.
pub fn start_commit(session: &Session, scratch: &Path) -> Result<String, GitError> {
    let dirty = git::status(&session.path).is_ok_and(|s| s.is_dirty());
    if dirty {
        let message = format!("tandem: uncommitted work of session {} at review time", session.slug);
        git::snapshot_commit(&session.path, scratch, &message, &[])
    } else {
        git::read(&session.path, &["rev-parse", "HEAD"])
    }
}

/// The review prompt: what to do, the reviewed session's brief (its title
/// and first prompt) and its diff from `from` (its base's merge-base) to
/// `start`, cut at [`DIFF_LIMIT`].
///
/// # Errors
/// Git and store errors.
pub fn prompt(store: &Store, session: &Session, start: &str) -> Result<String, ReviewError> {
    let from = git::merge_base(&session.path, &session.base_commit, start)?.unwrap_or(session.base_commit.clone());
    let diff = git::read(&session.path, &["diff", "--no-color", "--no-ext-diff", &from, start])?;
    let brief = store.events(&session.id, 0, 10_000)?.into_iter().find(|e| e.kind == EventKind::Prompt).map(|e| e.text);
    let mut text = format!(
        "Review the work of another coding agent: tandem session `{}` (branch `{}`, based on `{}`).\n\
         This checkout is a read-only copy of its current state. Do not change any file. Read what you need, \
         then reply with your findings: bugs, risks, missing tests, and anything that does not do what the brief \
         asks, each with its file and line. If it all looks right, say so.\n\n",
        session.slug, session.branch, session.base_ref
    );
    if let Some(title) = &session.meta.title {
        let _ = writeln!(text, "Its title: {title}\n");
    }
    match brief.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
        Some(brief) => {
            text.push_str("Its brief:\n");
            for line in brief.lines() {
                let _ = writeln!(text, "> {line}");
            }
            text.push('\n');
        }
        None => text.push_str("It has no recorded brief.\n\n"),
    }
    if diff.trim().is_empty() {
        let _ = writeln!(text, "It has no changes against `{}`.", session.base_ref);
        return Ok(text);
    }
    let _ = writeln!(text, "Its changes (`git diff {} {}`):\n```diff", git::short(&from), git::short(start));
    if diff.len() > DIFF_LIMIT {
        let mut cut = DIFF_LIMIT;
        while !diff.is_char_boundary(cut) {
            cut -= 1;
        }
        let _ = writeln!(
            text,
            "{}\n```\nThe diff goes on ({} bytes in all); run `git diff {} {}` for the rest.",
            &diff[..cut],
            diff.len(),
            git::short(&from),
            git::short(start)
        );
    } else {
        let _ = writeln!(text, "{diff}\n```");
    }
    Ok(text)
}

/// Why a review cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Takes the write bits off every file and folder below `worktree`'s top
/// (the top itself stays writable, so the worktree can still be moved to
/// the trash and removed; `.git` is left alone).
///
/// # Errors
/// I/O errors.
pub fn make_read_only(worktree: &Path) -> std::io::Result<()> {
    fn walk(dir: &Path, top: bool) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_symlink() || (top && entry.file_name() == ".git") {
                continue;
            }
            if kind.is_dir() {
                walk(&entry.path(), false)?;
            }
            let mut perms = entry.metadata()?.permissions();
            perms.set_mode(perms.mode() & !0o222);
            std::fs::set_permissions(entry.path(), perms)?;
        }
        Ok(())
    }
    walk(worktree, true)
}
