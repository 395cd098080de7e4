// Whole on purpose (issue 18): one trust boundary (issue 16), the private repository and every way its work comes back; split, its checks (fences, time limits, object checks) would scatter over files.
//! A sandboxed session's private repository, and how its work reaches
//! the user's (issue 16).
//!
//! A linked worktree commits into its repository's common dir: objects,
//! refs, reflogs shared with the user's main checkout and every other
//! session. A sandboxed agent given that folder read-write could move
//! `main`, delete another session's snapshot or every object. So inside
//! the fence the worktree's common dir is another one, the session's
//! **private repository** `P` (`$STATE/sandboxes/<id>/git`):
//!
//! - inside the fence `P` is mounted where the common dir is, so git
//!   there (and an agent asking `git rev-parse --git-common-dir`, as
//!   Claude Code does to find the project it trusts) sees the usual
//!   layout: `<repo>/.git`, with the worktree's admin folder at
//!   `worktrees/<name>` inside it: `P`'s own copy ([`private_admin`]), not
//!   the repository's, so no file git outside reads (`HEAD`, `index`,
//!   `commondir`, `config.worktree`) is the agent's to write;
//! - `P/objects` is the agent's own; `objects/info/alternates` names the
//!   repository's objects, mounted read-only beside `P` ([`objects_mount`];
//!   the second line, the objects' real path, is what git outside the
//!   fence reads, and inside names `P/objects` itself, which git skips),
//!   so the whole history is there without a copy
//!   (gitrepository-layout(5), "objects/info/alternates");
//! - `P`'s refs start as a copy of the repository's branches, remote
//!   branches and tags, so `git log main` works inside, but what the
//!   agent does to them stays in `P`;
//! - read-only inside: the worktree's `.git` file (git outside reads it
//!   to find the admin folder), and `P`'s `config`, `hooks`, `info` and
//!   `objects/info` (gitrepository-layout(5)).
//!
//! The work comes back as data, through [`sync`]: `git fetch` in the
//! repository, from `P`, whose reading side (`git upload-pack`) runs
//! inside a fence of its own (read-only, no network, tandem's state and
//! sockets hidden), so nothing the agent wrote in `P` (config, hooks,
//! `commondir`) is read or run outside a fence. What `fetch` receives
//! is checked by git's own `index-pack`. The branch then moves to the
//! fetched commit by a compare-and-swap `update-ref`; when tandem moved
//! the branch outside instead (`sync`, a rename), [`sync`] moves `P`'s
//! to match, again by git inside a fence. The worktree's `HEAD` and
//! `index` are copied the same way, whichever side changed them: into
//! the repository's admin folder as data (a regular file, read without
//! following a link or blocking on a FIFO, `HEAD` checked for its form,
//! written under git's own lock files), into `P`'s by a fenced copy.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::git::{self, GitError};
use crate::paths::Paths;
use crate::repo::Repository;
use crate::store::Session;

/// Why a private repository could not be made or read back.
#[derive(Debug, thiserror::Error)]
pub enum PrivateGitError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("cannot prepare the sandbox's private repository {}: {error}", path.display())]
    Io { path: PathBuf, error: std::io::Error },
    #[error(
        "the worktree {} has no admin folder under {}; run `tandem doctor`",
        worktree.display(),
        common_dir.display()
    )]
    NoAdmin { worktree: PathBuf, common_dir: PathBuf },
    #[error(
        "`bwrap` is not installed, and reading a sandboxed session's work back needs it (container mode too); install bubblewrap (`sudo apt-get install bubblewrap`)"
    )]
    NoBwrap,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PrivateGitError + '_ {
    move |error| PrivateGitError::Io { path: path.to_path_buf(), error }
}

/// The ref that keeps the private repository's branch tip as last
/// fetched: `refs/tandem/sandbox/<session id>/tip`. It also keeps the
/// agent's work when its branch and the repository's went different
/// ways.
#[must_use]
pub fn tip_ref(session_id: &str) -> String {
    format!("refs/tandem/sandbox/{session_id}/tip")
}

/// The admin folder of the linked worktree at `worktree`, found from the
/// repository's own records (`<common>/worktrees/*/gitdir`, which a
/// sandbox cannot write), never from the worktree's `.git` file, which
/// an agent could have rewritten to point anywhere.
#[must_use]
pub fn admin_of(common_dir: &Path, worktree: &Path) -> Option<PathBuf> {
    let want = worktree.join(".git");
    let want_real = std::fs::canonicalize(worktree).ok().map(|w| w.join(".git"));
    std::fs::read_dir(common_dir.join("worktrees")).ok()?.filter_map(Result::ok).map(|e| e.path()).find(|admin| {
        read_small_file(&admin.join("gitdir")).is_some_and(|g| {
            let g = Path::new(g.trim());
            g == want || want_real.as_deref() == Some(g)
        })
    })
}

/// A hold on a sandboxed session's private repository and its worktree's
/// `HEAD` and `index` on both sides: an exclusive `flock(2)` on
/// `$STATE/sandboxes/<id>/sync.lock`, beside the private repository and
/// out of the sandbox's sight (only the private repository and the
/// objects are mounted inside a fence). Released when dropped.
///
/// Every [`sync`] takes one, so the CLI, the supervisor and the host
/// (which syncs on its own when the agent commits) take turns: two at
/// once failed on each other's git ref locks (`cannot lock ref`) and the
/// loser dropped what it was bringing back until the next change. tandem
/// holds one while it rewrites a sandboxed session's branch or worktree
/// outside ([`rewriting`]: `sync`, `merge` and their `--abort`, from the
/// CLI and the web dashboard) and while it prepares the private
/// repository, so no sync reads or copies a state half made. Within one
/// thread a second hold (a [`sync`] under a caller's hold) is the first
/// one again, not a deadlock. The agent cannot see the lock file, so it
/// cannot hold it (a writable folder that would show it is refused:
/// [`crate::sandbox::SandboxError::ShowsTandem`]).
#[derive(Debug)]
pub struct Hold {
    file: Option<std::fs::File>,
    session_id: String,
    /// Not `Send`: the reentrancy record is the taking thread's.
    _here: std::marker::PhantomData<*const ()>,
}

thread_local! {
    /// The sessions this thread holds ([`Hold`]).
    static HELD: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Hold {
    /// Waits for and takes the hold on session `session_id`'s private
    /// repository; `None` for a session without one (not sandboxed: no
    /// `$STATE/sandboxes/<id>`).
    ///
    /// # Errors
    /// [`PrivateGitError::Io`]: the lock file cannot be opened or locked.
    pub fn take(paths: &Paths, session_id: &str) -> Result<Option<Hold>, PrivateGitError> {
        Self::take_if(paths, session_id, true)
    }

    /// [`Hold::take`] without waiting: `None` also while another holds it.
    ///
    /// # Errors
    /// As [`Hold::take`].
    pub fn try_take(paths: &Paths, session_id: &str) -> Result<Option<Hold>, PrivateGitError> {
        Self::take_if(paths, session_id, false)
    }

    fn take_if(paths: &Paths, session_id: &str, wait: bool) -> Result<Option<Hold>, PrivateGitError> {
        use std::os::unix::fs::OpenOptionsExt;
        let private = paths.sandbox_git(session_id);
        if !private.parent().is_some_and(Path::is_dir) {
            return Ok(None);
        }
        let id = session_id.to_owned();
        if HELD.with(|h| h.borrow().contains(&id)) {
            return Ok(Some(Hold { file: None, session_id: id, _here: std::marker::PhantomData }));
        }
        let path = private.with_file_name("sync.lock");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(io(&path))?;
        if wait {
            file.lock().map_err(io(&path))?;
        } else {
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
                Err(std::fs::TryLockError::Error(e)) => return Err(io(&path)(e)),
            }
        }
        HELD.with(|h| h.borrow_mut().push(id.clone()));
        Ok(Some(Hold { file: Some(file), session_id: id, _here: std::marker::PhantomData }))
    }
}

impl Hold {
    /// Marks the worktree as rewritten outside under this hold (a
    /// rebase, a merge, their rollback): the next sync copies the
    /// repository's `HEAD` and `index` in even when the agent's changed
    /// meanwhile (its `git status` refreshes its index), since git outside
    /// rewrote the files both sides share and the agent's index describes
    /// what was there before.
    pub fn rewrote_outside(&self, paths: &Paths) {
        let _ = std::fs::write(rewritten_mark(paths, &self.session_id), b"");
    }
}

/// The mark [`Hold::rewrote_outside`] leaves beside the private
/// repository, out of the sandbox's sight.
fn rewritten_mark(paths: &Paths, session_id: &str) -> PathBuf {
    paths.sandbox_git(session_id).with_file_name("rewritten-outside")
}

/// Runs `rewrite`, which rewrites `session`'s branch or worktree with git
/// outside the fence (`tandem sync`, `merge` and their `--abort`), under
/// the session's [`Hold`]: first both sides are brought level ([`sync`],
/// so what the agent staged until now is read back, not overwritten);
/// then, when `rewrite` changed the repository's `HEAD` or `index` of the
/// worktree, the worktree is marked rewritten ([`Hold::rewrote_outside`])
/// and synced again at once, so the agent sees the result before this
/// returns and the mark is spent. A sync's failure is logged. Just
/// `rewrite()` for a session that is not sandboxed.
///
/// # Errors
/// [`PrivateGitError::Io`]: the hold cannot be taken (then `rewrite`
/// does not run).
pub fn rewriting<T>(
    paths: &Paths,
    repo: &Repository,
    session: &Session,
    rewrite: impl FnOnce() -> T,
) -> Result<T, PrivateGitError> {
    let Some(held) = Hold::take(paths, &session.id)? else { return Ok(rewrite()) };
    let logged = |synced: Result<Synced, PrivateGitError>| {
        if let Err(e) = synced {
            tracing::warn!(session = %session.slug, error = %crate::error_chain(&e), "cannot read the sandbox's work back");
        }
    };
    logged(sync(paths, repo, session));
    let admin = admin_of(&repo.common_dir, &session.path);
    let outside = |admin: &Option<PathBuf>| {
        admin.as_ref().map(|a| (read_small_file(&a.join("HEAD")), stat_regular(&a.join("index"))))
    };
    let before = outside(&admin);
    let done = rewrite();
    if outside(&admin) != before {
        held.rewrote_outside(paths);
        logged(sync(paths, repo, session));
    }
    drop(held);
    Ok(done)
}

impl Drop for Hold {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            HELD.with(|h| h.borrow_mut().retain(|s| *s != self.session_id));
        }
    }
}

/// Where the repository's objects are mounted, read-only, inside a fence:
/// beside the private repository, whose alternates name it first.
#[must_use]
pub fn objects_mount(paths: &Paths, session_id: &str) -> PathBuf {
    paths.sandbox_git(session_id).with_file_name("objects")
}

/// The worktree's admin folder as the sandbox sees it: in the private
/// repository, under the same name as the repository's (`admin`).
#[must_use]
pub fn private_admin(private: &Path, admin: &Path) -> PathBuf {
    private.join("worktrees").join(admin.file_name().unwrap_or_default())
}

/// Makes the private repository of `session` if it has none yet (refs
/// copied from `repo`, its branch at the repository's tip), and makes
/// sure `config.worktree` is a plain empty file tandem made. An existing
/// one is first read back into the repository ([`sync`]).
///
/// # Errors
/// [`PrivateGitError`]: git fails, or a file cannot be written.
pub fn prepare(paths: &Paths, repo: &Repository, session: &Session, admin: &Path) -> Result<(), PrivateGitError> {
    // The work is read back through a fence of bubblewrap's, whatever
    // fences the agent (a container too): refuse before the agent runs.
    crate::process::find("bwrap").ok_or(PrivateGitError::NoBwrap)?;
    let private = paths.sandbox_git(&session.id);
    let parent = private.parent().expect("sandbox_git has a parent").to_path_buf();
    crate::paths::create_private(&parent)
        .map_err(|e| PrivateGitError::Io { path: parent.clone(), error: std::io::Error::other(e.to_string()) })?;
    let _held = Hold::take(paths, &session.id)?;
    let mount = objects_mount(paths, &session.id);
    std::fs::create_dir_all(&mount).map_err(io(&mount))?;
    let mark = admin.join(git::SANDBOX_MARK);
    if !mark.is_file() {
        std::fs::write(&mark, "").map_err(io(&mark))?;
    }
    if private.join("objects").is_dir() {
        sync(paths, repo, session)?;
        if !private_admin(&private, admin).join("HEAD").is_file() {
            publish_worktree(paths, repo, &private, admin)?;
        }
    } else {
        init(repo, session, &private, &mount)?;
        // Fresh, so nothing in it is the agent's yet: plain writes.
        let inside = private_admin(&private, admin);
        std::fs::create_dir_all(&inside).map_err(io(&inside))?;
        for name in ["HEAD", "index", "gitdir"] {
            if admin.join(name).is_file() {
                std::fs::copy(admin.join(name), inside.join(name)).map_err(io(&inside))?;
            }
        }
        std::fs::write(inside.join("commondir"), "../..\n").map_err(io(&inside))?;
        record_worktree(paths, &session.id, &private, admin);
    }
    Ok(())
}

/// A new private repository at `private` for `session`: bare, no
/// template (no sample hooks), the repository's object format and config,
/// its objects as an alternate, its branches, remote branches and tags.
fn init(repo: &Repository, session: &Session, private: &Path, mount: &Path) -> Result<(), PrivateGitError> {
    let format = git::read(&repo.root, &["rev-parse", "--show-object-format"])?;
    let mut cmd = git::command(&repo.root);
    cmd.args(["init", "--quiet", "--bare", "--template=", &format!("--object-format={}", format.trim())]).arg(private);
    git::output(cmd)?;
    let config = private.join("config");
    std::fs::copy(repo.common_dir.join("config"), &config).map_err(io(&config))?;
    let alternates = private.join("objects/info/alternates");
    std::fs::create_dir_all(private.join("objects/info")).map_err(io(&alternates))?;
    std::fs::write(&alternates, format!("{}\n{}\n", mount.display(), repo.common_dir.join("objects").display()))
        .map_err(io(&alternates))?;
    for dir in ["hooks", "info"] {
        std::fs::create_dir_all(private.join(dir)).map_err(io(private))?;
    }
    if let Ok(exclude) = std::fs::read(repo.common_dir.join("info/exclude")) {
        std::fs::write(private.join("info/exclude"), exclude).map_err(io(private))?;
    }
    let refs = git::read(
        &repo.root,
        &["for-each-ref", "--format=%(objectname) %(refname)", "refs/heads", "refs/remotes", "refs/tags"],
    )?;
    let mut script = String::new();
    for line in refs.lines() {
        if let Some((oid, name)) = line.split_once(' ') {
            script.push_str(&format!("create {name} {oid}\n"));
        }
    }
    let mut cmd = git::command(&repo.root);
    cmd.arg("--git-dir").arg(private).args(["update-ref", "--stdin"]);
    git::output_with_stdin(cmd, script.as_bytes())?;
    let mut cmd = git::command(&repo.root);
    cmd.arg("--git-dir").arg(private).args(["symbolic-ref", "HEAD", &format!("refs/heads/{}", session.branch)]);
    git::output(cmd)?;
    if let Some(tip) = git::resolve_commit(&repo.root, &format!("refs/heads/{}", session.branch))? {
        git::run(&repo.root, &["update-ref", &tip_ref(&session.id), &tip])?;
    }
    Ok(())
}

/// What [`sync`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Synced {
    /// The repository's branch moved to the agent's commit.
    pub branch_moved: bool,
    /// The private repository's branch moved to the repository's.
    pub published: bool,
    /// Objects fetched that only the index or a detached `HEAD` named.
    pub loose_objects: usize,
}

/// Last state seen per private repository: sync only when it changed.
static SEEN: Mutex<Option<HashMap<(String, String), Fingerprint>>> = Mutex::new(None);

/// Per watched path: mtime and ctime (ns), size.
type Fingerprint = Vec<(i64, i64, u64)>;

/// What changes when the agent commits, stages or switches: the private
/// repository's refs and the admin folder's `HEAD` and `index` (their
/// mtimes, ctimes and sizes; read with `lstat`, nothing opened).
fn fingerprint(private: &Path, admin: &Path, branch: &str) -> Fingerprint {
    use std::os::unix::fs::MetadataExt;
    let inside = private_admin(private, admin);
    let mut paths = vec![
        private.join("packed-refs"),
        private.join("refs/heads"),
        inside.join("HEAD"),
        inside.join("index"),
        admin.join("HEAD"),
        admin.join("index"),
    ];
    paths.push(private.join("refs/heads").join(branch));
    if let Some(dir) = private.join("refs/heads").join(branch).parent() {
        paths.push(dir.to_path_buf());
    }
    paths
        .iter()
        .map(|p| {
            std::fs::symlink_metadata(p).map_or((0, 0, 0), |m| {
                (m.mtime_nsec() + m.mtime() * 1_000_000_000, m.ctime_nsec() + m.ctime() * 1_000_000_000, m.size())
            })
        })
        .collect()
}

/// Like [`sync`], but only when the private repository or the admin
/// folder changed since this process last synced `session` (as seen by
/// `lstat`): a repeated `tandem list` pays nothing.
///
/// # Errors
/// As [`sync`].
pub fn sync_if_changed(paths: &Paths, repo: &Repository, session: &Session) -> Result<Synced, PrivateGitError> {
    let private = paths.sandbox_git(&session.id);
    let Some(admin) = admin_of(&repo.common_dir, &session.path) else { return Ok(Synced::default()) };
    let before = fingerprint(&private, &admin, &session.branch);
    let mut seen = SEEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let key = (session.id.clone(), session.branch.clone());
    if seen.as_ref().and_then(|m| m.get(&key)) == Some(&before) {
        return Ok(Synced::default());
    }
    drop(seen);
    let synced = sync(paths, repo, session);
    // After a timeout too: a FIFO left in the private repository costs
    // one wait, not one per `tandem list`.
    if synced.as_ref().map_or_else(is_timeout, |_| true) {
        let after = fingerprint(&private, &admin, &session.branch);
        seen = SEEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.get_or_insert_with(HashMap::new).insert(key, after);
    }
    synced
}

/// Brings a sandboxed session's work into the repository: fetches its
/// branch from the private repository (reading side fenced in) into
/// [`tip_ref`], with the objects its index and a detached `HEAD` name
/// that the repository lacks, then
/// - moves the repository's branch to it when the agent committed and
///   the repository's branch is where it was at the last sync (or an
///   ancestor): compare-and-swap, so a concurrent move is never undone;
/// - moves the private repository's branch to the repository's when only
///   the repository's moved (tandem's `sync`, a rebase, a rename);
/// - otherwise keeps both: the agent's under [`tip_ref`].
///
/// Does nothing for a session without a private repository.
///
/// # Errors
/// [`PrivateGitError`]: the fetch or an update fails.
pub fn sync(paths: &Paths, repo: &Repository, session: &Session) -> Result<Synced, PrivateGitError> {
    let private = paths.sandbox_git(&session.id);
    if !private.join("objects").is_dir() {
        return Ok(Synced::default());
    }
    let _held = Hold::take(paths, &session.id)?;
    let admin = admin_of(&repo.common_dir, &session.path).ok_or_else(|| PrivateGitError::NoAdmin {
        worktree: session.path.clone(),
        common_dir: repo.common_dir.clone(),
    })?;
    let tip = tip_ref(&session.id);
    let branch_ref = format!("refs/heads/{}", session.branch);
    let last = git::resolve_commit(&repo.root, &tip)?;
    let reader = reader(paths, repo, &private)?;
    let mut synced = Synced::default();

    // The branch, and what a detached HEAD names.
    let mut wants = vec![format!("+{branch_ref}:{tip}")];
    let inside = private_admin(&private, &admin);
    let head = read_small_file(&inside.join("HEAD")).unwrap_or_default();
    let head = head.trim();
    let detached = is_oid(head).then(|| head.to_owned());
    if let Some(oid) = &detached
        && !has_objects(repo, std::slice::from_ref(oid))?.is_empty()
    {
        wants.push(oid.clone());
        synced.loose_objects += 1;
    }
    if let Err(e) = fetch(repo, &private, &reader, &wants) {
        if is_timeout(&e) {
            // Something in the private repository blocks its reader (a
            // FIFO): no second try on this change.
            return Err(e);
        }
        // No such branch in the private repository (the agent deleted
        // it): fetch what HEAD names, and leave the branch alone.
        tracing::debug!(error = %e, session = %session.slug, "the private branch could not be fetched");
        if wants.len() > 1 {
            fetch(repo, &private, &reader, &wants[1..])?;
        }
    }

    let fetched = git::resolve_commit(&repo.root, &tip)?;
    let real = git::resolve_commit(&repo.root, &branch_ref)?;
    match (&fetched, &real) {
        (Some(agent), Some(real)) if agent != real => {
            let agent_moved = last.as_deref() != Some(agent.as_str());
            let real_stayed = last.as_deref() == Some(real.as_str()) || is_ancestor(repo, real, agent)?;
            if agent_moved && real_stayed {
                if !is_ancestor(repo, real, agent)? {
                    // Not forward (a reset, an amend, a rebase inside):
                    // what the branch held stays reachable.
                    let kept = format!(
                        "refs/tandem/sandbox/{}/replaced/{}-{}",
                        session.id,
                        crate::unix_now(),
                        git::short(real)
                    );
                    git::run(&repo.root, &["update-ref", &kept, real, ""])?;
                    tracing::info!(session = %session.slug, "the agent moved its branch back or aside; its old tip is kept at {kept}");
                }
                git::run(&repo.root, &["update-ref", "-m", "tandem: sandbox commit", &branch_ref, agent, real])?;
                synced.branch_moved = true;
            } else if !agent_moved {
                publish(&reader_fence(paths, repo, &private, true)?, &private, &branch_ref, real, Some(agent))?;
                git::run(&repo.root, &["update-ref", &tip, real])?;
                synced.published = true;
            } else {
                tracing::warn!(
                    session = %session.slug,
                    "the agent's branch and the repository's went different ways; the agent's is kept under {tip}"
                );
            }
        }
        (None, Some(real)) => {
            publish(&reader_fence(paths, repo, &private, true)?, &private, &branch_ref, real, None)?;
            git::run(&repo.root, &["update-ref", &tip, real])?;
            synced.published = true;
        }
        _ => {}
    }

    sync_worktree(paths, repo, session, &private, &admin)?;

    // Staged blobs only the private repository has: the index is copied
    // out, and tandem's own `git status`, `diff` and snapshots read them.
    let against = git::resolve_commit(&repo.root, &branch_ref)?.or(detached);
    if let Some(against) = against {
        let mut cmd = git::command(&session.path);
        cmd.args([
            "--no-optional-locks",
            "diff-index",
            "--cached",
            "--raw",
            "-z",
            "--no-renames",
            "--abbrev=64",
            &against,
        ]);
        if let Ok(out) = git::output(cmd) {
            let oids = staged_oids(&out.stdout);
            let missing = has_objects(repo, &oids)?;
            if !missing.is_empty() {
                synced.loose_objects += missing.len();
                fetch(repo, &private, &reader, &missing)?;
            }
        }
    }
    Ok(synced)
}

/// Keeps the repository up to date with a sandboxed session's private
/// repository while its agent runs: waits on inotify events in the
/// private repository's refs and the worktree's admin folder (a commit,
/// a stage, a switch), lets a burst settle for 150 ms, then
/// [`sync_if_changed`]. Runs in the session's host; returns when the
/// watches cannot be made (and says so in the host's log).
pub fn follow(paths: &Paths, repo: &Repository, session_id: &str) {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let Ok(inotify) = Inotify::init(InitFlags::IN_CLOEXEC) else {
        tracing::warn!("no inotify: a sandboxed session's commits reach the repository when tandem reads them");
        return;
    };
    let private = paths.sandbox_git(session_id);
    let session =
        || crate::store::Store::open(&paths.database()).ok().and_then(|s| s.session(session_id).ok().flatten());
    let Some(first) = session() else { return };
    let Some(admin) = admin_of(&repo.common_dir, &first.path) else { return };
    let flags = AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE;
    let inside = private_admin(&private, &admin);
    let mut dirs = vec![private.clone(), inside.clone(), inside.join("logs")];
    let heads = private.join("refs/heads");
    let mut stack = vec![heads];
    while let Some(dir) = stack.pop() {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            stack.extend(entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_dir() && !p.is_symlink()));
        }
        dirs.push(dir);
    }
    for dir in &dirs {
        if let Err(e) = inotify.add_watch(dir, flags) {
            tracing::debug!(dir = %dir.display(), error = %e, "cannot watch");
        }
    }
    loop {
        if inotify.read_events().is_err() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(150));
        let _ = nix::fcntl::fcntl(&inotify, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK));
        while inotify.read_events().is_ok_and(|e| !e.is_empty()) {}
        let _ = nix::fcntl::fcntl(&inotify, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()));
        let Some(session) = session() else { return };
        if let Err(e) = sync_if_changed(paths, repo, &session) {
            tracing::warn!(session = %session.slug, error = %crate::error_chain(&e), "cannot read the sandbox's work back");
        }
    }
}

/// The most bytes of an index tandem copies out of a private repository.
const MAX_INDEX: u64 = 256 << 20;

/// What [`sync_worktree`] saw last, per side: `HEAD`'s text and the
/// index's `(mtime ns, size, inode)`. Kept beside the private repository,
/// out of the sandbox's sight.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct WorktreeSeen {
    inside_head: Option<String>,
    inside_index: Option<(i64, u64, u64)>,
    outside_head: Option<String>,
    outside_index: Option<(i64, u64, u64)>,
}

fn seen_file(paths: &Paths, session_id: &str) -> PathBuf {
    paths.sandbox_git(session_id).with_file_name("worktree-seen.json")
}

/// `(mtime ns, size, inode)` of a regular file, read without following a
/// link; `None` for anything else.
fn stat_regular(path: &Path) -> Option<(i64, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path).ok().filter(std::fs::Metadata::is_file)?;
    Some((m.mtime() * 1_000_000_000 + m.mtime_nsec(), m.size(), m.ino()))
}

fn look(private: &Path, admin: &Path) -> WorktreeSeen {
    let inside = private_admin(private, admin);
    WorktreeSeen {
        inside_head: read_small_file(&inside.join("HEAD")),
        inside_index: stat_regular(&inside.join("index")),
        outside_head: read_small_file(&admin.join("HEAD")),
        outside_index: stat_regular(&admin.join("index")),
    }
}

/// Records both sides as they are now.
fn record_worktree(paths: &Paths, session_id: &str, private: &Path, admin: &Path) {
    let seen = look(private, admin);
    if let Ok(text) = serde_json::to_string(&seen) {
        let _ = std::fs::write(seen_file(paths, session_id), text);
    }
}

/// Whether `head`, a `HEAD` file's text, says `want` (ignoring the
/// trailing newline).
fn h_is(head: &str, want: &str) -> bool {
    head.strip_suffix('\n').unwrap_or(head) == want
}

/// Whether `head` is what git writes in `HEAD`: `ref: refs/…` with a
/// plain ref name, or an object id.
fn is_head(head: &str) -> bool {
    let head = head.strip_suffix('\n').unwrap_or(head);
    match head.strip_prefix("ref: refs/") {
        Some(name) => {
            !name.is_empty()
                && !name.contains("..")
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._/-+@".contains(&b))
        }
        None => is_oid(head),
    }
}

/// Keeps the worktree's `HEAD` and `index` the same on both sides: the
/// sandbox's copy (in the private repository) and the repository's,
/// which git outside reads. What the agent changed is copied out as data;
/// else what tandem changed outside is copied in ([`publish_worktree`]).
fn sync_worktree(
    paths: &Paths,
    repo: &Repository,
    session: &Session,
    private: &Path,
    admin: &Path,
) -> Result<(), PrivateGitError> {
    let session_id = session.id.as_str();
    let file = seen_file(paths, session_id);
    let before: WorktreeSeen =
        std::fs::read_to_string(&file).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    let now = look(private, admin);
    let rewritten = rewritten_mark(paths, session_id);
    let outside_wins = rewritten.exists();
    let inside_changed = now.inside_head != before.inside_head || now.inside_index != before.inside_index;
    let outside_changed = now.outside_head != before.outside_head || now.outside_index != before.outside_index;
    let inside = private_admin(private, admin);
    if outside_wins {
        publish_worktree(paths, repo, private, admin)?;
        let _ = std::fs::remove_file(&rewritten);
    } else if inside_changed {
        // Only the session's own branch, or a detached HEAD: an agent
        // that switched to another branch inside must not have tandem's
        // `sync` (a rebase) or `merge` act on that branch outside.
        let own = format!("ref: refs/heads/{}", session.branch);
        if let Some(head) = now.inside_head.as_deref().filter(|h| is_head(h))
            && (h_is(head, &own) || !head.starts_with("ref: "))
            && now.outside_head.as_deref() != Some(head)
        {
            write_locked(&admin.join("HEAD"), head.as_bytes());
        }
        if now.inside_index.is_some()
            && now.inside_index != before.inside_index
            && let Some(bytes) = read_regular(&inside.join("index"), MAX_INDEX)
        {
            write_locked(&admin.join("index"), &bytes);
        }
    } else if outside_changed {
        publish_worktree(paths, repo, private, admin)?;
    }
    record_worktree(paths, session_id, private, admin);
    Ok(())
}

/// A regular file's bytes (at most `max`), opened without following a
/// link or blocking on a FIFO.
fn read_regular(path: &Path, max: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file =
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW).open(path).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > max {
        return None;
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(max).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// Replaces `path` in the repository's admin folder the way git does:
/// through `<path>.lock`, made exclusively (a git holding it wins; the
/// next sync tries again), renamed over it.
fn write_locked(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let lock = path.with_file_name(format!("{}.lock", path.file_name().unwrap_or_default().to_string_lossy()));
    let Ok(mut file) = std::fs::OpenOptions::new().write(true).create_new(true).open(&lock) else { return };
    if file.write_all(bytes).is_ok() && file.sync_all().is_ok() {
        let _ = std::fs::rename(&lock, path);
    } else {
        let _ = std::fs::remove_file(&lock);
    }
}

/// Copies the repository's `HEAD` and `index` of the worktree into the
/// private repository's admin folder (and its `commondir` when gone),
/// with a shell inside a fence where only the private repository is
/// writable: the agent may have made any path there a link.
fn publish_worktree(paths: &Paths, repo: &Repository, private: &Path, admin: &Path) -> Result<(), PrivateGitError> {
    let inside = private_admin(private, admin);
    let mut argv = writer_fence(paths, repo, private, Some(admin))?;
    argv.extend(
        [
            "/bin/sh",
            "-c",
            r#"set -e; mkdir -p "$2"; [ -f "$2/commondir" ] || echo ../.. > "$2/commondir"
for f in HEAD index; do if [ -f "$1/$f" ]; then t=$(mktemp "$2/.tandem-XXXXXX"); cat "$1/$f" > "$t"; mv -f "$t" "$2/$f"; fi; done"#,
            "sh",
        ]
        .map(str::to_owned),
    );
    argv.push(admin.to_string_lossy().into_owned());
    argv.push(inside.to_string_lossy().into_owned());
    run_fenced(&argv, private, "copy of HEAD and index into the private repository")
}

/// How long a fenced reader or writer may take before it is killed: an
/// agent can leave a FIFO where git reads.
const FENCED_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Whether `e` is a fenced reader or writer killed at [`FENCED_TIMEOUT`].
fn is_timeout(e: &PrivateGitError) -> bool {
    matches!(e, PrivateGitError::Io { error, .. } if error.kind() == std::io::ErrorKind::TimedOut)
}

/// Runs the fenced command line `argv` ([`bounded`]).
fn run_fenced(argv: &[String], private: &Path, what: &str) -> Result<(), PrivateGitError> {
    let mut cmd = std::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]).env("LC_ALL", "C");
    bounded(cmd, private, what)
}

/// Runs `cmd`, a fenced reader or writer of the private repository
/// `private`, for at most [`FENCED_TIMEOUT`]; `what` names it in the
/// error when it fails.
fn bounded(cmd: std::process::Command, private: &Path, what: &str) -> Result<(), PrivateGitError> {
    let out = run_within(cmd, FENCED_TIMEOUT).map_err(io(private))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(GitError::Failed {
            args: what.to_owned(),
            code: out.status.code(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        }
        .into())
    }
}

/// Runs `cmd` in a process group of its own, its output collected; kills
/// the group when it takes longer than `limit`.
///
/// # Errors
/// The spawn failing, or `TimedOut`.
fn run_within(mut cmd: std::process::Command, limit: std::time::Duration) -> std::io::Result<std::process::Output> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    cmd.process_group(0)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn()?;
    let (mut out, mut err) = (child.stdout.take().expect("piped"), child.stderr.take().expect("piped"));
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = out.read_to_end(&mut bytes);
        bytes
    });
    let err_reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = err.read_to_end(&mut bytes);
        bytes
    });
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if std::time::Instant::now() >= deadline {
            let pgid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "a fenced git did not end in time"));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    Ok(std::process::Output {
        status,
        stdout: reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    })
}

/// A fence like [`reader_fence`]'s with the private repository writable
/// and `admin` (the repository's admin folder of the worktree) readable.
fn writer_fence(
    paths: &Paths,
    repo: &Repository,
    private: &Path,
    admin: Option<&Path>,
) -> Result<Vec<String>, PrivateGitError> {
    let mut argv = reader_fence(paths, repo, private, true)?;
    if let Some(admin) = admin {
        let at = argv.iter().position(|a| a == "--remount-ro").unwrap_or(argv.len() - 1);
        let a = admin.to_string_lossy().into_owned();
        argv.splice(at..at, ["--ro-bind".to_owned(), a.clone(), a]);
    }
    Ok(argv)
}

/// The text of a regular file of at most 4 KiB that an agent may have
/// written ([`read_regular`]); `None` for anything else.
fn read_small_file(path: &Path) -> Option<String> {
    read_regular(path, 4096).and_then(|bytes| String::from_utf8(bytes).ok())
}

fn is_oid(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The new side's object ids of `git diff-index --raw -z` output
/// (`:old_mode new_mode old_oid new_oid status\0path\0`), blobs and
/// symlinks only (a gitlink's commit lives in another repository).
fn staged_oids(raw: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(raw);
    let mut fields = text.split('\0');
    let mut out = Vec::new();
    while let Some(meta) = fields.next() {
        let Some(meta) = meta.strip_prefix(':') else { continue };
        let _path = fields.next();
        let parts: Vec<&str> = meta.split(' ').collect();
        if let [_, new_mode, _, new_oid, _status] = parts[..]
            && matches!(new_mode, "100644" | "100755" | "120000")
            && is_oid(new_oid)
            && new_oid.bytes().any(|b| b != b'0')
        {
            out.push(new_oid.to_owned());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Those of `oids` the repository does not have.
fn has_objects(repo: &Repository, oids: &[String]) -> Result<Vec<String>, PrivateGitError> {
    if oids.is_empty() {
        return Ok(Vec::new());
    }
    let mut cmd = git::command(&repo.root);
    cmd.args(["cat-file", "--batch-check=%(objectname)"]);
    let input: String = oids.iter().map(|o| format!("{o}\n")).collect();
    let out = git::output_with_stdin(cmd, input.as_bytes())?;
    Ok(String::from_utf8_lossy(&out).lines().filter_map(|l| l.strip_suffix(" missing")).map(str::to_owned).collect())
}

fn is_ancestor(repo: &Repository, a: &str, b: &str) -> Result<bool, PrivateGitError> {
    Ok(git::test(&repo.root, &["merge-base", "--is-ancestor", a, b])?)
}

/// `git fetch` in the repository from the private one, `upload-pack`
/// run as `reader` (a fenced command line).
fn fetch(repo: &Repository, private: &Path, reader: &str, wants: &[String]) -> Result<(), PrivateGitError> {
    let mut cmd = git::command(&repo.root);
    cmd.args([
        "-c",
        "protocol.version=2",
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-write-fetch-head",
        "--no-recurse-submodules",
        "--no-auto-gc",
        "--no-auto-maintenance",
    ])
    .arg(format!("--upload-pack={reader}"))
    .arg("--")
    .arg(private)
    .args(wants);
    bounded(cmd, private, &format!("fetch from {}", private.display()))
}

/// Folders no fenced reader or writer needs: tandem's state (but the
/// private repository, bound again) and sockets, the user's runtime
/// folder, `$HOME`, the main checkout and the common dir (but its
/// objects, bound again read-only).
fn reader_fence(
    paths: &Paths,
    repo: &Repository,
    private: &Path,
    writable: bool,
) -> Result<Vec<String>, PrivateGitError> {
    let bwrap = crate::process::find("bwrap").ok_or(PrivateGitError::NoBwrap)?;
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let mut out = vec![s(&bwrap)];
    out.extend(
        [
            "--die-with-parent",
            "--unshare-all",
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--tmpfs",
            "/tmp",
        ]
        .map(str::to_owned),
    );
    if nix::unistd::Uid::effective().is_root() {
        out.extend(["--cap-drop".to_owned(), "ALL".to_owned()]);
    }
    let mut hidden: Vec<PathBuf> =
        vec![paths.state_dir.clone(), paths.runtime_dir.clone(), repo.root.clone(), repo.common_dir.clone()];
    let mount = private.with_file_name("objects");
    hidden.extend(std::env::var_os("HOME").map(PathBuf::from));
    hidden.extend(crate::paths::user_runtime_dir());
    let outermost: Vec<&PathBuf> =
        hidden.iter().filter(|p| p.is_dir() && !hidden.iter().any(|q| q != *p && p.starts_with(q))).collect();
    for p in &outermost {
        out.extend(["--tmpfs".to_owned(), s(p)]);
    }
    let objects = repo.common_dir.join("objects");
    out.extend(["--ro-bind".to_owned(), s(&objects), s(&objects), "--ro-bind".to_owned(), s(&objects), s(&mount)]);
    let how = if writable { "--bind" } else { "--ro-bind" };
    out.extend([how.to_owned(), s(private), s(private)]);
    for p in outermost {
        out.extend(["--remount-ro".to_owned(), s(p)]);
    }
    out.push("--".to_owned());
    Ok(out)
}

/// The `--upload-pack` command line: `git upload-pack` inside a
/// read-only fence, willing to send any object asked for by id (the
/// index's blobs have no ref).
fn reader(paths: &Paths, repo: &Repository, private: &Path) -> Result<String, PrivateGitError> {
    let mut argv = reader_fence(paths, repo, private, false)?;
    argv.extend(["git", "-c", "uploadpack.allowAnySHA1InWant=true", "upload-pack"].map(str::to_owned));
    Ok(shell_words::join(argv))
}

/// Sets `branch_ref` in the private repository to `oid` (its objects are
/// the repository's, seen through the alternate), with git inside
/// `fence` (only the private repository writable): the agent may have
/// made any path in it a symlink.
fn publish(
    fence: &[String],
    private: &Path,
    branch_ref: &str,
    oid: &str,
    old: Option<&String>,
) -> Result<(), PrivateGitError> {
    let mut argv = fence.to_vec();
    argv.extend(["git".to_owned(), format!("--git-dir={}", private.display()), "update-ref".to_owned()]);
    argv.extend(["-m".to_owned(), "tandem: the repository's branch".to_owned(), branch_ref.to_owned(), oid.to_owned()]);
    argv.extend(old.cloned());
    run_fenced(&argv, private, &format!("update-ref {branch_ref} (in the private repository)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_oids_takes_new_blobs_and_links_only() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let z = "0".repeat(40);
        let raw = format!(
            ":100644 100644 {z} {a} M\0f.txt\0:000000 160000 {z} {b} A\0sub\0:100644 000000 {a} {z} D\0gone\0:000000 120000 {z} {b} A\0link\0"
        );
        assert_eq!(staged_oids(raw.as_bytes()), vec![a, b]);
        assert!(staged_oids(b"").is_empty());
    }
}
