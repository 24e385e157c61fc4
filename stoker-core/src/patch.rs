//! JSON field patches by dot path: `connection.host`, `items.0.name`.
//!
//! A mapping's `patches` set fields in JSON files after templates are rendered. A dot path is
//! a list of segments separated by `.`: on an object a segment is a key (created if missing),
//! on an array it is a decimal index. Keys that contain a `.` cannot be addressed.
//!
//! Patched files are written back pretty-printed with a 2-space indent, as Ignition writes
//! them. Keys come out in the order of `serde_json`'s map: sorted, unless some crate in the
//! build enables `serde_json`'s `preserve_order` feature, in which case the input order is
//! kept. Ignition does not give JSON key order any meaning.

use serde_json::Value;

use crate::error::{Error, Result};

/// The deepest nesting of arrays and objects [`set_path`] produces: the most `serde_json`
/// parses, so a patched document can always be read back.
pub const MAX_NESTING: usize = 127;

/// Why a value could not be set at a dot path.
///
/// Positions and prefixes refer to the dot path: in `a.b.c`, segment 1 is `b` and the prefix
/// before it is `a`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The dot path is empty.
    #[error("the path is empty")]
    EmptyPath,
    /// A segment is empty (`a..b`, `.a`, `a.`).
    #[error("segment {index} of the path is empty")]
    EmptySegment {
        /// Position of the empty segment, counted from 0.
        index: usize,
    },
    /// A segment that addresses an array is not a decimal index (`items.first`, `items.01`).
    #[error("{segment:?} is not an array index, but {} is an array", describe(.at))]
    NotAnIndex {
        /// The dot path of the array.
        at: String,
        /// The offending segment.
        segment: String,
    },
    /// An array index is past the end of the array (only `index == len`, appending, is allowed).
    #[error(
        "index {index} is past the end of {} (length {len}; index {len} appends)",
        describe(.at)
    )]
    IndexOutOfBounds {
        /// The dot path of the array.
        at: String,
        /// The index asked for.
        index: usize,
        /// The array's length.
        len: usize,
    },
    /// The value would end up nested in more than [`MAX_NESTING`] arrays and objects (path
    /// segments plus the value's own nesting), more than `serde_json` reads back.
    #[error("the value would be nested more than {max} levels deep")]
    TooDeep {
        /// The limit, [`MAX_NESTING`].
        max: usize,
    },
    /// The path goes through a string, number, boolean or null.
    #[error("cannot set a field inside {}: it is {kind}, not an object or array", describe(.at))]
    NotAContainer {
        /// The dot path of the scalar (empty for the document itself).
        at: String,
        /// What it is: `a string`, `a number`, `a boolean` or `null`.
        kind: &'static str,
    },
}

/// `"a.b"` for a prefix, `the document` for the root.
fn describe(at: &str) -> String {
    if at.is_empty() {
        "the document".to_owned()
    } else {
        format!("{at:?}")
    }
}

/// Infers the JSON type of a rendered patch value.
///
/// A value that parses as JSON — a number, `true` / `false`, `null`, an object, an array or a
/// quoted JSON string — stays typed (white space around it is allowed); anything else is a
/// plain string. Numbers follow `serde_json`: integers that fit 64 bits are exact, others
/// become floating point (quote a long digit string, `"\"12345678901234567890123\""`, to keep
/// it exact as a string).
///
/// ```
/// use serde_json::json;
/// use stoker_core::patch::infer_value;
///
/// assert_eq!(infer_value("8088"), json!(8088));
/// assert_eq!(infer_value("true"), json!(true));
/// assert_eq!(infer_value("{\"a\": [1]}"), json!({"a": [1]}));
/// assert_eq!(infer_value("\"8088\""), json!("8088"));
/// assert_eq!(infer_value("db.example.com"), json!("db.example.com"));
/// assert_eq!(infer_value(""), json!(""));
/// ```
pub fn infer_value(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
}

/// Sets `value` at `dot_path` in `doc`.
///
/// On an object, a segment is a key: a missing key is created, with `{}` for intermediate
/// segments. On an array, a segment must be a decimal index without leading zeros, less than
/// the length (replace) or equal to it (append; `{}` for an intermediate segment). The last
/// segment replaces whatever is there. Going through a string, number, boolean or null is an
/// error, and so is an empty path, an empty segment, or a value that would end up nested more
/// than [`MAX_NESTING`] levels deep. On error `doc` may already hold the
/// intermediate objects created before the failing segment.
///
/// ```
/// use serde_json::json;
/// use stoker_core::patch::set_path;
///
/// let mut doc = json!({"items": [{"name": "a"}]});
/// set_path(&mut doc, "items.0.name", json!("b"))?;
/// set_path(&mut doc, "connection.host", json!("db"))?;
/// set_path(&mut doc, "items.1", json!({"name": "c"}))?;
/// assert_eq!(doc, json!({"items": [{"name": "b"}, {"name": "c"}], "connection": {"host": "db"}}));
///
/// assert!(set_path(&mut doc, "items.0.name.first", json!(1)).is_err());
/// assert!(set_path(&mut doc, "items.5", json!(1)).is_err());
/// # Ok::<(), stoker_core::patch::PathError>(())
/// ```
///
/// # Errors
///
/// A [`PathError`] saying which segment could not be followed.
pub fn set_path(doc: &mut Value, dot_path: &str, value: Value) -> Result<(), PathError> {
    if dot_path.is_empty() {
        return Err(PathError::EmptyPath);
    }
    let segments: Vec<&str> = dot_path.split('.').collect();
    if let Some(index) = segments.iter().position(|segment| segment.is_empty()) {
        return Err(PathError::EmptySegment { index });
    }
    if !fits_nesting(&value, MAX_NESTING.saturating_sub(segments.len()))
        || segments.len() > MAX_NESTING
    {
        return Err(PathError::TooDeep { max: MAX_NESTING });
    }
    let Some((last, parents)) = segments.split_last() else {
        return Err(PathError::EmptyPath);
    };
    // The dot path of the container that segment `depth` is looked up in.
    let at = |depth: usize| segments.get(..depth).unwrap_or_default().join(".");

    let mut current = doc;
    for (depth, segment) in parents.iter().enumerate() {
        current = match current {
            Value::Object(map) => map
                .entry(*segment)
                .or_insert_with(|| Value::Object(serde_json::Map::new())),
            Value::Array(items) => {
                let index = array_index(items, segment, || at(depth))?;
                if index == items.len() {
                    items.push(Value::Object(serde_json::Map::new()));
                }
                let len = items.len();
                items
                    .get_mut(index)
                    .ok_or_else(|| PathError::IndexOutOfBounds {
                        at: at(depth),
                        index,
                        len,
                    })?
            }
            scalar => {
                return Err(PathError::NotAContainer {
                    at: at(depth),
                    kind: kind(scalar),
                });
            }
        };
    }

    let depth = parents.len();
    match current {
        Value::Object(map) => {
            map.insert((*last).to_owned(), value);
        }
        Value::Array(items) => {
            let index = array_index(items, last, || at(depth))?;
            match items.get_mut(index) {
                Some(slot) => *slot = value,
                None => items.push(value),
            }
        }
        scalar => {
            return Err(PathError::NotAContainer {
                at: at(depth),
                kind: kind(scalar),
            });
        }
    }
    Ok(())
}

/// The index `segment` names in `items`: at most `items.len()` (which appends).
fn array_index(
    items: &[Value],
    segment: &str,
    at: impl Fn() -> String,
) -> Result<usize, PathError> {
    let index = parse_index(segment).ok_or_else(|| PathError::NotAnIndex {
        at: at(),
        segment: segment.to_owned(),
    })?;
    let len = items.len();
    if index > len {
        return Err(PathError::IndexOutOfBounds {
            at: at(),
            index,
            len,
        });
    }
    Ok(index)
}

/// Whether `value` has at most `max` levels of nested arrays and objects (a scalar has 0).
fn fits_nesting(value: &Value, max: usize) -> bool {
    // Iterative, so that a deep value cannot exhaust the stack.
    let mut stack = vec![(value, 0_usize)];
    while let Some((value, depth)) = stack.pop() {
        let is_container = matches!(value, Value::Array(_) | Value::Object(_));
        if is_container && depth >= max {
            return false;
        }
        match value {
            Value::Array(items) => stack.extend(items.iter().map(|child| (child, depth + 1))),
            Value::Object(map) => stack.extend(map.values().map(|child| (child, depth + 1))),
            _ => {}
        }
    }
    true
}

/// `0` or `[1-9][0-9]*` fitting `usize`, as JSON pointers require.
fn parse_index(segment: &str) -> Option<usize> {
    let digits_only = segment.bytes().all(|b| b.is_ascii_digit());
    let leading_zero = segment.len() > 1 && segment.starts_with('0');
    if !digits_only || leading_zero {
        return None;
    }
    segment.parse().ok()
}

/// `a string`, `a number`, … for error messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The JSON pointer (RFC 6901) for a dot path, for [`Value::pointer`]: `items.0.name` →
/// `/items/0/name`, with `~` and `/` in segments escaped.
///
/// ```
/// use stoker_core::patch::json_pointer;
///
/// assert_eq!(json_pointer("items.0.name"), "/items/0/name");
/// assert_eq!(json_pointer("a/b.c~d"), "/a~1b/c~0d");
/// ```
pub fn json_pointer(dot_path: &str) -> String {
    dot_path
        .split('.')
        .map(|segment| format!("/{}", segment.replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// Applies `sets` — `(dot path, rendered value)` pairs, in order — to the JSON file `bytes`.
///
/// Each value goes through [`infer_value`] and [`set_path`]. The result is pretty-printed with
/// a 2-space indent, as Ignition writes its files, with a trailing newline only if the input
/// ended with one. Keys come out in `serde_json`'s map order (sorted unless `preserve_order`
/// is enabled somewhere in the build). With no `sets`, `bytes` is returned unchanged, even if
/// it is not JSON.
///
/// ```
/// use stoker_core::patch::apply_patches;
///
/// let input = br#"{"connection": {"host": "localhost", "port": 5432}}"#;
/// let sets = [
///     ("connection.host".to_owned(), "db.site1".to_owned()),
///     ("connection.port".to_owned(), "5433".to_owned()),
/// ];
/// let output = apply_patches("db.json", input, &sets)?;
/// assert_eq!(
///     String::from_utf8(output).unwrap(),
///     "{\n  \"connection\": {\n    \"host\": \"db.site1\",\n    \"port\": 5433\n  }\n}"
/// );
///
/// assert!(apply_patches("notes.txt", b"hello", &sets).is_err());
/// # Ok::<(), stoker_core::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Patch`] naming `file` and the dot path: the file is not JSON (`not a JSON
/// document: …`, reported with the first dot path), or a path cannot be set (see
/// [`PathError`]).
pub fn apply_patches(file: &str, bytes: &[u8], sets: &[(String, String)]) -> Result<Vec<u8>> {
    let Some((first_path, _)) = sets.first() else {
        return Ok(bytes.to_vec());
    };
    let error = |path: &str, message: String| Error::Patch {
        file: file.to_owned(),
        path: path.to_owned(),
        message,
    };
    let mut doc: Value = serde_json::from_slice(bytes)
        .map_err(|err| error(first_path, format!("not a JSON document: {err}")))?;
    for (path, raw) in sets {
        set_path(&mut doc, path, infer_value(raw)).map_err(|err| error(path, err.to_string()))?;
    }
    let mut out = serde_json::to_vec_pretty(&doc).map_err(|err| {
        error(
            first_path,
            format!("cannot serialize the patched document: {err}"),
        )
    })?;
    if bytes.ends_with(b"\n") {
        out.push(b'\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn set(doc: &mut Value, path: &str, value: Value) -> Result<(), PathError> {
        set_path(doc, path, value)
    }

    #[test]
    fn json_values_stay_typed() {
        assert_eq!(infer_value("42"), json!(42));
        assert_eq!(infer_value("-1.5"), json!(-1.5));
        assert_eq!(infer_value("false"), json!(false));
        assert_eq!(infer_value("null"), json!(null));
        assert_eq!(infer_value("[1, \"a\"]"), json!([1, "a"]));
        assert_eq!(infer_value("{\"a\": {}}"), json!({"a": {}}));
        assert_eq!(infer_value(" 7 "), json!(7));
    }

    #[test]
    fn quoted_json_strings_are_unquoted() {
        assert_eq!(infer_value("\"42\""), json!("42"));
        assert_eq!(infer_value("\"a\\nb\""), json!("a\nb"));
    }

    #[test]
    fn anything_else_is_a_plain_string() {
        for raw in [
            "",
            "abc",
            "db.example.com",
            "True",
            "0123",
            "1e999",
            "{",
            "[1,",
            "'x'",
            "é",
        ] {
            assert_eq!(infer_value(raw), json!(raw), "{raw}");
        }
    }

    #[test]
    fn object_segments_create_missing_keys() {
        let mut doc = json!({"a": 1});
        set(&mut doc, "connection.host", json!("db")).unwrap();
        set(&mut doc, "b", json!(2)).unwrap();
        assert_eq!(doc, json!({"a": 1, "b": 2, "connection": {"host": "db"}}));
    }

    #[test]
    fn last_segment_replaces_any_value() {
        let mut doc = json!({"a": {"b": [1]}});
        set(&mut doc, "a", json!("flat")).unwrap();
        assert_eq!(doc, json!({"a": "flat"}));
    }

    #[test]
    fn digit_segments_are_keys_on_objects() {
        let mut doc = json!({});
        set(&mut doc, "0.01", json!(true)).unwrap();
        assert_eq!(doc, json!({"0": {"01": true}}));
    }

    #[test]
    fn array_segments_are_indexes_below_or_at_the_length() {
        let mut doc = json!({"items": [{"name": "a"}, {"name": "b"}]});
        set(&mut doc, "items.1.name", json!("B")).unwrap();
        set(&mut doc, "items.2", json!({"name": "c"})).unwrap();
        set(&mut doc, "items.3.name", json!("d")).unwrap();
        set(&mut doc, "items.0", json!(0)).unwrap();
        assert_eq!(
            doc,
            json!({"items": [0, {"name": "B"}, {"name": "c"}, {"name": "d"}]})
        );
    }

    #[test]
    fn array_index_past_the_end_is_an_error() {
        let mut doc = json!({"items": [1]});
        assert_eq!(
            set(&mut doc, "items.2", json!(0)),
            Err(PathError::IndexOutOfBounds {
                at: "items".into(),
                index: 2,
                len: 1
            })
        );
        assert_eq!(doc, json!({"items": [1]}));
    }

    #[test]
    fn array_segment_must_be_a_decimal_index() {
        let mut doc = json!({"a": {"items": []}});
        for segment in ["x", "-1", "+0", "01", "1e0", "٣", "99999999999999999999999"] {
            let err = set(&mut doc, &format!("a.items.{segment}.b"), json!(0)).unwrap_err();
            assert_eq!(
                err,
                PathError::NotAnIndex {
                    at: "a.items".into(),
                    segment: segment.into()
                }
            );
        }
        assert_eq!(doc, json!({"a": {"items": []}}));
    }

    #[test]
    fn setting_inside_a_scalar_is_an_error() {
        let mut doc = json!({"a": {"s": "x", "n": 1, "b": true, "z": null}});
        for (path, at, kind) in [
            ("a.s.x", "a.s", "a string"),
            ("a.n.x", "a.n", "a number"),
            ("a.b.0", "a.b", "a boolean"),
            ("a.z.x.y", "a.z", "null"),
        ] {
            let err = set(&mut doc, path, json!(0)).unwrap_err();
            assert_eq!(
                err,
                PathError::NotAContainer {
                    at: at.into(),
                    kind
                },
                "{path}"
            );
        }
        let mut scalar = json!(3);
        assert_eq!(
            set(&mut scalar, "a", json!(0)).unwrap_err().to_string(),
            "cannot set a field inside the document: it is a number, not an object or array"
        );
    }

    #[test]
    fn empty_paths_and_segments_are_errors() {
        let mut doc = json!({});
        assert_eq!(set(&mut doc, "", json!(0)), Err(PathError::EmptyPath));
        assert_eq!(
            set(&mut doc, "a..b", json!(0)),
            Err(PathError::EmptySegment { index: 1 })
        );
        assert_eq!(
            set(&mut doc, ".a", json!(0)),
            Err(PathError::EmptySegment { index: 0 })
        );
        assert_eq!(
            set(&mut doc, "a.", json!(0)),
            Err(PathError::EmptySegment { index: 1 })
        );
        assert_eq!(doc, json!({}));
    }

    #[test]
    fn values_nested_deeper_than_serde_json_reads_are_refused() {
        let nested = |n: usize| infer_value(&("[".repeat(n) + &"]".repeat(n)));
        let mut doc = json!({});
        let path = vec!["a"; 100].join(".");
        set(&mut doc, &path, nested(27)).unwrap();
        assert_eq!(
            set(&mut doc, &path, nested(28)),
            Err(PathError::TooDeep { max: MAX_NESTING })
        );
        let long = vec!["a"; 128].join(".");
        assert_eq!(
            set(&mut json!({}), &long, json!(1)),
            Err(PathError::TooDeep { max: MAX_NESTING })
        );
        let out = apply_patches("f", b"{}", &[(path, "[".repeat(27) + &"]".repeat(27))]).unwrap();
        assert!(serde_json::from_slice::<Value>(&out).is_ok());
    }

    #[test]
    fn json_pointer_escapes_segments() {
        assert_eq!(json_pointer("a"), "/a");
        assert_eq!(json_pointer("a~/b.0"), "/a~0~1b/0");
    }

    #[test]
    fn patches_apply_in_order_and_infer_types() {
        let input = br#"{"b": {"port": 1}, "a": "x"}"#;
        let sets = [
            ("b.port".to_owned(), "8088".to_owned()),
            ("b.host".to_owned(), "gw-{{x}}".to_owned()),
            ("b.port".to_owned(), "\"8089\"".to_owned()),
        ];
        let out = apply_patches("f.json", input, &sets).unwrap();
        let doc: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            doc,
            json!({"a": "x", "b": {"host": "gw-{{x}}", "port": "8089"}})
        );
    }

    #[test]
    fn output_is_pretty_with_a_trailing_newline_only_if_the_input_had_one() {
        let sets = [("k".to_owned(), "1".to_owned())];
        assert_eq!(
            apply_patches("f", b"{}\n", &sets).unwrap(),
            b"{\n  \"k\": 1\n}\n"
        );
        assert_eq!(
            apply_patches("f", b"{}", &sets).unwrap(),
            b"{\n  \"k\": 1\n}"
        );
    }

    #[test]
    fn no_patches_leave_the_bytes_unchanged() {
        assert_eq!(apply_patches("f", b"not json", &[]).unwrap(), b"not json");
    }

    #[test]
    fn non_json_file_is_an_error_naming_the_file() {
        let sets = [("a.b".to_owned(), "1".to_owned())];
        for input in [&b"hello"[..], b"", b"{\"a\":", b"\xff\xfe", b"{} {}"] {
            match apply_patches("views/x.json", input, &sets).unwrap_err() {
                Error::Patch {
                    file,
                    path,
                    message,
                } => {
                    assert_eq!(file, "views/x.json");
                    assert_eq!(path, "a.b");
                    assert!(message.starts_with("not a JSON document: "), "{message}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn path_errors_name_the_file_and_path() {
        let sets = [("a.b".to_owned(), "1".to_owned())];
        let err = apply_patches("c.json", br#"{"a": "s"}"#, &sets).unwrap_err();
        assert_eq!(
            err.to_string(),
            "patch of \"c.json\" at \"a.b\": cannot set a field inside \"a\": it is a string, \
             not an object or array"
        );
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[a-z0-9.~/]{0,4}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-c0-2]{1,2}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn dot_path() -> impl Strategy<Value = String> {
        proptest::collection::vec(prop_oneof!["[a-c]", "[0-3]", Just("~/x".to_owned())], 1..5)
            .prop_map(|segments| segments.join("."))
    }

    proptest! {
        #[test]
        fn set_then_pointer_reads_the_value_back(
            mut doc in json_value(),
            path in dot_path(),
            value in json_value(),
        ) {
            if set_path(&mut doc, &path, value.clone()).is_ok() {
                prop_assert_eq!(doc.pointer(&json_pointer(&path)), Some(&value));
            }
        }

        #[test]
        fn keys_always_set_in_an_object(path in "[a-z_]{1,3}(\\.[a-z_]{1,3}){0,4}", value in json_value()) {
            let mut doc = json!({});
            set_path(&mut doc, &path, value.clone()).unwrap();
            prop_assert_eq!(doc.pointer(&json_pointer(&path)), Some(&value));
        }

        #[test]
        fn arbitrary_paths_never_panic(mut doc in json_value(), path in any::<String>(), raw in any::<String>()) {
            let _ = set_path(&mut doc, &path, infer_value(&raw));
        }

        #[test]
        fn arbitrary_patches_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            path in any::<String>(),
            raw in any::<String>(),
        ) {
            let _ = apply_patches("f", &bytes, &[(path, raw)]);
        }

        #[test]
        fn applied_patches_read_back(doc in json_value(), path in dot_path(), raw in "[a-z0-9\"\\[\\]{}.]{0,6}") {
            let input = serde_json::to_vec(&doc).unwrap();
            if let Ok(out) = apply_patches("f", &input, &[(path.clone(), raw.clone())]) {
                let parsed: Value = serde_json::from_slice(&out).unwrap();
                prop_assert_eq!(parsed.pointer(&json_pointer(&path)), Some(&infer_value(&raw)));
            }
        }
    }
}
