//! Request decoding: any record value with any combination of bound topic and override
//! headers is either a request or a named rejection.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stepstream::pipeline::request::{decode, errors, RequestLimits};

const LIMITS: RequestLimits = RequestLimits {
    max_bytes: 256 * 1024,
    max_depth: 64,
};

fuzz_target!(|data: &[u8]| {
    // The first byte chooses which of bound topic / header machine / header name is set.
    let Some((&flags, value)) = data.split_first() else {
        return;
    };
    let bound = (flags & 1 != 0).then_some("bound-machine");
    // Flag 16 takes the name header from the data itself, so its bytes are fuzzed too.
    let header_machine = (flags & 2 != 0).then_some(b"header-machine".as_slice());
    let header_name = match (flags & 4 != 0, flags & 16 != 0) {
        (true, true) => Some(&value[..value.len().min(100)]),
        (true, false) => Some(b"header-name".as_slice()),
        _ => None,
    };
    let value = (flags & 8 == 0).then_some(value);
    match decode(value, bound, header_machine, header_name, LIMITS) {
        Ok(r) => {
            assert!(!r.state_machine.is_empty());
            if let Some(b) = bound {
                assert_eq!(r.state_machine, b);
            } else if header_machine.is_some() {
                assert_eq!(r.state_machine, "header-machine");
            }
        }
        Err(rej) => {
            assert!(
                [
                    errors::INVALID_REQUEST,
                    errors::UNKNOWN_STATE_MACHINE,
                    errors::DATA_LIMIT_EXCEEDED,
                    errors::INVALID_ENCODING,
                    errors::NESTING_TOO_DEEP,
                ]
                .contains(&rej.error),
                "unnamed rejection {rej:?}"
            );
            assert!(!rej.cause.is_empty());
        }
    }
});
