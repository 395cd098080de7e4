//! The host's socket (`run/h/<id>.sock`): accepts clients (at most
//! [`crate::socket::MAX_CONNECTIONS`], peer uid checked), agrees on a
//! version in their hello, and serves each one's mode: attach (redraw,
//! then output both ways), logs (text, then output) or control; then its
//! frames: keys, resizes, redraws, status, prompts, answers, interrupts
//! and stop ([`read_client`]).

use std::io::{self, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::protocol::{self, ClientMode, ClientMsg, HostMsg, KIND_CONTROL, KIND_DATA};

use super::child::{request_stop, resize};
use super::input::{answer, prompt};
use super::spec::agree;
use super::structured::write_lines;
use super::{CLIENT_QUEUE, Client, Out, Shared, lock, screen};

/// Serves `listener` for ever: one thread per client, at most
/// [`crate::socket::MAX_CONNECTIONS`] at once.
pub(super) fn accept(shared: &Arc<Shared>, listener: &UnixListener) {
    let gate = crate::socket::Gate::new(crate::socket::MAX_CONNECTIONS);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let Some(pass) = gate.admit() else {
            // Debug, not warn: a flood must not fill the log.
            tracing::debug!(max = crate::socket::MAX_CONNECTIONS, "too many clients; one refused");
            continue;
        };
        let shared = Arc::clone(shared);
        let _ = thread::Builder::new().name("client".into()).spawn(move || {
            if let Err(e) = serve_client(&shared, stream, &pass) {
                tracing::debug!(error = %e, "client ended");
            }
        });
    }
}

/// Serves one client: a hello within [`crate::socket::HELLO_TIMEOUT`],
/// then frames of at most [`protocol::MAX_REQUEST_LEN`] bytes. `pass`
/// holds its slot until both its reader (here) and writer are done: the
/// writer ends when the reader unsubscribes.
fn serve_client(shared: &Arc<Shared>, stream: UnixStream, pass: &crate::socket::Pass) -> io::Result<()> {
    crate::socket::check_peer(&stream)?;
    pass.await_hello(&stream)?;
    let mut reader = stream.try_clone()?;
    let mut writer = stream;
    let Some(ClientMsg::Hello { version, newest, mode }) = protocol::recv_request(&mut reader)? else {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "expected hello"));
    };
    pass.greeted(&reader)?;
    let version = match agree(shared, version, newest) {
        Ok(version) => version,
        Err(message) => return protocol::send(&mut writer, &HostMsg::Error { message }),
    };
    protocol::send(
        &mut writer,
        &HostMsg::Welcome { version, session_id: shared.session_id.clone(), agent_pid: shared.agent_pid },
    )?;
    match mode {
        ClientMode::Attach { rows, cols } => {
            resize(shared, rows, cols);
            let redraw = |parser: &mut vt100::Parser| Some(Out::Data(screen::redraw(parser.screen())));
            let id = subscribe(shared, writer, (true, true), redraw)?;
            let result = read_client(shared, &mut reader, id, true);
            unsubscribe(shared, id);
            result
        }
        ClientMode::Logs { follow } => {
            // The log holds everything the live screen shows and what
            // scrolled off it; replayed under the screen lock, so nothing
            // is missed or doubled before the output that follows.
            let dir = shared.paths.session_dir(&shared.session_id);
            let text = |parser: &mut vt100::Parser| {
                let (rows, cols) = parser.screen().size();
                let text = match screen::replay(&dir, rows, cols) {
                    Ok(mut full) => screen::text(&mut full),
                    Err(_) => screen::text(parser),
                };
                Some(Out::Msg(HostMsg::Text { text }))
            };
            if follow {
                let id = subscribe(shared, writer, (true, false), text)?;
                let result = read_client(shared, &mut reader, id, false);
                unsubscribe(shared, id);
                result
            } else {
                let msg = text(&mut lock(&shared.screen).0);
                if let Some(Out::Msg(msg)) = msg {
                    protocol::send(&mut writer, &msg)?;
                }
                Ok(())
            }
        }
        ClientMode::Control => {
            let id = subscribe(shared, writer, (false, false), |_| None)?;
            let result = read_client(shared, &mut reader, id, false);
            unsubscribe(shared, id);
            result
        }
    }
}

/// Registers a client (taking the agent's output when `output`; a
/// terminal when `attached`): `first` (made under the screen lock) is
/// queued before any later output, so nothing is lost or doubled between
/// them.
fn subscribe(
    shared: &Arc<Shared>,
    mut writer: UnixStream,
    (output, attached): (bool, bool),
    first: impl FnOnce(&mut vt100::Parser) -> Option<Out>,
) -> io::Result<u64> {
    let (tx, rx) = mpsc::sync_channel::<Out>(CLIENT_QUEUE);
    let id = shared.next_client.fetch_add(1, Ordering::SeqCst);
    {
        let mut screen = lock(&shared.screen);
        if let Some(out) = first(&mut screen.0) {
            let _ = tx.try_send(out);
        }
        if lock(&shared.exit.0).is_some() {
            return Err(io::Error::new(io::ErrorKind::NotConnected, "the agent has exited"));
        }
        lock(&shared.clients).push(Client { id, tx, output, attached });
    }
    shared.writers.fetch_add(1, Ordering::SeqCst);
    let counter = Arc::clone(shared);
    let spawned = thread::Builder::new().name("client-writer".into()).spawn(move || {
        for out in rx {
            let sent = match out {
                Out::Data(bytes) => protocol::write_frame(&mut writer, KIND_DATA, &bytes),
                Out::Msg(msg) => protocol::send(&mut writer, &msg),
            };
            if sent.is_err() {
                break;
            }
        }
        let _ = writer.shutdown(std::net::Shutdown::Both);
        counter.writers.fetch_sub(1, Ordering::SeqCst);
    });
    if let Err(e) = spawned {
        shared.writers.fetch_sub(1, Ordering::SeqCst);
        return Err(e);
    }
    Ok(id)
}

fn unsubscribe(shared: &Shared, id: u64) {
    lock(&shared.clients).retain(|c| c.id != id);
}

/// Reads client `id`'s frames until it leaves: keys (when `keys`),
/// resizes, redraw and stop requests.
fn read_client(shared: &Arc<Shared>, reader: &mut UnixStream, id: u64, keys: bool) -> io::Result<()> {
    while let Some((kind, payload)) = protocol::read_request_frame(reader)? {
        match kind {
            // A structured agent's input is JSON lines, not keys.
            KIND_DATA if keys && !shared.structured => {
                lock(&shared.writer).write_all(&payload)?;
            }
            KIND_CONTROL => match serde_json::from_slice::<ClientMsg>(&payload) {
                Ok(ClientMsg::Resize { rows, cols }) => resize(shared, rows, cols),
                Ok(ClientMsg::Stop { grace_ms }) => request_stop(shared, Duration::from_millis(grace_ms)),
                Ok(ClientMsg::Redraw) => {
                    // Under the screen lock, like output: nothing slips in
                    // between the redraw and what follows it.
                    let screen = lock(&shared.screen);
                    if let Some(client) = lock(&shared.clients).iter().find(|c| c.id == id) {
                        let _ = client.tx.try_send(Out::Data(screen::redraw(screen.0.screen())));
                    }
                }
                Ok(ClientMsg::Status) => {
                    let clients = lock(&shared.clients);
                    let attached = clients.iter().filter(|c| c.attached).count();
                    if let Some(client) = clients.iter().find(|c| c.id == id) {
                        let _ = client.tx.try_send(Out::Msg(HostMsg::Status { attached }));
                    }
                }
                Ok(ClientMsg::Prompt { text }) => prompt(shared, &text)?,
                Ok(ClientMsg::Answer { allow, message }) => answer(shared, allow, message.as_deref())?,
                Ok(ClientMsg::Interrupt) => {
                    if shared.structured {
                        let lines = lock(&shared.driver).as_mut().map(|d| d.interrupt()).unwrap_or_default();
                        write_lines(shared, &lines);
                    } else {
                        let key: &[u8] = if shared.claude { b"\x1b" } else { b"\x03" };
                        lock(&shared.writer).write_all(key)?;
                    }
                }
                // Hook events come on the hook channel only.
                Ok(ClientMsg::Hello { .. } | ClientMsg::Hook { .. }) | Err(_) => {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "unexpected client message"));
                }
            },
            _ => {}
        }
    }
    Ok(())
}
