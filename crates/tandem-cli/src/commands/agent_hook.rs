use std::io::Read;

use tandem_core::agent::claude;
use tandem_core::connection;
use tandem_core::protocol::Request;

use crate::context::Context;
use crate::error::CliError;

/// Record an agent hook event (run by the agent, not by hand)
///
/// Claude Code runs this for each hook tandem injects, with the event's
/// JSON on stdin and `TANDEM_SESSION_ID` in the environment. It prints
/// nothing and always exits 0, so it never changes what the agent does.
#[derive(clap::Args, Debug)]
pub struct HookArgs {}

/// The most stdin read; a payload beyond it is cut (and so not JSON).
const MAX_PAYLOAD: u64 = 16 * 1024 * 1024;

pub fn run(cx: &Context, _args: &HookArgs) -> Result<(), CliError> {
    if let Err(e) = record(cx) {
        tracing::warn!(error = %e, "the hook event was not recorded");
    }
    Ok(())
}

fn record(cx: &Context) -> Result<(), CliError> {
    let id = std::env::var("TANDEM_SESSION_ID").map_err(|_| CliError::user("TANDEM_SESSION_ID is not set"))?;
    let mut text = String::new();
    std::io::stdin().take(MAX_PAYLOAD).read_to_string(&mut text)?;
    let payload: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| CliError::user(format!("the hook payload is not JSON: {e}")))?;
    let first_prompt = payload["hook_event_name"] == "UserPromptSubmit";
    let prompt = payload["prompt"].as_str().unwrap_or_default().to_owned();
    let auto_named = if let Some(socket) = std::env::var_os(tandem_core::sandbox::HOOK_SOCKET) {
        // Inside a sandbox the store is out of reach: the host records,
        // and asks for a name itself.
        tandem_core::host::client::hook(std::path::Path::new(&socket), payload)?;
        return Ok(());
    } else {
        let mut store = cx.store()?;
        // Runs with the agent's environment: its secrets are masked in what it records.
        store.redact_secrets(tandem_core::session::env::secret_values(&tandem_core::session::env::process_env().0));
        let Some(session) = store.session(&id)? else {
            return Err(CliError::user(format!("no session {id}")));
        };
        claude::record_hook(&store, &session, &payload)?;
        session.auto_named
    };
    // The first prompt of a session tandem named: the supervisor asks for
    // a title in the background (the agent must not wait for it).
    if first_prompt
        && auto_named
        && let Some(mut supervisor) = connection::connect_existing(&cx.paths)?
    {
        let request = Request::AutoName { session_id: id, prompt, env: tandem_core::session::env::process_env().0 };
        supervisor.request(&request)?;
    }
    Ok(())
}
