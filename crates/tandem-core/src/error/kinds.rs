//! Each core error's [`ErrorKind`] and hints, in one place: a match on
//! its variants, never on its text. A wrapper (`#[error(transparent)]`)
//! takes the kind and hints of what it wraps.

use super::{ErrorKind, Kinded};
use crate::agent::AgentError;
use crate::config::ConfigError;
use crate::connection::ClientError;
use crate::git::GitError;
use crate::host::HostError;
use crate::limits::LimitError;
use crate::paths::PathsError;
use crate::repo::RepoError;
use crate::sandbox::SandboxError;
use crate::sandbox_git::PrivateGitError;
use crate::session::SessionError;
use crate::session::env::EnvError;
use crate::session::slugs::NameError;
use crate::ship::ShipError;
use crate::ship::github::GitHubError;
use crate::ship::land::LandError;
use crate::ship::pull_request::PullError;
use crate::store::StoreError;
use crate::supervisor::SupervisorError;

impl Kinded for SessionError {
    fn kind(&self) -> ErrorKind {
        use ErrorKind::*;
        match self {
            SessionError::Repo(e) => e.kind(),
            SessionError::Lookup(e) => match e {
                crate::session::lookup::LookupError::Ambiguous { .. }
                | crate::session::lookup::LookupError::NotInSession { .. } => InvalidInput,
                _ => NotFound,
            },
            SessionError::Refused(f) => f.kind,
            SessionError::Name(e) => e.kind(),
            SessionError::Sandbox(e) => e.kind(),
            SessionError::PrivateGit(e) => e.kind(),
            SessionError::Env(e) => e.kind(),
            SessionError::Agent(e) => e.kind(),
            SessionError::Config(e) => e.kind(),
            SessionError::Paths(e) => e.kind(),
            SessionError::Git(e) => e.kind(),
            SessionError::Store(e) => e.kind(),
            SessionError::Io(e) => io_kind(e),
            SessionError::NotFound { .. } | SessionError::BaseNotFound { .. } | SessionError::NoRemote => NotFound,
            SessionError::BadSandboxMode { .. }
            | SessionError::InvalidBranch { .. }
            | SessionError::Protected { .. }
            | SessionError::ReviewNeedsAgent
            | SessionError::PromptNeedsAgent => InvalidInput,
            SessionError::RenameSame { .. } => InvalidInput,
            SessionError::NameTaken { .. }
            | SessionError::RenameTaken { .. }
            | SessionError::BranchPushed { .. }
            | SessionError::CutNameTaken { .. }
            | SessionError::BranchExists { .. }
            | SessionError::BranchCheckedOut { .. }
            | SessionError::HooksNotApproved { .. }
            | SessionError::NotArchived { .. }
            | SessionError::Archived { .. }
            | SessionError::PathExists { .. }
            | SessionError::RestoreBlocked { .. }
            | SessionError::NoCommits
            | SessionError::WouldLoseWork { .. }
            | SessionError::WorktreeMissing { .. } => Conflict,
            SessionError::Launch(e) => e.kind(),
            SessionError::PullRequest { .. } | SessionError::Hook { .. } => Failed,
        }
    }

    fn hints(&self) -> Vec<String> {
        match self {
            SessionError::NotFound { .. } => vec!["`tandem list` shows the sessions".to_owned()],
            SessionError::NameTaken { slug } => {
                vec![format!("pick another name, or remove it with `tandem rm {slug}`")]
            }
            SessionError::RenameTaken { .. } => vec!["pick another name (`tandem list` shows the sessions)".to_owned()],
            SessionError::BranchPushed { slug, to, .. } => vec![format!(
                "rename the branch too with `tandem rename {slug} {to} --branch` (the remote's copy keeps the old name)"
            )],
            SessionError::Archived { slug } => vec![format!("bring it back first with `tandem restore {slug}`")],
            SessionError::WouldLoseWork { slug, .. } => vec![format!(
                "commit or push them, or run `tandem rm --force {slug}` (a snapshot is kept under refs/tandem/archive/{slug}/)"
            )],
            SessionError::Repo(e) => e.hints(),
            SessionError::Lookup(e) => e.hints(),
            SessionError::Launch(e) => e.hints(),
            SessionError::Refused(f) => f.hints.clone(),
            SessionError::Name(e) => e.hints(),
            SessionError::Sandbox(e) => e.hints(),
            SessionError::PrivateGit(e) => e.hints(),
            SessionError::Env(e) => e.hints(),
            SessionError::Agent(e) => e.hints(),
            SessionError::Config(e) => e.hints(),
            SessionError::Paths(e) => e.hints(),
            SessionError::Git(e) => e.hints(),
            SessionError::Store(e) => e.hints(),
            _ => Vec::new(),
        }
    }
}

impl Kinded for RepoError {
    fn kind(&self) -> ErrorKind {
        match self {
            RepoError::NotARepository { .. } => ErrorKind::NotFound,
            RepoError::Bare { .. }
            | RepoError::InsideGitDir { .. }
            | RepoError::NotUtf8 { .. }
            | RepoError::BareWithWorktrees { .. } => ErrorKind::InvalidInput,
            RepoError::Git(e) => e.kind(),
        }
    }
}

impl Kinded for NameError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }
}

impl Kinded for SandboxError {
    fn kind(&self) -> ErrorKind {
        match self {
            SandboxError::NoBwrap | SandboxError::NoContainerRuntime | SandboxError::NoEngine { .. } => {
                ErrorKind::Unavailable
            }
            SandboxError::NoImage
            | SandboxError::BadEndpoint { .. }
            | SandboxError::BadNetwork { .. }
            | SandboxError::ShowsTandem { .. }
            | SandboxError::NotAbsolute { .. } => ErrorKind::InvalidInput,
            SandboxError::Limit(e) => e.kind(),
            SandboxError::EngineBroken { .. } | SandboxError::GitLink { .. } => ErrorKind::Failed,
        }
    }
}

impl Kinded for LimitError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }
}

impl Kinded for PrivateGitError {
    fn kind(&self) -> ErrorKind {
        match self {
            PrivateGitError::Git(e) => e.kind(),
            PrivateGitError::NoAdmin { .. } => ErrorKind::Conflict,
            PrivateGitError::NoBwrap => ErrorKind::Unavailable,
            PrivateGitError::Io { .. } => ErrorKind::Failed,
        }
    }
}

impl Kinded for EnvError {
    fn kind(&self) -> ErrorKind {
        match self {
            EnvError::NotAPair { .. } | EnvError::BadKey { .. } | EnvError::BadLine { .. } => ErrorKind::InvalidInput,
            EnvError::Read { error, .. } => io_kind(error),
            EnvError::Missing { .. } => ErrorKind::NotFound,
        }
    }

    fn hints(&self) -> Vec<String> {
        match self {
            EnvError::Missing { again, .. } => {
                vec![format!("give the file again: `{again} --env-file FILE` (a `<(…)` works too)")]
            }
            _ => Vec::new(),
        }
    }
}

impl Kinded for AgentError {
    fn kind(&self) -> ErrorKind {
        match self {
            AgentError::NotFound { .. } => ErrorKind::NotFound,
            AgentError::Unparsable { .. } | AgentError::Empty => ErrorKind::InvalidInput,
        }
    }
}

impl Kinded for ConfigError {
    fn kind(&self) -> ErrorKind {
        match self {
            ConfigError::Parse { .. } | ConfigError::Env { .. } | ConfigError::RepoRefused { .. } => {
                ErrorKind::InvalidInput
            }
            ConfigError::Read { error, .. } => io_kind(error),
        }
    }

    fn hints(&self) -> Vec<String> {
        match self {
            ConfigError::Parse { .. } => vec![
                "fix the file; `tandem config show` still shows every key and which file is broken, and `tandem config init` writes a commented file with every key"
                    .to_owned(),
            ],
            ConfigError::Env { .. } => vec!["fix or unset the variable".to_owned()],
            ConfigError::Read { .. } => vec!["`tandem config path` shows each config file".to_owned()],
            ConfigError::RepoRefused { .. } => Vec::new(),
        }
    }
}

impl Kinded for PathsError {
    fn kind(&self) -> ErrorKind {
        match self {
            PathsError::NoHome => ErrorKind::InvalidInput,
            PathsError::Unsafe { .. } => ErrorKind::Conflict,
            PathsError::Create { .. } => ErrorKind::Failed,
        }
    }
}

impl Kinded for GitError {
    fn kind(&self) -> ErrorKind {
        match self {
            GitError::Spawn { .. } => ErrorKind::Unavailable,
            GitError::Failed { .. } => ErrorKind::Failed,
        }
    }
}

impl Kinded for StoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            StoreError::SlugTaken { .. } | StoreError::NoPorts => ErrorKind::Conflict,
            // The supervisor stopped; the next command starts another.
            StoreError::Replaced { .. } => ErrorKind::Unavailable,
            StoreError::Open { .. } | StoreError::Gone { .. } | StoreError::Sqlite(_) => ErrorKind::Failed,
        }
    }
}

impl Kinded for HostError {
    fn kind(&self) -> ErrorKind {
        match self {
            HostError::Store(e) => e.kind(),
            HostError::Version { .. } => ErrorKind::Conflict,
            HostError::Spec(_) | HostError::Io(_) | HostError::Spawn { .. } => ErrorKind::Failed,
        }
    }
}

impl Kinded for SupervisorError {
    fn kind(&self) -> ErrorKind {
        match self {
            SupervisorError::AlreadyRunning { .. } => ErrorKind::Conflict,
            SupervisorError::Paths(e) => e.kind(),
            SupervisorError::Store(e) => e.kind(),
            SupervisorError::Io(e) => io_kind(e),
        }
    }
}

impl Kinded for ClientError {
    fn kind(&self) -> ErrorKind {
        match self {
            ClientError::Start(..) | ClientError::Io(_) => ErrorKind::Unavailable,
            ClientError::Unsendable(_) => ErrorKind::InvalidInput,
            ClientError::Remote(failure) => failure.kind,
        }
    }

    fn hints(&self) -> Vec<String> {
        match self {
            ClientError::Io(_) => vec!["check `tandem daemon status`".to_owned()],
            ClientError::Remote(failure) => failure.hints.clone(),
            ClientError::Start(..) | ClientError::Unsendable(_) => Vec::new(),
        }
    }
}

impl Kinded for ShipError {
    fn kind(&self) -> ErrorKind {
        use ErrorKind::*;
        match self {
            ShipError::Git(e) => e.kind(),
            ShipError::BadRef { .. } | ShipError::Protected { .. } => InvalidInput,
            ShipError::NoRemote | ShipError::NoRemoteDefault | ShipError::NoWorktree { .. } => NotFound,
            ShipError::Dirty { .. }
            | ShipError::NothingToAbort { .. }
            | ShipError::InProgress { .. }
            | ShipError::TargetDirty { .. }
            | ShipError::WouldConflict { .. }
            | ShipError::Interrupted { .. }
            | ShipError::NoMergeToAbort { .. }
            | ShipError::MergeRunning { .. }
            | ShipError::GitBusy { .. }
            | ShipError::MergeMoved { .. }
            | ShipError::NothingToMerge { .. }
            | ShipError::NothingToSquash { .. }
            | ShipError::NotFastForward { .. } => Conflict,
            ShipError::SyncFailed { .. } | ShipError::Owner { .. } | ShipError::Push(_) | ShipError::State(_) => Failed,
        }
    }

    fn hints(&self) -> Vec<String> {
        match self {
            ShipError::NothingToSquash { slug, .. } => vec![format!(
                "`tandem diff {slug}` shows what its branch changes; `tandem archive {slug}` puts the session away"
            )],
            ShipError::Git(e) => e.hints(),
            _ => Vec::new(),
        }
    }
}

impl Kinded for GitHubError {
    fn kind(&self) -> ErrorKind {
        match self {
            GitHubError::NoToken | GitHubError::NotGitHub { .. } => ErrorKind::InvalidInput,
            GitHubError::Unreachable { .. } => ErrorKind::Unavailable,
            GitHubError::Unauthorized { .. } | GitHubError::Api { .. } => ErrorKind::Failed,
            GitHubError::Exists { .. } | GitHubError::NotMergeable { .. } => ErrorKind::Conflict,
        }
    }
}

impl Kinded for PullError {
    fn kind(&self) -> ErrorKind {
        match self {
            PullError::Ship(e) => e.kind(),
            PullError::GitHub(e) => e.kind(),
            PullError::Git(e) => e.kind(),
            PullError::Store(e) => e.kind(),
            PullError::HasOpen { .. } => ErrorKind::Conflict,
            PullError::NoPull { .. } | PullError::NoBase { .. } => ErrorKind::NotFound,
            PullError::EmptyTitle => ErrorKind::InvalidInput,
        }
    }
}

impl Kinded for LandError {
    fn kind(&self) -> ErrorKind {
        match self {
            LandError::Ship(e) => e.kind(),
            LandError::Git(e) => e.kind(),
            LandError::Pull(e) => e.kind(),
            LandError::NotOpen { .. } | LandError::Draft { .. } | LandError::HeadMoved { .. } => ErrorKind::Conflict,
        }
    }

    fn hints(&self) -> Vec<String> {
        match self {
            LandError::Ship(e) => e.hints(),
            LandError::Git(e) => e.hints(),
            _ => Vec::new(),
        }
    }
}

/// The kind of an I/O error: a missing file is not found, a busy or
/// refusing peer unavailable, anything else failed.
fn io_kind(error: &std::io::Error) -> ErrorKind {
    use std::io::ErrorKind as Io;
    match error.kind() {
        Io::NotFound => ErrorKind::NotFound,
        Io::ConnectionRefused | Io::ConnectionReset | Io::TimedOut | Io::WouldBlock => ErrorKind::Unavailable,
        _ => ErrorKind::Failed,
    }
}

impl Kinded for crate::client::ClientError {
    fn kind(&self) -> ErrorKind {
        use crate::client::ClientError as E;
        match self {
            E::Supervisor(e) => e.kind(),
            E::Session(e) => e.kind(),
            E::Store(e) => e.kind(),
            E::Checkpoint(e) => e.kind(),
            E::EmptyPrompt | E::PromptTooLong { .. } | E::NoPermissionReports { .. } => ErrorKind::InvalidInput,
            E::NotRunning { .. } | E::NotWaiting { .. } | E::AsksQuestion { .. } => ErrorKind::Conflict,
            E::Unexpected { .. } => ErrorKind::Internal,
        }
    }

    fn hints(&self) -> Vec<String> {
        use crate::client::ClientError as E;
        match self {
            E::Supervisor(e) => e.hints(),
            E::Session(e) => e.hints(),
            E::Store(e) => e.hints(),
            E::Checkpoint(e) => e.hints(),
            E::NotRunning { slug } => vec![format!("start it again with `tandem respawn {slug}`")],
            E::EmptyPrompt
            | E::PromptTooLong { .. }
            | E::NoPermissionReports { .. }
            | E::NotWaiting { .. }
            | E::AsksQuestion { .. }
            | E::Unexpected { .. } => Vec::new(),
        }
    }
}

impl Kinded for crate::checkpoints::CheckpointError {
    fn kind(&self) -> ErrorKind {
        use crate::checkpoints::CheckpointError as E;
        match self {
            E::Git(e) => e.kind(),
            E::Store(e) => e.kind(),
            E::Write { .. } => ErrorKind::Failed,
            E::NoSuch { .. } | E::NothingToUndo { .. } => ErrorKind::NotFound,
            E::BadPath { .. } | E::NoSuchPath { .. } => ErrorKind::InvalidInput,
            E::NoWorktree { .. }
            | E::MidTurn { .. }
            | E::HardInSandbox { .. }
            | E::HeadGone { .. }
            | E::IndexLocked { .. } => ErrorKind::Conflict,
            E::NoConversationRewind { .. } | E::NoMessage { .. } => ErrorKind::InvalidInput,
        }
    }
}

impl Kinded for crate::tasks::TaskError {
    fn kind(&self) -> ErrorKind {
        use crate::tasks::TaskError as E;
        match self {
            E::EmptyObjective
            | E::TrialCount { .. }
            | E::TooManyAgents { .. }
            | E::EmptyAgent
            | E::EmptyCheck
            | E::NoSuchTrial { .. } => ErrorKind::InvalidInput,
            E::NotFound { .. } => ErrorKind::NotFound,
            E::NameTaken { .. }
            | E::FamilyBranch { .. }
            | E::TrialNameTaken { .. }
            | E::TrialBranch { .. }
            | E::AlreadyPromoted { .. }
            | E::TrialArchived { .. }
            | E::ResultBranch { .. }
            | E::TrialGone { .. } => ErrorKind::Conflict,
            E::CheckNotRun { .. } => ErrorKind::Failed,
        }
    }
}

impl Kinded for crate::session::launch::LaunchError {
    fn kind(&self) -> ErrorKind {
        use crate::session::launch::LaunchError as E;
        match self {
            E::Store(e) => e.kind(),
            E::Env(e) => e.kind(),
            E::Fence(e) => e.kind(),
            E::Overlay { .. }
            | E::Brief(_)
            | E::ReviewStart(_)
            | E::ReadOnly(_)
            | E::Log { .. }
            | E::Spawn { .. }
            | E::Handoff(_)
            | E::NoReport { .. }
            | E::Failed { .. } => ErrorKind::Failed,
        }
    }

    fn hints(&self) -> Vec<String> {
        use crate::session::launch::LaunchError as E;
        match self {
            E::Store(e) => e.hints(),
            E::Env(e) => e.hints(),
            E::Fence(e) => e.hints(),
            _ => Vec::new(),
        }
    }
}

impl Kinded for crate::session::launch::FenceError {
    fn kind(&self) -> ErrorKind {
        use crate::session::launch::FenceError as E;
        match self {
            E::Sandbox(e) => e.kind(),
            E::Paths(e) => e.kind(),
            E::Io(e) => io_kind(e),
            E::PrivateGit(e) => e.kind(),
        }
    }

    fn hints(&self) -> Vec<String> {
        use crate::session::launch::FenceError as E;
        match self {
            E::Sandbox(e) => e.hints(),
            E::Paths(e) => e.hints(),
            E::PrivateGit(e) => e.hints(),
            E::Io(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Failure;

    /// A moved hint reads as it did when it was part of the message.
    #[test]
    fn moved_hints_keep_the_text_users_see() {
        let e = SessionError::NotFound { name: "ghost".into() };
        assert_eq!(
            Failure::of(&e).to_string(),
            "no session named `ghost` in this repository; `tandem list` shows the sessions"
        );
        let e = SessionError::WouldLoseWork { slug: "s".into(), what: "1 untracked file".into() };
        let f = Failure::of(&e);
        assert_eq!(f.kind, ErrorKind::Conflict);
        assert_eq!(f.message, "session `s` has 1 untracked file");
        assert_eq!(
            f.to_string(),
            "session `s` has 1 untracked file; commit or push them, or run `tandem rm --force s` (a snapshot is kept under refs/tandem/archive/s/)"
        );
        // A wrapped error keeps the kind of what it wraps.
        let e = SessionError::Git(GitError::Failed { args: "x".into(), code: Some(1), stderr: "no".into() });
        assert_eq!(e.kind(), ErrorKind::Failed);
    }
}
