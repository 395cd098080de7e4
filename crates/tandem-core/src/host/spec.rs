//! The handshake with the supervisor and with clients: the [`HostSpec`]
//! a new host reads, the [`HostReady`] it reports, and which host
//! protocol versions it speaks ([`SPOKEN`], [`agree`]; see
//! [`crate::protocol`], "Versions").

use std::io::{self, BufRead};
use std::ops::RangeInclusive;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::agent::Conversation;
#[cfg(doc)]
use crate::paths::Paths;
use crate::protocol::{self, HOST_PROTOCOL_MIN, HOST_PROTOCOL_VERSION};

use super::{HostError, Shared};

/// In debug builds, a host protocol version that makes the hosts started
/// with this variable set hosts of an older release: they speak that one
/// version on their sockets and read only the hello's `version`, as hosts
/// before version ranges did (issue 18's test of a host that outlived an
/// upgrade). Ignored in release builds, like [`crate::fault::FAULTS_VAR`].
pub const OLD_PROTOCOL_VAR: &str = "TANDEM_HOST_PROTOCOL";

/// The host protocol version of a spec or report without one: the JSON
/// line of protocol 6.
pub(super) fn protocol_6() -> u32 {
    6
}

/// What the supervisor tells a new host: a control frame on the host's
/// stdin (a JSON line from a supervisor of protocol 6).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostSpec {
    /// The host protocol version the supervisor wrote this in
    /// ([`HOST_PROTOCOL_VERSION`]); the host starts the agent only when
    /// it speaks it.
    #[serde(default = "protocol_6")]
    pub version: u32,
    pub session_id: String,
    /// Program (absolute path) and arguments.
    pub argv: Vec<String>,
    /// The worktree.
    pub cwd: PathBuf,
    /// The agent's whole environment.
    pub env: Vec<(String, String)>,
    /// Initial terminal size, in cells.
    pub rows: u16,
    pub cols: u16,
    /// Typed into the PTY after start (a first prompt plus Enter), or
    /// a structured agent's first prompt.
    pub typed_input: Option<String>,
    /// The agent as the user named it (`claude`, `claude-structured`,
    /// `codex`, `gemini`, `shell`, a command): how prompts, answers and
    /// interrupts reach it.
    #[serde(default)]
    pub agent: String,
    /// Which conversation a structured agent's driver opens (Claude's
    /// are in `argv` already).
    #[serde(default)]
    pub conversation: Conversation,
    /// Endpoints a sandbox without network reaches through this host
    /// ([`crate::sandbox::serve_forwards`]).
    #[serde(default)]
    pub forwards: Vec<crate::sandbox::Forward>,
    /// Run once the agent has ended, to remove what its sandbox left (a
    /// container).
    #[serde(default)]
    pub cleanup: Option<Vec<String>>,
    /// The agent runs in a sandbox: its hooks report on the session's
    /// hook channel ([`Paths::hook_socket`]), the only socket of tandem's
    /// it can reach, where the host takes nothing but that session's hook
    /// events.
    #[serde(default)]
    pub sandboxed: bool,
}

/// The host's one report on stdout, in the form its spec came in (a
/// control frame, or a JSON line to a protocol 6 supervisor): the agent
/// started, or why not. `version`: the host protocol version the host
/// took the spec in, else the newest it speaks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HostReady {
    Running {
        #[serde(default = "protocol_6")]
        version: u32,
        host_pid: i32,
        agent_pid: i32,
    },
    Failed {
        #[serde(default = "protocol_6")]
        version: u32,
        message: String,
    },
}

/// The host protocol versions a host speaks: [`HOST_PROTOCOL_MIN`] to
/// [`HOST_PROTOCOL_VERSION`].
pub(super) const SPOKEN: RangeInclusive<u32> = HOST_PROTOCOL_MIN..=HOST_PROTOCOL_VERSION;

/// Reads the spec from the supervisor, undecoded (its `version` decides
/// how it reads): a control frame, or the JSON line a protocol 6
/// supervisor wrote (a frame's first byte is a zero, its length being
/// under 16 MiB; a JSON object's is `{`). Also says whether it was a line,
/// so the report goes back in kind.
pub(super) fn read_spec(stdin: &mut impl BufRead) -> Result<(serde_json::Value, bool), HostError> {
    let first = stdin.fill_buf().map_err(HostError::Spec)?.first().copied();
    if first == Some(b'{') {
        let mut line = String::new();
        stdin.read_line(&mut line).map_err(HostError::Spec)?;
        let spec = serde_json::from_str(&line).map_err(|e| HostError::Spec(io::Error::other(e)))?;
        return Ok((spec, true));
    }
    // From the supervisor, trusted: the reply cap, as an agent's whole
    // environment may be in it.
    match protocol::recv(stdin).map_err(HostError::Spec)? {
        Some(spec) => Ok((spec, false)),
        None => Err(HostError::Spec(io::Error::new(io::ErrorKind::UnexpectedEof, "no spec before end of input"))),
    }
}

/// The host protocol version this host speaks with a client whose hello
/// offered `version..=newest` ([`protocol::agree_host_version`]), or the
/// error to answer it with. A host made old by [`OLD_PROTOCOL_VAR`]
/// checks `version` alone against its one version, as hosts did before
/// ranges.
pub(super) fn agree(shared: &Shared, version: u32, newest: Option<u32>) -> Result<u32, String> {
    let (agreed, ours) = match shared.old_protocol {
        Some(only) => ((version == only).then_some(only), only..=only),
        None => (protocol::agree_host_version(version..=newest.unwrap_or(version), SPOKEN), SPOKEN),
    };
    agreed.ok_or_else(|| {
        format!(
            "this tandem speaks host protocol {version}..={}, the session's host {}..={}; run the tandem that started it, or restart the agent with `tandem respawn`",
            newest.unwrap_or(version),
            ours.start(),
            ours.end()
        )
    })
}

/// [`OLD_PROTOCOL_VAR`], read in debug builds only.
pub(super) fn old_protocol() -> Option<u32> {
    if !cfg!(debug_assertions) {
        return None;
    }
    std::env::var(OLD_PROTOCOL_VAR).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_is_read_from_a_frame_or_from_a_protocol_6_line() {
        // A frame carries its version.
        let mut framed = Vec::new();
        protocol::send(&mut framed, &serde_json::json!({ "version": HOST_PROTOCOL_VERSION, "session_id": "a1" }))
            .expect("frame");
        let (spec, line) = read_spec(&mut io::Cursor::new(framed)).expect("framed spec");
        assert_eq!((spec["version"].as_u64(), line), (Some(u64::from(HOST_PROTOCOL_VERSION)), false));
        // A protocol 6 supervisor's line has none: it reads as 6, and is
        // answered with a line.
        let old = b"{\"session_id\":\"a1\",\"argv\":[\"sh\"],\"cwd\":\"/\",\"env\":[],\"rows\":24,\"cols\":80,\"typed_input\":null}\n";
        let (spec, line) = read_spec(&mut io::Cursor::new(old.to_vec())).expect("line spec");
        assert!(line);
        let spec: HostSpec = serde_json::from_value(spec).expect("a HostSpec");
        assert_eq!(spec.version, 6);
        assert!(SPOKEN.contains(&spec.version));
        // Nothing at all is an error, not a panic.
        assert!(matches!(read_spec(&mut io::Cursor::new(Vec::new())), Err(HostError::Spec(_))));
    }

    #[test]
    fn a_report_of_protocol_6_reads_as_version_6() {
        let old: HostReady = serde_json::from_str(r#"{"type":"running","host_pid":2,"agent_pid":3}"#).expect("old");
        assert!(matches!(old, HostReady::Running { version: 6, host_pid: 2, agent_pid: 3 }));
    }
}
