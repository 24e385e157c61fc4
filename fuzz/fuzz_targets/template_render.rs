//! Parses and renders arbitrary text as a Go template.
//!
//! The input is either raw text or, to reach deep into the language quickly, a sequence of
//! template pieces chosen by its bytes (`{{`, `range $k, $v := `, `printf "%5.2q" `, `(`, …).
//! Checks: never panics, never hangs (the render limits bound every input); text without `{{`
//! renders to itself; a template without actions renders the same whatever the context;
//! rendering is deterministic; render fails when parse fails; every error is
//! `Error::Template` or `Error::TemplateLimit`, and output stays within `MAX_OUTPUT`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stoker_core::template::{self, MAX_OUTPUT, Template};
use stoker_core::{Error, TemplateContext};

/// Pieces of the template language; a byte picks one.
const PIECES: &[&str] = &[
    "{{", "}}", "{{- ", " -}}", "{{/* c */}}", ".Vars.k", ".Vars", ".GatewayName", ".PodOrdinal",
    ".Labels", ".", "$", "$x", "$x := ", "$x = ", "$k, $v := ", " | ", "(", ")", " ", "if ",
    "else", "else if ", "with ", "range ", "end", "break", "continue", "define \"d\"",
    "template \"d\" ", "block \"b\" ", "and ", "or ", "not ", "eq ", "ne ", "lt ", "le ", "len ",
    "index ", "slice ", "print ", "printf ", "println ", "urlquery ", "js ", "html ", "call ",
    "\"%5.2q|%x|%-3d|%[2]v|%*d\" ", "\"{{\" ", "`raw` ", "'a' ", "1 ", "-1 ", "1e3 ", "0x1F ",
    "1.5 ", "true ", "nil ", "9999999 ", "\"é\\xff\" ", "a", "\n", "é", "{", "}",
];

fn soup(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| PIECES[usize::from(b) % PIECES.len()])
        .collect()
}

fn check(text: &str) {
    let mut ctx = TemplateContext::default()
        .with_gateway_name("site1")
        .with_var("k", "v")
        .with_var("siteNumber", "7")
        .with_var("braces", "{{.Vars.k}}")
        .with_label("site", "north");
    ctx.pod_ordinal = Some("2".to_owned());

    let rendered = template::render("fuzz", text, &ctx);
    if let Err(error) = &rendered {
        assert!(
            matches!(error, Error::Template { .. } | Error::TemplateLimit { .. }),
            "unexpected error kind: {error:?}"
        );
    }
    if let Ok(out) = &rendered {
        assert!(out.len() <= MAX_OUTPUT);
    }
    if !template::has_actions(text) {
        assert_eq!(rendered.as_deref().ok(), Some(text), "literal text must render to itself");
    }

    match Template::parse("fuzz", text) {
        Ok(parsed) => {
            assert_eq!(parsed.name(), "fuzz");
            let again = parsed.render(&ctx);
            assert_eq!(
                again.as_ref().ok(),
                rendered.as_ref().ok(),
                "rendering must be deterministic"
            );
            if parsed.is_literal() {
                assert!(parsed.variables().next().is_none());
                let empty = parsed.render(&TemplateContext::default());
                assert_eq!(empty.ok(), again.ok(), "a literal template reads no variable");
            }
            if !template::has_actions(text) {
                assert!(parsed.is_literal());
            }
        }
        Err(_) => assert!(rendered.is_err(), "render must fail when parse fails"),
    }
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((&mode, rest)) if mode % 2 == 0 => check(&soup(rest)),
        _ => check(&String::from_utf8_lossy(data)),
    }
});
