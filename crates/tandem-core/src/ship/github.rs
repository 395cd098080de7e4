// Whole on purpose (issue 18): one REST client and its watcher, 548 lines of code and their tests; the endpoints share its errors, token and conditional requests.
//! GitHub's REST API, as much of it as shipping a session needs: open a
//! pull request, find an open one for a branch, read its state, checks
//! and reviews (with conditional requests), and merge it.
//!
//! Sources: the REST reference for pulls
//! (<https://docs.github.com/en/rest/pulls/pulls>), reviews
//! (<https://docs.github.com/en/rest/pulls/reviews>) and check runs
//! (<https://docs.github.com/en/rest/checks/runs>); conditional requests
//! (`ETag` / `If-None-Match`, a `304 Not Modified` costs no rate limit)
//! from "Best practices for using the REST API". The API base URL is
//! `https://api.github.com`, or `https://HOST/api/v3` on GitHub
//! Enterprise Server.
//!
//! A token comes from `GH_TOKEN`, then `GITHUB_TOKEN` (for an Enterprise
//! host also `GH_ENTERPRISE_TOKEN` / `GITHUB_ENTERPRISE_TOKEN`, as `gh`
//! reads them), else from `gh auth token --hostname HOST` when `gh` is
//! installed.

use std::collections::HashMap;
use std::fmt;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How long one API request may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Why a GitHub step failed; each message is one line that says what to
/// do.
#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    #[error("no GitHub token: set GH_TOKEN or GITHUB_TOKEN, or log in with `gh auth login`")]
    NoToken,
    #[error(
        "remote `{remote}` ({url}) is not a GitHub repository; for GitHub Enterprise set `github.api_url` (and `github.host`) in tandem's config"
    )]
    NotGitHub { remote: String, url: String },
    #[error("cannot reach GitHub at {api}: {why}")]
    Unreachable { api: String, why: String },
    #[error("GitHub refused the token (HTTP {status}: {message}); check it with `gh auth status` or set GH_TOKEN")]
    Unauthorized { status: u16, message: String },
    #[error("GitHub answered HTTP {status}: {message}")]
    Api { status: u16, message: String },
    #[error("pull request #{number} is already open for `{branch}`: {url}")]
    Exists { number: u64, branch: String, url: String },
    #[error("pull request #{number} cannot be merged: {message}")]
    NotMergeable { number: u64, message: String },
}

/// A repository on GitHub, as `OWNER/NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoId {
    pub owner: String,
    pub name: String,
}

impl fmt::Display for RepoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// The repository a remote URL names when its host is one of `hosts`
/// (compared without case): `https://HOST/OWNER/NAME(.git)`,
/// `ssh://[user@]HOST[:port]/OWNER/NAME(.git)`, `git://…`, or git's
/// scp-like `[user@]HOST:OWNER/NAME(.git)`. `None` for anything else.
#[must_use]
pub fn repo_from_url(url: &str, hosts: &[String]) -> Option<RepoId> {
    let url = url.trim();
    let (host, path) = if let Some((_, rest)) = url.split_once("://") {
        let (authority, path) = rest.split_once('/')?;
        let host = authority.rsplit('@').next()?;
        let host = host.split(':').next()?;
        (host, path)
    } else {
        // scp-like: no slash before the first colon.
        let (authority, path) = url.split_once(':')?;
        if authority.contains('/') {
            return None;
        }
        (authority.rsplit('@').next()?, path)
    };
    if !hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
        return None;
    }
    let path = path.trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    let (owner, name) = path.split_once('/')?;
    if owner.is_empty() || name.is_empty() || name.contains('/') {
        return None;
    }
    Some(RepoId { owner: owner.to_owned(), name: name.to_owned() })
}

/// The hosts whose remote URLs are taken as GitHub's: `host` (the
/// `github.host` setting), `github.com`, and the host of `api_url` when it
/// is not `api.github.com` (GitHub Enterprise serves both from one host).
#[must_use]
pub fn hosts(host: &str, api_url: &str) -> Vec<String> {
    let mut hosts = vec![host.to_owned()];
    if !host.eq_ignore_ascii_case("github.com") {
        hosts.push("github.com".to_owned());
    }
    let api_host = api_url.split_once("://").map_or(api_url, |(_, r)| r);
    let api_host = api_host.split(['/', ':']).next().unwrap_or_default();
    if !api_host.is_empty() && !api_host.eq_ignore_ascii_case("api.github.com") {
        hosts.push(api_host.to_owned());
    }
    hosts
}

/// The host a token is for: `github.com` for `https://api.github.com`,
/// else the API URL's own host (GitHub Enterprise Server).
#[must_use]
pub fn token_host(api_url: &str) -> String {
    let rest = api_url.split_once("://").map_or(api_url, |(_, r)| r);
    let host = rest.split(['/', ':']).next().unwrap_or_default();
    if host.is_empty() || host.eq_ignore_ascii_case("api.github.com") {
        "github.com".to_owned()
    } else {
        host.to_owned()
    }
}

/// A token for `host` from `env` (see the module doc), else from
/// `gh auth token --hostname HOST`.
///
/// # Errors
/// [`GitHubError::NoToken`] when neither has one.
pub fn token(env: &dyn Fn(&str) -> Option<String>, host: &str) -> Result<String, GitHubError> {
    let mut names = vec!["GH_TOKEN", "GITHUB_TOKEN"];
    if !host.eq_ignore_ascii_case("github.com") {
        names.extend(["GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN"]);
    }
    if let Some(token) = names.iter().filter_map(|n| env(n)).map(|t| t.trim().to_owned()).find(|t| !t.is_empty()) {
        return Ok(token);
    }
    let out = Command::new("gh")
        .args(["auth", "token", "--hostname", host])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    match out {
        Ok(out) if out.status.success() => {
            let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if token.is_empty() { Err(GitHubError::NoToken) } else { Ok(token) }
        }
        _ => Err(GitHubError::NoToken),
    }
}

// A pull request's status is plain data stored with its session and
// sent to clients: it lives in [`crate::model`].
pub use crate::model::{Checks, PrState, PrStatus, Review};

/// A pull request as tandem needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    pub number: u64,
    /// Its page (`html_url`).
    pub url: String,
    pub state: PrState,
    pub title: String,
    /// The head branch and its commit.
    pub head_ref: String,
    pub head_sha: String,
    /// The branch it merges into.
    pub base_ref: String,
    /// Whether reviewers or teams are requested and have not reviewed.
    pub reviewers_requested: bool,
}

impl PullRequest {
    /// Reads GitHub's pull request object.
    fn from_json(v: &Value) -> Option<PullRequest> {
        let state = match (v["state"].as_str()?, v["merged"].as_bool() == Some(true) || !v["merged_at"].is_null()) {
            (_, true) => PrState::Merged,
            ("closed", false) => PrState::Closed,
            _ if v["draft"].as_bool() == Some(true) => PrState::Draft,
            _ => PrState::Open,
        };
        let requested = |k: &str| v[k].as_array().is_some_and(|a| !a.is_empty());
        Some(PullRequest {
            number: v["number"].as_u64()?,
            url: v["html_url"].as_str().unwrap_or_default().to_owned(),
            state,
            title: v["title"].as_str().unwrap_or_default().to_owned(),
            head_ref: v["head"]["ref"].as_str().unwrap_or_default().to_owned(),
            head_sha: v["head"]["sha"].as_str().unwrap_or_default().to_owned(),
            base_ref: v["base"]["ref"].as_str().unwrap_or_default().to_owned(),
            reviewers_requested: requested("requested_reviewers") || requested("requested_teams"),
        })
    }
}

/// What to open: `POST /repos/{owner}/{repo}/pulls`.
#[derive(Debug, Clone)]
pub struct NewPull<'a> {
    pub title: &'a str,
    pub body: &'a str,
    /// The branch with the changes.
    pub head: &'a str,
    /// The branch to merge into.
    pub base: &'a str,
    pub draft: bool,
}

/// How the merge API lands a pull request (`merge_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeMethod {
    Merge,
    Squash,
    Rebase,
}

/// A conditional GET's answer.
#[derive(Debug)]
enum Fetched {
    Changed { body: Value, etag: Option<String> },
    NotModified,
}

/// A GitHub REST client for one API base URL and token.
pub struct Client {
    agent: ureq::Agent,
    api: String,
    token: String,
}

impl Client {
    /// A client for `api_url` (no trailing slash needed). Requests to a
    /// loopback host never go through a proxy.
    #[must_use]
    pub fn new(api_url: &str, token: String) -> Client {
        let api = api_url.trim_end_matches('/').to_owned();
        let loopback = ["://127.0.0.1", "://localhost", "://[::1]"].iter().any(|h| api.contains(h));
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(TIMEOUT))
            .user_agent(concat!("tandem/", env!("CARGO_PKG_VERSION")));
        if loopback {
            config = config.proxy(None);
        }
        Client { agent: config.build().into(), api, token }
    }

    /// The API base URL, without a trailing slash.
    #[must_use]
    pub fn api(&self) -> &str {
        &self.api
    }

    /// The token it sends.
    #[must_use]
    pub fn token(&self) -> &str {
        &self.token
    }

    fn send(&self, method: &str, path: &str, body: Option<&Value>, etag: Option<&str>) -> Result<Fetched, GitHubError> {
        let url = format!("{}{path}", self.api);
        let unreachable = |e: ureq::Error| GitHubError::Unreachable { api: self.api.clone(), why: e.to_string() };
        let auth = format!("Bearer {}", self.token);
        let with_headers = |req: ureq::RequestBuilder<ureq::typestate::WithoutBody>| {
            let req = req
                .header("Accept", "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28")
                .header("Authorization", &auth);
            match etag {
                Some(tag) => req.header("If-None-Match", tag),
                None => req,
            }
        };
        let with_body_headers = |req: ureq::RequestBuilder<ureq::typestate::WithBody>| {
            req.header("Accept", "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28")
                .header("Authorization", &auth)
        };
        let response = match (method, body) {
            ("GET", _) => with_headers(self.agent.get(&url)).call(),
            ("POST", Some(body)) => with_body_headers(self.agent.post(&url)).send_json(body),
            ("PUT", Some(body)) => with_body_headers(self.agent.put(&url)).send_json(body),
            _ => unreachable!("unsupported request {method}"),
        };
        let mut response = response.map_err(unreachable)?;
        let status = response.status().as_u16();
        if status == 304 {
            return Ok(Fetched::NotModified);
        }
        let etag = response.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let text = response.body_mut().read_to_string().map_err(unreachable)?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(Fetched::Changed { body, etag });
        }
        let message = api_message(&body).unwrap_or_else(|| text.trim().chars().take(200).collect());
        Err(match status {
            401 | 403 if !message.to_lowercase().contains("rate limit") => {
                GitHubError::Unauthorized { status, message }
            }
            _ => GitHubError::Api { status, message },
        })
    }

    fn get(&self, path: &str, etag: Option<&str>) -> Result<Fetched, GitHubError> {
        self.send("GET", path, None, etag)
    }

    fn changed(fetched: Fetched) -> Value {
        match fetched {
            Fetched::Changed { body, .. } => body,
            Fetched::NotModified => Value::Null,
        }
    }

    /// Opens a pull request.
    ///
    /// # Errors
    /// [`GitHubError::Exists`] when one is already open for `head`
    /// (GitHub's 422), other API and transport errors.
    pub fn create_pull(&self, repo: &RepoId, pull: &NewPull<'_>) -> Result<PullRequest, GitHubError> {
        let body = json!({
            "title": pull.title,
            "body": pull.body,
            "head": pull.head,
            "base": pull.base,
            "draft": pull.draft,
        });
        match self.send("POST", &format!("/repos/{repo}/pulls"), Some(&body), None) {
            Ok(fetched) => PullRequest::from_json(&Client::changed(fetched)).ok_or_else(|| GitHubError::Api {
                status: 201,
                message: "the answer was not a pull request".to_owned(),
            }),
            Err(GitHubError::Api { status: 422, message }) if message.contains("already exists") => {
                match self.open_pull_for(repo, pull.head)? {
                    Some(pr) => {
                        Err(GitHubError::Exists { number: pr.number, branch: pull.head.to_owned(), url: pr.url })
                    }
                    None => Err(GitHubError::Api { status: 422, message }),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The open pull request whose head is `branch` of `repo`'s owner,
    /// if any (`GET /repos/{owner}/{repo}/pulls?head=OWNER:BRANCH`).
    ///
    /// # Errors
    /// API and transport errors.
    pub fn open_pull_for(&self, repo: &RepoId, branch: &str) -> Result<Option<PullRequest>, GitHubError> {
        let path = format!("/repos/{repo}/pulls?state=open&head={}:{}", repo.owner, query_escape(branch));
        let list = Client::changed(self.get(&path, None)?);
        Ok(list.as_array().and_then(|a| a.first()).and_then(PullRequest::from_json))
    }

    /// One pull request.
    ///
    /// # Errors
    /// API and transport errors (404 when there is none).
    pub fn pull(&self, repo: &RepoId, number: u64) -> Result<PullRequest, GitHubError> {
        let body = Client::changed(self.get(&format!("/repos/{repo}/pulls/{number}"), None)?);
        PullRequest::from_json(&body)
            .ok_or_else(|| GitHubError::Api { status: 200, message: "the answer was not a pull request".to_owned() })
    }

    /// Merges a pull request (`PUT /repos/{owner}/{repo}/pulls/{n}/merge`),
    /// only if its head is still `sha`. Returns the merge commit.
    ///
    /// # Errors
    /// [`GitHubError::NotMergeable`] for GitHub's 405 (not mergeable:
    /// conflicts, failing required checks, missing reviews) and 409 (the
    /// head moved); other API and transport errors.
    pub fn merge(
        &self,
        repo: &RepoId,
        number: u64,
        method: MergeMethod,
        sha: &str,
        title: Option<&str>,
    ) -> Result<String, GitHubError> {
        let method = match method {
            MergeMethod::Merge => "merge",
            MergeMethod::Squash => "squash",
            MergeMethod::Rebase => "rebase",
        };
        let mut body = json!({ "merge_method": method, "sha": sha });
        if let Some(title) = title {
            body["commit_title"] = json!(title);
        }
        match self.send("PUT", &format!("/repos/{repo}/pulls/{number}/merge"), Some(&body), None) {
            Ok(fetched) => Ok(Client::changed(fetched)["sha"].as_str().unwrap_or_default().to_owned()),
            Err(GitHubError::Api { status: 405 | 409, message }) => Err(GitHubError::NotMergeable { number, message }),
            Err(e) => Err(e),
        }
    }
}

/// GitHub's error text: `message`, then each of `errors[].message`.
fn api_message(body: &Value) -> Option<String> {
    let mut text = body["message"].as_str()?.to_owned();
    for e in body["errors"].as_array().into_iter().flatten() {
        if let Some(m) = e["message"].as_str().or_else(|| e["code"].as_str()) {
            text.push_str(": ");
            text.push_str(m);
        }
    }
    Some(text)
}

/// Percent-encodes what a query value cannot hold as is.
fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The check runs of a commit, taken together (see [`Checks`]).
fn checks_of(body: &Value) -> Checks {
    let runs = body["check_runs"].as_array().map(Vec::as_slice).unwrap_or_default();
    if runs.is_empty() {
        return Checks::None;
    }
    let failed = ["failure", "timed_out", "cancelled", "action_required", "startup_failure"];
    if runs.iter().any(|r| r["conclusion"].as_str().is_some_and(|c| failed.contains(&c))) {
        Checks::Failing
    } else if runs.iter().any(|r| r["status"].as_str() != Some("completed")) {
        Checks::Pending
    } else {
        Checks::Passing
    }
}

/// The review decision from a pull request's reviews, in the order GitHub
/// lists them (oldest first); see [`Review`].
fn review_of(reviews: &Value, requested: bool) -> Review {
    let mut latest: HashMap<&str, &str> = HashMap::new();
    for r in reviews.as_array().into_iter().flatten() {
        let (Some(user), Some(state)) = (r["user"]["login"].as_str(), r["state"].as_str()) else { continue };
        if matches!(state, "APPROVED" | "CHANGES_REQUESTED" | "DISMISSED") {
            latest.insert(user, state);
        }
    }
    if latest.values().any(|s| *s == "CHANGES_REQUESTED") {
        Review::ChangesRequested
    } else if latest.values().any(|s| *s == "APPROVED") {
        Review::Approved
    } else if requested {
        Review::ReviewRequired
    } else {
        Review::None
    }
}

/// One resource as last fetched: its `ETag` and what it said.
#[derive(Debug, Clone)]
struct Seen<T> {
    etag: Option<String>,
    value: T,
}

/// Keeps the last answers and `ETag`s for the pull requests it watches, so
/// a poll asks GitHub with `If-None-Match` and an unchanged resource costs
/// a `304` (no rate limit) and no parsing.
#[derive(Default)]
pub struct Watcher {
    pulls: HashMap<(RepoId, u64), Seen<PullRequest>>,
    checks: HashMap<(RepoId, String), Seen<Checks>>,
    reviews: HashMap<(RepoId, u64), Seen<Value>>,
}

impl Watcher {
    #[must_use]
    pub fn new() -> Watcher {
        Watcher::default()
    }

    /// The pull request's status now: the pull request, then the check
    /// runs of its head commit and its reviews (the last two only while
    /// it is open), each a conditional request.
    ///
    /// # Errors
    /// API and transport errors.
    pub fn status(&mut self, client: &Client, repo: &RepoId, number: u64) -> Result<PrStatus, GitHubError> {
        let key = (repo.clone(), number);
        let path = format!("/repos/{repo}/pulls/{number}");
        let etag = self.pulls.get(&key).and_then(|s| s.etag.clone());
        let pull = match client.get(&path, etag.as_deref())? {
            Fetched::Changed { body, etag } => {
                let pull = PullRequest::from_json(&body).ok_or_else(|| GitHubError::Api {
                    status: 200,
                    message: "the answer was not a pull request".to_owned(),
                })?;
                self.pulls.insert(key.clone(), Seen { etag, value: pull.clone() });
                pull
            }
            Fetched::NotModified => match self.pulls.get(&key) {
                Some(seen) => seen.value.clone(),
                None => return Err(GitHubError::Api { status: 304, message: "not modified, nothing cached".into() }),
            },
        };
        let (mut checks, mut review) = (Checks::None, Review::None);
        if matches!(pull.state, PrState::Open | PrState::Draft) {
            if !pull.head_sha.is_empty() {
                let key = (repo.clone(), pull.head_sha.clone());
                let path = format!("/repos/{repo}/commits/{}/check-runs?per_page=100", pull.head_sha);
                let etag = self.checks.get(&key).and_then(|s| s.etag.clone());
                checks = match client.get(&path, etag.as_deref())? {
                    Fetched::Changed { body, etag } => {
                        let checks = checks_of(&body);
                        self.checks.insert(key, Seen { etag, value: checks });
                        checks
                    }
                    Fetched::NotModified => self.checks.get(&key).map_or(Checks::None, |s| s.value),
                };
            }
            let path = format!("/repos/{repo}/pulls/{number}/reviews?per_page=100");
            let etag = self.reviews.get(&key).and_then(|s| s.etag.clone());
            let reviews = match client.get(&path, etag.as_deref())? {
                Fetched::Changed { body, etag } => {
                    self.reviews.insert(key.clone(), Seen { etag, value: body.clone() });
                    body
                }
                Fetched::NotModified => self.reviews.get(&key).map(|s| s.value.clone()).unwrap_or(Value::Null),
            };
            review = review_of(&reviews, pull.reviewers_requested);
        }
        Ok(PrStatus { number, url: pull.url, state: pull.state, checks, review, checked_at: crate::unix_now() })
    }

    /// Forgets what it keeps for pull requests not in `live`.
    pub fn retain(&mut self, live: &[(RepoId, u64)]) {
        self.pulls.retain(|k, _| live.contains(k));
        self.reviews.retain(|k, _| live.contains(k));
        let heads: Vec<(RepoId, String)> =
            self.pulls.iter().map(|((repo, _), seen)| (repo.clone(), seen.value.head_sha.clone())).collect();
        self.checks.retain(|k, _| heads.contains(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gh() -> Vec<String> {
        hosts("github.com", "https://api.github.com")
    }

    #[test]
    fn remote_urls_name_owner_and_repository() {
        let want = Some(RepoId { owner: "octo".into(), name: "hello-world".into() });
        for url in [
            "https://github.com/octo/hello-world.git",
            "https://github.com/octo/hello-world",
            "https://user:pw@github.com/octo/hello-world/",
            "git@github.com:octo/hello-world.git",
            "ssh://git@github.com:22/octo/hello-world.git",
            "git://GitHub.com/octo/hello-world",
        ] {
            assert_eq!(repo_from_url(url, &gh()), want, "{url}");
        }
        for url in [
            "https://gitlab.com/octo/hello-world.git",
            "/srv/git/hello.git",
            "https://github.com/octo",
            "https://github.com/octo/a/b",
            "./relative:path/x",
        ] {
            assert_eq!(repo_from_url(url, &gh()), None, "{url}");
        }
    }

    #[test]
    fn enterprise_hosts_come_from_the_setting_and_the_api_url() {
        let hosts = hosts("github.com", "https://ghe.example.com/api/v3");
        assert_eq!(hosts, ["github.com", "ghe.example.com"]);
        assert!(repo_from_url("git@ghe.example.com:team/app.git", &hosts).is_some());
        let hosts = super::hosts("code.corp", "http://127.0.0.1:9999");
        assert_eq!(hosts, ["code.corp", "github.com", "127.0.0.1"]);
    }

    #[test]
    fn pull_request_states_checks_and_review_decisions() {
        let pr = |state: &str, draft: bool, merged: bool| {
            PullRequest::from_json(&json!({
                "number": 7, "html_url": "u", "state": state, "draft": draft, "merged": merged,
                "merged_at": if merged { json!("2026-01-01T00:00:00Z") } else { Value::Null },
                "title": "t", "head": {"ref": "b", "sha": "s"}, "base": {"ref": "main"},
                "requested_reviewers": [],
            }))
            .unwrap()
            .state
        };
        assert_eq!(pr("open", false, false), PrState::Open);
        assert_eq!(pr("open", true, false), PrState::Draft);
        assert_eq!(pr("closed", false, true), PrState::Merged);
        assert_eq!(pr("closed", false, false), PrState::Closed);

        let runs = |v: Value| checks_of(&json!({ "check_runs": v }));
        assert_eq!(runs(json!([])), Checks::None);
        assert_eq!(runs(json!([{"status": "completed", "conclusion": "success"}])), Checks::Passing);
        assert_eq!(
            runs(
                json!([{"status": "in_progress", "conclusion": null}, {"status": "completed", "conclusion": "success"}])
            ),
            Checks::Pending
        );
        assert_eq!(
            runs(json!([{"status": "in_progress"}, {"status": "completed", "conclusion": "failure"}])),
            Checks::Failing
        );

        let review = |v: Value, requested| review_of(&v, requested);
        let r = |user: &str, state: &str| json!({"user": {"login": user}, "state": state});
        assert_eq!(review(json!([]), false), Review::None);
        assert_eq!(review(json!([]), true), Review::ReviewRequired);
        assert_eq!(review(json!([r("a", "APPROVED"), r("b", "COMMENTED")]), false), Review::Approved);
        assert_eq!(review(json!([r("a", "CHANGES_REQUESTED"), r("a", "APPROVED")]), false), Review::Approved);
        assert_eq!(review(json!([r("a", "APPROVED"), r("b", "CHANGES_REQUESTED")]), false), Review::ChangesRequested);
        assert_eq!(review(json!([r("a", "APPROVED"), r("a", "DISMISSED")]), true), Review::ReviewRequired);
    }

    #[test]
    fn tokens_come_from_the_environment_first() {
        let env = |k: &str| (k == "GITHUB_TOKEN").then(|| " tok \n".to_owned());
        assert_eq!(token(&env, "github.com").unwrap(), "tok");
        let env = |k: &str| (k == "GH_ENTERPRISE_TOKEN").then(|| "ent".to_owned());
        assert_eq!(token(&env, "ghe.example.com").unwrap(), "ent");
    }
}
