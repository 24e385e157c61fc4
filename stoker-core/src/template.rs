//! Go `text/template`, for path templates and file contents (`template: true`).
//!
//! Templates are Go's template language, executed as Go executes them with
//! `Option("missingkey=error")` (as stoker-operator v0.5.1 does), on the data described by
//! [`TemplateContext`]: `.GatewayName`, `.PodName`, `.PodOrdinal` (an integer), `.CRName`,
//! `.Namespace`, `.Ref`, `.Commit`, and the maps `.Labels` and `.Vars`. The data is a map, so a
//! variable that is not set is *absent*: reading it is an error naming the template, never an
//! empty string.
//!
//! Everything of the language is there: text and `{{- trim -}}` markers, `{{/* comments */}}`,
//! pipelines (`|`), parentheses, field chains (`.Vars.site`, `$.Ref`, `(pipe).Field`),
//! variables (`$x := …`, `$x = …`, `$`), string (`"…"`, `` `…` ``), character, number,
//! boolean and `nil` constants as Go parses them, `if` / `else if` / `else`, `with` /
//! `else with` / `else`, `range` over maps (sorted keys) and integers with `$k, $v :=` and
//! `{{break}}` / `{{continue}}`, and the built-in functions `and or not eq ne lt le gt ge len
//! index slice print printf println urlquery js html call` with Go's semantics (short-circuit
//! `and` / `or`, `eq` with several arguments, `printf` with Go's verbs, flags and error
//! notation). `{{"{{"}}` writes a literal `{{`.
//!
//! Not supported (an error when parsed): `define`, `template` and `block` (templates are one
//! file or one path, there is nothing to call), and imaginary constants (`2i`). Where Stoker
//! differs from Go on purpose:
//!
//! - rendering is bounded: nesting deeper than [`MAX_NESTING`], more than [`MAX_STEPS`]
//!   steps, more than [`MAX_OUTPUT`] bytes of output or [`MAX_WORK`] bytes produced by
//!   functions is [`Error::TemplateLimit`] (Go would keep going);
//! - the output must be UTF-8 (Go writes any bytes, e.g. `{{"\xff"}}`): it is an error;
//! - `%p` prints no address;
//! - Go's Unicode letter / printable classes are approximated with the standard library's
//!   (identifiers, `js`, `%q`): they differ only on rare characters (combining marks,
//!   unassigned code points).
//!
//! Why our own implementation: the only Rust port, [`gtmpl`](https://crates.io/crates/gtmpl)
//! (0.7.1), has no `missingkey=error`, no `break` / `continue`, no `slice`, loops forever on
//! `{{.` and is unmaintained. This module follows Go's lexer, parser and executor closely
//! (`lexer`, `parser`, `eval`, `funcs`, `format`, `number`), and a differential test against
//! Go itself (`stoker-core/tests/template_go.rs`, see `hack/gotemplate-oracle`) compares the
//! two on random templates over the whole language.
//!
//! Parsing and rendering never panic, and take time linear in the size of the template and
//! the output (bounded by the limits above).

mod eval;
mod format;
mod funcs;
mod lexer;
mod number;
mod parser;

use crate::context::TemplateContext;
use crate::error::{Error, Result, TemplateLimit};

/// Deepest nesting of `if` / `with` / `range` and parentheses.
pub const MAX_NESTING: usize = 100;
/// Most execution steps (actions, commands, `range` iterations) of one render.
pub const MAX_STEPS: usize = 10_000_000;
/// Longest output of one render, in bytes.
pub const MAX_OUTPUT: usize = 64 << 20;
/// Most bytes functions (`printf`, `print`, …) may produce in one render, printed or not.
pub const MAX_WORK: usize = 256 << 20;

/// The render limits (one value; a struct so the parts of the renderer share it).
#[derive(Debug, Clone)]
struct Limits {
    max_nesting: usize,
    max_steps: usize,
    max_output: usize,
    max_work: usize,
}

const LIMITS: Limits = Limits {
    max_nesting: MAX_NESTING,
    max_steps: MAX_STEPS,
    max_output: MAX_OUTPUT,
    max_work: MAX_WORK,
};

/// Why a template did not parse.
#[derive(Debug)]
enum ParseError {
    Syntax { message: String, offset: usize },
    Unsupported { what: String, offset: usize },
    TooDeep { max: usize },
}

/// Why a template did not render.
#[derive(Debug)]
enum RenderError {
    /// Reading a variable that is unknown or not set.
    Variable {
        message: String,
        offset: usize,
    },
    /// Anything else Go reports while executing.
    Exec {
        message: String,
        offset: usize,
    },
    TooManySteps {
        max: usize,
    },
    TooDeep {
        max: usize,
    },
    TooMuchWork {
        max: usize,
    },
    OutputTooLarge {
        max: usize,
    },
}

impl ParseError {
    fn into_error(self, name: &str) -> Error {
        match self {
            ParseError::Syntax { message, offset } => {
                Error::template(name, format!("{message} at offset {offset}"))
            }
            ParseError::Unsupported { what, offset } => Error::template(
                name,
                format!("{what:?} is not supported at offset {offset}"),
            ),
            ParseError::TooDeep { max } => Error::TemplateLimit {
                template: name.to_owned(),
                limit: TemplateLimit::Nesting { max },
            },
        }
    }
}

impl RenderError {
    fn into_error(self, name: &str) -> Error {
        let limit = |limit| Error::TemplateLimit {
            template: name.to_owned(),
            limit,
        };
        match self {
            RenderError::Variable { message, offset } | RenderError::Exec { message, offset } => {
                Error::template(name, format!("{message} at offset {offset}"))
            }
            RenderError::TooManySteps { max } => limit(TemplateLimit::Steps { max }),
            RenderError::TooDeep { max } => limit(TemplateLimit::Nesting { max }),
            RenderError::TooMuchWork { max } => limit(TemplateLimit::Work { max_bytes: max }),
            RenderError::OutputTooLarge { max } => limit(TemplateLimit::Output { max_bytes: max }),
        }
    }
}

/// A parsed template.
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
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    name: String,
    root: parser::List,
    definitions: parser::Definitions,
    variables: Vec<Vec<String>>,
    has_actions: bool,
}

// Number constants are never NaN (Go's syntax has no NaN literal), so equality is total.
impl Eq for Template {}

impl Template {
    /// Parses `text`; `name` identifies the template in error messages (a mapping field such as
    /// `mappings[0].source`, or a file path).
    ///
    /// # Errors
    ///
    /// [`Error::Template`] naming `name`, with a message saying what is wrong and at which byte
    /// offset (`unclosed action at offset 0`, `function "upper" not defined at offset 14`);
    /// [`Error::TemplateLimit`] when it nests deeper than [`MAX_NESTING`].
    ///
    /// ```
    /// use stoker_core::template::Template;
    ///
    /// let template = Template::parse("greeting", "Hello {{- /* name */ -}} , {{.GatewayName}}!")?;
    /// assert!(!template.is_literal());
    ///
    /// let err = Template::parse("greeting", "Hello {{.Gateway | upper}}").unwrap_err();
    /// assert!(err.to_string().contains(r#"function "upper" not defined"#));
    /// # Ok::<(), stoker_core::Error>(())
    /// ```
    pub fn parse(name: &str, text: &str) -> Result<Template> {
        let parsed = parser::parse(text, &LIMITS).map_err(|e| e.into_error(name))?;
        Ok(Template {
            name: name.to_owned(),
            root: parsed.root,
            definitions: parsed.definitions,
            variables: parsed.variables,
            has_actions: parsed.has_actions,
        })
    }

    /// Renders the template with the variables of `ctx`.
    ///
    /// # Errors
    ///
    /// [`Error::Template`] naming the template when a variable is unknown (`unknown variable
    /// .Gatewayname at offset 12`) or not set (`variable .Vars.site is not set at offset 3`),
    /// or when Go would fail (`error calling index: index out of range: 5`, …);
    /// [`Error::TemplateLimit`] past a render limit.
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
    /// assert!(err.to_string().contains("variable .Vars.site is not set at offset 2"));
    /// # Ok::<(), stoker_core::Error>(())
    /// ```
    pub fn render(&self, ctx: &TemplateContext) -> Result<String> {
        let bytes = eval::execute(&self.root, &self.definitions, ctx, &LIMITS)
            .map_err(|e| e.into_error(&self.name))?;
        String::from_utf8(bytes).map_err(|e| {
            Error::template(
                &self.name,
                format!(
                    "output is not valid UTF-8 at byte {}",
                    e.utf8_error().valid_up_to()
                ),
            )
        })
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
        !self.has_actions
    }

    /// The field paths of the data the template reads directly, in order of appearance,
    /// repeated if read twice: `.Vars.site` and `$.Vars.site` yield `["Vars", "site"]`.
    /// Fields read through another value (`{{with .Vars}}{{.site}}{{end}}`, `$v.x`) are not
    /// listed. A validator can check these against the variables it knows.
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
        self.variables.iter().map(Vec::as_slice)
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

#[cfg(test)]
mod tests;
