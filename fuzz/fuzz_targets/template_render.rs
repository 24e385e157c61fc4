//! Parses and renders arbitrary text as a template.
//!
//! Never panics; text without `{{` renders to itself; a template that parses without actions
//! renders whatever the context.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stoker_core::TemplateContext;
use stoker_core::template::{self, Template};

fuzz_target!(|text: &str| {
    let ctx = TemplateContext::default()
        .with_gateway_name("site1")
        .with_var("k", "v")
        .with_var("siteNumber", "7")
        .with_var("braces", "{{.Vars.k}}")
        .with_label("site", "north");

    let rendered = template::render("fuzz", text, &ctx);
    if !template::has_actions(text) {
        assert_eq!(
            rendered.as_deref().ok(),
            Some(text),
            "literal text must render to itself"
        );
    }

    if let Ok(parsed) = Template::parse("fuzz", text) {
        assert_eq!(parsed.name(), "fuzz");
        assert_eq!(parsed.is_literal(), parsed.variables().next().is_none());
        if parsed.is_literal() {
            let empty = parsed.render(&TemplateContext::default());
            assert!(
                empty.is_ok(),
                "a template without actions reads no variable"
            );
            assert_eq!(empty.ok(), parsed.render(&ctx).ok());
        }
        if !template::has_actions(text) {
            assert!(parsed.is_literal());
        }
    } else {
        assert!(rendered.is_err(), "render must fail when parse fails");
    }
});
