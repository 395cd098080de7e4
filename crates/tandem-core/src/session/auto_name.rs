//! Naming a session from its first prompt (a title, and a branch renamed
//! to its slug). Checking names and making slugs is [`super::slugs`].
//!
//! A session started without a NAME has an adjective-noun slug. Once its
//! agent has the first prompt, tandem asks for a title (`naming.command`,
//! else the agent once, e.g. `claude -p --tools "" --no-session-persistence`),
//! records it, and renames the branch to the title's slug (`git branch
//! -m`) while the branch is on no remote; the worktree folder keeps its
//! name, so the running agent is undisturbed. Without a suggestion (no
//! such agent, a failure, a timeout) the session keeps its name.

use std::process::Command;

use super::{SessionError, end, is_protected, slugs};
use crate::config::Config;
use crate::git;
use crate::repo::Repository;
use crate::store::{Session, Store};

/// The longest title kept, in characters.
pub const MAX_TITLE: usize = 80;

/// A title for a session whose first prompt is `prompt`: from
/// `naming.command` (prompt on stdin), else from a one-shot call to the
/// session's agent ([`crate::agent::one_shot`]: Claude Code, Codex,
/// Gemini); `None` when neither answers.
/// Blocks up to the one-shot's time limit (90 s).
#[must_use]
pub fn suggest_title(session: &Session, config: &Config, env: &[(String, String)], prompt: &str) -> Option<String> {
    let command = config.naming.command.trim();
    let answer = if !command.is_empty() {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(command);
        let (_scratch, cwd) = end::one_shot_dir(session, &session.path)?;
        end::one_shot(cmd, &cwd, env, Some(prompt))
    } else {
        let question = format!(
            "Suggest a short title, at most six words, for a coding session that begins with the request \
             below. Answer with the title only, no quotes.\n\nRequest:\n{prompt}"
        );
        end::agent_one_shot(session, &session.path, env, &question)
    };
    clean_title(&answer?)
}

/// The first line of an answer, without quotes or a trailing period,
/// cut to [`MAX_TITLE`] characters; `None` if nothing is left.
fn clean_title(answer: &str) -> Option<String> {
    let line = answer.lines().map(str::trim).find(|l| !l.is_empty())?;
    let line = line.trim_matches(|c: char| c == '"' || c == '\'' || c == '`' || c == '*').trim();
    let line = line.strip_prefix("Title:").map_or(line, str::trim).trim_end_matches('.');
    let title: String = line.chars().take(MAX_TITLE).collect();
    (!title.trim().is_empty()).then(|| title.trim().to_owned())
}

/// Records `title` for `session` and, when its branch is tandem's, on no
/// remote, and the new name is free and not protected, renames the branch
/// to `<branch.prefix><slug of title>`. Returns the new branch, if
/// renamed. The caller holds the repository's lock.
///
/// # Errors
/// Git and store errors.
pub fn apply(
    store: &Store,
    repo: &Repository,
    config: &Config,
    session: &Session,
    prefix: &str,
    title: &str,
) -> Result<Option<String>, SessionError> {
    let slug = slugs::slugify(title);
    let branch = format!("{prefix}{slug}");
    let renamable = session.owns_branch
        && !slug.is_empty()
        && branch != session.branch
        && slugs::validate(&slug).is_ok()
        && !is_protected(repo, config, &branch)?
        && git::resolve_commit(&repo.root, &format!("refs/heads/{branch}"))?.is_none()
        && git::refs_under(&repo.root, "refs/remotes")?
            .iter()
            .all(|(r, _)| !r.ends_with(&format!("/{}", session.branch)))
        && git::config_get(&repo.root, &format!("branch.{}.remote", session.branch))?.is_none();
    if !renamable {
        store.set_suggested_title(&session.id, title)?;
        return Ok(None);
    }
    git::rename_branch(&repo.root, &session.branch, &branch)?;
    store.rename_branch(&session.id, &branch, title)?;
    Ok(Some(branch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_cleaned() {
        assert_eq!(clean_title("\"Fix the login redirect.\"\nmore").as_deref(), Some("Fix the login redirect"));
        assert_eq!(clean_title("\n  Title: Add dark mode  \n").as_deref(), Some("Add dark mode"));
        assert_eq!(clean_title("   \n\"\"\n"), None);
        assert_eq!(clean_title(&"x".repeat(200)).map(|t| t.len()), Some(MAX_TITLE));
    }
}
