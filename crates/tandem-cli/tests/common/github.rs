//! A scripted stand-in for GitHub's REST API on 127.0.0.1, backed by a
//! real bare repository: what the pulls, reviews and check-runs endpoints
//! answer (<https://docs.github.com/en/rest/pulls/pulls>), with `ETag`s
//! and `304 Not Modified` for `If-None-Match`. Opening a pull request
//! writes `refs/pull/N/head` in the bare repository, as GitHub does, so
//! `git fetch origin pull/N/head` works; merging one makes the merge
//! commit with git (`merge-tree`, `commit-tree`) and moves the base
//! branch.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::http::{Request, Server};

/// One pull request as the stand-in keeps it.
#[derive(Debug, Clone)]
pub struct Pull {
    pub number: u64,
    pub head: String,
    pub base: String,
    pub title: String,
    pub body: String,
    pub draft: bool,
    pub open: bool,
    pub merged: bool,
    pub requested_reviewers: Vec<String>,
}

/// One request as answered: method, path, the status sent.
#[derive(Debug, Clone)]
pub struct Answered {
    pub method: String,
    pub path: String,
    pub status: u16,
}

struct Hub {
    bare: PathBuf,
    owner: String,
    name: String,
    token: String,
    pulls: Vec<Pull>,
    /// Check runs by head commit.
    checks: HashMap<String, Vec<Value>>,
    reviews: HashMap<u64, Vec<Value>>,
    log: Vec<Answered>,
}

/// The running stand-in; stops when dropped.
pub struct GitHubStub {
    server: Server,
    hub: Arc<Mutex<Hub>>,
}

impl GitHubStub {
    /// Serves `OWNER/NAME` backed by the bare repository `bare`; requests
    /// must carry `Authorization: Bearer TOKEN` (or `token TOKEN`).
    pub fn start(bare: &Path, owner: &str, name: &str, token: &str) -> GitHubStub {
        let hub = Arc::new(Mutex::new(Hub {
            bare: bare.to_path_buf(),
            owner: owner.to_owned(),
            name: name.to_owned(),
            token: token.to_owned(),
            pulls: Vec::new(),
            checks: HashMap::new(),
            reviews: HashMap::new(),
            log: Vec::new(),
        }));
        let shared = Arc::clone(&hub);
        let server = Server::start(Arc::new(move |req: &Request, stream: &mut TcpStream| {
            let (status, etag, body) = {
                let mut hub = shared.lock().unwrap();
                let (status, etag, body) = hub.answer(req);
                hub.log.push(Answered { method: req.method.clone(), path: req.path.clone(), status });
                (status, etag, body)
            };
            write_response(stream, status, etag.as_deref(), &body)
        }));
        GitHubStub { server, hub }
    }

    /// `http://127.0.0.1:PORT`, the API base URL.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn pulls(&self) -> Vec<Pull> {
        self.hub.lock().unwrap().pulls.clone()
    }

    pub fn log(&self) -> Vec<Answered> {
        self.hub.lock().unwrap().log.clone()
    }

    /// How many answers were `304 Not Modified`.
    pub fn not_modified(&self) -> usize {
        self.log().iter().filter(|a| a.status == 304).count()
    }

    /// Sets the check runs of pull request `number`'s head commit:
    /// `(name, status, conclusion)`.
    pub fn set_checks(&self, number: u64, runs: &[(&str, &str, Option<&str>)]) {
        let mut hub = self.hub.lock().unwrap();
        let head = hub.pulls.iter().find(|p| p.number == number).expect("pull").head.clone();
        let sha = hub.tip(&head).expect("head branch");
        let runs = runs
            .iter()
            .enumerate()
            .map(|(i, (name, status, conclusion))| {
                json!({ "id": i + 1, "name": name, "head_sha": sha, "status": status, "conclusion": conclusion })
            })
            .collect();
        hub.checks.insert(sha, runs);
    }

    /// A review of pull request `number` by `user` (`APPROVED`,
    /// `CHANGES_REQUESTED`, `COMMENTED`).
    pub fn add_review(&self, number: u64, user: &str, state: &str) {
        let mut hub = self.hub.lock().unwrap();
        let list = hub.reviews.entry(number).or_default();
        let id = list.len() + 1;
        list.push(json!({ "id": id, "user": { "login": user }, "state": state, "body": "" }));
    }

    /// Opens a pull request as someone else would, on GitHub's page.
    pub fn open_pull(&self, head: &str, base: &str) -> u64 {
        let mut hub = self.hub.lock().unwrap();
        let (status, body) = hub.create(&json!({ "title": "by hand", "head": head, "base": base }));
        assert_eq!(status, 201, "{body}");
        body["number"].as_u64().expect("number")
    }

    /// Merges pull request `number` as someone on GitHub's page would.
    pub fn merge_now(&self, number: u64) {
        let mut hub = self.hub.lock().unwrap();
        hub.merge(number, "merge", None, "Merged on GitHub").expect("merge");
    }
}

fn write_response(stream: &mut TcpStream, status: u16, etag: Option<&str>, body: &[u8]) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        304 => "Not Modified",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        _ => "Unprocessable Entity",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=utf-8\r\n");
    if let Some(etag) = etag {
        head.push_str(&format!("ETag: {etag}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\nConnection: keep-alive\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

fn etag_of(body: &[u8]) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut h);
    format!("W/\"{:016x}\"", h.finish())
}

fn message(text: &str) -> Value {
    json!({ "message": text, "documentation_url": "https://docs.github.com/rest" })
}

impl Hub {
    fn git(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.bare)
            .args(["-c", "user.name=GitHub", "-c", "user.email=noreply@github.com"])
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    fn tip(&self, branch: &str) -> Option<String> {
        self.git(&["rev-parse", "--verify", "--quiet", &format!("refs/heads/{branch}^{{commit}}")]).ok()
    }

    fn pull_json(&self, p: &Pull) -> Value {
        let head_sha = self.tip(&p.head).unwrap_or_default();
        let base_sha = self.tip(&p.base).unwrap_or_default();
        json!({
            "url": format!("https://api.github.com/repos/{}/{}/pulls/{}", self.owner, self.name, p.number),
            "html_url": format!("https://github.com/{}/{}/pull/{}", self.owner, self.name, p.number),
            "number": p.number,
            "state": if p.open { "open" } else { "closed" },
            "draft": p.draft,
            "merged": p.merged,
            "merged_at": if p.merged { json!("2026-11-23T12:00:00Z") } else { Value::Null },
            "title": p.title,
            "body": p.body,
            "head": { "ref": p.head, "sha": head_sha, "label": format!("{}:{}", self.owner, p.head) },
            "base": { "ref": p.base, "sha": base_sha, "label": format!("{}:{}", self.owner, p.base) },
            "requested_reviewers": p.requested_reviewers.iter().map(|l| json!({ "login": l })).collect::<Vec<_>>(),
            "requested_teams": [],
        })
    }

    /// Status, ETag (for GETs) and body.
    fn answer(&mut self, req: &Request) -> (u16, Option<String>, Vec<u8>) {
        let auth = req.header("authorization").unwrap_or_default();
        if auth != format!("Bearer {}", self.token) && auth != format!("token {}", self.token) {
            return (401, None, message("Bad credentials").to_string().into_bytes());
        }
        let prefix = format!("/repos/{}/{}", self.owner, self.name);
        let Some(route) = req.route().strip_prefix(&prefix) else {
            return (404, None, message("Not Found").to_string().into_bytes());
        };
        let route = route.to_owned();
        let query: HashMap<String, String> = req
            .path
            .split_once('?')
            .map(|(_, q)| q)
            .unwrap_or_default()
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.replace("%2F", "/").replace("%3A", ":")))
            .collect();
        let parts: Vec<&str> = route.trim_start_matches('/').split('/').collect();
        let (status, body) = match (req.method.as_str(), parts.as_slice()) {
            ("POST", ["pulls"]) => self.create(&req.json()),
            ("GET", ["pulls"]) => {
                let head = query.get("head").cloned();
                let open_only = query.get("state").is_none_or(|s| s == "open");
                let list: Vec<Value> = self
                    .pulls
                    .iter()
                    .filter(|p| !open_only || p.open)
                    .filter(|p| head.as_ref().is_none_or(|h| *h == format!("{}:{}", self.owner, p.head)))
                    .map(|p| self.pull_json(p))
                    .collect();
                (200, Value::Array(list))
            }
            ("GET", ["pulls", n]) => match self.find(n) {
                Some(p) => (200, self.pull_json(&p)),
                None => (404, message("Not Found")),
            },
            ("GET", ["pulls", n, "reviews"]) => match self.find(n) {
                Some(p) => (200, Value::Array(self.reviews.get(&p.number).cloned().unwrap_or_default())),
                None => (404, message("Not Found")),
            },
            ("GET", ["commits", sha, "check-runs"]) => {
                let runs = self.checks.get(*sha).cloned().unwrap_or_default();
                (200, json!({ "total_count": runs.len(), "check_runs": runs }))
            }
            ("PUT", ["pulls", n, "merge"]) => {
                let body = req.json();
                match self.find(n) {
                    None => (404, message("Not Found")),
                    Some(p) => {
                        let method = body["merge_method"].as_str().unwrap_or("merge").to_owned();
                        let title = body["commit_title"].as_str().unwrap_or("Merge pull request").to_owned();
                        match self.merge(p.number, &method, body["sha"].as_str(), &title) {
                            Ok(sha) => (
                                200,
                                json!({ "sha": sha, "merged": true, "message": "Pull Request successfully merged" }),
                            ),
                            Err((status, text)) => (status, message(&text)),
                        }
                    }
                }
            }
            _ => (404, message("Not Found")),
        };
        let bytes = body.to_string().into_bytes();
        if req.method != "GET" || status != 200 {
            return (status, None, bytes);
        }
        let etag = etag_of(&bytes);
        if req.header("if-none-match") == Some(etag.as_str()) {
            return (304, Some(etag), Vec::new());
        }
        (200, Some(etag), bytes)
    }

    fn find(&self, n: &str) -> Option<Pull> {
        let n: u64 = n.parse().ok()?;
        self.pulls.iter().find(|p| p.number == n).cloned()
    }

    fn create(&mut self, body: &Value) -> (u16, Value) {
        let invalid = |field: &str| {
            json!({
                "message": "Validation Failed",
                "errors": [{ "resource": "PullRequest", "field": field, "code": "invalid" }],
            })
        };
        let (Some(title), Some(head), Some(base)) =
            (body["title"].as_str(), body["head"].as_str(), body["base"].as_str())
        else {
            return (422, invalid("title"));
        };
        let head = head.rsplit(':').next().unwrap_or(head).to_owned();
        let Some(head_sha) = self.tip(&head) else { return (422, invalid("head")) };
        if self.tip(base).is_none() {
            return (422, invalid("base"));
        }
        if self.pulls.iter().any(|p| p.open && p.head == head) {
            return (
                422,
                json!({
                    "message": "Validation Failed",
                    "errors": [{
                        "resource": "PullRequest",
                        "code": "custom",
                        "message": format!("A pull request already exists for {}:{head}.", self.owner),
                    }],
                }),
            );
        }
        let number = self.pulls.len() as u64 + 1;
        self.git(&["update-ref", &format!("refs/pull/{number}/head"), &head_sha]).expect("update-ref");
        let pull = Pull {
            number,
            head,
            base: base.to_owned(),
            title: title.to_owned(),
            body: body["body"].as_str().unwrap_or_default().to_owned(),
            draft: body["draft"].as_bool().unwrap_or(false),
            open: true,
            merged: false,
            requested_reviewers: Vec::new(),
        };
        let json = self.pull_json(&pull);
        self.pulls.push(pull);
        (201, json)
    }

    /// Merges as GitHub's merge button does: a merge commit (`merge`),
    /// one commit (`squash`), or, for `rebase`, the head's tree as one
    /// commit on the base as well (enough for these tests).
    fn merge(&mut self, number: u64, method: &str, sha: Option<&str>, title: &str) -> Result<String, (u16, String)> {
        let i = self.pulls.iter().position(|p| p.number == number).ok_or((404, "Not Found".to_owned()))?;
        let pull = self.pulls[i].clone();
        if !pull.open || pull.draft {
            return Err((405, "Pull Request is not mergeable".to_owned()));
        }
        let head = self.tip(&pull.head).ok_or((405, "Pull Request is not mergeable".to_owned()))?;
        if sha.is_some_and(|s| s != head) {
            return Err((409, "Head branch was modified. Review and try the merge again.".to_owned()));
        }
        let base = self.tip(&pull.base).ok_or((405, "Base branch is gone".to_owned()))?;
        let tree = self
            .git(&["merge-tree", "--write-tree", &base, &head])
            .map_err(|_| (405, "Pull Request is not mergeable".to_owned()))?;
        let tree = tree.lines().next().unwrap_or_default().to_owned();
        let commit = match method {
            "merge" => self.git(&["commit-tree", &tree, "-p", &base, "-p", &head, "-m", title]),
            _ => self.git(&["commit-tree", &tree, "-p", &base, "-m", title]),
        }
        .map_err(|e| (422, e))?;
        self.git(&["update-ref", &format!("refs/heads/{}", pull.base), &commit, &base]).map_err(|e| (409, e))?;
        let pull = &mut self.pulls[i];
        pull.open = false;
        pull.merged = true;
        Ok(commit)
    }
}
