//! Timestamps: parse any text; an accepted timestamp converts to chrono and back to the
//! same instant, and its UTC rendering parses to the same instant again.
#![no_main]

use chrono::SecondsFormat;
use libfuzzer_sys::fuzz_target;
use stepstream::expr::timestamp::{parse, Timestamp};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(t) = parse(text) else {
        return;
    };
    let utc = t.to_utc();
    assert_eq!(Timestamp::from_utc(utc), t, "chrono round trip of {text}");
    let written = utc.to_rfc3339_opts(SecondsFormat::Nanos, true);
    // A time written with an offset may fall in year -0001 or 10000 in UTC: four-digit
    // years only are ASL timestamps.
    if written.len() == "0000-00-00T00:00:00.000000000Z".len() {
        assert_eq!(parse(&written), Some(t), "{text} rendered as {written}");
    }
});
