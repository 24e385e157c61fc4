//! Differential test of `stoker_core::template` against Go's `text/template`.
//!
//! Random templates over the whole language (every action, control structure, built-in
//! function, literal form and printf verb, plus malformed input) are generated from a grammar
//! with a fixed seed, with random data, and rendered both by Stoker and by Go
//! (`hack/gotemplate-oracle`, which runs `text/template` with `missingkey=error`). Each case
//! must agree: the same output, or both an error (messages may differ).
//!
//! Needs the oracle binary: `STOKER_GOTEMPLATE_ORACLE=$(bash hack/gotemplate-oracle.sh install
//! --print-bin)` (hack/test.sh sets it). `STOKER_TEMPLATE_DIFF_CASES` (default 20,000) and
//! `STOKER_TEMPLATE_DIFF_SEED` choose the run; `STOKER_TEMPLATE_DIFF_SHOW_ERRORS=1` prints Go's
//! message for every case where both fail (to see what the generator reaches).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use stoker_core::TemplateContext;
use stoker_core::template::Template;

/// splitmix64: small, deterministic, good enough to drive a grammar.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const TEXTS: &[&str] = &[
    "a", " ", "\n", "x y", "é", "日本", "}", " \t\n ", "-", "/", ".json", "%d", "{x}",
];
/// Text that often makes the next action malformed (`{` before `{{`).
const RARE_TEXTS: &[&str] = &["{", "}}", "{ {"];
const KEYS: &[&str] = &["a", "b", "site", "x1", "_k", "Z"];
const ODD_KEYS: &[&str] = &["a-b", "é", "", "1"];
const VALUES: &[&str] = &[
    "", "a", "b c", "<&>'\"", "é", "日本", "1", "0", "%d", "{{", "\t\n", "\u{0}", "true", "-3",
    "\u{a0}", "\u{200b}", "😀", "x=y&z",
];
const FIELDS: &[&str] = &[
    ".GatewayName",
    ".PodName",
    ".PodOrdinal",
    ".CRName",
    ".Namespace",
    ".Ref",
    ".Commit",
    ".Vars",
    ".Labels",
    ".Vars.a",
    ".Vars.b",
    ".Vars.site",
    ".Labels.site",
    ".Labels.a",
    ".Vars.x1",
    ".Nope",
    ".GatewayName.x",
    ".Vars.a.b",
    ".",
    ".Vars._k",
    ".Labels.Z",
];
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "3",
    "42",
    "1.5",
    "-0.0",
    "1e3",
    "1e21",
    "0x1F",
    "0o17",
    "0b101",
    "017",
    "08",
    "1_000",
    "0x1p-2",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "18446744073709551616",
    ".5",
    "5.",
    "1e-7",
    "123456789.0",
    "0.000012345",
    "2.5",
    "0.125",
    "1e100",
    "255",
    "-7",
    "3.0",
    "1E+2",
    "0.1",
    "100000",
    "1000000",
    "+5",
    "0X_ff",
    "1.0000001",
    "-2.5e-3",
    "6.02214076e23",
    "0.3",
];
const RARE_NUMBERS: &[&str] = &[
    "1__0",
    "0x",
    "08",
    "18446744073709551616",
    "1e",
    "0x1.8",
    "1_",
];
const CHARS: &[&str] = &[
    "'a'",
    "'\\n'",
    "'é'",
    "'\\x41'",
    "'\\u00e9'",
    "'\\''",
    "'\"'",
    "'日'",
    "'\\377'",
    "'\\U0001F600'",
    "'0'",
];
const RARE_CHARS: &[&str] = &["'ab'", "'\\\"'", "''", "'\\400'"];
const STRINGS: &[&str] = &[
    "\"\"",
    "\"a\"",
    "\"{{\"",
    "\"}}\"",
    "\"a b\"",
    "\"<a href='x'>&\"",
    "\"日本\"",
    "\"\\x00\"",
    "\"\\xff\"",
    "\"\\u00e9\"",
    "\"\\t\"",
    "`raw\\n`",
    "`a\"b`",
    "\"é\"",
    "\"site\"",
    "\"a\"",
    "\"b\"",
    "\"x=y?z\"",
    "\"\\\"\"",
    "\"0\"",
    "\"Vars\"",
    "\"PodOrdinal\"",
    "\"GatewayName\"",
    "\"Nope\"",
    "\"\\xc3\"",
    "\"%v\"",
    "\"%d\"",
    "\"%s=%q\"",
    "\"%5.2f|%-4d|%x\"",
];
const RARE_STRINGS: &[&str] = &["\"\\'\"", "\"\\z\"", "\"a", "`a"];
const FUNCS: &[&str] = &[
    "and", "or", "not", "eq", "ne", "lt", "le", "gt", "ge", "len", "index", "slice", "print",
    "printf", "println", "urlquery", "js", "html", "call",
];
const VERBS: &[&str] = &[
    "v", "s", "d", "q", "t", "x", "X", "f", "e", "E", "g", "G", "c", "U", "o", "O", "b", "T", "F",
    "%", "z", "w",
];

struct Gen {
    rng: Rng,
    /// Variables declared in scope.
    vars: Vec<String>,
    in_range: usize,
    /// Inside a `define` or `block` body.
    in_body: bool,
}

impl Gen {
    fn template(&mut self) -> String {
        let mut out = String::new();
        while self.rng.chance(15) {
            self.definition(&mut out);
        }
        let n = self.rng.below(5) + 1;
        self.list(&mut out, n, 3);
        if self.rng.chance(3) {
            // Malformed input: a random cut or a stray character.
            let cut = self.rng.below(out.len() + 1);
            let mut cut = cut;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            if self.rng.chance(50) {
                out.truncate(cut);
            } else {
                out.insert(
                    cut,
                    self.rng
                        .pick(&[
                            "{", "}", "(", ")", "|", "$", "\"", "'", "`", ":", "=", ",", "-", "*",
                        ])
                        .chars()
                        .next()
                        .unwrap_or('{'),
                );
            }
        }
        out
    }

    /// `{{define "x"}}…{{end}}`, in a scope of its own.
    fn definition(&mut self, out: &mut String) {
        // Bodies call no template, so no template recurses (Go stops only at 100,000 nested
        // calls, which takes forever when a body calls itself twice).
        let in_body = std::mem::replace(&mut self.in_body, true);
        let vars = std::mem::take(&mut self.vars);
        let in_range = std::mem::replace(&mut self.in_range, 0);
        self.open(out);
        out.push_str("define ");
        out.push_str(self.rng.pick(&["\"x\"", "\"y\"", "`x`", "\"\"", "\"x\""]));
        self.close(out);
        let n = self.rng.below(3);
        self.list(out, n, 1);
        self.open(out);
        out.push_str("end");
        self.close(out);
        self.vars = vars;
        self.in_range = in_range;
        self.in_body = in_body;
    }

    /// `{{template "x" …}}` or `{{block "x" …}}…{{end}}`.
    fn call(&mut self, out: &mut String, depth: usize) {
        self.open(out);
        let block = self.rng.chance(30);
        out.push_str(if block { "block " } else { "template " });
        out.push_str(self.rng.pick(&["\"x\"", "\"y\"", "\"z\"", "`y`"]));
        if block || self.rng.chance(60) {
            out.push(' ');
            self.pipeline(out, 1, false);
        }
        self.close(out);
        if block {
            let in_body = std::mem::replace(&mut self.in_body, true);
            let vars = std::mem::take(&mut self.vars);
            let in_range = std::mem::replace(&mut self.in_range, 0);
            let n = self.rng.below(2) + 1;
            self.list(out, n, depth);
            self.open(out);
            out.push_str("end");
            self.close(out);
            self.vars = vars;
            self.in_range = in_range;
            self.in_body = in_body;
        }
    }

    fn list(&mut self, out: &mut String, n: usize, depth: usize) {
        for _ in 0..n {
            match self.rng.below(10) {
                0..=2 => {
                    let texts = if self.rng.chance(3) {
                        RARE_TEXTS
                    } else {
                        TEXTS
                    };
                    out.push_str(self.rng.pick(texts));
                }
                3..=6 => self.action(out),
                7 => self.comment(out),
                _ if depth > 0 && !self.in_body && self.rng.chance(15) => {
                    self.call(out, depth - 1);
                }
                _ if depth > 0 => self.control(out, depth - 1),
                _ => self.action(out),
            }
        }
    }

    fn open(&mut self, out: &mut String) {
        out.push_str(if self.rng.chance(15) { "{{- " } else { "{{" });
        if self.rng.chance(20) {
            out.push(' ');
        }
    }

    fn close(&mut self, out: &mut String) {
        if self.rng.chance(20) {
            out.push(' ');
        }
        out.push_str(if self.rng.chance(15) { " -}}" } else { "}}" });
    }

    fn comment(&mut self, out: &mut String) {
        let body = if self.rng.chance(5) {
            self.rng.pick(&["/* x */ ", " /* x */", "/* x"])
        } else {
            self.rng.pick(&["/* c */", "/**/", "/* {{ }} */", "/*\n*/"])
        };
        out.push_str(if self.rng.chance(30) { "{{- " } else { "{{" });
        out.push_str(body);
        out.push_str(if self.rng.chance(30) { " -}}" } else { "}}" });
    }

    fn action(&mut self, out: &mut String) {
        self.open(out);
        if self.rng.chance(2) {
            out.push_str(self.rng.pick(&[
                "",
                " ",
                "end",
                "else",
                "break",
                "continue",
                "define \"x\"",
                "template",
                "block \"x\" .",
            ]));
        } else if self.in_range > 0 && self.rng.chance(8) {
            out.push_str(self.rng.pick(&["break", "continue"]));
        } else {
            self.pipeline(out, 2, true);
        }
        self.close(out);
    }

    fn declare(&mut self, out: &mut String, range: bool) {
        let names = ["$x", "$y", "$k", "$v", "$i"];
        if range && self.rng.chance(40) {
            let a = self.rng.pick(&names).to_owned();
            let b = self.rng.pick(&names).to_owned();
            out.push_str(&format!("{a}, {b} := "));
            self.vars.push(a);
            self.vars.push(b);
            return;
        }
        let name = self.rng.pick(&names).to_owned();
        if self.vars.contains(&name) && self.rng.chance(40) {
            out.push_str(&format!("{name} = "));
        } else if self.rng.chance(5) {
            out.push_str(&format!("{name} = "));
            self.vars.push(name);
        } else {
            out.push_str(&format!("{name} := "));
            self.vars.push(name);
        }
    }

    fn pipeline(&mut self, out: &mut String, depth: usize, allow_decl: bool) {
        if allow_decl && self.rng.chance(15) {
            self.declare(out, false);
        }
        let n = 1 + usize::from(self.rng.chance(25)) + usize::from(self.rng.chance(5));
        for i in 0..n {
            if i > 0 {
                out.push_str(self.rng.pick(&[" | ", "|", " |"]));
                self.command(out, depth, true);
            } else {
                self.command(out, depth, false);
            }
        }
    }

    fn command(&mut self, out: &mut String, depth: usize, piped: bool) {
        if self.rng.chance(if piped { 93 } else { 45 }) {
            let func = self.rng.pick(FUNCS);
            out.push_str(func);
            let wrong_arity = self.rng.chance(5);
            let fed = usize::from(piped);
            let n = match func {
                _ if wrong_arity => self.rng.below(4),
                "not" | "len" => 1 - fed,
                "ne" | "lt" | "le" | "gt" | "ge" => 2 - fed,
                "printf" | "index" | "slice" | "eq" => 1 + self.rng.below(3) - fed,
                "and" | "or" => 1 + self.rng.below(3),
                _ => self.rng.below(3),
            };
            for i in 0..n {
                out.push(' ');
                if func == "printf" && i == 0 && !piped && self.rng.chance(80) {
                    self.format_string(out);
                } else {
                    self.operand(out, depth);
                }
            }
        } else {
            self.operand(out, depth);
            if self.rng.chance(3) {
                out.push(' ');
                self.operand(out, depth);
            }
        }
    }

    fn format_string(&mut self, out: &mut String) {
        let mut f = String::new();
        for _ in 0..1 + self.rng.below(3) {
            if self.rng.chance(40) {
                f.push_str(self.rng.pick(&["a", " ", "-", "é", "|"]));
            }
            f.push('%');
            for flag in ["#", "0", "+", "-", " "] {
                if self.rng.chance(10) {
                    f.push_str(flag);
                }
            }
            if self.rng.chance(5) {
                f.push_str(self.rng.pick(&["[1]", "[2]", "[0]", "[9]", "[x]"]));
            }
            if self.rng.chance(25) {
                f.push_str(self.rng.pick(&["1", "5", "12", "*", "0"]));
            }
            if self.rng.chance(20) {
                f.push_str(self.rng.pick(&[".", ".0", ".2", ".10", ".*", ".3"]));
            }
            f.push_str(self.rng.pick(VERBS));
        }
        if self.rng.chance(3) {
            f.push('%');
        }
        out.push_str(&format!("{f:?}").replace("\\u{", "\\u{"));
    }

    fn operand(&mut self, out: &mut String, depth: usize) {
        match self.rng.below(12) {
            0..=2 => out.push_str(self.rng.pick(FIELDS)),
            3 => self.variable(out),
            4 => {
                let numbers = if self.rng.chance(3) {
                    RARE_NUMBERS
                } else {
                    NUMBERS
                };
                out.push_str(self.rng.pick(numbers));
            }
            5 => {
                let strings = if self.rng.chance(3) {
                    RARE_STRINGS
                } else {
                    STRINGS
                };
                out.push_str(self.rng.pick(strings));
            }
            6 => out.push_str(self.rng.pick(&["true", "false", "nil"])),
            7 => {
                let chars = if self.rng.chance(3) {
                    RARE_CHARS
                } else {
                    CHARS
                };
                out.push_str(self.rng.pick(chars));
            }
            8 | 9 if depth > 0 => {
                out.push('(');
                let decl = self.rng.chance(10);
                self.pipeline(out, depth - 1, decl);
                out.push(')');
                if self.rng.chance(10) {
                    out.push_str(self.rng.pick(&[".a", ".Vars", ".site", ".GatewayName.x"]));
                }
            }
            10 => out.push_str(self.rng.pick(&["1", "2", "0", "\"a\"", "\"site\"", "3"])),
            _ => out.push_str(
                self.rng
                    .pick(&[".Vars", ".", ".Labels", "$", ".GatewayName"]),
            ),
        }
    }

    fn variable(&mut self, out: &mut String) {
        if self.vars.is_empty() || self.rng.chance(10) {
            let names = if self.rng.chance(5) {
                &["$x", "$undefined"][..]
            } else {
                &["$", "$.Vars.a", "$.GatewayName", "$.Vars"][..]
            };
            out.push_str(self.rng.pick(names));
            return;
        }
        let name = self.vars[self.rng.below(self.vars.len())].clone();
        out.push_str(&name);
        if self.rng.chance(10) {
            out.push_str(self.rng.pick(&[".a", ".site", ".Vars"]));
        }
    }

    fn control(&mut self, out: &mut String, depth: usize) {
        let saved = self.vars.len();
        let kind = self.rng.pick(&["if", "if", "with", "range", "range"]);
        self.open(out);
        out.push_str(kind);
        out.push(' ');
        if kind == "range" {
            if self.rng.chance(50) {
                self.declare(out, true);
            }
            out.push_str(self.rng.pick(&[
                ".Vars",
                ".Labels",
                ".",
                "3",
                "0",
                "$",
                "(len .Vars)",
                ".GatewayName",
                "-2",
                "(index \"ab\" 0)",
                "nil",
                "1.5",
                ".Vars.a",
                "(slice \"abc\" 1)",
                "2",
            ]));
            self.in_range += 1;
        } else {
            self.pipeline(out, 1, true);
        }
        self.close(out);
        let n = self.rng.below(3) + 1;
        self.list(out, n, depth);
        if kind == "range" {
            self.in_range -= 1;
        }
        while self.rng.chance(35) {
            self.open(out);
            out.push_str("else");
            if kind != "range" && self.rng.chance(50) {
                out.push(' ');
                out.push_str(kind);
                out.push(' ');
                self.pipeline(out, 1, false);
            }
            self.close(out);
            let n = self.rng.below(2) + 1;
            self.list(out, n, depth);
            if self.rng.chance(60) {
                break;
            }
        }
        self.open(out);
        out.push_str("end");
        self.close(out);
        self.vars.truncate(saved);
    }

    fn context(&mut self) -> (TemplateContext, serde_json::Value) {
        let mut ctx = TemplateContext::default();
        let mut data = serde_json::Map::new();
        let fields: [(&str, &mut Option<String>); 7] = [
            ("GatewayName", &mut ctx.gateway_name),
            ("PodName", &mut ctx.pod_name),
            ("PodOrdinal", &mut ctx.pod_ordinal),
            ("CRName", &mut ctx.cr_name),
            ("Namespace", &mut ctx.namespace),
            ("Ref", &mut ctx.reference),
            ("Commit", &mut ctx.commit),
        ];
        for (name, slot) in fields {
            if self.rng.chance(80) {
                let value = if name == "PodOrdinal" {
                    self.rng.pick(&["0", "1", "2", "17", "x"]).to_owned()
                } else {
                    self.rng.pick(VALUES).to_owned()
                };
                data.insert(name.to_owned(), value.clone().into());
                *slot = Some(value);
            }
        }
        for (name, map) in [("Vars", &mut ctx.vars), ("Labels", &mut ctx.labels)] {
            let mut object = serde_json::Map::new();
            for key in ["a", "site"] {
                if self.rng.chance(85) {
                    let value = self.rng.pick(VALUES);
                    map.insert(key.to_owned(), value.to_owned());
                    object.insert(key.to_owned(), value.into());
                }
            }
            for _ in 0..self.rng.below(3) {
                let key = if self.rng.chance(10) {
                    self.rng.pick(ODD_KEYS)
                } else {
                    self.rng.pick(KEYS)
                };
                let value = self.rng.pick(VALUES);
                map.insert(key.to_owned(), value.to_owned());
                object.insert(key.to_owned(), value.into());
            }
            data.insert(name.to_owned(), object.into());
        }
        (ctx, data.into())
    }
}

fn stoker(text: &str, ctx: &TemplateContext) -> Result<String, String> {
    Template::parse("t", text)
        .and_then(|t| t.render(ctx))
        .map_err(|e| e.to_string())
}

#[test]
fn stoker_renders_as_go_text_template() {
    let Ok(oracle) = std::env::var("STOKER_GOTEMPLATE_ORACLE") else {
        panic!(
            "STOKER_GOTEMPLATE_ORACLE is not set: build Go's text/template oracle with \
             `export STOKER_GOTEMPLATE_ORACLE=$(bash hack/gotemplate-oracle.sh install --print-bin)` \
             (needs Go; hack/test.sh does this)"
        );
    };
    let cases: usize = std::env::var("STOKER_TEMPLATE_DIFF_CASES")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(20_000);
    let seed: u64 = std::env::var("STOKER_TEMPLATE_DIFF_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_261_206);
    let mut child = Command::new(&oracle)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {oracle}: {e}"));
    let mut stdin = child.stdin.take().expect("oracle stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("oracle stdout"));
    let mut generator = Gen {
        rng: Rng(seed),
        vars: Vec::new(),
        in_range: 0,
        in_body: false,
    };
    let (mut ok, mut both_err, mut differences) = (0usize, 0usize, Vec::new());
    let batch = 2_000;
    let mut done = 0;
    while done < cases {
        let n = batch.min(cases - done);
        let mut items = Vec::with_capacity(n);
        let mut input = Vec::new();
        for _ in 0..n {
            generator.vars.clear();
            generator.in_range = 0;
            generator.in_body = false;
            let text = generator.template();
            let (ctx, data) = generator.context();
            let line = serde_json::json!({ "t": text, "d": data });
            serde_json::to_writer(&mut input, &line).expect("json");
            input.push(b'\n');
            items.push((text, ctx, data));
        }
        // Written from a thread: the oracle answers while we read, so neither side blocks on
        // a full pipe.
        let stdin_ref = &mut stdin;
        std::thread::scope(|scope| {
            let writer = scope.spawn(move || {
                stdin_ref.write_all(&input)?;
                stdin_ref.flush()
            });
            compare_batch(
                &items,
                &mut stdout,
                &mut ok,
                &mut both_err,
                &mut differences,
            );
            writer
                .join()
                .expect("writer thread")
                .expect("writing to the oracle");
        });
        done += n;
    }
    drop(stdin);
    let _ = child.wait();
    println!(
        "{done} cases (seed {seed}): {ok} same output, {both_err} both errors, {} differences",
        differences.len()
    );
    assert!(
        differences.is_empty(),
        "{} of {done} cases differ from Go; the first ones:\n{}",
        differences.len(),
        differences
            .iter()
            .take(15)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Reads the oracle's answers to one batch and compares each with Stoker's render.
fn compare_batch(
    items: &[(String, TemplateContext, serde_json::Value)],
    stdout: &mut impl BufRead,
    ok: &mut usize,
    both_err: &mut usize,
    differences: &mut Vec<String>,
) {
    for (text, ctx, data) in items {
        let mut line = String::new();
        stdout.read_line(&mut line).expect("reading the oracle");
        let answer: serde_json::Value = serde_json::from_str(&line).expect("oracle json");
        let go = if answer["ok"].as_bool() == Some(true) {
            Ok(answer["out"].as_str().unwrap_or_default().to_owned())
        } else {
            Err(answer["err"].as_str().unwrap_or_default().to_owned())
        };
        let ours = stoker(text, ctx);
        match (&go, &ours) {
            (Ok(a), Ok(b)) if a == b => *ok += 1,
            (Err(message), Err(_)) => {
                *both_err += 1;
                if std::env::var_os("STOKER_TEMPLATE_DIFF_SHOW_ERRORS").is_some() {
                    println!("ERR {message}");
                }
            }
            _ => differences.push(format!(
                "template {text:?}\n  data {data}\n  go     {go:?}\n  stoker {ours:?}"
            )),
        }
    }
}
