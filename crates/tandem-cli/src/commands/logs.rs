use std::io::Write;

use tandem_core::host::{client, screen};
use tandem_core::protocol::{self, ClientMode, HostMsg, KIND_CONTROL, KIND_DATA};
use tandem_core::session::facts::live_state;
use tandem_core::store::SessionState;

use crate::context::Context;
use crate::error::CliError;

/// Print a session's output as text (scrollback, then the screen)
#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// The session's name [default: the session whose worktree this is]
    name: Option<String>,
    /// Keep printing new output until the agent exits (Ctrl-C to stop)
    #[arg(short, long)]
    follow: bool,
}

pub fn run(cx: &Context, args: &LogsArgs) -> Result<(), CliError> {
    let (_, _, session) = cx.named(args.name.as_deref())?;
    let mut out = std::io::stdout().lock();
    if live_state(&session) == SessionState::Running {
        // The host's emulator is the truth while it runs.
        if let Ok(mut stream) = client::connect(&cx.paths, &session.id, ClientMode::Logs { follow: args.follow }) {
            if let Some(HostMsg::Text { text }) = protocol::recv(&mut stream)? {
                out.write_all(text.as_bytes())?;
                out.flush()?;
            }
            if args.follow {
                // Output as it comes, escape sequences stripped.
                let mut plain = strip_ansi_escapes::Writer::new(&mut out);
                while let Ok(Some((kind, payload))) = protocol::read_frame(&mut stream) {
                    match kind {
                        KIND_DATA => {
                            let text = String::from_utf8_lossy(&payload).replace("\r\n", "\n");
                            plain.write_all(text.as_bytes())?;
                            plain.flush()?;
                        }
                        KIND_CONTROL => {
                            if let Ok(HostMsg::Exited { .. }) = serde_json::from_slice(&payload) {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            return Ok(());
        }
    }
    // No host: rebuild the screen from the raw log.
    let dir = cx.paths.session_dir(&session.id);
    let (rows, cols) = screen::read_size(&dir);
    let mut parser = screen::replay(&dir, rows, cols)?;
    out.write_all(screen::text(&mut parser).as_bytes())?;
    Ok(())
}
