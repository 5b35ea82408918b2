//! JSONPath: parse any text; a path that parses is looked up, evaluated and written into
//! a document; a definite path's borrowed lookup agrees with its evaluation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stepstream::expr::path::Path;
use stepstream_fuzz::Data;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(path) = Path::parse(text) else {
        return;
    };
    assert_eq!(path.text(), text);
    let d = Data::new();
    let env = d.env();
    let got = path.get(&env);
    let evaluated = path.eval(&env);
    if let Some(v) = got {
        assert_eq!(
            evaluated.as_deref(),
            Some(v),
            "get and eval disagree on {text}"
        );
    }
    let _ = path.eval_in(&d.context.to_value());
    if path.is_reference() {
        let mut target = d.input.clone();
        let _ = path.set(&mut target, stepstream::json!({"w": 1}));
    }
});
