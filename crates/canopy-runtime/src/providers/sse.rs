//! Incremental Server-Sent-Events parser fed with raw byte chunks as they arrive.
//!
//! Bytes are buffered until a whole line is present, so a chunk may end anywhere: in the
//! middle of a line, between `\r` and `\n`, or inside a multi-byte UTF-8 character.
//! Lines end with `\n`, `\r\n` or a lone `\r` (as the SSE spec allows).

/// One dispatched event: the `event:` name (if any) and the `data:` lines joined with `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    // A chunk ended right after `\r`: a `\n` at the start of the next chunk belongs to it.
    skip_lf: bool,
    event: Option<String>,
    data: Option<String>,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one chunk and returns the events completed by it.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        let mut bytes = chunk;
        if self.skip_lf {
            self.skip_lf = false;
            if let Some(rest) = bytes.strip_prefix(b"\n") {
                bytes = rest;
            }
        }
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b == b'\n' || b == b'\r' {
                self.buf.extend_from_slice(&bytes[start..i]);
                let line = std::mem::take(&mut self.buf);
                self.line(&line, &mut out);
                if b == b'\r' {
                    match bytes.get(i + 1) {
                        Some(b'\n') => i += 1,
                        Some(_) => {}
                        None => self.skip_lf = true,
                    }
                }
                start = i + 1;
            }
            i += 1;
        }
        self.buf.extend_from_slice(&bytes[start..]);
        out
    }

    /// Ends the stream: a final line or event not followed by a blank line still counts.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        let mut out = Vec::new();
        if !self.buf.is_empty() {
            let line = std::mem::take(&mut self.buf);
            self.line(&line, &mut out);
        }
        self.dispatch(&mut out);
        out
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line.first() == Some(&b':') {
            return; // comment / keep-alive
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (text.as_ref(), ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "event" => self.event = Some(value.to_string()),
            _ => {} // id, retry and unknown fields do not matter to chat streams
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        // Per the spec an event without data is not dispatched.
        if let Some(data) = self.data.take() {
            out.push(SseEvent { event, data });
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn feed(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            out.extend(p.push(c));
        }
        out.extend(p.finish());
        out
    }

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_string),
            data: data.to_string(),
        }
    }

    #[test]
    fn whole_events() {
        let got = feed(&[b"data: a\n\nevent: x\ndata: b\n\n"]);
        assert_eq!(got, vec![ev(None, "a"), ev(Some("x"), "b")]);
    }

    #[test]
    fn split_mid_line_and_mid_field() {
        let got = feed(&[
            b"da",
            b"ta: hel",
            b"lo\n",
            b"\n",
            b"event: e",
            b"\ndata:x\n\n",
        ]);
        assert_eq!(got, vec![ev(None, "hello"), ev(Some("e"), "x")]);
    }

    #[test]
    fn crlf_including_split_between_cr_and_lf() {
        let got = feed(&[b"data: one\r", b"\n\r\ndata: two\r\n\r", b"\n"]);
        assert_eq!(got, vec![ev(None, "one"), ev(None, "two")]);
    }

    #[test]
    fn lone_cr_line_endings() {
        let got = feed(&[b"data: a\r\rdata: b\r\r"]);
        assert_eq!(got, vec![ev(None, "a"), ev(None, "b")]);
    }

    #[test]
    fn every_byte_separately() {
        let src = b"event: m\r\ndata: {\"k\":1}\r\ndata: second\r\n\r\n: ping\n\ndata: [DONE]\n\n";
        let chunks: Vec<&[u8]> = src.chunks(1).collect();
        let got = feed(&chunks);
        assert_eq!(
            got,
            vec![ev(Some("m"), "{\"k\":1}\nsecond"), ev(None, "[DONE]")]
        );
    }

    #[test]
    fn utf8_split_across_chunks() {
        let s = "data: héllo ✓\n\n".as_bytes();
        let got = feed(&[&s[..8], &s[8..14], &s[14..]]);
        assert_eq!(got, vec![ev(None, "héllo ✓")]);
    }

    #[test]
    fn comments_and_dataless_events_are_skipped() {
        let got = feed(&[b": keep-alive\n\nevent: ping\n\nretry: 5\nid: 3\ndata:x\n\n"]);
        assert_eq!(got, vec![ev(None, "x")]);
    }

    #[test]
    fn unterminated_final_event_is_flushed() {
        let got = feed(&[b"data: last"]);
        assert_eq!(got, vec![ev(None, "last")]);
        let mut p = SseParser::new();
        assert!(p.push(b"data: pending\n").is_empty());
        assert_eq!(p.finish(), vec![ev(None, "pending")]);
    }
}
