//! A session's pull request on GitHub: where it goes (the remote's
//! `OWNER/NAME`, the API, the token), what it says by default (title and
//! body from the session's title, brief, commits and history), opening
//! it, and polling its status ([`super::github`] does the HTTP).
//!
//! The repository is read from the remote's configured URL
//! (`remote.<name>.url`), not the URL git uses after `url.<base>.insteadOf`
//! rewrites, so a test (or a mirror) can send the git traffic elsewhere
//! while the API still sees `OWNER/NAME`.

use std::fmt::Write as _;

use super::github::{self, Client, GitHubError, PrState, PrStatus, PullRequest, RepoId};
use crate::config::Config;
use crate::git::{self, GitError};
use crate::store::{EventKind, NewEvent, Session, Store, StoreError};

use crate::ship::{self, ShipError};

/// Why a pull request step cannot go on; each message is one line.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Ship(#[from] ShipError),
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("session `{slug}` already has pull request #{number} open: {url}")]
    HasOpen { slug: String, number: u64, url: String },
    #[error("session `{slug}` has no pull request; open one with `tandem pr {slug}`")]
    NoPull { slug: String },
    #[error("`{base}` is not a branch on `{remote}`; push it first, or make the session from a branch")]
    NoBase { base: String, remote: String },
    #[error("the title is empty; pass some text to --title, or leave it out")]
    EmptyTitle,
}

/// Where a session's pull request lives: the remote it is pushed to, the
/// repository on GitHub, and a client with a token.
pub struct Target {
    pub remote: String,
    pub repo: RepoId,
    pub client: Client,
}

/// The API base URL: `TANDEM_GITHUB_API_URL` is already folded into
/// `config` by the config layers.
fn api_url(config: &Config) -> &str {
    &config.github.api_url
}

/// The GitHub repository `remote`'s configured URL names.
///
/// # Errors
/// [`GitHubError::NotGitHub`] when it names none.
pub fn repo_of_remote(dir: &std::path::Path, config: &Config, remote: &str) -> Result<RepoId, PullError> {
    let url = git::config_get(dir, &format!("remote.{remote}.url"))?.unwrap_or_default();
    let hosts = github::hosts(&config.github.host, api_url(config));
    github::repo_from_url(&url, &hosts)
        .ok_or_else(|| GitHubError::NotGitHub { remote: remote.to_owned(), url: url.clone() }.into())
}

/// Finds everything a pull request needs, before anything changes:
/// the remote ([`ShipError::NoRemote`]), its GitHub repository
/// ([`GitHubError::NotGitHub`]) and a token ([`GitHubError::NoToken`];
/// `env` looks up the caller's environment).
///
/// # Errors
/// As above.
pub fn target(session: &Session, config: &Config, env: &dyn Fn(&str) -> Option<String>) -> Result<Target, PullError> {
    let remote = ship::push_remote(session)?;
    let repo = repo_of_remote(ship::worktree(session)?, config, &remote)?;
    let api = api_url(config);
    let token = github::token(env, &github::token_host(api))?;
    Ok(Target { remote, repo, client: Client::new(api, token) })
}

/// The branch a pull request merges into: the session's base branch when
/// the remote has it, else the remote's default branch.
///
/// # Errors
/// [`PullError::NoBase`] when neither is known.
pub fn base_branch(session: &Session, remote: &str) -> Result<String, PullError> {
    let dir = ship::worktree(session)?;
    let base = ship::merge_target(session)?;
    if git::resolve_commit(dir, &format!("refs/remotes/{remote}/{base}"))?.is_some() {
        return Ok(base);
    }
    match git::remote_head(dir, remote)? {
        Some(head) if base == "HEAD" || git::resolve_commit(dir, &format!("refs/heads/{base}"))?.is_none() => Ok(head),
        _ => Err(PullError::NoBase { base, remote: remote.to_owned() }),
    }
}

/// The default title and body of a session's pull request. Title: the
/// session's title, else its only commit's subject, else its brief's
/// first line (72 characters at most), else its name. Body: the brief
/// (the first prompt), the archive summary if any, the commits, the
/// diffstat and what the agent did (commands run, files changed), and a
/// line saying which session it came from.
///
/// # Errors
/// Git and store errors.
pub fn default_text(store: &Store, session: &Session, base: &str) -> Result<(String, String), PullError> {
    let dir = ship::worktree(session)?;
    let from = git::merge_base(dir, base, "HEAD")?.unwrap_or_else(|| session.base_commit.clone());
    let log = git::read(dir, &["log", "--reverse", "--format=%h %s", &format!("{from}..HEAD")])?;
    let commits: Vec<&str> = log.lines().filter(|l| !l.is_empty()).collect();
    let stat = git::read(dir, &["diff", "--shortstat", &from, "HEAD"])?;
    let events = store.events(&session.id, 0, 100_000)?;
    let brief = events.iter().find(|e| e.kind == EventKind::Prompt).map(|e| e.text.trim().to_owned());
    let count = |kind: EventKind| events.iter().filter(|e| e.kind == kind).count();

    let first_line = |text: &str| -> String {
        let line = text.lines().next().unwrap_or_default().trim();
        match line.char_indices().nth(72) {
            Some((i, _)) => format!("{}…", line[..i].trim_end()),
            None => line.to_owned(),
        }
    };
    let title = match (&session.meta.title, commits.as_slice(), &brief) {
        (Some(title), _, _) => title.clone(),
        (None, [only], _) => only.split_once(' ').map_or(*only, |(_, s)| s).to_owned(),
        (None, _, Some(brief)) if !brief.is_empty() => first_line(brief),
        _ => session.slug.clone(),
    };

    let mut body = String::new();
    if let Some(brief) = brief.filter(|b| !b.is_empty()) {
        body.push_str("## Brief\n\n");
        for line in brief.lines() {
            let _ = writeln!(body, "> {line}");
        }
        body.push('\n');
    }
    if let Some(summary) = session.summary.as_deref().filter(|s| !s.trim().is_empty()) {
        let _ = writeln!(body, "## Summary\n\n{}\n", summary.trim());
    }
    if !commits.is_empty() {
        body.push_str("## Commits\n\n");
        for c in &commits {
            let _ = writeln!(body, "- {c}");
        }
        body.push('\n');
    }
    if !stat.trim().is_empty() {
        let _ = writeln!(body, "{}\n", stat.trim());
    }
    let (calls, files) = (count(EventKind::ToolCall), count(EventKind::FileChange));
    if calls + files > 0 {
        let _ = writeln!(body, "The agent made {calls} tool call(s) and {files} file change(s).\n");
    }
    let _ = write!(body, "---\nOpened with tandem from session `{}` (agent: {}).", session.slug, session.agent);
    Ok((title, body))
}

/// The status of a pull request just opened or read once.
#[must_use]
pub fn status_of(pull: &PullRequest) -> PrStatus {
    PrStatus {
        number: pull.number,
        url: pull.url.clone(),
        state: pull.state,
        checks: github::Checks::None,
        review: if pull.reviewers_requested { github::Review::ReviewRequired } else { github::Review::None },
        checked_at: crate::unix_now(),
    }
}

/// Refuses a second pull request: one recorded for the session and
/// still open, or one GitHub has open for its branch.
///
/// # Errors
/// [`PullError::HasOpen`], [`GitHubError::Exists`], API errors.
pub fn check_none_open(target: &Target, session: &Session) -> Result<(), PullError> {
    if let Some(number) = session.pr_number.and_then(|n| u64::try_from(n).ok()) {
        match target.client.pull(&target.repo, number) {
            Ok(pull) if matches!(pull.state, PrState::Open | PrState::Draft) => {
                return Err(PullError::HasOpen { slug: session.slug.clone(), number, url: pull.url });
            }
            Ok(_) | Err(GitHubError::Api { status: 404, .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(pull) = target.client.open_pull_for(&target.repo, &session.branch)? {
        return Err(GitHubError::Exists { number: pull.number, branch: session.branch.clone(), url: pull.url }.into());
    }
    Ok(())
}

/// Records a pull request as the session's, with a `ship` event in its
/// history.
///
/// # Errors
/// Store errors.
pub fn record(store: &Store, session: &Session, status: &PrStatus, what: &str) -> Result<(), PullError> {
    store.set_pr(&session.id, status.number, Some(status))?;
    store.add_events(&[NewEvent {
        session_id: &session.id,
        kind: EventKind::Ship,
        text: format!("{what} pull request #{}: {}", status.number, status.url),
        data: Some(serde_json::to_value(status).unwrap_or_default()),
        indexed: true,
    }])?;
    Ok(())
}

/// What changed between two statuses of a session's pull request, as a
/// history line, when its state moved (`pull request #4 was merged`).
#[must_use]
pub fn state_change(old: Option<&PrStatus>, new: &PrStatus) -> Option<String> {
    if old.is_some_and(|o| o.state == new.state) {
        return None;
    }
    let what = match new.state {
        PrState::Merged => "was merged",
        PrState::Closed => "was closed",
        PrState::Draft if old.is_none() => return None,
        PrState::Draft => "is a draft again",
        PrState::Open if old.is_none() => return None,
        PrState::Open => "is open",
    };
    Some(format!("pull request #{} {what}", new.number))
}

/// What [`open`] is asked: a draft or not, and the title and body
/// (`None`: [`default_text`]'s).
#[derive(Debug, Clone, Copy, Default)]
pub struct PullOptions<'a> {
    pub draft: bool,
    pub title: Option<&'a str>,
    pub body: Option<&'a str>,
}

/// The pull request [`open`] opened: its status as recorded, where it
/// lives (for the supervisor to watch) and the branch it merges into.
pub struct Opened {
    pub status: PrStatus,
    pub target: Target,
    pub base: String,
    /// `opened pull request #12 (open) for BRANCH into BASE`: GitHub's
    /// answer, untrusted; escape it to show.
    pub line: String,
    /// Its page on GitHub (untrusted).
    pub url: String,
}

/// Pushes the session's branch and opens its pull request (`tandem pr`,
/// the dashboard's "Open PR"), recording its number and status. Every
/// refusal comes before the push: a protected branch, an empty title, no
/// remote, no token, one already open, no base on the remote. `env`
/// looks up the caller's environment (the token); `step` is called with
/// the slow step about to start (`pushing BRANCH to REMOTE`, `opening
/// the pull request`), for a spinner.
///
/// # Errors
/// [`PullError`].
pub fn open(
    store: &Store,
    repo: &crate::repo::Repository,
    config: &Config,
    session: &Session,
    options: PullOptions<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    step: &mut dyn FnMut(&str),
) -> Result<Opened, PullError> {
    if crate::git::is_protected(&repo.root, &config.branch.protected, &session.branch)? {
        return Err(ShipError::Protected { branch: session.branch.clone() }.into());
    }
    if options.title.is_some_and(|t| t.trim().is_empty()) {
        return Err(PullError::EmptyTitle);
    }
    // Everything that can refuse does so before the push.
    let target = target(session, config, env)?;
    check_none_open(&target, session)?;
    let base = base_branch(session, &target.remote)?;
    let (title, body) = match (options.title, options.body) {
        (Some(t), Some(b)) => (t.trim().to_owned(), b.to_owned()),
        _ => {
            let (title, body) = default_text(store, session, &base)?;
            (options.title.map_or(title, str::to_owned), options.body.map_or(body, str::to_owned))
        }
    };
    step(&format!("pushing {} to {}", session.branch, target.remote));
    ship::push(session, &target.remote)?;
    step("opening the pull request");
    let new = github::NewPull { title: &title, body: &body, head: &session.branch, base: &base, draft: options.draft };
    let opened = target.client.create_pull(&target.repo, &new)?;
    let status = status_of(&opened);
    record(store, session, &status, "opened")?;
    let line = format!("opened pull request #{} ({}) for {} into {base}", opened.number, opened.state, session.branch);
    Ok(Opened { status, target, base, line, url: opened.url })
}
