//! The REST door of file operations: multipart uploads in, raw file bytes out. The operation
//! behind them is the same one MCP calls with base64 (`Api::upload`, `Api::download`).

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use canopy_core::{Code, Error};
use canopy_services::op::{FileInput, FileOutput, Operation, dispatch};
use serde_json::{Map, Value};

use crate::AppState;
use crate::api::{
    Caller, Kind, body_error, body_object, coerce, form_urlencoded_pairs, input_error, respond,
};
use crate::error::ApiError;

/// Text parts besides `file`, and their size: metadata, not content.
const MAX_FIELDS: usize = 32;
const MAX_FIELD_BYTES: u64 = 64 * 1024;
/// Multipart framing around the file.
const ENVELOPE_BYTES: usize = 1024 * 1024;

/// `POST` of an upload: multipart (`file` part + text fields) or JSON (base64 `content`).
pub(crate) async fn receive<O: Operation>(
    st: AppState,
    req: Request,
    kinds: &HashMap<String, Kind>,
) -> Result<Response, ApiError>
where
    O::Input: FileInput,
{
    let (mut parts, body) = req.into_parts();
    let caller = Caller::of(&st, &mut parts).await?;
    let config = st.svc.config();
    // The operation enforces its own exact limit; this bounds what is read at all.
    let max_file = config.max_document_bytes.max(config.max_asset_bytes);
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (mut obj, file) = if content_type.starts_with("multipart/form-data") {
        read_multipart(content_type, body, max_file, kinds).await?
    } else {
        // JSON with base64 grows the file by a third.
        let limit = max_file / 3 * 4 + ENVELOPE_BYTES;
        let bytes = axum::body::to_bytes(body, limit)
            .await
            .map_err(body_error)?;
        (body_object(&bytes)?, None)
    };
    if let Some(q) = parts.uri.query() {
        for (k, v) in form_urlencoded_pairs(q) {
            let value = coerce(kinds.get(&k).copied(), v);
            obj.entry(k).or_insert(value);
        }
    }
    caller.add_path_params(&mut obj);
    let mut input: O::Input =
        serde_path_to_error::deserialize(Value::Object(obj)).map_err(input_error)?;
    if let Some((bytes, name)) = file {
        input.attach(bytes, name);
    }
    let output = dispatch::<O>(&st.svc, &caller.principal, caller.meta(), input).await?;
    respond::<O>(StatusCode::CREATED, caller.accept.as_deref(), output)
}

type Upload = (Map<String, Value>, Option<(bytes::Bytes, Option<String>)>);

async fn read_multipart(
    content_type: &str,
    body: Body,
    max_file: usize,
    kinds: &HashMap<String, Kind>,
) -> Result<Upload, ApiError> {
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        Error::new(
            Code::BadRequest,
            "The multipart Content-Type has no boundary.",
        )
    })?;
    let limits = multer::SizeLimit::new()
        .whole_stream((max_file + ENVELOPE_BYTES) as u64)
        .per_field(MAX_FIELD_BYTES)
        // One byte past the limit, so the operation can answer its precise 413.
        .for_field("file", max_file as u64 + 1);
    let mut mp = multer::Multipart::with_constraints(
        body.into_data_stream(),
        boundary,
        multer::Constraints::new().size_limit(limits),
    );
    let mut obj = Map::new();
    let mut file = None;
    let mut fields = 0;
    while let Some(field) = mp.next_field().await.map_err(multipart_error)? {
        fields += 1;
        if fields > MAX_FIELDS {
            return Err(ApiError(Error::new(
                Code::BadRequest,
                format!("At most {MAX_FIELDS} multipart fields."),
            )));
        }
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let filename = field.file_name().map(str::to_owned);
            let bytes = field.bytes().await.map_err(multipart_error)?;
            file = Some((bytes, filename));
        } else if !name.is_empty() {
            let text = field.text().await.map_err(multipart_error)?;
            obj.insert(name.clone(), coerce(kinds.get(&name).copied(), text));
        }
    }
    Ok((obj, file))
}

fn multipart_error(e: multer::Error) -> ApiError {
    use multer::Error as M;
    match e {
        M::StreamSizeExceeded { .. } | M::FieldSizeExceeded { .. } => ApiError(Error::new(
            Code::PayloadTooLarge,
            "The upload is larger than this server accepts.",
        )),
        other => ApiError(Error::new(
            Code::BadRequest,
            format!("The multipart body could not be read: {other}."),
        )),
    }
}

/// `GET` of a file: its bytes, as an attachment that browsers will not render inline.
pub(crate) async fn send<O: Operation>(st: AppState, req: Request) -> Result<Response, ApiError>
where
    O::Output: FileOutput,
{
    let (mut parts, _) = req.into_parts();
    let caller = Caller::of(&st, &mut parts).await?;
    let mut obj = Map::new();
    if let Some(q) = parts.uri.query() {
        for (k, v) in form_urlencoded_pairs(q) {
            obj.entry(k).or_insert(Value::String(v));
        }
    }
    caller.add_path_params(&mut obj);
    let input: O::Input =
        serde_path_to_error::deserialize(Value::Object(obj)).map_err(input_error)?;
    let output = dispatch::<O>(&st.svc, &caller.principal, caller.meta(), input).await?;
    let (filename, mime, bytes) = output.into_file();
    let mut res = (StatusCode::OK, bytes).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&mime)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(v) = HeaderValue::from_str(&content_disposition(&filename)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    // Uploaded HTML or SVG must never run as this origin's page.
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
    Ok(res)
}

/// `attachment` with an ASCII fallback name and the exact UTF-8 name (RFC 6266 / 8187).
fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::content_disposition;

    #[test]
    fn dispositions_quote_and_encode() {
        assert_eq!(
            content_disposition("a b.pdf"),
            "attachment; filename=\"a b.pdf\"; filename*=UTF-8''a%20b.pdf"
        );
        assert_eq!(
            content_disposition("ré\"sumé.txt"),
            "attachment; filename=\"r__sum_.txt\"; filename*=UTF-8''r%C3%A9%22sum%C3%A9.txt"
        );
    }
}
