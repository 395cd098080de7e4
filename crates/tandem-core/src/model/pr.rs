//! A session's pull request as last seen on GitHub.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Defines a status enum shown and stored by its kebab-case name.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum $name { $($(#[$vdoc])* $variant),* }

        impl $name {
            /// The name shown and stored.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// Where a pull request stands.
    PrState {
        Open = "open",
        Draft = "draft",
        Merged = "merged",
        Closed = "closed",
    }
);

text_enum!(
    /// The check runs on a pull request's head commit, taken together:
    /// any failed (`failure`, `timed_out`, `cancelled`,
    /// `action_required`, `startup_failure`) is `failing`, else any not
    /// completed is `pending`, else `passing`; `none` when there are none.
    Checks {
        Passing = "passing",
        Failing = "failing",
        Pending = "pending",
        None = "none",
    }
);

text_enum!(
    /// The review decision, as GitHub's own: each reviewer's latest
    /// approving, change-requesting or dismissed review counts; any
    /// `CHANGES_REQUESTED` wins, then any `APPROVED`; else
    /// `review-required` while reviewers are requested.
    Review {
        Approved = "approved",
        ChangesRequested = "changes-requested",
        ReviewRequired = "review-required",
        None = "none",
    }
);

/// A session's pull request as last seen: what `tandem list`, `--json`
/// and the agent view show. Stored as JSON with the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrStatus {
    pub number: u64,
    pub url: String,
    pub state: PrState,
    pub checks: Checks,
    pub review: Review,
    /// Unix seconds, when this status was first seen (the supervisor
    /// stores a status only when it changed).
    pub checked_at: i64,
}

impl PrStatus {
    /// One short line: `#12 open, checks passing, approved`.
    #[must_use]
    pub fn line(&self) -> String {
        let mut text = format!("#{} {}", self.number, self.state);
        if matches!(self.state, PrState::Open | PrState::Draft) {
            if self.checks != Checks::None {
                text.push_str(&format!(", checks {}", self.checks));
            }
            if self.review != Review::None {
                text.push_str(&format!(", {}", self.review));
            }
        }
        text
    }
}
