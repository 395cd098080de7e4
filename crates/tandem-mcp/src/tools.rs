//! The tools: their schemas ([`list`]) and their calls ([`Server::call`]),
//! each a blocking call into [`Tandem`] answering JSON text, or the
//! error's text (the CLI's message) when refused.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tandem_core::client::{ClientError, Tandem, created_json};
use tandem_core::config::Config;
use tandem_core::error::{Failure, Kinded};
use tandem_core::protocol::{CreateRequest, TaskNewRequest};
use tandem_core::rows::{SessionRow, columns};
use tandem_core::session::{self, SessionError};
use tandem_core::ship::{self, Against};
use tandem_core::store::{Session, SessionState};

/// The most of a patch `get_diff` answers, in bytes; a longer one is cut
/// on a line end and the answer says `"truncated": true`.
pub const PATCH_LIMIT: usize = 256 * 1024;
/// Events `get_history` answers when no `limit` is given.
pub const HISTORY_DEFAULT: usize = 200;
/// The most events `get_history` answers in one call (and the page size
/// a history resource is read in).
pub const HISTORY_MAX: usize = 1000;
/// The terminal size a session made here starts with (rows, columns).
const SIZE: (u16, u16) = (24, 80);

/// The session running this server, as its environment names it.
#[derive(Debug, Clone)]
pub enum Creator {
    /// `TANDEM_SESSION_ID`.
    Id(String),
    /// `TANDEM_SESSION` (its name), looked up from the server's folder.
    Name(String),
}

/// What the tools share: the client, the folder names are looked up
/// from, and the session that runs the server.
pub struct Server {
    tandem: Tandem,
    cwd: PathBuf,
    creator: Option<Creator>,
}

/// A history resource: `tandem://session/<id>/history`.
pub struct HistoryResource {
    /// `tandem://session/<id>/history`.
    pub uri: String,
    /// The session's name.
    pub name: String,
    /// Which session, in which repository, and the format.
    pub description: String,
}

/// Why a call was refused: its text is what the client is answered.
type Refusal = String;

/// An error as the CLI says it: its message (causes included), then
/// each hint after `; `.
fn refuse<E: Kinded>(e: E) -> Refusal {
    Failure::of(&e).to_string()
}

/// A tool's arguments, read as `T`; a bad one is refused naming what is
/// wrong.
fn args<T: DeserializeOwned>(tool: &str, value: Value) -> Result<T, Refusal> {
    serde_json::from_value(value).map_err(|e| format!("bad arguments to {tool}: {e}; tools/list gives its schema"))
}

fn pretty(value: &impl serde::Serialize) -> Result<String, Refusal> {
    serde_json::to_string_pretty(value).map_err(|e| e.to_string())
}

/// `repo` and `name`, every session tool's arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Named {
    name: String,
    #[serde(default)]
    repo: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Where {
    #[serde(default)]
    repo: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListArgs {
    #[serde(default)]
    repo: Option<PathBuf>,
    #[serde(default)]
    archived: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewArgs {
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    base: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    repo: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendArgs {
    name: String,
    text: String,
    #[serde(default)]
    repo: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryArgs {
    name: String,
    #[serde(default)]
    after: i64,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    repo: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiffArgs {
    name: String,
    #[serde(default)]
    against: Option<String>,
    #[serde(default)]
    uncommitted: bool,
    #[serde(default)]
    repo: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerArgs {
    name: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    repo: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskNewArgs {
    objective: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    trials: Option<usize>,
    #[serde(default)]
    agents: Vec<String>,
    #[serde(default)]
    base: Option<String>,
    #[serde(default)]
    check: Option<String>,
    #[serde(default)]
    owns: Vec<String>,
    #[serde(default)]
    repo: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskShowArgs {
    task: String,
    #[serde(default)]
    no_check: bool,
    #[serde(default)]
    repo: Option<PathBuf>,
}

impl Server {
    /// `cwd`: where names are looked up and sessions made without a
    /// `repo` argument.
    #[must_use]
    pub fn new(tandem: Tandem, cwd: PathBuf, creator: Option<Creator>) -> Server {
        Server { tandem, cwd, creator }
    }

    /// Runs tool `tool` with `arguments` (a JSON object): its answer's
    /// text, or why it was refused.
    ///
    /// # Errors
    /// The refusal's text: an unknown tool, bad arguments, or the
    /// [`ClientError`] (as the CLI prints it).
    pub fn call(&self, tool: &str, arguments: Value) -> Result<String, Refusal> {
        match tool {
            "list_sessions" => self.list_sessions(args(tool, arguments)?),
            "new_session" => self.new_session(args(tool, arguments)?),
            "send_prompt" => self.send_prompt(args(tool, arguments)?),
            "get_history" => self.get_history(args(tool, arguments)?),
            "get_diff" => self.get_diff(args(tool, arguments)?),
            "list_checkpoints" => self.list_checkpoints(args(tool, arguments)?),
            "session_state" => self.session_state(args(tool, arguments)?),
            "approve" => self.answer(args(tool, arguments)?, true),
            "deny" => self.answer(args(tool, arguments)?, false),
            "conflicts" => self.conflicts(args(tool, arguments)?),
            "task_new" => self.task_new(args(tool, arguments)?),
            "task_show" => self.task_show(args(tool, arguments)?),
            other => Err(format!(
                "unknown tool `{other}`; the tools are {}",
                TOOLS.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// The folder a call looks things up from: `repo` (relative to the
    /// server's folder), else the server's folder.
    fn cwd(&self, repo: Option<&Path>) -> Result<PathBuf, Refusal> {
        let Some(repo) = repo else { return Ok(self.cwd.clone()) };
        let dir = self.cwd.join(repo);
        if !dir.is_dir() {
            return Err(format!("`{}` is not a folder; pass a repository's folder as `repo`", dir.display()));
        }
        Ok(dir)
    }

    /// The session `name` finds, as `tandem <command> NAME` finds it
    /// (also `REPO/NAME`), with its repository's config.
    fn named(&self, named: &Named) -> Result<(PathBuf, Config, Session), Refusal> {
        let cwd = self.cwd(named.repo.as_deref())?;
        let (repo, config, session) = self.tandem.session(&cwd, &named.name).map_err(refuse)?;
        Ok((repo.root, config, session))
    }

    /// The listed row of `session` (with its last message).
    fn row(&self, root: &Path, config: &Config, session: &Session) -> Result<(SessionRow, i64), Refusal> {
        let listing = self.tandem.rows(root, false, config.supervisor.quiet_secs, true).map_err(refuse)?;
        let row = listing.rows.into_iter().find(|r| r.id == session.id).ok_or_else(|| {
            format!(
                "session `{}` is not among the repository's live sessions; `list_sessions` shows them",
                session.slug
            )
        })?;
        Ok((SessionRow { repo: Some(root.to_owned()), ..row }, listing.now))
    }

    fn list_sessions(&self, a: ListArgs) -> Result<String, Refusal> {
        let cwd = self.cwd(a.repo.as_deref())?;
        let (repo, config) = session::open_repo(&self.tandem.paths, &cwd).map_err(refuse)?;
        let listing = self.tandem.rows(&repo.root, a.archived, config.supervisor.quiet_secs, true).map_err(refuse)?;
        let rows: Vec<SessionRow> =
            listing.rows.into_iter().map(|r| SessionRow { repo: Some(repo.root.clone()), ..r }).collect();
        pretty(&columns::json(&rows, listing.now))
    }

    /// The creator's session id, when this server runs in a session.
    fn creator_id(&self, cwd: &Path) -> Option<String> {
        match self.creator.as_ref()? {
            Creator::Id(id) => Some(id.clone()),
            Creator::Name(name) => self.tandem.resolve(cwd, Some(name)).ok().map(|s| s.id),
        }
    }

    fn new_session(&self, a: NewArgs) -> Result<String, Refusal> {
        if let Some(name) = &a.name {
            session::slugs::validate(name).map_err(|e| refuse(SessionError::from(e)))?;
        }
        let cwd = self.cwd(a.repo.as_deref())?;
        let (repo, config) = session::open_repo(&self.tandem.paths, &cwd).map_err(refuse)?;
        // No one here can approve the repository's hook commands.
        let pending = session::repo_hooks::unapproved(&self.tandem.store().map_err(refuse)?, &repo, &config)
            .map_err(|e| refuse(ClientError::from(e)))?;
        if !pending.is_empty() {
            return Err(refuse(SessionError::HooksNotApproved { count: pending.len() }));
        }
        let (env, _) = session::env::process_env();
        let creator = self.creator_id(&cwd);
        let request = CreateRequest {
            name: a.name,
            title: a.title,
            agent: a.agent,
            prompt: a.prompt,
            base: a.base,
            rows: SIZE.0,
            cols: SIZE.1,
            creator,
            ..CreateRequest::new(cwd, env)
        };
        let created = self.tandem.create(request).map_err(refuse)?;
        let mut answer = created_json(&created.session, &created.notes);
        answer["creator"] = json!(created.session.creator);
        pretty(&answer)
    }

    fn send_prompt(&self, a: SendArgs) -> Result<String, Refusal> {
        let (_, _, session) = self.named(&Named { name: a.name, repo: a.repo })?;
        let (env, _) = session::env::process_env();
        self.tandem.send(&session, &a.text, env).map_err(refuse)?;
        pretty(&json!({ "ok": true, "name": session.slug }))
    }

    fn get_history(&self, a: HistoryArgs) -> Result<String, Refusal> {
        let (_, _, session) = self.named(&Named { name: a.name, repo: a.repo })?;
        let limit = a.limit.unwrap_or(HISTORY_DEFAULT).clamp(1, HISTORY_MAX);
        let store = self.tandem.store().map_err(refuse)?;
        let events = store.events(&session.id, a.after, limit).map_err(refuse)?;
        history_lines(&events)
    }

    fn get_diff(&self, a: DiffArgs) -> Result<String, Refusal> {
        let (_, _, session) = self.named(&Named { name: a.name, repo: a.repo })?;
        let against = Against::parse(a.against.as_deref().unwrap_or("base"));
        let report = ship::diff::report(&session, &against, a.uncommitted, Some(PATCH_LIMIT)).map_err(refuse)?;
        pretty(&report)
    }

    /// A session's checkpoints as `tandem checkpoints --json` prints
    /// them. Read-only on purpose: rewind is not a tool (issue 22). The
    /// agents are the ones calling this server, and a checkpoint must stay
    /// safe from the agent whose turns it keeps; only the user rewinds
    /// (CLI, view, dashboard).
    fn list_checkpoints(&self, a: Named) -> Result<String, Refusal> {
        let (_, _, session) = self.named(&a)?;
        let list = self.tandem.checkpoints(&session).map_err(refuse)?;
        let items: Vec<Value> = list.iter().map(|c| tandem_core::checkpoints::to_json(&session.id, c)).collect();
        pretty(&items)
    }

    fn session_state(&self, a: Named) -> Result<String, Refusal> {
        let (root, config, session) = self.named(&a)?;
        let (row, _) = self.row(&root, &config, &session)?;
        let awaits_permission = row.awaits_permission();
        let next = match (row.state.as_str(), awaits_permission) {
            (_, true) => "answer with approve or deny",
            ("asking", _) => "answer its question with send_prompt",
            ("idle", _) => "its turn is done: read get_diff, or send_prompt for more",
            ("running" | "starting" | "creating", _) => "it is working: call session_state again later",
            _ => "its agent does not run",
        };
        pretty(&json!({
            "name": row.name,
            "id": row.id,
            "state": row.state,
            "state_text": row.state_text(),
            "state_word": row.state_word(),
            "group": row.group().key(),
            "inferred": row.inferred,
            "activity": session.activity.map(|a| a.as_str()),
            "awaits_permission": awaits_permission,
            "asking": row.asking,
            "exit_code": row.exit_code,
            "last_message": row.last_message,
            "creator": row.creator,
            "next": next,
        }))
    }

    fn answer(&self, a: AnswerArgs, allow: bool) -> Result<String, Refusal> {
        let (_, _, session) = self.named(&Named { name: a.name, repo: a.repo })?;
        self.tandem.answer(&session, allow, a.message.as_deref()).map_err(refuse)?;
        pretty(&json!({ "ok": true, "name": session.slug, "allowed": allow, "asked": session.asking }))
    }

    fn conflicts(&self, a: Where) -> Result<String, Refusal> {
        let cwd = self.cwd(a.repo.as_deref())?;
        let report = self.tandem.conflicts(&cwd, false).map_err(refuse)?;
        pretty(&report)
    }

    fn task_new(&self, a: TaskNewArgs) -> Result<String, Refusal> {
        let cwd = self.cwd(a.repo.as_deref())?;
        let request = TaskNewRequest {
            cwd,
            objective: a.objective,
            name: a.name,
            trials: a.trials,
            agents: a.agents,
            base: a.base,
            check: a.check,
            owns: a.owns,
            sandbox: None,
            env: Vec::new(),
            creator: None,
        };
        tandem_core::tasks::check_new(&request).map_err(refuse)?;
        session::open_repo(&self.tandem.paths, &request.cwd).map_err(refuse)?;
        let creator = self.creator_id(&request.cwd);
        let request = TaskNewRequest { env: session::env::process_env().0, creator, ..request };
        let made = self.tandem.task_new(request).map_err(refuse)?;
        let answer = json!({
            "task": made.slug,
            "count": made.count,
            "trials": made.trials.iter().map(|t| created_json(&t.session, &t.notes)).collect::<Vec<_>>(),
            "failed": made.failed,
        });
        match made.failed {
            None => pretty(&answer),
            Some(_) => Err(pretty(&answer)?),
        }
    }

    fn task_show(&self, a: TaskShowArgs) -> Result<String, Refusal> {
        let cwd = self.cwd(a.repo.as_deref())?;
        let env = session::env::process_env().0;
        let shown = self.tandem.task_show(&cwd, &a.task, !a.no_check, &env, &mut |_, _| {}).map_err(refuse)?;
        pretty(&shown)
    }

    /// A history resource per live session of every repository tandem
    /// knows.
    ///
    /// # Errors
    /// The [`ClientError`]'s text.
    pub fn history_resources(&self) -> Result<Vec<HistoryResource>, Refusal> {
        let store = self.tandem.store().map_err(refuse)?;
        let mut out = Vec::new();
        for (repo_id, _, root) in store.repos().map_err(refuse)? {
            for s in store.sessions(repo_id).map_err(refuse)? {
                if s.state == SessionState::Archived {
                    continue;
                }
                out.push(HistoryResource {
                    uri: format!("tandem://session/{}/history", s.id),
                    name: s.slug.clone(),
                    description: format!(
                        "history of session {} in {} (one `tandem history --json` object per line)",
                        s.slug,
                        root.display()
                    ),
                });
            }
        }
        Ok(out)
    }

    /// The history of the session `tandem://session/<id-or-name>/history`
    /// names, one event per line.
    ///
    /// # Errors
    /// A URI of another shape, an unknown session, store errors.
    pub fn read_history_resource(&self, uri: &str) -> Result<String, Refusal> {
        let Some(who) = uri.strip_prefix("tandem://session/").and_then(|r| r.strip_suffix("/history")) else {
            return Err(format!("unknown resource `{uri}`; session histories are tandem://session/<id>/history"));
        };
        let store = self.tandem.store().map_err(refuse)?;
        let session = match store.session(who).map_err(refuse)? {
            Some(s) => s,
            None => self.tandem.resolve(&self.cwd, Some(who)).map_err(refuse)?,
        };
        let mut events = Vec::new();
        let mut after = 0;
        loop {
            let page = store.events(&session.id, after, HISTORY_MAX).map_err(refuse)?;
            let Some(last) = page.last() else { break };
            after = last.id;
            events.extend(page);
        }
        history_lines(&events)
    }
}

/// Events as `tandem history --json` prints them: one JSON object a line.
fn history_lines(events: &[tandem_core::store::Event]) -> Result<String, Refusal> {
    let mut text = String::new();
    for event in events {
        text.push_str(&serde_json::to_string(event).map_err(|e| e.to_string())?);
        text.push('\n');
    }
    Ok(text)
}

/// One tool's name, description and arguments.
struct ToolSpec {
    name: &'static str,
    description: &'static str,
    /// `(name, JSON type, description, required)`.
    args: &'static [(&'static str, &'static str, &'static str, bool)],
    read_only: bool,
}

const NAME: (&str, &str, &str, bool) = (
    "name",
    "string",
    "The session: its name (as `tandem list` shows it), an old name, its branch, or REPO/NAME",
    true,
);
const REPO: (&str, &str, &str, bool) = (
    "repo",
    "string",
    "The repository's folder (absolute, or relative to where the server runs); default: where the server runs",
    false,
);

const TOOLS: &[ToolSpec] = &[
    ToolSpec {
        name: "list_sessions",
        description: "The repository's sessions, as `tandem list --json` prints them: a JSON array of rows \
                      (name, id, branch, path, agent, state, state_text, group, awaits_permission, asking, \
                      last_message, creator, diffstat, …).",
        args: &[REPO, ("archived", "boolean", "The archived sessions instead of the live ones", false)],
        read_only: true,
    },
    ToolSpec {
        name: "new_session",
        description: "Make a session: a git worktree and branch with its own agent, started on `prompt`. \
                      Answers {name, id, branch, path, agent, base, notes, creator}. The session runs on its \
                      own; follow it with session_state, read its work with get_diff.",
        args: &[
            ("prompt", "string", "The agent's first prompt", false),
            (
                "agent",
                "string",
                "`claude`, `codex`, `gemini`, `shell`, or any command line (default: the configured one)",
                false,
            ),
            (
                "base",
                "string",
                "Where to branch from: `fresh`, `head`, or a commit-ish (default: `base.default`)",
                false,
            ),
            ("name", "string", "The session's name (default: a readable unique one)", false),
            ("title", "string", "A free-text title", false),
            REPO,
        ],
        read_only: false,
    },
    ToolSpec {
        name: "send_prompt",
        description: "Send a prompt to a session's running agent (also the answer to a question it asks).",
        args: &[NAME, ("text", "string", "The prompt, on one line", true), REPO],
        read_only: false,
    },
    ToolSpec {
        name: "get_history",
        description: "A session's history: prompts, messages, tool calls, file changes, permission requests, \
                      state changes; one JSON object per line as `tandem history --json` prints them \
                      ({id, session_id, at_ms, kind, text, data}). Page with `after` (the last id read).",
        args: &[
            NAME,
            ("after", "integer", "Only events after this event id (default 0: from the start)", false),
            ("limit", "integer", "At most this many events (default 200, at most 1000)", false),
            REPO,
        ],
        read_only: true,
    },
    ToolSpec {
        name: "get_diff",
        description: "What a session changed, as `tandem diff --json` prints it ({session, from, files: \
                      [{path, insertions, deletions}], insertions, deletions}) with `patch`, the unified diff \
                      (cut at 256 KiB on a line end; then `truncated: true`). Uncommitted and untracked work \
                      included.",
        args: &[
            NAME,
            ("against", "string", "`base` (default), `remote`, or any commit-ish", false),
            ("uncommitted", "boolean", "Only the uncommitted work (against HEAD)", false),
            REPO,
        ],
        read_only: true,
    },
    // No rewind tool: agents call this server, and their checkpoints must
    // stay safe from them (issue 22); rewind is the user's (CLI, view,
    // dashboard).
    ToolSpec {
        name: "list_checkpoints",
        description: "A session's checkpoints (one per agent turn that changed something, and one before each \
                      sync, merge, restore and rewind), newest first, as `tandem checkpoints --json` prints \
                      them: [{n, commit, tree, head, index_tree, at_ms, cause, rewound_to, prompt, agent, files, \
                      added, removed, message_id, ref}]. Read-only: rewinding is left to the user.",
        args: &[NAME, REPO],
        read_only: true,
    },
    ToolSpec {
        name: "session_state",
        description: "A session's state: {name, id, state, state_text, group, activity, awaits_permission, \
                      asking (the permission or question it waits on), last_message, exit_code, creator, next \
                      (what to do now)}.",
        args: &[NAME, REPO],
        read_only: true,
    },
    ToolSpec {
        name: "approve",
        description: "Allow the permission request the session's agent waits on (its state is needs-input).",
        args: &[NAME, ("message", "string", "Ignored when allowing; kept for symmetry with deny", false), REPO],
        read_only: false,
    },
    ToolSpec {
        name: "deny",
        description: "Deny the permission request the session's agent waits on; `message` is sent as its next \
                      prompt.",
        args: &[NAME, ("message", "string", "What to tell the agent instead", false), REPO],
        read_only: false,
    },
    ToolSpec {
        name: "conflicts",
        description: "Conflict control for the repository, as `tandem conflicts --json` prints it: which \
                      sessions' changes overlap or conflict with each other or with the base.",
        args: &[REPO],
        read_only: true,
    },
    ToolSpec {
        name: "task_new",
        description: "Start a task: several trials (sessions) at one objective, each with the same brief. \
                      Answers {task, count, trials: [{name, id, branch, path, agent, base, notes}], failed}.",
        args: &[
            ("objective", "string", "What the trials should achieve", true),
            ("name", "string", "The task's name (default: from the objective)", false),
            ("trials", "integer", "How many trials (default: one per agent, else 2)", false),
            ("agents", "array", "The agents, taken in turn by the trials", false),
            ("base", "string", "Where the trials branch from", false),
            ("check", "string", "A shell command run in each trial's worktree to compare them", false),
            ("owns", "array", "Paths the trials own; changes elsewhere are warned about", false),
            REPO,
        ],
        read_only: false,
    },
    ToolSpec {
        name: "task_show",
        description: "A task's trials side by side, as `tandem task show --json` prints it: {task: {name, \
                      objective, status, check, owned, promoted}, trials: [{trial, name, branch, agent, state, \
                      insertions, deletions, files, check, duration_secs, tokens, cost_usd, handoff, …}]}.",
        args: &[
            ("task", "string", "The task's name", true),
            ("no_check", "boolean", "Do not run the check where it has no result yet", false),
            REPO,
        ],
        read_only: false,
    },
];

/// Every tool, for `tools/list`.
#[must_use]
pub fn list() -> Vec<Tool> {
    TOOLS.iter().map(tool).collect()
}

fn tool(spec: &ToolSpec) -> Tool {
    let mut properties = serde_json::Map::new();
    let mut required = Vec::new();
    for (name, kind, description, needed) in spec.args {
        let mut property = json!({ "type": kind, "description": description });
        if *kind == "array" {
            property["items"] = json!({ "type": "string" });
        }
        properties.insert((*name).to_owned(), property);
        if *needed {
            required.push(*name);
        }
    }
    let schema = json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    });
    let Value::Object(schema) = schema else { unreachable!("a JSON object") };
    let schema: Arc<JsonObject> = Arc::new(schema);
    let mut tool = Tool::new(Cow::Borrowed(spec.name), Cow::Borrowed(spec.description), schema);
    tool.annotations = Some(ToolAnnotations::new().read_only(spec.read_only));
    tool
}
