//! Conflict control: which live sessions touch the same files, and whose
//! work would conflict if merged (with each other, or into their base),
//! before anyone merges.
//!
//! Each session is taken as one commit, its *state*: `HEAD` when its
//! worktree is clean, else a snapshot commit of the whole worktree
//! (tracked changes and untracked files, through a temporary index, on top
//! of `HEAD`) with a fixed author, committer and date, so the same tree on
//! the same `HEAD` is always the same commit id. Then, for all sessions at
//! once:
//! - whether each session merges into its base now: one
//!   `git merge-tree --write-tree --stdin` (git-merge-tree(1), INPUT
//!   FORMAT and OUTPUT: per line `<status>NUL<tree>NUL(<path>NUL)*NUL`,
//!   status 1 clean, 0 conflicted);
//! - what each touched: one `git diff-tree --stdin` of the base's tree
//!   against that merge's tree (the paths the session would change);
//! - whether each pair of sessions that touched something merges: one
//!   more `git merge-tree --stdin`.
//!
//! A [`Cache`] keeps every answer by the commit ids it was computed from
//! (a commit id names its tree and its history, so a cached answer is
//! never stale), and each session's state commit by what made it (its
//! `HEAD` and the caller's change generation for its worktree): only what
//! changed is recomputed. A session with no changes of its own takes part
//! in no pair.

use std::collections::{BTreeSet, HashMap};
use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;

use serde::{Deserialize, Serialize};

use crate::git::{self, GitError};

/// The identity and date of snapshot commits: fixed, so equal trees on
/// equal parents give equal ids.
const SNAPSHOT_ENV: [(&str, &str); 6] = [
    ("GIT_AUTHOR_NAME", "tandem"),
    ("GIT_AUTHOR_EMAIL", "tandem@localhost"),
    ("GIT_AUTHOR_DATE", "@0 +0000"),
    ("GIT_COMMITTER_NAME", "tandem"),
    ("GIT_COMMITTER_EMAIL", "tandem@localhost"),
    ("GIT_COMMITTER_DATE", "@0 +0000"),
];

/// The commit standing for a worktree's current state: `HEAD` when the
/// tree it holds is `HEAD`'s, else a deterministic snapshot commit on top
/// of `HEAD` (see the module doc). `scratch` holds the temporary index.
///
/// # Errors
/// Git errors.
pub fn state_commit(worktree: &Path, scratch: &Path) -> Result<String, GitError> {
    state_commit_given(worktree, scratch, None)
}

/// [`state_commit`] knowing which paths differ from the index (`paths`,
/// as `git status` listed them, [`crate::model::WorktreeFacts::paths`]):
/// only those are added to the copy of the index
/// ([`git::worktree_tree_of_paths`]), so the worktree is not walked. When
/// that fails (a listed path is gone since, say) the whole worktree is
/// snapshotted.
///
/// # Errors
/// Git errors.
pub fn state_commit_given(worktree: &Path, scratch: &Path, paths: Option<&[String]>) -> Result<String, GitError> {
    let head = git::read(worktree, &["rev-parse", "HEAD"])?;
    let tree = match paths.map(|p| git::worktree_tree_of_paths(worktree, scratch, p)) {
        Some(Ok(tree)) => tree,
        Some(Err(e)) => {
            tracing::debug!(error = %e, "the listed paths did not snapshot; the whole worktree then");
            git::worktree_tree(worktree, scratch)?
        }
        None => git::worktree_tree(worktree, scratch)?,
    };
    if tree == git::read(worktree, &["rev-parse", "HEAD^{tree}"])? {
        return Ok(head);
    }
    let mut commit = git::command(worktree);
    commit.envs(SNAPSHOT_ENV).args(["commit-tree", &tree, "-p", &head, "-m", "tandem: worktree state"]);
    Ok(String::from_utf8_lossy(&git::output(commit)?.stdout).trim().to_owned())
}

/// Whether two commits merge, and the conflicted paths when not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merge {
    pub clean: bool,
    pub files: Vec<String>,
    /// The merged tree (with conflict markers in conflicted files).
    pub tree: String,
}

/// Merges every pair of commits in one `git merge-tree --stdin` process,
/// writing only objects (no ref, index or worktree changes); answers in
/// order.
///
/// # Errors
/// Git errors, or output that does not have one answer per pair.
pub fn merge_many(repo: &Path, pairs: &[(String, String)]) -> Result<Vec<Merge>, GitError> {
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let input: String = pairs.iter().map(|(a, b)| format!("{a} {b}\n")).collect();
    let out = run_stdin(repo, &["merge-tree", "--write-tree", "--stdin", "--name-only", "--no-messages"], &input)?;
    let mut fields = out.split(|b| *b == 0);
    let mut merges = Vec::with_capacity(pairs.len());
    for _ in pairs {
        let status = fields.next().unwrap_or_default();
        let tree = String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
        let mut files = BTreeSet::new();
        for field in fields.by_ref() {
            if field.is_empty() {
                break;
            }
            files.insert(String::from_utf8_lossy(field).into_owned());
        }
        match status {
            b"1" => merges.push(Merge { clean: true, files: Vec::new(), tree }),
            b"0" => merges.push(Merge { clean: false, files: files.into_iter().collect(), tree }),
            other => {
                let status = String::from_utf8_lossy(other).into_owned();
                return Err(unexpected("merge-tree --stdin", format!("unexpected status `{status}`")));
            }
        }
    }
    Ok(merges)
}

/// The paths changed from each `from` to each `to` (tree ids), in one
/// `git diff-tree --stdin -r --name-only -z` process; answers in order.
///
/// # Errors
/// Git errors.
pub fn touched_many(repo: &Path, pairs: &[(String, String)]) -> Result<Vec<Vec<String>>, GitError> {
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let headers: Vec<String> = pairs.iter().map(|(a, b)| format!("{a} {b}\n")).collect();
    let out = run_stdin(repo, &["diff-tree", "--stdin", "-r", "--name-only", "-z", "--no-renames"], &headers.concat())?;
    let text = String::from_utf8_lossy(&out);
    // Each answer is its input line echoed, then its paths, each ended
    // by NUL; the next answer starts with the next input line.
    let mut at = 0;
    let mut answers = Vec::with_capacity(pairs.len());
    for (i, header) in headers.iter().enumerate() {
        let start = text[at..]
            .find(header.as_str())
            .map(|p| at + p + header.len())
            .ok_or_else(|| unexpected("diff-tree --stdin", format!("no answer for `{}`", header.trim_end())))?;
        let end = match headers.get(i + 1) {
            Some(next) => text[start..].find(next.as_str()).map_or(text.len(), |p| start + p),
            None => text.len(),
        };
        answers.push(text[start..end].split('\0').filter(|p| !p.is_empty()).map(str::to_owned).collect());
        at = end;
    }
    Ok(answers)
}

fn run_stdin(repo: &Path, args: &[&str], input: &str) -> Result<Vec<u8>, GitError> {
    let mut cmd = git::command(repo);
    cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|error| GitError::Spawn { error })?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_owned();
    // Write from a thread: git answers while it reads, and both pipes
    // would fill.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().map_err(|error| GitError::Spawn { error })?;
    let _ = writer.join();
    // merge-tree exits 1 when any merge conflicted; that is an answer.
    if out.status.success() || (args[0] == "merge-tree" && out.status.code() == Some(1)) {
        Ok(out.stdout)
    } else {
        Err(GitError::Failed {
            args: args.join(" "),
            code: out.status.code(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Output git should not have given.
fn unexpected(args: &str, why: String) -> GitError {
    GitError::Failed { args: args.to_owned(), code: None, stderr: why }
}

/// One session as conflict control sees it.
#[derive(Debug, Clone)]
pub struct Side {
    pub id: String,
    pub slug: String,
    /// Its state commit ([`state_commit`]).
    pub state: String,
    /// Its base ref as named, and that ref's commit now.
    pub base: String,
    pub base_tip: String,
    /// Paths (or folders) its brief says it owns; empty: no limit.
    pub owned: Vec<String>,
}

// Its findings are plain data sent to clients: they live in
// [`crate::model`].
pub use crate::model::{ConflictReport as Report, PairConflicts, SessionConflicts};

/// Answers kept between reports (see the module doc).
#[derive(Default)]
pub struct Cache {
    /// Base commit → its tree.
    base_trees: HashMap<String, String>,
    /// (base tip, state) → touched paths.
    touched: HashMap<(String, String), Vec<String>>,
    /// (commit, commit) → merge.
    merges: HashMap<(String, String), Merge>,
    /// Session id → (HEAD, change generation, state commit).
    states: HashMap<String, (String, u64, String)>,
}

/// A worktree whose state commit [`Cache::states`] is asked for.
#[derive(Debug, Clone)]
pub struct Wanted {
    /// The session's id.
    pub id: String,
    /// Its worktree.
    pub path: std::path::PathBuf,
    /// Its `HEAD` commit.
    pub head: String,
    /// The caller's count of changes seen in that worktree; `None`:
    /// unknown, always made again.
    pub generation: Option<u64>,
    /// The paths `git status` listed at that generation, when known
    /// ([`state_commit_given`]).
    pub paths: Option<std::sync::Arc<[String]>>,
}

impl Cache {
    #[must_use]
    pub fn new() -> Cache {
        Cache::default()
    }

    /// The state commits of worktrees that may hold uncommitted work
    /// ([`Wanted`]). A state is reused while its `HEAD` and generation are
    /// what they were; the others are made a few at a time. Answers in
    /// order; `Err` for a worktree git could not read.
    pub fn states(&mut self, wanted: &[Wanted], scratch: &Path) -> Vec<Result<String, GitError>> {
        let known = |cache: &Cache, w: &Wanted| {
            let (h, g, commit) = cache.states.get(&w.id)?;
            (*h == w.head && Some(*g) == w.generation).then(|| commit.clone())
        };
        let todo: Vec<usize> = (0..wanted.len()).filter(|&i| known(self, &wanted[i]).is_none()).collect();
        let threads =
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get).min(todo.len()).max(1);
        let made: Vec<(usize, Result<String, GitError>)> = std::thread::scope(|scope| {
            let chunks: Vec<&[usize]> = todo.chunks(todo.len().div_ceil(threads).max(1)).collect();
            let handles: Vec<_> = chunks
                .into_iter()
                .map(|chunk| {
                    scope.spawn(move || {
                        chunk
                            .iter()
                            .map(|&i| (i, state_commit_given(&wanted[i].path, scratch, wanted[i].paths.as_deref())))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
        });
        let mut out: Vec<Option<Result<String, GitError>>> = (0..wanted.len()).map(|_| None).collect();
        for (i, result) in made {
            if let (Ok(commit), Some(generation)) = (&result, wanted[i].generation) {
                self.states.insert(wanted[i].id.clone(), (wanted[i].head.clone(), generation, commit.clone()));
            }
            out[i] = Some(result);
        }
        out.into_iter()
            .enumerate()
            .map(|(i, r)| {
                r.or_else(|| known(self, &wanted[i]).map(Ok)).unwrap_or_else(|| {
                    Err(GitError::Failed { args: "snapshot".into(), code: None, stderr: "not made".into() })
                })
            })
            .collect()
    }

    /// How many answers it keeps (merges and touched lists).
    #[must_use]
    pub fn len(&self) -> usize {
        self.merges.len() + self.touched.len()
    }

    /// Whether it keeps nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The report for `sides` (all live sessions of the repository at
    /// `repo`), running git only for what the cache lacks: at most one
    /// `merge-tree` for the sessions into their bases, one `rev-parse` and
    /// one `diff-tree` for what each touched, and one `merge-tree` for the
    /// pairs.
    ///
    /// What a session touched is read from its merge into its base: the
    /// paths where that merge's tree differs from the base's (so changes
    /// the base already has do not count, and no merge-base has to be
    /// looked up).
    ///
    /// # Errors
    /// Git errors.
    pub fn report(&mut self, repo: &Path, sides: &[Side]) -> Result<Report, GitError> {
        // Three git processes, the first two at once: every pair of
        // sessions with commits or work of their own; each such session
        // into its base (and each base with itself, which is how its tree
        // id comes back), then what each touched: the base's tree against
        // that merge's.
        let candidates: Vec<usize> = (0..sides.len()).filter(|&i| sides[i].state != sides[i].base_tip).collect();
        let mut pair_index = Vec::new();
        for (x, &i) in candidates.iter().enumerate() {
            for &j in &candidates[x + 1..] {
                let (a, b) = (&sides[i].state, &sides[j].state);
                let key = if a <= b { (a.clone(), b.clone()) } else { (b.clone(), a.clone()) };
                pair_index.push((i, j, key));
            }
        }
        let pairs_missing: Vec<(String, String)> = pair_index
            .iter()
            .map(|(_, _, k)| k.clone())
            .filter(|k| k.0 != k.1 && !self.merges.contains_key(k))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let into_base: Vec<(String, String)> =
            candidates.iter().map(|&i| (sides[i].base_tip.clone(), sides[i].state.clone())).collect();
        let mut first: Vec<(String, String)> = into_base.clone();
        first.extend(
            sides
                .iter()
                .filter(|s| !self.base_trees.contains_key(&s.base_tip))
                .map(|s| (s.base_tip.clone(), s.base_tip.clone())),
        );
        let base_missing: Vec<(String, String)> = first
            .into_iter()
            .filter(|k| !(self.merges.contains_key(k) || (k.0 == k.1 && self.base_trees.contains_key(&k.0))))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let (touched_found, pairs_found) = std::thread::scope(|scope| -> Result<_, GitError> {
            let pairs = scope.spawn(|| merge_many(repo, &pairs_missing));
            for (key, merge) in base_missing.iter().cloned().zip(merge_many(repo, &base_missing)?) {
                if key.0 == key.1 {
                    self.base_trees.insert(key.0, merge.tree);
                } else {
                    self.merges.insert(key, merge);
                }
            }
            let touch_missing: Vec<(String, String)> = into_base
                .iter()
                .filter(|k| !self.touched.contains_key(*k))
                .cloned()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let tree_pairs: Vec<(String, String)> =
                touch_missing.iter().map(|k| (self.base_trees[&k.0].clone(), self.merges[k].tree.clone())).collect();
            let touched =
                touched_many(repo, &tree_pairs).map(|found| touch_missing.into_iter().zip(found).collect::<Vec<_>>());
            Ok((touched, pairs.join().unwrap_or_else(|_| Ok(Vec::new()))))
        })?;
        for (key, paths) in touched_found? {
            self.touched.insert(key, paths);
        }
        for (key, merge) in pairs_missing.into_iter().zip(pairs_found?) {
            self.merges.insert(key, merge);
        }
        let touched: Vec<Vec<String>> = sides
            .iter()
            .map(|s| self.touched.get(&(s.base_tip.clone(), s.state.clone())).cloned().unwrap_or_default())
            .collect();
        // Only sessions that touched something take part in pairs.
        pair_index.retain(|(i, j, _)| !touched[*i].is_empty() && !touched[*j].is_empty());
        let merge_of = |key: &(String, String), cache: &Cache| {
            if key.0 == key.1 {
                Merge { clean: true, files: Vec::new(), tree: String::new() }
            } else {
                cache.merges[key].clone()
            }
        };

        let mut sessions: Vec<SessionConflicts> = sides
            .iter()
            .zip(&touched)
            .map(|(s, t)| SessionConflicts {
                name: s.slug.clone(),
                touched: t.clone(),
                base: s.base.clone(),
                base_conflicts: None,
                outside_owned: if s.owned.is_empty() {
                    Vec::new()
                } else {
                    t.iter().filter(|p| !owns(&s.owned, p)).cloned().collect()
                },
                overlaps_with: Vec::new(),
                conflicts_with: Vec::new(),
            })
            .collect();
        for (i, s) in sides.iter().enumerate() {
            let merge = merge_of(&(s.base_tip.clone(), s.state.clone()), self);
            if !merge.clean {
                sessions[i].base_conflicts = Some(merge.files);
            }
        }
        let mut pairs = Vec::new();
        for (i, j, key) in &pair_index {
            let merge = merge_of(key, self);
            let overlap: Vec<String> = touched[*i].iter().filter(|p| touched[*j].contains(p)).cloned().collect();
            if overlap.is_empty() && merge.clean {
                continue;
            }
            let (a, b) = (sides[*i].slug.clone(), sides[*j].slug.clone());
            if !overlap.is_empty() {
                sessions[*i].overlaps_with.push(b.clone());
                sessions[*j].overlaps_with.push(a.clone());
            }
            if !merge.clean {
                sessions[*i].conflicts_with.push(b.clone());
                sessions[*j].conflicts_with.push(a.clone());
            }
            pairs.push(PairConflicts { a, b, overlap, conflicts: (!merge.clean).then_some(merge.files) });
        }
        let pairs_checked = pair_index.len();
        Ok(Report { sessions, pairs, pairs_checked })
    }
}

/// Whether `path` is one of `owned` or below one of them (a trailing `/`
/// or `/*` on an entry means the same folder).
#[must_use]
pub fn owns(owned: &[String], path: &str) -> bool {
    owned.iter().any(|o| {
        let o = o.trim_end_matches('*').trim_end_matches('/');
        o.is_empty() || path == o || path.strip_prefix(o).is_some_and(|rest| rest.starts_with('/'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_paths_are_files_or_folders() {
        let owned = vec!["src/api/".to_owned(), "README.md".to_owned(), "docs/*".to_owned()];
        assert!(owns(&owned, "src/api/mod.rs"));
        assert!(owns(&owned, "README.md"));
        assert!(owns(&owned, "docs/a/b.md"));
        assert!(!owns(&owned, "src/apis.rs"));
        assert!(!owns(&owned, "src/main.rs"));
    }
}
