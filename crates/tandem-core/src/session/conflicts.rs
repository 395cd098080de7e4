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
//! - what each touched: one `git diff-tree --stdin` over (fork point,
//!   state) tree pairs, the fork point being the merge-base of the state
//!   and the base's tip now;
//! - whether each pair merges, and each session into its base: one
//!   `git merge-tree --write-tree --stdin` over the commit pairs
//!   (git-merge-tree(1), INPUT FORMAT and OUTPUT: per line
//!   `<status>NUL<tree>NUL(<path>NUL)*NUL`, status 1 clean, 0 conflicted).
//!
//! A [`Cache`] keeps every answer by the commit ids it was computed from
//! (a commit id names its tree and its history, so a cached answer is
//! never stale), and each session's state commit by what made it (its
//! `HEAD` and the caller's change generation for its worktree): only what
//! changed is recomputed. A session with no changes of its own takes part
//! in no pair.

use std::collections::{BTreeSet, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
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
    let head = git::read(worktree, &["rev-parse", "HEAD"])?;
    let index = scratch.join(format!("conflicts-index-{}-{:?}", std::process::id(), std::thread::current().id()));
    let own = PathBuf::from(git::read(worktree, &["rev-parse", "--path-format=absolute", "--git-path", "index"])?);
    let result = (|| {
        if std::fs::copy(&own, &index).is_err() {
            let mut cmd = git::command(worktree);
            cmd.env("GIT_INDEX_FILE", &index).args(["read-tree", "HEAD"]);
            git::output(cmd)?;
        }
        let mut add = git::command(worktree);
        add.env("GIT_INDEX_FILE", &index).args(["add", "--all", "--", "."]);
        git::output(add)?;
        let mut write = git::command(worktree);
        write.env("GIT_INDEX_FILE", &index).arg("write-tree");
        let tree = String::from_utf8_lossy(&git::output(write)?.stdout).trim().to_owned();
        if tree == git::read(worktree, &["rev-parse", "HEAD^{tree}"])? {
            return Ok(head.clone());
        }
        let mut commit = git::command(worktree);
        commit.envs(SNAPSHOT_ENV).args(["commit-tree", &tree, "-p", &head, "-m", "tandem: worktree state"]);
        Ok(String::from_utf8_lossy(&git::output(commit)?.stdout).trim().to_owned())
    })();
    let _ = std::fs::remove_file(&index);
    result
}

/// Whether two commits merge, and the conflicted paths when not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merge {
    pub clean: bool,
    pub files: Vec<String>,
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
        let _tree = fields.next();
        let mut files = BTreeSet::new();
        for field in fields.by_ref() {
            if field.is_empty() {
                break;
            }
            files.insert(String::from_utf8_lossy(field).into_owned());
        }
        match status {
            b"1" => merges.push(Merge { clean: true, files: Vec::new() }),
            b"0" => merges.push(Merge { clean: false, files: files.into_iter().collect() }),
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

/// What conflict control found for one session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionConflicts {
    pub name: String,
    /// Paths it changed since its fork point with its base, committed or
    /// not.
    pub touched: Vec<String>,
    pub base: String,
    /// Paths that would conflict if it were merged into its base now;
    /// `None` when it merges cleanly (or has nothing to merge).
    pub base_conflicts: Option<Vec<String>>,
    /// Touched paths outside the paths its brief owns.
    pub outside_owned: Vec<String>,
    /// Sessions it shares touched paths with, and those it would conflict
    /// with.
    pub overlaps_with: Vec<String>,
    pub conflicts_with: Vec<String>,
}

/// Two sessions that touched the same paths, or would conflict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairConflicts {
    pub a: String,
    pub b: String,
    /// Paths both touched.
    pub overlap: Vec<String>,
    /// Paths their merge would conflict in; `None` when it is clean.
    pub conflicts: Option<Vec<String>>,
}

/// Every session's findings and every pair that overlaps or conflicts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub sessions: Vec<SessionConflicts>,
    pub pairs: Vec<PairConflicts>,
    /// How many pairs were checked (sessions with changes of their own).
    pub pairs_checked: usize,
}

/// How many `git merge-base` processes run at once.
const FORK_THREADS: usize = 4;

/// Answers kept between reports (see the module doc).
#[derive(Default)]
pub struct Cache {
    /// (state commit, base tip) → fork point commit.
    forks: HashMap<(String, String), String>,
    /// (fork, state) → touched paths.
    touched: HashMap<(String, String), Vec<String>>,
    /// (commit, commit) → merge.
    merges: HashMap<(String, String), Merge>,
    /// Session id → (HEAD, change generation, state commit).
    states: HashMap<String, (String, u64, String)>,
}

impl Cache {
    #[must_use]
    pub fn new() -> Cache {
        Cache::default()
    }

    /// The state commit of a session's worktree, reused while its `HEAD`
    /// and `generation` (the caller's count of changes seen in the
    /// worktree; `None`: unknown, always recompute) are what they were.
    ///
    /// # Errors
    /// Git errors.
    pub fn state(
        &mut self,
        id: &str,
        worktree: &Path,
        head: &str,
        generation: Option<u64>,
        scratch: &Path,
    ) -> Result<String, GitError> {
        if let (Some(generation), Some((h, g, commit))) = (generation, self.states.get(id))
            && h == head
            && *g == generation
        {
            return Ok(commit.clone());
        }
        let commit = state_commit(worktree, scratch)?;
        if let Some(generation) = generation {
            self.states.insert(id.to_owned(), (head.to_owned(), generation, commit.clone()));
        }
        Ok(commit)
    }

    /// How many answers it keeps (merges, touched lists, fork points).
    #[must_use]
    pub fn len(&self) -> usize {
        self.merges.len() + self.touched.len() + self.forks.len()
    }

    /// Whether it keeps nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The report for `sides` (all live sessions of the repository at
    /// `repo`), running git only for what the cache lacks.
    ///
    /// # Errors
    /// Git errors.
    pub fn report(&mut self, repo: &Path, sides: &[Side]) -> Result<Report, GitError> {
        // Fork points: one `git merge-base` per new (state, base) pair,
        // a few at a time.
        let missing: Vec<(String, String)> = sides
            .iter()
            .map(|s| (s.state.clone(), s.base_tip.clone()))
            .filter(|k| !self.forks.contains_key(k))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let found: Vec<Result<String, GitError>> = std::thread::scope(|scope| {
            let chunk = missing.len().div_ceil(FORK_THREADS).max(1);
            let handles: Vec<_> = missing
                .chunks(chunk)
                .map(|keys| {
                    scope.spawn(move || {
                        keys.iter()
                            .map(|(state, base)| {
                                if state == base {
                                    return Ok(state.clone());
                                }
                                Ok(git::merge_base(repo, state, base)?.unwrap_or_else(|| base.clone()))
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
        });
        for (key, fork) in missing.into_iter().zip(found) {
            self.forks.insert(key, fork?);
        }
        let fork = |s: &Side, cache: &Cache| cache.forks[&(s.state.clone(), s.base_tip.clone())].clone();
        // Touched paths, the missing ones in one process.
        let missing: Vec<(String, String)> = sides
            .iter()
            .map(|s| (fork(s, self), s.state.clone()))
            .filter(|k| k.0 != k.1 && !self.touched.contains_key(k))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !missing.is_empty() {
            let mut revs: Vec<String> = Vec::new();
            for (a, b) in &missing {
                revs.push(format!("{a}^{{tree}}"));
                revs.push(format!("{b}^{{tree}}"));
            }
            let mut args = vec!["rev-parse".to_owned()];
            args.extend(revs);
            let trees: Vec<String> = git::read(repo, &args)?.lines().map(str::to_owned).collect();
            let tree_pairs: Vec<(String, String)> = trees.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect();
            for (key, paths) in missing.into_iter().zip(touched_many(repo, &tree_pairs)?) {
                self.touched.insert(key, paths);
            }
        }
        let touched: Vec<Vec<String>> = sides
            .iter()
            .map(|s| {
                let f = fork(s, self);
                if f == s.state { Vec::new() } else { self.touched[&(f, s.state.clone())].clone() }
            })
            .collect();
        // Merges: each session with work into its base, and each pair of
        // sessions with work.
        let working: Vec<usize> = (0..sides.len()).filter(|&i| !touched[i].is_empty()).collect();
        let mut wanted: Vec<(String, String)> = Vec::new();
        for &i in &working {
            wanted.push((sides[i].base_tip.clone(), sides[i].state.clone()));
        }
        let mut pair_index = Vec::new();
        for (x, &i) in working.iter().enumerate() {
            for &j in &working[x + 1..] {
                let (a, b) = (&sides[i].state, &sides[j].state);
                let key = if a <= b { (a.clone(), b.clone()) } else { (b.clone(), a.clone()) };
                pair_index.push((i, j, key.clone()));
                wanted.push(key);
            }
        }
        let missing: Vec<(String, String)> = wanted
            .iter()
            .filter(|k| k.0 != k.1 && !self.merges.contains_key(*k))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        for (key, merge) in missing.iter().cloned().zip(merge_many(repo, &missing)?) {
            self.merges.insert(key, merge);
        }
        let merge_of = |key: &(String, String), cache: &Cache| {
            if key.0 == key.1 { Merge { clean: true, files: Vec::new() } } else { cache.merges[key].clone() }
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
        for &i in &working {
            let merge = merge_of(&(sides[i].base_tip.clone(), sides[i].state.clone()), self);
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
