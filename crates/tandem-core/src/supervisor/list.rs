//! `tandem list` (and the agent view's rows): a repository's sessions
//! with their git facts from the cache ([`super::watch`]), conflict
//! marks ([`super::conflicts::marks`]) and notes on what the store has
//! lost track of.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Config;
use crate::protocol::{Listed, Response};
use crate::repo::Repository;
use crate::rows::table::{self, ListView};
use crate::session::{self, SessionError};
use crate::store::{Session, SessionState};

use super::{State, conflicts};

/// The sessions of the repository `cwd` is in, archived ones when
/// `archived` (their ref facts only), else the others; with `messages`,
/// each one's agent's last message.
pub(super) fn list(
    state: &Arc<State>,
    cwd: &std::path::Path,
    archived: bool,
    messages: bool,
) -> Result<Response, SessionError> {
    Ok(Response::Listed(Box::new(listed(state, cwd, archived, messages)?.1)))
}

/// `tandem list`'s text for the repository `cwd` is in, as `view` shows
/// it: the rows of [`list`]'s answer, made here ([`crate::rows::rows`],
/// which reads each PTY log's time and checks each host) with the
/// `supervisor.quiet_secs` the client would load ([`ListView::env`]),
/// and rendered by [`crate::rows::table::frame`]. The same rows and text
/// the CLI makes from [`list`]'s answer, without sending 200 sessions to
/// it.
pub(super) fn list_text(state: &Arc<State>, cwd: &std::path::Path, view: &ListView) -> Result<Response, SessionError> {
    let (repo, listed) = listed(state, cwd, view.archived, view.json)?;
    let quiet = quiet_secs(state, Some(&repo), &view.env)?;
    let Listed { root, sessions, facts, notes, conflicts, conflicts_current, messages } = listed;
    let now = crate::unix_now();
    let stale = !conflicts.sessions.is_empty() && !conflicts_current;
    let mut rows = crate::rows::rows(&state.paths, &sessions, facts, &conflicts, quiet, now, messages);
    if view.json || view.all {
        for r in &mut rows {
            r.repo = Some(root.clone());
        }
    }
    Ok(Response::Text(table::frame(rows, now, view, stale, notes)))
}

/// `tandem status`'s counts ([`crate::rows::tally`]): of the sessions of
/// the repository `cwd` is in, or with `None` of every live one, with
/// the `supervisor.quiet_secs` of the user's config and the client's
/// variables `env` (the repositories' own are not read, as `tandem
/// status` without a supervisor reads none).
pub(super) fn tally(
    state: &Arc<State>,
    cwd: Option<&std::path::Path>,
    env: &[(String, String)],
) -> Result<Response, SessionError> {
    let sessions = match cwd {
        Some(cwd) => {
            let repo = state.discover(cwd)?;
            // A repository whose `.tandem.toml` does not load is refused,
            // as the client refuses it without a supervisor.
            state.config(&repo)?;
            match state.kept_repos()?.iter().find(|(_, c, _)| same_dir(c, &repo.common_dir)) {
                Some((id, _, _)) => state.kept_sessions(*id)?,
                None => Arc::default(),
            }
        }
        None => state.kept_tallied()?,
    };
    let quiet = quiet_secs(state, None, env).unwrap_or_else(|_| Config::defaults().supervisor.quiet_secs);
    Ok(Response::Tally(crate::rows::tally(&state.paths, &sessions, crate::unix_now(), quiet)))
}

/// Whether the common dir `stored` (as the store keeps it) is `dir`: the
/// comparison `Store::find_repo` makes, of the paths as (lossy) text.
fn same_dir(stored: &std::path::Path, dir: &std::path::Path) -> bool {
    stored.to_string_lossy() == dir.to_string_lossy()
}

/// `supervisor.quiet_secs` as a client whose config variables are `env`
/// ([`crate::config::config_env`]) loads it: the user's config, then
/// `repo`'s `.tandem.toml` when given, then `env`. From the supervisor's
/// cached config ([`State::config`]) when `env` is its own.
fn quiet_secs(
    state: &State,
    repo: Option<&Repository>,
    env: &[(String, String)],
) -> Result<u64, crate::config::ConfigError> {
    // The supervisor's environment is fixed for its life.
    static OWN: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
    if let Some(repo) = repo
        && env == OWN.get_or_init(crate::config::config_env).as_slice()
    {
        return Ok(state.config(repo)?.supervisor.quiet_secs);
    }
    let lookup = |var: &str| env.iter().find(|(name, _)| name == var).map(|(_, value)| value.clone());
    let local = repo.map(|r| r.root.join(".tandem.toml"));
    Ok(Config::load_with_env(&state.paths.config_dir.join("config.toml"), local.as_deref(), lookup)?
        .supervisor
        .quiet_secs)
}

/// [`list`]'s answer, with the repository found from `cwd`.
fn listed(
    state: &Arc<State>,
    cwd: &std::path::Path,
    archived: bool,
    messages: bool,
) -> Result<(Repository, Listed), SessionError> {
    let repo = state.discover(cwd)?;
    let mut notes = Vec::new();
    let repos = state.kept_repos()?;
    for (id, common_dir, root) in repos.iter() {
        let orphans = if common_dir.exists() { 0 } else { state.kept_sessions(*id)?.len() };
        if orphans > 0 {
            notes.push(format!(
                "{orphans} session(s) belong to the repository that was at {} and is gone; if you moved it, run `tandem doctor --fix` in its new place",
                root.display()
            ));
        }
    }
    // As `Store::find_repo`: the repository recorded with this common dir.
    let mut sessions = match repos.iter().find(|(_, common_dir, _)| same_dir(common_dir, &repo.common_dir)) {
        Some((id, _, _)) => state.kept_sessions(*id)?.as_ref().clone(),
        None => Vec::new(),
    };
    if let Some((count, dir)) = unowned_folders(state, &repo, &sessions) {
        notes.push(format!(
            "{count} folder(s) in {} belong to no session (the database may have lost them); `tandem doctor` explains, `tandem doctor --fix` adopts the worktrees among them",
            dir.display()
        ));
    }
    sessions.retain(|s| (s.state == SessionState::Archived) == archived);
    if sessions.is_empty() {
        // No git for nothing (the agent view asks for the archived rows
        // on every change, and there are usually none).
        let listed = Listed { root: repo.root.clone(), sessions, notes, conflicts_current: true, ..Listed::default() };
        return Ok((repo, listed));
    }
    // The last messages here, kept until the next commit: a client
    // would open the database for them (issue 23). One that cannot be
    // read is left out, not the rows.
    let messages = if messages {
        let ids: Vec<&str> = sessions.iter().map(|s| s.id.as_str()).collect();
        state.kept_messages(&ids)?
    } else {
        Vec::new()
    };
    let refs: Vec<&Session> = sessions.iter().collect();
    let (facts, (conflicts, conflicts_current)) = if archived {
        let tips = session::facts::ref_tips(&repo.root).unwrap_or_default();
        let facts =
            session::facts::ref_facts(&repo.root, &refs, &tips, session::facts::remote_base(&repo.root).as_deref())
                .into_iter()
                .map(|refs| session::facts::GitFacts { refs, ..Default::default() })
                .collect();
        (facts, (crate::conflicts::Report::default(), true))
    } else {
        for s in &refs {
            session::sync_sandboxed_unless_busy(&state.paths, &repo, s);
        }
        let (facts, tips) = state.facts.query_and_tips(&repo, &refs);
        let exists: Vec<bool> = facts.iter().map(|f| f.worktree.exists).collect();
        let marks = conflicts::marks(state, &repo, &sessions, &exists, &tips);
        (facts, marks)
    };
    let listed = Listed { root: repo.root.clone(), sessions, facts, notes, conflicts, conflicts_current, messages };
    Ok((repo, listed))
}

/// How many folders of tandem's worktrees folder for `repo` no session of
/// `sessions` (the repository's, archived ones too) has, and that folder;
/// `None` when none. One `read_dir`, no git: cheap enough for every
/// `list` (issue 17, finding 7: a lost database leaves its sessions'
/// worktrees there).
fn unowned_folders(state: &State, repo: &Repository, sessions: &[Session]) -> Option<(usize, PathBuf)> {
    let config = state.config(repo).ok()?;
    let dir = session::worktrees_dir(&state.paths, repo, &config);
    let known: std::collections::HashSet<&std::ffi::OsStr> =
        sessions.iter().filter(|s| s.path.parent() == Some(dir.as_path())).filter_map(|s| s.path.file_name()).collect();
    let count = std::fs::read_dir(&dir)
        .ok()?
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.') && e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| !known.contains(e.file_name().as_os_str()) && !sessions.iter().any(|s| s.path == e.path()))
        .count();
    (count > 0).then_some((count, dir))
}
