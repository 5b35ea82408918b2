//! The live line on stderr and how figures read in it.

use std::io::{IsTerminal, Write as _};
use std::time::{Duration, Instant};

use super::TICK;

/// The live line on stderr: rewritten in place on a terminal, one line per tick otherwise.
pub(super) struct Progress {
    terminal: bool,
    next_print: Instant,
    /// Results and time at the previous line, for the current rate.
    window_start: (u64, Instant),
    /// Results per second since the previous line.
    pub(super) rate: f64,
    printed: bool,
}

impl Progress {
    pub(super) fn new(now: Instant) -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            next_print: now + TICK,
            window_start: (0, now),
            rate: 0.0,
            printed: false,
        }
    }

    /// True when a line is due; then updates the rate to the one since the previous line.
    pub(super) fn due(&mut self, now: Instant, results: u64) -> bool {
        if now < self.next_print {
            return false;
        }
        let (before, since) = self.window_start;
        let seconds = now.saturating_duration_since(since).as_secs_f64();
        if seconds > 0.0 {
            self.rate = results.saturating_sub(before) as f64 / seconds;
        }
        self.window_start = (results, now);
        self.next_print = now + TICK;
        true
    }

    pub(super) fn print(&mut self, line: &str) {
        let mut stderr = std::io::stderr().lock();
        // Progress output is best effort: a closed stderr must not stop the run.
        let _ = if self.terminal {
            write!(stderr, "\r{line}\x1b[K")
        } else {
            writeln!(stderr, "{line}")
        };
        let _ = stderr.flush();
        self.printed = true;
    }

    /// Makes room for a message of its own line.
    pub(super) fn clear_line(&mut self) {
        if self.terminal && self.printed {
            eprint!("\r\x1b[K");
        }
    }

    /// Prints the last line and leaves the cursor below it.
    pub(super) fn finish(&mut self, line: &str) {
        self.print(line);
        if self.terminal {
            eprintln!();
        }
    }
}

/// `1234567` as `1,234,567`.
pub(super) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let head = match digits.len() % 3 {
        0 => 3.min(digits.len()),
        short => short,
    };
    let (first, rest) = digits.split_at(head);
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    out.push_str(first);
    for group in rest.as_bytes().chunks(3) {
        out.push(',');
        out.push_str(std::str::from_utf8(group).expect("decimal digits are ASCII"));
    }
    out
}

/// A latency as people read it: `0.35 ms`, `1.2 ms`, `2.50 s`.
pub(super) fn format_latency(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_like_the_live_line() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(4500), "4,500");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(format_latency(Duration::from_micros(350)), "0.35 ms");
        assert_eq!(format_latency(Duration::from_micros(1_200)), "1.2 ms");
        assert_eq!(format_latency(Duration::from_millis(2_500)), "2.50 s");
    }
}
