//! Applies arbitrary sjson-path patches to arbitrary bytes, in place.
//!
//! Never panics. When a patch succeeds: the output parses as JSON and equals the input's value
//! with the path set (`set_path`), and the output is the input with exactly one byte range
//! replaced (`plan_patch`'s splice), so every byte outside the edited span is unchanged.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use stoker_core::patch::{apply_patches, infer_value, plan_patch, set_path};

/// A patch job: the file's bytes (or a fixed document, so that deep paths are reached without
/// the fuzzer first having to find valid JSON) and the `(path, raw value)` pairs.
#[derive(Debug, Arbitrary)]
struct Input {
    use_base_document: bool,
    bytes: Vec<u8>,
    sets: Vec<(String, String)>,
}

const BASE: &[u8] = b"{\r\n  \"connection\": {\"host\": \"localhost\", \"port\": 5432},\r\n  \"items\": [{\"name\": \"a\"}, [1, 2.50], \"s\", null, []],\r\n  \"a.b\": {},\r\n  \"n\": 1e3, \"u\": \"\\u00e9\",\r\n  \"flag\": true\r\n}\r\n";

/// Whether two values are equal, floats up to a few ULPs: the inserted text is the value
/// printed by `serde_json`, and without its `float_roundtrip` feature `serde_json` does not
/// promise to parse that back to the same `f64` (nor to parse the patch's raw text exactly).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => x == y || (x - y).abs() <= x.abs().max(y.abs()) * 1e-14,
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fuzz_target!(|input: Input| {
    let mut bytes = if input.use_base_document {
        BASE.to_vec()
    } else {
        input.bytes.clone()
    };
    if input.sets.is_empty() {
        let out = apply_patches("fuzz.json", &bytes, &input.sets).ok();
        assert_eq!(
            out.as_deref(),
            Some(&bytes[..]),
            "no patches leave the bytes unchanged"
        );
        return;
    }
    for (path, raw) in &input.sets {
        let Ok(splice) = plan_patch("fuzz.json", &bytes, path, raw) else {
            return;
        };
        let mut expected: Value = match serde_json::from_slice(&bytes) {
            Ok(doc) => doc,
            Err(err) => panic!("plan_patch accepted bytes that are not JSON: {err}"),
        };
        if let Err(err) = set_path(&mut expected, path, infer_value(raw)) {
            panic!("plan_patch accepted a path set_path refuses: {err}");
        }
        let out = match splice {
            None => bytes.clone(),
            Some(splice) => {
                assert!(splice.range.start <= splice.range.end && splice.range.end <= bytes.len());
                let mut out = bytes[..splice.range.start].to_vec();
                out.extend_from_slice(&splice.text);
                out.extend_from_slice(&bytes[splice.range.end..]);
                out
            }
        };
        let doc: Value = match serde_json::from_slice(&out) {
            Ok(doc) => doc,
            Err(err) => panic!("patched output is not JSON: {err}"),
        };
        assert!(same(&doc, &expected), "{doc:?} != {expected:?}");
        let applied = apply_patches("fuzz.json", &bytes, &[(path.clone(), raw.clone())]).ok();
        assert_eq!(
            applied.as_deref(),
            Some(&out[..]),
            "apply_patches applies the splice"
        );
        bytes = out;
    }
});
