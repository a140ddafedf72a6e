//! Taking in an uploaded file (documents, styleguide assets): the bytes from a multipart part
//! or base64 text, a size check, the type decided from the content, a checksum, and the text
//! extracted for search, all before anything is written.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use canopy_core::{Code, Error, ProjectId};
use canopy_extract::{Kind, Limits, Rejected};
use sha2::{Digest, Sha256};

use crate::op::Cx;

/// A checked upload, not yet stored.
pub struct Received {
    pub kind: Kind,
    pub filename: String,
    pub mime_type: &'static str,
    pub sha256: String,
    pub bytes: Bytes,
}

impl Received {
    pub fn size(&self) -> i64 {
        i64::try_from(self.bytes.len()).unwrap_or(i64::MAX)
    }
}

/// Checks an upload: `file` (raw bytes, from multipart) or `content` (base64, from JSON/MCP);
/// at most `max` bytes; a type Canopy accepts, judged from the content.
pub fn receive(
    file: Option<Bytes>,
    content: Option<&str>,
    filename: Option<&str>,
    max: usize,
) -> Result<Received, Error> {
    let bytes = match (file, content) {
        (Some(b), _) => b,
        (None, Some(b64)) => {
            // base64 is 4/3 of the bytes: refuse oversize text before decoding it.
            if b64.len() / 4 * 3 > max + 3 {
                return Err(too_large(max));
            }
            let clean: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            Bytes::from(
                base64::engine::general_purpose::STANDARD
                    .decode(clean.as_bytes())
                    .map_err(|_| {
                        Error::validation(
                            "content",
                            "content must be base64 (standard alphabet, padded).",
                        )
                    })?,
            )
        }
        (None, None) => {
            return Err(Error::validation(
                "file",
                "Send the file: a multipart part named `file`, or base64 `content`.",
            ));
        }
    };
    if bytes.is_empty() {
        return Err(Error::validation("file", "The file is empty."));
    }
    if bytes.len() > max {
        return Err(too_large(max));
    }
    let filename = clean_filename(filename);
    let kind = canopy_extract::sniff(&bytes, filename.as_deref()).map_err(rejected)?;
    let filename = filename.unwrap_or_else(|| format!("upload.{}", kind.as_str()));
    let sha256 = hex(&Sha256::digest(&bytes));
    Ok(Received {
        kind,
        filename,
        mime_type: kind.mime(),
        sha256,
        bytes,
    })
}

fn too_large(max: usize) -> Error {
    Error::new(
        Code::PayloadTooLarge,
        format!(
            "The file is larger than the {} MiB this route accepts.",
            max / (1024 * 1024)
        ),
    )
    .with_field("file")
    .with_extra("max_bytes", max)
}

/// The text of a received file for the search index, extracted off the async workers with a
/// time limit, at most two at a time. `(text, status)`; status is `extracted`, `truncated`
/// or `none` (the kind holds no text).
pub async fn extract_text(cx: &Cx<'_>, file: &Received) -> Result<(String, &'static str), Error> {
    let _slot = cx
        .svc
        .extraction_slots()
        .acquire()
        .await
        .map_err(|_| Error::new(Code::Unavailable, "The server is shutting down."))?;
    let limits = Limits {
        max_text_bytes: MAX_TEXT_BYTES + 1,
        timeout: Duration::from_secs(10),
        ..Limits::default()
    };
    let kind = file.kind;
    let bytes = file.bytes.clone();
    let text = tokio::task::spawn_blocking(move || canopy_extract::extract(kind, &bytes, &limits))
        .await
        .map_err(|e| Error::internal(format!("text extraction stopped: {e}")))?
        .map_err(rejected)?;
    if text.len() > MAX_TEXT_BYTES {
        let mut end = MAX_TEXT_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        return Ok((text[..end].to_owned(), "truncated"));
    }
    let status = if text.trim().is_empty() {
        "none"
    } else {
        "extracted"
    };
    Ok((text, status))
}

/// Where an upload's bytes live: one folder per org and project.
pub(crate) fn blob_key(cx: &Cx<'_>, project: ProjectId, family: &str, id: &str) -> String {
    format!("{}/{}/{family}/{id}", cx.org().db(), project.db())
}

/// Stores the blob, then runs `commit`; when the commit fails the blob is removed again.
pub(crate) async fn store_with_blob(
    cx: &Cx<'_>,
    key: &str,
    file: &Received,
    commit: impl std::future::Future<Output = Result<(), Error>>,
) -> Result<(), Error> {
    let blobs = cx.svc.blobs();
    blobs.put(key, file.bytes.clone()).await?;
    if let Err(e) = commit.await {
        if let Err(cleanup) = blobs.delete(key).await {
            tracing::warn!(error = %cleanup, key, "could not remove the blob of a refused upload");
        }
        return Err(e);
    }
    Ok(())
}

/// Removes the blob of a deleted row. The row is gone already, so a failure only leaves an
/// unreachable file behind; it is logged, not returned.
pub(crate) async fn remove_blob(cx: &Cx<'_>, key: &str) {
    if let Err(e) = cx.svc.blobs().delete(key).await {
        tracing::warn!(error = %e, key, "could not remove the blob of a deleted file");
    }
}

/// The stored bytes of a file row; a row without its blob is a server fault.
pub(crate) async fn read_blob(cx: &Cx<'_>, key: &str, row_id: &str) -> Result<Bytes, Error> {
    cx.svc
        .blobs()
        .get(key)
        .await?
        .ok_or_else(|| Error::internal(format!("blob {key} of {row_id} is missing")))
}

/// An optional free-text field, trimmed, at most `max` characters (absent = empty).
pub(crate) fn optional_text(field: &str, value: Option<&str>, max: usize) -> Result<String, Error> {
    let v = value.unwrap_or("").trim();
    if v.chars().count() > max {
        return Err(Error::validation(
            field,
            format!("{field} must be at most {max} characters."),
        ));
    }
    Ok(v.to_owned())
}

/// Extracted text kept per document for search (the file itself is kept whole).
pub const MAX_TEXT_BYTES: usize = 256 * 1024;

fn rejected(r: Rejected) -> Error {
    let msg = match r {
        Rejected::NotAllowed(m) => format!("This file type is not accepted: {m}"),
        Rejected::Malformed(m) => format!("The file could not be read: {m}"),
        Rejected::TooLarge(m) => format!("The file unpacks to more than this server accepts: {m}"),
        Rejected::Timeout => {
            "Reading the file's text took too long; it may be damaged or hostile.".to_owned()
        }
    };
    Error::validation("file", msg)
}

/// The last path segment of a client's file name, without control characters, at most 255
/// bytes; `None` when nothing usable is left.
fn clean_filename(raw: Option<&str>) -> Option<String> {
    let base = raw?.rsplit(['/', '\\']).next()?.trim();
    let mut out: String = base
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .collect();
    while out.len() > 255 {
        out.pop();
    }
    (!out.is_empty() && out != "." && out != "..").then_some(out)
}

/// Serialises bytes as standard base64 text.
pub(crate) fn as_base64<S: serde::Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_are_reduced_to_a_safe_base_name() {
        assert_eq!(
            clean_filename(Some("../../etc/passwd")).as_deref(),
            Some("passwd")
        );
        assert_eq!(
            clean_filename(Some("C:\\x\\report.pdf")).as_deref(),
            Some("report.pdf")
        );
        assert_eq!(
            clean_filename(Some("a\u{0}b\"c.txt")).as_deref(),
            Some("abc.txt")
        );
        assert_eq!(clean_filename(Some("..")), None);
        assert_eq!(clean_filename(Some("  ")), None);
        assert_eq!(
            clean_filename(Some(&"é".repeat(200))).map(|s| s.len()),
            Some(254)
        );
    }

    #[test]
    fn base64_and_size_checks() {
        let ok = receive(None, Some("aGVsbG8gd29ybGQ="), Some("a.txt"), 100).map(|r| r.bytes);
        assert_eq!(ok.ok().as_deref(), Some(&b"hello world"[..]));
        let bad = receive(None, Some("!!!"), Some("a.txt"), 100)
            .err()
            .map(|e| e.field.clone());
        assert_eq!(bad, Some(Some("content".to_owned())));
        let big = receive(Some(Bytes::from(vec![b'a'; 101])), None, None, 100).err();
        assert_eq!(big.map(|e| e.code), Some(Code::PayloadTooLarge));
        let none = receive(None, None, None, 100).err().map(|e| e.code);
        assert_eq!(none, Some(Code::ValidationError));
    }
}
