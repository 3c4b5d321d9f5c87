//! JSON-lines input: bounded line reading and the signature-line format.
//!
//! Input comes from outside the process, so every line is bounded before it is allocated and
//! every defect becomes a reason, never a panic.

use std::io::{self, BufRead};

use serde::Deserialize;
use serde_json::Value;
use verity_drivers::{Request, Tag};

/// The longest line `verity` reads by default: room for a 1 MiB message in hex with keys,
/// signature and an id.
pub const DEFAULT_MAX_LINE: usize = 2 * 1024 * 1024 + 4096;

/// What one read produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line is in the buffer (without its newline).
    Complete,
    /// The line was longer than the bound; it was skipped up to its newline and its first
    /// bytes dropped. Carries its full length.
    TooLong(usize),
    /// The input has ended.
    End,
}

/// Reads the next line into `buf` (cleared first), never holding more than `max` bytes of it.
pub fn read_bounded(reader: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<Line> {
    buf.clear();
    let mut length = 0usize;
    let mut seen_any = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(match (seen_any, length > max) {
                (false, _) => Line::End,
                (true, true) => {
                    buf.clear();
                    Line::TooLong(length)
                }
                (true, false) => Line::Complete,
            });
        }
        seen_any = true;
        let (chunk, newline) = match available.iter().position(|&b| b == b'\n') {
            Some(at) => (&available[..at], Some(at)),
            None => (available, None),
        };
        if length + chunk.len() <= max {
            buf.extend_from_slice(chunk);
        }
        length += chunk.len();
        let consumed = newline.map_or(chunk.len(), |at| at + 1);
        reader.consume(consumed);
        if newline.is_some() {
            if length > max {
                buf.clear();
                return Ok(Line::TooLong(length));
            }
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(Line::Complete);
        }
    }
}

/// The fields `verity verify` reads from a line; others are ignored.
#[derive(Deserialize)]
struct SignatureLine {
    #[serde(default)]
    id: Option<Value>,
    msg: Option<String>,
    pubkey: Option<String>,
    sig: Option<String>,
}

/// A line that parsed into a request, or the reason it did not, with its `id` when present.
#[derive(Debug)]
pub struct Parsed {
    /// The line's `id` field, copied to the output as it was.
    pub id: Option<Value>,
    /// The request, or why there is none.
    pub request: Result<Request, String>,
}

/// Parses one signature line (`{"msg": hex, "pubkey": hex, "sig": hex, ...}`).
pub fn parse_signature_line(line: &[u8], tag: Tag) -> Parsed {
    let fields: SignatureLine = match serde_json::from_slice(line) {
        Ok(fields) => fields,
        Err(e) => {
            return Parsed {
                id: None,
                request: Err(format!("not a JSON object with hex fields: {e}")),
            }
        }
    };
    let request = (|| {
        let public_key = fixed_hex::<32>("pubkey", fields.pubkey.as_deref())?;
        let signature = fixed_hex::<64>("sig", fields.sig.as_deref())?;
        let message = hex::decode(fields.msg.as_deref().ok_or("missing field `msg`")?)
            .map_err(|e| format!("`msg` is not hex: {e}"))?;
        Ok(Request::new(tag, public_key, signature, message))
    })();
    Parsed {
        id: fields.id,
        request,
    }
}

fn fixed_hex<const N: usize>(name: &str, text: Option<&str>) -> Result<[u8; N], String> {
    let text = text.ok_or_else(|| format!("missing field `{name}`"))?;
    if text.len() != 2 * N {
        return Err(format!(
            "`{name}` must be {} hex digits ({N} bytes), got {}",
            2 * N,
            text.len()
        ));
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).map_err(|e| format!("`{name}` is not hex: {e}"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<(Line, Vec<u8>)> {
        let mut reader = io::BufReader::with_capacity(4, input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            let line = read_bounded(&mut reader, &mut buf, max).expect("reading a slice");
            if line == Line::End {
                return out;
            }
            out.push((line, buf.clone()));
        }
    }

    #[test]
    fn long_lines_are_skipped_whole_and_the_next_line_is_intact() {
        let got = lines(b"short\nthis one is far too long\r\nok\r\nlast", 8);
        assert_eq!(
            got,
            vec![
                (Line::Complete, b"short".to_vec()),
                (Line::TooLong(25), Vec::new()),
                (Line::Complete, b"ok".to_vec()),
                (Line::Complete, b"last".to_vec()),
            ]
        );
    }

    #[test]
    fn an_unterminated_long_last_line_is_reported() {
        assert_eq!(
            lines(b"0123456789", 4),
            vec![(Line::TooLong(10), Vec::new())]
        );
    }

    #[test]
    fn defects_get_reasons() {
        let reason = |line: &str| {
            parse_signature_line(line.as_bytes(), Tag::new(0))
                .request
                .expect_err("defective")
        };
        assert!(reason("{").contains("not a JSON object"));
        assert!(reason(r#"{"msg":"","sig":"00"}"#).contains("missing field `pubkey`"));
        let key = "00".repeat(32);
        assert!(
            reason(&format!(r#"{{"msg":"","pubkey":"{key}","sig":"00"}}"#))
                .contains("`sig` must be 128 hex digits")
        );
        let sig = "zz".repeat(64);
        assert!(
            reason(&format!(r#"{{"msg":"","pubkey":"{key}","sig":"{sig}"}}"#))
                .contains("`sig` is not hex")
        );
    }

    #[test]
    fn the_id_survives_a_defective_request() {
        let parsed = parse_signature_line(br#"{"id": [1, "x"], "msg": "0"}"#, Tag::new(0));
        assert_eq!(parsed.id, Some(serde_json::json!([1, "x"])));
        assert!(parsed.request.is_err());
    }
}
