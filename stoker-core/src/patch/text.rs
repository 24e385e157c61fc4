//! Where a value sits in JSON text, and the one splice that sets it.
//!
//! The text has already been accepted by `serde_json` (valid UTF-8 JSON, nesting within
//! [`super::MAX_NESTING`]), so the scanner here only has to find the ends of values; it never
//! validates. Every index is read through `get`, so that even a wrong assumption cannot panic:
//! at worst a scan stops at the end of the text.

use std::ops::Range;

use serde_json::Value;

use super::PathError;

/// Replace the bytes `range` of the text with `text`: the only bytes a patch changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Splice {
    /// The byte range replaced (empty for an insertion).
    pub range: Range<usize>,
    /// What goes there.
    pub text: Vec<u8>,
}

/// How the document is laid out, so that inserted text looks like its neighbours.
struct Style {
    /// `\r\n` when the file uses it, else `\n`.
    newline: &'static str,
    /// One level of indentation (the first indented line's), 2 spaces if none is found.
    unit: String,
    /// Whether the document spans several lines (pretty) or is on one line (compact).
    pretty: bool,
}

impl Style {
    fn of(bytes: &[u8]) -> Style {
        let crlf = bytes.windows(2).any(|pair| pair == b"\r\n");
        // Spaces and tabs only: a blank CRLF line starts with `\r`, which is no indentation.
        let unit = bytes
            .split(|&b| b == b'\n')
            .skip(1)
            .map(indentation)
            .find(|indent| !indent.is_empty())
            .map_or_else(
                || "  ".to_owned(),
                |i| String::from_utf8_lossy(i).into_owned(),
            );
        Style {
            newline: if crlf { "\r\n" } else { "\n" },
            unit,
            pretty: bytes.contains(&b'\n'),
        }
    }

    /// The white space to put after the `,` before a new entry: what precedes the last entry
    /// (`entry`, its start). When that is nothing — the only entry, right after its `{` or
    /// `[` — a single space in a pretty document (`[1, 2]`), nothing in a compact one.
    fn lead<'a>(&self, bytes: &'a [u8], entry: usize) -> &'a [u8] {
        match blanks_before(bytes, entry) {
            b"" if self.pretty => b" ",
            lead => lead,
        }
    }

    /// `value` as JSON text, continuation lines indented from `indent` (the indentation of the
    /// line it starts on). Scalars and empty containers are always one line.
    fn render(&self, value: &Value, indent: &str) -> Vec<u8> {
        let one_line = serde_json::to_string(value).unwrap_or_default();
        if !self.pretty
            || one_line.len() <= 2
            || !matches!(value, Value::Array(_) | Value::Object(_))
        {
            return one_line.into_bytes();
        }
        let mut out = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(self.unit.as_bytes());
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
        if serde::Serialize::serialize(value, &mut serializer).is_err() {
            return one_line.into_bytes();
        }
        // JSON strings never hold a raw newline, so every `\n` here is a line break.
        let break_and_indent = format!("{}{indent}", self.newline);
        String::from_utf8_lossy(&out)
            .replace('\n', &break_and_indent)
            .into_bytes()
    }
}

/// The splice that sets `value` at `segments` in `bytes`, or `None` when the same JSON value
/// is already there. Missing keys are inserted after the last member of their object (with
/// `{}` for the segments still to come), an index equal to the length (or `-1`) appends.
pub fn plan(bytes: &[u8], segments: &[String], value: &Value) -> Result<Option<Splice>, PathError> {
    let style = Style::of(bytes);
    let mut start = skip_blanks(bytes, 0);
    for (depth, segment) in segments.iter().enumerate() {
        let rest = segments.get(depth + 1..).unwrap_or_default();
        let at = || segments.get(..depth).unwrap_or_default().join(".");
        let found = match bytes.get(start) {
            Some(b'{') => {
                let members = object_members(bytes, start);
                let found = members
                    .iter()
                    .rev()
                    .find(|m| key_is(bytes, &m.key, segment));
                match found {
                    Some(member) => member.value.clone(),
                    None => {
                        let new = nest(rest, value);
                        return Ok(Some(insert_member(
                            bytes, start, &members, segment, &new, &style,
                        )));
                    }
                }
            }
            Some(b'[') => {
                let elements = array_elements(bytes, start);
                let index = super::index_in(elements.len(), segment, at)?;
                match elements.get(index) {
                    Some(element) => element.clone(),
                    None => {
                        let new = nest(rest, value);
                        return Ok(Some(append_element(bytes, start, &elements, &new, &style)));
                    }
                }
            }
            other => {
                return Err(PathError::NotAContainer {
                    at: at(),
                    kind: scalar_kind(other.copied()),
                });
            }
        };
        if rest.is_empty() {
            return Ok(replace(bytes, found, value, &style));
        }
        start = found.start;
    }
    Err(PathError::EmptyPath)
}

/// `value` wrapped in one object per remaining segment: what a missing key or a new array
/// element gets when the path goes on below it.
fn nest(rest: &[String], value: &Value) -> Value {
    rest.iter().rev().fold(value.clone(), |inner, key| {
        Value::Object(std::iter::once((key.clone(), inner)).collect())
    })
}

/// Replaces the value at `range`, unless it already is `value`.
fn replace(bytes: &[u8], range: Range<usize>, value: &Value, style: &Style) -> Option<Splice> {
    let current = bytes.get(range.clone())?;
    if serde_json::from_slice::<Value>(current).ok().as_ref() == Some(value) {
        return None;
    }
    let indent = line_indent(bytes, range.start);
    Some(Splice {
        text: style.render(value, &indent),
        range,
    })
}

/// A member of an object: the key's range (quotes included) and the value's.
struct Member {
    key: Range<usize>,
    value: Range<usize>,
}

/// Inserts `"key": value` after the last member of the object at `start`, copying the last
/// member's leading white space and separator; an empty object gets one indented line.
fn insert_member(
    bytes: &[u8],
    start: usize,
    members: &[Member],
    key: &str,
    value: &Value,
    style: &Style,
) -> Splice {
    let key_text = serde_json::to_string(key).unwrap_or_default();
    match members.last() {
        Some(last) => {
            let lead = style.lead(bytes, last.key.start);
            let separator = bytes.get(last.key.end..last.value.start).unwrap_or(b": ");
            let indent = line_indent(bytes, last.key.start);
            let mut text = b",".to_vec();
            text.extend_from_slice(lead);
            text.extend_from_slice(key_text.as_bytes());
            text.extend_from_slice(separator);
            text.extend(style.render(value, &indent));
            Splice {
                range: last.value.end..last.value.end,
                text,
            }
        }
        None => {
            let separator = if style.pretty { ": " } else { ":" };
            let mut entry = key_text.into_bytes();
            entry.extend_from_slice(separator.as_bytes());
            fill_empty(bytes, start, style, |indent| {
                entry.extend(style.render(value, indent));
                entry
            })
        }
    }
}

/// Appends `value` after the last element of the array at `start`, in the style of the last
/// element; an empty array gets one indented line.
fn append_element(
    bytes: &[u8],
    start: usize,
    elements: &[Range<usize>],
    value: &Value,
    style: &Style,
) -> Splice {
    match elements.last() {
        Some(last) => {
            let mut text = b",".to_vec();
            text.extend_from_slice(style.lead(bytes, last.start));
            text.extend(style.render(value, &line_indent(bytes, last.start)));
            Splice {
                range: last.end..last.end,
                text,
            }
        }
        None => fill_empty(bytes, start, style, |indent| style.render(value, indent)),
    }
}

/// Replaces the white space inside the empty container at `start` with one entry: on a line of
/// its own, one level deeper than the container's line, in a pretty document; as it is in a
/// compact one. `entry` renders the entry for a given indentation.
fn fill_empty(
    bytes: &[u8],
    start: usize,
    style: &Style,
    entry: impl FnOnce(&str) -> Vec<u8>,
) -> Splice {
    let inside = start + 1..value_end(bytes, start).saturating_sub(1).max(start + 1);
    if !style.pretty {
        return Splice {
            range: inside,
            text: entry(""),
        };
    }
    let outer = line_indent(bytes, start);
    let inner = format!("{outer}{}", style.unit);
    let mut text = format!("{}{inner}", style.newline).into_bytes();
    text.extend(entry(&inner));
    text.extend_from_slice(format!("{}{outer}", style.newline).as_bytes());
    Splice {
        range: inside,
        text,
    }
}

/// The members of the object whose `{` is at `start`.
fn object_members(bytes: &[u8], start: usize) -> Vec<Member> {
    let mut members = Vec::new();
    let mut pos = skip_blanks(bytes, start + 1);
    while bytes.get(pos) == Some(&b'"') {
        let key = pos..string_end(bytes, pos);
        // Past the `:` and the blanks around it.
        let colon = skip_blanks(bytes, key.end);
        let value_start = skip_blanks(bytes, colon + 1);
        let value = value_start..value_end(bytes, value_start);
        pos = skip_blanks(bytes, value.end);
        members.push(Member { key, value });
        if bytes.get(pos) != Some(&b',') {
            break;
        }
        pos = skip_blanks(bytes, pos + 1);
    }
    members
}

/// The ranges of the elements of the array whose `[` is at `start`.
fn array_elements(bytes: &[u8], start: usize) -> Vec<Range<usize>> {
    let mut elements = Vec::new();
    let mut pos = skip_blanks(bytes, start + 1);
    while pos < bytes.len() && bytes.get(pos) != Some(&b']') {
        let element = pos..value_end(bytes, pos);
        pos = skip_blanks(bytes, element.end);
        elements.push(element);
        if bytes.get(pos) != Some(&b',') {
            break;
        }
        pos = skip_blanks(bytes, pos + 1);
    }
    elements
}

/// Whether the JSON string at `range` (quotes included) decodes to `key`.
fn key_is(bytes: &[u8], range: &Range<usize>, key: &str) -> bool {
    bytes
        .get(range.clone())
        .and_then(|text| serde_json::from_slice::<String>(text).ok())
        .is_some_and(|decoded| decoded == key)
}

/// The end (exclusive) of the value starting at `start`. Containers are matched by counting
/// brackets outside strings, without recursion, so depth cannot exhaust the stack.
fn value_end(bytes: &[u8], start: usize) -> usize {
    match bytes.get(start) {
        Some(b'"') => string_end(bytes, start),
        Some(b'{' | b'[') => {
            let mut depth = 0_usize;
            let mut pos = start;
            while let Some(&byte) = bytes.get(pos) {
                match byte {
                    b'"' => {
                        pos = string_end(bytes, pos);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return pos + 1;
                        }
                    }
                    _ => {}
                }
                pos += 1;
            }
            bytes.len()
        }
        // Numbers, `true`, `false`, `null`: up to the next delimiter.
        _ => {
            let len = bytes
                .get(start..)
                .unwrap_or_default()
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n'))
                .unwrap_or(bytes.len().saturating_sub(start));
            start + len
        }
    }
}

/// The end (exclusive, after the closing quote) of the string whose `"` is at `start`.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut pos = start + 1;
    while let Some(&byte) = bytes.get(pos) {
        match byte {
            b'\\' => pos += 2,
            b'"' => return pos + 1,
            _ => pos += 1,
        }
    }
    bytes.len()
}

/// The first position at or after `pos` that is not JSON white space.
fn skip_blanks(bytes: &[u8], pos: usize) -> usize {
    pos + leading_blanks(bytes.get(pos..).unwrap_or_default())
}

/// How many JSON white space bytes `bytes` starts with.
fn leading_blanks(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .count()
}

/// The run of white space just before `pos` (after the previous `{`, `[` or `,`).
fn blanks_before(bytes: &[u8], pos: usize) -> &[u8] {
    let before = bytes.get(..pos).unwrap_or_default();
    let run = before
        .iter()
        .rev()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .count();
    before.get(pos - run..).unwrap_or_default()
}

/// The spaces and tabs the line holding `pos` starts with.
fn line_indent(bytes: &[u8], pos: usize) -> String {
    let before = bytes.get(..pos).unwrap_or_default();
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = bytes.get(line_start..pos).unwrap_or_default();
    String::from_utf8_lossy(indentation(line)).into_owned()
}

/// The spaces and tabs `line` starts with.
fn indentation(line: &[u8]) -> &[u8] {
    let len = line
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t'))
        .count();
    line.get(..len).unwrap_or_default()
}

/// What the scalar starting with `first` is, for [`PathError::NotAContainer`].
fn scalar_kind(first: Option<u8>) -> &'static str {
    match first {
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}
