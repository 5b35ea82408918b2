//! CPU time of the calling thread and of the process, so the feeder can say how much of
//! the machine it took from the pipeline it measures.

use std::time::Duration;

/// CPU time (user + system) the calling thread has used.
pub(super) fn thread() -> Duration {
    usage(libc::RUSAGE_THREAD)
}

/// CPU time (user + system) every thread of the process has used.
pub(super) fn process() -> Duration {
    usage(libc::RUSAGE_SELF)
}

fn usage(who: libc::c_int) -> Duration {
    // SAFETY: getrusage writes only into the struct it is given, which is plain old data.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_work_shows_in_the_thread_and_the_process() {
        let (t0, p0) = (thread(), process());
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        assert!(thread() > t0);
        assert!(process() >= p0 + (thread() - t0) / 2);
    }
}
