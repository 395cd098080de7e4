//! `tandem config`: show, locate, write and edit the configuration
//! (issue 19). `show` works even when a layer is broken: it names the
//! broken file and its error and still shows what the other layers say.

use std::io::Write;
use std::path::{Path, PathBuf};

use tandem_core::config::{Config, ConfigError};
use tandem_core::error::Failure;
use tandem_core::text::visible;

use crate::context::Context;
use crate::error::CliError;

/// Show, locate, write or edit tandem's configuration
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  tandem config show            every value in effect and where it came from
  tandem config path            each config file and whether it exists
  tandem config init            write a commented config file with every key
  tandem config edit            open your config file in $VISUAL / $EDITOR")]
pub struct ConfigArgs {
    #[command(subcommand)]
    action: ConfigAction,
}

#[derive(clap::Subcommand, Debug)]
enum ConfigAction {
    /// Print every effective value and where it came from: default, your
    /// config.toml, the repository's .tandem.toml, or a TANDEM_* variable
    ///
    /// A file that does not load is named with its error; the values of
    /// the other layers are still shown (and the command exits 1).
    #[command(after_help = "Examples:
  tandem config show
  tandem config show --json | jq '.entries[] | select(.key == \"branch.prefix\")'")]
    Show {
        /// One JSON object: `entries` (key, value, source) and `errors`
        #[arg(long)]
        json: bool,
    },
    /// Print each config layer's path and whether it exists
    #[command(after_help = "Examples:
  tandem config path
  tandem config path --json")]
    Path {
        /// A JSON array, one object per layer
        #[arg(long)]
        json: bool,
    },
    /// Write your config file with every key and its default, commented
    /// out; refuses to overwrite an existing file without --force
    #[command(after_help = "Examples:
  tandem config init
  tandem config init --force    replace an existing file")]
    Init {
        /// Replace an existing file
        #[arg(short, long)]
        force: bool,
    },
    /// Open your config file in $VISUAL or $EDITOR (written first with
    /// `config init` when missing), and check it when the editor exits
    #[command(after_help = "Examples:
  tandem config edit
  EDITOR=nano tandem config edit")]
    Edit,
}

pub fn run(cx: &Context, args: &ConfigArgs) -> Result<(), CliError> {
    match args.action {
        ConfigAction::Show { json } => show(cx, json),
        ConfigAction::Path { json } => path(cx, json),
        ConfigAction::Init { force } => init(cx, force),
        ConfigAction::Edit => edit(cx),
    }
}

/// The user's config file.
fn user_file(cx: &Context) -> PathBuf {
    cx.paths.config_dir.join("config.toml")
}

/// The repository's `.tandem.toml`, when the current folder is in one.
fn repo_file(cx: &Context) -> Option<PathBuf> {
    tandem_core::repo::Repository::discover(&cx.cwd).ok().map(|repo| repo.root.join(".tandem.toml"))
}

fn show(cx: &Context, json: bool) -> Result<(), CliError> {
    let (config, errors) = Config::load_lenient(&user_file(cx), repo_file(cx).as_deref());
    let mut out = std::io::stdout().lock();
    if json {
        let entries: Vec<serde_json::Value> = config
            .entries()
            .into_iter()
            .map(|(key, value, source)| serde_json::json!({"key": key, "value": value, "source": source.to_string()}))
            .collect();
        let errors: Vec<serde_json::Value> = errors
            .iter()
            .map(|e| serde_json::json!({"path": broken_path(e).map(|p| p.display().to_string()), "error": e.to_string()}))
            .collect();
        writeln!(out, "{}", serde_json::json!({"entries": entries, "errors": errors}))?;
    } else {
        // Keys and values may come from the repository's .tandem.toml.
        let lines: Vec<(String, String)> = config
            .entries()
            .into_iter()
            .map(|(key, value, source)| {
                (format!("{} = {}", visible(&key), visible(&value)), visible(&source.to_string()).into_owned())
            })
            .collect();
        let width = lines.iter().map(|(line, _)| line.chars().count()).max().unwrap_or(0);
        for (line, source) in lines {
            writeln!(out, "{line:<width$}  # {source}")?;
        }
    }
    out.flush()?;
    drop(out);
    if let Some(file) = repo_file(cx) {
        for key in tandem_core::config::repo_ignored_keys(&file) {
            crate::context::note!(
                "{} sets {}, which only your own config sets; it is ignored",
                visible(&file.display().to_string()),
                visible(&key)
            );
        }
    }
    let Some(first) = errors.first() else { return Ok(()) };
    let mut err = std::io::stderr().lock();
    for e in &errors[1..] {
        writeln!(err, "error: {}", visible(&e.to_string()))?;
    }
    let hint = "the values above leave that layer out; fix it (`tandem config path` lists the files)";
    Err(CliError::Failed(Failure { hints: vec![hint.to_owned()], ..Failure::of(first) }))
}

/// The file a config error is about; `None` for a variable.
fn broken_path(e: &ConfigError) -> Option<&Path> {
    match e {
        ConfigError::Parse { path, .. } | ConfigError::Read { path, .. } | ConfigError::RepoRefused { path, .. } => {
            Some(path)
        }
        ConfigError::Env { .. } => None,
    }
}

fn path(cx: &Context, json: bool) -> Result<(), CliError> {
    let user = user_file(cx);
    let (_, errors) = Config::load_lenient(&user, repo_file(cx).as_deref());
    let state = |file: &Path| -> String {
        if let Some(e) = errors.iter().find(|e| broken_path(e) == Some(file)) {
            format!("broken: {e}")
        } else if file.exists() {
            "exists".to_owned()
        } else {
            "missing".to_owned()
        }
    };
    let mut layers = vec![("user", user.display().to_string(), state(&user))];
    if let Some(repo) = repo_file(cx) {
        layers.push(("repository", repo.display().to_string(), state(&repo)));
    }
    let env_vars: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.starts_with("TANDEM_") && k != "TANDEM_HOME" && k != "TANDEM_LOG")
        .collect();
    let env_state = match errors.iter().find(|e| broken_path(e).is_none()) {
        Some(e) => format!("broken: {e}"),
        None if env_vars.is_empty() => "none set".to_owned(),
        None => format!("set: {}", env_vars.join(" ")),
    };
    layers.push(("environment", "TANDEM_<SECTION>_<KEY>".to_owned(), env_state));
    let mut out = std::io::stdout().lock();
    if json {
        let rows: Vec<serde_json::Value> = layers
            .iter()
            .map(|(layer, path, state)| {
                let exists = state != "missing" && state != "none set";
                serde_json::json!({"layer": layer, "path": path, "exists": exists, "state": state})
            })
            .collect();
        writeln!(out, "{}", serde_json::Value::Array(rows))?;
    } else {
        writeln!(out, "{:<12} (built in)  exists", "default")?;
        for (layer, path, state) in layers {
            writeln!(out, "{layer:<12} {}  {}", visible(&path), visible(&state))?;
        }
    }
    Ok(())
}

fn init(cx: &Context, force: bool) -> Result<(), CliError> {
    let file = user_file(cx);
    if file.exists() && !force {
        return Err(CliError::Failed(
            Failure::new(
                tandem_core::error::ErrorKind::Conflict,
                format!("{} already exists; nothing was written", file.display()),
            )
            .hinted(
                "`tandem config edit` opens it; `tandem config init --force` replaces it with the commented defaults",
            ),
        ));
    }
    write_template(&file)?;
    writeln!(std::io::stdout().lock(), "wrote {} (every key commented out, with its default)", file.display())?;
    Ok(())
}

fn write_template(file: &Path) -> Result<(), CliError> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| CliError::user(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(file, Config::init_template())
        .map_err(|e| CliError::user(format!("cannot write {}: {e}", file.display())))?;
    Ok(())
}

fn edit(cx: &Context) -> Result<(), CliError> {
    let file = user_file(cx);
    if !file.exists() {
        write_template(&file)?;
    }
    let editor = crate::commands::open::editor(None).ok_or_else(|| {
        CliError::Failed(
            Failure::new(tandem_core::error::ErrorKind::NotFound, "no editor: $VISUAL and $EDITOR are unset")
                .hinted(format!("set EDITOR (`export EDITOR=nano`), or edit {} yourself", file.display())),
        )
    })?;
    let status = crate::commands::open::run_editor(&editor, &file)?;
    if !status.success() {
        return Err(CliError::user(format!(
            "the editor `{editor}` failed ({status}); {} is as it left it",
            file.display()
        )));
    }
    match Config::load_with_env(&file, None, |_| None) {
        Ok(_) => {
            writeln!(std::io::stdout().lock(), "{} is valid", file.display())?;
            Ok(())
        }
        Err(e) => {
            let failure = Failure::of(&e);
            Err(CliError::Failed(Failure {
                hints: vec!["run `tandem config edit` again to fix it".to_owned()],
                ..failure
            }))
        }
    }
}
