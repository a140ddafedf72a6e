//! Text out of markup: a rule-driven quick-xml walker (generic XML, SVG and
//! the XML parts of office documents) and a small HTML tag stripper.

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::events::{BytesRef, Event};

use crate::Rejected;
use crate::budget::{Deadline, TextSink};

/// How often (in events or tags) the walkers look at the clock.
const CLOCK_EVERY: u32 = 1024;

/// Which text of an XML document counts, by element local name.
#[derive(Debug)]
pub(crate) struct XmlRules {
    /// Keep only text inside these elements; empty keeps all text.
    text_in: &'static [&'static str],
    /// End a line after these elements (paragraphs).
    line_after: &'static [&'static str],
    /// Elements that stand for a tab, a line break, a space.
    tab: &'static [&'static str],
    line_break: &'static [&'static str],
    space: &'static [&'static str],
    /// Drop everything inside these elements.
    skip: &'static [&'static str],
    /// Generic documents: element boundaries separate words and whitespace
    /// runs collapse. Office formats split words across runs, so they don't.
    generic: bool,
}

impl XmlRules {
    /// WordprocessingML `word/document.xml`: `w:t` runs, `w:p` paragraphs.
    pub(crate) const DOCX: XmlRules = XmlRules {
        text_in: &["t"],
        line_after: &["p"],
        tab: &["tab"],
        line_break: &["br", "cr"],
        space: &[],
        skip: &[],
        generic: false,
    };
    /// DrawingML slides: `a:t` runs, `a:p` paragraphs.
    pub(crate) const DRAWINGML: XmlRules = XmlRules {
        text_in: &["t"],
        line_after: &["p"],
        tab: &[],
        line_break: &["br"],
        space: &[],
        skip: &[],
        generic: false,
    };
    /// SpreadsheetML `xl/sharedStrings.xml`: one `si` string per line.
    pub(crate) const SHARED_STRINGS: XmlRules = XmlRules {
        text_in: &["t"],
        line_after: &["si"],
        tab: &[],
        line_break: &[],
        space: &[],
        skip: &["rPh"],
        generic: false,
    };
    /// ODF `content.xml`: `text:p` / `text:h` paragraphs.
    pub(crate) const ODF: XmlRules = XmlRules {
        text_in: &[],
        line_after: &["p", "h"],
        tab: &["tab"],
        line_break: &["line-break"],
        space: &["s"],
        skip: &["automatic-styles", "font-face-decls", "scripts"],
        generic: false,
    };
    /// Any XML or SVG: all text nodes, no scripts or styles.
    const GENERIC: XmlRules = XmlRules {
        text_in: &[],
        line_after: &[],
        tab: &[],
        line_break: &[],
        space: &[],
        skip: &["script", "style"],
        generic: true,
    };
}

/// The text nodes of an XML (or SVG) document.
pub(crate) fn xml_text(xml: &str, cap: usize, deadline: &Deadline) -> Result<String, Rejected> {
    let mut sink = TextSink::new(cap);
    xml_parts_text(xml, &XmlRules::GENERIC, &mut sink, deadline)?;
    Ok(sink.finish())
}

/// Whether `text` parses as one well-formed XML document with a root element.
pub(crate) fn is_well_formed_xml(text: &str) -> bool {
    let mut reader = Reader::from_str(text);
    let (mut depth, mut roots) = (0usize, 0usize);
    loop {
        match reader.read_event() {
            Ok(Event::Start(_)) => {
                roots += usize::from(depth == 0);
                depth += 1;
            }
            Ok(Event::Empty(_)) => roots += usize::from(depth == 0),
            Ok(Event::End(_)) => depth = depth.saturating_sub(1),
            Ok(Event::Eof) => return depth == 0 && roots == 1,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}

/// Walks `xml`, pushing the text `rules` keep into `sink`. Stops early once
/// the sink is full; malformed XML (including a document cut off inside an
/// element) is `Malformed`.
pub(crate) fn xml_parts_text(
    xml: &str,
    rules: &XmlRules,
    sink: &mut TextSink,
    deadline: &Deadline,
) -> Result<(), Rejected> {
    let xml = xml.strip_prefix('\u{FEFF}').unwrap_or(xml);
    let mut reader = Reader::from_str(xml);
    let (mut depth, mut inside_text, mut skipping) = (0usize, 0usize, 0usize);
    let mut events = 0u32;
    loop {
        events = events.wrapping_add(1);
        if events.is_multiple_of(CLOCK_EVERY) {
            deadline.check()?;
        }
        if sink.is_full() {
            return Ok(());
        }
        let event = reader.read_event().map_err(|e| {
            Rejected::Malformed(format!("XML at byte {}: {e}", reader.error_position()))
        })?;
        let keep = skipping == 0 && (rules.text_in.is_empty() || inside_text > 0);
        match event {
            Event::Start(_) if skipping > 0 => {
                depth += 1;
                skipping += 1;
            }
            Event::Empty(_) if skipping > 0 => {}
            Event::Start(element) => {
                depth += 1;
                let name = element.local_name();
                let name = name.as_ref();
                if rules.skip.contains(&name) {
                    skipping = 1;
                    continue;
                }
                inside_text += usize::from(rules.text_in.contains(&name));
                stands_for(rules, name, sink);
                if rules.generic {
                    sink.separate();
                }
            }
            Event::Empty(element) => {
                let name = element.local_name();
                let name = name.as_ref();
                stands_for(rules, name, sink);
                if rules.line_after.contains(&name) {
                    sink.end_line();
                } else if rules.generic {
                    sink.separate();
                }
            }
            Event::End(element) => {
                depth = depth.saturating_sub(1);
                if skipping > 0 {
                    skipping -= 1;
                    continue;
                }
                let name = element.local_name();
                let name = name.as_ref();
                if rules.text_in.contains(&name) {
                    inside_text = inside_text.saturating_sub(1);
                }
                if rules.line_after.contains(&name) {
                    sink.end_line();
                } else if rules.generic {
                    sink.separate();
                }
            }
            Event::Text(text) if keep => push_text(sink, &text.xml10_content(), rules.generic),
            Event::CData(text) if keep => push_text(sink, &text.into_inner(), rules.generic),
            Event::GeneralRef(reference) if keep => {
                if let Some(c) = resolve_xml_ref(&reference) {
                    sink.push_char(c);
                }
            }
            Event::Eof if depth > 0 => {
                return Err(Rejected::Malformed("XML ends inside an element".to_owned()));
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

/// Pushes what a tab / break / space element stands for.
fn stands_for(rules: &XmlRules, name: &str, sink: &mut TextSink) {
    if rules.tab.contains(&name) {
        sink.push("\t");
    } else if rules.line_break.contains(&name) {
        sink.push("\n");
    } else if rules.space.contains(&name) {
        sink.push(" ");
    }
}

fn push_text(sink: &mut TextSink, text: &str, collapse: bool) {
    if collapse {
        push_collapsed(sink, text);
    } else {
        sink.push(text);
    }
}

/// Pushes `text` with whitespace runs collapsed to one space.
fn push_collapsed(sink: &mut TextSink, text: &str) {
    if text.starts_with(char::is_whitespace) {
        sink.separate();
    }
    let mut words = text.split_whitespace();
    if let Some(first) = words.next() {
        sink.push(first);
        for word in words {
            sink.push(" ");
            sink.push(word);
        }
        if text.ends_with(char::is_whitespace) {
            sink.separate();
        }
    }
}

/// A character reference or one of XML's five predefined entities; any other
/// entity (defined in a DTD) is dropped, never expanded.
fn resolve_xml_ref(reference: &BytesRef<'_>) -> Option<char> {
    if let Ok(Some(c)) = reference.resolve_char_ref() {
        return Some(c);
    }
    match &**reference {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => None,
    }
}

/// Elements whose content is never shown.
const HTML_HIDDEN: &[&str] = &["script", "style", "template", "svg", "math", "object"];
/// Elements that start or end a line of visible text.
const HTML_BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "caption",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "title",
    "tr",
    "ul",
];

/// The visible text of an HTML document: tags, comments, `script`, `style`
/// (and other never-shown elements) dropped, entities decoded, whitespace
/// collapsed, block elements on their own lines.
pub(crate) fn html_text(html: &str, cap: usize, deadline: &Deadline) -> Result<String, Rejected> {
    let mut sink = TextSink::new(cap);
    let mut rest = html;
    let mut tags = 0u32;
    while !rest.is_empty() && !sink.is_full() {
        tags = tags.wrapping_add(1);
        if tags.is_multiple_of(CLOCK_EVERY) {
            deadline.check()?;
        }
        let Some(lt) = rest.find('<') else {
            push_collapsed(&mut sink, &decode_entities(rest));
            break;
        };
        push_collapsed(&mut sink, &decode_entities(&rest[..lt]));
        rest = &rest[lt..];
        if rest.starts_with("<!--") {
            rest = after(rest, "-->");
            continue;
        }
        if rest.starts_with("<!") || rest.starts_with("<?") {
            rest = after(rest, ">");
            continue;
        }
        let closing = rest.starts_with("</");
        let name_at = if closing { 2 } else { 1 };
        let name_len = rest[name_at..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(rest.len() - name_at);
        let name = rest[name_at..name_at + name_len].to_ascii_lowercase();
        if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            // Not a tag: a literal '<'.
            sink.push("<");
            rest = &rest[1..];
            continue;
        }
        let tag_len = tag_len(rest);
        let self_closing = rest[..tag_len].ends_with("/>");
        rest = &rest[tag_len..];
        if !closing && !self_closing && HTML_HIDDEN.contains(&name.as_str()) {
            rest = after_end_tag(rest, &name);
            sink.separate();
        } else if HTML_BLOCKS.contains(&name.as_str()) {
            sink.end_line();
        } else if matches!(name.as_str(), "td" | "th") {
            sink.separate();
        }
    }
    Ok(sink.finish())
}

/// The length of the tag at the start of `s` (through its `>`, quotes
/// respected), or all of `s` for an unterminated tag.
fn tag_len(s: &str) -> usize {
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return i + 1,
            _ => {}
        }
    }
    s.len()
}

/// The rest of `s` after `</name ...>` (ASCII case-insensitive), or nothing.
fn after_end_tag<'a>(s: &'a str, name: &str) -> &'a str {
    let mut from = 0;
    while let Some(at) = s[from..].find("</") {
        let start = from + at;
        let name_end = start + 2 + name.len();
        let matches_name = s
            .get(start + 2..name_end)
            .is_some_and(|n| n.eq_ignore_ascii_case(name));
        let ends_name = s[name_end.min(s.len())..]
            .chars()
            .next()
            .is_none_or(|c| c == '>' || c == '/' || c.is_whitespace());
        if matches_name && ends_name {
            return &s[start + tag_len(&s[start..])..];
        }
        from = start + 2;
    }
    ""
}

/// The text after the first `end` in `s`, or nothing.
fn after<'a>(s: &'a str, end: &str) -> &'a str {
    s.find(end).map_or("", |at| &s[at + end.len()..])
}

/// Decodes character references and the common named entities; anything
/// unrecognised stays as written.
fn decode_entities(s: &str) -> Cow<'_, str> {
    if !s.contains('&') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        // The `;` closing a reference within the next 32 bytes (ASCII, so
        // slicing at it stays on a char boundary).
        let decoded = rest.as_bytes()[1..]
            .iter()
            .take(32)
            .position(|&b| b == b';')
            .and_then(|semi| Some((html_entity(&rest[1..semi + 1])?, semi + 2)));
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

fn html_entity(name: &str) -> Option<char> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        return Some(
            char::from_u32(code)
                .filter(|&c| c != '\0')
                .unwrap_or('\u{FFFD}'),
        );
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{A0}',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "hellip" => '…',
        "mdash" => '—',
        "ndash" => '–',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "laquo" => '«',
        "raquo" => '»',
        "bull" => '•',
        "middot" => '·',
        "deg" => '°',
        "euro" => '€',
        "pound" => '£',
        "yen" => '¥',
        "cent" => '¢',
        "sect" => '§',
        "para" => '¶',
        "times" => '×',
        "divide" => '÷',
        _ => return None,
    })
}
