//! The upload gate: decide what an uploaded file really is, and pull out its
//! plain text for the search index.
//!
//! Every byte handed to this crate is hostile until proven otherwise. Uploads
//! lie about their names, executables hide behind document extensions, a few
//! kilobytes of zip or PDF can inflate to gigabytes, and document parsers can
//! panic or spin on crafted input. So:
//!
//! - [`sniff`] decides the [`Kind`] from the bytes (magic numbers, container
//!   structure), consulting the filename only to break ties between plain text
//!   kinds, and refuses executables, scripts and unknown binary content.
//! - [`extract`] is blocking and CPU-bound (run it on `spawn_blocking`) and
//!   enforces [`Limits`] itself: extracted text is capped at
//!   [`Limits::max_text_bytes`] (truncated at a char boundary, not an error);
//!   zip-based formats may inflate to at most [`Limits::max_unpacked_bytes`],
//!   counted while reading through a capped reader, and may hold at most
//!   [`Limits::max_entries`] entries; everything is checked against a deadline
//!   of [`Limits::timeout`]. PDFs are parsed on a separate thread, see
//!   [`extract`] for what that means.
//!
//! The size of the upload itself is the caller's to cap before calling in.

mod budget;
mod markup;
mod pdf;
mod plain;
mod sniff;
mod zipped;

use std::time::Duration;

pub use sniff::sniff;

use budget::Deadline;

/// What the content is, decided from the bytes first (magic numbers,
/// structure), the filename extension only as a tie-breaker for plain text
/// kinds. The text kinds ([`Kind::Text`], [`Kind::Markdown`], [`Kind::Csv`],
/// [`Kind::Json`], [`Kind::Html`], [`Kind::Xml`], [`Kind::Svg`]) are always
/// valid UTF-8 when they come from [`sniff`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Pdf,
    Docx,
    Xlsx,
    Pptx,
    Odt,
    Ods,
    Odp,
    /// An OLE/CFB compound file: legacy Office (`.doc`, `.xls`, `.ppt`).
    Doc,
    Zip,
    Png,
    Jpeg,
    Gif,
    Webp,
    Svg,
    Text,
    Markdown,
    Csv,
    Json,
    Html,
    Xml,
    Rtf,
}

impl Kind {
    /// The media type to store and serve the content as.
    pub fn mime(self) -> &'static str {
        match self {
            Kind::Pdf => "application/pdf",
            Kind::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Kind::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Kind::Pptx => {
                "application/vnd.openxmlformats-officedocument.presentationml.presentation"
            }
            Kind::Odt => "application/vnd.oasis.opendocument.text",
            Kind::Ods => "application/vnd.oasis.opendocument.spreadsheet",
            Kind::Odp => "application/vnd.oasis.opendocument.presentation",
            // A compound file may be a .doc, .xls or .ppt; we do not look inside.
            Kind::Doc => "application/x-ole-storage",
            Kind::Zip => "application/zip",
            Kind::Png => "image/png",
            Kind::Jpeg => "image/jpeg",
            Kind::Gif => "image/gif",
            Kind::Webp => "image/webp",
            Kind::Svg => "image/svg+xml",
            Kind::Text => "text/plain",
            Kind::Markdown => "text/markdown",
            Kind::Csv => "text/csv",
            Kind::Json => "application/json",
            Kind::Html => "text/html",
            Kind::Xml => "application/xml",
            Kind::Rtf => "application/rtf",
        }
    }

    /// A short lowercase name, e.g. `"pdf"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pdf => "pdf",
            Kind::Docx => "docx",
            Kind::Xlsx => "xlsx",
            Kind::Pptx => "pptx",
            Kind::Odt => "odt",
            Kind::Ods => "ods",
            Kind::Odp => "odp",
            Kind::Doc => "doc",
            Kind::Zip => "zip",
            Kind::Png => "png",
            Kind::Jpeg => "jpeg",
            Kind::Gif => "gif",
            Kind::Webp => "webp",
            Kind::Svg => "svg",
            Kind::Text => "text",
            Kind::Markdown => "markdown",
            Kind::Csv => "csv",
            Kind::Json => "json",
            Kind::Html => "html",
            Kind::Xml => "xml",
            Kind::Rtf => "rtf",
        }
    }
}

/// Why an upload was refused, or why its text could not be extracted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Rejected {
    /// Executables, scripts, and anything not in the accepted families. The
    /// message says what it looked like.
    #[error("file type not allowed: {0}")]
    NotAllowed(String),
    /// Could not be parsed (malformed PDF, broken zip...). For an accepted
    /// kind, the caller may still store the file but with no extracted text;
    /// see [`extract`].
    #[error("malformed content: {0}")]
    Malformed(String),
    /// A decompression bomb or otherwise over the limits.
    #[error("content too large: {0}")]
    TooLarge(String),
    /// Extraction exceeded the time budget.
    #[error("text extraction timed out")]
    Timeout,
}

/// Resource limits that [`extract`] enforces on itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Cap on the extracted text kept, in bytes. Longer text is truncated at a
    /// char boundary; that is not an error. Default 1 MiB.
    pub max_text_bytes: usize,
    /// Total bytes a zip-based format (or a PDF's compressed streams) may
    /// inflate to. Default 64 MiB.
    pub max_unpacked_bytes: u64,
    /// Most entries a zip-based format may hold. Default 10 000.
    pub max_entries: usize,
    /// Wall-clock budget for one extraction. Default 10 s.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_text_bytes: 1 << 20,
            max_unpacked_bytes: 64 << 20,
            max_entries: 10_000,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Extracted text for the index. May be empty: images, plain zips, legacy
/// Office ([`Kind::Doc`]) and spreadsheets without shared strings give none.
///
/// Blocking and CPU-bound: run it on `spawn_blocking`. It enforces `limits`
/// itself (see the crate docs). Per kind:
///
/// - PDF: `pdf-extract`, run on a separate, detached thread inside
///   `catch_unwind`; a panic or parse error is [`Rejected::Malformed`]. PDF
///   parsing cannot be interrupted, so on [`Rejected::Timeout`] that thread is
///   left running until the parser gives up on its own (it is detached and its
///   result dropped): callers should bound how many extractions run at once.
///   Before parsing, every Flate-compressed stream is inflated through a
///   capped counter, so a PDF whose streams would inflate beyond
///   [`Limits::max_unpacked_bytes`] in total is [`Rejected::TooLarge`] before
///   the parser sees it. Streams behind other filters (LZW, ...) or inside an
///   encrypted PDF are not pre-counted. A panic message may reach stderr
///   through the process's panic hook.
/// - DOCX / PPTX / XLSX / ODT / ODS / ODP: the main XML parts (document,
///   slides, shared strings, `content.xml`), read through the capped zip
///   reader; paragraphs become lines. A broken archive or XML part is
///   [`Rejected::Malformed`].
/// - HTML: the visible text (no `script`/`style`), entities decoded.
/// - JSON: keys and string values, one per line.
/// - XML / SVG: the text nodes (SVG `script`/`style` dropped).
/// - Text / Markdown / CSV: the text itself.
/// - RTF: the text with control words and non-text groups stripped.
/// - Zip: the archive's directory is checked (entry count), no text.
///
/// A [`Rejected::Malformed`] for an accepted kind means "store the file, index
/// no text"; [`Rejected::TooLarge`] and [`Rejected::Timeout`] are the caller's
/// call (refusing the upload is the safe one).
pub fn extract(kind: Kind, bytes: &[u8], limits: &Limits) -> Result<String, Rejected> {
    let deadline = Deadline::after(limits.timeout);
    let cap = limits.max_text_bytes;
    let text = match kind {
        Kind::Pdf => pdf::extract(bytes, limits, &deadline)?,
        Kind::Docx | Kind::Xlsx | Kind::Pptx | Kind::Odt | Kind::Ods | Kind::Odp | Kind::Zip => {
            zipped::extract(kind, bytes, limits, &deadline)?
        }
        Kind::Html => markup::html_text(&plain::utf8(bytes), cap, &deadline)?,
        Kind::Xml | Kind::Svg => markup::xml_text(&plain::utf8(bytes), cap, &deadline)?,
        Kind::Json => plain::json_text(bytes, cap, &deadline)?,
        Kind::Text | Kind::Markdown | Kind::Csv => plain::utf8_capped(bytes, cap),
        Kind::Rtf => plain::rtf_text(bytes, cap, &deadline)?,
        Kind::Png | Kind::Jpeg | Kind::Gif | Kind::Webp | Kind::Doc => String::new(),
    };
    Ok(budget::truncate(text, cap))
}

#[cfg(test)]
mod tests;
