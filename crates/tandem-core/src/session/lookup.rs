//! Finding the session a user means: the one resolver every command
//! and the supervisor use ([`resolve`]).
//!
//! A session is found, in this order, by its name (slug), a name it had
//! before `tandem rename` (an alias), its branch, and its title's slug
//! when only one session has that title. `REPO/NAME` finds it in another
//! repository tandem knows (REPO: the folder name of the repository's
//! main worktree); outside any repository a bare NAME is looked for in
//! all of them. Without a NAME, the session whose worktree the command
//! runs in is meant, as `git` and `jj` use the current folder.
//! A name that finds nothing gets the closest one (edit distance over
//! names, branches, titles and aliases) as "did you mean".

use std::path::{Path, PathBuf};

use super::SessionError;
use super::slugs::slugify;
use crate::repo::{RepoError, Repository};
use crate::store::{Session, Store, StoreError};

/// Why no single session was found.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// Nothing has this name. `scope`: "in this repository", or "in any
    /// repository" when looked for everywhere; `suggestion`: the closest
    /// name (hint: "did you mean").
    #[error("no session named `{name}` {scope}")]
    NotFound { name: String, scope: &'static str, suggestion: Option<String> },
    /// More than one session has this title (or name in several
    /// repositories); `candidates`: what to type for each.
    #[error("`{name}` names more than one session: {}", quoted(candidates))]
    Ambiguous { name: String, candidates: Vec<String> },
    /// No NAME, and the command runs in no session's worktree;
    /// `sessions`: what could be typed (hint).
    #[error("no session name given, and {} is in no session's worktree", here.display())]
    NotInSession { here: PathBuf, sessions: Vec<String> },
    /// `REPO/NAME` with a REPO tandem does not know; `known`: the ones it
    /// knows.
    #[error("tandem knows no repository `{repo}`")]
    NoSuchRepo { repo: String, known: Vec<String> },
}

/// `a`, `b` and `c` in backquotes, comma-separated.
fn quoted(names: &[String]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

impl LookupError {
    /// The hints: the closest name, or what to type.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            LookupError::NotFound { suggestion: Some(s), .. } => {
                vec![format!("did you mean `{s}`? (`tandem list` shows the sessions)")]
            }
            LookupError::NotFound { .. } => vec!["`tandem list` shows the sessions".to_owned()],
            LookupError::Ambiguous { .. } => vec!["type one of them".to_owned()],
            LookupError::NotInSession { sessions, .. } if sessions.is_empty() => {
                vec!["start one with `tandem new NAME`".to_owned()]
            }
            LookupError::NotInSession { sessions, .. } => {
                vec![format!("name one: {} (or run the command in its worktree)", quoted(sessions))]
            }
            LookupError::NoSuchRepo { known, .. } if known.is_empty() => {
                vec!["pass the repository's folder with `--repo PATH`".to_owned()]
            }
            LookupError::NoSuchRepo { known, .. } => {
                vec![format!("known repositories: {}; or pass its folder with `--repo PATH`", quoted(known))]
            }
        }
    }
}

/// The session `name` finds from `cwd` (see the module doc); `None`:
/// the session whose worktree `cwd` is in. Removed sessions are never
/// found; archived ones are.
///
/// # Errors
/// [`SessionError::Lookup`]; outside any repository with nothing found,
/// the [`SessionError::Repo`] that says so; store errors.
pub fn resolve(store: &Store, cwd: &Path, name: Option<&str>) -> Result<Session, SessionError> {
    let here = Repository::discover(cwd);
    let repo_id = match &here {
        Ok(repo) => store.find_repo(&repo.common_dir)?,
        Err(_) => None,
    };
    let Some(name) = name else {
        return here_session(store, cwd, here, repo_id);
    };
    let local = match repo_id {
        Some(repo_id) => match find(store, repo_id, name)? {
            Ok(session) => return Ok(session),
            Err(e) => Some(e),
        },
        None => None,
    };
    if let Some((repo, rest)) = name.split_once('/')
        && !repo.is_empty()
        && !rest.is_empty()
    {
        let repos = repos_named(store, repo)?;
        if !repos.is_empty() {
            return one_of(store, &repos, rest, name, "in that repository");
        }
        if local.is_none() {
            let known = store.repos()?.iter().map(|(_, _, root)| repo_name(root)).collect();
            return Err(LookupError::NoSuchRepo { repo: repo.to_owned(), known }.into());
        }
    }
    if let Some(e) = local {
        return Err(e.into());
    }
    // In a git repository tandem has no session of yet: a bare NAME
    // means a session of this one, never another repository's.
    if here.is_ok() {
        return Err(
            LookupError::NotFound { name: name.to_owned(), scope: "in this repository", suggestion: None }.into()
        );
    }
    // Outside any repository: every repository's sessions.
    let all: Vec<i64> = store.repos()?.iter().map(|(id, _, _)| *id).collect();
    match one_of(store, &all, name, name, "in any repository") {
        Err(SessionError::Lookup(LookupError::NotFound { suggestion: None, .. })) if here.is_err() => {
            Err(here.err().map_or_else(|| SessionError::NotFound { name: name.to_owned() }, SessionError::Repo))
        }
        other => other,
    }
}

/// The repository a session belongs to: the folder name of its main
/// worktree, what `REPO/NAME` takes.
#[must_use]
pub fn repo_name(root: &Path) -> String {
    root.file_name().map_or_else(|| root.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// The ids of the repositories whose main worktree's folder is called
/// `name` (or whose root is `name` as a path).
fn repos_named(store: &Store, name: &str) -> Result<Vec<i64>, StoreError> {
    Ok(store
        .repos()?
        .into_iter()
        .filter(|(_, _, root)| repo_name(root) == name || root == Path::new(name))
        .map(|(id, _, _)| id)
        .collect())
}

/// `name` looked for in each of `repos`: one session, else ambiguous
/// (candidates as `REPO/NAME`), else not found with the closest name.
fn one_of(store: &Store, repos: &[i64], name: &str, typed: &str, scope: &'static str) -> Result<Session, SessionError> {
    let mut found = Vec::new();
    let mut suggestion: Option<(usize, String)> = None;
    for &repo_id in repos {
        match find(store, repo_id, name)? {
            Ok(session) => found.push(session),
            Err(LookupError::Ambiguous { candidates, .. }) => {
                return Err(LookupError::Ambiguous { name: typed.to_owned(), candidates }.into());
            }
            Err(_) => {
                if let Some(s) = closest(&keys(store, repo_id)?, name)
                    && suggestion.as_ref().is_none_or(|(d, _)| strsim::levenshtein(name, &s) < *d)
                {
                    suggestion = Some((strsim::levenshtein(name, &s), s));
                }
            }
        }
    }
    if found.len() > 1 {
        let mut candidates = Vec::new();
        for s in &found {
            let root = store.repo_root(s.repo_id)?.unwrap_or_default();
            candidates.push(format!("{}/{}", repo_name(&root), s.slug));
        }
        return Err(LookupError::Ambiguous { name: typed.to_owned(), candidates }.into());
    }
    found.pop().ok_or_else(|| {
        LookupError::NotFound { name: typed.to_owned(), scope, suggestion: suggestion.map(|(_, s)| s) }.into()
    })
}

/// The session named `name` in one repository: by name, alias, branch,
/// then title slug. The outer `Result` is the store's.
///
/// # Errors
/// [`StoreError`].
pub fn find(store: &Store, repo_id: i64, name: &str) -> Result<Result<Session, LookupError>, StoreError> {
    if let Some(session) = store.session_by_slug(repo_id, name)? {
        return Ok(Ok(session));
    }
    let sessions = store.sessions(repo_id)?;
    for (alias, id) in store.aliases(repo_id)? {
        if alias == name
            && let Some(session) = sessions.iter().find(|s| s.id == id)
        {
            return Ok(Ok(session.clone()));
        }
    }
    if let Some(session) = sessions.iter().find(|s| s.branch == name) {
        return Ok(Ok(session.clone()));
    }
    let titled: Vec<&Session> =
        sessions.iter().filter(|s| s.meta.title.as_deref().is_some_and(|t| slugify(t) == name)).collect();
    match titled.as_slice() {
        [one] => return Ok(Ok((*one).clone())),
        [] => {}
        many => {
            let candidates = many.iter().map(|s| s.slug.clone()).collect();
            return Ok(Err(LookupError::Ambiguous { name: name.to_owned(), candidates }));
        }
    }
    let suggestion = closest(&keys(store, repo_id)?, name);
    Ok(Err(LookupError::NotFound { name: name.to_owned(), scope: "in this repository", suggestion }))
}

/// Everything that finds a session of the repository: names, aliases,
/// branches and title slugs.
fn keys(store: &Store, repo_id: i64) -> Result<Vec<String>, StoreError> {
    let sessions = store.sessions(repo_id)?;
    let mut keys: Vec<String> = sessions.iter().map(|s| s.slug.clone()).collect();
    keys.extend(
        store.aliases(repo_id)?.into_iter().filter(|(_, id)| sessions.iter().any(|s| &s.id == id)).map(|(a, _)| a),
    );
    keys.extend(sessions.iter().map(|s| s.branch.clone()));
    keys.extend(sessions.iter().filter_map(|s| s.meta.title.as_deref().map(slugify)));
    Ok(keys)
}

/// The key closest to `name` by edit distance, when close enough to be
/// a typo: at most a third of the longer one's length (and at least 1).
#[must_use]
pub fn closest(keys: &[String], name: &str) -> Option<String> {
    keys.iter()
        .filter(|k| !k.is_empty())
        .map(|k| (strsim::levenshtein(name, k), k))
        .filter(|(d, k)| *d <= (name.len().max(k.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.clone())
}

/// The session whose worktree `cwd` is in.
fn here_session(
    store: &Store,
    cwd: &Path,
    here: Result<Repository, RepoError>,
    repo_id: Option<i64>,
) -> Result<Session, SessionError> {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    if let (Ok(repo), Some(repo_id)) = (&here, repo_id) {
        let worktree = canonical(&repo.worktree);
        let sessions = store.sessions(repo_id)?;
        if let Some(session) = sessions.iter().find(|s| canonical(&s.path) == worktree) {
            return Ok(session.clone());
        }
        let names = sessions.iter().map(|s| s.slug.clone()).collect();
        return Err(LookupError::NotInSession { here: cwd.to_path_buf(), sessions: names }.into());
    }
    // Outside any repository tandem knows: every session, as REPO/NAME.
    let mut names = Vec::new();
    for (id, _, root) in store.repos()? {
        names.extend(store.sessions(id)?.iter().map(|s| format!("{}/{}", repo_name(&root), s.slug)));
    }
    if names.is_empty()
        && let Err(e) = here
    {
        return Err(e.into());
    }
    Err(LookupError::NotInSession { here: cwd.to_path_buf(), sessions: names }.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closest_key_is_a_typo_away() {
        let keys = ["slow".to_owned(), "fast-lane".to_owned(), "tandem/fix-login".to_owned()];
        assert_eq!(closest(&keys, "slo").as_deref(), Some("slow"));
        assert_eq!(closest(&keys, "fast-lame").as_deref(), Some("fast-lane"));
        assert_eq!(closest(&keys, "something-else"), None);
    }
}
