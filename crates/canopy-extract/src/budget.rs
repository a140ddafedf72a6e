//! The limits as they are spent: a deadline, a text sink that stops at its
//! cap, and a reader that stops at the inflation budget.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::Rejected;

/// When the current extraction must give up.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline(Option<Instant>);

impl Deadline {
    pub(crate) fn after(timeout: Duration) -> Self {
        Deadline(Instant::now().checked_add(timeout))
    }

    /// `Err(Timeout)` once the deadline has passed.
    pub(crate) fn check(&self) -> Result<(), Rejected> {
        match self.0 {
            Some(at) if Instant::now() >= at => Err(Rejected::Timeout),
            _ => Ok(()),
        }
    }

    /// Time left, `None` for "no deadline" (a timeout too large to represent).
    pub(crate) fn remaining(&self) -> Option<Duration> {
        self.0
            .map(|at| at.saturating_duration_since(Instant::now()))
    }
}

/// Cuts `text` to at most `cap` bytes, at a char boundary.
pub(crate) fn truncate(mut text: String, cap: usize) -> String {
    if text.len() > cap {
        let at = text.floor_char_boundary(cap);
        text.truncate(at);
    }
    text
}

/// Accumulates extracted text up to a byte cap; past it, pushes are dropped so
/// extractors can stop early (`is_full`).
#[derive(Debug)]
pub(crate) struct TextSink {
    text: String,
    cap: usize,
    full: bool,
}

impl TextSink {
    pub(crate) fn new(cap: usize) -> Self {
        TextSink {
            text: String::new(),
            cap,
            full: false,
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.full
    }

    pub(crate) fn push(&mut self, s: &str) {
        if self.full {
            return;
        }
        let room = self.cap - self.text.len();
        if s.len() <= room {
            self.text.push_str(s);
        } else {
            self.text.push_str(&s[..s.floor_char_boundary(room)]);
            self.full = true;
        }
    }

    pub(crate) fn push_char(&mut self, c: char) {
        self.push(c.encode_utf8(&mut [0; 4]));
    }

    /// Pushes a space unless the text is empty or already ends in whitespace.
    pub(crate) fn separate(&mut self) {
        if self
            .text
            .chars()
            .next_back()
            .is_some_and(|c| !c.is_whitespace())
        {
            self.push(" ");
        }
    }

    /// Ends the current line: drops trailing spaces, then pushes a newline
    /// unless the text is empty or already ends with one.
    pub(crate) fn end_line(&mut self) {
        let kept = self.text.trim_end_matches([' ', '\t']).len();
        self.text.truncate(kept);
        if !self.text.is_empty() && !self.text.ends_with('\n') {
            self.push("\n");
        }
    }

    /// The text, without trailing whitespace.
    pub(crate) fn finish(mut self) -> String {
        let kept = self.text.trim_end().len();
        self.text.truncate(kept);
        self.text
    }
}

/// What is left of the inflation budget of one extraction.
#[derive(Debug)]
pub(crate) struct Unpacked {
    left: u64,
    limit: u64,
}

impl Unpacked {
    pub(crate) fn new(limit: u64) -> Self {
        Unpacked { left: limit, limit }
    }

    pub(crate) fn left(&self) -> u64 {
        self.left
    }

    pub(crate) fn too_large(&self) -> Rejected {
        Rejected::TooLarge(format!("inflates beyond {} bytes", self.limit))
    }

    /// Counts `n` more inflated bytes; `Err(TooLarge)` past the budget.
    pub(crate) fn spend(&mut self, n: u64) -> Result<(), Rejected> {
        match self.left.checked_sub(n) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => Err(self.too_large()),
        }
    }

    /// Reads `reader` to its end, in chunks, counting every byte against the
    /// budget and checking the deadline between chunks. A read error (bad
    /// deflate data, CRC mismatch...) is `Malformed` with `what` as context.
    pub(crate) fn read_all(
        &mut self,
        reader: &mut dyn Read,
        what: &str,
        deadline: &Deadline,
    ) -> Result<Vec<u8>, Rejected> {
        let mut out = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            deadline.check()?;
            let n = match reader.read(&mut chunk) {
                Ok(0) => return Ok(out),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Rejected::Malformed(format!("{what}: {e}"))),
            };
            self.spend(n as u64)?;
            out.extend_from_slice(&chunk[..n]);
        }
    }
}
