//! Payload templates: any JSON compiles to a template or to problems with pointers; a
//! template that compiles is evaluated, and one with no `.$` key evaluates to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stepstream::expr::template::Template;
use stepstream::value::Value;
use stepstream_fuzz::Data;

fn has_dollar_key(v: &Value) -> bool {
    match v {
        Value::Object(m) => m
            .iter()
            .any(|(k, x)| k.ends_with(".$") || has_dollar_key(x)),
        Value::Array(a) => a.iter().any(has_dollar_key),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let mut problems = Vec::new();
    let template = Template::compile(&value, "/Parameters", &mut problems);
    if !problems.is_empty() {
        assert!(problems
            .iter()
            .all(|p| p.pointer.starts_with("/Parameters")));
        return;
    }
    let d = Data::new();
    let out = template.eval(&d.env());
    if !has_dollar_key(&value) {
        assert_eq!(
            out.ok().as_ref(),
            Some(&value),
            "a constant template changed"
        );
    }
});
