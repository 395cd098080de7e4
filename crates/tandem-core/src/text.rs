//! Text from outside the user's hands, made safe to print.
//!
//! Agents, repositories (`.tandem.toml`, branch names, hook output), GitHub
//! responses and remote hosts all hand tandem text that ends up on the
//! user's terminal. A raw escape sequence in it can erase what came before
//! it on the line (`\e[2K\r`), set the window title (OSC 0), write the
//! clipboard (OSC 52) or end a sequence tandem writes itself (a BEL inside
//! a desktop notification); a bidi override or a zero-width character
//! makes text read differently from what it is. Every front end prints
//! such text through [`visible`] (issue 16, section 3).
//!
//! The scheme, one escape per character, readable and unambiguous about
//! what was hidden:
//!
//! | character | shown as |
//! |---|---|
//! | tab, line feed, carriage return | `\t`, `\n`, `\r` |
//! | ESC (U+001B) | `\e` |
//! | other C0 controls (U+0000–U+001F) and DEL (U+007F) | `\xHH`: `\x07`, `\x7f` |
//! | C1 controls (U+0080–U+009F) | `\u{HH}`: `\u{9b}` |
//! | characters that hide or reorder text (see [`is_hiding`]) | `\u{HHHH}`: `\u{202e}` |
//!
//! Everything else, backslashes included, is shown as it is, so plain text
//! prints unchanged (a literal `\e` typed in a command looks like an
//! escaped ESC; it hides nothing either way).

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every control character and every character in
/// [`is_hiding`] replaced by a visible escape (the table in the module
/// docs). The result contains no character for which [`needs_escape`]
/// holds; text without such characters comes back borrowed and unchanged.
///
/// Multi-line text: split it on `'\n'` first where each line should stay a
/// line of its own; a newline given here comes back as `\n`.
#[must_use]
pub fn visible(text: &str) -> Cow<'_, str> {
    let Some(first) = text.find(needs_escape) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str(&text[..first]);
    for c in text[first..].chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\x1b' => out.push_str("\\e"),
            '\0'..='\x1f' | '\x7f' => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Whether [`visible`] replaces `c`: a control character (C0, DEL, C1) or
/// one that hides or reorders text ([`is_hiding`]).
#[must_use]
pub fn needs_escape(c: char) -> bool {
    c.is_control() || is_hiding(c)
}

/// Characters that print as nothing or change how the text around them
/// reads, while the program that receives the text sees them: the soft
/// hyphen, zero-width spaces and joiners, bidirectional marks, embeddings,
/// overrides and isolates (the "Trojan Source" characters), line and
/// paragraph separators, invisible operators, the byte order mark,
/// interlinear annotation marks and tag characters (U+E0000–U+E007F,
/// used to smuggle invisible ASCII).
///
/// Zero-width joiners inside emoji sequences are escaped too: a rare cost
/// for text that did not come from the user.
#[must_use]
pub fn is_hiding(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{61c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{e0000}'..='\u{e007f}'
    )
}

/// How many bytes at the start of `bytes` end on a character boundary:
/// all of them, less a last character cut short (1 to 3 bytes of a
/// sequence its next bytes would complete). Bytes that are no UTF-8 at
/// all count as complete (a lossy decoding shows them as U+FFFD), so only
/// a cut made by a read or a frame boundary is held back.
#[must_use]
pub fn utf8_complete_len(bytes: &[u8]) -> usize {
    let mut start = 0;
    loop {
        match std::str::from_utf8(&bytes[start..]) {
            Ok(_) => return bytes.len(),
            Err(e) => match e.error_len() {
                Some(bad) => start += e.valid_up_to() + bad,
                None => return start + e.valid_up_to(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    #[test]
    fn the_attacks_of_issue_16_show_what_is_there() {
        let hook = "\u{1b}[2K\r  [setup] npm ci\u{1b}]0;title\u{7}\u{1b}]52;c;Y3VybCBldmlsfHNo\u{1b}\\";
        assert_eq!(visible(hook), r"\e[2K\r  [setup] npm ci\e]0;title\x07\e]52;c;Y3VybCBldmlsfHNo\e\");
        assert_eq!(visible("a\u{9b}31mb\u{9c}"), r"a\u{9b}31mb\u{9c}");
        assert_eq!(visible("rm -rf /\u{202e}txt.exe"), r"rm -rf /\u{202e}txt.exe");
        assert_eq!(visible("npm c\u{200b}i"), r"npm c\u{200b}i");
        assert_eq!(visible("one\ttwo\nthree\0\u{7f}"), r"one\ttwo\nthree\x00\x7f");
        assert_eq!(visible("tag\u{e0041}"), r"tag\u{e0041}");
    }

    #[test]
    fn a_character_cut_short_is_held_back_and_nothing_else() {
        let euro = "a€".as_bytes(); // a, then 3 bytes
        assert_eq!(utf8_complete_len(euro), 4);
        assert_eq!(utf8_complete_len(&euro[..3]), 1);
        assert_eq!(utf8_complete_len(&euro[..2]), 1);
        assert_eq!(utf8_complete_len(b""), 0);
        // Bytes that are no UTF-8 are not waited on.
        assert_eq!(utf8_complete_len(b"a\xffb"), 3);
        assert_eq!(utf8_complete_len(b"\xff\xe2\x82"), 1);
    }

    #[test]
    fn plain_text_comes_back_borrowed_and_unchanged() {
        for text in ["", "npm ci", "Fix the login redirect — ünïcödé 日本語 🦀", r"grep 'a\|b' \e", "a;b"] {
            assert!(matches!(visible(text), Cow::Borrowed(t) if t == text), "{text:?}");
        }
    }

    #[test]
    fn no_character_escapes_unseen() {
        // Every Unicode scalar value, one at a time.
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            let mut buf = [0; 4];
            let shown = visible(c.encode_utf8(&mut buf));
            assert!(!shown.contains(needs_escape), "{c:?} -> {shown:?}");
            assert_eq!(matches!(shown, Cow::Borrowed(_)), !needs_escape(c), "{c:?}");
        }
    }

    /// A character drawn mostly from the troublesome ones.
    fn any_char(rng: &mut StdRng) -> char {
        match rng.random_range(0..6) {
            0 => char::from(rng.random_range(0..0x20u8)),
            1 => char::from_u32(rng.random_range(0x7f..0xa0)).expect("a scalar value"),
            2 => ['\u{202e}', '\u{200b}', '\u{2066}', '\u{feff}', '\u{e0041}', '\\', 'e', '[', ';']
                [rng.random_range(0..9)],
            3 => rng.random_range(' '..='~'),
            _ => rng.random::<char>(),
        }
    }

    #[test]
    fn property_output_has_no_control_and_keeps_every_other_character_in_order() {
        let mut rng = StdRng::seed_from_u64(16);
        for _ in 0..20_000 {
            let len = rng.random_range(0..40);
            let text: String = (0..len).map(|_| any_char(&mut rng)).collect();
            let shown = visible(&text);
            assert!(!shown.contains(needs_escape), "{text:?} -> {shown:?}");
            if !text.contains(needs_escape) {
                assert!(matches!(shown, Cow::Borrowed(_)), "{text:?}");
            }
            // Nothing is dropped: the characters left as they are appear in
            // order, and each escaped one left a backslash.
            let mut rest = shown.chars();
            for c in text.chars() {
                let wanted = if needs_escape(c) { '\\' } else { c };
                assert!(rest.any(|s| s == wanted), "{text:?} -> {shown:?}: {c:?} is missing");
            }
        }
    }
}
