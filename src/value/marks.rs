//! Where a document's `"`, `\` and control bytes are, found in one pass before it is read.
//!
//! Why: finding each string's end with [`super::len::special`] (eight bytes at a time,
//! its set-up and bounds checks paid per string) was ~29 % of reading the order
//! workload's request, most strings being a few bytes long. One pass over the whole text,
//! 64 bytes at a time with AVX-512 (32 with AVX2, sixteen without), leaves a bit per byte; each
//! string's end is then a masked word and a count of trailing zeros.

/// One bit per byte of a text (bit `i % 64` of word `i / 64`), set where the byte is `"`,
/// `\` or below 0x20: the bytes a JSON string's plain run stops at.
#[derive(Default)]
pub(crate) struct Marks(Vec<u64>);

/// Marks kept between documents up to this many words (a 256 KiB text): past it they
/// are freed with the reader.
pub(crate) const KEEP_WORDS: usize = 4096;

impl Marks {
    /// Marks the special bytes of `b`, replacing what was marked before.
    pub(crate) fn mark(&mut self, b: &[u8]) {
        self.0.clear();
        self.0.reserve(b.len().div_ceil(64));
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512bw") {
            // SAFETY: the CPU has AVX-512BW (checked just above).
            unsafe { self.mark_avx512(b) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            unsafe { self.mark_avx2(b) };
            return;
        }
        self.mark_portable(b);
    }

    /// Pushes the marks of each 64 bytes of `b`, the last ones padded with spaces (which
    /// are not special, so the padding marks nothing).
    #[inline(always)]
    fn fill(&mut self, b: &[u8], word: impl Fn(&[u8; 64]) -> u64) {
        let mut chunks = b.chunks_exact(64);
        for c in &mut chunks {
            self.0.push(word(c.try_into().expect("64 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut pad = [b' '; 64];
            pad[..rest.len()].copy_from_slice(rest);
            self.0.push(word(&pad));
        }
    }

    /// [`Marks::mark`] sixteen bytes at a time (byte by byte off x86_64).
    fn mark_portable(&mut self, b: &[u8]) {
        self.fill(b, word);
    }

    /// [`Marks::mark`] 64 bytes per instruction: the whole pass was ~3 % of an order
    /// execution sixteen bytes at a time.
    ///
    /// # Safety
    /// The CPU must have AVX-512BW.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512bw")]
    unsafe fn mark_avx512(&mut self, b: &[u8]) {
        use std::arch::x86_64::{
            __m512i, _mm512_cmpeq_epi8_mask, _mm512_cmple_epu8_mask, _mm512_loadu_si512,
            _mm512_set1_epi8,
        };
        let quote = _mm512_set1_epi8(b'"' as i8);
        let slash = _mm512_set1_epi8(b'\\' as i8);
        let below = _mm512_set1_epi8(0x1f);
        self.fill(b, |c| {
            // SAFETY: `c` holds the 64 bytes loaded.
            let x = unsafe { _mm512_loadu_si512(c.as_ptr().cast::<__m512i>()) };
            _mm512_cmpeq_epi8_mask(x, quote)
                | _mm512_cmpeq_epi8_mask(x, slash)
                | _mm512_cmple_epu8_mask(x, below)
        });
    }

    /// [`Marks::mark`] 32 bytes per instruction, for CPUs with AVX2 but not AVX-512 (the
    /// Zen 2 machines of later sessions): the pass over pass-reshape's 3 KB request took
    /// ~1,700 fewer instructions (of ~127,000 per execution) than sixteen bytes at a time.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn mark_avx2(&mut self, b: &[u8]) {
        let mut chunks = b.chunks_exact(64);
        for c in &mut chunks {
            // SAFETY: the CPU has AVX2 (the caller's promise); `c` holds 64 bytes.
            self.0.push(unsafe { word_avx2(c.as_ptr()) });
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // Padded with spaces, which are not special.
            let mut pad = [b' '; 64];
            pad[..rest.len()].copy_from_slice(rest);
            // SAFETY: as above; `pad` holds 64 bytes.
            self.0.push(unsafe { word_avx2(pad.as_ptr()) });
        }
    }

    /// The position of the first special byte at or after `from` in the text marked
    /// (its length if there is none): what `special(text, from)` returns.
    #[inline(always)]
    pub(crate) fn next(&self, from: usize, len: usize) -> usize {
        let mut w = from / 64;
        let Some(&first) = self.0.get(w) else {
            return len;
        };
        let mut bits = first & (!0u64 << (from % 64));
        loop {
            if bits != 0 {
                return w * 64 + bits.trailing_zeros() as usize;
            }
            w += 1;
            match self.0.get(w) {
                Some(&m) => bits = m,
                None => return len,
            }
        }
    }

    /// Words held, for the reader's choice to keep or free them.
    pub(crate) fn capacity(&self) -> usize {
        self.0.capacity()
    }
}

/// The marks of the 64 bytes at `p`, 32 per compare.
///
/// The mask is taken with `vpmovmskb` in `asm!`, not `_mm256_movemask_epi8`: LLVM read
/// the intrinsic's two 32-bit masks as one vector of 64 booleans, took it apart bit by bit
/// and put it together again with 64 byte inserts (12,000 more instructions per
/// pass-reshape execution than the SSE2 pass).
///
/// # Safety
/// The CPU must have AVX2, and `p` must start 64 readable bytes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn word_avx2(p: *const u8) -> u64 {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_min_epu8, _mm256_or_si256,
        _mm256_set1_epi8,
    };
    let quote = _mm256_set1_epi8(b'"' as i8);
    let slash = _mm256_set1_epi8(b'\\' as i8);
    let below = _mm256_set1_epi8(0x1f);
    let mut w = 0;
    for half in 0..2 {
        // SAFETY: the caller's 64 bytes hold both halves.
        let x = unsafe { _mm256_loadu_si256(p.add(32 * half).cast::<__m256i>()) };
        // `min(x, 0x1f) == x` (unsigned) is `x <= 0x1f`: a control byte.
        let hit = _mm256_or_si256(
            _mm256_or_si256(_mm256_cmpeq_epi8(x, quote), _mm256_cmpeq_epi8(x, slash)),
            _mm256_cmpeq_epi8(_mm256_min_epu8(x, below), x),
        );
        let mask: u32;
        // SAFETY: `vpmovmskb` reads only the register and writes only `mask`; the CPU has
        // AVX2 (the caller's promise).
        unsafe {
            std::arch::asm!(
                "vpmovmskb {mask:e}, {hit}",
                hit = in(ymm_reg) hit,
                mask = lateout(reg) mask,
                options(pure, nomem, nostack, preserves_flags),
            );
        }
        w |= u64::from(mask) << (32 * half);
    }
    w
}

/// The marks of 64 bytes.
#[cfg(target_arch = "x86_64")]
#[inline]
fn word(c: &[u8; 64]) -> u64 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of x86_64; each load reads 16 of the 64 bytes `c` holds.
    unsafe {
        let quote = _mm_set1_epi8(b'"' as i8);
        let slash = _mm_set1_epi8(b'\\' as i8);
        let below = _mm_set1_epi8(0x1f);
        let part = |at: usize| -> u64 {
            let x = _mm_loadu_si128(c.as_ptr().add(at).cast::<__m128i>());
            // `min(x, 0x1f) == x` (unsigned) is `x <= 0x1f`: a control byte.
            let hit = _mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, slash)),
                _mm_cmpeq_epi8(_mm_min_epu8(x, below), x),
            );
            u64::from(_mm_movemask_epi8(hit) as u16)
        };
        part(0) | part(16) << 16 | part(32) << 32 | part(48) << 48
    }
}

/// The marks of 64 bytes.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn word(c: &[u8; 64]) -> u64 {
    c.iter().enumerate().fold(0, |w, (i, &b)| {
        w | u64::from(b == b'"' || b == b'\\' || b < 0x20) << i
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::len::special;

    #[test]
    fn the_marks_find_what_the_scan_finds_from_every_position() {
        // Lengths around the 16- and 64-byte steps, a special byte (or none) at every
        // place, and bytes on both sides of each test: multi-byte UTF-8, DEL, space.
        for len in [0, 1, 15, 16, 17, 63, 64, 65, 127, 128, 130, 200] {
            for at in (0..len).chain([usize::MAX]) {
                for c in [b'"', b'\\', 0, 0x1f, b'\n'] {
                    let mut b: Vec<u8> = (0..len)
                        .map(|i| [b'a', 0x20, 0x7f, 0xc3, 0xa9, b'!', b'~'][i % 7])
                        .collect();
                    if at < len {
                        b[at] = c;
                    }
                    let (mut m, mut portable) = (Marks::default(), Marks::default());
                    m.mark(&b);
                    portable.mark_portable(&b);
                    // The AVX2 pass too where `mark` picks AVX-512.
                    #[cfg(target_arch = "x86_64")]
                    let avx2 = std::arch::is_x86_feature_detected!("avx2").then(|| {
                        let mut m = Marks::default();
                        // SAFETY: the CPU has AVX2 (checked just above).
                        unsafe { m.mark_avx2(&b) };
                        m
                    });
                    #[cfg(not(target_arch = "x86_64"))]
                    let avx2: Option<Marks> = None;
                    for from in 0..=len {
                        let want = special(&b, from);
                        assert_eq!(m.next(from, len), want, "{len} {at} {c} {from}");
                        assert_eq!(portable.next(from, len), want, "{len} {at} {c} {from}");
                        if let Some(avx2) = &avx2 {
                            assert_eq!(avx2.next(from, len), want, "{len} {at} {c} {from}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn marks_are_replaced_by_the_next_text() {
        let mut m = Marks::default();
        m.mark(br#"{"a":"b"}"#);
        m.mark(b"abc");
        assert_eq!(m.next(0, 3), 3);
    }
}
