//! The user's terminal during `tandem attach`: raw mode, and the escape
//! sequences that undo whatever modes the agent turned on.

use std::io::{self, Write};

/// Turns off what an agent may have turned on in the user's terminal:
/// alternate screen, hidden cursor, application cursor and keypad,
/// bracketed paste, mouse reporting, focus events, the kitty keyboard
/// protocol, and attributes.
pub const RESET_MODES: &[u8] =
    b"\x1b[?1049l\x1b[?25h\x1b[?1l\x1b>\x1b[?2004l\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1004l\x1b[<u\x1b[0m";

/// Raw mode for as long as it lives; dropping it (also on panic) restores
/// the terminal.
pub struct RawMode(());

impl RawMode {
    pub fn enable() -> io::Result<RawMode> {
        crossterm::terminal::enable_raw_mode()?;
        Ok(RawMode(()))
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
