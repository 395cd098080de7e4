//! `tandem rewind`: puts a session's worktree (or some paths of it) back
//! as it was at one of its checkpoints, after checkpointing it as it is,
//! so the rewind itself can be undone.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use super::{CheckpointError, Take, take_with};
use crate::git;
use crate::model::{Cause, Checkpoint};
use crate::paths::Paths;
use crate::repo::Repository;
use crate::store::{Session, Store};

/// What to rewind to, and how far.
#[derive(Debug, Clone, Default)]
pub struct Rewind {
    /// The checkpoint to go back to; `None` with `undo`.
    pub to: Option<u32>,
    /// Go back to the state before the session's last rewind (the
    /// checkpoint that rewind made first).
    pub undo: bool,
    /// Only these paths (relative to the worktree's top; a folder means
    /// everything under it); empty for the whole worktree.
    pub files: Vec<String>,
    /// Also move `HEAD` (the session's branch) and the index back to the
    /// checkpoint's.
    pub hard: bool,
    /// The user's `checkpoints.keep`.
    pub keep: u32,
    /// Also resume the agent's conversation from that turn (the client
    /// restarts the agent: [`crate::client::Tandem::rewind`]; only where
    /// [`crate::agent::resumes_at_message`]).
    pub conversation: bool,
}

/// What a rewind did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RewindDone {
    /// The checkpoint of the worktree as it was just before
    /// (`rewind --undo` goes back to it).
    pub before: Checkpoint,
    /// The checkpoint the worktree now matches.
    pub to: Checkpoint,
    /// Files written back, and files deleted (they were not there then).
    pub written: usize,
    pub deleted: usize,
    /// Where `HEAD` was and now is, when `--hard` moved it.
    pub head_moved: Option<(String, String)>,
    /// Whether the index was put back as it was at the checkpoint.
    pub index_restored: bool,
    /// With [`Rewind::conversation`]: the agent's message its conversation
    /// was resumed up to (set by the client once the agent restarted).
    pub resumed_at: Option<String>,
}

/// Rewinds `session`'s worktree (see [`Rewind`]). The caller has made
/// sure the agent is not in the middle of a turn.
///
/// # Errors
/// [`CheckpointError::NoSuch`] for an unknown checkpoint,
/// [`CheckpointError::NothingToUndo`], [`CheckpointError::BadPath`] for a
/// path outside the worktree, [`CheckpointError::NoSuchPath`] for one in
/// neither the checkpoint nor the worktree,
/// [`CheckpointError::IndexLocked`] when git's lock on the worktree's
/// index is there (without `files`), [`CheckpointError::HardInSandbox`],
/// [`CheckpointError::NoWorktree`]; git and store failures. Nothing is
/// changed when any of these is found, before the worktree is touched.
/// [`CheckpointError::Write`] when a file cannot be written back, after
/// the first checkpoint (`--undo` returns to it).
pub fn rewind(
    paths: &Paths,
    repo: &Repository,
    store: &Store,
    session: &Session,
    how: &Rewind,
) -> Result<RewindDone, CheckpointError> {
    // One rewind of a session at a time: two at once (two terminals, the
    // view and the web page) each deleted and wrote from its own listing,
    // leaving a mix of both checkpoints. Held to the end (a kill drops it).
    let _one_at_a_time = lock_rewinds(paths, session);
    // What a rewind killed mid-way left (its temporary index).
    git::sweep_scratch(&paths.state_dir);
    let (target, pathspecs) = check(store, session, how)?;
    let slug = || session.slug.clone();
    let dir = &session.path;
    // Ignored files no checkpoint keeps, where the rewind writes: kept in
    // the checkpoint made first, so `--undo` brings them back.
    let ignored = ignored_in_the_way(dir, &target.tree, &pathspecs)?;
    let before = take_with(
        paths,
        repo,
        store,
        session,
        Take { cause: Cause::Rewind, rewound_to: Some(target.n), force: true, keep: how.keep.max(2) },
        &ignored,
    )?
    .ok_or_else(|| CheckpointError::NoWorktree { slug: slug() })?;

    // What differs between now and then, within the paths asked for. As
    // bytes: a file's name need not be UTF-8.
    let mut args = vec!["diff-tree", "-r", "-z", "--no-renames", "--name-status", &before.tree, &target.tree, "--"];
    args.extend(pathspecs.iter().map(String::as_str));
    let listed = read_bytes(dir, &args)?;
    let mut fields = listed.split(|b| *b == 0).filter(|f| !f.is_empty());
    let (mut write, mut delete) = (Vec::new(), Vec::new());
    while let (Some(status), Some(path)) = (fields.next(), fields.next()) {
        if status == b"D" { delete.push(path.to_vec()) } else { write.push(path.to_vec()) }
    }
    for path in &delete {
        remove_with_empty_parents(dir, Path::new(OsStr::from_bytes(path)));
    }
    if !write.is_empty() {
        checkout_from_tree(&session.slug, dir, &paths.state_dir, &target.tree, &write)?;
    }

    // HEAD and the index.
    let head_now = git::resolve_commit(dir, "HEAD")?;
    let mut head_moved = None;
    if how.hard
        && let Some(head) = &target.head
        && head_now.as_ref() != Some(head)
    {
        let old = head_now.clone().unwrap_or_default();
        let reason = format!("tandem: rewind to checkpoint {}", target.n);
        // Compare-and-swap: the branch (or a detached HEAD) moves only
        // from where it was read.
        git::run(dir, &["update-ref", "-m", &reason, "HEAD", head, &old])?;
        head_moved = Some((old, head.clone()));
    }
    let head_is_then = git::resolve_commit(dir, "HEAD")? == target.head;
    let mut index_restored = false;
    if how.files.is_empty() && head_is_then {
        let index = match &target.index_tree {
            Some(tree) => Some(tree.clone()),
            None => target.head.as_ref().map(|h| format!("{h}^{{tree}}")),
        };
        if let Some(tree) = index {
            git::run(dir, &["read-tree", &tree])?;
            // Stat data, so `git status` does not hash every file again.
            let _ = git::run(dir, &["update-index", "-q", "--refresh"]);
            index_restored = true;
        }
    }
    Ok(RewindDone {
        before,
        to: target,
        written: write.len(),
        deleted: delete.len(),
        head_moved,
        index_restored,
        resumed_at: None,
    })
}

/// Checks a rewind before anything changes: the checkpoint it goes to
/// (returned, with the pathspecs of `how.files`).
///
/// # Errors
/// As [`rewind`], but for git and store failures while rewinding.
pub fn check(store: &Store, session: &Session, how: &Rewind) -> Result<(Checkpoint, Vec<String>), CheckpointError> {
    let slug = || session.slug.clone();
    if !session.path.is_dir() {
        return Err(CheckpointError::NoWorktree { slug: slug() });
    }
    let target = if how.undo {
        let all = store.checkpoints(&session.id)?;
        all.into_iter()
            .find(|c| c.cause == Cause::Rewind)
            .ok_or_else(|| CheckpointError::NothingToUndo { slug: slug() })?
    } else {
        let n = how.to.unwrap_or(0);
        store.checkpoint(&session.id, n)?.ok_or_else(|| CheckpointError::NoSuch {
            slug: slug(),
            n,
            newest: store.checkpoints(&session.id).ok().and_then(|all| all.first().map(|c| c.n)),
        })?
    };
    let pathspecs = how
        .files
        .iter()
        .map(|p| pathspec(&session.path, p).ok_or_else(|| CheckpointError::BadPath { slug: slug(), path: p.clone() }))
        .collect::<Result<Vec<_>, _>>()?;
    // A path in neither (a typo) would rewind nothing, quietly.
    for (path, spec) in how.files.iter().zip(&pathspecs) {
        let rel = spec.trim_start_matches(":(literal)");
        let then = format!("{}:{rel}", target.tree);
        let in_checkpoint = git::read(&session.path, &["rev-parse", "--verify", "--quiet", "--end-of-options", &then]);
        if in_checkpoint.is_err() && !is_inside(&session.path, Path::new(rel)) {
            return Err(CheckpointError::NoSuchPath { slug: slug(), n: target.n, path: path.clone() });
        }
    }
    // The index goes back too: git's lock on it (an agent's git running,
    // or killed) would stop the rewind after its files were written.
    if how.files.is_empty() {
        let lock = git::read(&session.path, &["rev-parse", "--path-format=absolute", "--git-path", "index.lock"])?;
        if Path::new(&lock).exists() {
            return Err(CheckpointError::IndexLocked { slug: slug(), lock });
        }
    }
    if how.hard && session.sandbox.is_some() {
        return Err(CheckpointError::HardInSandbox { slug: slug() });
    }
    if how.hard
        && let Some(head) = &target.head
        && git::resolve_commit(&session.path, head)?.is_none()
    {
        return Err(CheckpointError::HeadGone { n: target.n, head: head.clone() });
    }
    Ok((target, pathspecs))
}

/// A literal git pathspec for `path` (relative to `top`, or absolute
/// inside it); `None` when it leaves the worktree.
fn pathspec(top: &Path, path: &str) -> Option<String> {
    let p = Path::new(path);
    let rel: PathBuf = if p.is_absolute() {
        let top = top.canonicalize().unwrap_or_else(|_| top.to_owned());
        let parent = p.parent().and_then(|d| d.canonicalize().ok());
        let full = match (parent, p.file_name()) {
            (Some(d), Some(name)) => d.join(name),
            _ => p.to_owned(),
        };
        full.strip_prefix(&top).ok()?.to_owned()
    } else {
        p.to_owned()
    };
    let mut clean = PathBuf::new();
    for c in rel.components() {
        match c {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    let text = clean.to_str()?;
    // No file's name holds a NUL, and no git argument can.
    if text.is_empty() || text == ".git" || text.starts_with(".git/") || text.contains('\0') {
        return None;
    }
    Some(format!(":(literal){text}"))
}

/// The session's rewind lock if no rewind holds it, held until the file
/// returned is dropped: the supervisor's checkpointer takes a turn's
/// checkpoint under it, so no checkpoint holds a half-rewound worktree
/// and no rewind starts mid-checkpoint. `None` while a rewind runs (look
/// again later); `Some(None)` when the lock file cannot be opened (go on
/// unlocked).
#[must_use]
pub fn hold_unless_rewinding(paths: &Paths, session: &Session) -> Option<Option<std::fs::File>> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(paths.session_dir(&session.id).join("rewind.lock"));
    match file {
        Ok(file) => match file.try_lock() {
            Ok(()) => Some(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => None,
            Err(std::fs::TryLockError::Error(_)) => Some(None),
        },
        Err(_) => Some(None),
    }
}

/// Waits for, and takes, the session's rewind lock: an exclusive lock on
/// `rewind.lock` in its state folder, released when the file returned is
/// dropped or the process dies. `None` (logged) when it cannot be had:
/// the rewind goes on unlocked rather than not at all.
fn lock_rewinds(paths: &Paths, session: &Session) -> Option<std::fs::File> {
    let dir = paths.session_dir(&session.id);
    let locked = std::fs::create_dir_all(&dir)
        .and_then(|()| {
            std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.join("rewind.lock"))
        })
        .and_then(|file| file.lock().map(|()| file));
    locked.map_err(|e| tracing::warn!(error = %e, session = %session.slug, "cannot lock the session's rewinds")).ok()
}

/// `git --no-optional-locks ARGS…` in `dir`, its stdout as bytes.
fn read_bytes(dir: &Path, args: &[&str]) -> Result<Vec<u8>, git::GitError> {
    let mut cmd = git::command(dir);
    cmd.arg("--no-optional-locks").args(args);
    Ok(git::output(cmd)?.stdout)
}

/// The ignored files of worktree `dir` (within `pathspecs`, all when
/// empty) that writing `tree` into it would overwrite or delete: at a
/// path `tree` has a file at, inside a folder where `tree` has a file,
/// or a file where `tree` has a folder. No checkpoint holds ignored
/// files, so the rewind's first checkpoint must be given them (relative
/// paths).
fn ignored_in_the_way(dir: &Path, tree: &str, pathspecs: &[String]) -> Result<Vec<PathBuf>, git::GitError> {
    let mut args = vec!["ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--"];
    args.extend(pathspecs.iter().map(String::as_str));
    let ignored = read_bytes(dir, &args)?;
    if ignored.iter().all(|b| *b == 0) {
        return Ok(Vec::new());
    }
    let listed = read_bytes(dir, &["ls-tree", "-r", "-z", "--name-only", "--full-tree", tree])?;
    let then: BTreeSet<&[u8]> = listed.split(|b| *b == 0).filter(|p| !p.is_empty()).collect();
    let in_the_way = |path: &[u8]| {
        let folder: Vec<u8> = path.iter().copied().chain([b'/']).collect();
        then.contains(path)
            || path.iter().enumerate().any(|(i, b)| *b == b'/' && then.contains(&path[..i]))
            || then.range(folder.as_slice()..).next().is_some_and(|t| t.starts_with(&folder))
    };
    Ok(ignored
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty() && in_the_way(p))
        .map(|p| PathBuf::from(OsStr::from_bytes(p)))
        .collect())
}

/// The names of `rel`'s components; `None` unless each is a plain name.
fn names(rel: &Path) -> Option<Vec<&OsStr>> {
    rel.components()
        .map(|c| match c {
            Component::Normal(name) => Some(name),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .filter(|names| !names.is_empty())
}

/// Opens folder `name` in the folder `at`, never following a symlink:
/// the agent can swap a folder of its worktree for a symlink to one
/// outside at any moment, and what tandem deletes or writes must stay
/// inside. `None` for `at`: `name` is the worktree's own path (tandem's,
/// which may lead through a symlink of the user's).
fn open_folder(at: Option<&OwnedFd>, name: &OsStr) -> Option<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    match at {
        Some(fd) => openat(fd, name, flags | OFlag::O_NOFOLLOW, Mode::empty()).ok(),
        None => openat(AT_FDCWD, name, flags, Mode::empty()).ok(),
    }
}

/// Whether `name` in the folder `at` is a folder (`None` when not there).
fn is_folder_at(at: &OwnedFd, name: &OsStr) -> Option<bool> {
    let stat = fstatat(at, name, AtFlags::AT_SYMLINK_NOFOLLOW).ok()?;
    Some(SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
}

/// Whether `rel` is there under `top`, reached without following a
/// symlink (`link/x`, `link` a symlink to a folder outside, is not).
fn is_inside(top: &Path, rel: &Path) -> bool {
    let Some(names) = names(rel) else { return false };
    let Some(mut at) = open_folder(None, top.as_os_str()) else { return false };
    let (name, parents) = names.split_last().expect("not empty");
    for part in parents {
        let Some(next) = open_folder(Some(&at), part) else { return false };
        at = next;
    }
    is_folder_at(&at, name).is_some()
}

/// Deletes `rel` under `top` (a file or symlink; never a folder's
/// contents), then each parent folder left empty, up to `top`. Each
/// folder on the way is opened without following a symlink (a symlink
/// there: nothing is deleted), so nothing outside `top` is.
fn remove_with_empty_parents(top: &Path, rel: &Path) {
    let Some(names) = names(rel) else { return };
    let Some(mut folders) = open_folder(None, top.as_os_str()).map(|fd| vec![fd]) else { return };
    let (name, parents) = names.split_last().expect("not empty");
    for part in parents {
        let Some(fd) = open_folder(folders.last(), part) else { return };
        folders.push(fd);
    }
    let parent = folders.last().expect("top");
    if is_folder_at(parent, name) != Some(false) || unlinkat(parent, *name, UnlinkatFlags::NoRemoveDir).is_err() {
        return;
    }
    // Back up: each folder by its name in the one above (a symlink
    // swapped in meanwhile is no folder to remove).
    for (i, part) in parents.iter().enumerate().rev() {
        if unlinkat(&folders[i], *part, UnlinkatFlags::RemoveDir).is_err() {
            break;
        }
    }
}

/// Writes `files` of `tree` into the worktree `dir` (overwriting what is
/// there), never through a symlink. git checks the tree out (its
/// filters and attributes applied) into a staging folder of tandem's in
/// `scratch`, through a temporary index (`git read-tree`, then
/// `git checkout-index -f --prefix`); each file is then copied into the
/// worktree by [`place`]. git writing into the worktree itself followed a
/// folder the agent swapped for a symlink mid-way (git checks each
/// folder once), writing files wherever that pointed. The worktree's own
/// index is not touched; the index and staging folder are this
/// thread's (the web server rewinds two sessions at once).
fn checkout_from_tree(
    slug: &str,
    dir: &Path,
    scratch: &Path,
    tree: &str,
    files: &[Vec<u8>],
) -> Result<(), CheckpointError> {
    let index = scratch.join(format!("snapshot-index-{}-{:?}-rewind", std::process::id(), std::thread::current().id()));
    let staging = index.with_extension("d");
    let _ = std::fs::remove_file(&index);
    let _ = std::fs::remove_dir_all(&staging);
    let result = (|| {
        let mut cmd = git::command(dir);
        cmd.env("GIT_INDEX_FILE", &index).args(["read-tree", tree]);
        git::output(cmd)?;
        let mut prefix = std::ffi::OsString::from("--prefix=");
        prefix.push(&staging);
        prefix.push("/");
        let mut cmd = git::command(dir);
        cmd.env("GIT_INDEX_FILE", &index).args(["checkout-index", "-f", "-z", "--stdin"]).arg(prefix);
        let input: Vec<u8> = files.iter().flat_map(|f| f.iter().copied().chain([0])).collect();
        git::output_with_stdin(cmd, &input)?;
        for f in files {
            let rel = Path::new(OsStr::from_bytes(f));
            place(dir, &staging.join(rel), rel).map_err(|error| CheckpointError::Write {
                slug: slug.to_owned(),
                path: String::from_utf8_lossy(f).into_owned(),
                error,
            })?;
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(&index);
    let _ = std::fs::remove_file(index.with_extension("lock"));
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// Copies the staged `from` (a file, a symlink, or a folder for a
/// gitlink) to `rel` under `top`. Each folder on the way is opened
/// without following a symlink, made when missing, and a file or
/// symlink where it goes is deleted first (it was checkpointed just
/// before); so is a file, symlink or empty folder at `rel` itself.
fn place(top: &Path, from: &Path, rel: &Path) -> std::io::Result<()> {
    let bad = |what: &str| std::io::Error::other(what.to_owned());
    let names = names(rel).ok_or_else(|| bad("not a path inside the worktree"))?;
    let (name, parents) = names.split_last().expect("not empty");
    let mut at = open_folder(None, top.as_os_str()).ok_or_else(|| bad("cannot open the worktree"))?;
    for part in parents {
        match is_folder_at(&at, part) {
            Some(true) => {}
            Some(false) => {
                unlinkat(&at, *part, UnlinkatFlags::NoRemoveDir)?;
                nix::sys::stat::mkdirat(&at, *part, Mode::from_bits_truncate(0o777))?;
            }
            None => nix::sys::stat::mkdirat(&at, *part, Mode::from_bits_truncate(0o777))?,
        }
        at = open_folder(Some(&at), part).ok_or_else(|| bad("a folder on its way changed (a symlink?)"))?;
    }
    let staged = std::fs::symlink_metadata(from)?;
    match is_folder_at(&at, name) {
        Some(true) if staged.is_dir() => return Ok(()),
        Some(true) => unlinkat(&at, *name, UnlinkatFlags::RemoveDir)?,
        Some(false) => unlinkat(&at, *name, UnlinkatFlags::NoRemoveDir)?,
        None => {}
    }
    if staged.file_type().is_symlink() {
        nix::unistd::symlinkat(&std::fs::read_link(from)?, &at, *name)?;
    } else if staged.is_dir() {
        nix::sys::stat::mkdirat(&at, *name, Mode::from_bits_truncate(0o777))?;
    } else {
        use std::os::unix::fs::PermissionsExt;
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mode = Mode::from_bits_truncate(staged.permissions().mode() & 0o777);
        let mut to = std::fs::File::from(openat(&at, *name, flags, mode)?);
        std::io::copy(&mut std::fs::File::open(from)?, &mut to)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repository in `dir` whose tree (returned) holds `files` files
    /// `f<i>.txt`, each saying `text`; nothing committed.
    fn repo_with_tree(dir: &Path, files: usize, text: &str) -> String {
        std::fs::create_dir_all(dir).expect("dir");
        git::run(dir, &["init", "-q"]).expect("init");
        for i in 0..files {
            std::fs::write(dir.join(format!("f{i}.txt")), text).expect("write");
        }
        git::run(dir, &["add", "--all"]).expect("add");
        git::run(dir, &["write-tree"]).expect("write-tree")
    }

    /// The web server rewinds two sessions at once, in one process: each
    /// rewind's temporary index is its own (one per process made the two
    /// read each other's trees, or fail on git's lock).
    #[test]
    fn two_rewinds_in_one_process_at_once_write_each_their_own_files() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let scratch = tmp.path().join("scratch");
        std::fs::create_dir_all(&scratch).expect("scratch");
        let names: Vec<Vec<u8>> = (0..40).map(|i| format!("f{i}.txt").into_bytes()).collect();
        let threads: Vec<_> = ["one", "two"]
            .into_iter()
            .map(|text| {
                let dir = tmp.path().join(text);
                let tree = repo_with_tree(&dir, names.len(), text);
                let (scratch, names) = (scratch.clone(), names.clone());
                std::thread::spawn(move || {
                    for round in 0..25 {
                        for name in &names {
                            std::fs::write(dir.join(OsStr::from_bytes(name)), "changed").expect("write");
                        }
                        checkout_from_tree(text, &dir, &scratch, &tree, &names)
                            .unwrap_or_else(|e| panic!("{text}, round {round}: {e}"));
                        for name in &names {
                            let got = std::fs::read_to_string(dir.join(OsStr::from_bytes(name))).expect("read");
                            assert_eq!(got, text, "{text}, round {round}: another rewind's file");
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("a rewind failed");
        }
    }

    #[test]
    fn pathspecs_stay_inside_the_worktree() {
        let top = Path::new("/nonexistent/wt");
        assert_eq!(pathspec(top, "src/a.rs").as_deref(), Some(":(literal)src/a.rs"));
        assert_eq!(pathspec(top, "./src/").as_deref(), Some(":(literal)src"));
        assert_eq!(pathspec(top, "/nonexistent/wt/x").as_deref(), Some(":(literal)x"));
        assert_eq!(pathspec(top, "*.rs").as_deref(), Some(":(literal)*.rs"), "no glob: literal");
        for bad in ["../x", "src/../../x", "/etc/passwd", ".git", ".git/config", ".", "", "a\0b"] {
            assert_eq!(pathspec(top, bad), None, "{bad}");
        }
    }
}
