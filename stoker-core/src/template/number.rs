//! Go's literal syntax inside actions: numbers as `strconv.ParseInt` / `ParseUint` /
//! `ParseFloat` read them (base prefixes, `_` separators, hexadecimal floats), character
//! constants and quoted strings as `strconv.Unquote` reads them.

/// A number constant, as Go's template parser classifies it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Number {
    /// The text as written, for error messages.
    pub text: String,
    /// What the constant evaluates to.
    pub ideal: Ideal,
}

/// The value of a number constant where Go has no type to convert it to (every built-in takes
/// its arguments untyped).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Ideal {
    Int(i64),
    Float(f64),
    /// An integer too large for `int` (it fits `uint64`): an error when evaluated.
    Overflow,
}

impl Number {
    /// A character constant: its code point, as an `int`.
    pub fn rune(c: u32) -> Number {
        Number {
            text: String::new(),
            ideal: Ideal::Int(i64::from(c)),
        }
    }
}

/// Parses a number token. `Ok(None)`: an imaginary constant (`2i`), which Stoker does not
/// support. `Err`: what Go's parser reports.
pub(crate) fn parse_number(text: &str) -> Result<Option<Number>, String> {
    if let Some(mantissa) = text.strip_suffix('i')
        && parse_float(mantissa).is_some()
    {
        return Ok(None);
    }
    let int = parse_int(text);
    let uint = parse_uint(text);
    let contains_float_marks = text.contains(['.', 'e', 'E', 'p', 'P']);
    let is_hex_int = text.len() > 2
        && text.starts_with('0')
        && matches!(text.as_bytes().get(1), Some(b'x' | b'X'))
        && !text.contains(['p', 'P']);
    let float = match (int, uint) {
        (Some(i), _) => Some(i as f64),
        (None, Some(u)) => Some(u as f64),
        (None, None) => {
            let Some(f) = parse_float(text) else {
                return Err(format!("illegal number syntax: {text:?}"));
            };
            if !contains_float_marks {
                return Err(format!("integer overflow: {text:?}"));
            }
            Some(f)
        }
    };
    let as_int = int.or_else(|| float.and_then(exact_i64));
    let ideal = match float {
        Some(f) if !is_hex_int && contains_float_marks => Ideal::Float(f),
        _ => match as_int {
            Some(i) => Ideal::Int(i),
            None => Ideal::Overflow,
        },
    };
    Ok(Some(Number {
        text: text.to_owned(),
        ideal,
    }))
}

/// `f` as an `i64` when it is an integer in range (Go: `float64(int64(f)) == f` on amd64).
fn exact_i64(f: f64) -> Option<i64> {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    (f.fract() == 0.0 && (-TWO_63..TWO_63).contains(&f)).then_some(f as i64)
}

/// Go's `underscoreOK`: `_` only between digits, or between a base prefix and a digit.
fn underscore_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i = 1;
    }
    let mut saw = b'^';
    let mut hex = false;
    if b.len() >= i + 2 && b[i] == b'0' && matches!(b[i + 1] | 0x20, b'b' | b'o' | b'x') {
        hex = b[i + 1] | 0x20 == b'x';
        saw = b'0';
        i += 2;
    }
    for &c in b.get(i..).unwrap_or_default() {
        if c.is_ascii_digit() || (hex && (c | 0x20).is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
    }
    saw != b'_'
}

/// Go's `strconv.ParseUint(s, 0, 64)`.
fn parse_uint(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() {
        return None;
    }
    let (base, digits) = match b {
        [b'0', p, _, ..] if p | 0x20 == b'b' => (2, &b[2..]),
        [b'0', p, _, ..] if p | 0x20 == b'o' => (8, &b[2..]),
        [b'0', p, _, ..] if p | 0x20 == b'x' => (16, &b[2..]),
        [b'0', ..] => (8, &b[1..]),
        _ => (10, b),
    };
    let mut value: u64 = 0;
    let mut underscores = false;
    for &c in digits {
        if c == b'_' {
            underscores = true;
            continue;
        }
        let digit = char::from(c).to_digit(36)?;
        if digit >= base {
            return None;
        }
        value = value
            .checked_mul(u64::from(base))?
            .checked_add(u64::from(digit))?;
    }
    if underscores && !underscore_ok(s) {
        return None;
    }
    Some(value)
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
fn parse_int(s: &str) -> Option<i64> {
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, s.get(1..)?),
        Some(b'+') => (false, s.get(1..)?),
        _ => (false, s),
    };
    let u = parse_uint(rest)?;
    if negative {
        if u > 1 << 63 {
            return None;
        }
        Some((u as i64).wrapping_neg())
    } else {
        i64::try_from(u).ok()
    }
}

/// Go's `strconv.ParseFloat(s, 64)` for the texts the lexer produces (no `Inf` / `NaN`);
/// `None` on a syntax error or when the value is out of range.
pub(crate) fn parse_float(s: &str) -> Option<f64> {
    if s.contains('_') && !underscore_ok(s) {
        return None;
    }
    let clean: String = s.chars().filter(|&c| c != '_').collect();
    let (negative, body) = match clean.as_bytes().first() {
        Some(b'-') => (true, clean.get(1..)?),
        Some(b'+') => (false, clean.get(1..)?),
        _ => (false, clean.as_str()),
    };
    let value = if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        parse_hex_float(hex)?
    } else {
        if !body
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
        {
            return None;
        }
        body.parse::<f64>().ok()?
    };
    if value.is_infinite() {
        return None;
    }
    Some(if negative { -value } else { value })
}

/// `1.8p3` (after `0x`): hexadecimal mantissa, binary exponent (required, as in Go).
fn parse_hex_float(s: &str) -> Option<f64> {
    let (mantissa, exponent) = s.split_once(['p', 'P'])?;
    let exponent: i64 = match exponent.strip_prefix('+') {
        Some(e) if !e.starts_with(['+', '-']) => e.parse().ok()?,
        _ => exponent.parse().ok()?,
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let mut m: u128 = 0;
    let mut scale: i64 = 0;
    for (i, c) in int_part.chars().chain(frac_part.chars()).enumerate() {
        let d = c.to_digit(16)?;
        if m >> 120 != 0 {
            // Further digits cannot change a correctly rounded f64 in practice; count the
            // place value only.
            if i < int_part.len() {
                scale += 4;
            }
            continue;
        }
        m = m * 16 + u128::from(d);
        if i >= int_part.len() {
            scale -= 4;
        }
    }
    let e = exponent.checked_add(scale)?.clamp(-2000, 2000);
    let mut value = m as f64;
    let mut e = e as i32;
    while e > 0 {
        let step = e.min(1000);
        value *= 2f64.powi(step);
        e -= step;
    }
    while e < 0 {
        let step = (-e).min(1000);
        value /= 2f64.powi(step);
        e += step;
    }
    Some(value)
}

/// One escape or character of a quoted literal, as Go's `strconv.UnquoteChar`: the value and
/// whether it is a code point (`false`: a raw byte from `\x` / octal) and the rest.
fn unquote_one(s: &[u8], quote: u8) -> Option<(u32, bool, &[u8])> {
    let (&c, rest) = s.split_first()?;
    if c == quote && (quote == b'\'' || quote == b'"') {
        return None;
    }
    if c >= 0x80 {
        let text = std::str::from_utf8(s).ok()?;
        let ch = text.chars().next()?;
        return Some((u32::from(ch), true, &s[ch.len_utf8()..]));
    }
    if c != b'\\' {
        return Some((u32::from(c), false, rest));
    }
    let (&e, rest) = rest.split_first()?;
    let simple = match e {
        b'a' => Some(0x07),
        b'b' => Some(0x08),
        b'f' => Some(0x0c),
        b'n' => Some(u32::from(b'\n')),
        b'r' => Some(u32::from(b'\r')),
        b't' => Some(u32::from(b'\t')),
        b'v' => Some(0x0b),
        b'\\' => Some(u32::from(b'\\')),
        b'\'' | b'"' if e == quote => Some(u32::from(e)),
        _ => None,
    };
    if let Some(v) = simple {
        return Some((v, false, rest));
    }
    match e {
        b'x' | b'u' | b'U' => {
            let n = match e {
                b'x' => 2,
                b'u' => 4,
                _ => 8,
            };
            let digits = rest.get(..n)?;
            let mut v: u32 = 0;
            for &d in digits {
                v = v.checked_mul(16)? | char::from(d).to_digit(16)?;
            }
            if e == b'x' {
                return Some((v, false, &rest[n..]));
            }
            char::from_u32(v)?;
            Some((v, true, &rest[n..]))
        }
        b'0'..=b'7' => {
            let digits = rest.get(..2)?;
            let mut v = u32::from(e - b'0');
            for &d in digits {
                if !(b'0'..=b'7').contains(&d) {
                    return None;
                }
                v = v << 3 | u32::from(d - b'0');
            }
            (v <= 255).then_some((v, false, &rest[2..]))
        }
        _ => None,
    }
}

/// `'x'` → its code point (Go's rules: one character or escape between single quotes).
pub(crate) fn unquote_char(text: &str) -> Option<u32> {
    let inner = text.as_bytes().get(1..)?;
    let (value, _, tail) = unquote_one(inner, b'\'')?;
    (tail == b"'").then_some(value)
}

/// A `"…"` or `` `…` `` literal → its bytes (Go's `strconv.Unquote`).
pub(crate) fn unquote(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.len() < 2 {
        return None;
    }
    let quote = bytes[0];
    let inner = bytes.get(1..bytes.len() - 1)?;
    if bytes[bytes.len() - 1] != quote {
        return None;
    }
    if quote == b'`' {
        if inner.contains(&b'`') {
            return None;
        }
        return Some(inner.iter().copied().filter(|&c| c != b'\r').collect());
    }
    if quote != b'"' || inner.contains(&b'\n') {
        return None;
    }
    let mut out = Vec::with_capacity(inner.len());
    let mut rest = inner;
    while !rest.is_empty() {
        let (value, multibyte, tail) = unquote_one(rest, b'"')?;
        if value < 0x80 || !multibyte {
            out.push(u8::try_from(value).ok()?);
        } else {
            let c = char::from_u32(value)?;
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
        rest = tail;
    }
    Some(out)
}
