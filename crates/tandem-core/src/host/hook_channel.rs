//! A sandboxed session's hook channel ([`Paths::hook_socket`]): the one
//! socket of tandem's its sandbox reaches, taking that session's hook
//! events and nothing else ([`serve_hook_channel`]).

use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

#[cfg(doc)]
use crate::paths::Paths;
use crate::protocol::{self, ClientMsg, HostMsg};

use super::spec::agree;
use super::{Shared, close_store, store_of};

/// Connections a hook channel serves at once; more wait in the
/// listener's backlog.
const HOOK_CONNECTIONS: usize = 8;

/// Serves a sandboxed session's hook channel ([`Paths::hook_socket`],
/// the only socket of tandem's its sandbox can reach): each connection
/// says hello, then sends hook events, each recorded for this session
/// and no other, as data (masked like any event, never run). Any other
/// message ends the connection: no prompt, answer, stop or request
/// reaches the host or the supervisor through it.
pub(super) fn serve_hook_channel(shared: &Arc<Shared>, listener: &UnixListener, env: &[(String, String)]) {
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if active.load(Ordering::SeqCst) >= HOOK_CONNECTIONS {
            continue;
        }
        active.fetch_add(1, Ordering::SeqCst);
        let (shared, env, done) = (Arc::clone(shared), env.to_vec(), Arc::clone(&active));
        let spawned = thread::Builder::new().name("hook".into()).spawn(move || {
            if let Err(e) = serve_hook_client(&shared, stream, &env) {
                tracing::debug!(error = %e, "hook channel client ended");
            }
            done.fetch_sub(1, Ordering::SeqCst);
        });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn serve_hook_client(shared: &Arc<Shared>, stream: UnixStream, env: &[(String, String)]) -> io::Result<()> {
    crate::socket::check_peer(&stream)?;
    // A hook sends at once; one that stalls gives its place up.
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = stream.try_clone()?;
    let mut writer = stream;
    let Some(ClientMsg::Hello { version, newest, .. }) = protocol::recv(&mut reader)? else {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "expected hello"));
    };
    let version = match agree(shared, version, newest) {
        Ok(version) => version,
        Err(message) => return protocol::send(&mut writer, &HostMsg::Error { message }),
    };
    let welcome = HostMsg::Welcome { version, session_id: shared.session_id.clone(), agent_pid: shared.agent_pid };
    protocol::send(&mut writer, &welcome)?;
    while let Some(msg) = protocol::recv::<ClientMsg>(&mut reader)? {
        let ClientMsg::Hook { payload } = msg else {
            let message = "this socket takes the session's hook events only".to_owned();
            protocol::send(&mut writer, &HostMsg::Error { message })?;
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, "not a hook event"));
        };
        let answer = record_hook(shared, &payload);
        // The first prompt of a session tandem named: ask the supervisor
        // for a title, as `tandem hook` does outside a sandbox.
        if matches!(answer, HostMsg::Hooked { auto_named: true })
            && payload["hook_event_name"] == "UserPromptSubmit"
            && let Some(prompt) = payload["prompt"].as_str()
            && let Ok(Some(mut supervisor)) = crate::connection::connect_existing(&shared.paths)
        {
            let request = crate::protocol::Request::AutoName {
                session_id: shared.session_id.clone(),
                prompt: prompt.to_owned(),
                env: env.to_vec(),
            };
            if let Err(e) = supervisor.request(&request) {
                tracing::debug!(error = %e, "cannot ask for a name");
            }
        }
        protocol::send(&mut writer, &answer)?;
    }
    Ok(())
}

/// Records a hook event of the agent's (a sandboxed Claude Code's, whose
/// `tandem hook` cannot write the store) with the host's own store,
/// which masks the agent's secrets.
fn record_hook(shared: &Shared, payload: &serde_json::Value) -> HostMsg {
    let recorded = store_of(shared).map_err(|e| e.to_string()).and_then(|store| {
        let session = store.session(&shared.session_id).map_err(|e| e.to_string())?;
        let session = session.ok_or_else(|| "the session is gone".to_owned())?;
        crate::agent::claude::record_hook(&store, &session, payload).map_err(|e| e.to_string())?;
        Ok(session.auto_named)
    });
    close_store(shared);
    match recorded {
        Ok(auto_named) => HostMsg::Hooked { auto_named },
        Err(message) => HostMsg::Error { message },
    }
}
