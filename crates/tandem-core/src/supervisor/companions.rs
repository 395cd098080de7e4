//! Processes the supervisor keeps running beside itself (issue 20): the
//! web dashboard (`tandem serve`, when the user's `[serve] enabled`) and
//! the notifier (`tandem serve --notifier`, when `[notify]` names a
//! webhook or an ntfy topic). Each is a child started from the
//! supervisor's own executable with an argument vector; it is started
//! again when it exits, after a wait that doubles on each quick failure
//! (1 s up to [`MAX_BACKOFF`]); and it ends with the supervisor: its
//! stdin is a pipe the supervisor holds, and a companion exits when that
//! pipe closes, which happens however the supervisor ends (`daemon
//! stop`, a crash, `kill -9`).
//!
//! Only the user's config file is read: a repository's `.tandem.toml`
//! cannot start a server or choose where events are sent
//! ([`crate::config::repo_trust`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::paths::Paths;

/// The longest wait between two starts of a companion that keeps failing.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A companion that ran this long before it exited was healthy: the
/// next start waits only the shortest time again.
const HEALTHY_AFTER: Duration = Duration::from_secs(30);

/// The flag a companion gets: it exits when its stdin closes.
pub const SUPERVISED_FLAG: &str = "--supervised";

/// The argument vectors (after the executable) of the companions the
/// user's `config` asks for.
#[must_use]
pub fn wanted(config: &Config) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    if config.serve.enabled {
        let mut args =
            vec!["serve".to_owned(), SUPERVISED_FLAG.to_owned(), "--listen".to_owned(), config.serve.listen.clone()];
        if !config.serve.tls_cert.is_empty() || !config.serve.tls_key.is_empty() {
            args.extend(["--tls-cert".to_owned(), config.serve.tls_cert.clone()]);
            args.extend(["--tls-key".to_owned(), config.serve.tls_key.clone()]);
        }
        if config.serve.insecure_http {
            args.push("--insecure-http".to_owned());
        }
        out.push(args);
    }
    if !config.notify.webhook.is_empty() || !config.notify.ntfy.is_empty() {
        out.push(vec!["serve".to_owned(), SUPERVISED_FLAG.to_owned(), "--notifier".to_owned()]);
    }
    out
}

/// The user's config alone (defaults when it does not load: the
/// supervisor still runs, without companions the file may have asked
/// for, and says why in its log).
#[must_use]
pub fn user_config(paths: &Paths) -> Config {
    Config::load_with_env(&paths.config_dir.join("config.toml"), None, |var| std::env::var(var).ok()).unwrap_or_else(
        |e| {
            tracing::warn!(error = %e, "the user's config does not load; no dashboard or notifier is started");
            Config::defaults()
        },
    )
}

/// Starts one thread per companion the user's config asks for.
pub(super) fn start(paths: &Paths, exe: &Path) {
    for args in wanted(&user_config(paths)) {
        let exe = exe.to_path_buf();
        let name = format!("companion {}", args.join(" "));
        if let Err(e) = thread::Builder::new().name("companion".into()).spawn(move || keep_running(&exe, &args)) {
            tracing::warn!(error = %e, "cannot start the thread for {name}");
        }
    }
}

/// Runs `exe args` for ever, again after each exit, waiting longer after
/// each quick failure.
fn keep_running(exe: &PathBuf, args: &[String]) -> ! {
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = Instant::now();
        // stdin: a pipe whose write end only this process holds (std
        // makes it close-on-exec, so no host inherits it).
        match Command::new(exe).args(args).stdin(Stdio::piped()).stdout(Stdio::null()).spawn() {
            Ok(mut child) => {
                tracing::info!(pid = child.id(), args = ?args, "companion started");
                // Held open while it runs (`wait` would close it first).
                let _pipe = child.stdin.take();
                let status = child.wait();
                tracing::warn!(args = ?args, status = ?status, "companion exited; starting it again");
            }
            Err(e) => tracing::warn!(args = ?args, error = %e, "cannot start a companion"),
        }
        if started.elapsed() >= HEALTHY_AFTER {
            backoff = Duration::from_secs(1);
        }
        thread::sleep(backoff);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// For a companion: exits this process once its stdin (the supervisor's
/// pipe) closes. Starts a thread; returns at once.
pub fn exit_with_parent() {
    let spawned = thread::Builder::new().name("parent-watch".into()).spawn(|| {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin().lock();
        loop {
            match std::io::Read::read(&mut stdin, &mut sink) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Ok(0) | Err(_) => std::process::exit(0),
                Ok(_) => {}
            }
        }
    });
    if spawned.is_err() {
        std::process::exit(1);
    }
}
