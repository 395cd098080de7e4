//! Session names: validation and readable automatic names.
//!
//! A session's name is its slug: the branch name and the worktree's folder
//! name at once, so it must be both a valid git branch name and a safe
//! single path component. `git check-ref-format --branch` alone is too
//! lax (it accepts `@`, and `git branch @` succeeds), so tandem's rule is
//! stricter and checked first, without git:
//!
//! - 1 to 200 bytes of ASCII letters, digits, `.`, `_` and `-`;
//! - starts with a letter or digit (no `-x`, which git would take as an
//!   option, no `.hidden`);
//! - no `..`, does not end with `.` or `.lock` (git-check-ref-format(1)).

use rand::seq::IndexedRandom;

/// The longest name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 200;

/// Why a name was refused; the text says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("a session name cannot be empty; give a name like `fix-login`, or none for an automatic one")]
    Empty,
    #[error("session name is {len} bytes long; use at most {MAX_NAME_LEN}")]
    TooLong { len: usize },
    #[error(
        "session name `{name}` is not usable as a branch and folder name; use letters, digits, `.`, `_` and `-`, starting with a letter or digit, e.g. `fix-login`"
    )]
    Invalid { name: String },
}

/// Checks a session name against the rules in the module docs.
///
/// # Errors
/// [`NameError`] naming the rule broken.
pub fn validate(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong { len: name.len() });
    }
    let invalid = || NameError::Invalid { name: name.to_owned() };
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return Err(invalid());
    }
    if !name.as_bytes()[0].is_ascii_alphanumeric()
        || name.contains("..")
        || name.ends_with('.')
        || name.ends_with(".lock")
    {
        return Err(invalid());
    }
    Ok(())
}

/// The longest slug, in bytes: `^[a-z0-9][a-z0-9-]{0,62}$`.
pub const MAX_SLUG_LEN: usize = 63;

/// Makes a directory-safe slug (`^[a-z0-9][a-z0-9-]{0,62}$`) of any text:
/// ASCII letters lowercased, digits kept, every other run of characters
/// one `-`, no `-` at either end, cut to [`MAX_SLUG_LEN`]. May be empty.
#[must_use]
pub fn slugify(text: &str) -> String {
    let mut slug = String::with_capacity(text.len().min(MAX_SLUG_LEN));
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= MAX_SLUG_LEN {
            break;
        }
    }
    slug.truncate(MAX_SLUG_LEN);
    while slug.ends_with('-') {
        slug.pop();
    }
    slug
}

/// The slug of a session NAME the user gave: the name must pass
/// [`validate`]; the slug is [`slugify`] of it.
///
/// # Errors
/// [`NameError`] when the name breaks a rule or has no letter or digit.
pub fn slug_of(name: &str) -> Result<String, NameError> {
    validate(name)?;
    let slug = slugify(name);
    if slug.is_empty() {
        return Err(NameError::Invalid { name: name.to_owned() });
    }
    Ok(slug)
}

const ADJECTIVES: &[&str] = &[
    "amber",
    "brave",
    "bright",
    "calm",
    "clever",
    "cosmic",
    "crisp",
    "dapper",
    "eager",
    "fancy",
    "fearless",
    "gentle",
    "golden",
    "happy",
    "humble",
    "jolly",
    "keen",
    "lively",
    "lucky",
    "mellow",
    "merry",
    "mighty",
    "nimble",
    "noble",
    "polished",
    "proud",
    "quick",
    "quiet",
    "radiant",
    "rapid",
    "rustic",
    "shiny",
    "silent",
    "silver",
    "sleek",
    "smooth",
    "snappy",
    "solid",
    "sparkling",
    "spry",
    "steady",
    "stellar",
    "sunny",
    "swift",
    "tidy",
    "trusty",
    "vivid",
    "warm",
    "wise",
    "witty",
    "zesty",
    "zippy",
];

const NOUNS: &[&str] = &[
    "anchor", "aurora", "badger", "beacon", "breeze", "canyon", "cedar", "comet", "coral", "crane", "delta", "ember",
    "falcon", "fern", "fjord", "galaxy", "glacier", "harbor", "heron", "island", "lagoon", "lantern", "lynx", "maple",
    "meadow", "meteor", "nebula", "orbit", "otter", "panda", "pebble", "pine", "planet", "prairie", "quasar", "raven",
    "reef", "river", "rocket", "sparrow", "spruce", "summit", "thicket", "tiger", "tundra", "valley", "walrus",
    "willow", "zephyr",
];

/// A random `adjective-noun` name (e.g. `sparkling-nebula`) for which
/// `taken` returns false; after 64 tries a numeric suffix is added.
#[must_use]
pub fn generate(mut taken: impl FnMut(&str) -> bool) -> String {
    let mut rng = rand::rng();
    let mut pick = || {
        format!(
            "{}-{}",
            ADJECTIVES.choose(&mut rng).expect("non-empty list"),
            NOUNS.choose(&mut rng).expect("non-empty list")
        )
    };
    for _ in 0..64 {
        let name = pick();
        if !taken(&name) {
            return name;
        }
    }
    let base = pick();
    (2..).map(|n| format!("{base}-{n}")).find(|n| !taken(n)).expect("some suffix is free")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_the_names_the_issue_lists() {
        for bad in ["@", "a..b", "-x", "x.lock", "has space", "../x", "a/b", ".hidden", "end.", "tab\there", ""] {
            assert!(validate(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(validate(&"a".repeat(201)), Err(NameError::TooLong { len: 201 }));
        for good in ["fix-login", "v1.2", "a", "Feature_X", &"a".repeat(200)] {
            assert_eq!(validate(good), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn slugs_are_lowercase_dashes_and_bounded() {
        assert_eq!(slugify("Fix_Login.Redirect"), "fix-login-redirect");
        assert_eq!(slugify("--Ada  Lovelace--"), "ada-lovelace");
        assert_eq!(slugify("feature/über-cool"), "feature-ber-cool");
        assert_eq!(slugify("@@"), "");
        let long = slugify(&"ab-".repeat(40));
        assert!(long.len() <= MAX_SLUG_LEN && !long.ends_with('-'), "{long}");
        assert_eq!(slug_of("v1.2"), Ok("v1-2".to_owned()));
        assert!(slug_of("a..b").is_err());
        for text in ["Fix Login", "x.lock", "Ünïcode", "a/b/c", "0-x", "-lead"] {
            let slug = slugify(text);
            assert!(
                slug.is_empty()
                    || (slug.len() <= MAX_SLUG_LEN
                        && slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                        && !slug.starts_with('-')),
                "{text:?} -> {slug:?}"
            );
        }
    }

    #[test]
    fn generated_names_are_valid_and_avoid_taken_ones() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let name = generate(|n| seen.contains(n));
            validate(&name).expect("generated names are valid");
            assert!(seen.insert(name));
        }
        let always_taken_base = generate(|n| !n.ends_with("-2"));
        assert!(always_taken_base.ends_with("-2"));
    }
}
