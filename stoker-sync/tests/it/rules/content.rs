//! DESIGN §3 "Desired set", what a desired file contains: `template: true` renders contents,
//! `patches` set JSON fields by dot path.

use super::*;

#[test]
fn template_true_renders_file_contents() {
    let repo = Repo::new();
    repo.file(
        "config/gateway.json",
        "{\"name\": \"{{.GatewayName}}\", \"site\": \"{{.Vars.site}}\", \"view\": \"{view.params.x}\"}",
    )
    .file("plain/raw.json", "{{.GatewayName}}");
    let live = live();
    let mut templated = map("config", "config");
    templated.template = true;
    let mut request = request(
        repo.artifact("r1"),
        vec![templated, map("plain", "plain")],
        live.path(),
    );
    request.profile.vars.insert("site".into(), "7".into());
    request.context = TemplateContext::default().with_gateway_name("gw1");
    let report = sync(&request).unwrap();
    let rendered = b"{\"name\": \"gw1\", \"site\": \"7\", \"view\": \"{view.params.x}\"}";
    let tree = snapshot_live(live.path());
    assert_eq!(tree["config/gateway.json"], text(rendered));
    // Without `template: true` the braces are content.
    assert_eq!(tree["plain/raw.json"], text("{{.GatewayName}}"));
    let change = report
        .added
        .iter()
        .find(|c| c.path == "config/gateway.json")
        .unwrap();
    assert_eq!(change.content_id, Some(id(rendered)));
    // The rendered content is what the manifest vouches for: a rerun changes nothing.
    assert_eq!(sync(&request).unwrap().changed(), 0);
}

/// Incremental planning of transformed files: when the source's diff since the manifest's
/// revision does not list a template's source (and the variables are the same), its content id
/// comes from the manifest without reading or rendering it; a listed source, other variables, or
/// a template reading `{{.Commit}}` is rendered again. The results are the same either way.
#[test]
fn unchanged_template_sources_are_not_rendered_again_between_revisions() {
    let artifact = |revision: &str, view: &str| {
        Arc::new(
            MemArtifact::new(revision, false)
                .file("config/site.json", "{\"site\": \"{{.Vars.site}}\"}")
                .file("config/commit.json", "{\"commit\": \"{{.Commit}}\"}")
                .file("config/view.json", view),
        )
    };
    let live = live();
    let mut templated = map("config", "config");
    templated.template = true;
    let request_for = |artifact: Arc<MemArtifact>, site: &str, changed: Option<Vec<String>>| {
        let mut request = request(artifact.clone(), vec![templated.clone()], live.path());
        request.profile.vars.insert("site".into(), site.into());
        request.context.commit = Some(
            stoker_core::Artifact::revision(artifact.as_ref())
                .id
                .clone(),
        );
        request.previous = Some(stoker_core::Revision::new("r1"));
        request.changed_paths = changed;
        request
    };
    let first = artifact("r1", "v1");
    sync(&request_for(first, "7", None)).unwrap();

    // r2 changes view.json only: site.json is taken from the manifest; commit.json (reads the
    // revision) and view.json (listed) are rendered.
    let second = artifact("r2", "v2");
    let changed = Some(vec!["config/view.json".to_owned()]);
    let report = sync(&request_for(second.clone(), "7", changed)).unwrap();
    assert_eq!(
        paths(&report.modified),
        ["config/commit.json", "config/view.json"]
    );
    assert_eq!(
        second.reads(),
        2 + 2,
        "commit.json and view.json, each planned and written"
    );
    let tree = snapshot_live(live.path());
    assert_eq!(tree["config/site.json"], text("{\"site\": \"7\"}"));
    assert_eq!(tree["config/commit.json"], text("{\"commit\": \"r2\"}"));

    // Other variables: rendered again (and rewritten).
    let third = artifact("r2", "v2");
    let mut request = request_for(third.clone(), "8", Some(Vec::new()));
    request.previous = Some(stoker_core::Revision::new("r2"));
    let report = sync(&request).unwrap();
    assert_eq!(paths(&report.modified), ["config/site.json"]);
    assert_eq!(
        snapshot_live(live.path())["config/site.json"],
        text("{\"site\": \"8\"}")
    );

    // A diff from another revision than the manifest's proves nothing: everything is read.
    let fourth = artifact("r3", "v2");
    let request = request_for(fourth.clone(), "8", Some(Vec::new()));
    assert_eq!(request.previous.as_ref().unwrap().id, "r1");
    let report = sync(&request).unwrap();
    assert_eq!(paths(&report.modified), ["config/commit.json"]);
    assert!(
        fourth.reads() >= 3,
        "every template planned: {}",
        fourth.reads()
    );
}

#[test]
fn binary_file_with_template_true_is_an_error_naming_the_file() {
    let repo = Repo::new();
    repo.file("config/a.json", "fine")
        .file("config/logo.png", b"\x89PNG\0\0\x01{{.GatewayName}}");
    let live = live();
    let mut templated = map("config", "config");
    templated.template = true;
    let mut request = request(repo.artifact("r1"), vec![templated], live.path());
    request.context = TemplateContext::default().with_gateway_name("gw1");
    let text = error_text(sync(&request));
    assert!(text.contains("config/logo.png"), "{text}");
    assert!(text.contains("binary"), "{text}");
    // Found while planning: not even the good file was written.
    assert!(
        snapshot_live(live.path()).is_empty(),
        "{:?}",
        snapshot(live.path())
    );
    assert!(dry_run(&request).is_err());
}

#[test]
fn unknown_variable_in_a_templated_file_is_an_error_naming_the_file() {
    let repo = Repo::new();
    repo.file("config/a.json", "{{.Vars.missing}}");
    let live = live();
    let mut templated = map("config", "config");
    templated.template = true;
    let text = error_text(sync(&request(
        repo.artifact("r1"),
        vec![templated],
        live.path(),
    )));
    assert!(text.contains("config/a.json"), "{text}");
    assert!(text.contains(".Vars.missing"), "{text}");
}

#[test]
fn patches_set_json_fields_by_dot_path_with_type_inference() {
    let repo = Repo::new();
    repo.file(
        "config/db/config.json",
        "{\"connection\": {\"host\": \"old\", \"port\": 1}, \"items\": [{\"name\": \"a\"}]}\n",
    )
    .file("config/other/config.json", "{\"untouched\": true}")
    .file("config/db/notes.txt", "not json, not matched");
    let live = live();
    let mut patched = map("config", "cfg");
    patched.patches = vec![patch(
        "db/*.json",
        &[
            ("connection.host", "db-{{.Vars.site}}"),
            ("connection.port", "5432"),
            ("connection.tls", "true"),
            ("connection.label", "\"5432\""),
            ("items.0.name", "first"),
        ],
    )];
    let mut request = request(repo.artifact("r1"), vec![patched], live.path());
    request.profile.vars.insert("site".into(), "north".into());
    sync(&request).unwrap();
    let tree = snapshot_live(live.path());
    let doc: serde_json::Value =
        serde_json::from_slice(tree["cfg/db/config.json"].bytes()).unwrap();
    assert_eq!(
        doc,
        serde_json::json!({
            "connection": {"host": "db-north", "port": 5432, "tls": true, "label": "5432"},
            "items": [{"name": "first"}]
        })
    );
    assert_eq!(tree["cfg/other/config.json"], text("{\"untouched\": true}"));
    assert_eq!(tree["cfg/db/notes.txt"], text("not json, not matched"));
    assert_eq!(sync(&request).unwrap().changed(), 0);
}

#[test]
fn patches_change_only_the_bytes_of_the_values_they_set() {
    let repo = Repo::new();
    let input = "{\r\n    \"z\": 1.0,\r\n    \"db\": {\"host\": \"old\", \"n\": 1e3},\r\n    \"labels\": {\"a.b\": \"\\u00e9\"},\r\n    \"items\": [1]\r\n}\r\n";
    repo.file("config/db.json", input);
    let live = live();
    let mut patched = map("config", "cfg");
    patched.patches = vec![patch(
        "db.json",
        &[
            ("db.host", "new"),
            (r"labels.a\.b", "\u{e9}"),
            ("items.-1", "2"),
            ("extra.on", "true"),
        ],
    )];
    let request = request(repo.artifact("r1"), vec![patched], live.path());
    sync(&request).unwrap();
    assert_eq!(
        snapshot_live(live.path())["cfg/db.json"],
        text(
            "{\r\n    \"z\": 1.0,\r\n    \"db\": {\"host\": \"new\", \"n\": 1e3},\r\n    \"labels\": {\"a.b\": \"\\u00e9\"},\r\n    \"items\": [1, 2],\r\n    \"extra\": {\r\n        \"on\": true\r\n    }\r\n}\r\n"
        )
    );
    assert_eq!(sync(&request).unwrap().changed(), 0);
}

#[test]
fn patch_glob_is_relative_to_the_destination_and_to_the_file_name_for_a_file_mapping() {
    let repo = Repo::new();
    repo.file("src/a/resource.json", "{}")
        .file("src/resource.json", "{}")
        .file("single.json", "{}");
    let live = live();
    let mut by_dir = map("src", "dst");
    // Relative to the destination `dst`: not `dst/**` nor `src/**`.
    by_dir.patches = vec![
        patch("**/resource.json", &[("deep", "1")]),
        patch("resource.json", &[("top", "1")]),
        patch("dst/**", &[("wrong", "1")]),
    ];
    let mut by_file = map("single.json", "some/where/renamed.json");
    by_file.patches = vec![patch("renamed.json", &[("single", "1")])];
    sync(&request(
        repo.artifact("r1"),
        vec![by_dir, by_file],
        live.path(),
    ))
    .unwrap();
    let tree = snapshot_live(live.path());
    let json =
        |path: &str| -> serde_json::Value { serde_json::from_slice(tree[path].bytes()).unwrap() };
    assert_eq!(json("dst/a/resource.json"), serde_json::json!({"deep": 1}));
    assert_eq!(
        json("dst/resource.json"),
        serde_json::json!({"deep": 1, "top": 1})
    );
    assert_eq!(
        json("some/where/renamed.json"),
        serde_json::json!({"single": 1})
    );
}

/// A patch without `file`, as stoker-operator v0.5.1 allowed on a file mapping.
fn patch_of_the_mapped_file(sets: &[(&str, &str)]) -> stoker_core::Patch {
    stoker_core::Patch {
        file: None,
        ..patch("unused", sets)
    }
}

#[test]
fn a_patch_without_file_patches_the_file_a_file_mapping_maps() {
    let repo = Repo::new();
    repo.file(
        "gateways/site1/system.json",
        r#"{"SystemName": "x", "port": 1}"#,
    )
    .file("gateways/site1/other.json", "{}");
    let live = live();
    let mut by_file = map("gateways/site1/system.json", "config/system.json");
    by_file.patches = vec![patch_of_the_mapped_file(&[
        ("SystemName", "{{.GatewayName}}"),
        ("port", "8088"),
    ])];
    let untouched = map("gateways/site1/other.json", "config/other.json");
    let mut request = request(repo.artifact("r1"), vec![by_file, untouched], live.path());
    request.context.gateway_name = Some("site1".to_owned());
    sync(&request).unwrap();
    let tree = snapshot_live(live.path());
    assert_eq!(
        tree["config/system.json"].bytes(),
        br#"{"SystemName": "site1", "port": 8088}"#
    );
    assert_eq!(tree["config/other.json"].bytes(), b"{}");
}

#[test]
fn a_patch_without_file_on_a_dir_mapping_is_an_error_naming_the_mapping() {
    let repo = Repo::new();
    repo.file("config/config", "{}").file("config/a.json", "{}");
    let live = live();
    // The type is inferred: the error comes from the plan, before anything is written.
    let mut by_dir = map("config", "config");
    by_dir.patches = vec![patch_of_the_mapped_file(&[("a", "1")])];
    let text = error_text(sync(&request(
        repo.artifact("r1"),
        vec![by_dir.clone()],
        live.path(),
    )));
    assert!(text.contains("mappings[0]"), "{text}");
    assert!(text.contains("patches[0] names no file"), "{text}");
    assert!(snapshot_live(live.path()).is_empty());
    // Given explicitly, the profile itself is refused.
    by_dir.kind = Some(stoker_core::MappingType::Dir);
    let error = stoker_core::SyncSpec {
        profiles: [(
            "p".to_owned(),
            stoker_core::ProfileSpec {
                mappings: vec![by_dir],
                ..Default::default()
            },
        )]
        .into(),
        ..Default::default()
    }
    .resolve("p")
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("mappings[0].patches[0] names no file"),
        "{error}"
    );
}

#[test]
fn non_json_patch_target_is_an_error_naming_the_file() {
    let repo = Repo::new();
    repo.file("config/good.json", "{}")
        .file("config/bad.json", "this is not json");
    let live = live();
    let mut patched = map("config", "config");
    patched.patches = vec![patch("*.json", &[("a.b", "1")])];
    let request = request(repo.artifact("r1"), vec![patched], live.path());
    let text = error_text(sync(&request));
    assert!(text.contains("config/bad.json"), "{text}");
    assert!(text.contains("\"a.b\""), "{text}");
    assert!(text.contains("not a JSON document"), "{text}");
    assert!(
        snapshot_live(live.path()).is_empty(),
        "{:?}",
        snapshot(live.path())
    );
}
