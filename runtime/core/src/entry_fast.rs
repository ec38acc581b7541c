//! The decode of the commonest journal entry without serde's machinery.
//!
//! A cold load (a restarted engine, a cold Lambda instance) decodes every
//! entry of the run, and most of a run is activity completions: profiled,
//! serde_json's field and variant matching was most of a 1,000-step cold
//! load. This reads exactly the bytes [`crate::entry::encode`] writes for an
//! `activity-completed` with an `Ok` payload,
//!
//! `{"v":1,"at":A,"e":{"activity-completed":{"seq":S,"name":"N","input_hash":H,"attempts":T,"result":{"Ok":P}}}}`
//!
//! with `N` free of escapes and `P` one JSON value without surrounding
//! space (checked whole, as serde's `RawValue` checks it), and gives up (`None`) on anything else,
//! which the serde decode then reads: the two agree on every input where
//! this one answers (a property test in `entry.rs` holds them to it).

use crate::entry::{Entry, Event, JOURNAL_FORMAT_VERSION};
use crate::{Payload, Timestamp};

/// The entry at `index` if `bytes` is the canonical encoding above.
pub(crate) fn decode(index: u32, bytes: &[u8]) -> Option<Entry> {
    let mut r = Reader { b: bytes, i: 0 };
    if JOURNAL_FORMAT_VERSION != 1 {
        return None;
    }
    r.lit(b"{\"v\":1,\"at\":")?;
    let at = r.u64()?;
    r.lit(b",\"e\":{\"activity-completed\":{\"seq\":")?;
    let seq = u32::try_from(r.u64()?).ok()?;
    r.lit(b",\"name\":\"")?;
    let name = r.plain_str()?;
    r.lit(b",\"input_hash\":")?;
    let input_hash = r.u64()?;
    r.lit(b",\"attempts\":")?;
    let attempts = u32::try_from(r.u64()?).ok()?;
    r.lit(b",\"result\":{\"Ok\":")?;
    let rest = &bytes[r.i..];
    let raw = rest.strip_suffix(b"}}}}")?;
    // One JSON value, whole (leading or trailing space included, as
    // serde's RawValue keeps it), and not the `{"$bytes": ...}` form,
    // which the Payload's own decode turns into bytes.
    let text = std::str::from_utf8(raw).ok()?;
    let spaced = |c: Option<&u8>| c.is_none_or(|c| c.is_ascii_whitespace());
    if spaced(raw.first())
        || spaced(raw.last())
        || text.contains("$bytes")
        || serde_json::from_str::<serde::de::IgnoredAny>(text).is_err()
    {
        return None;
    }
    Some(Entry {
        index,
        at: Timestamp::from_millis(at),
        event: Event::ActivityCompleted {
            seq,
            name: name.to_owned(),
            input_hash,
            attempts,
            result: Ok(Payload::new(raw)),
        },
    })
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn lit(&mut self, l: &[u8]) -> Option<()> {
        self.b[self.i..].starts_with(l).then(|| self.i += l.len())
    }

    /// A JSON unsigned integer as serde_json writes it: digits, no sign,
    /// no leading zero unless it is `0`, within `u64`.
    fn u64(&mut self) -> Option<u64> {
        let start = self.i;
        let mut v: u64 = 0;
        while let Some(&c) = self.b.get(self.i) {
            if !c.is_ascii_digit() {
                break;
            }
            v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            self.i += 1;
        }
        let len = self.i - start;
        (len > 0 && (len == 1 || self.b[start] != b'0')).then_some(v)
    }

    /// A string's characters up to its closing quote, which must come
    /// before any escape or control character (else `None`).
    fn plain_str(&mut self) -> Option<&'a str> {
        let start = self.i;
        while let Some(&c) = self.b.get(self.i) {
            match c {
                b'"' => {
                    let s = std::str::from_utf8(&self.b[start..self.i]).ok()?;
                    self.i += 1;
                    return Some(s);
                }
                b'\\' | 0..=0x1f => return None,
                _ => self.i += 1,
            }
        }
        None
    }
}
