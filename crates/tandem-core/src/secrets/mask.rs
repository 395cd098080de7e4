//! Masking secret values in what is stored: events, titles, summaries
//! and the raw PTY log (issue 16).
//!
//! A secret is found in the text a terminal would show, not in the raw
//! bytes: escape sequences (CSI `ESC [ … final`, OSC/DCS/SOS/PM/APC
//! strings up to BEL or `ESC \`, and two- or three-byte `ESC x`) and the
//! controls that draw nothing (C0 other than tab, newline, carriage
//! return and backspace; DEL) are left out of the *visible* view, with
//! each visible byte remembering where it stands in the input. A secret
//! found in the visible view is replaced, in the output, by
//! [`MASK`](super::MASK) at its first visible byte; its other visible
//! bytes are dropped and the escape sequences between them are kept, so
//! the terminal state (styles, title) a replay rebuilds is the same.
//! So `printf "%s\e[1m%s\e[0m" first-half second-half` is stored as
//! `••••••\e[1m\e[0m`.
//!
//! [`Masker`] does this on a stream (the PTY log): the tail that may be
//! the start of a secret, or an unfinished escape sequence, waits for
//! the next bytes. A tail held longer than [`MAX_HELD`] bytes (escape
//! sequences between the characters of a secret's beginning) is masked
//! rather than written in clear.

use super::MASK;

/// The most bytes [`Masker`] holds back; past this, a held beginning of
/// a secret is masked and an unfinished escape sequence written out.
pub const MAX_HELD: usize = 64 * 1024;

/// Where the visible bytes of `bytes` are, and where an escape sequence
/// left unfinished at the end starts.
struct Visible {
    /// Each visible byte and its index in the input.
    bytes: Vec<(u8, usize)>,
    /// Start of an escape sequence the input ends inside of.
    unfinished: Option<usize>,
}

/// Whether a byte draws nothing and moves nothing: C0 controls other
/// than tab, newline, carriage return and backspace, and DEL.
fn invisible(b: u8) -> bool {
    (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x08)) || b == 0x7f
}

fn visible(input: &[u8]) -> Visible {
    let mut bytes = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b != 0x1b {
            if !invisible(b) {
                bytes.push((b, i));
            }
            i += 1;
            continue;
        }
        match escape_len(&input[i..]) {
            Some(n) => i += n,
            None => return Visible { bytes, unfinished: Some(i) },
        }
    }
    Visible { bytes, unfinished: None }
}

/// The length of the escape sequence `s` starts with (`s[0]` is ESC), or
/// `None` when `s` ends before the sequence does.
fn escape_len(s: &[u8]) -> Option<usize> {
    let kind = *s.get(1)?;
    match kind {
        b'[' => {
            // Parameters and intermediates, then a final byte.
            let end = s[2..].iter().position(|b| !(0x20..=0x3f).contains(b))?;
            // A byte that is no final one cancels the sequence and stays.
            Some(2 + end + usize::from((0x40..=0x7e).contains(&s[2 + end])))
        }
        b']' | b'P' | b'X' | b'^' | b'_' => {
            // A string, up to BEL or ST (`ESC \`).
            let mut j = 2;
            while j < s.len() {
                match s[j] {
                    0x07 => return Some(j + 1),
                    0x1b if s.get(j + 1) == Some(&b'\\') => return Some(j + 2),
                    0x1b if j + 1 == s.len() => return None,
                    // Another escape cancels the string.
                    0x1b => return Some(j),
                    _ => j += 1,
                }
            }
            None
        }
        // Intermediates, then a final byte (`ESC ( B`, `ESC 7`).
        0x20..=0x2f => {
            let end = s[2..].iter().position(|b| !(0x20..=0x2f).contains(b))?;
            Some(2 + end + 1)
        }
        _ => Some(2),
    }
}

/// Visible-byte ranges `[start, end)` of the secrets found in `view`,
/// left to right, the longest secret first at each place.
fn matches(view: &[(u8, usize)], secrets: &[Vec<u8>]) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut i = 0;
    'outer: while i < view.len() {
        for secret in secrets {
            if !secret.is_empty()
                && i + secret.len() <= view.len()
                && view[i..i + secret.len()].iter().map(|(b, _)| *b).eq(secret.iter().copied())
            {
                found.push((i, i + secret.len()));
                i += secret.len();
                continue 'outer;
            }
        }
        i += 1;
    }
    found
}

/// `input[..cut]` with the visible ranges `masked` replaced by [`MASK`].
fn rewrite(input: &[u8], view: &[(u8, usize)], masked: &[(usize, usize)], cut: usize) -> Vec<u8> {
    if masked.is_empty() {
        return input[..cut].to_vec();
    }
    let mut out = Vec::with_capacity(cut);
    // Input indexes of visible bytes that are dropped, and where a mask goes.
    let mut drop = std::collections::HashSet::new();
    let mut mask_at = std::collections::HashSet::new();
    for &(start, end) in masked {
        mask_at.insert(view[start].1);
        drop.extend(view[start..end].iter().map(|(_, at)| *at));
    }
    for (at, &b) in input[..cut].iter().enumerate() {
        if mask_at.contains(&at) {
            out.extend_from_slice(MASK.as_bytes());
        }
        if !drop.contains(&at) {
            out.push(b);
        }
    }
    out
}

/// `input` with every secret masked as the module doc says; `secrets`
/// longest first (as [`super::env::secret_values`] gives them).
#[must_use]
pub fn mask_bytes(input: &[u8], secrets: &[String]) -> Vec<u8> {
    let plain = !input.iter().any(|&b| b == 0x1b || invisible(b));
    if plain && !secrets.iter().any(|s| !s.is_empty() && input.windows(s.len()).any(|w| w == s.as_bytes())) {
        // Nothing hidden between characters, and no secret as it is.
        return input.to_vec();
    }
    let secrets: Vec<Vec<u8>> = secrets.iter().map(|s| s.as_bytes().to_vec()).collect();
    mask_with(input, &secrets)
}

fn mask_with(input: &[u8], secrets: &[Vec<u8>]) -> Vec<u8> {
    let view = visible(input).bytes;
    let found = matches(&view, secrets);
    rewrite(input, &view, &found, input.len())
}

/// [`mask_bytes`] on text.
#[must_use]
pub fn mask_text<'a>(text: &'a str, secrets: &[String]) -> std::borrow::Cow<'a, str> {
    if secrets.is_empty() {
        return std::borrow::Cow::Borrowed(text);
    }
    let masked = mask_bytes(text.as_bytes(), secrets);
    if masked == text.as_bytes() {
        return std::borrow::Cow::Borrowed(text);
    }
    // Only ASCII escape sequences and whole secrets are cut, so the text
    // stays UTF-8.
    std::borrow::Cow::Owned(String::from_utf8_lossy(&masked).into_owned())
}

/// Masks secrets in a stream of bytes written piece by piece.
#[derive(Debug)]
pub struct Masker {
    secrets: Vec<Vec<u8>>,
    held: Vec<u8>,
    /// The bytes some secret starts with: output holding none of them,
    /// with nothing held, has no secret and no start of one in it.
    first: [bool; 256],
}

impl Default for Masker {
    fn default() -> Masker {
        Masker::new(&[])
    }
}

impl Masker {
    /// A masker for `secrets` (longest first).
    #[must_use]
    pub fn new(secrets: &[String]) -> Masker {
        let mut first = [false; 256];
        for secret in secrets {
            if let Some(&b) = secret.as_bytes().first() {
                first[usize::from(b)] = true;
            }
        }
        Masker { secrets: secrets.iter().map(|s| s.as_bytes().to_vec()).collect(), held: Vec::new(), first }
    }

    /// Whether it masks anything.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// The bytes of `bytes` (after what was held) that can be written now,
    /// secrets masked; the rest is held for the next call.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        // The common case, checked in one pass: no secret can start here.
        if self.held.is_empty() && !bytes.iter().any(|&b| self.first[usize::from(b)]) {
            return bytes.to_vec();
        }
        let mut input = std::mem::take(&mut self.held);
        input.extend_from_slice(bytes);
        let seen = visible(&input);
        let view = seen.bytes;
        let mut found = matches(&view, &self.secrets);
        let longest = self.secrets.iter().map(Vec::len).max().unwrap_or(0);
        let after = found.last().map_or(0, |&(_, end)| end).max(view.len().saturating_sub(longest));
        // The earliest visible place from which the rest may still
        // become a secret.
        let start = (after..view.len()).find(|&h| {
            let tail: Vec<u8> = view[h..].iter().map(|(b, _)| *b).collect();
            self.secrets.iter().any(|s| s.len() > tail.len() && s.starts_with(&tail))
        });
        let mut cut = start.map_or(input.len(), |h| view[h].1);
        if let Some(at) = seen.unfinished {
            cut = cut.min(at);
        }
        if input.len() - cut > MAX_HELD {
            // Too long to wait for: mask the beginning rather than risk it.
            if let Some(h) = start {
                found.push((h, view.len()));
            }
            cut = input.len();
        }
        self.held = input[cut..].to_vec();
        rewrite(&input, &view, &found, cut)
    }

    /// What it still holds, secrets masked: the stream has ended.
    pub fn finish(&mut self) -> Vec<u8> {
        let held = std::mem::take(&mut self.held);
        mask_with(&held, &self.secrets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Vec<String> {
        vec!["hunter2-first-half-second-half".to_owned()]
    }

    #[test]
    fn escape_sequences_between_the_characters_do_not_hide_a_secret() {
        let s = secrets();
        for raw in [
            &b"x hunter2-first-half\x1b[1m-second-half\x1b[0m y"[..],
            b"x hunter2-\x1b]0;title\x07first-half-second-half y",
            b"x hunter2-\x1b]0;title\x1b\\first-half\x07-second-half y",
            b"x hunter2-first-\x1b(Bhalf-second-half y",
        ] {
            let out = mask_bytes(raw, &s);
            let text = String::from_utf8_lossy(&out);
            assert!(text.starts_with("x ••••••") && text.ends_with(" y"), "{text:?}");
            assert!(!text.contains("half"), "{text:?}");
        }
        assert_eq!(
            mask_bytes(b"x hunter2-first-half\x1b[1m-second-half\x1b[0m y", &s),
            "x ••••••\x1b[1m\x1b[0m y".as_bytes()
        );
    }

    #[test]
    fn a_stream_holds_back_what_may_become_a_secret() {
        for split in [1, 7, 12, 20, 25, 31, 36] {
            let raw = b"before hunter2-first-half\x1b[1m-second-half\x1b[0m after";
            let mut masker = Masker::new(&secrets());
            let mut out = masker.push(&raw[..split]);
            out.extend(masker.push(&raw[split..]));
            assert_eq!(String::from_utf8_lossy(&out), "before ••••••\x1b[1m\x1b[0m after", "split at {split}");
        }
        let mut masker = Masker::new(&secrets());
        assert_eq!(masker.push(b"hunter2-first-half!"), b"hunter2-first-half!", "not a secret after all");
        let mut masker = Masker::new(&secrets());
        let mut long = b"hunter2-".to_vec();
        long.extend(std::iter::repeat_n(b"\x1b[0m".as_slice(), MAX_HELD / 4 + 1).flatten());
        let out = masker.push(&long);
        assert!(!out.windows(7).any(|w| w == b"hunter2"), "a long held beginning is masked");
    }

    #[test]
    fn output_without_a_secrets_first_byte_passes_as_it_is_and_a_split_secret_is_still_caught() {
        let mut masker = Masker::new(&["hunter2-secret".to_owned()]);
        assert_eq!(masker.push(b"plain \x1b[1mtext\x1b[0m 123"), b"plain \x1b[1mtext\x1b[0m 123");
        let mut out = masker.push(b"log: \x1b[2");
        out.extend(masker.push(b"mhun"));
        out.extend(masker.push(b"ter2-se\x1b[0mcret done"));
        out.extend(masker.finish());
        let text = String::from_utf8_lossy(&out);
        assert!(!text.contains("hunter") && !text.contains("cret d") && text.ends_with(" done"), "{text:?}");
    }

    #[test]
    fn a_large_chunk_is_masked_in_linear_time() {
        // Linear, not quadratic: four times the bytes costs about four
        // times the time, not sixteen. Compared within one run, fastest of
        // three each, alternating, so a loaded machine slows both sides
        // (an absolute limit failed under the full suite's load).
        let time = |bytes: usize| {
            let mut chunk = vec![b'h'; bytes];
            chunk.extend_from_slice(b"hunter2-first-half-second-half!");
            let mut masker = Masker::new(&secrets());
            let started = std::time::Instant::now();
            let out = masker.push(&chunk);
            assert!(out.ends_with("••••••!".as_bytes()));
            started.elapsed()
        };
        let (mut small, mut large) = (std::time::Duration::MAX, std::time::Duration::MAX);
        for _ in 0..3 {
            small = small.min(time(256 << 10));
            large = large.min(time(1 << 20));
        }
        let ratio = large.as_secs_f64() / small.as_secs_f64().max(1e-6);
        assert!(ratio < 9.0, "1 MiB took {ratio:.1}× as long as 256 KiB ({small:?} vs {large:?})");
        assert_eq!(mask_bytes(b"plain text, nothing hidden", &secrets()), b"plain text, nothing hidden");
    }
}
