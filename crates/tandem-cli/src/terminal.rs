//! The user's terminal during `tandem attach`: raw mode, the alternate
//! screen the session is drawn on, and the escape sequences that undo
//! whatever modes the agent turned on.
//!
//! Attaching draws the agent on the terminal's alternate screen, as tmux
//! does, so that leaving (the detach key, a signal to `tandem attach`, the
//! agent's exit) brings back what the terminal showed before, shell
//! prompt and earlier output included (issue 19). An agent that leaves
//! its own alternate screen must not take the terminal back to the main
//! one while attached: [`AltScreenFilter`] keeps it there.

use std::io::{self, Write};

/// Turns off what an agent may have turned on in the user's terminal:
/// alternate screen, hidden cursor, application cursor and keypad,
/// bracketed paste, mouse reporting, focus events, the kitty keyboard
/// protocol, and attributes. Leaving the alternate screen first puts
/// back the cursor and the contents it saved.
pub const RESET_MODES: &[u8] =
    b"\x1b[?1049l\x1b[?25h\x1b[?1l\x1b>\x1b[?2004l\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1004l\x1b[<u\x1b[0m";

/// Saves the cursor and switches to a cleared alternate screen (xterm's
/// mode 1049); [`RESET_MODES`] switches back.
pub const ENTER_SCREEN: &[u8] = b"\x1b[?1049h\x1b[H\x1b[2J";

/// Raw mode on the alternate screen for as long as it lives; dropping it
/// (also on panic) restores the terminal: main screen, contents and
/// modes as before.
pub struct RawMode(());

impl RawMode {
    /// Enters raw mode and the alternate screen ([`ENTER_SCREEN`]).
    ///
    /// # Errors
    /// The terminal's modes cannot be read or set, or stdout fails.
    pub fn enable() -> io::Result<RawMode> {
        crossterm::terminal::enable_raw_mode()?;
        let raw = RawMode(());
        let mut out = io::stdout().lock();
        out.write_all(ENTER_SCREEN)?;
        out.flush()?;
        Ok(raw)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore();
    }
}

/// Leaves raw mode and resets modes; safe to call more than once (e.g.
/// from a signal thread before exiting).
pub fn restore() {
    let _ = crossterm::terminal::disable_raw_mode();
    let mut out = io::stdout().lock();
    let _ = out.write_all(RESET_MODES);
    let _ = out.flush();
}

/// Like [`restore`], but writing straight to file descriptor 1, for when
/// another thread may hold stdout's lock for ever (a write blocked on a
/// terminal that does not read).
pub fn restore_unlocked() {
    let _ = crossterm::terminal::disable_raw_mode();
    let _ = nix::unistd::write(io::stdout(), RESET_MODES);
}

/// The private modes that switch between the main and the alternate
/// screen (xterm's 47, 1047 and 1049).
const SCREEN_MODES: [&str; 3] = ["47", "1047", "1049"];

/// Longest escape sequence held back while waiting for its end, in bytes;
/// anything longer is not one this filter changes.
const MAX_PENDING: usize = 64;

/// Rewrites an agent's output so that the terminal stays on the alternate
/// screen while attached: "reset mode" (`CSI ? 1049 l`, also 47 and 1047)
/// becomes "clear the screen", and [`AltScreenFilter::filter`] says so,
/// for the caller to ask the host for its screen again (the host's
/// emulator holds the agent's main screen). A sequence split between two
/// calls is held back until its end arrives.
#[derive(Debug, Default)]
pub struct AltScreenFilter {
    pending: Vec<u8>,
}

/// What [`private_mode`] found at the start of some bytes.
enum Found {
    /// Not a private mode sequence.
    Other,
    /// Perhaps one; its end has not arrived yet.
    Partial,
    /// `CSI ? params h|l` of `len` bytes.
    Mode { len: usize, params: Vec<String>, set: bool },
}

/// Whether `bytes` (starting with ESC) begin with `CSI ? digits;… h|l`.
fn private_mode(bytes: &[u8]) -> Found {
    for (at, want) in [(1, b'['), (2, b'?')] {
        match bytes.get(at) {
            None => return Found::Partial,
            Some(b) if *b != want => return Found::Other,
            Some(_) => {}
        }
    }
    for (i, &b) in bytes.iter().enumerate().skip(3) {
        match b {
            b'0'..=b'9' | b';' => {}
            b'h' | b'l' => {
                let params = String::from_utf8_lossy(&bytes[3..i]).split(';').map(str::to_owned).collect();
                return Found::Mode { len: i + 1, params, set: b == b'h' };
            }
            _ => return Found::Other,
        }
    }
    if bytes.len() < MAX_PENDING { Found::Partial } else { Found::Other }
}

impl AltScreenFilter {
    /// The bytes to write for `input`, and whether the agent left its
    /// alternate screen in them (the caller then asks for a redraw).
    pub fn filter(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut data = std::mem::take(&mut self.pending);
        data.extend_from_slice(input);
        let mut out = Vec::with_capacity(data.len());
        let mut left = false;
        let mut i = 0;
        while i < data.len() {
            let Some(offset) = data[i..].iter().position(|&b| b == 0x1b) else {
                out.extend_from_slice(&data[i..]);
                break;
            };
            out.extend_from_slice(&data[i..i + offset]);
            i += offset;
            match private_mode(&data[i..]) {
                Found::Other => {
                    out.push(0x1b);
                    i += 1;
                }
                Found::Partial => {
                    self.pending = data[i..].to_vec();
                    break;
                }
                Found::Mode { len, params, set } => {
                    let leaves = !set && params.iter().any(|p| SCREEN_MODES.contains(&p.as_str()));
                    if leaves {
                        let kept: Vec<&str> =
                            params.iter().map(String::as_str).filter(|p| !SCREEN_MODES.contains(p)).collect();
                        if !kept.is_empty() {
                            out.extend_from_slice(format!("\x1b[?{}l", kept.join(";")).as_bytes());
                        }
                        out.extend_from_slice(b"\x1b[H\x1b[2J");
                        left = true;
                    } else {
                        out.extend_from_slice(&data[i..i + len]);
                    }
                    i += len;
                }
            }
        }
        (out, left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaving_the_alternate_screen_becomes_a_clear() {
        let mut f = AltScreenFilter::default();
        assert_eq!(f.filter(b"plain \x1b[1mbold\x1b[0m"), (b"plain \x1b[1mbold\x1b[0m".to_vec(), false));
        assert_eq!(f.filter(b"a\x1b[?1049hb"), (b"a\x1b[?1049hb".to_vec(), false));
        assert_eq!(f.filter(b"a\x1b[?1049lb"), (b"a\x1b[H\x1b[2Jb".to_vec(), true));
        assert_eq!(f.filter(b"\x1b[?25;47l"), (b"\x1b[?25l\x1b[H\x1b[2J".to_vec(), true));
        assert_eq!(f.filter(b"\x1b[?2004l"), (b"\x1b[?2004l".to_vec(), false));
        // Split between reads: held back, then rewritten whole.
        assert_eq!(f.filter(b"x\x1b[?10"), (b"x".to_vec(), false));
        assert_eq!(f.filter(b"49ly"), (b"\x1b[H\x1b[2Jy".to_vec(), true));
        assert_eq!(f.filter(b"\x1b"), (Vec::new(), false));
        assert_eq!(f.filter(b"[Hz"), (b"\x1b[Hz".to_vec(), false));
        // A lone ESC at the very end waits; an unrelated one passes.
        assert_eq!(f.filter(b"\x1bM"), (b"\x1bM".to_vec(), false));
    }
}
