//! The hand JSON reader against serde_json: for any bytes, the same value (written out the
//! same) or the same error message, and a counted size equal to the length written.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ours = stepstream::value::from_slice(data);
    let theirs: Result<serde_json::Value, _> = serde_json::from_slice(data);
    match (ours, theirs) {
        (Ok(a), Ok(b)) => {
            let written = stepstream::value::to_vec(&a);
            assert_eq!(written, serde_json::to_vec(&b).unwrap());
            let size = stepstream::expr::size::json_size(&a, usize::MAX);
            assert_eq!(size, written.len());
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        (a, b) => panic!("ours ok: {}, serde_json ok: {}", a.is_ok(), b.is_ok()),
    }
});
