//! PDF text: an inflation pre-scan, then `pdf-extract` on a detached worker
//! thread inside `catch_unwind`, waited for no longer than the deadline.

use std::any::Any;
use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;

use flate2::read::ZlibDecoder;

use crate::budget::{Deadline, Unpacked};
use crate::{Limits, Rejected};

/// The parser recurses; give it room rather than risk overflowing the default
/// 2 MiB (a stack overflow aborts the process, it cannot be caught).
const WORKER_STACK: usize = 32 << 20;

pub(crate) fn extract(
    bytes: &[u8],
    limits: &Limits,
    deadline: &Deadline,
) -> Result<String, Rejected> {
    let owned = bytes.to_vec();
    let max_unpacked = limits.max_unpacked_bytes;
    let worker_deadline = *deadline;
    let (tx, rx) = mpsc::sync_channel(1);
    thread::Builder::new()
        .name("canopy-pdf-extract".to_owned())
        .stack_size(WORKER_STACK)
        .spawn(move || {
            let result = catch_unwind(AssertUnwindSafe(|| {
                check_inflation(&owned, max_unpacked, &worker_deadline)?;
                pdf_extract::extract_text_from_mem(&owned)
                    .map_err(|e| Rejected::Malformed(format!("PDF: {e}")))
            }))
            .unwrap_or_else(|panic| {
                Err(Rejected::Malformed(format!(
                    "PDF parser panicked: {}",
                    panic_message(panic.as_ref())
                )))
            });
            // The caller may have stopped waiting (timeout); then the result
            // is simply dropped.
            let _ = tx.send(result);
        })
        // Not the file's fault, but the file cannot be read now either:
        // store it without text.
        .map_err(|e| Rejected::Malformed(format!("could not start the PDF worker: {e}")))?;
    let received = match deadline.remaining() {
        Some(left) => rx.recv_timeout(left),
        None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
    };
    match received {
        Ok(result) => result,
        // The worker runs on, detached, until the parser returns.
        Err(RecvTimeoutError::Timeout) => Err(Rejected::Timeout),
        Err(RecvTimeoutError::Disconnected) => Err(Rejected::Malformed(
            "the PDF worker stopped without a result".to_owned(),
        )),
    }
}

/// Inflates every zlib (FlateDecode) stream in the file through a counter,
/// without keeping the output, and refuses the file if the total passes
/// `max_unpacked`. Streams are found by their `stream` keyword rather than by
/// parsing, so object streams and streams the parser would reach only later
/// are counted too; a stream that is not zlib data stops counting at its
/// first bad byte.
fn check_inflation(bytes: &[u8], max_unpacked: u64, deadline: &Deadline) -> Result<(), Rejected> {
    const KEYWORD: &[u8] = b"stream";
    let mut unpacked = Unpacked::new(max_unpacked);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut from = 0;
    while let Some(at) = bytes[from..]
        .windows(KEYWORD.len())
        .position(|w| w == KEYWORD)
    {
        let keyword = from + at;
        from = keyword + KEYWORD.len();
        if keyword >= 3 && &bytes[keyword - 3..keyword] == b"end" {
            continue;
        }
        let data = match &bytes[from..] {
            [b'\r', b'\n', ..] => from + 2,
            [b'\n' | b'\r', ..] => from + 1,
            _ => continue,
        };
        deadline.check()?;
        let mut decoder = ZlibDecoder::new(&bytes[data..]);
        loop {
            deadline.check()?;
            match decoder.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => unpacked.spend(n as u64)?,
            }
        }
    }
    Ok(())
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}
