//! Zip containers: telling OOXML and ODF documents from plain zips by their
//! entry names, and reading the text of their main XML parts through the
//! capped reader.

use std::io::{Cursor, Read};

use zip::ZipArchive;

use crate::budget::{Deadline, TextSink, Unpacked};
use crate::markup::{XmlRules, xml_parts_text};
use crate::{Kind, Limits, Rejected};

type Archive<'a> = ZipArchive<Cursor<&'a [u8]>>;

/// The kind of a zip container, from its entry names. The central directory
/// is read when it can be; a truncated archive falls back to walking the local
/// file headers from the start, so a cut-off DOCX still sniffs as a DOCX (and
/// then fails extraction as malformed).
pub(crate) fn sniff(bytes: &[u8]) -> Result<Kind, Rejected> {
    let (names, mimetype) = match ZipArchive::new(Cursor::new(bytes)) {
        Ok(mut archive) => {
            let names: Vec<String> = archive
                .file_names_raw()
                .map(|name| String::from_utf8_lossy(name).into_owned())
                .collect();
            let mimetype = first_entry_mimetype(bytes).or_else(|| read_mimetype(&mut archive));
            (names, mimetype)
        }
        Err(_) => (local_names(bytes), first_entry_mimetype(bytes)),
    };
    if names.is_empty() && !bytes.starts_with(b"PK\x05\x06") {
        return Err(Rejected::Malformed(
            "zip archive without readable entries".to_owned(),
        ));
    }
    if let Some(mimetype) = mimetype {
        match mimetype.trim() {
            "application/vnd.oasis.opendocument.text" => return Ok(Kind::Odt),
            "application/vnd.oasis.opendocument.spreadsheet" => return Ok(Kind::Ods),
            "application/vnd.oasis.opendocument.presentation" => return Ok(Kind::Odp),
            _ => {}
        }
    }
    let has = |prefix: &str| {
        names
            .iter()
            .any(|name| name.to_ascii_lowercase().starts_with(prefix))
    };
    if names
        .iter()
        .any(|name| name.eq_ignore_ascii_case("[Content_Types].xml"))
    {
        if has("word/") {
            return Ok(Kind::Docx);
        }
        if has("xl/") {
            return Ok(Kind::Xlsx);
        }
        if has("ppt/") {
            return Ok(Kind::Pptx);
        }
    }
    Ok(Kind::Zip)
}

/// A little-endian u16 / u32 at `at`, if the bytes are there.
fn le16(bytes: &[u8], at: usize) -> Option<usize> {
    let b = bytes.get(at..at.checked_add(2)?)?;
    Some(usize::from(u16::from_le_bytes([b[0], b[1]])))
}

fn le32(bytes: &[u8], at: usize) -> Option<usize> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    usize::try_from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])).ok()
}

/// One local file header at `at`: (name, method, compressed size, data start).
/// The size is `None` when it only follows in a data descriptor.
fn local_header(bytes: &[u8], at: usize) -> Option<(&[u8], usize, Option<usize>, usize)> {
    if bytes.get(at..at.checked_add(4)?)? != b"PK\x03\x04" {
        return None;
    }
    let flags = le16(bytes, at + 6)?;
    let method = le16(bytes, at + 8)?;
    let size = le32(bytes, at + 18)?;
    let name_len = le16(bytes, at + 26)?;
    let extra_len = le16(bytes, at + 28)?;
    let name = bytes.get(at + 30..at + 30 + name_len)?;
    let data = at + 30 + name_len + extra_len;
    let size = (flags & 0x08 == 0 && size != 0xFFFF_FFFF).then_some(size);
    Some((name, method, size, data))
}

/// Entry names from the local headers, walked from the start of the archive
/// until one cannot be followed (bounded: at most 10 000 headers).
fn local_names(bytes: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut at = 0;
    while names.len() < 10_000 {
        let Some((name, _, size, data)) = local_header(bytes, at) else {
            break;
        };
        names.push(String::from_utf8_lossy(name).into_owned());
        match size.and_then(|size| data.checked_add(size)) {
            Some(next) => at = next,
            None => break,
        }
    }
    names
}

/// ODF puts an uncompressed `mimetype` entry first so it can be sniffed
/// straight from the bytes.
fn first_entry_mimetype(bytes: &[u8]) -> Option<String> {
    let (name, method, size, data) = local_header(bytes, 0)?;
    if name != b"mimetype" || method != 0 {
        return None;
    }
    let content = bytes.get(data..data.checked_add(size?.min(256))?)?;
    Some(String::from_utf8_lossy(content).into_owned())
}

/// The `mimetype` entry wherever it is, if it is small.
fn read_mimetype(archive: &mut Archive<'_>) -> Option<String> {
    let entry = archive.by_name("mimetype").ok()?;
    let mut content = String::new();
    entry.take(256).read_to_string(&mut content).ok()?;
    Some(content)
}

fn open<'a>(bytes: &'a [u8], limits: &Limits) -> Result<Archive<'a>, Rejected> {
    let archive = ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| Rejected::Malformed(format!("zip archive: {e}")))?;
    if archive.len() > limits.max_entries {
        return Err(Rejected::TooLarge(format!(
            "zip archive has {} entries, more than {}",
            archive.len(),
            limits.max_entries
        )));
    }
    Ok(archive)
}

/// Reads one entry whole, counting its inflated bytes against `unpacked`;
/// `Ok(None)` when there is no such entry.
fn read_entry(
    archive: &mut Archive<'_>,
    name: &str,
    unpacked: &mut Unpacked,
    deadline: &Deadline,
) -> Result<Option<Vec<u8>>, Rejected> {
    let mut entry = match archive.by_name(name) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(Rejected::Malformed(format!("zip entry {name}: {e}"))),
    };
    // The declared size may lie; it only lets an honest bomb fail early. The
    // real check is the count kept while reading.
    if entry.size() > unpacked.left() {
        return Err(unpacked.too_large());
    }
    unpacked
        .read_all(&mut entry, &format!("zip entry {name}"), deadline)
        .map(Some)
}

/// Bytes unpacked per byte packed above which a large archive counts as a bomb.
const BOMB_RATIO: u64 = 100;

/// Refuses an archive whose entries declare more than `max_unpacked_bytes` in all
/// and more than [`BOMB_RATIO`] times its own size (ordinary archives of text
/// compress 3–20 times; bombs a thousand times and more).
fn check_ratio(archive: &Archive<'_>, packed: u64, limits: &Limits) -> Result<(), Rejected> {
    let declared: u64 = archive
        .decompressed_size()
        .map(|n| u64::try_from(n).unwrap_or(u64::MAX))
        .unwrap_or(0);
    if declared > limits.max_unpacked_bytes && declared / packed.max(1) > BOMB_RATIO {
        return Err(Rejected::TooLarge(format!(
            "zip archive of {packed} bytes declares {declared} bytes unpacked"
        )));
    }
    Ok(())
}

/// PowerPoint slide parts in slide order (`slide2.xml` before `slide10.xml`).
fn slide_names(archive: &Archive<'_>) -> Vec<String> {
    let mut slides: Vec<(u64, String)> = archive
        .file_names_raw()
        .filter_map(|raw| {
            let name = std::str::from_utf8(raw).ok()?;
            let number = name
                .strip_prefix("ppt/slides/slide")?
                .strip_suffix(".xml")?
                .parse()
                .ok()?;
            Some((number, name.to_owned()))
        })
        .collect();
    slides.sort();
    slides.into_iter().map(|(_, name)| name).collect()
}

pub(crate) fn extract(
    kind: Kind,
    bytes: &[u8],
    limits: &Limits,
    deadline: &Deadline,
) -> Result<String, Rejected> {
    let mut archive = open(bytes, limits)?;
    // (parts to read, whether the first one must exist, how to read them)
    let (parts, required, rules) = match kind {
        Kind::Docx => (vec!["word/document.xml".to_owned()], true, XmlRules::DOCX),
        Kind::Pptx => (slide_names(&archive), false, XmlRules::DRAWINGML),
        Kind::Xlsx => (
            vec!["xl/sharedStrings.xml".to_owned()],
            false,
            XmlRules::SHARED_STRINGS,
        ),
        Kind::Odt | Kind::Ods | Kind::Odp => (vec!["content.xml".to_owned()], true, XmlRules::ODF),
        // A plain zip is never unpacked here, but whoever downloads it will unpack
        // it: refuse one that declares a bomb's ratio (opening it checked its
        // directory and entry count).
        _ => {
            check_ratio(&archive, bytes.len() as u64, limits)?;
            return Ok(String::new());
        }
    };
    let mut unpacked = Unpacked::new(limits.max_unpacked_bytes);
    let mut sink = TextSink::new(limits.max_text_bytes);
    for (i, part) in parts.iter().enumerate() {
        if sink.is_full() {
            break;
        }
        deadline.check()?;
        let Some(xml) = read_entry(&mut archive, part, &mut unpacked, deadline)? else {
            if required && i == 0 {
                return Err(Rejected::Malformed(format!(
                    "{} without {part}",
                    kind.as_str()
                )));
            }
            continue;
        };
        let xml = String::from_utf8(xml)
            .map_err(|_| Rejected::Malformed(format!("{part} is not UTF-8")))?;
        xml_parts_text(&xml, &rules, &mut sink, deadline).map_err(|e| match e {
            Rejected::Malformed(why) => Rejected::Malformed(format!("{part}: {why}")),
            other => other,
        })?;
        sink.end_line();
    }
    Ok(sink.finish())
}
