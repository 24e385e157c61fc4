//! Go's built-in template functions, with Go's semantics for the values a template holds.

use std::borrow::Cow;

use super::eval::Value;
use super::format::{decode_rune, is_print, sprint};

/// A built-in function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    And,
    Or,
    Not,
    Call,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Len,
    Index,
    Slice,
    Print,
    Printf,
    Println,
    Urlquery,
    Js,
    Html,
}

impl Func {
    /// The built-in called `name`.
    pub fn by_name(name: &str) -> Option<Func> {
        Some(match name {
            "and" => Func::And,
            "or" => Func::Or,
            "not" => Func::Not,
            "call" => Func::Call,
            "eq" => Func::Eq,
            "ne" => Func::Ne,
            "lt" => Func::Lt,
            "le" => Func::Le,
            "gt" => Func::Gt,
            "ge" => Func::Ge,
            "len" => Func::Len,
            "index" => Func::Index,
            "slice" => Func::Slice,
            "print" => Func::Print,
            "printf" => Func::Printf,
            "println" => Func::Println,
            "urlquery" => Func::Urlquery,
            "js" => Func::Js,
            "html" => Func::Html,
            _ => return None,
        })
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Func::And => "and",
            Func::Or => "or",
            Func::Not => "not",
            Func::Call => "call",
            Func::Eq => "eq",
            Func::Ne => "ne",
            Func::Lt => "lt",
            Func::Le => "le",
            Func::Gt => "gt",
            Func::Ge => "ge",
            Func::Len => "len",
            Func::Index => "index",
            Func::Slice => "slice",
            Func::Print => "print",
            Func::Printf => "printf",
            Func::Println => "println",
            Func::Urlquery => "urlquery",
            Func::Js => "js",
            Func::Html => "html",
        }
    }

    /// How many arguments it takes: (at least, at most).
    pub fn arity(self) -> (usize, Option<usize>) {
        match self {
            Func::Not | Func::Len => (1, Some(1)),
            Func::Ne | Func::Lt | Func::Le | Func::Gt | Func::Ge => (2, Some(2)),
            Func::Print | Func::Println | Func::Urlquery | Func::Js | Func::Html => (0, None),
            Func::And
            | Func::Or
            | Func::Call
            | Func::Eq
            | Func::Index
            | Func::Slice
            | Func::Printf => (1, None),
        }
    }
}

/// Go's `isTrue`: the zero value of its type is false.
pub(super) fn truth(v: &Value<'_>) -> bool {
    match v {
        Value::Invalid => false,
        Value::Bool(b) => *b,
        Value::Int(i) => *i != 0,
        Value::Byte(b) => *b != 0,
        Value::Float(f) => *f != 0.0,
        Value::Str(s) => !s.is_empty(),
        Value::Map(..) | Value::Root(_) => v.map_len() > 0,
    }
}

/// Go's comparison kinds.
#[derive(PartialEq, Eq, Clone, Copy)]
enum Kind {
    Invalid,
    Bool,
    Int,
    Float,
    String,
    Uint,
}

fn basic_kind(v: &Value<'_>) -> Kind {
    match v {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) => Kind::Int,
        Value::Byte(_) => Kind::Uint,
        Value::Float(_) => Kind::Float,
        Value::Str(_) => Kind::String,
        Value::Invalid | Value::Map(..) | Value::Root(_) => Kind::Invalid,
    }
}

fn as_int(v: &Value<'_>) -> i64 {
    match v {
        Value::Int(i) => *i,
        _ => 0,
    }
}

fn as_uint(v: &Value<'_>) -> u64 {
    match v {
        Value::Byte(b) => u64::from(*b),
        _ => 0,
    }
}

/// `eq arg1 arg2...`: true when `arg1` equals any of the others.
pub(super) fn eq(arg1: &Value<'_>, others: &[Value<'_>]) -> Result<bool, String> {
    if others.is_empty() {
        return Err("missing argument for comparison".to_owned());
    }
    let k1 = basic_kind(arg1);
    for arg in others {
        let k2 = basic_kind(arg);
        let truth = if k1 != k2 {
            match (k1, k2) {
                (Kind::Int, Kind::Uint) => as_int(arg1) >= 0 && as_int(arg1) as u64 == as_uint(arg),
                (Kind::Uint, Kind::Int) => as_int(arg) >= 0 && as_uint(arg1) == as_int(arg) as u64,
                _ => {
                    if arg1.is_valid() && arg.is_valid() {
                        return Err(format!(
                            "incompatible types for comparison: {} and {}",
                            arg1.type_name(),
                            arg.type_name()
                        ));
                    }
                    false
                }
            }
        } else {
            match (arg1, arg) {
                (Value::Bool(a), Value::Bool(b)) => a == b,
                (Value::Float(a), Value::Float(b)) => a == b,
                (Value::Int(a), Value::Int(b)) => a == b,
                (Value::Str(a), Value::Str(b)) => a == b,
                (Value::Byte(a), Value::Byte(b)) => a == b,
                _ => {
                    // Both are nil or maps (maps are not comparable in Go).
                    if !arg1.is_valid() || !arg.is_valid() {
                        arg1.is_valid() == arg.is_valid()
                    } else {
                        return Err(format!("non-comparable type {}", arg.type_name()));
                    }
                }
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `lt a b`.
pub(super) fn lt(a: &Value<'_>, b: &Value<'_>) -> Result<bool, String> {
    let k1 = basic_kind(a);
    let k2 = basic_kind(b);
    if k1 == Kind::Invalid || k2 == Kind::Invalid {
        return Err("invalid type for comparison".to_owned());
    }
    if k1 != k2 {
        return match (k1, k2) {
            (Kind::Int, Kind::Uint) => Ok(as_int(a) < 0 || (as_int(a) as u64) < as_uint(b)),
            (Kind::Uint, Kind::Int) => Ok(as_int(b) >= 0 && as_uint(a) < as_int(b) as u64),
            _ => Err(format!(
                "incompatible types for comparison: {} and {}",
                a.type_name(),
                b.type_name()
            )),
        };
    }
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => Ok(x < y),
        (Value::Int(x), Value::Int(y)) => Ok(x < y),
        (Value::Str(x), Value::Str(y)) => Ok(x < y),
        (Value::Byte(x), Value::Byte(y)) => Ok(x < y),
        _ => Err("invalid type for comparison".to_owned()),
    }
}

/// `le a b`.
pub(super) fn le(a: &Value<'_>, b: &Value<'_>) -> Result<bool, String> {
    if lt(a, b)? {
        return Ok(true);
    }
    eq(a, std::slice::from_ref(b))
}

/// `len x`.
pub(super) fn len(v: &Value<'_>) -> Result<Value<'static>, String> {
    match v {
        Value::Str(s) => Ok(Value::Int(s.len() as i64)),
        Value::Map(..) | Value::Root(_) => Ok(Value::Int(v.map_len() as i64)),
        Value::Invalid => Err("len of nil".to_owned()),
        other => Err(format!("len of type {}", other.type_name())),
    }
}

/// Go's `indexArg`: an integer index in `0..=cap`.
fn index_arg(index: &Value<'_>, cap: usize) -> Result<usize, String> {
    let x: i128 = match index {
        Value::Int(i) => i128::from(*i),
        Value::Byte(b) => i128::from(*b),
        Value::Invalid => return Err("cannot index slice/array with nil".to_owned()),
        other => {
            return Err(format!(
                "cannot index slice/array with type {}",
                other.type_name()
            ));
        }
    };
    if x < 0 || x > cap as i128 {
        return Err(format!("index out of range: {x}"));
    }
    Ok(x as usize)
}

/// `index item i...`.
pub(super) fn index<'a>(item: &Value<'a>, indexes: &[Value<'a>]) -> Result<Value<'a>, String> {
    if !item.is_valid() {
        return Err("index of untyped nil".to_owned());
    }
    let mut item = item.clone();
    for index in indexes {
        item = match &item {
            Value::Invalid => return Err("index of nil pointer".to_owned()),
            Value::Str(s) => {
                let x = index_arg(index, s.len())?;
                match s.get(x) {
                    Some(&b) => Value::Byte(b),
                    None => return Err(format!("index out of range: {x}")),
                }
            }
            Value::Map(..) | Value::Root(_) => {
                let key = match index {
                    Value::Str(k) => k.clone(),
                    Value::Invalid => {
                        return Err("value is nil; should be of type string".to_owned());
                    }
                    other => {
                        return Err(format!(
                            "value has type {}; should be string",
                            other.type_name()
                        ));
                    }
                };
                match std::str::from_utf8(&key).ok().and_then(|k| item.map_get(k)) {
                    Some(v) => v,
                    None if matches!(item, Value::Map(..)) => Value::Str(Cow::Borrowed(b"")),
                    None => Value::Invalid,
                }
            }
            other => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

/// `slice item i j`.
pub(super) fn slice<'a>(item: &Value<'a>, indexes: &[Value<'a>]) -> Result<Value<'a>, String> {
    if !item.is_valid() {
        return Err("slice of untyped nil".to_owned());
    }
    if indexes.len() > 3 {
        return Err(format!("too many slice indexes: {}", indexes.len()));
    }
    let Value::Str(s) = item else {
        return Err(format!("can't slice item of type {}", item.type_name()));
    };
    if indexes.len() == 3 {
        return Err("cannot 3-index slice a string".to_owned());
    }
    let mut idx = [0, s.len()];
    for (i, index) in indexes.iter().enumerate() {
        idx[i] = index_arg(index, s.len())?;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    Ok(Value::Str(match s {
        Cow::Borrowed(b) => Cow::Borrowed(&b[idx[0]..idx[1]]),
        Cow::Owned(b) => Cow::Owned(b[idx[0]..idx[1]].to_vec()),
    }))
}

/// The text `html`, `js` and `urlquery` escape: one string as is, anything else as `print`
/// would write it (with `<no value>` for nil).
fn eval_args(args: &[Value<'_>]) -> Vec<u8> {
    if let [Value::Str(s)] = args {
        return s.to_vec();
    }
    let printable: Vec<Value<'_>> = args
        .iter()
        .map(|a| match a {
            Value::Invalid => Value::Str(Cow::Borrowed(b"<no value>")),
            other => other.clone(),
        })
        .collect();
    sprint(&printable)
}

/// `html`.
pub(super) fn html(args: &[Value<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for &c in &eval_args(args) {
        match c {
            0 => out.extend_from_slice("\u{FFFD}".as_bytes()),
            b'"' => out.extend_from_slice(b"&#34;"),
            b'\'' => out.extend_from_slice(b"&#39;"),
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// `js`.
pub(super) fn js(args: &[Value<'_>]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let b = eval_args(args);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c < 0x80 {
            match c {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\'' => out.extend_from_slice(b"\\'"),
                b'"' => out.extend_from_slice(b"\\\""),
                b'<' => out.extend_from_slice(b"\\u003C"),
                b'>' => out.extend_from_slice(b"\\u003E"),
                b'&' => out.extend_from_slice(b"\\u0026"),
                b'=' => out.extend_from_slice(b"\\u003D"),
                c if c < b' ' => {
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(c >> 4)]);
                    out.push(HEX[usize::from(c & 15)]);
                }
                c => out.push(c),
            }
            i += 1;
            continue;
        }
        let (r, size) = decode_rune(&b[i..]);
        if is_print(r) {
            out.extend_from_slice(&b[i..i + size]);
        } else {
            out.extend_from_slice(format!("\\u{:04X}", u32::from(r)).as_bytes());
        }
        i += size;
    }
    out
}

/// `urlquery`: Go's `url.QueryEscape`.
pub(super) fn urlquery(args: &[Value<'_>]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::new();
    for &c in &eval_args(args) {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(c),
            b' ' => out.push(b'+'),
            c => {
                out.push(b'%');
                out.push(HEX[usize::from(c >> 4)]);
                out.push(HEX[usize::from(c & 15)]);
            }
        }
    }
    out
}
