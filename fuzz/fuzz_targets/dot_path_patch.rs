//! Applies arbitrary dot-path patches to arbitrary bytes.
//!
//! Never panics; when patching succeeds the output is JSON and the last path set reads back the
//! value set there.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use stoker_core::patch::{apply_patches, infer_value, json_pointer};

/// A patch job: the file's bytes (or a fixed document, so that deep paths are reached without
/// the fuzzer first having to find valid JSON) and the `(dot path, raw value)` pairs.
#[derive(Debug, Arbitrary)]
struct Input {
    use_base_document: bool,
    bytes: Vec<u8>,
    sets: Vec<(String, String)>,
}

const BASE: &[u8] = br#"{"connection": {"host": "localhost", "port": 5432}, "items": [{"name": "a"}, [1, 2], "s", null], "flag": true}
"#;

fuzz_target!(|input: Input| {
    let bytes = if input.use_base_document {
        BASE
    } else {
        &input.bytes[..]
    };
    let Ok(out) = apply_patches("fuzz.json", bytes, &input.sets) else {
        return;
    };
    let Some((path, raw)) = input.sets.last() else {
        assert_eq!(out, bytes, "no patches leave the bytes unchanged");
        return;
    };
    let doc: Value = match serde_json::from_slice(&out) {
        Ok(doc) => doc,
        Err(err) => panic!("patched output is not JSON: {err}"),
    };
    assert_eq!(out.ends_with(b"\n"), bytes.ends_with(b"\n"));
    // Compare through the same serialization the output went through (floats are printed and
    // parsed back, which `serde_json` does not promise to round-trip exactly).
    let expected: Option<Value> = serde_json::to_string(&infer_value(raw))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    assert_eq!(doc.pointer(&json_pointer(path)), expected.as_ref());
});
