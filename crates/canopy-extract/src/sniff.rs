//! Deciding what the bytes are: magic numbers first, then container
//! structure, then (for text) content heuristics with the filename extension
//! as a tie-breaker.

use crate::{Kind, Rejected, zipped};

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Extensions refused whenever the content is text: scripts, launchers and
/// the like, which a browser, shell or desktop may run when opened.
const EXECUTABLE_EXTENSIONS: &[&str] = &[
    "app",
    "applescript",
    "apk",
    "appimage",
    "asp",
    "aspx",
    "bash",
    "bat",
    "bin",
    "cgi",
    "cjs",
    "class",
    "cmd",
    "com",
    "command",
    "cpl",
    "csh",
    "desktop",
    "dll",
    "dylib",
    "elf",
    "exe",
    "fish",
    "hta",
    "inf",
    "jar",
    "js",
    "jse",
    "jsp",
    "ksh",
    "lnk",
    "lua",
    "mjs",
    "msc",
    "msi",
    "php",
    "phar",
    "phtml",
    "pif",
    "pl",
    "pm",
    "ps1",
    "psd1",
    "psm1",
    "py",
    "pyc",
    "pyw",
    "rb",
    "reg",
    "run",
    "scpt",
    "scr",
    "sh",
    "so",
    "sys",
    "tcl",
    "tcsh",
    "vb",
    "vbe",
    "vbs",
    "ws",
    "wsc",
    "wsf",
    "wsh",
    "zsh",
];

const MARKDOWN_EXTENSIONS: &[&str] = &["md", "markdown", "mdown", "mkd", "mkdn"];
const CSV_EXTENSIONS: &[&str] = &["csv", "tsv"];
const HTML_EXTENSIONS: &[&str] = &["html", "htm", "xhtml"];
/// Plain text by name: keeps `# comment` config files from passing for
/// Markdown and comma-heavy logs from passing for CSV.
const TEXT_EXTENSIONS: &[&str] = &[
    "txt", "text", "log", "ini", "cfg", "conf", "yaml", "yml", "toml",
];

/// Decide the kind. `filename` may be `None`.
///
/// Returns `Err(Rejected::NotAllowed)` for ELF/PE/Mach-O executables, Java
/// class files, WASM, DEX, scripts (a `#!` first line, `<?php`), text content
/// under an executable or script name (`.exe`, `.sh`, `.bat`, `.js`, `.ps1`,
/// ...), and unknown binary content. Text is valid UTF-8 (a BOM is allowed)
/// without NUL bytes; among text kinds the content decides (JSON that parses,
/// HTML doctype or `<html>`, an `<svg>` root, well-formed XML, consistent
/// CSV delimiters, Markdown headings) and the extension breaks ties (`.md`,
/// `.csv`, `.html`, `.txt`...). A zip is classified by its entry names
/// (`[Content_Types].xml` with `word/`, `xl/` or `ppt/`; an ODF `mimetype`),
/// otherwise it is a plain [`Kind::Zip`], whatever it holds: it is never
/// unpacked. A zip whose entries cannot be listed at all is
/// `Err(Rejected::Malformed)`.
pub fn sniff(bytes: &[u8], filename: Option<&str>) -> Result<Kind, Rejected> {
    if let Some(kind) = binary_kind(bytes)? {
        return Ok(kind);
    }
    let body = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    let text = match std::str::from_utf8(body) {
        Ok(text) if !text.contains('\0') => text,
        _ => {
            return Err(Rejected::NotAllowed(format!(
                "unrecognised binary content (starts {})",
                hex_prefix(bytes)
            )));
        }
    };
    text_kind(text, extension(filename).as_deref())
}

/// Kinds told by magic numbers; `Ok(None)` when the bytes should be judged as
/// text.
fn binary_kind(bytes: &[u8]) -> Result<Option<Kind>, Rejected> {
    let not_allowed = |what: &str| Err(Rejected::NotAllowed(what.to_owned()));
    if bytes.starts_with(b"#!") {
        return not_allowed("a script (#! line)");
    }
    if bytes.starts_with(b"\x7FELF") {
        return not_allowed("an ELF executable");
    }
    if [
        b"\xFE\xED\xFA\xCE",
        b"\xCE\xFA\xED\xFE",
        b"\xFE\xED\xFA\xCF",
        b"\xCF\xFA\xED\xFE",
    ]
    .iter()
    .any(|magic| bytes.starts_with(*magic))
    {
        return not_allowed("a Mach-O executable");
    }
    if bytes.starts_with(b"\xCA\xFE\xBA\xBE") {
        return not_allowed("a Java class file or universal Mach-O executable");
    }
    if bytes.starts_with(b"\0asm") {
        return not_allowed("a WebAssembly module");
    }
    if bytes.starts_with(b"dex\n") {
        return not_allowed("an Android DEX executable");
    }
    if bytes.starts_with(b"MZ") && (has_pe_header(bytes) || std::str::from_utf8(bytes).is_err()) {
        return not_allowed("a DOS/Windows (MZ/PE) executable");
    }
    if bytes.starts_with(b"%PDF-") {
        return Ok(Some(Kind::Pdf));
    }
    if [b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"]
        .iter()
        .any(|magic| bytes.starts_with(*magic))
    {
        return zipped::sniff(bytes).map(Some);
    }
    if bytes.starts_with(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1") {
        return Ok(Some(Kind::Doc));
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1A\n") {
        return Ok(Some(Kind::Png));
    }
    if bytes.starts_with(b"\xFF\xD8\xFF") {
        return Ok(Some(Kind::Jpeg));
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Ok(Some(Kind::Gif));
    }
    if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        return Ok(Some(Kind::Webp));
    }
    if bytes.starts_with(b"{\\rtf") {
        return Ok(Some(Kind::Rtf));
    }
    // Acrobat accepts a PDF header anywhere in the first KiB; only take that
    // for binary content, so text that merely mentions "%PDF-" stays text.
    let head = &bytes[..bytes.len().min(1024)];
    if head.windows(5).any(|w| w == b"%PDF-") && std::str::from_utf8(bytes).is_err() {
        return Ok(Some(Kind::Pdf));
    }
    Ok(None)
}

/// An MZ stub whose `e_lfanew` points at a `PE\0\0` signature.
fn has_pe_header(bytes: &[u8]) -> bool {
    let Some(offset) = bytes.get(0x3C..0x40) else {
        return false;
    };
    let offset = u32::from_le_bytes([offset[0], offset[1], offset[2], offset[3]]) as usize;
    offset
        .checked_add(4)
        .and_then(|end| bytes.get(offset..end))
        .is_some_and(|sig| sig == b"PE\0\0")
}

fn text_kind(text: &str, ext: Option<&str>) -> Result<Kind, Rejected> {
    let trimmed = text.trim_start();
    if trimmed.starts_with("#!") {
        return Err(Rejected::NotAllowed("a script (#! line)".to_owned()));
    }
    if starts_with_ignore_case(trimmed, "<?php") {
        return Err(Rejected::NotAllowed("a PHP script".to_owned()));
    }
    if let Some(ext) = ext.filter(|ext| EXECUTABLE_EXTENSIONS.contains(ext)) {
        return Err(Rejected::NotAllowed(format!("text named as a .{ext} file")));
    }
    let is = |list: &[&str]| ext.is_some_and(|ext| list.contains(&ext));
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && serde_json::from_str::<serde_json::Value>(text).is_ok()
    {
        return Ok(Kind::Json);
    }
    if trimmed.starts_with('<')
        && let Some(kind) = markup_kind(trimmed, is(HTML_EXTENSIONS))
    {
        return Ok(kind);
    }
    if is(MARKDOWN_EXTENSIONS) {
        return Ok(Kind::Markdown);
    }
    if is(CSV_EXTENSIONS) {
        return Ok(Kind::Csv);
    }
    if is(TEXT_EXTENSIONS) {
        return Ok(Kind::Text);
    }
    if looks_like_markdown(text) {
        return Ok(Kind::Markdown);
    }
    if looks_like_csv(text) {
        return Ok(Kind::Csv);
    }
    Ok(Kind::Text)
}

/// HTML, SVG or XML for text starting with `<`; `None` when it is none of
/// them (e.g. an HTML fragment without an `.html` name, or `<3`).
fn markup_kind(text: &str, html_name: bool) -> Option<Kind> {
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        if rest.starts_with("<?") {
            rest = after(rest, "?>")?;
        } else if rest.starts_with("<!--") {
            rest = after(rest, "-->")?;
        } else if starts_with_ignore_case(rest, "<!doctype") {
            let name = rest["<!doctype".len()..].trim_start();
            if starts_with_ignore_case(name, "html") {
                return Some(Kind::Html);
            }
            if name.starts_with("svg") {
                return Some(Kind::Svg);
            }
            // Skip an internal subset `[...]` if the doctype has one.
            let end = rest.find('>')?;
            rest = match rest[..end].find('[') {
                Some(_) => after(rest, "]>")?,
                None => &rest[end + 1..],
            };
        } else {
            break;
        }
    }
    let name: String = rest
        .strip_prefix('<')?
        .chars()
        .take_while(|c| c.is_alphanumeric() || matches!(c, ':' | '-' | '_' | '.'))
        .collect();
    if name.eq_ignore_ascii_case("html") {
        return Some(Kind::Html);
    }
    if name == "svg" || name.ends_with(":svg") {
        return Some(Kind::Svg);
    }
    if html_name {
        return Some(Kind::Html);
    }
    (!name.is_empty() && crate::markup::is_well_formed_xml(text)).then_some(Kind::Xml)
}

/// The text after the first `end` in `s`.
fn after<'a>(s: &'a str, end: &str) -> Option<&'a str> {
    s.find(end).map(|at| &s[at + end.len()..])
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// An ATX heading (`# Title`) as the first non-blank line, or at least two
/// among the first 200 lines.
fn looks_like_markdown(text: &str) -> bool {
    let is_heading = |line: &str| {
        let hashes = line.bytes().take_while(|&b| b == b'#').count();
        (1..=6).contains(&hashes)
            && line[hashes..].starts_with(' ')
            && !line[hashes..].trim().is_empty()
    };
    let mut lines = text.lines().filter(|line| !line.trim().is_empty());
    if lines.next().is_some_and(is_heading) {
        return true;
    }
    text.lines()
        .take(200)
        .filter(|line| is_heading(line))
        .count()
        >= 2
}

/// The same non-zero count of one delimiter (outside double quotes) on each
/// of the first non-blank lines: at least three lines, and five when a line
/// has a single delimiter (prose has the odd comma too).
fn looks_like_csv(text: &str) -> bool {
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .take(20)
        .collect();
    if lines.len() < 3 {
        return false;
    }
    [',', ';', '\t', '|'].iter().any(|&delimiter| {
        let count = |line: &str| {
            let mut quoted = false;
            line.chars()
                .filter(|&c| {
                    if c == '"' {
                        quoted = !quoted;
                    }
                    c == delimiter && !quoted
                })
                .count()
        };
        let first = count(lines[0]);
        first > 0
            && (first > 1 || lines.len() >= 5)
            && lines.iter().all(|line| count(line) == first)
    })
}

/// The filename's extension, lowercased (trailing dots and spaces, which
/// Windows ignores, ignored too).
fn extension(filename: Option<&str>) -> Option<String> {
    let name = filename?.rsplit(['/', '\\']).next()?;
    let (_, ext) = name.trim_end_matches([' ', '.']).rsplit_once('.')?;
    Some(ext.to_ascii_lowercase())
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}
