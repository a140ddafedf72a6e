//! Kinds that need little work: UTF-8 text, JSON, RTF.

use std::borrow::Cow;

use serde_json::Value;

use crate::Rejected;
use crate::budget::{Deadline, TextSink};

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The bytes as text: BOM dropped, invalid sequences replaced.
pub(crate) fn utf8(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes))
}

/// The first `cap` bytes of the text (cut at a char boundary), without
/// copying the rest.
pub(crate) fn utf8_capped(bytes: &[u8], cap: usize) -> String {
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    // Up to 3 bytes past the cap may complete the last char.
    let head = &bytes[..bytes.len().min(cap.saturating_add(3))];
    let text = match std::str::from_utf8(head) {
        Ok(text) => Cow::Borrowed(text),
        // Only a char cut by `head` itself: decode just the complete part.
        Err(e) if e.error_len().is_none() => {
            Cow::Borrowed(std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default())
        }
        Err(_) => String::from_utf8_lossy(head),
    };
    crate::budget::truncate(text.into_owned(), cap)
}

/// Keys and string values of a JSON document, one per line, in document
/// order.
pub(crate) fn json_text(bytes: &[u8], cap: usize, deadline: &Deadline) -> Result<String, Rejected> {
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    // serde_json bounds nesting (128 levels), so a deep document is an error,
    // not a stack overflow.
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| Rejected::Malformed(format!("JSON: {e}")))?;
    let mut sink = TextSink::new(cap);
    let mut stack = vec![&value];
    let mut seen = 0u32;
    while let Some(value) = stack.pop() {
        seen = seen.wrapping_add(1);
        if seen.is_multiple_of(1024) {
            deadline.check()?;
        }
        if sink.is_full() {
            break;
        }
        match value {
            Value::String(s) => {
                sink.push(s);
                sink.push("\n");
            }
            Value::Array(items) => stack.extend(items.iter().rev()),
            Value::Object(map) => {
                // Keys are emitted as they are met; values go on the stack in
                // reverse so they pop in document order.
                for key in map.keys() {
                    sink.push(key);
                    sink.push("\n");
                }
                stack.extend(map.values().rev());
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
    Ok(sink.finish())
}

/// RTF group state that `{` saves and `}` restores.
#[derive(Clone, Copy)]
struct Group {
    /// Inside a destination that is not document text.
    skip: bool,
    /// How many fallback chars follow a `\uN` (`\ucN`).
    uc: usize,
}

/// Destinations whose content is not document text.
const RTF_SKIPPED: &[&str] = &[
    "colortbl",
    "datastore",
    "fldinst",
    "fonttbl",
    "footer",
    "footerf",
    "footerl",
    "footerr",
    "generator",
    "header",
    "headerf",
    "headerl",
    "headerr",
    "info",
    "latentstyles",
    "listoverridetable",
    "listtable",
    "object",
    "pict",
    "rsidtbl",
    "stylesheet",
    "themedata",
    "xmlnstbl",
];

/// The text of an RTF document: groups and control words stripped, `\par`
/// as newlines, `\'hh` read as Windows-1252 (approximated by Latin-1) and
/// `\uN` as Unicode with its fallback skipped.
pub(crate) fn rtf_text(bytes: &[u8], cap: usize, deadline: &Deadline) -> Result<String, Rejected> {
    let mut sink = TextSink::new(cap);
    let mut stack: Vec<Group> = Vec::new();
    let mut group = Group { skip: false, uc: 1 };
    // Fallback chars still to drop after a `\uN`.
    let mut fallback = 0usize;
    // The first half of a UTF-16 surrogate pair written as `\uN`.
    let mut high_surrogate: Option<u32> = None;
    let (mut i, mut steps) = (0, 0u32);
    while i < bytes.len() && !sink.is_full() {
        steps = steps.wrapping_add(1);
        if steps.is_multiple_of(65_536) {
            deadline.check()?;
        }
        let b = bytes[i];
        i += 1;
        match b {
            b'{' => {
                stack.push(group);
                fallback = 0;
            }
            b'}' => {
                group = stack.pop().unwrap_or(group);
                fallback = 0;
            }
            b'\r' | b'\n' => {}
            b'\\' => {
                let Some(&next) = bytes.get(i) else { break };
                i += 1;
                match next {
                    b'\\' | b'{' | b'}' => {
                        emit(&mut sink, group.skip, &mut fallback, char::from(next))
                    }
                    b'\'' => {
                        let hex = bytes
                            .get(i..i + 2)
                            .and_then(|h| std::str::from_utf8(h).ok());
                        if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                            i += 2;
                            emit(&mut sink, group.skip, &mut fallback, char::from(byte));
                        }
                    }
                    b'*' => group.skip = true,
                    b'~' => emit(&mut sink, group.skip, &mut fallback, ' '),
                    b'_' => emit(&mut sink, group.skip, &mut fallback, '-'),
                    b'\r' | b'\n' => emit(&mut sink, group.skip, &mut fallback, '\n'),
                    c if c.is_ascii_alphabetic() => {
                        let word_start = i - 1;
                        while bytes.get(i).is_some_and(u8::is_ascii_alphabetic) {
                            i += 1;
                        }
                        let word = std::str::from_utf8(&bytes[word_start..i]).unwrap_or("");
                        let param_start = i;
                        if bytes.get(i) == Some(&b'-') {
                            i += 1;
                        }
                        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                            i += 1;
                        }
                        let param: Option<i64> = std::str::from_utf8(&bytes[param_start..i])
                            .ok()
                            .and_then(|p| p.parse().ok());
                        if bytes.get(i) == Some(&b' ') {
                            i += 1;
                        }
                        fallback = 0;
                        match word {
                            "par" | "line" | "sect" | "page" | "row" => {
                                emit(&mut sink, group.skip, &mut fallback, '\n');
                            }
                            "tab" | "cell" => emit(&mut sink, group.skip, &mut fallback, '\t'),
                            "emdash" => emit(&mut sink, group.skip, &mut fallback, '—'),
                            "endash" => emit(&mut sink, group.skip, &mut fallback, '–'),
                            "bullet" => emit(&mut sink, group.skip, &mut fallback, '•'),
                            "lquote" => emit(&mut sink, group.skip, &mut fallback, '‘'),
                            "rquote" => emit(&mut sink, group.skip, &mut fallback, '’'),
                            "ldblquote" => emit(&mut sink, group.skip, &mut fallback, '“'),
                            "rdblquote" => emit(&mut sink, group.skip, &mut fallback, '”'),
                            "uc" => group.uc = usize::try_from(param.unwrap_or(1)).unwrap_or(1),
                            "u" => {
                                // Negative values are UTF-16 units written as
                                // i16; a surrogate pair comes as two `\u`.
                                let unit = u32::try_from(param.unwrap_or(0).rem_euclid(65_536))
                                    .unwrap_or(0xFFFD);
                                let c = match (high_surrogate.take(), unit) {
                                    (_, 0xD800..=0xDBFF) => {
                                        high_surrogate = Some(unit);
                                        None
                                    }
                                    (Some(high), 0xDC00..=0xDFFF) => char::from_u32(
                                        0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00),
                                    ),
                                    _ => char::from_u32(unit),
                                };
                                if c.is_some() || high_surrogate.is_none() {
                                    let c = c.unwrap_or('\u{FFFD}');
                                    emit(&mut sink, group.skip, &mut fallback, c);
                                }
                                fallback = group.uc;
                            }
                            "bin" => {
                                // Raw binary data follows; step over it.
                                let len = usize::try_from(param.unwrap_or(0)).unwrap_or(0);
                                i = i.saturating_add(len);
                            }
                            _ if RTF_SKIPPED.contains(&word) => group.skip = true,
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
            _ => emit(&mut sink, group.skip, &mut fallback, char::from(b)),
        }
    }
    Ok(sink.finish())
}

/// Emits one char of RTF text, unless its group is skipped or it is the
/// fallback of a preceding `\uN`.
fn emit(sink: &mut TextSink, skip: bool, fallback: &mut usize, c: char) {
    if *fallback > 0 {
        *fallback -= 1;
        return;
    }
    if !skip {
        sink.push_char(c);
    }
}
