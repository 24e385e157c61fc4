//! A small renderer for the Go `text/template` subset Stoker users write.
//!
//! Supported, exactly:
//!
//! - literal text, passed through unchanged (a single `{` or `}`, `{view.params.x}`, a stray
//!   `}}` are all literal);
//! - actions reading a field path: `{{.GatewayName}}`, `{{ .Vars.siteNumber }}`,
//!   `{{.Labels.site}}` — segments are `[A-Za-z_][A-Za-z0-9_]*`, spaces inside the braces are
//!   allowed;
//! - Go's trim markers `{{- ` and ` -}}`, which remove all white space (space, tab, carriage
//!   return, newline — Go's definition) before / after the action. As in Go the marker needs a
//!   white space character next to it: `{{-3}}` is not a trim marker;
//! - comments `{{/* … */}}`, also with trim markers (`{{- /* … */ -}}`), which render nothing.
//!   As in Go, the comment must start right after `{{` (or `{{- `) and end right before `}}`
//!   (or ` -}}`).
//!
//! Everything else — pipelines, functions, `if` / `range` / `end`, `$variables`, strings,
//! numbers, a bare `{{.}}`, an empty or unterminated action — is an error. Reading a variable
//! that is unknown or not set is an error too, never an empty string.
//!
//! Parsing and rendering are linear in the size of the text and never panic.

use crate::context::{LookupError, TemplateContext};
use crate::error::{Error, Result};
use crate::profile::is_identifier;

/// Longest excerpt of an unsupported action quoted in an error message, in bytes.
const MAX_QUOTED: usize = 64;

/// A parsed template: literal text and field-path actions.
///
/// Trim markers and comments are applied while parsing, so a template holds only what it
/// renders.
///
/// ```
/// use stoker_core::TemplateContext;
/// use stoker_core::template::Template;
///
/// let ctx = TemplateContext::default()
///     .with_gateway_name("site1")
///     .with_var("siteNumber", "7");
/// let template = Template::parse("mappings[0].destination", "config/{{.GatewayName}}-{{ .Vars.siteNumber }}")?;
/// assert_eq!(template.render(&ctx)?, "config/site1-7");
/// # Ok::<(), stoker_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    name: String,
    nodes: Vec<Node>,
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    /// Literal text, already trimmed by neighbouring trim markers.
    Text(String),
    /// `{{.A.B}}`: the field path `["A", "B"]`, and the byte offset of its `{{`.
    Field { path: Vec<String>, offset: usize },
}

impl Template {
    /// Parses `text`; `name` identifies the template in error messages (a mapping field such as
    /// `mappings[0].source`, or a file path).
    ///
    /// # Errors
    ///
    /// [`Error::Template`] naming `name`, with a message saying what is wrong and at which byte
    /// offset: `unclosed action at offset 0`, `unsupported action "if .X" at offset 5 (only
    /// {{.Field.Path}} is supported)`, …
    ///
    /// ```
    /// use stoker_core::template::Template;
    ///
    /// let template = Template::parse("greeting", "Hello {{- /* name */ -}} , {{.GatewayName}}!")?;
    /// assert!(!template.is_literal());
    ///
    /// let err = Template::parse("greeting", "Hello {{.Gateway | upper}}").unwrap_err();
    /// assert!(err.to_string().contains("unsupported action"));
    /// # Ok::<(), stoker_core::Error>(())
    /// ```
    pub fn parse(name: &str, text: &str) -> Result<Template> {
        let error = |message: String| Error::template(name, message);
        let mut nodes = Vec::new();
        // Literal text not yet pushed: `pending` is the text, which a following `{{- ` may trim.
        let mut pending = String::new();
        // Where the text since the previous action (comments included) starts in `pending`: as
        // in Go, `{{- ` trims only that text, not text before a comment.
        let mut since_action = 0;
        let mut pos = 0;

        while let Some(found) = text.get(pos..).and_then(|rest| rest.find("{{")) {
            let start = pos + found;
            pending.push_str(text.get(pos..start).unwrap_or_default());
            let action = lex_action(text, start).map_err(error)?;
            if action.trim_left {
                let text_since = pending.get(since_action..).unwrap_or_default();
                let kept = since_action + text_since.trim_end_matches(is_go_space).len();
                pending.truncate(kept);
            }
            if let Some(path) = action.path {
                if !pending.is_empty() {
                    nodes.push(Node::Text(std::mem::take(&mut pending)));
                }
                nodes.push(Node::Field {
                    path,
                    offset: start,
                });
            }
            since_action = pending.len();
            pos = action.end;
            if action.trim_right {
                let rest = text.get(pos..).unwrap_or_default();
                pos += rest.len() - rest.trim_start_matches(is_go_space).len();
            }
        }
        pending.push_str(text.get(pos..).unwrap_or_default());
        if !pending.is_empty() {
            nodes.push(Node::Text(pending));
        }
        Ok(Template {
            name: name.to_owned(),
            nodes,
        })
    }

    /// Renders the template with the variables of `ctx`.
    ///
    /// # Errors
    ///
    /// [`Error::Template`] naming the template when a variable is unknown (`unknown variable
    /// .Gatewayname at offset 12`), not set (`variable .Vars.site is not set at offset 3`) or
    /// not a value (`variable .Vars is not a value at offset 0`).
    ///
    /// ```
    /// use stoker_core::TemplateContext;
    /// use stoker_core::template::Template;
    ///
    /// let template = Template::parse("host", "{{.Vars.site}}.example.com")?;
    /// let ctx = TemplateContext::default().with_var("site", "north");
    /// assert_eq!(template.render(&ctx)?, "north.example.com");
    ///
    /// let err = template.render(&TemplateContext::default()).unwrap_err();
    /// assert!(err.to_string().contains("variable .Vars.site is not set at offset 0"));
    /// # Ok::<(), stoker_core::Error>(())
    /// ```
    pub fn render(&self, ctx: &TemplateContext) -> Result<String> {
        let mut out = String::with_capacity(self.literal_len());
        for node in &self.nodes {
            match node {
                Node::Text(text) => out.push_str(text),
                Node::Field { path, offset } => {
                    let segments: Vec<&str> = path.iter().map(String::as_str).collect();
                    let value = ctx.lookup(&segments).map_err(|err| {
                        let path = path.join(".");
                        let message = match err {
                            LookupError::Unknown => format!("unknown variable .{path}"),
                            LookupError::Unset => format!("variable .{path} is not set"),
                            LookupError::NotAValue => format!("variable .{path} is not a value"),
                        };
                        Error::template(&self.name, format!("{message} at offset {offset}"))
                    })?;
                    out.push_str(value);
                }
            }
        }
        Ok(out)
    }

    /// The name given to [`Template::parse`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the template has no actions (comments do not count): it renders to the same
    /// text whatever the context.
    ///
    /// ```
    /// use stoker_core::template::Template;
    ///
    /// assert!(Template::parse("t", "plain {{/* note */}}text")?.is_literal());
    /// assert!(!Template::parse("t", "{{.Ref}}")?.is_literal());
    /// # Ok::<(), stoker_core::Error>(())
    /// ```
    pub fn is_literal(&self) -> bool {
        self.nodes.iter().all(|node| matches!(node, Node::Text(_)))
    }

    /// The field paths the template reads, in order of appearance, repeated if read twice:
    /// `{{.Vars.site}}` yields `["Vars", "site"]`.
    ///
    /// ```
    /// use stoker_core::template::Template;
    ///
    /// let template = Template::parse("t", "{{.GatewayName}}/{{.Vars.site}}")?;
    /// let paths: Vec<&[String]> = template.variables().collect();
    /// assert_eq!(paths, [&["GatewayName".to_owned()][..], &["Vars".to_owned(), "site".to_owned()][..]]);
    /// # Ok::<(), stoker_core::Error>(())
    /// ```
    pub fn variables(&self) -> impl Iterator<Item = &[String]> + '_ {
        self.nodes.iter().filter_map(|node| match node {
            Node::Text(_) => None,
            Node::Field { path, .. } => Some(path.as_slice()),
        })
    }

    /// Total length of the literal text, to size the output.
    fn literal_len(&self) -> usize {
        self.nodes
            .iter()
            .map(|node| match node {
                Node::Text(text) => text.len(),
                Node::Field { .. } => 0,
            })
            .sum()
    }
}

/// Parses `text` and renders it with `ctx` in one go; `name` identifies the template in error
/// messages.
///
/// # Errors
///
/// As [`Template::parse`] and [`Template::render`].
///
/// ```
/// use stoker_core::TemplateContext;
///
/// let ctx = TemplateContext::default().with_label("site", "north");
/// assert_eq!(stoker_core::template::render("t", "site-{{.Labels.site}}", &ctx)?, "site-north");
/// assert!(stoker_core::template::render("t", "{{.Labels.zone}}", &ctx).is_err());
/// # Ok::<(), stoker_core::Error>(())
/// ```
pub fn render(name: &str, text: &str, ctx: &TemplateContext) -> Result<String> {
    Template::parse(name, text)?.render(ctx)
}

/// Whether `text` contains `{{` at all. When it does not, the text is literal and renders to
/// itself, so callers can skip parsing.
///
/// ```
/// assert!(stoker_core::template::has_actions("{{.Ref}}"));
/// assert!(!stoker_core::template::has_actions("{view.params.x}"));
/// ```
pub fn has_actions(text: &str) -> bool {
    text.contains("{{")
}

/// White space as Go's template lexer defines it (for trim markers and inside actions).
fn is_go_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// One lexed `{{ … }}`.
struct Action {
    /// The field path, or `None` for a comment.
    path: Option<Vec<String>>,
    /// `{{- `: trim white space before.
    trim_left: bool,
    /// ` -}}`: trim white space after.
    trim_right: bool,
    /// Byte offset just past the closing `}}`.
    end: usize,
}

/// Lexes the action whose `{{` is at byte `start` of `text`; errors are messages.
fn lex_action(text: &str, start: usize) -> Result<Action, String> {
    // `{{` is ASCII, so `start + 2` is a char boundary; every later offset is found by `find`
    // or stepped over ASCII bytes, so all slicing below stays on char boundaries.
    let after_delim = start + 2;
    let inner = text.get(after_delim..).unwrap_or_default();
    let trim_left = has_left_trim_marker(inner);
    let after_marker = if trim_left { 2 } else { 0 };

    if let Some(comment) = inner
        .get(after_marker..)
        .and_then(|rest| rest.strip_prefix("/*"))
    {
        let Some(close) = comment.find("*/") else {
            return Err(format!("unclosed comment at offset {start}"));
        };
        let rest = comment.get(close + 2..).unwrap_or_default();
        let comment_end = text.len() - rest.len();
        let (trim_right, end) = if rest.starts_with("}}") {
            (false, comment_end + 2)
        } else if has_right_trim_marker(rest) && rest.get(2..).is_some_and(|r| r.starts_with("}}"))
        {
            (true, comment_end + 4)
        } else {
            return Err(format!(
                "comment ends before the closing delimiter at offset {start}"
            ));
        };
        return Ok(Action {
            path: None,
            trim_left,
            trim_right,
            end,
        });
    }

    let Some(close) = inner.find("}}") else {
        return Err(format!("unclosed action at offset {start}"));
    };
    let mut body = inner.get(after_marker..close).unwrap_or_default();
    let mut trim_right = false;
    if let Some(stripped) = body.strip_suffix('-')
        && stripped.ends_with(is_go_space)
    {
        trim_right = true;
        body = stripped;
    }
    let body = body.trim_matches(is_go_space);
    if body.is_empty() {
        return Err(format!("empty action at offset {start}"));
    }
    let Some(path) = parse_field_path(body) else {
        return Err(format!(
            "unsupported action {:?} at offset {start} (only {{{{.Field.Path}}}} is supported)",
            excerpt(body)
        ));
    };
    Ok(Action {
        path: Some(path),
        trim_left,
        trim_right,
        end: after_delim + close + 2,
    })
}

/// `- ` right after `{{` (Go: the marker must be followed by white space).
fn has_left_trim_marker(inner: &str) -> bool {
    let bytes = inner.as_bytes();
    bytes.first() == Some(&b'-') && bytes.get(1).is_some_and(|&b| is_go_space(char::from(b)))
}

/// ` -` (white space then the marker), to be followed by `}}`.
fn has_right_trim_marker(rest: &str) -> bool {
    let bytes = rest.as_bytes();
    bytes.first().is_some_and(|&b| is_go_space(char::from(b))) && bytes.get(1) == Some(&b'-')
}

/// `.A.B` → `["A", "B"]`; `None` unless every segment is an identifier.
fn parse_field_path(body: &str) -> Option<Vec<String>> {
    let rest = body.strip_prefix('.')?;
    rest.split('.')
        .map(|segment| is_identifier(segment).then(|| segment.to_owned()))
        .collect()
}

/// At most [`MAX_QUOTED`] bytes of `body`, cut on a char boundary, with `…` when cut.
fn excerpt(body: &str) -> String {
    if body.len() <= MAX_QUOTED {
        return body.to_owned();
    }
    let mut cut = MAX_QUOTED;
    while !body.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", body.get(..cut).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ctx() -> TemplateContext {
        TemplateContext::default()
            .with_gateway_name("site1")
            .with_var("siteNumber", "7")
            .with_var("k", "v")
            .with_label("site", "north")
    }

    fn ok(text: &str) -> String {
        render("t", text, &ctx()).unwrap()
    }

    fn err(text: &str) -> String {
        match render("tmpl", text, &ctx()).unwrap_err() {
            Error::Template { template, message } => {
                assert_eq!(template, "tmpl");
                message
            }
            other => panic!("not a template error: {other:?}"),
        }
    }

    #[test]
    fn literal_text_passes_through_unchanged() {
        for text in [
            "",
            "plain",
            "{",
            "}",
            "a { b } c",
            "{view.params.x}",
            "}}",
            "a }} b",
            "{ {",
            "été {日本} ✓",
        ] {
            assert_eq!(ok(text), text);
        }
    }

    #[test]
    fn field_path_actions_render_the_value() {
        assert_eq!(ok("{{.GatewayName}}"), "site1");
        assert_eq!(ok("gw-{{.Vars.siteNumber}}.json"), "gw-7.json");
        assert_eq!(ok("{{.Labels.site}}/{{.Labels.site}}"), "north/north");
        assert_eq!(ok("{{.GatewayName}}{{.Vars.k}}"), "site1v");
    }

    #[test]
    fn spaces_inside_braces_are_allowed() {
        assert_eq!(ok("{{ .Vars.siteNumber }}"), "7");
        assert_eq!(ok("{{\t.GatewayName\n}}"), "site1");
    }

    #[test]
    fn braces_next_to_actions_stay_literal() {
        assert_eq!(ok("{{.Vars.k}}}"), "v}");
        assert_eq!(ok("{ {{.Vars.k}} }"), "{ v }");
    }

    #[test]
    fn trim_markers_remove_surrounding_whitespace() {
        assert_eq!(ok("a \t\r\n {{- .Vars.k -}} \n\t b"), "avb");
        assert_eq!(ok("a  {{- .Vars.k}}  b"), "av  b");
        assert_eq!(ok("a  {{.Vars.k -}}  b"), "a  vb");
        assert_eq!(ok("  {{- .Vars.k -}}  "), "v");
    }

    #[test]
    fn trim_markers_only_trim_the_adjacent_text() {
        assert_eq!(ok("x {{.Vars.k}} {{- .Vars.k}}"), "x vv");
        assert_eq!(ok("{{.Vars.k -}}{{.Vars.k}} y"), "vv y");
    }

    #[test]
    fn trim_markers_need_a_space_next_to_them() {
        assert!(err("{{-3}}").starts_with("unsupported action \"-3\" at offset 0"));
        assert!(err("{{-.Vars.k}}").starts_with("unsupported action"));
        assert!(err("{{.Vars.k-}}").starts_with("unsupported action"));
    }

    #[test]
    fn comments_render_nothing() {
        assert_eq!(ok("a{{/* note */}}b"), "ab");
        assert_eq!(ok("a{{/* }} {{ \n */}}b"), "ab");
        assert_eq!(ok("{{/**/}}"), "");
    }

    #[test]
    fn comments_accept_trim_markers() {
        assert_eq!(ok("a \n {{- /* note */ -}} \n b"), "ab");
        assert_eq!(ok("a {{- /* note */}} b"), "a b");
        // As in Go, a comment ends the text that a later `{{- ` trims.
        assert_eq!(ok("a {{/* note */}} {{- .Vars.k}}"), "a v");
    }

    #[test]
    fn comments_must_fill_the_action() {
        assert_eq!(err("x {{/* note"), "unclosed comment at offset 2");
        assert_eq!(
            err("{{/* a */ }}"),
            "comment ends before the closing delimiter at offset 0"
        );
        assert!(err("{{ /* a */}}").starts_with("unsupported action"));
    }

    #[test]
    fn unknown_variable_is_an_error_naming_the_template() {
        let err = render("mappings[0].source", "config/{{.Gatewayname}}", &ctx()).unwrap_err();
        match &err {
            Error::Template { template, message } => {
                assert_eq!(template, "mappings[0].source");
                assert_eq!(message, "unknown variable .Gatewayname at offset 7");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unset_variable_is_an_error_never_an_empty_string() {
        assert_eq!(
            err("ab {{.Vars.site}}"),
            "variable .Vars.site is not set at offset 3"
        );
        assert_eq!(
            err("{{.PodName}}"),
            "variable .PodName is not set at offset 0"
        );
    }

    #[test]
    fn variable_that_is_not_a_value_is_an_error() {
        assert_eq!(
            err("{{.Vars}}"),
            "variable .Vars is not a value at offset 0"
        );
        assert_eq!(
            err("{{.GatewayName.x}}"),
            "variable .GatewayName.x is not a value at offset 0"
        );
    }

    #[test]
    fn unclosed_action_is_an_error() {
        assert_eq!(err("{{."), "unclosed action at offset 0");
        assert_eq!(err("ab {{.Vars.k"), "unclosed action at offset 3");
        assert_eq!(err("{{.Vars.k}"), "unclosed action at offset 0");
    }

    #[test]
    fn empty_action_is_an_error() {
        assert_eq!(err("{{}}"), "empty action at offset 0");
        assert_eq!(err("x{{  }}"), "empty action at offset 1");
        assert_eq!(
            err("{{- -}}"),
            "unsupported action \"-\" at offset 0 (only {{.Field.Path}} is supported)"
        );
        assert_eq!(err("{{ -}}"), "empty action at offset 0");
    }

    #[test]
    fn bare_dot_is_an_error() {
        assert_eq!(
            err("{{.}}"),
            "unsupported action \".\" at offset 0 (only {{.Field.Path}} is supported)"
        );
    }

    #[test]
    fn everything_else_is_an_unsupported_action() {
        for text in [
            "{{.Vars.k | upper}}",
            "{{upper .Vars.k}}",
            "{{if .X}}",
            "{{range .Vars}}",
            "{{end}}",
            "{{$x}}",
            "{{$x := .Vars.k}}",
            "{{\"str\"}}",
            "{{3}}",
            "{{.Vars..k}}",
            "{{.Vars.k.}}",
            "{{.Vars.0}}",
            "{{.Vars.site-name}}",
            "{{. Vars}}",
            "{{.Vars.k .Vars.k}}",
            "{{{.Vars.k}}",
            "{{.Vàrs}}",
        ] {
            assert!(err(text).starts_with("unsupported action"), "{text}");
        }
        assert_eq!(
            err("abcd {{if .X}}"),
            "unsupported action \"if .X\" at offset 5 (only {{.Field.Path}} is supported)"
        );
    }

    #[test]
    fn long_unsupported_actions_are_quoted_in_part() {
        let body = "é".repeat(100);
        let message = err(&format!("{{{{{body}}}}}"));
        assert!(message.len() < 200, "{message}");
        assert!(message.contains('…'));
    }

    #[test]
    fn multibyte_text_around_braces_is_handled() {
        assert_eq!(ok("é{{.Vars.k}}é"), "évé");
        assert_eq!(ok("日 {{- .Vars.k -}} 日"), "日v日");
        assert_eq!(ok("é{é}é"), "é{é}é");
        assert_eq!(err("é{{é"), "unclosed action at offset 2");
        assert_eq!(
            err("{{/*é*/é}}"),
            "comment ends before the closing delimiter at offset 0"
        );
        assert!(err("{{é}}").starts_with("unsupported action \"é\""));
    }

    #[test]
    fn is_literal_ignores_comments() {
        let template = Template::parse("t", "a {{/* x */}} b").unwrap();
        assert!(template.is_literal());
        assert_eq!(
            template.render(&TemplateContext::default()).unwrap(),
            "a  b"
        );
        assert!(!Template::parse("t", "{{.Ref}}").unwrap().is_literal());
    }

    #[test]
    fn variables_lists_field_paths_in_order() {
        let template = Template::parse("t", "{{.Vars.k}} {{.Ref}} {{.Vars.k}}").unwrap();
        let paths: Vec<Vec<String>> = template.variables().map(<[String]>::to_vec).collect();
        assert_eq!(
            paths,
            [vec!["Vars", "k"], vec!["Ref"], vec!["Vars", "k"]]
                .map(|p| p.into_iter().map(String::from).collect::<Vec<_>>())
        );
        assert_eq!(template.name(), "t");
    }

    #[test]
    fn has_actions_detects_double_braces() {
        assert!(has_actions("a {{ b"));
        assert!(!has_actions("a { { b }}"));
    }

    /// Text without `{{`: `{` never follows `{`.
    fn text_without_actions() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just('{'),
                Just('}'),
                Just('-'),
                Just(' '),
                Just('.'),
                Just('é'),
                Just('日'),
                any::<char>(),
            ],
            0..40,
        )
        .prop_map(|chars| {
            let mut text = String::new();
            for c in chars {
                if c == '{' && text.ends_with('{') {
                    text.push('x');
                }
                text.push(c);
            }
            text
        })
    }

    /// Arbitrary text made of template-ish pieces.
    fn template_soup() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just("{{".to_owned()),
                Just("}}".to_owned()),
                Just("{{- ".to_owned()),
                Just(" -}}".to_owned()),
                Just("/*".to_owned()),
                Just("*/".to_owned()),
                Just(".".to_owned()),
                Just("Vars".to_owned()),
                Just("k".to_owned()),
                Just("-".to_owned()),
                Just(" ".to_owned()),
                Just("é".to_owned()),
                Just("{".to_owned()),
                Just("}".to_owned()),
                any::<String>(),
            ],
            0..20,
        )
        .prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #[test]
        fn rendering_text_without_actions_is_identity(text in text_without_actions()) {
            prop_assert_eq!(render("t", &text, &TemplateContext::default()).unwrap(), text);
        }

        #[test]
        fn render_never_panics(text in template_soup(), raw in any::<String>()) {
            let _ = render("t", &text, &ctx());
            let _ = render("t", &raw, &ctx());
        }

        #[test]
        fn one_variable_is_spliced_into_literal_text(
            prefix in text_without_actions(),
            suffix in text_without_actions(),
            value in any::<String>(),
        ) {
            let mut prefix = prefix;
            if prefix.ends_with('{') {
                prefix.push('x');
            }
            let text = format!("{prefix}{{{{.Vars.k}}}}{suffix}");
            let ctx = TemplateContext::default().with_var("k", value.clone());
            prop_assert_eq!(render("t", &text, &ctx).unwrap(), format!("{prefix}{value}{suffix}"));
        }
    }
}
