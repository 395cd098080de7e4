//! `tandem mcp`: the real binary as an MCP server, spoken to over its
//! stdin/stdout with JSON-RPC as an MCP client does (newline-delimited
//! messages), and driven by the real Claude Code against the scripted
//! model stand-in.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::anthropic::{MessagesStub, Step, use_claude};
use crate::common::{TestEnv, WAIT, wait_for, wait_within};

/// A `tandem mcp` child and the messages it writes.
pub(crate) struct Mcp {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    next_id: u64,
}

impl Mcp {
    /// `tandem mcp` in `dir`, with `extra` in its environment; initialized.
    pub(crate) fn start(env: &TestEnv, dir: &Path, extra: &[(&str, &str)]) -> Mcp {
        let mut cmd: Command = env.command_in(dir, &["mcp"]);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child =
            cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("tandem mcp");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut mcp = Mcp { child, stdin, lines, next_id: 1 };
        let init = mcp.request(
            "initialize",
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "tandem-test", "version": "1"},
            }),
        );
        assert_eq!(init["result"]["serverInfo"]["name"], "tandem", "{init}");
        assert!(init["result"]["capabilities"]["tools"].is_object(), "{init}");
        assert!(init["result"]["capabilities"]["resources"].is_object(), "{init}");
        mcp.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        mcp
    }

    fn send(&mut self, message: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{message}").expect("write to tandem mcp");
        stdin.flush().expect("flush");
    }

    /// Sends request `method` and waits for its response (the whole
    /// JSON-RPC object).
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let line =
                self.lines.recv_timeout(WAIT).unwrap_or_else(|_| panic!("no answer to {method} within {WAIT:?}"));
            let message: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            if message["id"] == id {
                return message;
            }
        }
    }

    /// Calls tool `name`: whether it was an error, and its text.
    pub(crate) fn call(&mut self, name: &str, arguments: Value) -> (bool, String) {
        let answer = self.request("tools/call", json!({"name": name, "arguments": arguments}));
        let result = &answer["result"];
        assert!(result.is_object(), "tools/call {name} answered no result: {answer}");
        let text = result["content"][0]["text"].as_str().unwrap_or_else(|| panic!("no text: {answer}")).to_owned();
        (result["isError"] == true, text)
    }

    /// Calls tool `name`, asserts it succeeded, parses its JSON answer.
    fn ok(&mut self, name: &str, arguments: Value) -> Value {
        let (error, text) = self.call(name, arguments);
        assert!(!error, "{name} failed: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} answered no JSON ({e}): {text}"))
    }

    /// Closes stdin and waits for the server to end: it ends with its input.
    fn finish(mut self) {
        drop(self.stdin.take());
        let status = wait_for("tandem mcp to exit after its stdin closed", || self.child.try_wait().ok().flatten());
        assert!(status.success(), "tandem mcp exited with {status}");
    }
}

impl Drop for Mcp {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The error `tandem ARGS` prints, as one line (causes after `: `, hints
/// after `; `) without `error: `: what a tool refused with says the same.
fn cli_error(env: &TestEnv, args: &[&str]) -> String {
    let line = env.fails(args);
    line.strip_prefix("error: ").unwrap_or(&line).to_owned()
}

/// An agent that writes `made.txt` in its worktree and then waits: its
/// diff is that file.
const WRITER: &str = "sh -c 'echo made-by-sub-session > made.txt; exec sleep 600'";

#[test]
fn mcp_tools_make_a_session_and_read_its_state_history_and_diff() {
    let env = TestEnv::new();
    let mut mcp = Mcp::start(&env, &env.repo, &[]);

    let tools = mcp.request("tools/list", json!({}));
    let names: Vec<&str> =
        tools["result"]["tools"].as_array().expect("tools").iter().filter_map(|t| t["name"].as_str()).collect();
    for tool in [
        "list_sessions",
        "new_session",
        "send_prompt",
        "get_history",
        "get_diff",
        "session_state",
        "approve",
        "deny",
        "conflicts",
        "task_new",
        "task_show",
    ] {
        assert!(names.contains(&tool), "tools/list lacks {tool}: {names:?}");
    }

    assert_eq!(mcp.ok("list_sessions", json!({})), json!([]));

    let made = mcp.ok("new_session", json!({"name": "sub", "agent": WRITER}));
    assert_eq!(made["name"], "sub", "{made}");
    assert_eq!(made["branch"], "sub", "{made}");
    assert_eq!(made["creator"], Value::Null, "no session runs this server: {made}");
    let id = made["id"].as_str().expect("id").to_owned();

    // The session is tandem's like any other: `tandem list` shows it.
    assert_eq!(env.session("sub")["id"], id.as_str());
    // The same rows but for the clock: ages are counted from each call's
    // own now, and the agent may act between the two calls.
    let steady = |mut rows: Value| {
        for row in rows.as_array_mut().into_iter().flatten() {
            let row = row.as_object_mut().expect("a row is an object");
            assert!(row.remove("age_seconds").is_some() && row.remove("last_activity").is_some(), "{row:?}");
        }
        rows
    };
    let listed = steady(mcp.ok("list_sessions", json!({})));
    let cli = steady(serde_json::from_str::<Value>(&env.ok(&["list", "--json"])).expect("json"));
    assert_eq!(listed, cli, "same rows");

    let diff = wait_for("the sub-session's agent to write made.txt", || {
        let diff = mcp.ok("get_diff", json!({"name": "sub"}));
        diff["files"].as_array().is_some_and(|f| !f.is_empty()).then_some(diff)
    });
    assert_eq!(diff["session"], "sub");
    assert_eq!(diff["files"][0]["path"], "made.txt", "{diff}");
    assert!(diff["patch"].as_str().is_some_and(|p| p.contains("+made-by-sub-session")), "{diff}");
    // The shape of `tandem diff --json`, plus the patch.
    let cli: Value = serde_json::from_str(&env.ok(&["diff", "sub", "--json"])).expect("diff --json");
    assert_eq!(cli["files"], diff["files"]);

    // Names are found as the CLI finds them: REPO/NAME, and from `repo`.
    assert_eq!(mcp.ok("session_state", json!({"name": "repo/sub"}))["id"], id.as_str());
    assert_eq!(mcp.ok("session_state", json!({"name": "sub", "repo": env.repo}))["id"], id.as_str());
    let (error, text) = mcp.call("list_sessions", json!({"repo": "/no/such/folder"}));
    assert!(error && text.contains("`/no/such/folder` is not a folder"), "{text}");

    let state = mcp.ok("session_state", json!({"name": "sub"}));
    assert_eq!(state["id"], id.as_str(), "{state}");
    assert_eq!(state["awaits_permission"], false, "{state}");
    assert!(["running", "idle"].contains(&state["state"].as_str().unwrap_or_default()), "{state}");
    assert!(state["next"].is_string(), "{state}");

    // A prompt goes to its agent, and into its history.
    assert_eq!(mcp.ok("send_prompt", json!({"name": "sub", "text": "carry on"}))["ok"], true);
    let (error, text) = mcp.call("send_prompt", json!({"name": "sub", "text": "  "}));
    assert!(error, "{text}");
    assert_eq!(text, cli_error(&env, &["send", "sub", "  "]));

    // History: `tandem history --json`'s lines.
    let (error, history) = mcp.call("get_history", json!({"name": "sub"}));
    assert!(!error, "{history}");
    let cli_history = env.ok(&["history", "sub", "--json"]);
    assert!(!history.is_empty() && cli_history.starts_with(&history), "{history}\nvs\n{cli_history}");
    let events: Vec<Value> = history.lines().map(|l| serde_json::from_str(l).expect("an event a line")).collect();
    assert!(events.iter().all(|e| e["session_id"] == id.as_str()), "{history}");
    assert!(events.iter().any(|e| e["kind"] == "prompt" && e["text"] == "carry on"), "{history}");

    // Resources: one history per live session.
    let resources = mcp.request("resources/list", json!({}));
    let uri = format!("tandem://session/{id}/history");
    assert!(
        resources["result"]["resources"].as_array().expect("resources").iter().any(|r| r["uri"] == uri.as_str()),
        "{resources}"
    );
    let read = mcp.request("resources/read", json!({"uri": uri}));
    let text = read["result"]["contents"][0]["text"].as_str().expect("text");
    assert!(text.starts_with(&history), "{read}");

    // A bad name: a tool error with the CLI's own message, nothing made.
    let (error, text) = mcp.call("get_diff", json!({"name": "no-such"}));
    assert!(error, "{text}");
    assert_eq!(text, cli_error(&env, &["diff", "no-such"]));
    let (error, text) = mcp.call("approve", json!({"name": "sub"}));
    assert!(error, "{text}");
    assert_eq!(text, cli_error(&env, &["approve", "sub"]));
    let (error, text) = mcp.call("new_session", json!({"name": "!!!"}));
    assert!(error, "{text}");
    assert_eq!(text, cli_error(&env, &["new", "!!!", "--bg"]));
    let (error, text) = mcp.call("get_diff", json!({"nam": "sub"}));
    assert!(error && text.contains("bad arguments to get_diff"), "{text}");
    assert_eq!(env.sessions().len(), 1);

    mcp.finish();
}

#[test]
fn sessions_made_from_a_session_record_it_as_their_creator() {
    let env = TestEnv::new();
    env.ok(&["new", "boss", "--agent", "shell", "--bg"]);
    env.ok(&["new", "other", "--agent", "shell", "--bg"]);
    let boss = env.session("boss");
    let boss_id = boss["id"].as_str().expect("id").to_owned();
    assert_eq!(boss["creator"], Value::Null);

    // As the agent of `boss` would run it: tandem puts TANDEM_SESSION_ID
    // in every agent's environment.
    let mut mcp = Mcp::start(&env, &env.repo, &[("TANDEM_SESSION_ID", boss_id.as_str())]);
    let made = mcp.ok("new_session", json!({"name": "worker", "agent": WRITER}));
    assert_eq!(made["creator"], boss_id.as_str(), "{made}");

    // A task's trials are the creator's too.
    let task = mcp.ok(
        "task_new",
        json!({"objective": "Write done.txt", "name": "greet", "trials": 2, "agents": ["shell"], "base": "head"}),
    );
    assert_eq!(task["task"], "greet", "{task}");
    let trials: Vec<&str> =
        task["trials"].as_array().expect("trials").iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(trials, ["greet-t1", "greet-t2"], "{task}");
    let shown = mcp.ok("task_show", json!({"task": "greet"}));
    let cli: Value = serde_json::from_str(&env.ok(&["task", "show", "greet", "--json"])).expect("task show --json");
    assert_eq!(shown["task"], cli["task"]);
    assert_eq!(shown["trials"].as_array().map(Vec::len), Some(2), "{shown}");
    assert_eq!(shown["trials"][1]["name"], cli["trials"][1]["name"]);
    let (error, text) = mcp.call("task_show", json!({"task": "nope"}));
    assert!(error, "{text}");
    assert_eq!(text, cli_error(&env, &["task", "show", "nope"]));
    let (error, text) = mcp.call("task_new", json!({"objective": " "}));
    assert!(error, "{text}");
    assert_eq!(text, cli_error(&env, &["task", "new", " "]));

    let conflicts = mcp.ok("conflicts", json!({}));
    let cli: Value = serde_json::from_str(&env.ok(&["conflicts", "--json"])).expect("conflicts --json");
    assert_eq!(
        conflicts.as_object().map(|o| o.keys().collect::<Vec<_>>()),
        cli.as_object().map(|o| o.keys().collect())
    );
    mcp.finish();

    for sub in ["worker", "greet-t1", "greet-t2"] {
        assert_eq!(env.session(sub)["creator"], "boss", "{sub}");
    }
    assert_eq!(env.session("other")["creator"], Value::Null);

    // `tandem list` shows the sub-sessions right under their creator.
    let table = env.ok(&["list", "--sort", "created"]);
    let names: Vec<&str> = table.lines().skip(1).filter_map(|l| l.split("  ").next()).collect();
    assert_eq!(names, ["boss", "↳ worker", "↳ greet-t1", "↳ greet-t2", "other"], "{table}");
}

/// The real Claude Code as an orchestrator: a tandem session whose Claude
/// has `tandem mcp` as an MCP server (user scope in its config), driven by
/// the scripted model to make a sub-session, read its state and its diff.
/// The sub-session runs its own agent, is recorded as the orchestrator's,
/// and its diff comes back to Claude.
#[test]
fn claude_code_makes_a_sub_session_through_tandem_mcp() {
    let Some((claude, mut env)) = crate::common::agent_and_env("claude") else { return };
    let stub = MessagesStub::start(vec![
        Step::tool("mcp__tandem__new_session", json!({ "name": "sub", "agent": WRITER, "prompt": "write made.txt" })),
        Step::tool("mcp__tandem__session_state", json!({ "name": "sub" })),
        Step::tool("mcp__tandem__get_diff", json!({ "name": "sub" })),
        Step::text("The sub-session wrote made.txt."),
    ]);
    let tools = ["mcp__tandem__new_session", "mcp__tandem__session_state", "mcp__tandem__get_diff"];
    let config_dir = use_claude(&mut env, &claude, &stub, &tools);
    // `claude mcp add --scope user tandem -- tandem mcp`, as written.
    let file = config_dir.join(".claude.json");
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&file).expect("config")).expect("json");
    config["mcpServers"] =
        json!({ "tandem": { "type": "stdio", "command": TestEnv::bin(), "args": ["mcp"], "env": {} } });
    std::fs::write(&file, config.to_string()).expect("write config");

    env.ok(&["new", "orch", "--agent", "claude", "--bg", "-p", "Have a sub-session write made.txt"]);
    let orch_id = env.session("orch")["id"].as_str().expect("id").to_owned();
    let results = wait_within("three tool results at the stand-in", Duration::from_secs(120), || {
        let results = stub.tool_results();
        (results.len() >= 3).then_some(results)
    });
    let text = |r: &Value| match &r["content"] {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks.iter().filter_map(|b| b["text"].as_str()).collect::<Vec<_>>().join(""),
        other => other.to_string(),
    };
    assert!(results.iter().all(|r| r["is_error"] != true), "tool results: {results:?}");
    let made: Value = serde_json::from_str(&text(&results[0])).expect("new_session answers JSON");
    assert_eq!(made["name"], "sub", "{made}");
    assert_eq!(made["creator"], orch_id.as_str(), "made from orch's agent: {made}");
    let state: Value = serde_json::from_str(&text(&results[1])).expect("session_state answers JSON");
    assert_eq!(state["name"], "sub", "{state}");
    let diff: Value = serde_json::from_str(&text(&results[2])).expect("get_diff answers JSON");
    assert_eq!(diff["files"][0]["path"], "made.txt", "{diff}");
    assert!(diff["patch"].as_str().is_some_and(|p| p.contains("+made-by-sub-session")), "{diff}");

    // The sub-session is tandem's, under its creator.
    let sub = env.session("sub");
    assert_eq!(sub["creator"], "orch");
    assert_eq!(sub["agent"], WRITER);
    let table = env.ok(&["list", "--sort", "created"]);
    let names: Vec<&str> = table.lines().skip(1).filter_map(|l| l.split("  ").next()).collect();
    assert_eq!(names, ["orch", "↳ sub"], "{table}");
}

/// A Claude Code session waits on a permission: `session_state` says what
/// it asks, `approve` through MCP answers it, the tool runs; `deny` then
/// has nothing to answer and says so as the CLI does.
#[test]
fn mcp_approve_answers_a_claude_permission_request() {
    let Some((claude, mut env)) = crate::common::agent_and_env("claude") else { return };
    let stub = MessagesStub::start(vec![
        Step::tool("Bash", json!({ "command": "echo approved-by-mcp > proof.txt", "description": "Leave proof" })),
        Step::text("The proof is written."),
    ]);
    // Only Write is allowed: Bash needs a decision.
    use_claude(&mut env, &claude, &stub, &["Write"]);

    env.ok(&["new", "asker", "--agent", "claude", "--bg", "-p", "Leave proof that you ran"]);
    env.wait_state("asker", "needs-input");
    let mut mcp = Mcp::start(&env, &env.repo, &[]);
    let state = mcp.ok("session_state", json!({"name": "asker"}));
    assert_eq!(state["state"], "needs-input", "{state}");
    assert_eq!(state["awaits_permission"], true, "{state}");
    assert!(state["asking"].as_str().is_some_and(|a| a.contains("echo approved-by-mcp > proof.txt")), "{state}");
    assert_eq!(state["group"], "needs_input", "{state}");

    let answered = mcp.ok("approve", json!({"name": "asker"}));
    assert_eq!(answered["allowed"], true, "{answered}");
    let path = env.path_of("asker");
    wait_within("the approved command's output", Duration::from_secs(60), || {
        std::fs::read_to_string(path.join("proof.txt")).ok().filter(|t| t == "approved-by-mcp\n")
    });
    env.wait_state("asker", "idle");
    let (error, text) = mcp.call("deny", json!({"name": "asker", "message": "no"}));
    assert!(error, "{text}");
    assert_eq!(text, cli_error(&env, &["deny", "asker"]));
    mcp.finish();
    assert!(env.ok(&["history", "asker"]).contains("approved: Bash: echo approved-by-mcp > proof.txt"));
}

/// Issue 22: `list_checkpoints` answers what `tandem checkpoints --json`
/// prints and is read-only; no tool rewinds (the agents calling this
/// server must not be able to undo their own checkpoints).
#[test]
fn list_checkpoints_answers_the_clis_json_and_no_tool_rewinds() {
    let env = TestEnv::new();
    crate::test_web_turns::two_turns(&env, "turns");
    let mut mcp = Mcp::start(&env, &env.repo, &[]);
    let tools = mcp.request("tools/list", json!({}));
    let tools = tools["result"]["tools"].as_array().expect("tools").clone();
    let listed = tools.iter().find(|t| t["name"] == "list_checkpoints").expect("a list_checkpoints tool");
    assert_eq!(listed["annotations"]["readOnlyHint"], true, "{listed}");
    assert!(!tools.iter().any(|t| t["name"].as_str().is_some_and(|n| n.contains("rewind"))), "{tools:?}");

    let cli: Value = serde_json::from_str(&env.ok(&["checkpoints", "turns", "--json"])).expect("json");
    assert_eq!(cli[0]["n"], 2, "{cli}");
    assert_eq!(mcp.ok("list_checkpoints", json!({"name": "turns"})), cli);
    let (error, text) = mcp.call("list_checkpoints", json!({"name": "no-such"}));
    assert!(error, "{text}");
    assert_eq!(text, cli_error(&env, &["checkpoints", "no-such"]));
    let (error, text) = mcp.call("rewind", json!({"name": "turns", "checkpoint": 1}));
    assert!(error && text.contains("unknown tool `rewind`"), "{text}");
    mcp.finish();
}
