//! JSON field patches by path, in the path syntax of stoker-operator v0.5.1 (sjson's), edited
//! in place.
//!
//! A mapping's `patches` set fields in JSON files after templates are rendered. A path is a
//! list of segments separated by `.`: `connection.host`, `items.0.name`. On an object a segment
//! is a key (created if missing, with `{}` for the segments below it); on an array it is a
//! decimal index, or `-1` to append. `\.` is a dot inside a key (`"a\.b"` is the key `a.b`);
//! a backslash before any other character keeps that character as it is.
//!
//! Edits are format-preserving: only the bytes of the value set change. Key order,
//! indentation, line endings, escapes and numbers as written everywhere else stay
//! byte-identical, and setting a value that is already there (the same JSON value) leaves the
//! file as it is, so a gateway does not see a rewrite of every patched file. A new key goes
//! after the last member of its object with that member's indentation and separator.
//!
//! The crate that edits JSON text in place, `jsonc-parser` (its CST), does not fit: it accepts
//! comments and trailing commas (more than JSON, so it would let through files Ignition cannot
//! read) and lays out the values it inserts its own way. So the file is parsed with `serde_json`
//! (which validates it and gives the value the edit must produce) and a small scanner
//! (`patch/text.rs`) finds the byte range of the value to replace or the place to insert; the
//! `dot_path_patch` fuzz target checks that the spliced text parses to the patched value.

mod text;

use serde_json::Value;

pub use text::Splice;

use crate::error::{Error, Result};

/// The deepest nesting of arrays and objects [`set_path`] produces: the most `serde_json`
/// parses, so a patched document can always be read back.
pub const MAX_NESTING: usize = 127;

/// Why a value could not be set at a path.
///
/// Positions and prefixes refer to the path: in `a.b.c`, segment 1 is `b` and the prefix
/// before it is `a`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The path is empty.
    #[error("the path is empty")]
    EmptyPath,
    /// A segment is empty (`a..b`, `.a`, `a.`).
    #[error("segment {index} of the path is empty")]
    EmptySegment {
        /// Position of the empty segment, counted from 0.
        index: usize,
    },
    /// A segment that addresses an array is neither a decimal index nor `-1`
    /// (`items.first`, `items.01`).
    #[error("{segment:?} is not an array index, but {} is an array", describe(.at))]
    NotAnIndex {
        /// The path of the array.
        at: String,
        /// The offending segment.
        segment: String,
    },
    /// An array index is past the end of the array (only `index == len`, appending, is allowed).
    #[error(
        "index {index} is past the end of {} (length {len}; index {len} or -1 appends)",
        describe(.at)
    )]
    IndexOutOfBounds {
        /// The path of the array.
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
        /// The path of the scalar (empty for the document itself).
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

/// Splits a path into its segments: on `.`, with `\.` a dot inside a segment (and `\` before
/// any other character that character). Empty segments are kept.
fn split_path(path: &str) -> Vec<String> {
    let mut segments = vec![String::new()];
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        let segment = match segments.last_mut() {
            Some(segment) => segment,
            None => break,
        };
        match c {
            '\\' => segment.push(chars.next().unwrap_or('\\')),
            '.' => segments.push(String::new()),
            _ => segment.push(c),
        }
    }
    segments
}

/// The segments of a path (sjson syntax, see the [module docs](self)).
///
/// ```
/// use stoker_core::patch::parse_path;
///
/// assert_eq!(parse_path("items.0.name")?, ["items", "0", "name"]);
/// assert_eq!(parse_path(r"labels.app\.kubernetes\.io/name")?, ["labels", "app.kubernetes.io/name"]);
/// assert!(parse_path("a..b").is_err());
/// # Ok::<(), stoker_core::patch::PathError>(())
/// ```
///
/// # Errors
///
/// [`PathError::EmptyPath`] or [`PathError::EmptySegment`].
pub fn parse_path(path: &str) -> Result<Vec<String>, PathError> {
    if path.is_empty() {
        return Err(PathError::EmptyPath);
    }
    let segments = split_path(path);
    match segments.iter().position(String::is_empty) {
        Some(index) => Err(PathError::EmptySegment { index }),
        None => Ok(segments),
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

/// Sets `value` at `path` (sjson syntax, see the [module docs](self)) in `doc`.
///
/// On an object, a segment is a key: a missing key is created, with `{}` for intermediate
/// segments. On an array, a segment must be a decimal index without leading zeros, less than
/// the length (replace) or equal to it (append; `{}` for an intermediate segment), or `-1`
/// (append). The last segment replaces whatever is there. Going through a string, number,
/// boolean or null is an error, and so is an empty path, an empty segment, or a value that
/// would end up nested more than [`MAX_NESTING`] levels deep. On error `doc` may already hold
/// the intermediate objects created before the failing segment.
///
/// ```
/// use serde_json::json;
/// use stoker_core::patch::set_path;
///
/// let mut doc = json!({"items": [{"name": "a"}]});
/// set_path(&mut doc, "items.0.name", json!("b"))?;
/// set_path(&mut doc, "connection.host", json!("db"))?;
/// set_path(&mut doc, "items.1", json!({"name": "c"}))?;
/// set_path(&mut doc, "items.-1", json!("d"))?;
/// set_path(&mut doc, r"labels.a\.b", json!(1))?;
/// assert_eq!(doc, json!({
///     "items": [{"name": "b"}, {"name": "c"}, "d"],
///     "connection": {"host": "db"},
///     "labels": {"a.b": 1},
/// }));
///
/// assert!(set_path(&mut doc, "items.0.name.first", json!(1)).is_err());
/// assert!(set_path(&mut doc, "items.5", json!(1)).is_err());
/// # Ok::<(), stoker_core::patch::PathError>(())
/// ```
///
/// # Errors
///
/// A [`PathError`] saying which segment could not be followed.
pub fn set_path(doc: &mut Value, path: &str, value: Value) -> Result<(), PathError> {
    set_segments(doc, &parse_path(path)?, value)
}

/// [`set_path`] with the path already split.
fn set_segments(doc: &mut Value, segments: &[String], value: Value) -> Result<(), PathError> {
    if !fits_nesting(&value, MAX_NESTING.saturating_sub(segments.len()))
        || segments.len() > MAX_NESTING
    {
        return Err(PathError::TooDeep { max: MAX_NESTING });
    }
    let Some((last, parents)) = segments.split_last() else {
        return Err(PathError::EmptyPath);
    };
    // The path of the container that segment `depth` is looked up in.
    let at = |depth: usize| segments.get(..depth).unwrap_or_default().join(".");

    let mut current = doc;
    for (depth, segment) in parents.iter().enumerate() {
        current = match current {
            Value::Object(map) => map
                .entry(segment.as_str())
                .or_insert_with(|| Value::Object(serde_json::Map::new())),
            Value::Array(items) => {
                let index = index_in(items.len(), segment, || at(depth))?;
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
            map.insert(last.clone(), value);
        }
        Value::Array(items) => {
            let index = index_in(items.len(), last, || at(depth))?;
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

/// The index `segment` names in an array of `len` elements: at most `len` (which appends, as
/// `-1` does).
fn index_in(len: usize, segment: &str, at: impl Fn() -> String) -> Result<usize, PathError> {
    if segment == "-1" {
        return Ok(len);
    }
    let index = parse_index(segment).ok_or_else(|| PathError::NotAnIndex {
        at: at(),
        segment: segment.to_owned(),
    })?;
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

/// The JSON pointer (RFC 6901) for a path, for [`Value::pointer`]: `items.0.name` →
/// `/items/0/name`, `a\.b` → `/a.b`, with `~` and `/` in segments escaped. `-1` (append) is
/// kept as it is: it names no existing element.
///
/// ```
/// use stoker_core::patch::json_pointer;
///
/// assert_eq!(json_pointer("items.0.name"), "/items/0/name");
/// assert_eq!(json_pointer("a/b.c~d"), "/a~1b/c~0d");
/// assert_eq!(json_pointer(r"a\.b.c"), "/a.b/c");
/// ```
pub fn json_pointer(path: &str) -> String {
    split_path(path)
        .iter()
        .map(|segment| format!("/{}", segment.replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// The one edit that sets `raw` (through [`infer_value`]) at `path` in the JSON file `bytes`,
/// or `None` when the file already holds that value there. [`apply_patches`] applies these
/// one after the other.
///
/// ```
/// use stoker_core::patch::plan_patch;
///
/// let input = b"{\r\n  \"port\": 1.0,\r\n  \"host\": \"a\"\r\n}";
/// let splice = plan_patch("f.json", input, "host", "db")?.unwrap();
/// assert_eq!(&input[splice.range.clone()], b"\"a\"");
/// assert_eq!(splice.text, b"\"db\"");
/// assert!(plan_patch("f.json", input, "port", "1.0")?.is_none());
/// # Ok::<(), stoker_core::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Patch`] naming `file` and `path`: the file is not JSON (`not a JSON document: …`),
/// or the path cannot be set (see [`PathError`]).
pub fn plan_patch(file: &str, bytes: &[u8], path: &str, raw: &str) -> Result<Option<Splice>> {
    let error = |message: String| Error::Patch {
        file: file.to_owned(),
        path: path.to_owned(),
        message,
    };
    let mut doc: Value = serde_json::from_slice(bytes)
        .map_err(|err| error(format!("not a JSON document: {err}")))?;
    let value = infer_value(raw);
    let segments = parse_path(path).map_err(|err| error(err.to_string()))?;
    // The value-level set checks the path (and depth) against the whole document first, so
    // the scanner only ever walks a path that exists or can be created.
    set_segments(&mut doc, &segments, value.clone()).map_err(|err| error(err.to_string()))?;
    text::plan(bytes, &segments, &value).map_err(|err| error(err.to_string()))
}

/// Applies `sets` — `(path, rendered value)` pairs, in order — to the JSON file `bytes`.
///
/// Each value goes through [`infer_value`] and is set as [`set_path`] would, but in place (see
/// [`plan_patch`]): every byte outside the values set stays as it was, and a set that finds its
/// value already there changes nothing. With no `sets`, `bytes` is returned unchanged, even if
/// it is not JSON. Nothing is written anywhere: on error the caller still has the input.
///
/// ```
/// use stoker_core::patch::apply_patches;
///
/// let input = b"{\n    \"connection\": {\"host\": \"localhost\", \"port\": 5432},\n    \"n\": 1e3\n}\n";
/// let sets = [
///     ("connection.host".to_owned(), "db.site1".to_owned()),
///     ("connection.port".to_owned(), "5433".to_owned()),
///     ("connection.ssl".to_owned(), "true".to_owned()),
/// ];
/// let output = apply_patches("db.json", input, &sets)?;
/// assert_eq!(
///     String::from_utf8(output).unwrap(),
///     "{\n    \"connection\": {\"host\": \"db.site1\", \"port\": 5433, \"ssl\": true},\n    \"n\": 1e3\n}\n"
/// );
///
/// assert!(apply_patches("notes.txt", b"hello", &sets).is_err());
/// # Ok::<(), stoker_core::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Patch`] naming `file` and the path: the file is not JSON (`not a JSON
/// document: …`, reported with the first path), or a path cannot be set (see [`PathError`]).
pub fn apply_patches(file: &str, bytes: &[u8], sets: &[(String, String)]) -> Result<Vec<u8>> {
    let mut text = bytes.to_vec();
    for (path, raw) in sets {
        if let Some(splice) = plan_patch(file, &text, path, raw)? {
            text.splice(splice.range, splice.text);
        }
    }
    Ok(text)
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
        for segment in ["x", "-2", "+0", "01", "1e0", "٣", "99999999999999999999999"] {
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

    /// `apply_patches` with `(path, value)` pairs, as text.
    fn patched(input: &str, sets: &[(&str, &str)]) -> String {
        let sets: Vec<(String, String)> = sets
            .iter()
            .map(|(p, v)| ((*p).to_owned(), (*v).to_owned()))
            .collect();
        String::from_utf8(apply_patches("f.json", input.as_bytes(), &sets).unwrap()).unwrap()
    }

    #[test]
    fn only_the_patched_value_changes() {
        let input = "{\n    \"z\": 1.0,\n    \"a\" : {\"host\": \"old\", \"n\": 1e3},\n    \"u\": \"\\u00e9\\n\"\n}";
        assert_eq!(
            patched(input, &[("a.host", "new")]),
            "{\n    \"z\": 1.0,\n    \"a\" : {\"host\": \"new\", \"n\": 1e3},\n    \"u\": \"\\u00e9\\n\"\n}"
        );
    }

    #[test]
    fn crlf_files_keep_their_line_endings() {
        let input = "{\r\n  \"a\": {\r\n    \"b\": 1\r\n  },\r\n  \"e\": {}\r\n}\r\n";
        assert_eq!(
            patched(
                input,
                &[("a.b", "2"), ("a.c", "{\"d\": [1]}"), ("e.f", "x")]
            ),
            "{\r\n  \"a\": {\r\n    \"b\": 2,\r\n    \"c\": {\r\n      \"d\": [\r\n        1\r\n      ]\r\n    }\r\n  },\r\n  \"e\": {\r\n    \"f\": \"x\"\r\n  }\r\n}\r\n"
        );
    }

    #[test]
    fn setting_the_value_already_there_changes_no_byte() {
        let input = "{\"a\":1.0,\"b\":[ 1 , 2 ],\"c\":\"\\u0041\",\"d\":{\"e\":null}}";
        for (path, value) in [
            ("a", "1.0"),
            ("b", "[1,2]"),
            ("c", "A"),
            ("d", "{\"e\": null}"),
            ("d.e", "null"),
            ("b.1", "2"),
        ] {
            assert_eq!(patched(input, &[(path, value)]), input, "{path}");
        }
    }

    #[test]
    fn new_keys_follow_their_siblings_style() {
        let tabs = "{\n\t\"a\": 1\n}";
        assert_eq!(
            patched(tabs, &[("b", "2")]),
            "{\n\t\"a\": 1,\n\t\"b\": 2\n}"
        );
        let compact = "{\"a\":1}";
        assert_eq!(
            patched(compact, &[("b.c", "2")]),
            "{\"a\":1,\"b\":{\"c\":2}}"
        );
        let pretty = "{\n  \"a\": {}\n}\n";
        assert_eq!(
            patched(pretty, &[("a.b.c", "2")]),
            "{\n  \"a\": {\n    \"b\": {\n      \"c\": 2\n    }\n  }\n}\n"
        );
        assert_eq!(patched("{}", &[("k", "1")]), "{\"k\":1}");
    }

    #[test]
    fn an_entry_alone_on_its_line_gets_a_space_in_a_pretty_file() {
        let input = "{\n  \"a\": {\"b\": 1},\n  \"c\": [1]\n}";
        assert_eq!(
            patched(input, &[("a.x", "2"), ("c.-1", "2")]),
            "{\n  \"a\": {\"b\": 1, \"x\": 2},\n  \"c\": [1, 2]\n}"
        );
    }

    #[test]
    fn blank_crlf_lines_are_not_taken_for_indentation() {
        let input = "{\r\n\r\n    \"a\": {}\r\n}";
        assert_eq!(
            patched(input, &[("a.b", "1")]),
            "{\r\n\r\n    \"a\": {\r\n        \"b\": 1\r\n    }\r\n}"
        );
    }

    #[test]
    fn nested_arrays_and_append_with_minus_one() {
        let input = "{\"m\": [[1, 2], [3]], \"e\": []}";
        assert_eq!(
            patched(
                input,
                &[
                    ("m.1.0", "30"),
                    ("m.0.-1", "2.5"),
                    ("m.-1", "[]"),
                    ("e.-1", "x")
                ]
            ),
            "{\"m\": [[1, 2, 2.5], [30], []], \"e\": [\"x\"]}"
        );
        let pretty = "[\n  {\"name\": \"a\"}\n]";
        assert_eq!(
            patched(pretty, &[("-1.name", "b")]),
            "[\n  {\"name\": \"a\"},\n  {\n    \"name\": \"b\"\n  }\n]"
        );
    }

    #[test]
    fn escaped_dots_are_part_of_the_key() {
        let input = "{\"labels\": {\"app.kubernetes.io/name\": \"x\"}}";
        assert_eq!(
            patched(input, &[(r"labels.app\.kubernetes\.io/name", "gw")]),
            "{\"labels\": {\"app.kubernetes.io/name\": \"gw\"}}"
        );
        assert_eq!(patched("{}", &[(r"a\.b.c", "1")]), "{\"a.b\":{\"c\":1}}");
        assert_eq!(parse_path(r"a\\b\.").unwrap(), [r"a\b."]);
    }

    #[test]
    fn missing_intermediate_keys_are_created() {
        let input = "{\n  \"a\": 1\n}\n";
        assert_eq!(
            patched(input, &[("x.y.z", "true")]),
            "{\n  \"a\": 1,\n  \"x\": {\n    \"y\": {\n      \"z\": true\n    }\n  }\n}\n"
        );
    }

    #[test]
    fn unicode_and_escaped_keys_are_matched_by_their_value() {
        let input = "{\"caf\\u00e9\": 1, \"na\u{ef}ve\": [\"\u{1f600}\"]}";
        assert_eq!(
            patched(input, &[("café", "2"), ("na\u{ef}ve.0", "ok")]),
            "{\"caf\\u00e9\": 2, \"na\u{ef}ve\": [\"ok\"]}"
        );
    }

    #[test]
    fn the_last_of_duplicate_keys_is_the_one_set() {
        assert_eq!(
            patched("{\"a\": 1, \"a\": 2}", &[("a", "3")]),
            "{\"a\": 1, \"a\": 3}"
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
        fn splices_change_only_their_span_and_give_the_patched_value(
            doc in json_value(),
            pretty in any::<bool>(),
            path in dot_path(),
            raw in "[a-z0-9\"\\[\\]{}.]{0,6}",
        ) {
            let input = if pretty {
                serde_json::to_vec_pretty(&doc).unwrap()
            } else {
                serde_json::to_vec(&doc).unwrap()
            };
            let mut expected = doc.clone();
            let semantic = set_path(&mut expected, &path, infer_value(&raw));
            match plan_patch("f", &input, &path, &raw) {
                Ok(splice) => {
                    prop_assert!(semantic.is_ok());
                    let mut out = input.clone();
                    if let Some(splice) = splice {
                        out.splice(splice.range, splice.text);
                    } else {
                        prop_assert_eq!(&expected, &doc);
                    }
                    let parsed: Value = serde_json::from_slice(&out).unwrap();
                    prop_assert_eq!(parsed, expected);
                }
                Err(_) => prop_assert!(semantic.is_err()),
            }
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
