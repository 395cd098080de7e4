//! The typed client every front end uses: the CLI's commands, the agent
//! view and (after them) the web dashboard and the MCP server call
//! [`Tandem`]'s methods, which check what they are asked, talk to the
//! supervisor or a session's host, and answer with typed values and
//! [`ClientError`]s, so no front end re-implements an action or runs the
//! `tandem` binary to carry one out.
//!
//! Each method is one user action; its checks and its errors are the
//! ones `tandem <action>` has always had (the texts tests assert on).

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::connection::{self as supervisor, Client};
use crate::host::client as host;
use crate::paths::Paths;
use crate::protocol::{
    ClientMsg, CreateRequest, EnvChoice, Listed, Outcome, RemoveReport, Request, Response, TaskNewRequest,
};
use crate::repo::Repository;
use crate::rows::SessionRow;
use crate::session::facts::live_state;
use crate::session::{self, SessionError};
use crate::store::{Activity, Meta, MetaUpdate, Session, SessionState, Store, StoreError, TaskStatus};
use crate::tasks::{
    self,
    report::{self, TaskReport, TaskSummary, TrialDiff},
};

/// The longest `tandem status` waits on a supervisor's answer before it
/// counts from the store itself ([`Tandem::tally_in`]).
pub const TALLY_WAIT: std::time::Duration = std::time::Duration::from_millis(300);

/// Why an action was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The supervisor is not reachable, or refused the request (its
    /// message says why).
    #[error(transparent)]
    Supervisor(#[from] supervisor::ClientError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoints::CheckpointError),
    /// The session's agent does not run (a prompt, an answer). Hint:
    /// `tandem respawn`.
    #[error("session `{slug}` has no running agent")]
    NotRunning { slug: String },
    /// An empty prompt.
    #[error("the prompt is empty; give the text to send")]
    EmptyPrompt,
    /// A prompt larger than a host takes in one message
    /// ([`crate::protocol::MAX_REQUEST_LEN`]).
    #[error(
        "the prompt is too long: {bytes} bytes, and a prompt can be at most 1 MiB; put the text in a file in the worktree and ask the agent to read it"
    )]
    PromptTooLong { bytes: usize },
    /// An answer to an agent that reports no permission requests.
    #[error("session `{slug}` runs `{agent}`, which does not report permission requests; attach to it to answer")]
    NoPermissionReports { slug: String, agent: String },
    /// An answer to an agent that waits for none.
    #[error(
        "session `{slug}` is not waiting for a permission decision; `tandem list` shows what each session waits for"
    )]
    NotWaiting { slug: String },
    /// Its agent ended its turn with a question, which a prompt answers.
    #[error("session `{slug}` asks a question, not for a permission; answer it with `tandem send {slug} \"…\"`")]
    AsksQuestion { slug: String },
    /// An answer of the supervisor's that does not fit the request.
    #[error("the supervisor answered {request} with something else")]
    Unexpected { request: &'static str },
}

/// A session [`Tandem::wake`] started again after an idle stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Woken {
    /// How long its agent had been idle when it was stopped, in seconds.
    pub idle_secs: u64,
    /// Whether the agent resumed its conversation.
    pub resumed: bool,
}

impl Woken {
    /// What a front end says of it: `NAME was stopped after 2h idle;
    /// starting it again, resuming its conversation`.
    #[must_use]
    pub fn said(&self, slug: &str) -> String {
        let how = if self.resumed { ", resuming its conversation" } else { "" };
        let idle = session::idle_stop::duration_text(self.idle_secs);
        format!("{slug} was stopped after {idle} idle; starting it again{how}")
    }
}

/// A session made by [`Tandem::create`] or [`Tandem::fork`], with the
/// notes the user should read (a fallback, a failed hook).
#[derive(Debug, Clone)]
pub struct Created {
    pub session: Session,
    pub notes: Vec<String>,
}

/// A session just made, as `tandem new --json` (and `fork`, `review`)
/// print it and the MCP server answers it (docs/json.md): `name`, `id`,
/// `branch`, `path`, `agent`, `base` and `notes`.
#[must_use]
pub fn created_json(session: &Session, notes: &[String]) -> serde_json::Value {
    serde_json::json!({
        "name": session.slug,
        "id": session.id,
        "branch": session.branch,
        "path": session.path,
        "agent": session.agent,
        "base": session.base_ref,
        "notes": notes,
    })
}

/// The rows of one repository, as [`Tandem::rows`] answers them.
#[derive(Debug, Clone)]
pub struct Listing {
    pub rows: Vec<SessionRow>,
    /// What the user should know (a folder no session owns, …).
    pub notes: Vec<String>,
    /// Unix seconds the rows were made at (ages count from it).
    pub now: i64,
    /// Whether conflict control's marks are being recomputed (the rows
    /// carry the previous ones).
    pub marks_stale: bool,
}

/// The change counts of [`Tandem::subscribe`].
pub struct Changes {
    client: Client,
    generation: u64,
    ended: bool,
}

impl Iterator for Changes {
    type Item = Result<u64, ClientError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        let answer = match self.client.request(&Request::Changes { generation: self.generation }) {
            Ok(Response::Changed { generation }) => Ok(generation),
            Ok(_) => Err(ClientError::Unexpected { request: "changes" }),
            Err(e) => Err(e.into()),
        };
        match &answer {
            Ok(generation) => self.generation = *generation,
            Err(_) => self.ended = true,
        }
        Some(answer)
    }
}

/// What [`Tandem::review`] reviews, and how.
#[derive(Debug, Clone, Copy)]
pub struct ReviewOf<'a> {
    pub session: &'a Session,
    /// The reviewer's agent; `None`: the reviewed session's when it takes
    /// prompts, else the default.
    pub agent: Option<&'a str>,
    /// The review session's name; `None`: `<session>-review`.
    pub name: Option<&'a str>,
    /// The terminal size, rows and columns.
    pub size: (u16, u16),
}

/// What [`Tandem::task_new`] made: the task's name, how many trials were
/// asked for, those made, and why the next was not when one failed.
#[derive(Debug, Clone)]
pub struct TaskCreated {
    pub slug: String,
    pub count: usize,
    pub trials: Vec<Outcome>,
    pub failed: Option<String>,
}

/// What [`Tandem::task_promote`] did: the task, the promoted trial (on its
/// new branch), the other trials archived, and why the next was not when
/// one failed.
#[derive(Debug, Clone)]
pub struct TaskPromoted {
    pub task: String,
    pub winner: Session,
    pub archived: Vec<Outcome>,
    pub failed: Option<String>,
}

/// What [`Tandem::stop`] found or did.
#[derive(Debug, Clone)]
pub enum Stopped {
    /// It ran; now it is stopped.
    Stopped(Box<Session>),
    /// Nothing ran: its state in words (`exited (1)`, `stopped`, …).
    NotRunning(String),
}

/// What [`Tandem::remove`] is asked to do beyond removing.
#[derive(Debug, Clone, Copy, Default)]
pub struct RemoveOptions {
    /// Remove even with unsaved work (kept in a snapshot ref).
    pub force: bool,
    /// Answer only when git's bookkeeping is done too.
    pub wait: bool,
    /// Delete the history too.
    pub purge: bool,
}

/// One user's tandem, as a front end reaches it: where its state lives
/// and the binary that starts a supervisor when none runs.
#[derive(Debug, Clone)]
pub struct Tandem {
    pub paths: Paths,
    exe: PathBuf,
}

impl Tandem {
    /// `exe`: the `tandem` binary that runs `tandem daemon` when no
    /// supervisor answers.
    #[must_use]
    pub fn new(paths: Paths, exe: PathBuf) -> Tandem {
        Tandem { paths, exe }
    }

    /// A connection to the supervisor, started when none runs.
    ///
    /// # Errors
    /// [`ClientError::Supervisor`].
    pub fn supervisor(&self) -> Result<Client, ClientError> {
        Ok(supervisor::connect(&self.paths, &self.exe)?)
    }

    /// The store (tandem's database), opened for this call.
    ///
    /// # Errors
    /// [`ClientError::Store`], or [`ClientError::Session`] when the state
    /// folder cannot be made.
    pub fn store(&self) -> Result<Store, ClientError> {
        self.paths.ensure_state_dir().map_err(SessionError::from)?;
        Ok(Store::open(&self.paths.database())?)
    }

    /// The session `name` finds from `cwd` ([`session::lookup`]: its
    /// name, an old name, its branch, its title, `REPO/NAME`), with its
    /// repository and config; what a sandboxed agent committed or staged
    /// is read back first.
    ///
    /// # Errors
    /// [`SessionError::Lookup`] and what opening the repository or the
    /// store returns.
    pub fn session(&self, cwd: &Path, name: &str) -> Result<(Repository, Config, Session), ClientError> {
        self.session_at(cwd, Some(name))
    }

    /// [`Tandem::session`], where no `name` means the session whose
    /// worktree `cwd` is in.
    ///
    /// # Errors
    /// As [`Tandem::session`].
    pub fn session_at(&self, cwd: &Path, name: Option<&str>) -> Result<(Repository, Config, Session), ClientError> {
        let session = self.resolve(cwd, name)?;
        let store = self.store()?;
        let here = match session::open_repo(&self.paths, cwd) {
            Ok((repo, config)) if store.find_repo(&repo.common_dir)? == Some(session.repo_id) => Some((repo, config)),
            _ => None,
        };
        let (repo, config) = match here {
            Some(here) => here,
            None => {
                let root = store.repo_root(session.repo_id)?.unwrap_or_else(|| session.path.clone());
                session::open_repo(&self.paths, &root)?
            }
        };
        session::sync_sandboxed(&self.paths, &repo, &session);
        Ok((repo, config, session))
    }

    /// The session with id `id` (12 hex characters), as stored; `None`
    /// when there is none. What a front end that names sessions by id
    /// (the web dashboard's URLs) looks up.
    ///
    /// # Errors
    /// Store errors.
    pub fn by_id(&self, id: &str) -> Result<Option<Session>, ClientError> {
        Ok(self.store()?.session(id)?)
    }

    /// `session` with its repository (its main worktree) and config, as
    /// [`Tandem::session`] answers them; what a sandboxed agent committed
    /// or staged is read back first.
    ///
    /// # Errors
    /// What opening the repository or the store returns.
    pub fn located(&self, session: Session) -> Result<(Repository, Config, Session), ClientError> {
        let root = self.store()?.repo_root(session.repo_id)?.unwrap_or_else(|| session.path.clone());
        let (repo, config) = session::open_repo(&self.paths, &root)?;
        session::sync_sandboxed(&self.paths, &repo, &session);
        Ok((repo, config, session))
    }

    /// The session `name` finds from `cwd` ([`session::lookup::resolve`]),
    /// as stored: no git runs.
    ///
    /// # Errors
    /// [`SessionError::Lookup`], [`SessionError::Repo`] outside any
    /// repository when tandem has no sessions, store errors.
    pub fn resolve(&self, cwd: &Path, name: Option<&str>) -> Result<Session, ClientError> {
        if !self.paths.database().exists() {
            // Nothing to find; say what is wrong without making the store.
            session::open_repo(&self.paths, cwd)?;
        }
        let store = self.store()?;
        Ok(session::lookup::resolve(&store, cwd, name)?)
    }

    /// Renames `session` to `to` (`tandem rename`): its name, its folder
    /// unless its agent runs in it, and its branch unless it is pushed
    /// (with `branch`, a pushed one too). The old name stays an alias.
    /// Answers the session as renamed and notes on what was kept.
    ///
    /// # Errors
    /// [`SessionError::Name`] for a bad `to`; [`ClientError::Supervisor`]
    /// with the refusal (a taken name, a pushed branch).
    pub fn rename(&self, session: &Session, to: &str, branch: bool) -> Result<Created, ClientError> {
        session::slugs::validate(to).map_err(SessionError::from)?;
        let request = Request::Rename { session_id: session.id.clone(), name: to.to_owned(), branch };
        match self.supervisor()?.request(&request)? {
            Response::Renamed { session, notes } => Ok(Created { session: *session, notes }),
            _ => Err(ClientError::Unexpected { request: "rename" }),
        }
    }

    /// The rows of the repository `cwd` is in (live ones, or archived
    /// ones) as every front end shows them, at [`Listing::now`]. `quiet`:
    /// `supervisor.quiet_secs`, after which an agent that reports nothing
    /// is taken to be idle; with `messages`, each row carries its agent's
    /// last message.
    ///
    /// # Errors
    /// [`ClientError::Supervisor`], with the supervisor's reason when
    /// `cwd` is in no repository.
    pub fn rows(&self, cwd: &Path, archived: bool, quiet: u64, messages: bool) -> Result<Listing, ClientError> {
        let request = Request::List { cwd: cwd.to_owned(), archived, messages };
        Ok(self.listing(self.supervisor()?.list(&request)?, quiet))
    }

    /// The answer to `list` for the repository `dir` is in, from the
    /// supervisor if one of this version is running (`Ok(None)`: none is;
    /// none is started, and one of another version is left alone). The
    /// supervisor finds the repository (its discovery is cached), so
    /// nothing here runs `git`: with 200 sessions on a busy
    /// machine a `git rev-parse` was ~5–10 ms of a 20 ms `tandem list`
    /// (issue 23). [`Tandem::listing`] makes the rows.
    ///
    /// # Errors
    /// [`ClientError::Supervisor`], with the supervisor's reason when
    /// `dir` is in no repository.
    pub fn listed_in(&self, dir: &Path, archived: bool, messages: bool) -> Result<Option<Listed>, ClientError> {
        let Some(mut client) = supervisor::connect_current(&self.paths)? else {
            return Ok(None);
        };
        Ok(Some(client.list(&Request::List { cwd: dir.to_owned(), archived, messages })?))
    }

    /// `tandem status`'s counts from the supervisor ([`Request::Tally`]):
    /// of the repository `dir` is in, or with `None` of every one; `Ok(None)`
    /// when no supervisor of this version runs (none is started). The
    /// answer is waited for at most [`TALLY_WAIT`]: a status line must not
    /// hang on a supervisor that is starting or stuck.
    ///
    /// # Errors
    /// [`ClientError::Supervisor`], with the supervisor's reason (`dir` is
    /// in no repository).
    pub fn tally_in(&self, dir: Option<&Path>) -> Result<Option<crate::rows::Tally>, ClientError> {
        let Some(mut client) = supervisor::connect_current_within(&self.paths, TALLY_WAIT)? else {
            return Ok(None);
        };
        match client.request(&Request::Tally { cwd: dir.map(Path::to_owned), env: crate::config::config_env() })? {
            Response::Tally(tally) => Ok(Some(tally)),
            _ => Err(ClientError::Unexpected { request: "status" }),
        }
    }

    /// `tandem list`'s text for the repository `dir` is in, rendered by
    /// the supervisor as `view` says ([`Request::ListText`]), if one of
    /// this version is running (`Ok(None)`: none is, and none is
    /// started). The client then decodes no rows and reads no PTY log
    /// (issue 23).
    ///
    /// # Errors
    /// [`ClientError::Supervisor`], with the supervisor's reason (`dir` is
    /// in no repository, a config that does not parse).
    pub fn list_text_in(
        &self,
        dir: &Path,
        view: &crate::rows::table::ListView,
    ) -> Result<Option<crate::rows::table::Frame>, ClientError> {
        let Some(mut client) = supervisor::connect_current(&self.paths)? else {
            return Ok(None);
        };
        match client.request(&Request::ListText { cwd: dir.to_owned(), view: view.clone() })? {
            Response::Text(frame) => Ok(Some(frame)),
            _ => Err(ClientError::Unexpected { request: "list" }),
        }
    }

    /// The rows of `listed` ([`Tandem::listed_in`]) at `quiet`, at now,
    /// as [`Tandem::rows`] makes them.
    #[must_use]
    pub fn listing(&self, listed: Listed, quiet: u64) -> Listing {
        let Listed { sessions, facts, notes, conflicts, conflicts_current, messages, .. } = listed;
        let now = crate::unix_now();
        let marks_stale = !conflicts.sessions.is_empty() && !conflicts_current;
        let rows = crate::rows::rows(&self.paths, &sessions, facts, &conflicts, quiet, now, messages);
        Listing { rows, notes, now, marks_stale }
    }

    /// The rows of every repository the store knows whose main worktree
    /// is still there (`tandem view --all`), each with that worktree:
    /// [`Tandem::rows`] for each, in the store's order.
    ///
    /// # Errors
    /// As [`Tandem::rows`].
    pub fn rows_everywhere(
        &self,
        archived: bool,
        quiet: u64,
        messages: bool,
    ) -> Result<Vec<(PathBuf, Listing)>, ClientError> {
        let roots: Vec<PathBuf> =
            self.store()?.repos()?.into_iter().map(|(_, _, root)| root).filter(|r| r.is_dir()).collect();
        roots
            .into_iter()
            .map(|root| {
                let listing = self.rows(&root, archived, quiet, messages)?;
                Ok((root, listing))
            })
            .collect()
    }

    /// A stream of change counts: each item waits until anything a
    /// session shows has changed (a row, its history, a worktree's files,
    /// a ref) or [`crate::protocol::CHANGES_WAIT`] has passed, and
    /// answers the count then; the first answers at once. It ends with
    /// the first error (the supervisor went away). The agent view's push,
    /// and the web dashboard's.
    ///
    /// # Errors
    /// [`ClientError::Supervisor`] when no supervisor can be reached.
    pub fn subscribe(&self) -> Result<Changes, ClientError> {
        Ok(Changes { client: self.supervisor()?, generation: 0, ended: false })
    }

    /// Brings an archived session's worktree back and starts its agent.
    ///
    /// # Errors
    /// [`ClientError::Supervisor`] with the supervisor's reason.
    pub fn restore(
        &self,
        session: &Session,
        env: Vec<(String, String)>,
        (rows, cols): (u16, u16),
    ) -> Result<Created, ClientError> {
        let request = Request::Restore { session_id: session.id.clone(), env, rows, cols };
        match self.supervisor()?.request(&request)? {
            Response::Restored { session, notes } => Ok(Created { session: *session, notes }),
            _ => Err(ClientError::Unexpected { request: "restore" }),
        }
    }

    /// A review session of `session` (`tandem review`): a read-only
    /// checkout of its current state whose agent gets the diff and the
    /// brief.
    ///
    /// # Errors
    /// [`ClientError::Supervisor`] with the supervisor's reason.
    pub fn review(&self, review: ReviewOf<'_>, env: Vec<(String, String)>) -> Result<Created, ClientError> {
        let (rows, cols) = review.size;
        let request = Request::Review {
            session_id: review.session.id.clone(),
            agent: review.agent.map(str::to_owned),
            name: review.name.map(str::to_owned),
            env,
            rows,
            cols,
        };
        match self.supervisor()?.request(&request)? {
            Response::Created { session, notes } => Ok(Created { session: *session, notes }),
            _ => Err(ClientError::Unexpected { request: "review" }),
        }
    }

    /// Conflict control for the repository at `cwd` (`fresh`: computed
    /// anew, nothing cached).
    ///
    /// # Errors
    /// [`ClientError::Supervisor`].
    pub fn conflicts(&self, cwd: &Path, fresh: bool) -> Result<crate::model::ConflictReport, ClientError> {
        self.conflicts_with(cwd, fresh, Vec::new())
    }

    /// [`Tandem::conflicts`] with other hosts' sessions in the matrix
    /// (their work fetched into this repository first).
    ///
    /// # Errors
    /// [`ClientError::Supervisor`].
    pub fn conflicts_with(
        &self,
        cwd: &Path,
        fresh: bool,
        foreign: Vec<crate::protocol::ForeignSide>,
    ) -> Result<crate::model::ConflictReport, ClientError> {
        match self.supervisor()?.request(&Request::Conflicts { cwd: cwd.to_owned(), fresh, foreign })? {
            Response::Conflicts { report } => Ok(*report),
            _ => Err(ClientError::Unexpected { request: "conflicts" }),
        }
    }

    /// Drops snapshot refs and trash older than `older_than_secs` in the
    /// repository at `cwd`.
    ///
    /// # Errors
    /// [`ClientError::Supervisor`].
    pub fn gc(&self, cwd: &Path, older_than_secs: u64) -> Result<crate::model::GcReport, ClientError> {
        match self.supervisor()?.request(&Request::Gc { cwd: cwd.to_owned(), older_than_secs })? {
            Response::Collected(report) => Ok(report),
            _ => Err(ClientError::Unexpected { request: "gc" }),
        }
    }

    /// What was done by hand in the repository at `cwd`, and with `fix`,
    /// repaired.
    ///
    /// # Errors
    /// [`ClientError::Supervisor`].
    pub fn doctor(&self, cwd: &Path, fix: bool) -> Result<Vec<crate::model::Finding>, ClientError> {
        match self.supervisor()?.request(&Request::Doctor { cwd: cwd.to_owned(), fix })? {
            Response::Doctor { findings } => Ok(findings),
            _ => Err(ClientError::Unexpected { request: "doctor" }),
        }
    }

    /// The supervisor's inotify watch budget: watches held, its cap, the
    /// system's limit and the sessions polled for want of watches.
    ///
    /// # Errors
    /// [`ClientError::Supervisor`].
    pub fn watches(&self) -> Result<crate::model::WatchReport, ClientError> {
        match self.supervisor()?.request(&Request::Status)? {
            Response::Status { watches, .. } => Ok(watches),
            _ => Err(ClientError::Unexpected { request: "status" }),
        }
    }

    /// Starts a task: names it and makes its trials, under the
    /// repository's lock.
    ///
    /// # Errors
    /// [`ClientError::Supervisor`] with the refusal.
    pub fn task_new(&self, request: TaskNewRequest) -> Result<TaskCreated, ClientError> {
        match self.supervisor()?.request(&Request::TaskNew(Box::new(request)))? {
            Response::TaskCreated { slug, count, trials, failed } => Ok(TaskCreated { slug, count, trials, failed }),
            _ => Err(ClientError::Unexpected { request: "task new" }),
        }
    }

    /// Promotes trial `trial` (its number or session name) of task `task`
    /// in the repository at `cwd`; the other trials are archived.
    ///
    /// # Errors
    /// [`ClientError::Supervisor`] with the refusal.
    pub fn task_promote(
        &self,
        cwd: &Path,
        task: &str,
        trial: &str,
        env: Vec<(String, String)>,
    ) -> Result<TaskPromoted, ClientError> {
        let request = Request::TaskPromote { cwd: cwd.to_owned(), task: task.to_owned(), trial: trial.to_owned(), env };
        match self.supervisor()?.request(&request)? {
            Response::TaskPromoted { task, winner, archived, failed } => {
                Ok(TaskPromoted { task, winner: *winner, archived, failed })
            }
            _ => Err(ClientError::Unexpected { request: "task promote" }),
        }
    }

    /// The tasks of the repository at `cwd`, oldest first, as
    /// `tandem task list --json` prints them; none when tandem has never
    /// worked in it.
    ///
    /// # Errors
    /// [`SessionError::Repo`] outside a repository; store errors.
    pub fn task_list(&self, cwd: &Path) -> Result<Vec<TaskSummary>, ClientError> {
        let (repo, _) = session::open_repo(&self.paths, cwd)?;
        let store = self.store()?;
        match store.find_repo(&repo.common_dir)? {
            Some(id) => Ok(report::list(&store, id)?),
            None => Ok(Vec::new()),
        }
    }

    /// Task `name` of the repository at `cwd` with its trials side by
    /// side, as `tandem task show --json` prints it. With `run_checks`,
    /// the task's check runs now (in parallel) in each live trial with no
    /// result for its current state, and the supervisor keeps each result
    /// so that state is not checked again; `before_checks(command, n)` is
    /// called before they start. `env`: what a sandboxed trial's fence is
    /// made with (the caller's environment).
    ///
    /// # Errors
    /// [`crate::tasks::TaskError::NotFound`] (as a [`SessionError`]), git
    /// and store errors, [`crate::tasks::TaskError::CheckNotRun`],
    /// [`ClientError::Supervisor`] when a result cannot be kept.
    pub fn task_show(
        &self,
        cwd: &Path,
        name: &str,
        run_checks: bool,
        env: &[(String, String)],
        before_checks: &mut dyn FnMut(&str, usize),
    ) -> Result<TaskReport, ClientError> {
        let (repo, config) = session::open_repo(&self.paths, cwd)?;
        let store = self.store()?;
        let (task, trials) = tasks::find(&store, &repo, name)?;
        let (mut shown, pending) = report::report(&self.paths, &repo, &config, &store, &task, &trials)?;
        let Some(command) = task.check.as_deref().filter(|_| run_checks && !pending.is_empty()) else {
            return Ok(shown);
        };
        before_checks(command, pending.len());
        let ran = report::run_checks(&self.paths, &repo, &config, &trials, command, &pending, env)?;
        for (p, result) in ran {
            let request = Request::CheckRan {
                session_id: p.session_id.clone(),
                state: p.state.clone(),
                command: command.to_owned(),
                result: result.clone(),
            };
            self.supervisor()?.request(&request)?;
            shown.trials[p.index].check = Some(report::check_report(command, result));
        }
        Ok(shown)
    }

    /// Trials `a` and `b` (numbers like `2`, `t2`, or session names) of
    /// task `name` in the repository at `cwd`: the repository and each
    /// trial's work as one commit ([`report::state_of`]), for
    /// `tandem task diff` to hand to git.
    ///
    /// # Errors
    /// [`crate::tasks::TaskError`] (no such task or trial, a trial gone),
    /// as a [`SessionError`]; git and store errors.
    pub fn task_states(
        &self,
        cwd: &Path,
        name: &str,
        a: &str,
        b: &str,
    ) -> Result<(Repository, String, String), ClientError> {
        let (repo, _) = session::open_repo(&self.paths, cwd)?;
        let store = self.store()?;
        let (task, trials) = tasks::find(&store, &repo, name)?;
        let pick = |which| tasks::pick(&task, &trials, which).map_err(SessionError::from);
        let (a, b) = (pick(a)?, pick(b)?);
        let (from, to) = report::states(&self.paths, &repo.root, a, b)?;
        Ok((repo, from, to))
    }

    /// The diff from trial `a` to trial `b` of task `name` (as
    /// [`Tandem::task_states`] names them): files, counts and the patch,
    /// cut at `patch_limit` bytes.
    ///
    /// # Errors
    /// As [`Tandem::task_states`].
    pub fn task_diff(
        &self,
        cwd: &Path,
        name: &str,
        a: &str,
        b: &str,
        patch_limit: usize,
    ) -> Result<TrialDiff, ClientError> {
        let (repo, _) = session::open_repo(&self.paths, cwd)?;
        let store = self.store()?;
        let (task, trials) = tasks::find(&store, &repo, name)?;
        let pick = |which| tasks::pick(&task, &trials, which).map_err(SessionError::from);
        Ok(report::diff(&self.paths, &repo.root, pick(a)?, pick(b)?, patch_limit)?)
    }

    /// Sets task `task`'s status; answers the task's name as stored.
    ///
    /// # Errors
    /// [`ClientError::Supervisor`] with the refusal.
    pub fn task_set_status(&self, cwd: &Path, task: &str, status: TaskStatus) -> Result<String, ClientError> {
        let request = Request::TaskSetStatus { cwd: cwd.to_owned(), task: task.to_owned(), status };
        match self.supervisor()?.request(&request)? {
            Response::TaskStatusSet { task, .. } => Ok(task),
            _ => Err(ClientError::Unexpected { request: "task set" }),
        }
    }

    /// Makes a session and starts its agent.
    ///
    /// # Errors
    /// [`ClientError::Supervisor`] with the supervisor's reason.
    pub fn create(&self, request: CreateRequest) -> Result<Created, ClientError> {
        let Response::Created { session, notes } = self.supervisor()?.request(&Request::Create(Box::new(request)))?
        else {
            return Err(ClientError::Unexpected { request: "create" });
        };
        Ok(Created { session: *session, notes })
    }

    /// Sends `text` to the session's agent as a prompt (on one line: a
    /// newline would press Enter early). `env`: the caller's environment,
    /// for naming a session tandem named from this first prompt.
    ///
    /// # Errors
    /// [`ClientError::EmptyPrompt`], [`ClientError::PromptTooLong`], [`ClientError::NotRunning`],
    /// [`ClientError::Store`] when the prompt's event cannot be recorded
    /// (nothing is typed then).
    pub fn send(&self, session: &Session, text: &str, env: Vec<(String, String)>) -> Result<(), ClientError> {
        if text.trim().is_empty() {
            return Err(ClientError::EmptyPrompt);
        }
        let text = text.replace(['\r', '\n'], " ");
        // The host refuses a larger message (and a refusal reads as a
        // host that is gone): measured as it is sent, escapes included.
        let message = serde_json::to_vec(&ClientMsg::Prompt { text: text.clone() }).map_or(usize::MAX, |m| m.len());
        if message >= crate::protocol::MAX_REQUEST_LEN {
            return Err(ClientError::PromptTooLong { bytes: text.len() });
        }
        if live_state(session) != SessionState::Running {
            return Err(ClientError::NotRunning { slug: session.slug.clone() });
        }
        host::prompt(&self.paths, &self.store()?, session, &text).map_err(|e| match e {
            host::PromptError::Store(e) => ClientError::Store(e),
            host::PromptError::NoHost(_) => ClientError::NotRunning { slug: session.slug.clone() },
        })?;
        if session.auto_named && crate::agent::Kind::of(&session.agent).structured() {
            // The first prompt of a session tandem named (Claude's TUI asks
            // from its hook): a title, in the background.
            let request = Request::AutoName { session_id: session.id.clone(), prompt: text, env };
            self.supervisor()?.request(&request)?;
        }
        Ok(())
    }

    /// Answers the permission request the session's agent waits on:
    /// `allow`, or deny with `message` sent as the next prompt.
    ///
    /// # Errors
    /// [`ClientError::NotRunning`], [`ClientError::NoPermissionReports`],
    /// [`ClientError::NotWaiting`], [`ClientError::AsksQuestion`],
    /// [`ClientError::Store`].
    pub fn answer(&self, session: &Session, allow: bool, message: Option<&str>) -> Result<(), ClientError> {
        let slug = || session.slug.clone();
        if live_state(session) != SessionState::Running {
            return Err(ClientError::NotRunning { slug: slug() });
        }
        if !crate::agent::reports_state(&session.agent) {
            return Err(ClientError::NoPermissionReports { slug: slug(), agent: session.agent.clone() });
        }
        if session.activity == Some(Activity::Asking) {
            return Err(ClientError::AsksQuestion { slug: slug() });
        }
        if session.activity != Some(Activity::NeedsInput) {
            return Err(ClientError::NotWaiting { slug: slug() });
        }
        let message = message.filter(|m| !m.trim().is_empty()).map(|m| m.replace(['\r', '\n'], " "));
        let msg = ClientMsg::Answer { allow, message: message.filter(|_| !allow) };
        host::tell(&self.paths, session, &msg).map_err(|_| ClientError::NotRunning { slug: slug() })?;
        // The supervisor records the answer in the history and takes the
        // agent as working on until its next hook says otherwise.
        let request = Request::Answered { session_id: session.id.clone(), allow, asked: session.asking.clone() };
        self.supervisor()?.request(&request)?;
        Ok(())
    }

    /// Ends the agent's current turn; it stays running (Esc to Claude
    /// Code's TUI, an interrupt request to a structured agent, Ctrl-C to
    /// any other).
    ///
    /// # Errors
    /// [`ClientError::NotRunning`].
    pub fn interrupt(&self, session: &Session) -> Result<(), ClientError> {
        let not_running = || ClientError::NotRunning { slug: session.slug.clone() };
        if live_state(session) != SessionState::Running {
            return Err(not_running());
        }
        host::tell(&self.paths, session, &ClientMsg::Interrupt).map_err(|_| not_running())
    }

    /// Stops the session's agent (polite signals, a grace period,
    /// SIGKILL); the worktree stays. The session stays stopped: even one
    /// the supervisor had stopped for idleness no longer comes back by
    /// itself ([`Tandem::wake`]).
    ///
    /// # Errors
    /// [`ClientError::Supervisor`].
    pub fn stop(&self, session: &Session) -> Result<Stopped, ClientError> {
        if live_state(session) != SessionState::Running {
            // One the supervisor stopped for idleness is now the user's
            // stop: it no longer comes back by itself.
            session::idle_stop::clear(&self.paths, &session.id);
            return Ok(Stopped::NotRunning(crate::rows::session_state_text(session)));
        }
        match self.supervisor()?.request(&Request::Stop { session_id: session.id.clone() })? {
            Response::Stopped { session } => Ok(Stopped::Stopped(session)),
            _ => Err(ClientError::Unexpected { request: "stop" }),
        }
    }

    /// A session's checkpoints, newest first (issue 22).
    ///
    /// # Errors
    /// Store errors.
    pub fn checkpoints(&self, session: &Session) -> Result<Vec<crate::model::Checkpoint>, ClientError> {
        Ok(self.store()?.checkpoints(&session.id)?)
    }

    /// Checkpoints a session's worktree right before tandem changes it
    /// (`cause`: sync, merge); `None` when nothing changed since its last
    /// checkpoint, or it has no worktree.
    ///
    /// # Errors
    /// [`ClientError::Checkpoint`]: then the caller does not go on.
    pub fn checkpoint_before(
        &self,
        session: &Session,
        cause: crate::model::Cause,
    ) -> Result<Option<crate::model::Checkpoint>, ClientError> {
        let (repo, config, session) = self.located(session.clone())?;
        let store = self.store()?;
        let keep = config.checkpoints.keep;
        Ok(crate::checkpoints::take(&self.paths, &repo, &store, &session, crate::checkpoints::Take::of(cause, keep))?)
    }

    /// Whether a session's agent is in the middle of a turn: it runs and
    /// last said it is working or waits on a permission, or (an agent that
    /// said nothing, its state inferred) printed something in the last
    /// `supervisor.quiet_secs`.
    #[must_use]
    pub fn mid_turn(&self, session: &Session, config: &Config) -> bool {
        if live_state(session) != SessionState::Running {
            return false;
        }
        // What the agent said beats a guess from its output (a shell
        // whose hooks report, as Claude Code's do).
        if let Some(activity) = session.activity {
            return matches!(activity, Activity::Running | Activity::NeedsInput);
        }
        let (state, _) =
            crate::rows::listed_state(&self.paths, session, crate::unix_now(), config.supervisor.quiet_secs);
        matches!(state, "running" | "needs-input")
    }

    /// Rewinds a session's worktree to a checkpoint
    /// ([`crate::checkpoints::rewind`]). Refused, changing nothing, while
    /// its agent is in the middle of a turn ([`Tandem::mid_turn`]), unless
    /// `stop`: then the agent is stopped first. With `how.conversation`,
    /// the agent then starts again with its conversation resumed up to
    /// that turn's last message (`claude-structured` only).
    ///
    /// # Errors
    /// [`crate::checkpoints::CheckpointError::MidTurn`], and the rewind's.
    pub fn rewind(
        &self,
        session: &Session,
        how: &crate::checkpoints::Rewind,
        stop: bool,
    ) -> Result<crate::checkpoints::RewindDone, ClientError> {
        let (repo, config, mut session) = self.located(session.clone())?;
        let store = self.store()?;
        // Bad input is named before a busy agent is.
        let (target, _) = crate::checkpoints::check(&store, &session, how)?;
        let resume_at = if how.conversation {
            use crate::checkpoints::CheckpointError as E;
            if !crate::agent::resumes_at_message(&session.agent) {
                return Err(E::NoConversationRewind { slug: session.slug, agent: session.agent }.into());
            }
            let message = target.message_id.filter(|_| session.agent_session.is_some());
            Some(message.ok_or(E::NoMessage { slug: session.slug.clone(), n: target.n })?)
        } else {
            None
        };
        if self.mid_turn(&session, &config) {
            if !stop {
                return Err(crate::checkpoints::CheckpointError::MidTurn { slug: session.slug }.into());
            }
            self.stop(&session)?;
            session = self.by_id(&session.id)?.unwrap_or(session);
        }
        let how = crate::checkpoints::Rewind { keep: config.checkpoints.keep, ..how.clone() };
        let mut done = crate::checkpoints::rewind(&self.paths, &repo, &store, &session, &how)?;
        if let Some(message) = resume_at {
            // The agent starts again (stopping it first if it runs) with
            // its conversation cut after that turn.
            let request = Request::Respawn {
                session_id: session.id.clone(),
                env: Vec::new(),
                rows: 24,
                cols: 80,
                choice: EnvChoice::default(),
                wake: false,
                resume_at: Some(message.clone()),
            };
            match self.supervisor()?.request(&request)? {
                Response::Respawned { .. } => done.resumed_at = Some(message),
                _ => return Err(ClientError::Unexpected { request: "respawn" }),
            }
        }
        Ok(done)
    }

    /// Starts the session's agent again in its worktree, resuming its
    /// conversation where the agent can, with the session's environment
    /// (not `env`, the caller's: see [`Tandem::respawn_with`]); says
    /// whether it resumed.
    ///
    /// # Errors
    /// [`ClientError::Supervisor`].
    pub fn respawn(
        &self,
        session: &Session,
        env: Vec<(String, String)>,
        size: (u16, u16),
    ) -> Result<(Session, bool), ClientError> {
        self.respawn_with(session, env, EnvChoice::default(), size).map(|(s, resumed, _)| (s, resumed))
    }

    /// [`Tandem::respawn`], its environment as `choice` says (`--env`,
    /// `--env-file`, `--env-from-shell`); returns the notes too (secrets
    /// of the session's that could not be given again).
    ///
    /// # Errors
    /// [`ClientError::Supervisor`].
    pub fn respawn_with(
        &self,
        session: &Session,
        env: Vec<(String, String)>,
        choice: EnvChoice,
        (rows, cols): (u16, u16),
    ) -> Result<(Session, bool, Vec<String>), ClientError> {
        let request =
            Request::Respawn { session_id: session.id.clone(), env, rows, cols, choice, wake: false, resume_at: None };
        match self.supervisor()?.request(&request)? {
            Response::Respawned { session, resumed, notes } => Ok((*session, resumed, notes)),
            _ => Err(ClientError::Unexpected { request: "respawn" }),
        }
    }

    /// Starts the agent of a session the supervisor stopped for idleness
    /// again, resuming its conversation where the agent can (issue 19);
    /// any other session is left as it is. Returns the session as it is
    /// now, and `Some` when this call woke it: how long it had been idle
    /// (seconds) and whether its conversation was resumed.
    ///
    /// # Errors
    /// [`ClientError::Supervisor`] (the agent did not start).
    pub fn wake(
        &self,
        session: &Session,
        env: Vec<(String, String)>,
        (rows, cols): (u16, u16),
    ) -> Result<(Session, Option<Woken>), ClientError> {
        let Some(idle_secs) = session::idle_stop::idle_stopped(&self.paths, session) else {
            return Ok((session.clone(), None));
        };
        let request = Request::Respawn {
            session_id: session.id.clone(),
            env,
            rows,
            cols,
            choice: EnvChoice::default(),
            wake: true,
            resume_at: None,
        };
        match self.supervisor()?.request(&request)? {
            Response::Respawned { session, resumed, .. } => Ok((*session, Some(Woken { idle_secs, resumed }))),
            _ => Err(ClientError::Unexpected { request: "respawn" }),
        }
    }

    /// A new session from `session`'s current state (`name`, else
    /// `<source>-fork`), with its environment (not `env`, the caller's:
    /// see [`Tandem::fork_with`]).
    ///
    /// # Errors
    /// [`SessionError::BadName`] for a bad `name`; [`ClientError::Supervisor`].
    pub fn fork(
        &self,
        session: &Session,
        name: Option<&str>,
        env: Vec<(String, String)>,
        size: (u16, u16),
    ) -> Result<Created, ClientError> {
        self.fork_with(session, name, env, EnvChoice::default(), size)
    }

    /// [`Tandem::fork`], the new session's environment as `choice` says.
    ///
    /// # Errors
    /// [`SessionError::BadName`] for a bad `name`; [`ClientError::Supervisor`].
    pub fn fork_with(
        &self,
        session: &Session,
        name: Option<&str>,
        env: Vec<(String, String)>,
        choice: EnvChoice,
        (rows, cols): (u16, u16),
    ) -> Result<Created, ClientError> {
        if let Some(name) = name {
            session::slugs::validate(name).map_err(SessionError::from)?;
        }
        let request =
            Request::Fork { session_id: session.id.clone(), name: name.map(str::to_owned), env, rows, cols, choice };
        match self.supervisor()?.request(&request)? {
            Response::Created { session, notes } => Ok(Created { session: *session, notes }),
            _ => Err(ClientError::Unexpected { request: "fork" }),
        }
    }

    /// Stops the agent of the session with id `session_id`, snapshots
    /// what is unsaved, removes the worktree;
    /// keeps the branch, the history and the row. `env`: the caller's, for
    /// teardown hooks.
    ///
    /// # Errors
    /// [`ClientError::Supervisor`].
    pub fn archive(&self, session_id: &str, env: Vec<(String, String)>) -> Result<Created, ClientError> {
        let request = Request::Archive { session_id: session_id.to_owned(), env };
        match self.supervisor()?.request(&request)? {
            Response::Archived { session, notes } => Ok(Created { session: *session, notes }),
            _ => Err(ClientError::Unexpected { request: "archive" }),
        }
    }

    /// Removes the session named `name` in the repository at `cwd`: its
    /// worktree and branch (refused with unsaved work unless
    /// `options.force`, which keeps a snapshot ref). The supervisor finds
    /// the session, so the caller runs no git.
    ///
    /// # Errors
    /// [`ClientError::Supervisor`] with the refusal.
    pub fn remove(
        &self,
        cwd: &Path,
        name: &str,
        options: RemoveOptions,
        env: Vec<(String, String)>,
    ) -> Result<(RemoveReport, Vec<String>), ClientError> {
        let request = Request::Remove {
            cwd: cwd.to_owned(),
            name: name.to_owned(),
            force: options.force,
            wait: options.wait,
            purge: options.purge,
            env,
        };
        match self.supervisor()?.request(&request)? {
            Response::Removed { report, notes } => Ok((report, notes)),
            _ => Err(ClientError::Unexpected { request: "remove" }),
        }
    }

    /// Has the supervisor record what [`crate::ship::land::merge`] landed:
    /// the history, the session done and, for a pull request GitHub
    /// merged, its status (then polled with the token the merge used,
    /// [`Tandem::watch_pull`]).
    ///
    /// # Errors
    /// [`ClientError::Supervisor`].
    pub fn landed(&self, session: &Session, landed: &crate::ship::land::Landed) -> Result<(), ClientError> {
        let request = Request::Landed {
            session_id: session.id.clone(),
            text: landed.text.clone(),
            pull: landed.pull.as_ref().map(|(status, _)| status.clone()),
        };
        self.supervisor()?.request(&request)?;
        if let Some((_, target)) = &landed.pull {
            self.watch_pull(&session.id, target);
        }
        Ok(())
    }

    /// Has the supervisor poll the session's pull request now, with the
    /// token `target` holds (kept in its memory only). A supervisor that
    /// cannot be reached only means a later first poll.
    pub fn watch_pull(&self, session_id: &str, target: &crate::ship::pull_request::Target) {
        let request = Request::WatchPull {
            session_id: session_id.to_owned(),
            api_url: target.client.api().to_owned(),
            token: target.client.token().to_owned(),
        };
        if let Err(e) = self.supervisor().and_then(|mut s| Ok(s.request(&request)?)) {
            tracing::debug!(error = %e, "the supervisor was not told about the pull request");
        }
    }

    /// Changes the session's title, priority, status or pin; answers what
    /// it now holds.
    ///
    /// # Errors
    /// [`ClientError::Store`].
    pub fn set_meta(&self, session: &Session, update: &MetaUpdate) -> Result<Meta, ClientError> {
        let store = self.store()?;
        store.update_meta(&session.id, update)?;
        Ok(store.session(&session.id)?.map(|s| s.meta).unwrap_or_default())
    }
}
