//! `.worktreeinclude`: the git-ignored files of a repository (a `.env`, a
//! local config) that a new session's worktree starts with, since `git
//! worktree add` checks out tracked files only.
//!
//! The file sits at the top of the repository and holds gitignore patterns
//! (gitignore(5): `!` negation, `dir/`, `**`), the convention of Claude
//! Code's `--worktree`. A path is copied only when the repository's own
//! rules ignore it AND `.worktreeinclude` matches it; a tracked file never
//! is. Git does both matchings, each one walk of the working tree:
//! - `git ls-files --others --ignored --exclude-standard --directory` lists
//!   the ignored paths, a wholly ignored directory (`target/`) as one entry
//!   that git does not look into;
//! - `git ls-files --others --ignored --exclude-from=.worktreeinclude
//!   --directory` lists what the patterns match, kept (by `:(exclude)`
//!   pathspecs) out of every wholly ignored directory that no pattern
//!   names a path inside.
//!
//! What both list is copied. So a pattern without a `/` (`.env`, `*.pem`)
//! or starting with `**/` matches the paths git lists and wholly ignored
//! directories by name, but does not make git look inside `node_modules/`;
//! a pattern that names a path inside one (`target/release/app.toml`,
//! `secrets/*.pem`) does, and in there every pattern applies.
//!
//! Safety: nothing is read or written outside the repository and the
//! worktree. Paths must be plain relative paths; every parent, in the
//! repository and in the worktree, must be a real directory (not a
//! symlink); a symlink is copied as a symlink, and only when it resolves
//! inside the repository and its relative target never climbs above the
//! repository's top; an existing path in the worktree is never replaced;
//! a directory holding `.git` (a nested repository or another session's
//! worktree) is never copied.
//!
//! Over 600 lines (about 630 of code, then its tests) on purpose: the
//! matching and the safety rules of one copy are read together.

use std::collections::{BTreeSet, HashSet};
use std::ffi::OsString;
use std::fs::{self, OpenOptions, Permissions};
use std::io;
use std::ops::Bound;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::git::{self, Excludes, GitError, LsFilesEntry};

/// The name of the patterns file, at the top of the repository.
pub const FILE_NAME: &str = ".worktreeinclude";

/// Bytes of `:(exclude)` pathspecs handed to git at most. Past it, further
/// wholly ignored directories are walked instead of skipped: the same
/// result, only slower, and the command line stays far below the
/// kernel's limit.
const MAX_PRUNE_BYTES: usize = 256 * 1024;

/// Errors from [`copy_included`]. Each message is one line that says what
/// to do.
#[derive(Debug, thiserror::Error)]
pub enum IncludeError {
    #[error("cannot read {}; make it readable, or delete it", path.display())]
    Read {
        path: PathBuf,
        #[source]
        error: io::Error,
    },
    #[error("{} is not a regular file; make it a plain file of gitignore patterns", path.display())]
    NotAFile { path: PathBuf },
    #[error("{} is not the top folder of a git working tree; pass the repository's root", path.display())]
    NotTopLevel { path: PathBuf },
    #[error("cannot use {} as the worktree to copy into; check that the folder exists", path.display())]
    Worktree {
        path: PathBuf,
        #[source]
        error: io::Error,
    },
    /// `path`: repository-relative.
    #[error("cannot copy {} into the worktree; check permissions and free space", path.display())]
    Copy {
        path: PathBuf,
        #[source]
        error: io::Error,
    },
    #[error(transparent)]
    Git(#[from] GitError),
}

/// Copies into `worktree` the files of `repo_root` that are git-ignored AND
/// matched by `repo_root/.worktreeinclude`, to the same relative paths,
/// and returns those paths (repository-relative, sorted; files and
/// symlinks, not directories). No `.worktreeinclude`: nothing, `Ok(vec![])`.
///
/// `repo_root`: the top of a working tree of the repository (usually the
/// main one). `worktree`: the session's new worktree.
///
/// Files are cloned where the filesystem can (`FICLONE` on btrfs and XFS,
/// `clonefile` on APFS), else copied, and keep their permission bits
/// (`rwx`, not setuid). A missing parent directory is created with its
/// source's permissions. A path that vanishes mid-copy, or already exists
/// in the worktree, is skipped; so is an unsafe one (see the module docs).
///
/// # Errors
/// [`IncludeError::Read`] or [`IncludeError::NotAFile`] for
/// `.worktreeinclude`; [`IncludeError::NotTopLevel`];
/// [`IncludeError::Worktree`]; [`IncludeError::Git`] when `git ls-files`
/// fails; [`IncludeError::Copy`] when a file cannot be read or written.
pub fn copy_included(repo_root: &Path, worktree: &Path) -> Result<Vec<PathBuf>, IncludeError> {
    let include_file = repo_root.join(FILE_NAME);
    let patterns = match fs::symlink_metadata(&include_file) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(IncludeError::Read { path: include_file, error }),
        Ok(meta) if !meta.is_file() => return Err(IncludeError::NotAFile { path: include_file }),
        Ok(_) => fs::read(&include_file).map_err(|error| IncludeError::Read { path: include_file.clone(), error })?,
    };
    if !git::show_prefix(repo_root)?.is_empty() {
        return Err(IncludeError::NotTopLevel { path: repo_root.to_path_buf() });
    }
    let root =
        fs::canonicalize(repo_root).map_err(|error| IncludeError::Read { path: repo_root.to_path_buf(), error })?;
    let worktree_error = |error| IncludeError::Worktree { path: worktree.to_path_buf(), error };
    let dest_root = fs::canonicalize(worktree).map_err(worktree_error)?;
    if !fs::metadata(&dest_root).map_err(worktree_error)?.is_dir() {
        return Err(worktree_error(io::Error::from(io::ErrorKind::NotADirectory)));
    }

    let ignored = Ignored::new(&git::ls_others_ignored(&root, Excludes::Standard, &[] as &[&str])?);
    let reach = Reach::parse(&patterns);
    let mut pathspecs = vec![OsString::from(":(top)")];
    let mut budget = MAX_PRUNE_BYTES;
    let mut collapsed: Vec<&PathBuf> = ignored.dirs.iter().collect();
    collapsed.sort_by_key(|dir| (dir.components().count(), *dir)); // shallow (likely big) ones first
    for dir in collapsed.into_iter().filter(|dir| !reach.reaches_into(dir)) {
        let spec = prune_pathspec(dir);
        if spec.len() > budget {
            break;
        }
        budget -= spec.len();
        pathspecs.push(spec);
    }
    let included = git::ls_others_ignored(&root, Excludes::File(&root.join(FILE_NAME)), &pathspecs)?;

    let mut copier = Copier { root, dest_root, copied: Vec::new() };
    for path in select(&ignored, &included) {
        copier.copy_selected(&path)?;
    }
    let mut copied = copier.copied;
    copied.sort();
    Ok(copied)
}

/// What `git ls-files --others --ignored --exclude-standard --directory`
/// listed: single ignored files, and wholly ignored directories git did
/// not look into.
#[derive(Debug, Default)]
struct Ignored {
    files: HashSet<PathBuf>,
    /// Directories listed with nothing under them: everything inside is
    /// ignored (git cannot re-include a path under an ignored directory).
    dirs: HashSet<PathBuf>,
    /// `files` and `dirs`, ordered so that a path's descendants follow it.
    all: BTreeSet<PathBuf>,
}

impl Ignored {
    fn new(entries: &[LsFilesEntry]) -> Ignored {
        // git lists a directory whose files are each ignored (but which is
        // not ignored itself) both as `dir/` and file by file; only the
        // files count then.
        let mut parents: HashSet<&Path> = HashSet::new();
        for entry in entries {
            for parent in entry.path.ancestors().skip(1).filter(|p| !p.as_os_str().is_empty()) {
                if !parents.insert(parent) {
                    break;
                }
            }
        }
        let mut ignored = Ignored::default();
        for entry in entries {
            if !entry.dir {
                ignored.files.insert(entry.path.clone());
            } else if !parents.contains(entry.path.as_path()) {
                ignored.dirs.insert(entry.path.clone());
            } else {
                continue;
            }
            ignored.all.insert(entry.path.clone());
        }
        ignored
    }

    /// Whether `path` (file or directory) is ignored as a whole.
    fn contains(&self, path: &Path) -> bool {
        self.files.contains(path) || path.ancestors().any(|a| self.dirs.contains(a))
    }

    /// The ignored files and directories strictly under `dir`.
    fn under<'a>(&'a self, dir: &'a Path) -> impl Iterator<Item = &'a PathBuf> {
        self.all.range::<Path, _>((Bound::Excluded(dir), Bound::Unbounded)).take_while(move |p| p.starts_with(dir))
    }
}

/// Files at most this large are compared byte for byte by [`changed`];
/// a larger one (a build artefact, not an edited `.env`) by size only.
const COMPARE_BYTES: u64 = 64 * 1024 * 1024;

/// Entries [`changed`] looks at, at most, under one copied folder; past
/// that it lists the folder whole.
const COMPARE_ENTRIES: usize = 10_000;

/// The `.worktreeinclude` copies in `worktree` that differ from their
/// source in `repo_root` (a `.env` the agent edited): `included` are the
/// relative paths [`copy_included`] copied, files or folders, as the
/// store keeps them (a name that is not UTF-8 with `U+FFFD` in its place:
/// it is looked up in its folder); the answer lists relative paths of
/// files (and symlinks) that differ or have no source any more, and of a
/// folder with more than [`COMPARE_ENTRIES`] entries (for `git add` to
/// take whole). A copy the agent deleted is not listed (the source still
/// has it); nor is an unsafe path (absolute, with `..`, or under a
/// symlinked parent). Removing or archiving the worktree would lose what
/// is listed, so it counts as unsaved work (issue 17).
#[must_use]
pub fn changed(repo_root: &Path, worktree: &Path, included: &[String]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for path in included.iter().flat_map(|p| stored_name(worktree, p)) {
        let rel = path.as_path();
        if !rel.components().all(|c| matches!(c, Component::Normal(_))) || has_symlinked_parent(worktree, rel) {
            continue;
        }
        let mut stack = vec![rel.to_path_buf()];
        let mut seen = 0;
        while let Some(rel) = stack.pop() {
            seen += 1;
            if seen > COMPARE_ENTRIES {
                // Too many to compare one by one (an agent's folder where
                // a file was): `git add` takes the whole of it.
                out.push(path.clone());
                break;
            }
            let Ok(meta) = fs::symlink_metadata(worktree.join(&rel)) else { continue };
            let source = repo_root.join(&rel);
            if meta.is_dir() {
                // Past the limit, the count above lists the folder whole.
                for entry in fs::read_dir(worktree.join(&rel)).into_iter().flatten().flatten().take(COMPARE_ENTRIES + 1)
                {
                    stack.push(rel.join(entry.file_name()));
                }
            } else if (meta.is_file() || meta.file_type().is_symlink()) && differs(&worktree.join(&rel), &meta, &source)
            {
                out.push(rel);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The paths in `worktree` that `stored` (a relative path as the store
/// keeps it, made with `to_string_lossy`) stands for: itself, or when it
/// holds `U+FFFD`, each entry of its folder whose lossy name is its last
/// part (a name that is not UTF-8).
fn stored_name(worktree: &Path, stored: &str) -> Vec<PathBuf> {
    let rel = PathBuf::from(stored);
    if !stored.contains('\u{fffd}') {
        return vec![rel];
    }
    let (Some(parent), Some(last)) = (rel.parent(), rel.file_name()) else { return Vec::new() };
    if parent.to_string_lossy().contains('\u{fffd}') {
        return Vec::new(); // a folder with such a name too: not looked for
    }
    fs::read_dir(worktree.join(parent))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy() == last.to_string_lossy())
        .map(|e| parent.join(e.file_name()))
        .collect()
}

fn has_symlinked_parent(root: &Path, rel: &Path) -> bool {
    let mut at = root.to_path_buf();
    let parents: Vec<_> = rel.components().collect();
    for part in &parents[..parents.len().saturating_sub(1)] {
        at.push(part);
        if fs::symlink_metadata(&at).is_ok_and(|m| !m.is_dir()) {
            return true;
        }
    }
    false
}

/// Whether the copy at `copy` (of metadata `meta`) differs from `source`.
fn differs(copy: &Path, meta: &fs::Metadata, source: &Path) -> bool {
    let Ok(theirs) = fs::symlink_metadata(source) else { return true };
    if meta.file_type().is_symlink() || theirs.file_type().is_symlink() {
        return fs::read_link(copy).ok() != fs::read_link(source).ok();
    }
    // Never open what is not a regular file: an agent's FIFO in place of
    // `.env` would block the supervisor's read.
    if !meta.is_file() || !theirs.is_file() || meta.len() != theirs.len() {
        return true;
    }
    meta.len() <= COMPARE_BYTES && !same_bytes(copy, source).unwrap_or(false)
}

fn same_bytes(a: &Path, b: &Path) -> io::Result<bool> {
    use std::io::Read;
    // The `lstat` in [`differs`] came first: a FIFO swapped in since must
    // neither block the open (`O_NONBLOCK`) nor be read.
    let open = |path: &Path| -> io::Result<fs::File> {
        let file = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path)?;
        if !file.metadata()?.is_file() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
        }
        Ok(file)
    };
    let (mut a, mut b) = (io::BufReader::new(open(a)?), io::BufReader::new(open(b)?));
    let (mut x, mut y) = ([0u8; 8192], [0u8; 8192]);
    loop {
        let n = a.read(&mut x)?;
        if n == 0 {
            return Ok(b.read(&mut y)? == 0);
        }
        b.read_exact(&mut y[..n])?;
        if x[..n] != y[..n] {
            return Ok(false);
        }
    }
}

/// The paths both listings hold, none under another: `ignored` from the
/// repository's rules, `included` from `.worktreeinclude`'s. A directory
/// `included` lists stands for the ignored paths under it.
fn select(ignored: &Ignored, included: &[LsFilesEntry]) -> Vec<PathBuf> {
    let mut chosen = BTreeSet::new();
    for entry in included {
        if ignored.contains(&entry.path) {
            chosen.insert(entry.path.clone());
        } else if entry.dir {
            chosen.extend(ignored.under(&entry.path).cloned());
        }
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    for path in chosen {
        // A path's descendants follow it in the set, so checking the last
        // kept one is enough.
        if !roots.last().is_some_and(|last| path.starts_with(last)) {
            roots.push(path);
        }
    }
    roots
}

/// The anchored patterns of `.worktreeinclude` (those with a `/` before
/// their end), split into components, to tell which wholly ignored
/// directories git must look into.
#[derive(Debug, Default)]
struct Reach {
    patterns: Vec<Vec<Vec<u8>>>,
}

impl Reach {
    /// Reads gitignore syntax: blank lines and `#` comments skipped,
    /// trailing spaces trimmed; `!` lines only ever remove paths, so they
    /// never make git look further.
    fn parse(text: &[u8]) -> Reach {
        let mut reach = Reach::default();
        for line in text.split(|&b| b == b'\n') {
            let mut line = line.strip_suffix(b"\r").unwrap_or(line);
            while let Some(rest) = line.strip_suffix(b" ") {
                line = rest;
            }
            if line.is_empty() || line.starts_with(b"#") || line.starts_with(b"!") {
                continue;
            }
            let line = line.strip_suffix(b"/").unwrap_or(line);
            if !line.contains(&b'/') {
                continue; // matches a name at any depth
            }
            let line = line.strip_prefix(b"/").unwrap_or(line);
            let parts: Vec<Vec<u8>> = line.split(|&b| b == b'/').map(<[u8]>::to_vec).collect();
            if parts.first().is_some_and(|p| p == b"**") {
                continue; // `**/x` is `x`
            }
            reach.patterns.push(parts);
        }
        reach
    }

    /// Whether a pattern may match a path strictly inside `dir`.
    fn reaches_into(&self, dir: &Path) -> bool {
        let dir: Vec<&[u8]> = dir.components().map(|c| c.as_os_str().as_bytes()).collect();
        self.patterns.iter().any(|pattern| {
            for (i, part) in pattern.iter().enumerate() {
                if i == dir.len() {
                    return true; // the pattern goes on inside `dir`
                }
                if part.iter().any(|b| b"*?[\\".contains(b)) {
                    return true; // a wildcard may match `dir`'s component: look
                }
                if part.as_slice() != dir[i] {
                    return false;
                }
            }
            false // it names `dir` or a parent, which git lists whole
        })
    }
}

/// `:(exclude,top,glob)DIR/**`: keeps git's walk out of `dir` while still
/// matching `dir` itself. Glob magic, so `*?[\` in the name are escaped.
fn prune_pathspec(dir: &Path) -> OsString {
    let mut spec = b":(exclude,top,glob)".to_vec();
    for &b in dir.as_os_str().as_bytes() {
        if b"*?[\\".contains(&b) {
            spec.push(b'\\');
        }
        spec.push(b);
    }
    spec.extend_from_slice(b"/**");
    OsString::from_vec(spec)
}

/// Copies selected paths from `root` to `dest_root` (both canonical).
struct Copier {
    root: PathBuf,
    dest_root: PathBuf,
    copied: Vec<PathBuf>,
}

impl Copier {
    /// Copies `rel` (a file, symlink or whole directory) if it is safe to.
    fn copy_selected(&mut self, rel: &Path) -> Result<(), IncludeError> {
        if rel.as_os_str().is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            tracing::warn!(path = %rel.display(), "worktreeinclude: skipping a path that is not plainly relative");
            return Ok(());
        }
        // git lists nothing beyond a symlink, but the tree may have changed.
        let mut dir = self.root.clone();
        for part in rel.parent().into_iter().flat_map(Path::components) {
            dir.push(part);
            if !fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
                tracing::debug!(path = %rel.display(), "worktreeinclude: skipping, a parent is not a real directory");
                return Ok(());
            }
        }
        let meta = match fs::symlink_metadata(self.root.join(rel)) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(IncludeError::Copy { path: rel.to_path_buf(), error }),
        };
        let kind = meta.file_type();
        if kind.is_dir() {
            self.copy_dir(rel)
        } else if kind.is_symlink() {
            self.copy_symlink(rel)
        } else if kind.is_file() {
            self.copy_file(rel)
        } else {
            Ok(()) // a socket, FIFO or device
        }
    }

    /// Copies the files and symlinks under the directory `rel`, without
    /// following symlinks. Empty directories are not created.
    fn copy_dir(&mut self, rel: &Path) -> Result<(), IncludeError> {
        let mut stack = vec![rel.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let src = self.root.join(&dir);
            if src == self.dest_root || fs::symlink_metadata(src.join(".git")).is_ok() {
                tracing::debug!(path = %dir.display(), "worktreeinclude: skipping a repository or worktree");
                continue;
            }
            let copy_error = |error| IncludeError::Copy { path: dir.clone(), error };
            let entries = match fs::read_dir(&src) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => return Err(copy_error(error)),
            };
            for entry in entries {
                let entry = entry.map_err(copy_error)?;
                let kind = entry.file_type().map_err(copy_error)?; // of the entry itself, not a link's target
                let child = dir.join(entry.file_name());
                if kind.is_dir() {
                    stack.push(child);
                } else if kind.is_symlink() {
                    self.copy_symlink(&child)?;
                } else if kind.is_file() {
                    self.copy_file(&child)?;
                }
            }
        }
        Ok(())
    }

    fn copy_file(&mut self, rel: &Path) -> Result<(), IncludeError> {
        let Some(dest) = self.destination(rel)? else { return Ok(()) };
        match clone_file(&self.root.join(rel), &dest) {
            Ok(()) => self.copied.push(rel.to_path_buf()),
            Err(e) if changed_meanwhile(&e) => {
                tracing::debug!(path = %rel.display(), error = %e, "worktreeinclude: skipping");
            }
            Err(error) => return Err(IncludeError::Copy { path: rel.to_path_buf(), error }),
        }
        Ok(())
    }

    /// Recreates the symlink `rel` with the same target text, if it
    /// resolves inside the repository and, when relative, never climbs
    /// above the repository's top (so the copy resolves inside the
    /// worktree).
    fn copy_symlink(&mut self, rel: &Path) -> Result<(), IncludeError> {
        let src = self.root.join(rel);
        let target = match fs::read_link(&src) {
            Ok(target) => target,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(IncludeError::Copy { path: rel.to_path_buf(), error }),
        };
        let resolves_inside = fs::canonicalize(&src).is_ok_and(|p| p.starts_with(&self.root));
        let stays_inside = target.is_absolute() || stays_below(rel.parent().unwrap_or(Path::new("")), &target);
        if !(resolves_inside && stays_inside) {
            tracing::warn!(path = %rel.display(), target = %target.display(),
                "worktreeinclude: skipping a symlink that leads outside the repository (or nowhere)");
            return Ok(());
        }
        let Some(dest) = self.destination(rel)? else { return Ok(()) };
        match std::os::unix::fs::symlink(&target, &dest) {
            Ok(()) => self.copied.push(rel.to_path_buf()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(IncludeError::Copy { path: rel.to_path_buf(), error }),
        }
        Ok(())
    }

    /// Where `rel` goes in the worktree, after creating its missing parent
    /// directories; `None` when something already sits there, or a parent
    /// is not a real directory (a symlink could lead anywhere).
    fn destination(&self, rel: &Path) -> Result<Option<PathBuf>, IncludeError> {
        let copy_error = |error| IncludeError::Copy { path: rel.to_path_buf(), error };
        let mut dir = self.dest_root.clone();
        let mut src_dir = self.root.clone();
        for part in rel.parent().into_iter().flat_map(Path::components) {
            dir.push(part);
            src_dir.push(part);
            let meta = match fs::symlink_metadata(&dir) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    let mode = fs::symlink_metadata(&src_dir).map_or(0o755, |m| m.permissions().mode() & 0o777);
                    match fs::DirBuilder::new().mode(mode | 0o700).create(&dir) {
                        Ok(()) => continue,
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                            fs::symlink_metadata(&dir).map_err(copy_error)?
                        }
                        Err(error) => return Err(copy_error(error)),
                    }
                }
                other => other.map_err(copy_error)?,
            };
            if !meta.is_dir() {
                tracing::warn!(path = %rel.display(), "worktreeinclude: skipping, a parent in the worktree is not a real directory");
                return Ok(None);
            }
        }
        let dest = self.dest_root.join(rel);
        if fs::symlink_metadata(&dest).is_ok() {
            tracing::debug!(path = %rel.display(), "worktreeinclude: skipping, already in the worktree");
            return Ok(None);
        }
        Ok(Some(dest))
    }
}

/// Whether the relative symlink `target`, read from a link in directory
/// `dir` (repository-relative), stays inside the repository by its text
/// alone: its `..`s never climb above the top.
fn stays_below(dir: &Path, target: &Path) -> bool {
    let mut depth = dir.components().count();
    for part in target.components() {
        match part {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir if depth > 0 => depth -= 1,
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// Whether [`clone_file`] failed because the tree changed since git
/// listed it: the file vanished, the destination appeared, or the source
/// became a symlink (`ELOOP` from `O_NOFOLLOW`) or something else than a
/// file.
fn changed_meanwhile(e: &io::Error) -> bool {
    use io::ErrorKind::{AlreadyExists, InvalidInput, NotFound};
    matches!(e.kind(), NotFound | AlreadyExists | InvalidInput) || e.raw_os_error() == Some(libc::ELOOP)
}

/// Clones the regular file `src` to the new file `dest` (copy-on-write
/// where the filesystem can, else a byte copy), never following a symlink
/// at `src` nor replacing anything at `dest`, and gives `dest` `src`'s
/// permission bits (`0o777` mask).
///
/// Fails with `ELOOP` when `src` is a symlink, `InvalidInput` when it is
/// not a regular file, `AlreadyExists` when `dest` exists.
fn clone_file(src: &Path, dest: &Path) -> io::Result<()> {
    // O_NONBLOCK: opening a FIFO swapped in must not hang; no effect on files.
    let from = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(src)?;
    let meta = from.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    let mode = meta.permissions().mode() & 0o777;
    // `reflink_file_to_path` rather than `reflink_or_copy`: it reads the
    // already opened (`O_NOFOLLOW`) file and creates `dest` with
    // `O_EXCL`; `reflink_or_copy` reopens by path and its `fs::copy`
    // fallback would replace a file created meanwhile.
    match reflink_copy::reflink_file_to_path(&from, dest) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(e),
        Err(_) => {
            // No copy-on-write here (ext4, tmpfs, across filesystems).
            let mut to = OpenOptions::new().write(true).create_new(true).mode(0o600).open(dest)?;
            if let Err(e) = io::copy(&mut &from, &mut to) {
                drop(to);
                let _ = fs::remove_file(dest);
                return Err(e);
            }
        }
    }
    fs::set_permissions(dest, Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;
    use std::time::Instant;

    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let mut cmd = git::command(dir);
        cmd.args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com");
        git::output(cmd).expect("git succeeds in the test repository");
    }

    fn write(path: &Path, text: &str, mode: u32) {
        fs::create_dir_all(path.parent().expect("a parent")).expect("create parents");
        fs::write(path, text).expect("write");
        fs::set_permissions(path, Permissions::from_mode(mode)).expect("chmod");
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).expect("exists").permissions().mode() & 0o777
    }

    fn paths(list: &[&str]) -> Vec<PathBuf> {
        list.iter().map(PathBuf::from).collect()
    }

    /// A repository `repo/` whose `main` commits `.gitignore` and `tracked`
    /// (added with `--force`, so they may match `.gitignore`), and a
    /// session worktree at `wt` (relative to the temp dir) on `session`.
    struct Fixture {
        tmp: tempfile::TempDir,
        root: PathBuf,
        wt: PathBuf,
    }

    impl Fixture {
        fn new(gitignore: &str, tracked: &[&str]) -> Fixture {
            Fixture::with_worktree_at(gitignore, tracked, "wt")
        }

        fn with_worktree_at(gitignore: &str, tracked: &[&str], wt: &str) -> Fixture {
            let tmp = tempfile::tempdir().expect("temp dir");
            let root = tmp.path().join("repo");
            fs::create_dir(&root).expect("mkdir repo");
            git(&root, &["init", "-q", "-b", "main"]);
            write(&root.join(".gitignore"), gitignore, 0o644);
            for path in tracked {
                write(&root.join(path), "committed\n", 0o644);
            }
            git(&root, &["add", "--force", "--all"]);
            git(&root, &["commit", "-q", "-m", "init"]);
            let wt = tmp.path().join(wt);
            git(&root, &["worktree", "add", "-q", "-b", "session", wt.to_str().expect("utf-8"), "main"]);
            Fixture { tmp, root, wt }
        }

        fn include(&self, patterns: &str) {
            write(&self.root.join(FILE_NAME), patterns, 0o644);
        }

        fn copy(&self) -> Vec<PathBuf> {
            copy_included(&self.root, &self.wt).expect("copy_included")
        }
    }

    #[test]
    fn copies_ignored_listed_files_keeping_modes() {
        let f = Fixture::new(".env\nconfig/*.toml\nbin/\n*.log\n", &["config/forced.toml", "settings.json"]);
        write(&f.root.join(".env"), "SECRET=1\n", 0o600);
        write(&f.root.join("config/local.toml"), "local\n", 0o640);
        write(&f.root.join("bin/run.sh"), "#!/bin/sh\n", 0o755);
        write(&f.root.join("debug.log"), "ignored, not listed\n", 0o644);
        write(&f.root.join("notes.txt"), "listed, not ignored\n", 0o644);
        // Tracked files that match the patterns, changed since the commit.
        write(&f.root.join("settings.json"), "changed\n", 0o644);
        write(&f.root.join("config/forced.toml"), "changed\n", 0o644);
        f.include("# local files\n.env\nconfig/\nbin/\nsettings.json\nnotes.txt\n");

        assert_eq!(f.copy(), paths(&[".env", "bin/run.sh", "config/local.toml"]));
        assert_eq!(fs::read_to_string(f.wt.join(".env")).unwrap(), "SECRET=1\n");
        assert_eq!(mode(&f.wt.join(".env")), 0o600);
        assert_eq!(mode(&f.wt.join("config/local.toml")), 0o640);
        assert_eq!(mode(&f.wt.join("bin/run.sh")), 0o755);
        assert!(!f.wt.join("debug.log").exists());
        assert!(!f.wt.join("notes.txt").exists());
        assert_eq!(fs::read_to_string(f.wt.join("settings.json")).unwrap(), "committed\n");
        assert_eq!(fs::read_to_string(f.wt.join("config/forced.toml")).unwrap(), "committed\n");
    }

    #[test]
    fn negation_and_existing_files_and_no_include_file() {
        let f = Fixture::new(".env*\n", &[]);
        for name in [".env", ".env.local", ".env.production"] {
            write(&f.root.join(name), name, 0o600);
        }
        assert_eq!(f.copy(), paths(&[]), "no .worktreeinclude: nothing");

        write(&f.wt.join(".env"), "mine", 0o600);
        f.include(".env*\n!.env.production\n");
        assert_eq!(f.copy(), paths(&[".env.local"]));
        assert_eq!(fs::read_to_string(f.wt.join(".env")).unwrap(), "mine", "never overwritten");
        assert!(!f.wt.join(".env.production").exists());
    }

    #[test]
    fn patterns_naming_outside_paths_copy_nothing() {
        let f = Fixture::new(".env\n", &[]);
        write(&f.tmp.path().join("outside"), "secret", 0o644);
        write(&f.root.join(".env"), "x", 0o644);
        f.include("../outside\n/../outside\n/etc/passwd\n../**\n/*/../../outside\n");
        assert_eq!(f.copy(), paths(&[]));
        assert!(!f.wt.join("outside").exists() && !f.wt.join("etc").exists());
        let mut beside: Vec<_> = fs::read_dir(f.tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        beside.sort();
        assert_eq!(beside, ["outside", "repo", "wt"]);
    }

    #[test]
    fn symlinks_leading_outside_are_skipped() {
        let f = Fixture::new("*link*\nconf\n", &[]);
        let elsewhere = f.tmp.path().join("elsewhere");
        write(&elsewhere.join("secret.txt"), "secret", 0o644);
        symlink(elsewhere.join("secret.txt"), f.root.join("abs-link")).unwrap();
        symlink("../elsewhere/secret.txt", f.root.join("rel-link")).unwrap();
        symlink(&elsewhere, f.root.join("conf")).unwrap();
        f.include("*link*\nconf\nconf/**\nconf/secret.txt\n/conf/\n");
        assert_eq!(f.copy(), paths(&[]));
        for name in ["abs-link", "rel-link", "conf"] {
            assert!(fs::symlink_metadata(f.wt.join(name)).is_err(), "{name} not copied");
        }
    }

    #[test]
    fn symlinks_inside_are_copied_as_symlinks() {
        let f = Fixture::new(".env*\nsneaky\n", &[]);
        write(&f.root.join(".env"), "x", 0o600);
        symlink(".env", f.root.join(".env.link")).unwrap();
        // Resolves inside the repository, but its text climbs above it: in
        // the worktree it would lead elsewhere.
        symlink("../repo/.env", f.root.join("sneaky")).unwrap();
        f.include(".env*\nsneaky\n");
        assert_eq!(f.copy(), paths(&[".env", ".env.link"]));
        assert_eq!(fs::read_link(f.wt.join(".env.link")).unwrap(), Path::new(".env"));
        assert!(fs::symlink_metadata(f.wt.join("sneaky")).is_err());
    }

    #[test]
    fn never_writes_through_a_symlink_in_the_worktree() {
        let f = Fixture::new("secrets/\n", &[]);
        write(&f.root.join("secrets/key.pem"), "key", 0o600);
        let trap = f.tmp.path().join("trap");
        fs::create_dir(&trap).unwrap();
        symlink(&trap, f.wt.join("secrets")).unwrap();
        f.include("secrets/\n");
        assert_eq!(f.copy(), paths(&[]));
        assert_eq!(fs::read_dir(&trap).unwrap().count(), 0);
    }

    #[test]
    fn patterns_reach_inside_ignored_dirs_only_by_path() {
        let f = Fixture::new("target/\nbuild/\ncache/\n", &[]);
        write(&f.root.join("target/release/app.toml"), "app", 0o644);
        write(&f.root.join("target/release/other.toml"), "other", 0o644);
        write(&f.root.join("build/out/a.bin"), "a", 0o755);
        write(&f.root.join("cache/x.o"), "", 0o644);
        // `*.o` has no `/`: it matches what git lists, and git does not
        // look inside cache/ for it (no pattern names a path there).
        f.include("/target/release/app.toml\nbuild\n*.o\n");
        assert_eq!(f.copy(), paths(&["build/out/a.bin", "target/release/app.toml"]));
        assert_eq!(mode(&f.wt.join("build/out/a.bin")), 0o755);
    }

    #[test]
    fn worktrees_and_nested_repositories_are_not_copied() {
        let f = Fixture::with_worktree_at(".worktrees/\nvendor/\n.env\n", &[], "repo/.worktrees/s");
        write(&f.root.join(".env"), "x", 0o600);
        write(&f.root.join("vendor/lib/.git/HEAD"), "ref: refs/heads/main\n", 0o644);
        write(&f.root.join("vendor/lib/src.c"), "c", 0o644);
        write(&f.root.join("vendor/notes.txt"), "n", 0o644);
        f.include("*\n");
        assert_eq!(f.copy(), paths(&[".env", "vendor/notes.txt"]));
        assert!(!f.wt.join(".worktrees").exists());
    }

    #[test]
    fn a_big_ignored_dir_outside_the_patterns_is_not_walked() {
        let f = Fixture::new("target/\n.env\n", &[]);
        write(&f.root.join(".env"), "x", 0o600);
        for i in 0..2000 {
            write(&f.root.join(format!("target/d{}/f{i}.o", i % 20)), "", 0o644);
        }
        f.include(".env\n*.o\n**/*.o\nconfig/**\n");
        let start = Instant::now();
        assert_eq!(f.copy(), paths(&[".env"]));
        assert!(start.elapsed().as_secs() < 10, "took {:?}", start.elapsed());
    }

    #[test]
    fn bad_inputs_are_errors() {
        let f = Fixture::new("sub/\n", &["src/a.rs"]);
        fs::create_dir(f.root.join(FILE_NAME)).unwrap();
        assert!(matches!(copy_included(&f.root, &f.wt), Err(IncludeError::NotAFile { .. })));
        fs::remove_dir(f.root.join(FILE_NAME)).unwrap();
        f.include("x\n");
        write(&f.root.join("src").join(FILE_NAME), "x\n", 0o644);
        assert!(matches!(copy_included(&f.root.join("src"), &f.wt), Err(IncludeError::NotTopLevel { .. })));
        assert!(matches!(copy_included(&f.root, &f.tmp.path().join("gone")), Err(IncludeError::Worktree { .. })));
    }

    #[test]
    fn reach_follows_literal_components() {
        let reach = Reach::parse(b"# c\n.env\n**/x/y\n!target/a/b\n/config/local.toml\nlib/*/gen/ \n");
        assert!(reach.reaches_into(Path::new("config")));
        assert!(!reach.reaches_into(Path::new("config/local.toml")), "names it: listed whole");
        assert!(!reach.reaches_into(Path::new("target")), "negations never widen");
        assert!(reach.reaches_into(Path::new("lib")));
        assert!(reach.reaches_into(Path::new("lib/foo")), "wildcard: look");
        assert!(!reach.reaches_into(Path::new("x")), "`**/x/y` is unanchored");
        assert!(Reach::parse(b"*/z\n").reaches_into(Path::new("anything")));
        let reach = Reach::parse(b".env\n**/x/y\n!target/a/b\n../outside\n/etc/passwd\n");
        assert!(!reach.reaches_into(Path::new("target")));
        assert!(!reach.reaches_into(Path::new("x")));
        assert!(reach.reaches_into(Path::new("etc")));
    }

    #[test]
    fn select_intersects_and_collapses() {
        let entry = |path: &str, dir| LsFilesEntry { path: PathBuf::from(path), dir };
        // `allig/` holds only ignored files: git lists it and them.
        let ignored = Ignored::new(&[
            entry(".env", false),
            entry("allig", true),
            entry("allig/a.log", false),
            entry("target", true),
            entry("untr/a.log", false),
        ]);
        assert!(ignored.dirs.contains(Path::new("target")) && !ignored.dirs.contains(Path::new("allig")));
        let included = [
            entry(".env", false),
            entry("allig", true),
            entry("target/release", true),
            entry("target/release/x", false),
            entry("untr", true),
            entry("notes.txt", false),
        ];
        assert_eq!(select(&ignored, &included), paths(&[".env", "allig/a.log", "target/release", "untr/a.log"]));
    }

    #[test]
    fn comparing_never_blocks_on_a_fifo_swapped_in_after_the_lstat() {
        // `changed` looks with `lstat` first, then opens: an agent can put
        // a FIFO in place of the file in between.
        let dir = tempfile::tempdir().expect("temp dir");
        let (fifo, source) = (dir.path().join("fifo"), dir.path().join("source"));
        write(&source, "x", 0o644);
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(same_bytes(&fifo, &source).unwrap_or(false)));
        let answer = rx.recv_timeout(std::time::Duration::from_secs(5));
        assert_eq!(answer, Ok(false), "a FIFO is not the same bytes, and opening it must not block");
    }

    #[test]
    fn prune_pathspec_escapes_glob_characters() {
        assert_eq!(prune_pathspec(Path::new("we*rd[1]/a?b\\c")), ":(exclude,top,glob)we\\*rd\\[1]/a\\?b\\\\c/**");
    }
}
