//! Just enough of a server-sent events parser for MCP's streamable HTTP: the `data` of each
//! event, fed chunk by chunk. Lines end with CRLF, LF or CR (a CRLF split across chunks is one
//! ending); `event`, `id`, `retry` and comments are ignored; an event left unfinished when the
//! stream ends is dropped, as the SSE specification says.

#[derive(Default)]
pub(super) struct SseParser {
    line: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
    /// The last byte seen was a CR, so a following LF belongs to the same line ending.
    after_cr: bool,
}

impl SseParser {
    /// Feeds `chunk`; returns the data of the events it completed.
    pub(super) fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        let mut events = Vec::new();
        for &b in chunk {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(&mut events);
                }
                b'\n' => self.end_line(&mut events),
                _ => self.line.push(b),
            }
        }
        events
    }

    fn end_line(&mut self, events: &mut Vec<String>) {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            // A blank line dispatches the event.
            if self.has_data {
                let data = std::mem::take(&mut self.data);
                events.push(String::from_utf8_lossy(&data).into_owned());
                self.has_data = false;
            }
            return;
        }
        if line.first() == Some(&b':') {
            return;
        }
        let (field, value) = match line.iter().position(|&c| c == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (&line[..], &b""[..]),
        };
        if field == b"data" {
            if self.has_data {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(value);
            self.has_data = true;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn events_across_chunks_and_line_endings() {
        let mut p = SseParser::default();
        assert!(p.push(b": ping\n\nevent: message\ndata: {\"a\"").is_empty());
        assert_eq!(p.push(b":1}\r"), Vec::<String>::new());
        assert_eq!(p.push(b"\n\r\n"), vec!["{\"a\":1}".to_owned()]);
        assert_eq!(p.push(b"data:x\rdata: y\r\r"), vec!["x\ny".to_owned()]);
        assert_eq!(p.push(b"id: 3\n\n"), Vec::<String>::new());
        assert!(p.push(b"data: unfinished\n").is_empty());
    }
}
