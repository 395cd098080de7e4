//! `tandem new` (and the sessions fork, review and a task's trials make
//! through it): plans the session under the repository's lock, creates
//! it ([`crate::session::create`]) and starts its host
//! ([`crate::session::launch`]); then warms its facts and, for an agent
//! without hooks, asks for its name.

use std::sync::Arc;
use std::thread;

use rand::RngCore;

use crate::protocol::{CreateRequest, Response};
use crate::session::launch::{self, Launch};
use crate::session::{self, SessionError};

use super::{State, agents, kept_env, naming};

/// The lifecycle's form of a wire request to create a session.
fn new_session(req: &CreateRequest) -> session::NewSession {
    session::NewSession {
        cwd: req.cwd.clone(),
        name: req.name.clone(),
        title: req.title.clone(),
        agent: req.agent.clone(),
        prompt: req.prompt.clone(),
        base: req.base.clone(),
        branch: req.branch.clone(),
        from_pr: req.from_pr,
        env: req.env.clone(),
        review_of: req.review_of.clone(),
        task: req.task.as_ref().map(|t| session::Trial {
            task_id: t.task_id.clone(),
            trial: t.trial,
            owned: t.owned.clone(),
        }),
        vars: req.vars.clone(),
        env_files: req.env_files.clone(),
        sandbox: req.sandbox.clone(),
        creator: req.creator.clone(),
    }
}

pub(super) fn create(state: &Arc<State>, req: &CreateRequest) -> Result<Response, SessionError> {
    let store = state.store()?;
    // Everything is checked under the repository's lock, so two creates
    // cannot both take a name, branch or folder.
    let (repo, config) = session::open_repo_env(&state.paths, &req.cwd, &req.env)?;
    let lock = state.repo_lock(&repo.common_dir);
    let _guard = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let plan = session::plan(&state.paths, &store, repo, config, &new_session(req))?;
    // Read once by the command (a `<(…)` cannot be read again); a file it
    // did not send (a task's, an older CLI's) is read here.
    let files = session::env::env_files(&req.env_files, &req.env_file_vars, &[], "tandem new")?;
    let new_task = req.task.as_ref().and_then(|t| t.new_task.as_ref());
    if let Some(task) = new_task {
        store.insert_task(task)?;
        crate::fault::point("task.stored");
    }
    let mut id = [0u8; 6];
    rand::rng().fill_bytes(&mut id);
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let created = session::create(&state.paths, &store, &plan, id, &req.env, &files, |session| {
        // Its secrets, for its respawns: in this supervisor's memory only.
        let kept = kept_env::SessionEnv {
            caller: req.env.clone(),
            files: files.clone(),
            vars: req.vars.clone(),
            ..Default::default()
        };
        kept_env::keep(state, &session.id, kept.kept());
        // What fork, review and a task's trial add to a new session.
        let prepare = launch::Prepare {
            overlay: req.overlay.as_deref(),
            brief: req.task.as_ref().map(|t| t.brief.as_str()),
            review: req.review_of.is_some(),
        };
        launch::prepare(&plan.repo, session, &prepare)?;
        let first = Launch {
            argv: session.command.clone(),
            env: &req.env,
            files: &files,
            rows: req.rows,
            cols: req.cols,
            typed_input: plan.agent.typed_input.clone(),
            fork_of: req.fork_of.as_deref(),
            resume_at: None,
        };
        agents::launcher(state, &store, &plan.repo, &plan.config).start(session, first).map(drop)
    });
    if created.is_err()
        && let Some(task) = new_task
    {
        // Its first trial was not made (or undone): as if never asked.
        store.delete_tasks_without_trials(Some(&task.id))?;
    }
    // Whether it took a pooled worktree or not, the pool makes up for it.
    super::pool::refill(state, &plan.repo, &plan.config);
    let (session, notes) = created?;
    // Learn the new worktree's facts and watch it, so `list` and `rm`
    // need no `git status` for it later.
    let (warm_state, warm_session) = (Arc::clone(state), session.clone());
    thread::spawn(move || {
        if let Ok(repo) = crate::repo::Repository::discover(&warm_session.path) {
            warm_state.facts.warm(&repo, &warm_session);
        }
    });
    // Claude's TUI asks for a title from its first prompt's hook; an agent
    // without hooks is asked here (`send` asks for a first prompt later).
    if let Some(prompt) =
        req.prompt.clone().filter(|_| session.auto_named && crate::agent::Kind::of(&session.agent).structured())
    {
        naming::spawn_auto_name(state, session.id.clone(), prompt, req.env.clone())?;
    }
    Ok(Response::Created { session: Box::new(session), notes })
}
