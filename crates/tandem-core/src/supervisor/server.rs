//! The supervisor's socket: accepts connections (at most
//! [`crate::socket::MAX_CONNECTIONS`] at once, peer uid checked), takes
//! each one's hello, hands its requests to [`super::requests::handle`]
//! (`rm` to [`super::end::remove`], which answers itself) and sends the
//! answers, errors with their kind and hints.

use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::thread;

use crate::protocol::{self, PROTOCOL_VERSION, Request, Response};

use super::end::{Removal, remove};
use super::requests::handle;
use super::{State, stop_on_lost_database};

/// Serves `listener` until it fails: one thread per connection, at most
/// [`crate::socket::MAX_CONNECTIONS`] at once.
pub(super) fn accept(state: &Arc<State>, listener: &UnixListener) {
    let gate = crate::socket::Gate::new(crate::socket::MAX_CONNECTIONS);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let Some(pass) = gate.admit() else {
            // Debug, not warn: a flood must not fill the log.
            tracing::debug!(max = crate::socket::MAX_CONNECTIONS, "too many connections; one refused");
            continue;
        };
        let state = Arc::clone(state);
        let spawned = thread::Builder::new().name("client".into()).spawn(move || {
            if let Err(e) = serve(&state, stream, &pass) {
                tracing::warn!(error = %e, "connection failed");
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot serve a connection");
        }
    }
}

/// Serves one connection: a hello within [`crate::socket::HELLO_TIMEOUT`],
/// then requests of at most [`protocol::MAX_REQUEST_LEN`] bytes.
pub(super) fn serve(state: &Arc<State>, mut stream: UnixStream, pass: &crate::socket::Pass) -> io::Result<()> {
    crate::socket::check_peer(&stream)?;
    pass.await_hello(&stream)?;
    let Some(Request::Hello { version }) = protocol::recv_request(&mut stream)? else {
        let refusal = crate::model::error::Failure::new(crate::model::error::ErrorKind::InvalidInput, "expected hello");
        return protocol::send(&mut stream, &Response::from(refusal));
    };
    pass.greeted(&stream)?;
    protocol::send(&mut stream, &Response::Hello { version: PROTOCOL_VERSION, pid: std::process::id() })?;
    if version != PROTOCOL_VERSION {
        return Ok(()); // the client restarts us with its own version
    }
    while let Some(request) = protocol::recv_request::<Request>(&mut stream)? {
        let shutdown = matches!(request, Request::Shutdown);
        let response = match request {
            Request::Remove { cwd, name, force, wait, purge, env } => {
                match remove(state, &Removal { cwd, name, force, wait, purge, env }, &mut stream) {
                    Ok(()) => continue,
                    Err(e) => Response::from(crate::model::error::Failure::of(&e)),
                }
            }
            // Kind and hints cross the socket apart from the message.
            request => handle(state, request).unwrap_or_else(|e| Response::from(crate::model::error::Failure::of(&e))),
        };
        if shutdown {
            // Free the socket and the lock before answering: the exit
            // itself can take seconds (the kernel drops every inotify
            // watch), and a new supervisor may start at once.
            let _ = std::fs::remove_file(state.paths.supervisor_socket());
            if let Some(lock) = state.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
                let _ = lock.unlock();
            }
            tracing::info!("supervisor shutting down on request");
            let _ = protocol::send(&mut stream, &response);
            std::process::exit(0);
        }
        protocol::send(&mut stream, &response)?;
        if state.lost.load(std::sync::atomic::Ordering::SeqCst) {
            stop_on_lost_database(state);
        }
    }
    Ok(())
}
