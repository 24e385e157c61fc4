//! The generated `GatewaySync` CRD: the chart's copy is current, the schema is structural (what
//! the API server requires), every field is described, and defaults, validation and printer
//! columns are the documented ones. Documents in the stoker-operator v0.5 shape parse.

use std::path::Path;

use serde_json::Value;
use stoker_k8s::GatewaySync;
use stoker_k8s::crd::{CRD_FILE, crd, crd_yaml};

fn schema() -> Value {
    let crd = serde_json::to_value(crd()).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

fn at<'a>(schema: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(schema, |node, key| match key {
        "*" => &node["additionalProperties"],
        "[]" => &node["items"],
        key => &node["properties"][key],
    })
}

#[test]
fn the_chart_crd_is_the_generated_one() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(CRD_FILE);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = crd_yaml().unwrap();
    assert!(
        committed == generated,
        "{CRD_FILE} is out of date with the GatewaySync types: run `cargo run -p stoker-k8s --bin crdgen -- --write` and commit the result"
    );
}

/// Walks every schema node: `path` names it in failures.
fn walk(node: &Value, path: &str, visit: &mut dyn FnMut(&Value, &str)) {
    visit(node, path);
    if let Some(properties) = node.get("properties").and_then(Value::as_object) {
        for (name, child) in properties {
            walk(child, &format!("{path}.{name}"), visit);
        }
    }
    if let Some(items) = node.get("items") {
        walk(items, &format!("{path}[]"), visit);
    }
    if let Some(values) = node.get("additionalProperties").filter(|v| v.is_object()) {
        walk(values, &format!("{path}.*"), visit);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(branches) = node.get(key).and_then(Value::as_array) {
            for (i, branch) in branches.iter().enumerate() {
                walk(branch, &format!("{path}/{key}[{i}]"), visit);
            }
        }
    }
}

#[test]
fn the_schema_is_structural() {
    let mut problems = Vec::new();
    walk(&schema(), "", &mut |node, path| {
        let object = node.as_object().unwrap();
        if object.contains_key("$ref")
            || object.contains_key("$defs")
            || object.contains_key("definitions")
        {
            problems.push(format!("{path}: $ref/definitions"));
        }
        for key in ["anyOf", "oneOf", "allOf", "not"] {
            if object.contains_key(key) {
                problems.push(format!(
                    "{path}: {key} (must be rewritten to a typed schema)"
                ));
            }
        }
        let typed = object.contains_key("type")
            || object.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
            || object.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
        if !typed {
            problems.push(format!("{path}: no type"));
        }
        if object.contains_key("properties") && object.contains_key("additionalProperties") {
            problems.push(format!(
                "{path}: properties and additionalProperties together"
            ));
        }
        if object
            .get("additionalProperties")
            .is_some_and(Value::is_boolean)
        {
            problems.push(format!("{path}: additionalProperties must be a schema"));
        }
        if object.get("type") == Some(&Value::String("array".into()))
            && !object.contains_key("items")
        {
            problems.push(format!("{path}: array without items"));
        }
        if object.contains_key("x-kubernetes-preserve-unknown-fields") {
            problems.push(format!("{path}: preserves unknown fields"));
        }
        if let Some(types) = object.get("type").and_then(Value::as_array) {
            problems.push(format!("{path}: several types {types:?}"));
        }
    });
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn every_field_has_a_description() {
    let mut missing = Vec::new();
    walk(&schema(), "", &mut |node, path| {
        if let Some(properties) = node.get("properties").and_then(Value::as_object) {
            for (name, child) in properties {
                // The API server refuses anything but the type on the root's `metadata`.
                if path.is_empty() && name == "metadata" {
                    continue;
                }
                let described = child
                    .get("description")
                    .and_then(Value::as_str)
                    .is_some_and(|d| d.trim().len() > 5);
                if !described {
                    missing.push(format!("{path}.{name}"));
                }
            }
        }
    });
    assert!(
        missing.is_empty(),
        "fields without a description: {missing:#?}"
    );
}

#[test]
fn the_schema_root_declares_api_version_kind_and_metadata() {
    let schema = schema();
    for (field, type_) in [
        ("apiVersion", "string"),
        ("kind", "string"),
        ("metadata", "object"),
        ("spec", "object"),
        ("status", "object"),
    ] {
        assert_eq!(schema["properties"][field]["type"], type_, "{field}");
    }
    // Metadata is the API server's: the CRD leaves its fields to it.
    assert!(schema["properties"]["metadata"].get("properties").is_none());
}

#[test]
fn names_scope_and_subresources() {
    let crd = serde_json::to_value(crd()).unwrap();
    assert_eq!(crd["metadata"]["name"], "gatewaysyncs.stoker.io");
    let spec = &crd["spec"];
    assert_eq!(spec["group"], "stoker.io");
    assert_eq!(spec["scope"], "Namespaced");
    assert_eq!(spec["names"]["kind"], "GatewaySync");
    assert_eq!(spec["names"]["plural"], "gatewaysyncs");
    assert_eq!(spec["names"]["shortNames"], serde_json::json!(["gs"]));
    let version = &spec["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert_eq!(version["served"], true);
    assert_eq!(version["storage"], true);
    assert_eq!(version["subresources"]["status"], serde_json::json!({}));
}

#[test]
fn printer_columns_are_the_documented_ones() {
    let crd = serde_json::to_value(crd()).unwrap();
    let columns: Vec<(String, String, i64)> =
        crd["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_uppercase(),
                    c["jsonPath"].as_str().unwrap().to_owned(),
                    c["priority"].as_i64().unwrap_or(0),
                )
            })
            .collect();
    let expected = [
        ("REF", ".status.lastSyncRef", 0),
        ("GATEWAYS", ".status.gatewaySummary", 0),
        (
            "READY",
            ".status.conditions[?(@.type==\"Ready\")].status",
            0,
        ),
        (
            "STATUS",
            ".status.conditions[?(@.type==\"Ready\")].message",
            0,
        ),
        // In stoker-operator v0.5.1's order, so that `-o wide` columns stay where scripts
        // cut them.
        ("AGE", ".metadata.creationTimestamp", 0),
        ("COMMIT", ".status.lastSyncCommitShort", 1),
        ("PROFILES", ".status.profileCount", 1),
        ("LAST SYNC", ".status.lastSyncTime", 1),
    ];
    let expected: Vec<(String, String, i64)> = expected
        .iter()
        .map(|(n, p, r)| ((*n).to_owned(), (*p).to_owned(), *r))
        .collect();
    assert_eq!(columns, expected);
}

#[test]
fn defaults_match_the_code() {
    let schema = schema();
    let spec = at(&schema, "spec");
    assert_eq!(
        at(spec, "polling")["default"],
        serde_json::json!({"enabled": true, "interval": "60s"})
    );
    assert_eq!(at(spec, "polling.interval")["default"], "60s");
    assert_eq!(at(spec, "polling.enabled")["default"], true);
    assert_eq!(at(spec, "gateway.port")["default"], 8088);
    assert_eq!(at(spec, "gateway.tls")["default"], false);
    assert_eq!(at(spec, "gateway.api.secretKey")["default"], "apiKey");
    assert_eq!(at(spec, "sync.defaults")["default"], serde_json::json!({}));
    assert_eq!(
        at(spec, "sync.defaults.syncPeriod")["default"],
        stoker_core::profile::DEFAULT_SYNC_PERIOD
    );
    assert_eq!(
        at(spec, "sync.defaults.designerSessionPolicy")["default"],
        "proceed"
    );
    assert_eq!(
        at(spec, "sync.defaults.excludePatterns")["default"],
        serde_json::json!(stoker_core::profile::DEFAULT_EXCLUDES)
    );
    // A default the API server applies must be what the code does without it.
    let profile = stoker_core::SyncSpec {
        profiles: [("p".to_owned(), stoker_core::ProfileSpec::default())].into(),
        ..Default::default()
    }
    .resolve("p")
    .unwrap();
    assert_eq!(profile.sync_period, 30);
    assert_eq!(
        profile.designer_session_policy,
        stoker_core::DesignerSessionPolicy::Proceed
    );
    assert_eq!(
        profile.exclude_patterns,
        stoker_core::profile::DEFAULT_EXCLUDES
    );
}

#[test]
fn validation_is_in_the_schema() {
    let schema = schema();
    let spec = at(&schema, "spec");
    let required = |node: &Value| -> Vec<String> {
        node["required"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    };
    assert_eq!(required(&schema), ["spec"]);
    assert_eq!(required(spec), ["git", "sync"]);
    assert_eq!(required(at(spec, "git")), ["ref", "repo"]);
    assert_eq!(required(at(spec, "sync")), ["profiles"]);
    assert_eq!(
        required(at(spec, "sync.profiles.*.mappings.[]")),
        ["destination", "source"]
    );
    assert_eq!(
        required(at(spec, "git.auth.token.secretRef")),
        ["key", "name"]
    );
    assert_eq!(required(at(spec, "gateway.api")), ["secretName"]);
    assert_eq!(at(spec, "git.repo")["minLength"], 1);
    assert_eq!(at(spec, "sync.profiles")["minProperties"], 1);
    assert_eq!(
        at(spec, "sync.defaults.designerSessionPolicy")["enum"],
        serde_json::json!(["proceed", "wait", "fail"])
    );
    assert_eq!(
        at(spec, "sync.profiles.*.designerSessionPolicy")["enum"],
        serde_json::json!(["proceed", "wait", "fail"])
    );
    assert_eq!(
        at(spec, "sync.profiles.*.mappings.[].type")["enum"],
        serde_json::json!(["dir", "file"])
    );
    assert_eq!(
        at(spec, "agent.image.pullPolicy")["enum"],
        serde_json::json!(["Always", "IfNotPresent", "Never"])
    );
    assert_eq!(at(spec, "gateway.port")["minimum"], 1.0);
    assert_eq!(at(spec, "gateway.port")["maximum"], 65535.0);
    // stoker-operator v0.5.1's bounds.
    for path in ["sync.defaults.syncPeriod", "sync.profiles.*.syncPeriod"] {
        assert_eq!(at(spec, path)["minimum"], 5.0, "{path}");
        assert_eq!(at(spec, path)["maximum"], 3600.0, "{path}");
    }
    // Any string, as v0.5.1 took it: one that does not parse is a condition, not a refusal.
    let interval = at(spec, "polling.interval").as_object().unwrap();
    assert_eq!(interval["type"], "string");
    assert!(
        !interval.contains_key("pattern") && !interval.contains_key("minLength"),
        "{interval:?}"
    );
    // A patch may leave `file` out (a file mapping patches its own file).
    let patch = at(spec, "sync.profiles.*.mappings.[].patches.[]");
    assert_eq!(required(patch), Vec::<String>::new());
    assert_eq!(at(patch, "file")["type"], "string");
    assert_eq!(
        at(spec, "git.auth.githubApp.appId")["x-kubernetes-int-or-string"],
        true
    );
    let rules = &at(spec, "git.auth")["x-kubernetes-validations"];
    assert_eq!(
        rules[0]["rule"],
        "(has(self.token) ? 1 : 0) + (has(self.sshKey) ? 1 : 0) + (has(self.githubApp) ? 1 : 0) == 1"
    );
    let conditions = at(&schema, "status.conditions");
    assert_eq!(conditions["x-kubernetes-list-type"], "map");
    assert_eq!(
        conditions["x-kubernetes-list-map-keys"],
        serde_json::json!(["type"])
    );
}

/// The example of stoker-operator v0.5's `GatewaySync` reference, unchanged.
const V05_EXAMPLE: &str = r#"
apiVersion: stoker.io/v1alpha1
kind: GatewaySync
metadata:
  name: my-gatewaysync
  namespace: my-namespace
spec:
  git:
    repo: "https://github.com/org/repo.git"
    ref: "main"
    auth:
      token:
        secretRef:
          name: git-token
          key: token
  polling:
    enabled: true
    interval: "60s"
  gateway:
    port: 8088
    tls: false
    api:
      secretName: gw-api-key
  sync:
    defaults:
      excludePatterns:
        - "**/.git/"
        - "**/.gitkeep"
        - "**/.resources/**"
      syncPeriod: 30
      designerSessionPolicy: proceed
    profiles:
      standard:
        mappings:
          - source: "services/{{.GatewayName}}/projects/"
            destination: "projects/"
            type: dir
            required: true
          - source: "services/{{.GatewayName}}/config/"
            destination: "config/"
            type: dir
        syncPeriod: 60
        designerSessionPolicy: wait
  paused: false
"#;

#[test]
fn a_v05_document_parses_the_same_here_and_on_the_command_line() {
    let gs: GatewaySync = serde_yaml::from_str(V05_EXAMPLE).unwrap();
    let document: stoker_core::spec::GatewaySyncDocument =
        serde_yaml::from_str(V05_EXAMPLE).unwrap();
    assert_eq!(gs.spec.git, document.spec.git);
    assert_eq!(gs.spec.sync, document.spec.sync);
    assert_eq!(gs.spec.paused, document.spec.paused);
    assert_eq!(gs.spec.gateway.api.as_ref().unwrap().secret_key, "apiKey");
    let profile = gs.spec.sync.resolve("standard").unwrap();
    assert_eq!(profile.sync_period, 60);
    // And back: serialising and parsing again is lossless.
    let again: GatewaySync = serde_json::from_value(serde_json::to_value(&gs).unwrap()).unwrap();
    assert_eq!(again, gs);
}

#[test]
fn ssh_and_github_app_documents_parse() {
    let gs: GatewaySync = serde_yaml::from_str(
        r#"
apiVersion: stoker.io/v1alpha1
kind: GatewaySync
metadata: {name: a}
spec:
  git:
    repo: git@github.com:org/repo.git
    ref: v1.2.0
    auth:
      sshKey:
        secretRef: {name: ssh-key, key: id_ed25519}
        knownHosts:
          secretRef: {name: ssh-known-hosts, key: known_hosts}
  sync: {profiles: {default: {mappings: [{source: config, destination: config, type: dir}]}}}
  agent:
    image: {repository: example/stoker-agent, tag: "1.0", pullPolicy: IfNotPresent}
    resources: {requests: {cpu: 50m, memory: 64Mi}, limits: {memory: 256Mi}}
"#,
    )
    .unwrap();
    assert!(
        gs.spec
            .git
            .auth
            .unwrap()
            .ssh_key
            .unwrap()
            .known_hosts
            .is_some()
    );
    assert_eq!(
        gs.spec.agent.image.unwrap().pull_policy,
        Some(stoker_k8s::crd::PullPolicy::IfNotPresent)
    );
    let gs: GatewaySync = serde_yaml::from_str(
        r#"
apiVersion: stoker.io/v1alpha1
kind: GatewaySync
metadata: {name: b}
spec:
  git:
    repo: https://github.com/org/repo.git
    ref: main
    auth:
      githubApp:
        appId: 12345
        installationId: 67890
        privateKeySecretRef: {name: github-app-key, key: private-key.pem}
        apiBaseURL: https://github.example.com/api/v3
  sync: {profiles: {p: {mappings: [{source: a, destination: b}]}}}
"#,
    )
    .unwrap();
    let app = gs.spec.git.auth.unwrap().github_app.unwrap();
    assert_eq!(app.app_id.to_string(), "12345");
    assert_eq!(
        app.api_base_url.as_deref(),
        Some("https://github.example.com/api/v3")
    );
}
