//! Intrinsic functions: parse any text; a call that parses is evaluated against a
//! document holding every JSON type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stepstream::expr::intrinsic::{is_intrinsic, Intrinsic};
use stepstream_fuzz::Data;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = is_intrinsic(text);
    let Ok(f) = Intrinsic::parse(text) else {
        return;
    };
    let _ = f.name();
    let d = Data::new();
    if let Err(e) = f.eval(&d.env()) {
        let name = e.error.unwrap_or_default();
        assert!(
            name.starts_with("States."),
            "unexpected error name {name:?}"
        );
    }
});
