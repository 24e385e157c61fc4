use super::*;
use proptest::prelude::*;

fn ctx() -> TemplateContext {
    let mut ctx = TemplateContext::default()
        .with_gateway_name("site1")
        .with_var("siteNumber", "7")
        .with_var("k", "v")
        .with_label("site", "north");
    ctx.pod_ordinal = Some("2".to_owned());
    ctx
}

fn ok(text: &str) -> String {
    match render("t", text, &ctx()) {
        Ok(out) => out,
        Err(err) => panic!("{text:?}: {err}"),
    }
}

fn err(text: &str) -> String {
    match render("tmpl", text, &ctx()) {
        Err(Error::Template { template, message }) => {
            assert_eq!(template, "tmpl");
            message
        }
        other => panic!("{text:?}: not a template error: {other:?}"),
    }
}

fn limit(text: &str) -> TemplateLimit {
    match render("tmpl", text, &ctx()) {
        Err(Error::TemplateLimit { template, limit }) => {
            assert_eq!(template, "tmpl");
            limit
        }
        other => panic!("{text:?}: not a limit error: {other:?}"),
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
fn field_paths_render_the_value() {
    assert_eq!(ok("{{.GatewayName}}"), "site1");
    assert_eq!(ok("gw-{{ .Vars.siteNumber }}.json"), "gw-7.json");
    assert_eq!(ok("{{.Labels.site}}/{{$.Labels.site}}"), "north/north");
    assert_eq!(ok("{{.Vars.k}}}"), "v}");
}

#[test]
fn double_brace_string_is_the_documented_escape() {
    assert_eq!(ok(r#"{{"{{"}}.Vars.k}}"#), "{{.Vars.k}}");
    assert_eq!(ok("{{`{{`}}"), "{{");
}

#[test]
fn trim_markers_and_comments_behave_as_in_go() {
    assert_eq!(ok("a \t\r\n {{- .Vars.k -}} \n\t b"), "avb");
    assert_eq!(ok("a  {{.Vars.k -}}  b"), "a  vb");
    assert_eq!(ok("a{{/* }} {{ \n */}}b"), "ab");
    assert_eq!(ok("a \n {{- /* note */ -}} \n b"), "ab");
    assert_eq!(ok("a {{/* note */}} {{- .Vars.k}}"), "a v");
    // `{{-3}}` is the number -3, not a trim marker.
    assert_eq!(ok("x {{-3}}"), "x -3");
    assert_eq!(err("x {{/* note"), "unclosed comment at offset 4");
}

#[test]
fn unknown_and_unset_variables_are_errors_naming_the_template() {
    let error = render("mappings[0].source", "config/{{.Gatewayname}}", &ctx()).unwrap_err();
    assert!(
        matches!(&error, Error::Template { template, message }
            if template == "mappings[0].source" && message.starts_with("unknown variable .Gatewayname")),
        "{error:?}"
    );
    assert!(err("ab {{.Vars.site}}").starts_with("variable .Vars.site is not set"));
    assert!(err("{{.PodName}}").starts_with("variable .PodName is not set"));
    // Even where the value is only tested.
    assert!(err("{{if .Vars.site}}x{{end}}").starts_with("variable .Vars.site is not set"));
    assert!(err("{{.GatewayName.x}}").contains("can't evaluate field x"));
}

#[test]
fn maps_and_the_data_print_as_go_prints_them() {
    assert_eq!(ok("{{.Vars}}"), "map[k:v siteNumber:7]");
    assert_eq!(
        ok("{{.}}"),
        "map[GatewayName:site1 Labels:map[site:north] PodOrdinal:2 Vars:map[k:v siteNumber:7]]"
    );
    assert_eq!(
        ok(r#"{{printf "%#v" .Labels}}"#),
        r#"map[string]string{"site":"north"}"#
    );
}

#[test]
fn pod_ordinal_is_an_integer() {
    assert_eq!(ok("{{if eq .PodOrdinal 2}}second{{end}}"), "second");
    assert_eq!(
        ok(r#"{{printf "%03d|%T" .PodOrdinal .PodOrdinal}}"#),
        "002|int"
    );
}

#[test]
fn conditionals() {
    assert_eq!(ok("{{if .Vars.k}}yes{{else}}no{{end}}"), "yes");
    assert_eq!(
        ok(r#"{{if eq .Vars.k "x"}}1{{else if eq .Vars.k "v"}}2{{else}}3{{end}}"#),
        "2"
    );
    assert_eq!(ok(r#"{{with .Vars.k}}<{{.}}>{{end}}"#), "<v>");
    assert_eq!(ok(r#"{{with ""}}x{{else with .Vars.k}}{{.}}{{end}}"#), "v");
    assert_eq!(
        ok(r#"{{if and 0 .Nope}}x{{else}}short-circuit{{end}}"#),
        "short-circuit"
    );
    assert_eq!(ok(r#"{{or "" "b" .Nope}}"#), "b");
    assert_eq!(
        ok("{{not 0}} {{eq 1 2 1}} {{lt 1.5 2.5}} {{ge \"b\" \"a\"}}"),
        "true true true true"
    );
}

#[test]
fn range_over_maps_is_in_key_order_with_variables() {
    assert_eq!(
        ok("{{range $k, $v := .Vars}}{{$k}}={{$v}};{{end}}"),
        "k=v;siteNumber=7;"
    );
    assert_eq!(ok("{{range .Vars}}[{{.}}]{{end}}"), "[v][7]");
    assert_eq!(ok("{{range $i := 4}}{{$i}}{{end}}"), "0123");
    assert_eq!(ok("{{range .Labels}}{{.}}{{else}}none{{end}}"), "north");
    assert_eq!(ok("{{range 0}}x{{else}}none{{end}}"), "none");
    assert_eq!(
        ok(
            "{{range $i := 9}}{{if eq $i 2}}{{continue}}{{end}}{{if eq $i 4}}{{break}}{{end}}{{$i}}{{end}}"
        ),
        "013"
    );
    // In a range's else branch, `continue` continues the enclosing range and `break` ends
    // only the inner one (found by the differential test against Go).
    assert_eq!(
        ok("{{range $i := 3}}a{{range 0}}{{else}}{{continue}}{{end}}b{{end}}"),
        "aaa"
    );
    assert_eq!(
        ok("{{range $i := 3}}a{{range 0}}{{else}}{{break}}{{end}}b{{end}}"),
        "ababab"
    );
    assert!(err("{{break}}").starts_with("{{break}} outside {{range}}"));
    assert!(err(r#"{{range "abc"}}{{end}}"#).contains("range can't iterate over abc"));
}

#[test]
fn variables_declare_assign_and_scope() {
    assert_eq!(ok("{{$x := 1}}{{$x = 2}}{{$x}}"), "2");
    assert_eq!(ok("{{$x := 1}}{{if true}}{{$x := 5}}{{end}}{{$x}}"), "1");
    assert_eq!(ok("{{$x := 1}}{{if true}}{{$x = 5}}{{end}}{{$x}}"), "5");
    assert_eq!(
        ok("{{with $x := .Vars.k}}{{$x}}{{$.GatewayName}}{{end}}"),
        "vsite1"
    );
    assert!(err("{{$y}}").starts_with("undefined variable \"$y\""));
}

#[test]
fn functions_follow_go() {
    assert_eq!(
        ok(r#"{{len .Vars}} {{index .Vars "k"}} {{index "abc" 1}} {{slice "abcdef" 1 3}}"#),
        "2 v 98 bc"
    );
    assert_eq!(
        ok(r#"{{print 1 2 "a" 3}}|{{println "x" 1}}"#),
        "1 2a3|x 1\n"
    );
    assert_eq!(
        ok(r#"{{urlquery "a b&c"}} {{html "<a href='x'>"}} {{js "it's <x>"}}"#),
        r"a+b%26c &lt;a href=&#39;x&#39;&gt; it\'s \u003Cx\u003E"
    );
    assert_eq!(
        ok(r#"{{.Vars.k | printf "%q"}} {{"x" | printf "%s-%s" "y"}}"#),
        r#""v" y-x"#
    );
    assert_eq!(
        ok(r#"{{printf "%5.2f|%-4d|%x|%v|%e" 3.14159 7 255 1e6 123456.0}}"#),
        " 3.14|7   |ff|1e+06|1.234560e+05"
    );
    assert_eq!(
        ok(r#"{{printf "%d %!" "a"}}"#),
        "%!d(string=a) %!!(MISSING)"
    );
    assert_eq!(
        ok(r#"{{printf "%d"}} {{printf "%d" 1 2}}"#),
        "%!d(MISSING) 1%!(EXTRA int=2)"
    );
    assert_eq!(
        ok("{{1e3}} {{0x1F}} {{'a'}} {{1_000}} {{-0.0}} {{print nil}}"),
        "1000 31 97 1000 -0 <nil>"
    );
    assert!(err(r#"{{index .Vars}}{{upper "x"}}"#).starts_with("function \"upper\" not defined"));
    assert!(err("{{len 3}}").contains("len of type int"));
    assert!(err("{{9223372036854775808}}").contains("overflows int"));
    assert!(err("{{08}}").contains("integer overflow"));
}

#[test]
fn define_template_and_block() {
    assert_eq!(
        ok(r#"{{define "x"}}[{{.}}]{{end}}{{template "x" .Vars.k}}"#),
        "[v]"
    );
    assert_eq!(ok(r#"{{block "b" .GatewayName}}<{{.}}>{{end}}"#), "<site1>");
    assert!(err(r#"{{template "nope"}}"#).starts_with("template \"nope\" not defined"));
}

#[test]
fn output_that_is_not_utf8_is_an_error() {
    assert!(err(r#"{{"\xff"}}"#).starts_with("output is not valid UTF-8"));
    assert_eq!(ok(r#"{{printf "%q" (slice "é" 0 1)}}"#), r#""\xc3""#);
}

#[test]
fn unsupported_constructs_are_errors() {
    assert!(err("{{2i}}").contains("is not supported"));
}

#[test]
fn limits_are_typed_errors() {
    let deep = format!(
        "{}x{}",
        "{{if 1}}".repeat(MAX_NESTING + 1),
        "{{end}}".repeat(MAX_NESTING + 1)
    );
    assert_eq!(limit(&deep), TemplateLimit::Nesting { max: MAX_NESTING });
    let parens = format!(
        "{{{{{}1{}}}}}",
        "(".repeat(MAX_NESTING + 1),
        ")".repeat(MAX_NESTING + 1)
    );
    assert_eq!(limit(&parens), TemplateLimit::Nesting { max: MAX_NESTING });
    assert_eq!(
        limit("{{range 100000000}}{{end}}"),
        TemplateLimit::Steps { max: MAX_STEPS }
    );
    assert_eq!(
        limit(r#"{{range 100}}{{range 100}}{{printf "%999999d" 1}}{{end}}{{end}}"#),
        TemplateLimit::Output {
            max_bytes: MAX_OUTPUT
        }
    );
    assert_eq!(
        limit(r#"{{range 1000}}{{$x := printf "%999999d" 1}}{{end}}"#),
        TemplateLimit::Work {
            max_bytes: MAX_WORK
        }
    );
    // A template calling itself: the nesting limit, not a stack overflow.
    assert_eq!(
        limit(r#"{{define "r"}}{{template "r"}}{{end}}{{template "r"}}"#),
        TemplateLimit::Nesting { max: MAX_NESTING }
    );
}

#[test]
fn is_literal_and_variables() {
    let template = Template::parse("t", "a {{/* x */}} b").unwrap_or_else(|e| panic!("{e}"));
    assert!(template.is_literal());
    assert_eq!(
        template.render(&TemplateContext::default()).ok().as_deref(),
        Some("a  b")
    );
    let template = Template::parse(
        "t",
        "{{.Vars.k}} {{.Ref}} {{with .Vars}}{{.inner}}{{end}} {{$.Labels.x}} {{range .Vars}}{{end}}",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let paths: Vec<String> = template.variables().map(|p| p.join(".")).collect();
    assert_eq!(paths, ["Vars.k", "Ref", "Vars", "Labels.x", "Vars"]);
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
            Just('é'),
            any::<char>()
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

/// Arbitrary text made of template pieces.
fn template_soup() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("{{".to_owned()),
            Just("}}".to_owned()),
            Just("{{- ".to_owned()),
            Just(" -}}".to_owned()),
            Just("/*".to_owned()),
            Just("*/".to_owned()),
            Just(".Vars.k".to_owned()),
            Just(" | ".to_owned()),
            Just("(".to_owned()),
            Just(")".to_owned()),
            Just("range ".to_owned()),
            Just("if ".to_owned()),
            Just("end".to_owned()),
            Just("$x := ".to_owned()),
            Just("printf \"%v\" ".to_owned()),
            Just("\"".to_owned()),
            Just("'".to_owned()),
            any::<String>(),
        ],
        0..24,
    )
    .prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn rendering_text_without_actions_is_identity(text in text_without_actions()) {
        prop_assert_eq!(render("t", &text, &TemplateContext::default()).ok(), Some(text));
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
        prop_assert_eq!(render("t", &text, &ctx).ok(), Some(format!("{prefix}{value}{suffix}")));
    }
}
