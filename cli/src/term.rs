//! Output for `tether connect`: data on stdout, events on stderr, and a one-line live status on stderr
//! when it is a terminal (erased before any other line is printed, redrawn after).

use std::io::{IsTerminal, Write};

/// Where the program's output goes.
pub(crate) struct Console {
    status: bool,
    shown: bool,
}

impl Console {
    /// A console; the status line is on only if `want_status` and stderr is a terminal.
    pub(crate) fn new(want_status: bool) -> Self {
        Self { status: want_status && std::io::stderr().is_terminal(), shown: false }
    }

    fn clear(&mut self) {
        if self.shown {
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(b"\r\x1b[2K");
            let _ = e.flush();
            self.shown = false;
        }
    }

    /// Writes `bytes` and a newline on stdout. A closed stdout (the reader went away) is an error.
    pub(crate) fn out(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.clear();
        let mut o = std::io::stdout().lock();
        o.write_all(bytes)?;
        o.write_all(b"\n")?;
        o.flush()
    }

    /// Writes one line on stderr, prefixed with `tether: `.
    pub(crate) fn err(&mut self, line: impl std::fmt::Display) {
        self.clear();
        crate::error_line(line);
    }

    /// Redraws the status line (no-op when stderr is not a terminal).
    pub(crate) fn status(&mut self, text: &str) {
        if !self.status {
            return;
        }
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "\r\x1b[2K{text}");
        let _ = e.flush();
        self.shown = true;
    }

    /// Erases the status line for good.
    pub(crate) fn done(&mut self) {
        self.clear();
        self.status = false;
    }
}
