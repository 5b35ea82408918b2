//! ASL parser and validator: any text either becomes a plan or a list of problems, each
//! with a JSON pointer; nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stepstream::asl::parse::parse_definition_str;
use stepstream::compile::plan::Plan;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_definition_str(text) {
        Ok(_) => {
            let def: serde_json::Value =
                serde_json::from_str(text).expect("a parsed definition is valid JSON");
            // The model is accepted, so compiling it into a plan must succeed too.
            assert!(
                Plan::load(&def).is_ok(),
                "parsed but failed to load: {text}"
            );
        }
        Err(problems) => {
            assert!(!problems.is_empty());
            for p in &problems {
                assert!(
                    p.pointer.is_empty() || p.pointer.starts_with('/'),
                    "not a JSON pointer: {:?}",
                    p.pointer
                );
                let _ = p.to_string();
            }
        }
    }
});
