// Whole on purpose (issue 18): one layered configuration, 593 lines of code and their tests; the layers and the trust rules that fence a repository's layer read together.
//! Layered configuration: built-in defaults (`config.toml` beside this
//! file) < the user's `config.toml` < the repository's `.tandem.toml` <
//! `TANDEM_<SECTION>_<KEY>` environment variables (and the older
//! `TANDEM_DETACH_KEY`) < command-line flags, which callers apply.
//!
//! Every effective value remembers where it came from ([`Source`]), so
//! `tandem config show` can say, and so hook commands that a repository
//! (rather than the user) wrote can be held until approved. A bad file is
//! reported with its path and line: a syntax error, an unknown key or a
//! value of the wrong type.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

const DEFAULTS: &str = include_str!("config.toml");

/// Everything configurable; see `config.toml` for each key's meaning.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub attach: AttachConfig,
    pub stop: StopConfig,
    pub branch: BranchConfig,
    pub base: BaseConfig,
    pub worktrees: WorktreesConfig,
    pub hooks: HooksConfig,
    pub archive: ArchiveConfig,
    pub supervisor: SupervisorConfig,
    pub naming: NamingConfig,
    pub view: ViewConfig,
    pub github: GitHubConfig,
    pub ports: PortsConfig,
    pub sandbox: SandboxConfig,
    pub open: OpenConfig,
    pub serve: ServeConfig,
    pub notify: NotifyConfig,
    pub remote: RemoteConfig,
    pub checkpoints: CheckpointsConfig,
    pub watch: WatchConfig,
    /// `[env]`: variables every session's agent gets; `[env.secret]`: the
    /// same, never shown or stored.
    #[serde(default)]
    pub env: EnvConfig,
    /// Where each effective value came from, by dotted key
    /// (`branch.prefix`).
    #[serde(skip)]
    sources: BTreeMap<String, Source>,
}

/// What a repository's `.tandem.toml` may do with a key (issue 16): a
/// cloned repository is untrusted, so every key it may set is either
/// inert or held until the user approves its exact text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoTrust {
    /// Taken as it is: it cannot run, send or reach anything outside the
    /// repository (a name, a number, a switch).
    Inert,
    /// A command or environment value: it takes effect only once the user
    /// approved its exact text (`tandem hooks approve`, see
    /// [`crate::session::repo_hooks`]).
    Approval,
    /// Checked when loaded: `worktrees.dir` must stay inside the
    /// repository; `sandbox.mode` may ask for a sandbox but not turn the
    /// user's off.
    Checked,
    /// The user's alone; a repository's value is dropped. Where a token
    /// is sent (`github.api_url`, `github.host`) and how wide a sandbox is.
    UserOnly,
}

/// How a repository's value of the dotted `key` (`hooks.setup`,
/// `env.NAME`, `env.secret.NAME`) is treated; `None` for a key with no
/// rule, which is dropped (so a new key is the user's alone until it is
/// given a rule here; a unit test walks every built-in key).
#[must_use]
pub fn repo_trust(key: &str) -> Option<RepoTrust> {
    use RepoTrust::{Approval, Checked, Inert, UserOnly};
    if key.starts_with("env.") {
        return Some(Approval);
    }
    Some(match key {
        "attach.detach_key"
        | "attach.tmux"
        | "stop.grace_ms"
        | "branch.prefix"
        | "branch.protected"
        | "base.default"
        | "base.fetch_timeout_ms"
        | "supervisor.idle_timeout_secs"
        | "supervisor.quiet_secs"
        | "naming.auto"
        | "view.bell"
        | "view.notify"
        | "github.poll_secs"
        | "ports.base"
        | "ports.block"
        | "sandbox.image" => Inert,
        "hooks.setup"
        | "hooks.teardown"
        | "hooks.worktree_create"
        | "hooks.worktree_remove"
        | "archive.summary_command"
        | "naming.command" => Approval,
        "worktrees.dir" | "sandbox.mode" => Checked,
        "github.api_url"
        | "github.host"
        | "sandbox.network"
        | "sandbox.allow_net"
        | "sandbox.allow_write"
        | "sandbox.hide"
        | "sandbox.max_processes"
        | "sandbox.max_memory"
        | "sandbox.tmp_size"
        | "open.command"
        // The dashboard listens where the user says, and events go only
        // to the URLs the user wrote (issue 20): a repository's value is
        // dropped.
        | "serve.enabled"
        | "serve.listen"
        | "serve.tls_cert"
        | "serve.tls_key"
        | "serve.insecure_http"
        | "notify.webhook"
        | "notify.ntfy"
        // Which hosts the user's ssh reaches, and how long it waits, are
        // the user's (issue 21).
        | "remote.timeout_secs"
        // A repository that lowers it would prune the user's undo
        // history (issue 22).
        | "checkpoints.keep"
        // The supervisor's share of the user's inotify watches (issue
        // 23) is the user's: it is read when the supervisor starts.
        | "watch.max_watches"
        // Each pooled worktree is a whole checkout of the user's disk
        // (issue 23).
        | "worktrees.pool" => UserOnly,
        _ => return None,
    })
}

/// The dotted keys a repository's `.tandem.toml` at `file` sets that
/// only the user's config may set ([`RepoTrust::UserOnly`], or no rule):
/// they are dropped when it loads, and `tandem config show` says so
/// (`notify.webhook`, …). Empty when the file is missing or unreadable.
#[must_use]
pub fn repo_ignored_keys(file: &Path) -> Vec<String> {
    let Ok(layer) = std::fs::read_to_string(file).unwrap_or_default().parse::<toml::Table>() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (section, keys) in &layer {
        let toml::Value::Table(keys) = keys else { continue };
        for key in keys.keys() {
            let dotted = format!("{section}.{key}");
            if section != "env" && matches!(repo_trust(&dotted), None | Some(RepoTrust::UserOnly)) {
                out.push(dotted);
            }
        }
    }
    out
}

/// Applies [`repo_trust`] to a repository's layer: drops what is the
/// user's alone (or has no rule), and checks what is checked. A
/// repository may ask for a sandbox (`sandbox.mode`, `sandbox.image`) but
/// not turn the user's off, open its network, add writable paths, change
/// what is hidden or raise its limits; it may not choose where a token is
/// sent; its
/// `worktrees.dir` must be a relative path that stays inside it.
///
/// # Errors
/// [`ConfigError::RepoRefused`] for a `worktrees.dir` that leaves the
/// repository at `root`.
fn fence_repo_layer(layer: &mut toml::Table, file: &Path, root: &Path) -> Result<(), ConfigError> {
    for (section, keys) in layer.iter_mut() {
        let toml::Value::Table(keys) = keys else { continue };
        keys.retain(|key, _| {
            let dotted = format!("{section}.{key}");
            matches!(repo_trust(&dotted), Some(RepoTrust::Inert | RepoTrust::Approval | RepoTrust::Checked))
        });
    }
    if let Some(toml::Value::Table(sandbox)) = layer.get_mut("sandbox")
        && sandbox.get("mode").and_then(toml::Value::as_str) == Some("none")
    {
        sandbox.remove("mode");
    }
    if let Some(dir) = layer.get("worktrees").and_then(|w| w.get("dir")).and_then(toml::Value::as_str) {
        check_repo_worktrees_dir(dir, root).map_err(|why| ConfigError::RepoRefused {
            path: file.to_path_buf(),
            key: "worktrees.dir".to_owned(),
            value: dir.to_owned(),
            why,
        })?;
    }
    Ok(())
}

/// Whether a repository's `worktrees.dir` stays inside the repository at
/// `root`: empty (the default folder), or a relative path without `..`
/// whose existing part, symlinks resolved, is still under `root`.
/// `Err` says why not, in a phrase.
fn check_repo_worktrees_dir(dir: &str, root: &Path) -> Result<(), String> {
    use std::path::Component;
    if dir.is_empty() {
        return Ok(());
    }
    let path = Path::new(dir);
    if path.is_absolute() {
        return Err("is an absolute path".to_owned());
    }
    if path.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err("goes up with `..`".to_owned());
    }
    let Ok(root) = std::fs::canonicalize(root) else { return Ok(()) };
    // The deepest part that exists, symlinks resolved, must stay inside.
    let mut existing = root.join(path);
    loop {
        if let Ok(real) = std::fs::canonicalize(&existing) {
            return if real.starts_with(&root) { Ok(()) } else { Err("leads out through a symlink".to_owned()) };
        }
        if !existing.pop() {
            return Ok(());
        }
    }
}

/// Defines a config section and its layer twin, whose keys are all
/// optional: a file is checked against the layer types alone, so its
/// errors carry the file's own line numbers.
macro_rules! section {
    ($name:ident / $layer:ident { $($(#[$fdoc:meta])* $key:ident: $ty:ty),* $(,)? }) => {
        #[derive(Debug, Clone, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name { $($(#[$fdoc])* pub $key: $ty),* }

        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)] // only checked, never read
        struct $layer { $($key: Option<$ty>),* }
    };
}

/// One config file, checked before it is merged.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // only checked, never read
struct Layer {
    attach: Option<AttachLayer>,
    stop: Option<StopLayer>,
    branch: Option<BranchLayer>,
    base: Option<BaseLayer>,
    worktrees: Option<WorktreesLayer>,
    hooks: Option<HooksLayer>,
    archive: Option<ArchiveLayer>,
    supervisor: Option<SupervisorLayer>,
    naming: Option<NamingLayer>,
    view: Option<ViewLayer>,
    github: Option<GitHubLayer>,
    ports: Option<PortsLayer>,
    sandbox: Option<SandboxLayer>,
    open: Option<OpenLayer>,
    serve: Option<ServeLayer>,
    notify: Option<NotifyLayer>,
    remote: Option<RemoteLayer>,
    checkpoints: Option<CheckpointsLayer>,
    watch: Option<WatchLayer>,
    env: Option<EnvConfig>,
}

/// `[env]`: `NAME = "value"` pairs for every session's agent, and
/// `[env.secret]` pairs that are never shown (`tandem env` and `tandem
/// config show` mask them) and never stored.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EnvConfig {
    #[serde(default)]
    pub secret: BTreeMap<String, String>,
    #[serde(flatten)]
    pub vars: BTreeMap<String, String>,
}

section!(
    AttachConfig
        / AttachLayer {
            /// `ctrl-` plus a letter or one of `\ ] ^ _ @`.
            detach_key: String,
            /// Inside tmux, `tandem new` attaches in a new tmux window.
            tmux: bool,
        }
);
section!(
    StopConfig
        / StopLayer {
            /// Milliseconds between the polite signals and SIGKILL.
            grace_ms: u64,
        }
);
section!(BranchConfig / BranchLayer {
    /// `none`, `user`, or a literal prefix.
    prefix: String,
    protected: Vec<String>,
});
section!(
    BaseConfig
        / BaseLayer {
            /// `fresh`, `head`, or a commit-ish.
            default: String,
            /// Milliseconds the fetch for `fresh` may take.
            fetch_timeout_ms: u64,
        }
);
/// The most ready worktrees per repository `[worktrees] pool` may ask
/// for ([`crate::session::pool`]).
pub const MAX_POOL: u32 = 8;

section!(
    WorktreesConfig
        / WorktreesLayer {
            /// Parent folder of session worktrees (see `config.toml`).
            dir: String,
            /// How many checked-out worktrees per repository the
            /// supervisor keeps ready at the default base for `tandem
            /// new` ([`crate::session::pool`]); 0 for none, at most
            /// [`MAX_POOL`].
            pool: u32,
        }
);
section!(HooksConfig / HooksLayer {
    setup: Vec<String>,
    teardown: Vec<String>,
    worktree_create: String,
    worktree_remove: String,
});
section!(ArchiveConfig / ArchiveLayer { summary_command: String });
section!(
    NamingConfig
        / NamingLayer {
            /// Whether an unnamed session is named after its first prompt.
            auto: bool,
            /// Shell command: the prompt on stdin, a title on stdout;
            /// empty for the agent's own one-shot (`claude -p`).
            command: String,
        }
);
section!(
    ViewConfig
        / ViewLayer {
            /// Whether the agent view rings the terminal bell when a
            /// session starts needing input.
            bell: bool,
            /// Whether it also sends a desktop notification (OSC 9 and
            /// OSC 777, for terminals that show them).
            notify: bool,
        }
);
section!(
    PortsConfig
        / PortsLayer {
            /// The first port handed out as `TANDEM_PORT`.
            base: u16,
            /// How many ports each live session reserves from its
            /// `TANDEM_PORT` on.
            block: u16,
        }
);
section!(
    SandboxConfig
        / SandboxLayer {
            /// `none`, `workspace` (bubblewrap) or `container`.
            mode: String,
            /// `on` or `off`.
            network: String,
            /// `IP:PORT` endpoints reachable while the network is off.
            allow_net: Vec<String>,
            /// Paths (`~/` for the home folder) a sandboxed agent may
            /// write beside its worktree; missing ones are skipped.
            allow_write: Vec<String>,
            /// Paths (`~/` for the home folder) hidden from a sandboxed
            /// agent: credentials it has no business reading.
            hide: Vec<String>,
            /// The image `container` mode runs.
            image: String,
            /// Processes (threads count too) a sandboxed session may run
            /// at once; 0 for no cap.
            max_processes: u64,
            /// Memory a sandboxed session may use: bytes, or with `K`,
            /// `M`, `G` (powers of 1024); `0` for no cap.
            max_memory: String,
            /// The size of a sandboxed session's private `/tmp` (held in
            /// memory), as `max_memory`.
            tmp_size: String,
        }
);
section!(
    GitHubConfig
        / GitHubLayer {
            /// The REST API's base URL (`https://HOST/api/v3` for GitHub
            /// Enterprise Server).
            api_url: String,
            /// The host whose remote URLs are GitHub repositories.
            host: String,
            /// Seconds between the supervisor's polls of a session's pull
            /// request; 0 never polls.
            poll_secs: u64,
        }
);
section!(
    SupervisorConfig
        / SupervisorLayer {
            /// Seconds an agent may sit `idle` before it is stopped; 0
            /// never.
            idle_timeout_secs: u64,
            /// Seconds without output after which an agent that does not
            /// report its state is listed as `idle` (inferred).
            quiet_secs: u64,
        }
);

section!(
    OpenConfig
        / OpenLayer {
            /// The editor `tandem open` runs on a worktree (`code`);
            /// empty means `$VISUAL`, then `$EDITOR`.
            command: String,
        }
);

section!(
    ServeConfig
        / ServeLayer {
            /// Whether the supervisor runs `tandem serve` while it runs.
            enabled: bool,
            /// `IP:PORT` the dashboard listens on.
            listen: String,
            /// PEM certificate chain for HTTPS; empty for plain HTTP.
            tls_cert: String,
            /// PEM private key for `tls_cert`.
            tls_key: String,
            /// Plain HTTP on a non-loopback `listen`, insisted on.
            insecure_http: bool,
        }
);

section!(
    NotifyConfig
        / NotifyLayer {
            /// URL that gets each notification as a JSON POST; empty for
            /// none.
            webhook: String,
            /// ntfy topic URL (`https://ntfy.sh/TOPIC`); empty for none.
            ntfy: String,
        }
);

section!(
    RemoteConfig
        / RemoteLayer {
            /// Seconds an exchange with a remote host may take (ssh's
            /// connect included) before it is reported as not answering;
            /// `tandem list` never waits longer on one.
            timeout_secs: f64,
        }
);

section!(
    CheckpointsConfig
        / CheckpointsLayer {
            /// How many checkpoints each session keeps (the oldest go
            /// first); at least 1.
            keep: u32,
        }
);

section!(
    WatchConfig
        / WatchLayer {
            /// The most inotify watches the supervisor's facts cache
            /// holds (one per folder of each watched worktree); 0 for
            /// all but an eighth (at least 8,192) of
            /// `fs.inotify.max_user_watches`, read when the
            /// supervisor starts. Worktrees beyond it are polled: their
            /// facts are read with git on every `list`.
            max_watches: u64,
        }
);

/// Where an effective config value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// tandem's built-in `config.toml`.
    Default,
    /// The user's config file.
    User(PathBuf),
    /// The repository's `.tandem.toml`: hook commands from here need the
    /// user's approval.
    Repo(PathBuf),
    /// An environment variable.
    Env(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::User(path) | Source::Repo(path) => write!(f, "{}", path.display()),
            Source::Env(var) => write!(f, "${var}"),
        }
    }
}

/// Errors from [`Config::load`]; each names the file and line, or the
/// variable, to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}:{line}: {message}", path.display())]
    Parse { path: PathBuf, line: usize, message: String },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("${var}: {message}")]
    Env { var: String, message: String },
    /// A repository's value that it may not set.
    #[error(
        "{}: {key} `{value}` {why}, leaving the repository; a repository may only name a folder inside itself (fix the file, or set {key} in your own config)",
        path.display()
    )]
    RepoRefused { path: PathBuf, key: String, value: String, why: String },
}

/// The variables that override config values ([`Config::load`]):
/// `TANDEM_<SECTION>_<KEY>` for every key, and `TANDEM_DETACH_KEY`.
#[must_use]
pub fn env_names() -> &'static [String] {
    static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        let defaults: toml::Table = DEFAULTS.parse().expect("built-in config.toml is valid TOML");
        let mut names: Vec<String> = defaults
            .iter()
            .filter_map(|(section, keys)| keys.as_table().map(|keys| (section, keys)))
            .flat_map(|(section, keys)| keys.keys().map(move |key| format!("TANDEM_{section}_{key}").to_uppercase()))
            .collect();
        names.push("TANDEM_DETACH_KEY".to_owned());
        names.sort();
        names
    })
}

/// This process's values of [`env_names`], in name order: what a client
/// sends so its request is answered with the config it would load
/// itself.
#[must_use]
pub fn config_env() -> Vec<(String, String)> {
    env_names().iter().filter_map(|name| std::env::var(name).ok().map(|v| (name.clone(), v))).collect()
}

impl Config {
    /// Loads the layers: `user_file` and `repo_file` may be absent; the
    /// environment is read from the process.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file and line (or variable) of a syntax
    /// error, an unknown key, or a value of the wrong type.
    pub fn load(user_file: &Path, repo_file: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_with_env(user_file, repo_file, |var| std::env::var(var).ok())
    }

    /// [`Config::load`] with the environment given as a lookup function.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn load_with_env(
        user_file: &Path,
        repo_file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let defaults: toml::Table = DEFAULTS.parse().expect("built-in config.toml is valid TOML");
        let mut merged = defaults.clone();
        let mut sources = BTreeMap::new();
        record(&mut sources, "", &defaults, &Source::Default);
        let files = [(user_file, Source::User(user_file.to_path_buf()))]
            .into_iter()
            .chain(repo_file.map(|p| (p, Source::Repo(p.to_path_buf()))));
        for (path, source) in files {
            let text = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => return Err(ConfigError::Read { path: path.to_path_buf(), error }),
            };
            let at = |e: toml::de::Error| ConfigError::Parse {
                path: path.to_path_buf(),
                line: e.span().map_or(1, |span| text[..span.start.min(text.len())].matches('\n').count() + 1),
                message: e.message().trim().to_owned(),
            };
            let layer: toml::Table = text.parse().map_err(at)?;
            // Checked alone first, so a wrong key or type has a line.
            toml::from_str::<Layer>(&text).map_err(at)?;
            let mut layer = layer;
            if matches!(source, Source::Repo(_)) {
                fence_repo_layer(&mut layer, path, path.parent().unwrap_or(Path::new("/")))?;
            }
            record(&mut sources, "", &layer, &source);
            merge(&mut merged, layer);
        }
        let mut env_layer = toml::Table::new();
        for (section, keys) in &defaults {
            let toml::Value::Table(keys) = keys else { continue };
            for (key, default) in keys {
                let var = format!("TANDEM_{section}_{key}").to_uppercase();
                let alias = (section == "attach" && key == "detach_key").then_some("TANDEM_DETACH_KEY");
                let Some((var, raw)) = env(&var).map(|v| (var.clone(), v)).or_else(|| {
                    let alias = alias?;
                    env(alias).map(|v| (alias.to_owned(), v))
                }) else {
                    continue;
                };
                let value = match default {
                    toml::Value::String(_) => toml::Value::String(raw),
                    _ => format!("v = {raw}")
                        .parse::<toml::Table>()
                        .ok()
                        .and_then(|mut t| t.remove("v"))
                        .filter(|v| v.same_type(default))
                        .ok_or_else(|| ConfigError::Env {
                            var: var.clone(),
                            message: format!("`{raw}` is not a {}", default.type_str()),
                        })?,
                };
                sources.insert(format!("{section}.{key}"), Source::Env(var));
                let toml::Value::Table(t) =
                    env_layer.entry(section.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()))
                else {
                    unreachable!("sections are tables")
                };
                t.insert(key.clone(), value);
            }
        }
        merge(&mut merged, env_layer);
        let mut config: Config = toml::Value::Table(merged).try_into().map_err(|e: toml::de::Error| {
            ConfigError::Parse { path: user_file.to_path_buf(), line: 1, message: e.message().to_owned() }
        })?;
        if config.worktrees.pool > MAX_POOL {
            let message = format!(
                "`worktrees.pool = {}`: at most {} worktrees per repository are kept ready (each is a whole checkout); lower it",
                config.worktrees.pool, MAX_POOL
            );
            return Err(match sources.get("worktrees.pool") {
                Some(Source::Env(var)) => ConfigError::Env { var: var.clone(), message },
                _ => ConfigError::Parse { path: user_file.to_path_buf(), line: 1, message },
            });
        }
        config.sources = sources;
        Ok(config)
    }

    /// [`Config::load`] that keeps going past a broken layer (issue 19),
    /// for `tandem config show`: a file that fails to load on its own is
    /// left out and its error returned beside the config the other
    /// layers make; a bad `TANDEM_*` variable leaves the environment out.
    /// The errors come in layer order (user file, repository file,
    /// environment).
    #[must_use]
    pub fn load_lenient(user_file: &Path, repo_file: Option<&Path>) -> (Config, Vec<ConfigError>) {
        let load = |user: bool, repo: bool, env: bool| {
            // A path that names no file stands for a layer left out.
            let none = Path::new("");
            let user_file = if user { user_file } else { none };
            let repo_file = if repo { repo_file } else { None };
            if env { Config::load(user_file, repo_file) } else { Config::load_with_env(user_file, repo_file, |_| None) }
        };
        if let Ok(config) = load(true, true, true) {
            return (config, Vec::new());
        }
        let mut errors = Vec::new();
        let user = load(true, false, false).map_err(|e| errors.push(e)).is_ok();
        let repo = repo_file.is_some() && load(false, true, false).map_err(|e| errors.push(e)).is_ok();
        match load(user, repo, true) {
            Ok(config) => (config, errors),
            Err(e) => {
                errors.push(e);
                (load(user, repo, false).unwrap_or_else(|_| Config::defaults()), errors)
            }
        }
    }

    /// The file `tandem config init` writes: the built-in defaults with
    /// their comments, every key commented out, so the file documents
    /// every key and its default while the defaults stay tandem's.
    #[must_use]
    pub fn init_template() -> String {
        let mut out = String::from(
            "# tandem's configuration, written by `tandem config init`.\n\
             # Every key is shown with its default, commented out: remove the `# `\n\
             # before a key to change it. `tandem config show` prints the values in\n\
             # effect and where each came from; `tandem config path` lists the files.\n\n",
        );
        // The built-in file's own opening paragraph describes the layers.
        for line in DEFAULTS.lines() {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('[') {
                out.push_str(line);
            } else {
                out.push_str("# ");
                out.push_str(line);
            }
            out.push('\n');
        }
        out
    }

    /// The built-in defaults alone.
    #[must_use]
    pub fn defaults() -> Config {
        let mut config: Config = toml::from_str(DEFAULTS).expect("built-in config.toml matches Config");
        let table: toml::Table = DEFAULTS.parse().expect("built-in config.toml is valid TOML");
        record(&mut config.sources, "", &table, &Source::Default);
        config
    }

    /// Where the value of a dotted `key` (`hooks.setup`) came from.
    #[must_use]
    pub fn source(&self, key: &str) -> &Source {
        self.sources.get(key).unwrap_or(&Source::Default)
    }

    /// Every effective value as `(dotted key, TOML value, source)`, in
    /// key order.
    #[must_use]
    pub fn entries(&self) -> Vec<(String, String, Source)> {
        let table = toml::Table::try_from(self.values()).expect("config serializes");
        let mut out = Vec::new();
        for (section, keys) in table {
            let toml::Value::Table(keys) = keys else { continue };
            for (key, value) in keys {
                let dotted = format!("{section}.{key}");
                if let toml::Value::Table(inner) = value {
                    // `[env.secret]`: one entry per variable.
                    for (name, value) in inner {
                        let dotted = format!("{dotted}.{name}");
                        let source = self.source(&dotted).clone();
                        out.push((dotted, value.to_string(), source));
                    }
                    continue;
                }
                let source = self.source(&dotted).clone();
                out.push((dotted, value.to_string(), source));
            }
        }
        out
    }

    fn values(&self) -> serde_json::Value {
        let s = |v: &str| serde_json::Value::from(v);
        serde_json::json!({
            "attach": { "detach_key": s(&self.attach.detach_key), "tmux": self.attach.tmux },
            "stop": { "grace_ms": self.stop.grace_ms },
            "branch": { "prefix": s(&self.branch.prefix), "protected": self.branch.protected },
            "base": { "default": s(&self.base.default), "fetch_timeout_ms": self.base.fetch_timeout_ms },
            "worktrees": { "dir": s(&self.worktrees.dir), "pool": self.worktrees.pool },
            "hooks": {
                "setup": self.hooks.setup,
                "teardown": self.hooks.teardown,
                "worktree_create": s(&self.hooks.worktree_create),
                "worktree_remove": s(&self.hooks.worktree_remove),
            },
            "archive": { "summary_command": s(&self.archive.summary_command) },
            "supervisor": {
                "idle_timeout_secs": self.supervisor.idle_timeout_secs,
                "quiet_secs": self.supervisor.quiet_secs,
            },
            "naming": { "auto": self.naming.auto, "command": s(&self.naming.command) },
            "open": { "command": s(&self.open.command) },
            "serve": {
                "enabled": self.serve.enabled,
                "listen": s(&self.serve.listen),
                "tls_cert": s(&self.serve.tls_cert),
                "tls_key": s(&self.serve.tls_key),
                "insecure_http": self.serve.insecure_http,
            },
            "notify": { "webhook": s(&self.notify.webhook), "ntfy": s(&self.notify.ntfy) },
            "remote": { "timeout_secs": self.remote.timeout_secs },
            "checkpoints": { "keep": self.checkpoints.keep },
            "watch": { "max_watches": self.watch.max_watches },
            "view": { "bell": self.view.bell, "notify": self.view.notify },
            "ports": { "base": self.ports.base, "block": self.ports.block },
            "sandbox": {
                "mode": s(&self.sandbox.mode),
                "network": s(&self.sandbox.network),
                "allow_net": self.sandbox.allow_net,
                "allow_write": self.sandbox.allow_write,
                "hide": self.sandbox.hide,
                "image": s(&self.sandbox.image),
                "max_processes": self.sandbox.max_processes,
                "max_memory": s(&self.sandbox.max_memory),
                "tmp_size": s(&self.sandbox.tmp_size),
            },
            // A variable named like a secret is shown as one (issue 16).
            "env": self.env.vars.iter()
                .map(|(k, v)| (k.clone(), s(if crate::secrets::is_secret_name(k) { "(secret)" } else { v })))
                .chain(std::iter::once(("secret".to_owned(), serde_json::Value::Object(
                    self.env.secret.keys().map(|k| (k.clone(), s("(secret)"))).collect(),
                ))))
                .collect::<serde_json::Map<_, _>>(),
            "github": {
                "api_url": s(&self.github.api_url),
                "host": s(&self.github.host),
                "poll_secs": self.github.poll_secs,
            },
        })
    }
}

fn record(sources: &mut BTreeMap<String, Source>, prefix: &str, table: &toml::Table, source: &Source) {
    for (key, value) in table {
        let dotted = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match value {
            toml::Value::Table(t) => record(sources, &dotted, t, source),
            _ => {
                sources.insert(dotted, source.clone());
            }
        }
    }
}

fn merge(base: &mut toml::Table, layer: toml::Table) {
    for (key, value) in layer {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(l)) => merge(b, l),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn layers_override_key_by_key_and_remember_their_source() {
        let dir = tempfile::tempdir().expect("tempdir");
        let user = dir.path().join("user.toml");
        let repo = dir.path().join("repo.toml");
        std::fs::write(&user, "[stop]\ngrace_ms = 100\n[branch]\nprotected = [\"release\"]\n").expect("write");
        std::fs::write(&repo, "[stop]\ngrace_ms = 200\n[hooks]\nsetup = [\"make\"]\n").expect("write");
        let env = |var: &str| (var == "TANDEM_BRANCH_PREFIX").then(|| "user".to_owned());
        let config = Config::load_with_env(&user, Some(&repo), env).expect("config");
        assert_eq!(config.stop.grace_ms, 200);
        assert_eq!(config.branch.protected, vec!["release".to_owned()]);
        assert_eq!(config.branch.prefix, "user");
        assert_eq!(config.attach.detach_key, Config::defaults().attach.detach_key);
        assert_eq!(config.source("stop.grace_ms"), &Source::Repo(repo.clone()));
        assert_eq!(config.source("hooks.setup"), &Source::Repo(repo));
        assert_eq!(config.source("branch.protected"), &Source::User(user));
        assert_eq!(config.source("branch.prefix"), &Source::Env("TANDEM_BRANCH_PREFIX".to_owned()));
        assert_eq!(config.source("attach.detach_key"), &Source::Default);
        let entries = config.entries();
        assert!(entries.iter().any(|(k, v, _)| k == "hooks.setup" && v == "[\"make\"]"), "{entries:?}");
        assert_eq!(entries.len(), config.sources.len());
    }

    /// Every key of the built-in config has a rule for a repository's
    /// value (issue 16), so a new key cannot slip in unfenced.
    #[test]
    fn every_key_a_repository_may_set_is_inert_approved_checked_or_dropped() {
        let table: toml::Table = DEFAULTS.parse().expect("defaults");
        let mut keys = Vec::new();
        for (section, inner) in &table {
            let toml::Value::Table(inner) = inner else { panic!("{section} is a section") };
            keys.extend(inner.keys().map(|key| format!("{section}.{key}")));
        }
        keys.extend(["env.NAME".to_owned(), "env.secret.NAME".to_owned()]);
        for key in &keys {
            assert!(
                repo_trust(key).is_some(),
                "`{key}` has no rule in `repo_trust`: say what a repository may do with it"
            );
        }
        assert_eq!(repo_trust("env.LD_PRELOAD"), Some(RepoTrust::Approval));
        for key in ["github.api_url", "github.host", "sandbox.network", "sandbox.allow_write"] {
            assert_eq!(repo_trust(key), Some(RepoTrust::UserOnly), "{key}");
        }
        for key in ["hooks.setup", "archive.summary_command", "naming.command"] {
            assert_eq!(repo_trust(key), Some(RepoTrust::Approval), "{key}");
        }
    }

    #[test]
    fn a_repository_cannot_send_the_token_elsewhere_or_put_worktrees_outside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let user = dir.path().join("user.toml");
        let root = dir.path().join("repo");
        std::fs::create_dir_all(&root).expect("mkdir");
        let repo = root.join(".tandem.toml");
        std::fs::write(&repo, "[github]\napi_url = \"http://evil\"\nhost = \"evil\"\npoll_secs = 5\n").expect("write");
        let config = Config::load_with_env(&user, Some(&repo), no_env).expect("config");
        assert_eq!(repo_ignored_keys(&repo), ["github.api_url", "github.host"]);
        assert_eq!(config.github.api_url, Config::defaults().github.api_url);
        assert_eq!(config.github.host, Config::defaults().github.host);
        assert_eq!(config.github.poll_secs, 5, "inert keys still apply");
        for dir_value in ["../../x", "/tmp/x", "a/../../x", "link/x"] {
            std::os::unix::fs::symlink("/tmp", root.join("link")).ok();
            std::fs::write(&repo, format!("[worktrees]\ndir = \"{dir_value}\"\n")).expect("write");
            let err = Config::load_with_env(&user, Some(&repo), no_env).expect_err(dir_value);
            assert!(err.to_string().contains("worktrees.dir"), "{err}");
        }
        std::fs::write(&repo, "[worktrees]\ndir = \".tandem/worktrees\"\n").expect("write");
        assert_eq!(
            Config::load_with_env(&user, Some(&repo), no_env).expect("inside").worktrees.dir,
            ".tandem/worktrees"
        );
        std::fs::write(&user, "[worktrees]\ndir = \"/anywhere/the/user/likes\"\n").expect("write");
        std::fs::remove_file(&repo).expect("rm");
        assert!(Config::load_with_env(&user, Some(&repo), no_env).is_ok(), "the user's own choice stands");
    }

    /// Issue 20: where events are sent and where the dashboard listens
    /// are the user's alone.
    #[test]
    fn a_repository_cannot_set_notify_or_serve() {
        let dir = tempfile::tempdir().expect("tempdir");
        let user = dir.path().join("user.toml");
        let repo = dir.path().join(".tandem.toml");
        std::fs::write(&user, "[notify]\nwebhook = \"https://mine\"\n").expect("write");
        std::fs::write(
            &repo,
            "[notify]\nwebhook = \"http://evil\"\nntfy = \"http://evil\"\n[serve]\nenabled = true\nlisten = \"0.0.0.0:80\"\n",
        )
        .expect("write");
        let config = Config::load_with_env(&user, Some(&repo), no_env).expect("config");
        assert_eq!(config.notify.webhook, "https://mine");
        assert_eq!(config.notify.ntfy, "");
        assert!(!config.serve.enabled);
        assert_eq!(config.serve.listen, "127.0.0.1:7878");
        assert_eq!(repo_ignored_keys(&repo), ["notify.ntfy", "notify.webhook", "serve.enabled", "serve.listen"]);
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let user = dir.path().join("config.toml");
        for (text, line, says) in [
            ("[stop]\ngrace_ms = \"soon\"\n", 2, "invalid type"),
            ("# ok\n[branch]\nprefx = \"x\"\n", 3, "unknown field `prefx`"),
            ("[stop]\n\ngrace_ms = = 3\n", 3, ""),
        ] {
            std::fs::write(&user, text).expect("write");
            let err = Config::load_with_env(&user, None, no_env).expect_err("bad file");
            let shown = err.to_string();
            assert!(shown.starts_with(&format!("{}:{line}: ", user.display())), "{shown}");
            assert!(shown.contains(says), "{shown}");
        }
    }

    #[test]
    fn environment_values_are_typed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let user = dir.path().join("none.toml");
        let env = |var: &str| (var == "TANDEM_STOP_GRACE_MS").then(|| "250".to_owned());
        assert_eq!(Config::load_with_env(&user, None, env).expect("config").stop.grace_ms, 250);
        let env = |var: &str| (var == "TANDEM_STOP_GRACE_MS").then(|| "soon".to_owned());
        let err = Config::load_with_env(&user, None, env).expect_err("not an integer");
        assert!(err.to_string().starts_with("$TANDEM_STOP_GRACE_MS: `soon` is not a integer"), "{err}");
        let env = |var: &str| (var == "TANDEM_DETACH_KEY").then(|| "ctrl-]".to_owned());
        assert_eq!(Config::load_with_env(&user, None, env).expect("config").attach.detach_key, "ctrl-]");
    }

    /// Issue 19: `tandem config init`'s file loads, names every key, and
    /// changes no default.
    #[test]
    fn the_init_template_names_every_key_and_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("config.toml");
        let text = Config::init_template();
        std::fs::write(&file, &text).expect("write");
        let config = Config::load_with_env(&file, None, |_| None).expect("the template loads");
        for (key, _, source) in config.entries() {
            assert_eq!(source, Source::Default, "{key}");
            let name = key.rsplit('.').next().expect("a key");
            assert!(key.starts_with("env.") || text.contains(&format!("# {name} = ")), "{key} is in the template");
        }
    }

    /// Issue 19: a broken user file leaves the repository's layer shown.
    #[test]
    fn a_broken_layer_is_left_out_and_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let user = dir.path().join("config.toml");
        let repo = dir.path().join(".tandem.toml");
        std::fs::write(&user, "[branch]\nprefx = 1\n").expect("write");
        std::fs::write(&repo, "[branch]\nprefix = \"team/\"\n").expect("write");
        let (config, errors) = Config::load_lenient(&user, Some(&repo));
        assert_eq!(config.branch.prefix, "team/");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(matches!(&errors[0], ConfigError::Parse { path, line: 2, .. } if path == &user), "{errors:?}");
    }
}
