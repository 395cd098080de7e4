//! Session names: validating a name and making a slug of it, and free
//! automatic names (adjective-noun). Renaming a session after its first
//! prompt is [`super::auto_name`].
//!
//! A session is known by its slug, the branch name and the worktree's
//! folder name at once, so it must be both a valid git branch name and a
//! safe single path component. `git check-ref-format --branch` alone is
//! too lax (it accepts `@`, and `git branch @` succeeds), so the slug is
//! made of the name the user gave, as the help promises ([`slugify`]):
//! lowercase ASCII letters and digits, `-` for every other run of
//! characters (`fix login` → `fix-login`, issue 17), at most
//! [`MAX_SLUG_LEN`] bytes, cut between words. A name is refused only when
//! it is empty, longer than [`MAX_NAME_LEN`] bytes, or has no ASCII
//! letter or digit.

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
        "session name `{name}` has no ASCII letter or digit to make a branch and folder name of; use a name like `fix-login`"
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
    if slugify(name).is_empty() {
        return Err(NameError::Invalid { name: name.to_owned() });
    }
    Ok(())
}

/// The longest slug, in bytes: `^[a-z0-9][a-z0-9-]{0,62}$`.
pub const MAX_SLUG_LEN: usize = 63;

/// Makes a directory-safe slug (`^[a-z0-9][a-z0-9-]{0,62}$`) of any text:
/// ASCII letters lowercased, digits kept, every other run of characters
/// one `-`, no `-` at either end; longer than [`MAX_SLUG_LEN`], it is cut
/// at the last `-` that keeps it within (a word is not split, issue 17),
/// else at [`MAX_SLUG_LEN`]. May be empty.
#[must_use]
pub fn slugify(text: &str) -> String {
    let mut slug = uncut(text);
    if slug.len() > MAX_SLUG_LEN {
        let cut = if slug.as_bytes()[MAX_SLUG_LEN] == b'-' {
            MAX_SLUG_LEN
        } else {
            slug[..MAX_SLUG_LEN].rfind('-').unwrap_or(MAX_SLUG_LEN)
        };
        slug.truncate(cut);
    }
    while slug.ends_with('-') {
        slug.pop();
    }
    slug
}

/// Whether [`slugify`] cuts `text`'s slug short: two such names can have
/// one slug.
#[must_use]
pub fn is_cut(text: &str) -> bool {
    uncut(text).len() > MAX_SLUG_LEN
}

/// [`slugify`] without the length limit.
fn uncut(text: &str) -> String {
    let mut slug = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
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
    Ok(slugify(name))
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
    fn refuses_only_names_without_a_letter_or_digit() {
        for bad in ["@", "..", "-", "/", "ü", ""] {
            assert!(validate(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(validate(&"a".repeat(201)), Err(NameError::TooLong { len: 201 }));
        for good in ["fix-login", "v1.2", "a", "Feature_X", "fix login", "a..b", "-x", "x.lock", &"a".repeat(200)] {
            assert_eq!(validate(good), Ok(()), "{good:?}");
        }
        // Issue 17: the help promises `-` for other characters.
        assert_eq!(slug_of("fix login"), Ok("fix-login".to_owned()));
        assert_eq!(slug_of("x.lock"), Ok("x-lock".to_owned()));
        assert_eq!(slug_of("../x"), Ok("x".to_owned()));
    }

    #[test]
    fn long_slugs_are_cut_between_words() {
        let name = "refactor-the-authentication-module-to-use-the-new-session-storage-and-tokens";
        let slug = slugify(name);
        assert_eq!(slug, "refactor-the-authentication-module-to-use-the-new-session");
        assert!(is_cut(name) && !is_cut("fix-login"));
        // One word longer than a slug is cut where it must be.
        assert_eq!(slugify(&"a".repeat(100)).len(), MAX_SLUG_LEN);
        // A cut that falls on a `-` keeps every whole word.
        assert_eq!(slugify(&format!("{}-b", "a".repeat(63))), "a".repeat(63));
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
        assert_eq!(slug_of("a..b"), Ok("a-b".to_owned()));
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
