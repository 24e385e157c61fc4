//! Go's `fmt` for the values a template can hold: `print`, `println`, `printf` (flags, width,
//! precision, `*`, `%[n]` argument indexes, every verb Go defines for strings, integers,
//! floats, booleans and maps, and its `%!verb(type=value)` error notation), and the `%v` form
//! used to print an action's value.

use super::eval::Value;

/// Go's `unicode.IsPrint` for one character (the standard library has no general category
/// table: control, format, private-use, separator and non-character code points are the ones
/// Go does not print; unassigned code points count as printable here).
pub(super) fn is_print(c: char) -> bool {
    let u = u32::from(c);
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let format = matches!(
        u,
        0xAD | 0x600..=0x605
            | 0x61C
            | 0x6DD
            | 0x70F
            | 0x890..=0x891
            | 0x8E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    );
    let private = matches!(u, 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD);
    let nonchar = (0xFDD0..=0xFDEF).contains(&u) || u & 0xFFFE == 0xFFFE;
    !(format || private || nonchar)
}

/// Decodes one UTF-8 character at the start of `b` as Go does: an invalid byte is U+FFFD of
/// width 1.
pub(super) fn decode_rune(b: &[u8]) -> (char, usize) {
    let end = b.len().min(4);
    for width in 1..=end {
        if let Ok(s) = std::str::from_utf8(&b[..width])
            && let Some(c) = s.chars().next()
        {
            return (c, width);
        }
    }
    ('\u{FFFD}', 1)
}

fn rune_count(b: &[u8]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < b.len() {
        i += decode_rune(&b[i..]).1;
        n += 1;
    }
    n
}

const LOWER: &[u8; 17] = b"0123456789abcdefx";
const UPPER: &[u8; 17] = b"0123456789ABCDEFX";

/// Go's `strconv.Quote` / `QuoteToASCII` of a byte string.
pub(super) fn quote(s: &[u8], quote: u8, ascii_only: bool) -> Vec<u8> {
    let mut out = vec![quote];
    let mut i = 0;
    while i < s.len() {
        let (c, width) = decode_rune(&s[i..]);
        if width == 1 && c == '\u{FFFD}' {
            out.extend_from_slice(b"\\x");
            out.push(LOWER[usize::from(s[i] >> 4)]);
            out.push(LOWER[usize::from(s[i] & 15)]);
        } else {
            escaped_rune(&mut out, c, quote, ascii_only);
        }
        i += width;
    }
    out.push(quote);
    out
}

fn escaped_rune(out: &mut Vec<u8>, c: char, quote: u8, ascii_only: bool) {
    let u = u32::from(c);
    if u == u32::from(quote) || c == '\\' {
        out.push(b'\\');
        out.push(u as u8);
        return;
    }
    if ascii_only {
        if c.is_ascii() && is_print(c) {
            out.push(u as u8);
            return;
        }
    } else if is_print(c) {
        let mut buf = [0; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        return;
    }
    let simple: &[u8] = match c {
        '\x07' => b"\\a",
        '\x08' => b"\\b",
        '\x0c' => b"\\f",
        '\n' => b"\\n",
        '\r' => b"\\r",
        '\t' => b"\\t",
        '\x0b' => b"\\v",
        _ => b"",
    };
    if !simple.is_empty() {
        out.extend_from_slice(simple);
    } else if u < 0x20 || u == 0x7f {
        out.extend_from_slice(b"\\x");
        out.push(LOWER[(u >> 4) as usize]);
        out.push(LOWER[(u & 15) as usize]);
    } else if u < 0x10000 {
        out.extend_from_slice(format!("\\u{u:04x}").as_bytes());
    } else {
        out.extend_from_slice(format!("\\U{u:08x}").as_bytes());
    }
}

/// Go's `strconv.CanBackquote`.
fn can_backquote(s: &[u8]) -> bool {
    let mut i = 0;
    while i < s.len() {
        let (c, width) = decode_rune(&s[i..]);
        i += width;
        if width > 1 {
            if c == '\u{FEFF}' {
                return false;
            }
            continue;
        }
        if c == '\u{FFFD}' {
            return false;
        }
        if (c < ' ' && c != '\t') || c == '`' || c == '\u{7F}' {
            return false;
        }
    }
    true
}

/// `fmt.Sprint`: spaces between operands when neither side is a string.
pub(super) fn sprint(args: &[Value<'_>]) -> Vec<u8> {
    let mut p = Printer::default();
    let mut prev_string = false;
    for (i, arg) in args.iter().enumerate() {
        let is_string = matches!(arg, Value::Str(_));
        if i > 0 && !is_string && !prev_string {
            p.buf.push(b' ');
        }
        p.print_arg(arg, 'v');
        prev_string = is_string;
    }
    p.buf
}

/// `fmt.Sprintln`: spaces between all operands, a newline at the end.
pub(super) fn sprintln(args: &[Value<'_>]) -> Vec<u8> {
    let mut p = Printer::default();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            p.buf.push(b' ');
        }
        p.print_arg(arg, 'v');
    }
    p.buf.push(b'\n');
    p.buf
}

/// `fmt.Sprintf`.
pub(super) fn sprintf(format: &[u8], args: &[Value<'_>]) -> Vec<u8> {
    let mut p = Printer::default();
    p.do_printf(format, args);
    p.buf
}

#[derive(Default, Clone, Copy)]
struct Flags {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    plus_v: bool,
    sharp_v: bool,
    wid: usize,
    wid_present: bool,
    prec: usize,
    prec_present: bool,
}

#[derive(Default)]
struct Printer {
    buf: Vec<u8>,
    f: Flags,
}

/// Go's `parsenum`: digits at `i`, with its overflow rule (more than a million is "no number").
fn parse_num(s: &[u8], start: usize) -> (usize, bool, usize) {
    let mut num: usize = 0;
    let mut is_num = false;
    let mut i = start;
    while i < s.len() && s[i].is_ascii_digit() {
        if num > 1_000_000 {
            return (0, false, s.len());
        }
        num = num * 10 + usize::from(s[i] - b'0');
        is_num = true;
        i += 1;
    }
    (num, is_num, i)
}

/// Go's `intFromArg` for `*` widths and precisions.
fn int_from_arg(args: &[Value<'_>], arg_num: usize) -> (i64, bool, usize) {
    let Some(arg) = args.get(arg_num) else {
        return (0, false, arg_num);
    };
    let (num, is_int) = match arg {
        Value::Int(n) => (*n, true),
        Value::Byte(n) => (i64::from(*n), true),
        _ => (0, false),
    };
    if !(-1_000_000..=1_000_000).contains(&num) {
        return (0, false, arg_num + 1);
    }
    (num, is_int, arg_num + 1)
}

impl Printer {
    fn write_padding(&mut self, n: usize) {
        let pad = if self.f.zero && !self.f.minus {
            b'0'
        } else {
            b' '
        };
        self.buf.extend(std::iter::repeat_n(pad, n));
    }

    fn pad(&mut self, b: &[u8]) {
        if !self.f.wid_present || self.f.wid == 0 {
            self.buf.extend_from_slice(b);
            return;
        }
        let width = self.f.wid.saturating_sub(rune_count(b));
        if self.f.minus {
            self.buf.extend_from_slice(b);
            self.write_padding(width);
        } else {
            self.write_padding(width);
            self.buf.extend_from_slice(b);
        }
    }

    fn type_name(v: &Value<'_>) -> &'static str {
        v.type_name()
    }

    fn bad_verb(&mut self, verb: char, arg: &Value<'_>) {
        self.buf.extend_from_slice(b"%!");
        push_char(&mut self.buf, verb);
        self.buf.push(b'(');
        if matches!(arg, Value::Invalid) {
            self.buf.extend_from_slice(b"<nil>");
        } else {
            self.buf.extend_from_slice(Self::type_name(arg).as_bytes());
            self.buf.push(b'=');
            self.print_arg(arg, 'v');
        }
        self.buf.push(b')');
    }

    fn print_arg(&mut self, arg: &Value<'_>, verb: char) {
        if matches!(arg, Value::Invalid) {
            match verb {
                'T' | 'v' => self.pad(b"<nil>"),
                _ => self.bad_verb(verb, arg),
            }
            return;
        }
        if verb == 'T' {
            let name = arg.type_name().as_bytes().to_vec();
            self.fmt_s(&name);
            return;
        }
        if verb == 'w' && matches!(arg, Value::Map(..) | Value::Root(_)) {
            // Go's `%w` wants an error; a map is reported whole.
            self.bad_verb(verb, arg);
            return;
        }
        self.print_value(arg, verb, 0);
    }

    fn print_value(&mut self, value: &Value<'_>, verb: char, depth: usize) {
        match value {
            Value::Invalid => {
                if depth == 0 {
                    self.buf.extend_from_slice(b"<invalid reflect.Value>");
                } else if verb == 'v' {
                    self.buf.extend_from_slice(b"<nil>");
                } else {
                    self.bad_verb(verb, value);
                }
            }
            Value::Bool(b) => match verb {
                't' | 'v' => self.pad(if *b { b"true" } else { b"false" }),
                _ => self.bad_verb(verb, value),
            },
            Value::Int(i) => self.fmt_integer(*i as u64, true, verb, value),
            Value::Byte(b) => self.fmt_integer(u64::from(*b), false, verb, value),
            Value::Float(x) => self.fmt_float_verb(*x, verb, value),
            Value::Str(s) => self.fmt_string(s, verb, value),
            Value::Map(..) | Value::Root(_) => self.print_map(value, verb, depth),
        }
    }

    fn print_map(&mut self, value: &Value<'_>, verb: char, depth: usize) {
        if verb == 'p' {
            // Addresses differ from run to run; print what Go prints for a nil pointer's kind.
            self.bad_verb(verb, value);
            return;
        }
        if self.f.sharp_v {
            self.buf.extend_from_slice(value.type_name().as_bytes());
            self.buf.push(b'{');
        } else {
            self.buf.extend_from_slice(b"map[");
        }
        for (i, (key, item)) in value.map_entries().iter().enumerate() {
            if i > 0 {
                if self.f.sharp_v {
                    self.buf.extend_from_slice(b", ");
                } else {
                    self.buf.push(b' ');
                }
            }
            self.print_value(&Value::Str(key.as_bytes().into()), verb, depth + 1);
            self.buf.push(b':');
            self.print_value(item, verb, depth + 1);
        }
        self.buf.push(if self.f.sharp_v { b'}' } else { b']' });
    }

    fn fmt_string(&mut self, s: &[u8], verb: char, value: &Value<'_>) {
        match verb {
            'v' if self.f.sharp_v => self.fmt_q(s),
            'v' | 's' => self.fmt_s(s),
            'x' => self.fmt_sx(s, LOWER),
            'X' => self.fmt_sx(s, UPPER),
            'q' => self.fmt_q(s),
            _ => self.bad_verb(verb, value),
        }
    }

    fn truncate<'s>(&self, s: &'s [u8]) -> &'s [u8] {
        if self.f.prec_present {
            let mut n = self.f.prec;
            let mut i = 0;
            while i < s.len() {
                if n == 0 {
                    return &s[..i];
                }
                n -= 1;
                i += decode_rune(&s[i..]).1;
            }
        }
        s
    }

    fn fmt_s(&mut self, s: &[u8]) {
        let s = self.truncate(s).to_vec();
        self.pad(&s);
    }

    fn fmt_sx(&mut self, s: &[u8], digits: &[u8; 17]) {
        let mut length = s.len();
        if self.f.prec_present && self.f.prec < length {
            length = self.f.prec;
        }
        let mut width = 2 * length;
        if width > 0 {
            if self.f.space {
                if self.f.sharp {
                    width *= 2;
                }
                width += length - 1;
            } else if self.f.sharp {
                width += 2;
            }
        } else {
            if self.f.wid_present {
                self.write_padding(self.f.wid);
            }
            return;
        }
        if self.f.wid_present && self.f.wid > width && !self.f.minus {
            self.write_padding(self.f.wid - width);
        }
        if self.f.sharp {
            self.buf.extend_from_slice(&[b'0', digits[16]]);
        }
        for (i, &c) in s.iter().take(length).enumerate() {
            if self.f.space && i > 0 {
                self.buf.push(b' ');
                if self.f.sharp {
                    self.buf.extend_from_slice(&[b'0', digits[16]]);
                }
            }
            self.buf.push(digits[usize::from(c >> 4)]);
            self.buf.push(digits[usize::from(c & 15)]);
        }
        if self.f.wid_present && self.f.wid > width && self.f.minus {
            self.write_padding(self.f.wid - width);
        }
    }

    fn fmt_q(&mut self, s: &[u8]) {
        let s = self.truncate(s).to_vec();
        if self.f.sharp && can_backquote(&s) {
            let mut q = vec![b'`'];
            q.extend_from_slice(&s);
            q.push(b'`');
            self.pad(&q);
            return;
        }
        let q = quote(&s, b'"', self.f.plus);
        self.pad(&q);
    }

    fn fmt_integer(&mut self, v: u64, signed: bool, verb: char, value: &Value<'_>) {
        match verb {
            'v' if self.f.sharp_v && !signed => {
                let sharp = self.f.sharp;
                self.f.sharp = true;
                self.fmt_int(v, 16, signed, 'v', LOWER);
                self.f.sharp = sharp;
            }
            'v' | 'd' => self.fmt_int(v, 10, signed, verb, LOWER),
            'b' => self.fmt_int(v, 2, signed, verb, LOWER),
            'o' | 'O' => self.fmt_int(v, 8, signed, verb, LOWER),
            'x' => self.fmt_int(v, 16, signed, verb, LOWER),
            'X' => self.fmt_int(v, 16, signed, verb, UPPER),
            'c' => {
                let c = rune_of(v);
                let mut buf = [0; 4];
                let bytes = c.encode_utf8(&mut buf).as_bytes().to_vec();
                self.pad(&bytes);
            }
            'q' => {
                let c = rune_of(v);
                let mut buf = [0; 4];
                let s = c.encode_utf8(&mut buf).as_bytes().to_vec();
                let mut q = vec![b'\''];
                escaped_rune(&mut q, c, b'\'', self.f.plus);
                q.push(b'\'');
                let _ = s;
                self.pad(&q);
            }
            'U' => self.fmt_unicode(v),
            _ => self.bad_verb(verb, value),
        }
    }

    fn fmt_unicode(&mut self, u: u64) {
        let mut prec = 4;
        if self.f.prec_present && self.f.prec > 4 {
            prec = self.f.prec;
        }
        let mut digits = format!("{u:X}");
        while digits.len() < prec {
            digits.insert(0, '0');
        }
        let mut out = format!("U+{digits}").into_bytes();
        if self.f.sharp
            && let Some(c) = u32::try_from(u).ok().and_then(char::from_u32)
            && is_print(c)
        {
            out.extend_from_slice(b" '");
            push_char(&mut out, c);
            out.push(b'\'');
        }
        let zero = self.f.zero;
        self.f.zero = false;
        self.pad(&out);
        self.f.zero = zero;
    }

    fn fmt_int(&mut self, u: u64, base: u64, signed: bool, verb: char, digits: &[u8; 17]) {
        let negative = signed && (u as i64) < 0;
        let mut u = if negative {
            (u as i64).unsigned_abs()
        } else {
            u
        };
        let mut prec = 0;
        if self.f.prec_present {
            prec = self.f.prec;
            if prec == 0 && u == 0 {
                let zero = self.f.zero;
                self.f.zero = false;
                self.write_padding(self.f.wid);
                self.f.zero = zero;
                return;
            }
        } else if self.f.zero && !self.f.minus && self.f.wid_present {
            prec = self.f.wid;
            if negative || self.f.plus || self.f.space {
                prec = prec.saturating_sub(1);
            }
        }
        let mut out: Vec<u8> = Vec::new();
        while u >= base {
            out.push(digits[(u % base) as usize]);
            u /= base;
        }
        out.push(digits[u as usize]);
        while out.len() < prec {
            out.push(b'0');
        }
        if self.f.sharp {
            match base {
                2 => out.extend_from_slice(b"b0"),
                8 if out.last() != Some(&b'0') => out.push(b'0'),
                16 => {
                    out.push(digits[16]);
                    out.push(b'0');
                }
                _ => {}
            }
        }
        if verb == 'O' {
            out.extend_from_slice(b"o0");
        }
        if negative {
            out.push(b'-');
        } else if self.f.plus {
            out.push(b'+');
        } else if self.f.space {
            out.push(b' ');
        }
        out.reverse();
        let zero = self.f.zero;
        self.f.zero = false;
        self.pad(&out);
        self.f.zero = zero;
    }

    fn fmt_float_verb(&mut self, v: f64, verb: char, value: &Value<'_>) {
        match verb {
            'v' => self.fmt_float(v, 'g', None),
            'b' | 'g' | 'G' | 'x' | 'X' => self.fmt_float(v, verb, None),
            'f' | 'e' | 'E' => self.fmt_float(v, verb, Some(6)),
            'F' => self.fmt_float(v, 'f', Some(6)),
            _ => self.bad_verb(verb, value),
        }
    }

    fn fmt_float(&mut self, v: f64, verb: char, default_prec: Option<usize>) {
        let prec = if self.f.prec_present {
            Some(self.f.prec)
        } else {
            default_prec
        };
        let mut num = vec![b'+'];
        let formatted = format_float(v, verb, prec);
        if formatted.starts_with(b"-") || formatted.starts_with(b"+") {
            num = formatted;
        } else {
            num.extend_from_slice(&formatted);
        }
        if self.f.space && num[0] == b'+' && !self.f.plus {
            num[0] = b' ';
        }
        if self.f.sharp && verb != 'b' {
            num = sharp_float(num, verb, prec);
        }
        if self.f.plus || num[0] != b'+' {
            if self.f.zero && !self.f.minus && self.f.wid_present && self.f.wid > num.len() {
                self.buf.push(num[0]);
                self.write_padding(self.f.wid - num.len());
                self.buf.extend_from_slice(&num[1..]);
                return;
            }
            self.pad(&num);
            return;
        }
        let rest = num[1..].to_vec();
        self.pad(&rest);
    }

    fn clear_flags(&mut self) {
        self.f = Flags::default();
    }

    /// Go's `argNumber`: `[n]` at `i`.
    fn arg_number(
        &mut self,
        arg_num: usize,
        format: &[u8],
        i: usize,
        num_args: usize,
        state: &mut PrintfState,
    ) -> (usize, usize, bool) {
        if format.get(i) != Some(&b'[') {
            return (arg_num, i, false);
        }
        state.reordered = true;
        let rest = &format[i..];
        let (index, wid, ok) = parse_arg_number(rest);
        if ok && index < num_args {
            return (index, i + wid, true);
        }
        state.good_arg_num = false;
        (arg_num, i + wid, ok)
    }

    #[allow(clippy::too_many_lines)] // Go's printf verb loop, kept in one piece to compare with fmt's
    fn do_printf(&mut self, format: &[u8], args: &[Value<'_>]) {
        let end = format.len();
        let mut arg_num = 0;
        let mut state = PrintfState::default();
        let mut i = 0;
        'format: while i < end {
            state.good_arg_num = true;
            let last = i;
            while i < end && format[i] != b'%' {
                i += 1;
            }
            if i > last {
                self.buf.extend_from_slice(&format[last..i]);
            }
            if i >= end {
                break;
            }
            i += 1;
            self.clear_flags();
            while i < end {
                let c = format[i];
                match c {
                    b'#' => self.f.sharp = true,
                    b'0' => self.f.zero = true,
                    b'+' => self.f.plus = true,
                    b'-' => self.f.minus = true,
                    b' ' => self.f.space = true,
                    _ => {
                        if c.is_ascii_lowercase() && arg_num < args.len() {
                            if c == b'v' || c == b'w' {
                                self.f.sharp_v = self.f.sharp;
                                self.f.sharp = false;
                                self.f.plus_v = self.f.plus;
                                self.f.plus = false;
                            }
                            self.print_arg(&args[arg_num], char::from(c));
                            arg_num += 1;
                            i += 1;
                            continue 'format;
                        }
                        break;
                    }
                }
                i += 1;
            }
            let after_index;
            (arg_num, i, after_index) = self.arg_number(arg_num, format, i, args.len(), &mut state);
            let mut after_index = after_index;
            if i < end && format[i] == b'*' {
                i += 1;
                let (wid, present, next) = int_from_arg(args, arg_num);
                arg_num = next;
                self.f.wid_present = present;
                if !present {
                    self.buf.extend_from_slice(b"%!(BADWIDTH)");
                }
                if wid < 0 {
                    self.f.minus = true;
                    self.f.zero = false;
                }
                self.f.wid = wid.unsigned_abs() as usize;
                after_index = false;
            } else {
                let (wid, present, next) = parse_num(format, i);
                self.f.wid = wid;
                self.f.wid_present = present;
                i = next;
                if after_index && present {
                    state.good_arg_num = false;
                }
            }
            if i + 1 < end && format[i] == b'.' {
                i += 1;
                if after_index {
                    state.good_arg_num = false;
                }
                (arg_num, i, after_index) =
                    self.arg_number(arg_num, format, i, args.len(), &mut state);
                if i < end && format[i] == b'*' {
                    i += 1;
                    let (prec, present, next) = int_from_arg(args, arg_num);
                    arg_num = next;
                    self.f.prec_present = present;
                    self.f.prec = usize::try_from(prec).unwrap_or(0);
                    if prec < 0 {
                        self.f.prec = 0;
                        self.f.prec_present = false;
                    }
                    if !present {
                        self.buf.extend_from_slice(b"%!(BADPREC)");
                    }
                    after_index = false;
                } else {
                    let (prec, present, next) = parse_num(format, i);
                    self.f.prec = prec;
                    self.f.prec_present = true;
                    if !present {
                        self.f.prec = 0;
                    }
                    i = next;
                }
            }
            if !after_index {
                (arg_num, i, _) = self.arg_number(arg_num, format, i, args.len(), &mut state);
            }
            if i >= end {
                self.buf.extend_from_slice(b"%!(NOVERB)");
                break;
            }
            let (verb, size) = decode_rune(&format[i..]);
            i += size;
            if verb == '%' {
                self.buf.push(b'%');
            } else if !state.good_arg_num {
                self.buf.extend_from_slice(b"%!");
                push_char(&mut self.buf, verb);
                self.buf.extend_from_slice(b"(BADINDEX)");
            } else if arg_num >= args.len() {
                self.buf.extend_from_slice(b"%!");
                push_char(&mut self.buf, verb);
                self.buf.extend_from_slice(b"(MISSING)");
            } else {
                if verb == 'v' || verb == 'w' {
                    self.f.sharp_v = self.f.sharp;
                    self.f.sharp = false;
                    self.f.plus_v = self.f.plus;
                    self.f.plus = false;
                }
                self.print_arg(&args[arg_num], verb);
                arg_num += 1;
            }
        }
        if !state.reordered && arg_num < args.len() {
            self.clear_flags();
            self.buf.extend_from_slice(b"%!(EXTRA ");
            for (k, arg) in args[arg_num..].iter().enumerate() {
                if k > 0 {
                    self.buf.extend_from_slice(b", ");
                }
                if matches!(arg, Value::Invalid) {
                    self.buf.extend_from_slice(b"<nil>");
                } else {
                    self.buf.extend_from_slice(arg.type_name().as_bytes());
                    self.buf.push(b'=');
                    self.print_arg(arg, 'v');
                }
            }
            self.buf.push(b')');
        }
    }
}

#[derive(Default)]
struct PrintfState {
    reordered: bool,
    good_arg_num: bool,
}

/// Go's `parseArgNumber` on text starting with `[`: (index, bytes used, ok).
fn parse_arg_number(format: &[u8]) -> (usize, usize, bool) {
    if format.len() < 3 {
        return (0, 1, false);
    }
    for i in 1..format.len() {
        if format[i] == b']' {
            let (width, ok, next) = parse_num(format, 1);
            if !ok || next != i || width == 0 {
                // Go computes width-1 and rejects a negative index later; 0 is never valid.
                return (usize::MAX, i + 1, ok && next == i);
            }
            return (width - 1, i + 1, true);
        }
    }
    (0, 1, false)
}

fn push_char(buf: &mut Vec<u8>, c: char) {
    let mut b = [0; 4];
    buf.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
}

fn rune_of(v: u64) -> char {
    u32::try_from(v)
        .ok()
        .and_then(char::from_u32)
        .unwrap_or('\u{FFFD}')
}

/// The `#` flag on floats: keep the decimal point, and for `%g` / `%x` the trailing zeros.
fn sharp_float(mut num: Vec<u8>, verb: char, prec: Option<usize>) -> Vec<u8> {
    let mut digits: i64 = match verb {
        'v' | 'g' | 'G' | 'x' => prec.map_or(6, |p| p as i64),
        _ => 0,
    };
    let mut tail = Vec::new();
    let mut has_point = false;
    let mut saw_nonzero = false;
    let mut i = 1;
    while i < num.len() {
        match num[i] {
            b'.' => has_point = true,
            b'p' | b'P' => {
                tail.extend_from_slice(&num[i..]);
                num.truncate(i);
                break;
            }
            b'e' | b'E' if verb != 'x' && verb != 'X' => {
                tail.extend_from_slice(&num[i..]);
                num.truncate(i);
                break;
            }
            c => {
                if c != b'0' {
                    saw_nonzero = true;
                }
                if saw_nonzero {
                    digits -= 1;
                }
            }
        }
        i += 1;
    }
    if !has_point {
        if num.len() == 2 && num[1] == b'0' {
            digits -= 1;
        }
        num.push(b'.');
    }
    while digits > 0 {
        num.push(b'0');
        digits -= 1;
    }
    num.extend_from_slice(&tail);
    num
}

/// Decimal digits of a float without leading or trailing zeros, and the decimal point
/// position (`0.d1d2… × 10^dp`); zero has no digits.
struct Digits {
    d: Vec<u8>,
    dp: i64,
}

fn digits_from_scientific(s: &str) -> Digits {
    let (mantissa, exp) = s.split_once('e').unwrap_or((s, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let mut d: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    while d.last() == Some(&b'0') {
        d.pop();
    }
    if d.is_empty() {
        return Digits { d, dp: 0 };
    }
    Digits { d, dp: exp + 1 }
}

/// Go's `strconv.FormatFloat(v, verb, prec, 64)` (`None`: the shortest representation).
pub(super) fn format_float(v: f64, verb: char, prec: Option<usize>) -> Vec<u8> {
    let negative = v.is_sign_negative();
    let a = v.abs();
    let mut out = Vec::new();
    if negative {
        out.push(b'-');
    }
    match verb {
        'b' => {
            let (mant, exp) = float_parts(a);
            let exp = exp - 1023 - 52;
            out.extend_from_slice(
                format!("{mant}p{}{exp}", if exp >= 0 { "+" } else { "" }).as_bytes(),
            );
            return out;
        }
        'x' | 'X' => {
            out.extend_from_slice(&format_hex_float(a, verb, prec));
            return out;
        }
        'f' if prec.is_some() => {
            let p = prec.unwrap_or(0);
            out.extend_from_slice(format!("{a:.p$}").as_bytes());
            return out;
        }
        _ => {}
    }
    let shortest = prec.is_none();
    let (digits, prec) = match prec {
        None => {
            let d = digits_from_scientific(&format!("{a:e}"));
            let nd = d.d.len() as i64;
            let p = match verb {
                'e' | 'E' => (nd - 1).max(0),
                'f' => (nd - d.dp).max(0),
                _ => nd,
            };
            (d, p)
        }
        Some(p) => {
            let mut p = p as i64;
            let n = match verb {
                'e' | 'E' => p + 1,
                _ => {
                    if p == 0 {
                        p = 1;
                    }
                    p
                }
            };
            let n = n.clamp(1, 2000) as usize;
            (
                digits_from_scientific(&format!("{a:.prec$e}", prec = n - 1)),
                p,
            )
        }
    };
    format_digits(&mut out, digits, prec, verb, shortest);
    out
}

fn format_digits(out: &mut Vec<u8>, d: Digits, prec: i64, verb: char, shortest: bool) {
    match verb {
        'e' | 'E' => fmt_e(out, &d, prec, verb),
        'f' => fmt_f(out, &d, prec),
        _ => {
            let nd = d.d.len() as i64;
            let mut eprec = prec;
            if eprec > nd && nd >= d.dp {
                eprec = nd;
            }
            if shortest {
                eprec = 6;
            }
            let exp = d.dp - 1;
            if exp < -4 || exp >= eprec {
                let p = prec.min(nd);
                fmt_e(out, &d, p - 1, if verb == 'g' { 'e' } else { 'E' });
                return;
            }
            let p = if prec > d.dp { nd } else { prec };
            fmt_f(out, &d, (p - d.dp).max(0));
        }
    }
}

fn fmt_e(out: &mut Vec<u8>, d: &Digits, prec: i64, verb: char) {
    out.push(d.d.first().copied().unwrap_or(b'0'));
    if prec > 0 {
        out.push(b'.');
        for i in 1..=prec {
            out.push(d.d.get(i as usize).copied().unwrap_or(b'0'));
        }
    }
    out.push(if verb == 'E' { b'E' } else { b'e' });
    let exp = if d.d.is_empty() { 0 } else { d.dp - 1 };
    push_exponent(out, exp);
}

fn fmt_f(out: &mut Vec<u8>, d: &Digits, prec: i64) {
    if d.dp > 0 {
        for i in 0..d.dp {
            out.push(d.d.get(i as usize).copied().unwrap_or(b'0'));
        }
    } else {
        out.push(b'0');
    }
    if prec > 0 {
        out.push(b'.');
        for i in 1..=prec {
            let j = d.dp + i - 1;
            let c = if j >= 0 {
                d.d.get(j as usize).copied()
            } else {
                None
            };
            out.push(c.unwrap_or(b'0'));
        }
    }
}

/// The 53-bit mantissa of `a` (with the implicit leading 1 of a normal number) and its biased
/// binary exponent (1 for a subnormal, whose mantissa has no implicit 1), as Go's `strconv`
/// splits a float64 before formatting it as `%b` or `%x`.
fn float_parts(a: f64) -> (u64, i64) {
    let bits = a.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i64;
    let mant = bits & ((1 << 52) - 1);
    if exp == 0 {
        (mant, 1)
    } else {
        (mant | (1 << 52), exp)
    }
}

/// Go's `%x` for floats: `0x1.8p+01`.
fn format_hex_float(a: f64, verb: char, prec: Option<usize>) -> Vec<u8> {
    let (mut mant, exp) = float_parts(a);
    let mut exp = exp - 1023;
    if mant == 0 {
        exp = 0;
    }
    mant <<= 60 - 52;
    while mant != 0 && mant & (1 << 60) == 0 {
        mant <<= 1;
        exp -= 1;
    }
    if let Some(p) = prec
        && p < 15
    {
        let shift = (p * 4) as u32;
        let extra = (mant << shift) & ((1 << 60) - 1);
        mant >>= 60 - shift;
        if extra | (mant & 1) > 1 << 59 {
            mant += 1;
        }
        mant <<= 60 - shift;
        if mant & (1 << 61) != 0 {
            mant >>= 1;
            exp += 1;
        }
    }
    let hex = if verb == 'X' { UPPER } else { LOWER };
    let mut out = vec![b'0', if verb == 'X' { b'X' } else { b'x' }];
    out.push(b'0' + ((mant >> 60) & 1) as u8);
    mant <<= 4;
    match prec {
        None if mant != 0 => {
            out.push(b'.');
            while mant != 0 {
                out.push(hex[((mant >> 60) & 15) as usize]);
                mant <<= 4;
            }
        }
        Some(p) if p > 0 => {
            out.push(b'.');
            for _ in 0..p {
                out.push(hex[((mant >> 60) & 15) as usize]);
                mant <<= 4;
            }
        }
        _ => {}
    }
    out.push(if verb == 'X' { b'P' } else { b'p' });
    push_exponent(&mut out, exp);
    out
}

/// An exponent as Go's `%e` and `%x` write it: a sign, then at least two digits.
fn push_exponent(out: &mut Vec<u8>, exp: i64) {
    out.push(if exp < 0 { b'-' } else { b'+' });
    let digits = exp.unsigned_abs();
    if digits < 10 {
        out.push(b'0');
    }
    out.extend_from_slice(digits.to_string().as_bytes());
}
