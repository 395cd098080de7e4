use tandem_core::text::visible;

use crate::context::Context;
use crate::error::CliError;

/// What this machine lacks for the sandbox modes: `bwrap` always (it is
/// what `--sandbox` uses), Docker or Podman when `sandbox.mode` asks for
/// a container.
fn machine(config: &tandem_core::config::Config) {
    use tandem_core::sandbox::{Mode, SandboxError, runtime};
    if runtime(Mode::Workspace).is_err() {
        println!("bwrap is not installed: sandboxed sessions (`tandem new --sandbox`) need it");
        println!(
            "    fix: install bubblewrap: `sudo apt-get install bubblewrap` (Debian, Ubuntu), `sudo dnf install bubblewrap` (Fedora), `sudo pacman -S bubblewrap` (Arch)"
        );
    }
    if config.sandbox.mode == "container" {
        match runtime(Mode::Container) {
            Err(SandboxError::NoContainerRuntime) => {
                println!("sandbox.mode is container, and neither docker nor podman is installed");
                println!("    fix: install Docker or Podman, or set sandbox.mode to workspace");
            }
            Err(e) => println!("sandbox.mode is container: {e}"),
            Ok(engine) => println!("sandbox.mode is container: {} answers", engine.display()),
        }
    }
    limits(config);
}

/// Which limits hold a sandboxed session here, and how (or why none).
fn limits(config: &tandem_core::config::Config) {
    use tandem_core::limits::{Caps, probe, show_size};
    let Ok(caps) = Caps::from_config(&config.sandbox) else {
        return; // `tandem new --sandbox` says what is wrong with it
    };
    let report = probe(&caps);
    let line = |what: &str, cap: Option<String>, held: &Option<Result<tandem_core::limits::How, String>>| match (
        cap, held,
    ) {
        (None, _) => println!("sandbox limit: {what}: no cap (0 in config.toml)"),
        (Some(cap), Some(Ok(how))) => println!("sandbox limit: {what} at most {cap}, by {how}"),
        (Some(cap), Some(Err(why))) => {
            println!("sandbox limit: {what} NOT capped at {cap} here: {why}");
            println!(
                "    fix: run tandem under a user systemd (`systemd-run --user` must work), or with a writable cgroup"
            );
        }
        (Some(cap), None) => println!("sandbox limit: {what} at most {cap}"),
    };
    line("processes", caps.max_processes.map(|n| n.to_string()), &report.processes);
    line("memory", caps.max_memory.map(show_size), &report.memory);
    match caps.tmp_size {
        Some(bytes) => println!("sandbox limit: private /tmp at most {}, by bwrap --size", show_size(bytes)),
        None => println!("sandbox limit: private /tmp: no cap (0 in config.toml)"),
    }
}

/// Find what was done by hand to this repository's sessions (worktree
/// folders deleted, branches deleted or switched, the repository moved)
/// and explain it; with --fix, repair it. Also says how much disk the
/// checkpoints keep and how the supervisor's inotify watch budget stands
/// (which worktrees are polled for want of watches)
#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    /// Repair what can be repaired (never prunes a locked worktree)
    #[arg(long)]
    fix: bool,
    /// Print one JSON object, `findings`: session, problem, remedy, fixed;
    /// `checkpoints`: refs and bytes only they keep; `watches`: used, cap,
    /// system_max and the sessions `polled` for want of inotify watches;
    /// `pool`: size (`[worktrees] pool`), ready and folders of the worktree
    /// pool (the sandbox checks of this machine stay text-only)
    #[arg(long)]
    json: bool,
}

/// The checkpoints' disk use in `repo` (issue 22): refs, and the bytes
/// only they keep; `None` when git cannot say.
fn checkpoints(repo: &tandem_core::repo::Repository) -> Option<(u64, usize)> {
    tandem_core::checkpoints::disk_use(repo).ok()
}

/// The worktree pool of `repo` (issue 23): `(ready, folders)`.
fn pool(cx: &Context, repo: &tandem_core::repo::Repository, config: &tandem_core::config::Config) -> (usize, usize) {
    use tandem_core::session::{pool, worktrees_dir};
    let entries = pool::status(repo, &worktrees_dir(&cx.paths, repo, config)).unwrap_or_default();
    (entries.iter().filter(|e| e.kind == pool::EntryKind::Ready).count(), entries.len())
}

/// One line on the supervisor's inotify watch budget (issue 23), for
/// `tandem doctor` and `tandem daemon status`.
pub fn watches_line(w: &tandem_core::model::WatchReport) -> String {
    let system = w.system_max.map_or_else(String::new, |m| format!(", fs.inotify.max_user_watches {m}"));
    let polled = match w.polled.len() {
        0 => "every worktree is watched".to_owned(),
        n => format!(
            "{n} worktree{} polled for want of watches (their facts are read with git on every list)",
            if n == 1 { " is" } else { "s are" }
        ),
    };
    format!("inotify watches: {} of {} (`[watch] max_watches`{system}); {polled}", w.used, w.cap)
}

/// The names of the sessions `ids` (their ids where the store has none).
fn names(cx: &Context, ids: &[String]) -> Vec<String> {
    let store = cx.store().ok();
    ids.iter()
        .map(|id| store.as_ref().and_then(|s| s.session(id).ok().flatten()).map_or_else(|| id.clone(), |s| s.slug))
        .collect()
}

/// `12.3 MiB`.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub fn run(cx: &Context, args: &DoctorArgs) -> Result<(), CliError> {
    let (repo, config) = cx.repo()?;
    let used = checkpoints(&repo);
    if args.json {
        let findings = cx.tandem()?.doctor(&cx.cwd, args.fix)?;
        let rows: Vec<serde_json::Value> = findings
            .iter()
            .map(|f| {
                serde_json::json!({"session": f.session, "problem": f.problem, "remedy": f.remedy, "fixed": f.fixed})
            })
            .collect();
        let used = used.map(|(bytes, refs)| serde_json::json!({ "refs": refs, "bytes": bytes }));
        let watches = cx.tandem()?.watches()?;
        let polled = names(cx, &watches.polled);
        let watches = serde_json::json!({
            "used": watches.used, "cap": watches.cap, "system_max": watches.system_max, "polled": polled,
        });
        let (ready, folders) = pool(cx, &repo, &config);
        let pool = serde_json::json!({ "size": config.worktrees.pool, "ready": ready, "folders": folders });
        println!("{}", serde_json::json!({ "findings": rows, "checkpoints": used, "watches": watches, "pool": pool }));
        return Ok(());
    }
    machine(&config);
    if let Some((bytes, refs)) = used {
        println!(
            "checkpoints: {refs} in this repository, {} on disk that only they keep (at most {} per session: `[checkpoints] keep`; `tandem gc` drops those of removed sessions)",
            mib(bytes),
            config.checkpoints.keep
        );
    }
    let watches = cx.tandem()?.watches()?;
    println!("{}", watches_line(&watches));
    if !watches.polled.is_empty() {
        println!(
            "    polled: {}\n    fix: raise `[watch] max_watches` in your config, or the system's limit (`sudo sysctl fs.inotify.max_user_watches=N`), then `tandem daemon stop` (the next command starts it again)",
            visible(&names(cx, &watches.polled).join(", "))
        );
    }
    let (ready, folders) = pool(cx, &repo, &config);
    if config.worktrees.pool > 0 || folders > 0 {
        let more =
            if folders > ready { format!(", {} being made or left over", folders - ready) } else { String::new() };
        println!(
            "worktree pool: {ready} ready of {} (`[worktrees] pool`){more}; `tandem new` takes one",
            config.worktrees.pool
        );
    }
    let findings = cx.tandem()?.doctor(&cx.cwd, args.fix)?;
    if findings.is_empty() {
        println!("all sessions are in order");
        return Ok(());
    }
    for f in &findings {
        let who = f.session.as_deref().map(|s| format!("{s}: ")).unwrap_or_default();
        // Findings name branches, paths and refs a repository chose.
        println!("{}{}", visible(&who), visible(&f.problem));
        let verb = if f.fixed {
            "fixed"
        } else if args.fix {
            "not fixed"
        } else {
            "fix"
        };
        println!("    {verb}: {}", visible(&f.remedy));
    }
    if !args.fix && findings.iter().any(|f| !f.remedy.starts_with("left alone")) {
        println!("run `tandem doctor --fix` to repair");
    }
    Ok(())
}
