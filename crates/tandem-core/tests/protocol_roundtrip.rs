//! Every protocol message survives a trip through a frame (issue 18).
//!
//! Each message is written with [`protocol::send`], read back with
//! [`protocol::recv`], and its JSON compared with the original's: the
//! trip loses nothing and the shape is the same on both ends. The
//! strategies below build every variant of [`Request`], [`Response`],
//! [`ClientMsg`], [`HostMsg`], and the host's [`HostSpec`] and
//! [`HostReady`], with random field values; `*_variant` functions match
//! every variant without a wildcard, so a new variant does not compile
//! until it is named there, and `every_variant_is_generated` fails until
//! its strategy makes it.
//!
//! Over 600 lines because it names every field of every message once, in
//! one strategy per type; split it when the protocol becomes a crate.

use std::collections::BTreeSet;
use std::io::Cursor;
use std::path::PathBuf;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tandem_core::agent::Conversation;
use tandem_core::host::{HostReady, HostSpec};
use tandem_core::model::CheckResult;
use tandem_core::model::error::ErrorKind;
use tandem_core::model::{
    Activity, Checks, ConflictReport, DiffStat, Finding, GcReport, GitFacts, Meta, PairConflicts, PrState, PrStatus,
    Priority, RefFacts, RemoveReport, Review, SandboxMode, Session, SessionConflicts, SessionState, Task, TaskStatus,
    WorktreeFacts,
};
use tandem_core::protocol::{
    self, ClientMode, ClientMsg, CreateRequest, EnvChoice, EnvFile, HostMsg, Listed, Outcome, Request, Response,
    TaskNewRequest, TrialOf,
};
use tandem_core::rows::table::{Frame, ListView, Sort};
use tandem_core::rows::{Group, Tally};
use tandem_core::sandbox::Forward;

/// Sends `msg` in a frame, reads it back, and checks the JSON of both.
fn round_trip<T: Serialize + DeserializeOwned>(msg: &T) -> Result<(), TestCaseError> {
    let mut buf = Vec::new();
    protocol::send(&mut buf, msg).map_err(|e| TestCaseError::fail(format!("send: {e}")))?;
    let mut reader = Cursor::new(buf);
    let back: T = protocol::recv(&mut reader)
        .map_err(|e| TestCaseError::fail(format!("recv: {e}")))?
        .ok_or_else(|| TestCaseError::fail("no frame"))?;
    let sent = serde_json::to_string(msg).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let received = serde_json::to_string(&back).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(sent, received);
    // One frame, nothing left over.
    prop_assert!(protocol::read_frame(&mut reader).map_err(|e| TestCaseError::fail(e.to_string()))?.is_none());
    Ok(())
}

proptest! {
    #[test]
    fn requests_round_trip(msg in request()) {
        round_trip(&msg)?;
    }

    #[test]
    fn responses_round_trip(msg in response()) {
        round_trip(&msg)?;
        // The client's one-pass decoding of `list`'s answer reads the
        // same rows; every other response is left to `Response`.
        let payload = serde_json::to_vec(&msg).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let fast = Listed::decode(&payload).map_err(|e| TestCaseError::fail(format!("decode: {e}")))?;
        match (&msg, fast) {
            (Response::Listed(sent), Some(read)) => prop_assert_eq!(&**sent, &read),
            (Response::Listed(_), None) => prop_assert!(false, "a listed answer was not decoded in one pass"),
            (_, Some(_)) => prop_assert!(false, "another response was decoded as rows"),
            (_, None) => {}
        }
    }

    #[test]
    fn client_messages_round_trip(msg in client_msg()) {
        round_trip(&msg)?;
    }

    #[test]
    fn host_messages_round_trip(msg in host_msg()) {
        round_trip(&msg)?;
    }

    #[test]
    fn host_specs_round_trip(spec in host_spec(), ready in host_ready()) {
        round_trip(&spec)?;
        round_trip(&ready)?;
    }
}

/// Names the variant of `$value` with an exhaustive `match` over the
/// patterns given, and says how many there are: `(name, count)`.
macro_rules! variant_of {
    ($value:expr, $($pat:pat),+ $(,)?) => {{
        let names = [$(stringify!($pat)),+];
        let name = match $value { $($pat => stringify!($pat)),+ };
        (name, names.len())
    }};
}

fn request_variant(msg: &Request) -> (&'static str, usize) {
    variant_of!(
        msg,
        Request::Hello { .. },
        Request::Create(_),
        Request::Stop { .. },
        Request::Remove { .. },
        Request::Archive { .. },
        Request::AutoName { .. },
        Request::Fork { .. },
        Request::Conflicts { .. },
        Request::WatchPull { .. },
        Request::Review { .. },
        Request::Respawn { .. },
        Request::Restore { .. },
        Request::List { .. },
        Request::ListText { .. },
        Request::Tally { .. },
        Request::Gc { .. },
        Request::Doctor { .. },
        Request::Changes { .. },
        Request::Status,
        Request::Shutdown,
        Request::TaskNew(_),
        Request::TaskPromote { .. },
        Request::TaskSetStatus { .. },
        Request::Landed { .. },
        Request::Answered { .. },
        Request::CheckRan { .. },
        Request::Rename { .. },
    )
}

fn response_variant(msg: &Response) -> (&'static str, usize) {
    variant_of!(
        msg,
        Response::Hello { .. },
        Response::Created { .. },
        Response::Stopped { .. },
        Response::Removed { .. },
        Response::Archived { .. },
        Response::Restored { .. },
        Response::Respawned { .. },
        Response::Collected(_),
        Response::Listed { .. },
        Response::Text(_),
        Response::Tally(_),
        Response::Conflicts { .. },
        Response::Doctor { .. },
        Response::Status { .. },
        Response::Changed { .. },
        Response::Ok,
        Response::Error { .. },
        Response::TaskCreated { .. },
        Response::TaskPromoted { .. },
        Response::TaskStatusSet { .. },
        Response::Renamed { .. },
    )
}

fn client_msg_variant(msg: &ClientMsg) -> (&'static str, usize) {
    variant_of!(
        msg,
        ClientMsg::Hello { mode: ClientMode::Attach { .. }, .. },
        ClientMsg::Hello { mode: ClientMode::Logs { .. }, .. },
        ClientMsg::Hello { mode: ClientMode::Control, .. },
        ClientMsg::Resize { .. },
        ClientMsg::Stop { .. },
        ClientMsg::Redraw,
        ClientMsg::Status,
        ClientMsg::Prompt { .. },
        ClientMsg::Answer { .. },
        ClientMsg::Interrupt,
        ClientMsg::Hook { .. },
    )
}

fn host_msg_variant(msg: &HostMsg) -> (&'static str, usize) {
    variant_of!(
        msg,
        HostMsg::Welcome { .. },
        HostMsg::Text { .. },
        HostMsg::Status { .. },
        HostMsg::Exited { .. },
        HostMsg::Error { .. },
        HostMsg::Hooked { .. },
    )
}

fn host_ready_variant(msg: &HostReady) -> (&'static str, usize) {
    variant_of!(msg, HostReady::Running { .. }, HostReady::Failed { .. })
}

/// Draws `samples` values of `strategy` (deterministically) and checks
/// that `variant` saw every variant it names.
fn covers<T: std::fmt::Debug>(
    what: &str,
    strategy: impl Strategy<Value = T>,
    variant: fn(&T) -> (&'static str, usize),
) {
    let mut runner = TestRunner::deterministic();
    let mut seen = BTreeSet::new();
    let mut count = 0;
    for _ in 0..2_000 {
        let value = strategy.new_tree(&mut runner).expect("a value").current();
        let (name, all) = variant(&value);
        seen.insert(name);
        count = all;
    }
    assert_eq!(seen.len(), count, "the {what} strategy makes only these variants: {seen:?}; add a case for the others");
}

#[test]
fn every_variant_is_generated() {
    covers("Request", request(), request_variant);
    covers("Response", response(), response_variant);
    covers("ClientMsg", client_msg(), client_msg_variant);
    covers("HostMsg", host_msg(), host_msg_variant);
    covers("HostReady", host_ready(), host_ready_variant);
}

// Strategies for the fields.

fn text() -> impl Strategy<Value = String> {
    any::<String>()
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(text())
}

fn texts() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(text(), 0..4)
}

fn path() -> impl Strategy<Value = PathBuf> {
    text().prop_map(PathBuf::from)
}

fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec((text(), text()), 0..4)
}

fn session_state() -> impl Strategy<Value = SessionState> {
    prop_oneof![
        Just(SessionState::Creating),
        Just(SessionState::Running),
        Just(SessionState::Exited),
        Just(SessionState::Stopped),
        Just(SessionState::Lost),
        Just(SessionState::Archived),
        Just(SessionState::Removed),
    ]
}

fn task_status() -> impl Strategy<Value = TaskStatus> {
    proptest::sample::select(TaskStatus::ALL)
}

fn list_view() -> impl Strategy<Value = ListView> {
    let sort = proptest::sample::select(vec![Sort::Created, Sort::Age, Sort::Name, Sort::Priority]);
    let filters = (
        proptest::collection::vec(task_status(), 0..3),
        proptest::collection::vec(proptest::sample::select(Priority::ALL), 0..3),
        any::<bool>(),
        sort,
        texts(),
    );
    let terminal = (proptest::option::of(any::<u16>().prop_map(usize::from)), any::<bool>(), opt_text(), pairs());
    (any::<bool>(), any::<bool>(), any::<bool>(), filters, terminal).prop_map(
        |(json, archived, all, (statuses, priorities, pinned, sort, columns), (width, colour, home, env))| ListView {
            json,
            archived,
            all,
            statuses,
            priorities,
            pinned,
            sort,
            columns,
            width,
            colour,
            home,
            env,
        },
    )
}

fn tally() -> impl Strategy<Value = Tally> {
    let group = proptest::sample::select(Group::ALL.to_vec());
    (
        proptest::collection::vec((group, any::<u32>().prop_map(|n| n as usize)), 0..4),
        any::<u32>(),
        proptest::option::of((text(), opt_text())),
    )
        .prop_map(|(groups, total, needs_input)| Tally { groups, total: total as usize, needs_input })
}

fn meta() -> impl Strategy<Value = Meta> {
    (opt_text(), proptest::sample::select(Priority::ALL), task_status(), any::<bool>())
        .prop_map(|(title, priority, status, pinned)| Meta { title, priority, status, pinned })
}

fn pr_status() -> impl Strategy<Value = PrStatus> {
    let state = prop_oneof![Just(PrState::Open), Just(PrState::Draft), Just(PrState::Merged), Just(PrState::Closed)];
    let checks = prop_oneof![Just(Checks::Passing), Just(Checks::Failing), Just(Checks::Pending), Just(Checks::None)];
    let review = prop_oneof![
        Just(Review::Approved),
        Just(Review::ChangesRequested),
        Just(Review::ReviewRequired),
        Just(Review::None)
    ];
    (any::<u64>(), text(), state, checks, review, any::<i64>()).prop_map(
        |(number, url, state, checks, review, checked_at)| PrStatus { number, url, state, checks, review, checked_at },
    )
}

fn session() -> impl Strategy<Value = Session> {
    let names = (text(), any::<i64>(), text(), text(), text(), texts(), path(), text(), text(), session_state());
    let process = (
        proptest::option::of(any::<i32>()),
        proptest::option::of(any::<i32>()),
        proptest::option::of(any::<i32>()),
        any::<i64>(),
        any::<i64>(),
        opt_text(),
        meta(),
        any::<bool>(),
        proptest::option::of(any::<i64>()),
        texts(),
    );
    let later = (
        opt_text(),
        opt_text(),
        proptest::option::of(any::<i64>()),
        proptest::option::of(proptest::sample::select(Activity::ALL)),
        opt_text(),
        opt_text(),
        proptest::option::of(any::<i64>()),
        any::<bool>(),
        opt_text(),
        proptest::option::of(pr_status()),
    );
    let trial = (
        opt_text(),
        opt_text(),
        proptest::option::of(any::<i64>()),
        texts(),
        pairs(),
        proptest::collection::vec(path(), 0..3),
        proptest::option::of(any::<i64>()),
        proptest::option::of(prop_oneof![Just(SandboxMode::Workspace), Just(SandboxMode::Container)]),
        opt_text(),
    );
    (names, process, later, trial).prop_map(
        |(
            (id, repo_id, slug, branch, agent, command, path, base_ref, base_commit, state),
            (
                exit_code,
                host_pid,
                agent_pid,
                created_at,
                updated_at,
                archive_ref,
                meta,
                owns_branch,
                pr_number,
                included,
            ),
            (last_commit, summary, archived_at, activity, asking, agent_session, activity_at, auto_named, pending, pr),
            (review_of, task_id, trial, owned, env, env_files, port, sandbox, creator),
        )| Session {
            id,
            repo_id,
            slug,
            branch,
            agent,
            command,
            path,
            base_ref,
            base_commit,
            state,
            exit_code,
            host_pid,
            agent_pid,
            created_at,
            updated_at,
            archive_ref,
            meta,
            owns_branch,
            pr_number,
            included,
            last_commit,
            summary,
            archived_at,
            pending,
            activity,
            asking,
            agent_session,
            activity_at,
            auto_named,
            pr,
            review_of,
            task_id,
            trial,
            owned,
            env,
            env_files,
            port,
            sandbox,
            creator,
        },
    )
}

fn boxed_session() -> impl Strategy<Value = Box<Session>> {
    session().prop_map(Box::new)
}

fn task() -> impl Strategy<Value = Task> {
    (text(), any::<i64>(), text(), text(), opt_text(), texts(), task_status(), opt_text(), any::<i64>()).prop_map(
        |(id, repo_id, slug, objective, check, owned, status, promoted, created_at)| Task {
            id,
            repo_id,
            slug,
            objective,
            check,
            owned,
            status,
            promoted,
            created_at,
        },
    )
}

fn trial_of() -> impl Strategy<Value = TrialOf> {
    (text(), any::<i64>(), texts(), text(), proptest::option::of(task()))
        .prop_map(|(task_id, trial, owned, brief, new_task)| TrialOf { task_id, trial, owned, brief, new_task })
}

fn env_files() -> impl Strategy<Value = Vec<EnvFile>> {
    proptest::collection::vec((path(), pairs()).prop_map(|(path, vars)| EnvFile { path, vars }), 0..3)
}

fn env_choice() -> impl Strategy<Value = EnvChoice> {
    (pairs(), env_files(), any::<bool>()).prop_map(|(vars, env_files, from_shell)| EnvChoice {
        vars,
        env_files,
        from_shell,
    })
}

fn create_request() -> impl Strategy<Value = CreateRequest> {
    let asked = (path(), opt_text(), opt_text(), opt_text(), opt_text(), opt_text(), opt_text());
    let start = (proptest::option::of(any::<u64>()), pairs(), any::<u16>(), any::<u16>(), opt_text(), opt_text());
    let extra = (
        opt_text(),
        proptest::option::of(trial_of()),
        pairs(),
        proptest::collection::vec(path(), 0..3),
        opt_text(),
        env_files(),
        opt_text(),
    );
    (asked, start, extra).prop_map(
        |(
            (cwd, name, title, agent, prompt, base, branch),
            (from_pr, env, rows, cols, fork_of, overlay),
            (review_of, task, vars, env_files, sandbox, env_file_vars, creator),
        )| CreateRequest {
            cwd,
            name,
            title,
            agent,
            prompt,
            base,
            branch,
            from_pr,
            env,
            rows,
            cols,
            fork_of,
            overlay,
            review_of,
            task,
            vars,
            env_files,
            env_file_vars,
            sandbox,
            creator,
        },
    )
}

fn diffstat() -> impl Strategy<Value = DiffStat> {
    (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(files, insertions, deletions)| DiffStat {
        files,
        insertions,
        deletions,
    })
}

fn git_facts() -> impl Strategy<Value = GitFacts> {
    let worktree = (any::<bool>(), any::<u32>(), any::<u32>(), opt_text(), diffstat()).prop_map(
        |(exists, changed, untracked, head, uncommitted)| WorktreeFacts {
            exists,
            changed,
            untracked,
            head,
            uncommitted,
            // Not sent (`#[serde(skip)]`): the supervisor's own.
            paths: None,
        },
    );
    let count = || proptest::option::of(any::<u32>());
    let refs = (opt_text(), count(), count(), opt_text(), count(), diffstat()).prop_map(
        |(tip, ahead, behind, remote_base, behind_remote, committed)| RefFacts {
            tip,
            ahead,
            behind,
            remote_base,
            behind_remote,
            committed,
        },
    );
    (worktree, refs, any::<bool>()).prop_map(|(worktree, refs, watched)| GitFacts {
        worktree,
        refs,
        source: if watched {
            tandem_core::model::FactsSource::Watched
        } else {
            tandem_core::model::FactsSource::Polled
        },
    })
}

fn conflict_report() -> impl Strategy<Value = ConflictReport> {
    let paths = || proptest::option::of(texts());
    let session = (text(), texts(), text(), paths(), texts(), texts(), texts()).prop_map(
        |(name, touched, base, base_conflicts, outside_owned, overlaps_with, conflicts_with)| SessionConflicts {
            name,
            touched,
            base,
            base_conflicts,
            outside_owned,
            overlaps_with,
            conflicts_with,
        },
    );
    let pair = (text(), text(), texts(), paths()).prop_map(|(a, b, overlap, conflicts)| PairConflicts {
        a,
        b,
        overlap,
        conflicts,
    });
    (proptest::collection::vec(session, 0..3), proptest::collection::vec(pair, 0..3), any::<usize>())
        .prop_map(|(sessions, pairs, pairs_checked)| ConflictReport { sessions, pairs, pairs_checked })
}

fn request() -> impl Strategy<Value = Request> {
    let id = text;
    prop_oneof![
        any::<u32>().prop_map(|version| Request::Hello { version }),
        create_request().prop_map(|req| Request::Create(Box::new(req))),
        id().prop_map(|session_id| Request::Stop { session_id }),
        (path(), text(), any::<bool>(), any::<bool>(), any::<bool>(), pairs())
            .prop_map(|(cwd, name, force, wait, purge, env)| Request::Remove { cwd, name, force, wait, purge, env }),
        (id(), pairs()).prop_map(|(session_id, env)| Request::Archive { session_id, env }),
        (id(), text(), pairs()).prop_map(|(session_id, prompt, env)| Request::AutoName { session_id, prompt, env }),
        (id(), opt_text(), pairs(), any::<u16>(), any::<u16>(), env_choice()).prop_map(
            |(session_id, name, env, rows, cols, choice)| Request::Fork { session_id, name, env, rows, cols, choice }
        ),
        (path(), any::<bool>()).prop_map(|(cwd, fresh)| Request::Conflicts { cwd, fresh, foreign: Vec::new() }),
        (id(), text(), text()).prop_map(|(session_id, api_url, token)| Request::WatchPull {
            session_id,
            api_url,
            token
        }),
        (id(), opt_text(), opt_text(), pairs(), any::<u16>(), any::<u16>()).prop_map(
            |(session_id, agent, name, env, rows, cols)| Request::Review { session_id, agent, name, env, rows, cols }
        ),
        (id(), pairs(), any::<u16>(), any::<u16>(), env_choice(), any::<bool>(), opt_text()).prop_map(
            |(session_id, env, rows, cols, choice, wake, resume_at)| Request::Respawn {
                session_id,
                env,
                rows,
                cols,
                choice,
                wake,
                resume_at
            },
        ),
        (id(), pairs(), any::<u16>(), any::<u16>()).prop_map(|(session_id, env, rows, cols)| Request::Restore {
            session_id,
            env,
            rows,
            cols
        }),
        (path(), any::<bool>(), any::<bool>()).prop_map(|(cwd, archived, messages)| Request::List {
            cwd,
            archived,
            messages
        }),
        (path(), list_view()).prop_map(|(cwd, view)| Request::ListText { cwd, view }),
        (proptest::option::of(path()), pairs()).prop_map(|(cwd, env)| Request::Tally { cwd, env }),
        (path(), any::<u64>()).prop_map(|(cwd, older_than_secs)| Request::Gc { cwd, older_than_secs }),
        (path(), any::<bool>()).prop_map(|(cwd, fix)| Request::Doctor { cwd, fix }),
        any::<u64>().prop_map(|generation| Request::Changes { generation }),
        Just(Request::Status),
        Just(Request::Shutdown),
        task_new().prop_map(|req| Request::TaskNew(Box::new(req))),
        (path(), text(), text(), pairs()).prop_map(|(cwd, task, trial, env)| Request::TaskPromote {
            cwd,
            task,
            trial,
            env
        }),
        (path(), text(), task_status()).prop_map(|(cwd, task, status)| Request::TaskSetStatus { cwd, task, status }),
        (id(), text(), proptest::option::of(pr_status())).prop_map(|(session_id, text, pull)| Request::Landed {
            session_id,
            text,
            pull
        }),
        (id(), any::<bool>(), opt_text()).prop_map(|(session_id, allow, asked)| Request::Answered {
            session_id,
            allow,
            asked
        }),
        (id(), text(), text(), check_result()).prop_map(|(session_id, state, command, result)| Request::CheckRan {
            session_id,
            state,
            command,
            result
        }),
        (id(), text(), any::<bool>()).prop_map(|(session_id, name, branch)| Request::Rename {
            session_id,
            name,
            branch
        }),
    ]
}

fn task_new() -> impl Strategy<Value = TaskNewRequest> {
    let first = (path(), text(), opt_text(), proptest::option::of(any::<usize>()), texts(), opt_text());
    let rest = (opt_text(), texts(), opt_text(), pairs(), opt_text());
    (first, rest).prop_map(|((cwd, objective, name, trials, agents, base), (check, owns, sandbox, env, creator))| {
        TaskNewRequest { cwd, objective, name, trials, agents, base, check, owns, sandbox, env, creator }
    })
}

fn check_result() -> impl Strategy<Value = CheckResult> {
    (proptest::option::of(any::<i32>()), text(), any::<i64>(), any::<i64>())
        .prop_map(|(exit_code, output, duration_ms, at)| CheckResult { exit_code, output, duration_ms, at })
}

fn outcomes() -> impl Strategy<Value = Vec<Outcome>> {
    proptest::collection::vec((session(), texts()).prop_map(|(session, notes)| Outcome { session, notes }), 0..3)
}

fn error_kind() -> impl Strategy<Value = ErrorKind> {
    prop_oneof![
        Just(ErrorKind::NotFound),
        Just(ErrorKind::InvalidInput),
        Just(ErrorKind::Conflict),
        Just(ErrorKind::Unavailable),
        Just(ErrorKind::Failed),
        Just(ErrorKind::Internal),
    ]
}

fn response() -> impl Strategy<Value = Response> {
    let remove_report = (text(), text(), path(), opt_text())
        .prop_map(|(slug, branch, path, archive_ref)| RemoveReport { slug, branch, path, archive_ref });
    let gc_report = (
        texts(),
        texts(),
        texts(),
        proptest::collection::vec(path(), 0..3),
        texts(),
        proptest::collection::vec(path(), 0..3),
    )
        .prop_map(|(refs, kept, others, trash, checkpoints, pool)| GcReport {
            refs,
            kept,
            others,
            trash,
            checkpoints,
            pool,
        });
    let finding = (opt_text(), text(), text(), any::<bool>()).prop_map(|(session, problem, remedy, fixed)| Finding {
        session,
        problem,
        remedy,
        fixed,
    });
    prop_oneof![
        (any::<u32>(), any::<u32>()).prop_map(|(version, pid)| Response::Hello { version, pid }),
        (boxed_session(), texts()).prop_map(|(session, notes)| Response::Created { session, notes }),
        boxed_session().prop_map(|session| Response::Stopped { session }),
        (remove_report, texts()).prop_map(|(report, notes)| Response::Removed { report, notes }),
        (boxed_session(), texts()).prop_map(|(session, notes)| Response::Archived { session, notes }),
        (boxed_session(), texts()).prop_map(|(session, notes)| Response::Restored { session, notes }),
        (boxed_session(), any::<bool>(), texts()).prop_map(|(session, resumed, notes)| Response::Respawned {
            session,
            resumed,
            notes
        }),
        gc_report.prop_map(Response::Collected),
        (
            path(),
            proptest::collection::vec(session(), 0..3),
            proptest::collection::vec(git_facts(), 0..3),
            texts(),
            conflict_report(),
            any::<bool>(),
            proptest::collection::vec(proptest::option::of(text()), 0..3),
        )
            .prop_map(|(root, sessions, facts, notes, conflicts, conflicts_current, messages)| {
                Response::Listed(Box::new(Listed {
                    root,
                    sessions,
                    facts,
                    notes,
                    conflicts,
                    conflicts_current,
                    messages,
                }))
            }),
        conflict_report().prop_map(|report| Response::Conflicts { report: Box::new(report) }),
        proptest::collection::vec(finding, 0..3).prop_map(|findings| Response::Doctor { findings }),
        (any::<u32>(), any::<i64>(), any::<usize>(), any::<usize>(), proptest::collection::vec(".{0,12}", 0..3))
            .prop_map(|(pid, started_at, hosts, used, polled)| Response::Status {
                pid,
                started_at,
                hosts,
                watches: tandem_core::model::WatchReport { used, cap: used / 2, system_max: Some(used), polled },
            }),
        any::<u64>().prop_map(|generation| Response::Changed { generation }),
        (text(), texts()).prop_map(|(text, notes)| Response::Text(Frame { text, notes })),
        tally().prop_map(Response::Tally),
        Just(Response::Ok),
        (error_kind(), text(), texts()).prop_map(|(kind, message, hints)| Response::Error {
            kind,
            message,
            hints,
            causes: Vec::new()
        }),
        (text(), any::<usize>(), outcomes(), opt_text())
            .prop_map(|(slug, count, trials, failed)| Response::TaskCreated { slug, count, trials, failed }),
        (text(), boxed_session(), outcomes(), opt_text())
            .prop_map(|(task, winner, archived, failed)| { Response::TaskPromoted { task, winner, archived, failed } }),
        (text(), task_status()).prop_map(|(task, status)| Response::TaskStatusSet { task, status }),
        (boxed_session(), texts()).prop_map(|(session, notes)| Response::Renamed { session, notes }),
    ]
}

fn client_msg() -> impl Strategy<Value = ClientMsg> {
    let mode = prop_oneof![
        (any::<u16>(), any::<u16>()).prop_map(|(rows, cols)| ClientMode::Attach { rows, cols }),
        any::<bool>().prop_map(|follow| ClientMode::Logs { follow }),
        Just(ClientMode::Control),
    ];
    // Hook payloads are Claude Code's JSON: objects of strings, numbers
    // (integers here: a float's text may not come back to the same bits),
    // booleans and nulls.
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        text().prop_map(serde_json::Value::from),
    ];
    let payload = leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(text(), inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    prop_oneof![
        (any::<u32>(), proptest::option::of(any::<u32>()), mode).prop_map(|(version, newest, mode)| ClientMsg::Hello {
            version,
            newest,
            mode
        }),
        (any::<u16>(), any::<u16>()).prop_map(|(rows, cols)| ClientMsg::Resize { rows, cols }),
        any::<u64>().prop_map(|grace_ms| ClientMsg::Stop { grace_ms }),
        Just(ClientMsg::Redraw),
        Just(ClientMsg::Status),
        text().prop_map(|text| ClientMsg::Prompt { text }),
        (any::<bool>(), opt_text()).prop_map(|(allow, message)| ClientMsg::Answer { allow, message }),
        Just(ClientMsg::Interrupt),
        payload.prop_map(|payload| ClientMsg::Hook { payload }),
    ]
}

fn host_msg() -> impl Strategy<Value = HostMsg> {
    prop_oneof![
        (any::<u32>(), text(), any::<i32>()).prop_map(|(version, session_id, agent_pid)| HostMsg::Welcome {
            version,
            session_id,
            agent_pid
        }),
        text().prop_map(|text| HostMsg::Text { text }),
        any::<usize>().prop_map(|attached| HostMsg::Status { attached }),
        (session_state(), proptest::option::of(any::<i32>()))
            .prop_map(|(state, exit_code)| HostMsg::Exited { state, exit_code }),
        text().prop_map(|message| HostMsg::Error { message }),
        any::<bool>().prop_map(|auto_named| HostMsg::Hooked { auto_named }),
    ]
}

fn host_spec() -> impl Strategy<Value = HostSpec> {
    let conversation = prop_oneof![
        Just(Conversation::Any),
        text().prop_map(Conversation::New),
        text().prop_map(Conversation::Resume),
        text().prop_map(Conversation::Fork),
    ];
    let forward = (any::<std::net::SocketAddr>(), path()).prop_map(|(addr, socket)| Forward { addr, socket });
    let first = (any::<u32>(), text(), texts(), path(), pairs(), any::<u16>(), any::<u16>(), opt_text());
    let rest =
        (text(), conversation, proptest::collection::vec(forward, 0..3), proptest::option::of(texts()), any::<bool>());
    (first, rest).prop_map(
        |(
            (version, session_id, argv, cwd, env, rows, cols, typed_input),
            (agent, conversation, forwards, cleanup, sandboxed),
        )| HostSpec {
            version,
            session_id,
            argv,
            cwd,
            env,
            rows,
            cols,
            typed_input,
            agent,
            conversation,
            forwards,
            cleanup,
            sandboxed,
        },
    )
}

fn host_ready() -> impl Strategy<Value = HostReady> {
    prop_oneof![
        (any::<u32>(), any::<i32>(), any::<i32>()).prop_map(|(version, host_pid, agent_pid)| HostReady::Running {
            version,
            host_pid,
            agent_pid
        }),
        (any::<u32>(), text()).prop_map(|(version, message)| HostReady::Failed { version, message }),
    ]
}
