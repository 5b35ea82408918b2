//! Which offsets above a commit position already have an acknowledged output, written into
//! the offset commit's metadata string so that after a crash the next owner of the partition
//! skips them instead of running them again (the idea of Confluent's Parallel Consumer).
//!
//! The text is `ss1:` followed by base64url (no padding) of LEB128 varints: the committed
//! offset, then one entry per run of pending offsets (the first run starts at the committed
//! offset, which is always pending) and the run of acknowledged offsets after it. An entry is
//! `acked << 1 | long`, followed by `pending - 2` only when `long` is set: the common case, a
//! single slow request with the finished ones after it, takes one byte for up to 63
//! acknowledged offsets. A reader takes only the acknowledged runs. When the runs do not fit
//! the size budget the tail is dropped, so the text may claim fewer offsets, never one that
//! is pending.

use std::ops::Range;

use base64::Engine as _;

/// Marks our encoding; metadata without it (another tool's, or none) is ignored.
const PREFIX: &str = "ss1:";

pub use crate::config::MAX_METADATA;

/// Metadata longer than this is not ours: it is not decoded at all.
const MAX_READ: usize = 8192;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The metadata for a commit at the lowest pending offset.
///
/// `pending` are the offsets dispatched and not yet acknowledged, ascending; every offset in
/// `[first pending, next)` that is not among them is acknowledged (or does not exist, which
/// is as good: there is nothing to run there). Returns an empty string when nothing above
/// the commit position is acknowledged or `max_len` leaves no room.
pub fn encode(pending: impl IntoIterator<Item = i64>, next: i64, max_len: usize) -> String {
    let mut pending = pending.into_iter();
    let Some(base) = pending.next() else {
        return String::new();
    };
    // Base64 turns 3 bytes into 4 characters.
    let budget = max_len.saturating_sub(PREFIX.len()) / 4 * 3;
    let mut bytes = Vec::with_capacity(budget.min(256));
    if !push_varint(&mut bytes, base as u64, budget) {
        return String::new();
    }
    let header = bytes.len();
    let (mut run_start, mut run_end) = (base, base + 1);
    let emit = |bytes: &mut Vec<u8>, pending_len: i64, acked_len: i64| -> bool {
        let before = bytes.len();
        let long = pending_len > 1;
        let Some(head) = (acked_len as u64).checked_mul(2) else {
            return false;
        };
        let mut fits = push_varint(bytes, head | u64::from(long), budget);
        if long {
            fits = fits && push_varint(bytes, (pending_len - 2) as u64, budget);
        }
        if !fits {
            bytes.truncate(before);
        }
        fits
    };
    let mut full = false;
    for p in pending {
        if p < run_end {
            // Not ascending: the caller broke the contract; claim nothing past here.
            full = true;
            break;
        }
        if p == run_end {
            run_end += 1;
            continue;
        }
        if !emit(&mut bytes, run_end - run_start, p - run_end) {
            full = true;
            break;
        }
        (run_start, run_end) = (p, p + 1);
    }
    if !full && next > run_end {
        emit(&mut bytes, run_end - run_start, next - run_end);
    }
    if bytes.len() == header {
        return String::new();
    }
    let mut out = String::with_capacity(PREFIX.len() + bytes.len() * 4 / 3 + 4);
    out.push_str(PREFIX);
    B64.encode_string(&bytes, &mut out);
    out
}

/// The acknowledged offset ranges recorded in `metadata` for a commit at `committed`.
/// Anything that is not our encoding for exactly this position yields no ranges.
pub fn decode(metadata: &[u8], committed: i64) -> Vec<Range<i64>> {
    decode_checked(metadata, committed).unwrap_or_default()
}

fn decode_checked(metadata: &[u8], committed: i64) -> Option<Vec<Range<i64>>> {
    if metadata.len() > MAX_READ {
        return None;
    }
    let body = metadata.strip_prefix(PREFIX.as_bytes())?;
    let bytes = B64.decode(body).ok()?;
    let mut at = 0;
    let base = i64::try_from(read_varint(&bytes, &mut at)?).ok()?;
    if base != committed || base < 0 {
        return None;
    }
    let mut ranges = Vec::new();
    let mut pos = base;
    while at < bytes.len() {
        let head = read_varint(&bytes, &mut at)?;
        let acked = i64::try_from(head >> 1).ok()?;
        let pending = if head & 1 == 1 {
            i64::try_from(read_varint(&bytes, &mut at)?)
                .ok()?
                .checked_add(2)?
        } else {
            1
        };
        // The encoder never writes an empty run: such input is not ours.
        if acked == 0 {
            return None;
        }
        let start = pos.checked_add(pending)?;
        let end = start.checked_add(acked)?;
        ranges.push(start..end);
        pos = end;
    }
    Some(ranges)
}

/// Appends `v` as LEB128 if the result stays within `budget` bytes.
fn push_varint(out: &mut Vec<u8>, mut v: u64, budget: usize) -> bool {
    let mut buf = [0u8; 10];
    let mut n = 0;
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            buf[n] = b;
            n += 1;
            break;
        }
        buf[n] = b | 0x80;
        n += 1;
    }
    if out.len() + n > budget {
        return false;
    }
    out.extend_from_slice(&buf[..n]);
    true
}

fn read_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        let part = u64::from(b & 0x7f);
        // The tenth byte may carry only the top bit of a u64.
        if shift == 63 && part > 1 {
            return None;
        }
        v |= part << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acked_set(ranges: &[Range<i64>]) -> Vec<i64> {
        ranges.iter().flat_map(|r| r.clone()).collect()
    }

    #[test]
    fn gaps_between_pending_offsets_round_trip() {
        // Pending 100, 101, 105, 200; dispatched up to 209.
        let text = encode([100, 101, 105, 200], 210, MAX_METADATA);
        assert!(text.starts_with("ss1:"), "{text}");
        let ranges = decode(text.as_bytes(), 100);
        assert_eq!(ranges, vec![102..105, 106..200, 201..210]);
    }

    #[test]
    fn nothing_acknowledged_above_the_watermark_gives_empty_metadata() {
        assert_eq!(encode([7, 8, 9], 10, MAX_METADATA), "");
        assert_eq!(encode(std::iter::empty(), 10, MAX_METADATA), "");
        assert!(decode(b"", 7).is_empty());
    }

    #[test]
    fn a_single_pending_offset_with_everything_after_it_acknowledged() {
        let text = encode([5], 1_000_000, MAX_METADATA);
        assert_eq!(decode(text.as_bytes(), 5), vec![6..1_000_000]);
    }

    #[test]
    fn long_pending_runs_round_trip() {
        let pending: Vec<i64> = (0..1000).chain(1500..1502).chain(2000..2003).collect();
        let text = encode(pending.iter().copied(), 3000, MAX_METADATA);
        assert_eq!(
            decode(text.as_bytes(), 0),
            vec![1000..1500, 1502..2000, 2003..3000]
        );
    }

    #[test]
    fn metadata_for_another_commit_position_is_ignored() {
        let text = encode([100, 102], 103, MAX_METADATA);
        assert_eq!(decode(text.as_bytes(), 100), vec![101..102]);
        assert!(decode(text.as_bytes(), 99).is_empty());
        assert!(decode(text.as_bytes(), 101).is_empty());
    }

    #[test]
    fn an_overflowing_encoding_keeps_a_prefix_and_never_claims_a_pending_offset() {
        // Every other offset pending: the worst case for run lengths.
        let pending: Vec<i64> = (0..100_000).map(|i| 1_000 + 2 * i).collect();
        let next = 1_000 + 2 * 100_000;
        for max in [0, 4, 8, 9, 16, 100, 333, 1024, MAX_METADATA, 4096] {
            let text = encode(pending.iter().copied(), next, max);
            assert!(text.len() <= max, "{} > {max}", text.len());
            let claimed = acked_set(&decode(text.as_bytes(), 1_000));
            let pending_set: std::collections::HashSet<i64> = pending.iter().copied().collect();
            assert!(claimed.iter().all(|o| !pending_set.contains(o)));
            // What is claimed is a prefix of the truth: the odd offsets from 1001 on.
            let want: Vec<i64> = (0..claimed.len() as i64).map(|i| 1_001 + 2 * i).collect();
            assert_eq!(claimed, want, "max {max}");
        }
        // One byte per slow request with its finished neighbour.
        let text = encode(pending.iter().copied(), next, MAX_METADATA);
        assert!(decode(text.as_bytes(), 1_000).len() > 2_900);
    }

    #[test]
    fn every_pending_pattern_round_trips_exactly_when_it_fits() {
        // All subsets of 12 offsets that contain the first: pending or acknowledged.
        for mask in 0u32..(1 << 11) {
            let pending: Vec<i64> = std::iter::once(50)
                .chain(
                    (0..11)
                        .filter(|b| mask & (1 << b) != 0)
                        .map(|b| 51 + b as i64),
                )
                .collect();
            let text = encode(pending.iter().copied(), 62, MAX_METADATA);
            let claimed = acked_set(&decode(text.as_bytes(), 50));
            let want: Vec<i64> = (50..62).filter(|o| !pending.contains(o)).collect();
            assert_eq!(claimed, want, "pending {pending:?}");
        }
    }

    #[test]
    fn garbage_metadata_is_ignored() {
        let long = format!("ss1:{}", "A".repeat(10_000));
        let cases: Vec<&[u8]> = vec![
            b"",
            b"hello",
            b"ss1:",
            b"ss1:!!!not base64",
            b"ss2:ZA",
            b"{\"json\": true}",
            b"\xff\xfe\x00garbage",
            // A varint that never ends.
            b"ss1:_____w",
            long.as_bytes(),
        ];
        for c in cases {
            assert!(decode(c, 0).is_empty(), "{:?}", String::from_utf8_lossy(c));
        }
        let text = |values: &[u64]| {
            let mut bytes = Vec::new();
            for v in values {
                push_varint(&mut bytes, *v, 100);
            }
            format!("ss1:{}", B64.encode(&bytes))
        };
        // Well-formed varints but an empty acknowledged run: not ours.
        assert!(decode(text(&[0, 0]).as_bytes(), 0).is_empty());
        assert!(decode(text(&[0, 1, 5]).as_bytes(), 0).is_empty());
        // Runs that overflow i64.
        assert!(decode(text(&[0, u64::MAX - 1]).as_bytes(), 0).is_empty());
        assert!(decode(text(&[i64::MAX as u64, 2, 2]).as_bytes(), i64::MAX).is_empty());
        assert!(decode(text(&[0, 3, u64::MAX]).as_bytes(), 0).is_empty());
        // A long pending run whose length is missing.
        assert!(decode(text(&[3, 3]).as_bytes(), 3).is_empty());
        // A negative base.
        assert!(decode(text(&[u64::MAX, 2]).as_bytes(), -1).is_empty());
        // Well-formed: one pending, one acknowledged; three pending, two acknowledged.
        assert_eq!(
            decode(text(&[10, 2, 5, 1]).as_bytes(), 10),
            vec![11..12, 15..17]
        );
    }

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut bytes = Vec::new();
            assert!(push_varint(&mut bytes, v, 10));
            let mut at = 0;
            assert_eq!(read_varint(&bytes, &mut at), Some(v));
            assert_eq!(at, bytes.len());
        }
        let mut bytes = Vec::new();
        assert!(!push_varint(&mut bytes, 300, 1));
        assert!(bytes.is_empty());
    }
}
