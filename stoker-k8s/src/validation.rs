//! Spec validation the schema cannot express, reported as the `ProfilesValid` condition.
//!
//! Checked: at least one profile; mapping sources and destinations (as written, and rendered
//! with stand-in values for the template variables) are relative and free of `..`; templates
//! parse and read only known variables, `{{.Vars.key}}` only keys the profile defines; variable
//! names are identifiers; exclude and patch globs compile; and every Secret the spec references
//! (Git auth, gateway API key) exists with the referenced key. The existing Secrets are an input
//! ([`SecretInventory`]), so this stays a pure function.
//!
//! ```
//! use stoker_k8s::validation::{validate, SecretInventory};
//! let spec: stoker_k8s::GatewaySyncSpec = serde_json::from_value(serde_json::json!({
//!     "git": {"repo": "https://git.example/r.git", "ref": "main",
//!             "auth": {"token": {"secretRef": {"name": "git", "key": "token"}}}},
//!     "sync": {"profiles": {"p": {"mappings": [{"source": "a", "destination": "../etc"}]}}}
//! })).unwrap();
//! let problems = validate(&spec, &SecretInventory::default());
//! let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
//! assert!(text[0].contains("spec.git.auth.token.secretRef") && text[0].contains("not found"));
//! assert!(text[1].contains("profiles.p.mappings[0].destination") && text[1].contains(".."));
//! ```

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use stoker_core::context::LookupError;
use stoker_core::patch::parse_path;
use stoker_core::profile::{PATCH_WITHOUT_FILE_ON_DIR, build_globset, compile_glob, is_identifier};
use stoker_core::template::Template;
use stoker_core::{MappingType, TemplateContext};

use crate::conditions::{self, PROFILES_VALID, Status, reasons};
use crate::crd::{GatewaySyncSpec, ProfileSpec, SecretKeyRef};

/// One thing wrong with a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: a field path such as `spec.sync.profiles.standard.mappings[0].destination`.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// Whether the spec itself is wrong, or only something it refers to is missing yet.
    pub kind: ProblemKind,
}

/// What kind of problem a [`Problem`] is: the admission webhook rejects the first kind and only
/// warns about the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// The spec is wrong as written (a path, a template, a glob, the auth method).
    Spec,
    /// A Secret the spec refers to is missing or lacks the key. It may well be created after
    /// the GatewaySync, so this is not the spec's fault yet.
    Secret,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The Secrets of the resource's namespace: name → keys (of `data` and `stringData`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretInventory {
    secrets: BTreeMap<String, BTreeSet<String>>,
}

impl SecretInventory {
    /// Builds the inventory from listed Secrets (values are not kept).
    pub fn from_secrets<'a>(secrets: impl IntoIterator<Item = &'a Secret>) -> Self {
        let mut inventory = SecretInventory::default();
        for secret in secrets {
            let keys = secret
                .data
                .iter()
                .flat_map(|data: &BTreeMap<String, ByteString>| data.keys())
                .chain(secret.string_data.iter().flat_map(|data| data.keys()))
                .cloned();
            inventory.insert(secret.metadata.name.clone().unwrap_or_default(), keys);
        }
        inventory
    }

    /// Records a Secret and its keys.
    pub fn insert(&mut self, name: impl Into<String>, keys: impl IntoIterator<Item = String>) {
        self.secrets.entry(name.into()).or_default().extend(keys);
    }

    /// True when the Secret exists.
    pub fn has_secret(&self, name: &str) -> bool {
        self.secrets.contains_key(name)
    }

    /// True when the Secret exists and has `key`.
    pub fn has_key(&self, name: &str, key: &str) -> bool {
        self.secrets
            .get(name)
            .is_some_and(|keys| keys.contains(key))
    }
}

/// A Secret key the spec refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretReference {
    /// The spec field that refers to it (`spec.git.auth.token.secretRef`).
    pub field: &'static str,
    /// The Secret's name.
    pub name: String,
    /// The key in the Secret.
    pub key: String,
}

/// Every Secret key the spec refers to: Git auth (token, SSH key, known_hosts, GitHub App
/// private key) and the gateway API key.
pub fn referenced_secrets(spec: &GatewaySyncSpec) -> Vec<SecretReference> {
    let reference = |field, secret: &SecretKeyRef| SecretReference {
        field,
        name: secret.name.clone(),
        key: secret.key.clone(),
    };
    let mut found = Vec::new();
    if let Some(auth) = &spec.git.auth {
        if let Some(token) = &auth.token {
            found.push(reference(
                "spec.git.auth.token.secretRef",
                &token.secret_ref,
            ));
        }
        if let Some(ssh) = &auth.ssh_key {
            found.push(reference("spec.git.auth.sshKey.secretRef", &ssh.secret_ref));
            if let Some(known_hosts) = &ssh.known_hosts {
                found.push(reference(
                    "spec.git.auth.sshKey.knownHosts.secretRef",
                    &known_hosts.secret_ref,
                ));
            }
        }
        if let Some(app) = &auth.github_app {
            found.push(reference(
                "spec.git.auth.githubApp.privateKeySecretRef",
                &app.private_key_secret_ref,
            ));
        }
    }
    if let Some(api) = &spec.gateway.api {
        found.push(SecretReference {
            field: "spec.gateway.api",
            name: api.secret_name.clone(),
            key: api.secret_key.clone(),
        });
    }
    found
}

/// Checks the spec; an empty list means valid.
pub fn validate(spec: &GatewaySyncSpec, secrets: &SecretInventory) -> Vec<Problem> {
    let mut problems = Vec::new();
    for reference in referenced_secrets(spec) {
        let message = if !secrets.has_secret(&reference.name) {
            format!("Secret {:?} not found in the namespace", reference.name)
        } else if reference.key.is_empty() {
            "key is empty".to_owned()
        } else if !secrets.has_key(&reference.name, &reference.key) {
            format!("Secret {:?} has no key {:?}", reference.name, reference.key)
        } else {
            continue;
        };
        // An empty key is the spec's own mistake; the rest may be fixed by creating the Secret.
        let kind = if reference.key.is_empty() {
            ProblemKind::Spec
        } else {
            ProblemKind::Secret
        };
        problems.push(Problem {
            field: reference.field.to_owned(),
            message,
            kind,
        });
    }
    let mut problem = |field: String, message: String| {
        problems.push(Problem {
            field,
            message,
            kind: ProblemKind::Spec,
        })
    };

    if let Some(auth) = &spec.git.auth
        && let Err(message) = auth.method()
    {
        let message = match message.strip_prefix("spec.git.auth ") {
            Some(rest) => rest.to_owned(),
            None => message,
        };
        problem("spec.git.auth".to_owned(), message);
    }

    let defaults = &spec.sync.defaults;
    check_vars(&defaults.vars, "spec.sync.defaults.vars", &mut problem);
    if let Some(patterns) = &defaults.exclude_patterns {
        check_excludes(patterns, "spec.sync.defaults.excludePatterns", &mut problem);
    }
    if spec.sync.profiles.is_empty() {
        problem(
            "spec.sync.profiles".to_owned(),
            "no profiles: define at least one".to_owned(),
        );
    }
    for (name, profile) in &spec.sync.profiles {
        check_profile(spec, name, profile, &mut problem);
    }
    problems
}

fn check_profile(
    spec: &GatewaySyncSpec,
    name: &str,
    profile: &ProfileSpec,
    problem: &mut impl FnMut(String, String),
) {
    let at = format!("spec.sync.profiles.{name}");
    check_vars(&profile.vars, &format!("{at}.vars"), problem);
    check_excludes(
        &profile.exclude_patterns,
        &format!("{at}.excludePatterns"),
        problem,
    );
    if profile.mappings.is_empty() {
        problem(
            format!("{at}.mappings"),
            "no mappings: the profile would sync nothing".to_owned(),
        );
    }
    let mut vars = spec.sync.defaults.vars.clone();
    vars.extend(profile.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
    let probe = probe_context(vars);
    for (index, mapping) in profile.mappings.iter().enumerate() {
        for (field, path) in [
            ("source", &mapping.source),
            ("destination", &mapping.destination),
        ] {
            let field = format!("{at}.mappings[{index}].{field}");
            if let Err(message) = check_path(path, &probe) {
                problem(field, message);
            }
        }
        for (patch_index, patch) in mapping.patches.iter().enumerate() {
            let field = format!("{at}.mappings[{index}].patches[{patch_index}]");
            match &patch.file {
                Some(file) => {
                    if let Err(message) = compile_glob(file) {
                        problem(format!("{field}.file"), format!("{file:?}: {message}"));
                    }
                }
                // An inferred type is only known at sync time, where the agent reports it.
                None if mapping.kind == Some(MappingType::Dir) => problem(
                    format!("{field}.file"),
                    format!("missing: {PATCH_WITHOUT_FILE_ON_DIR}"),
                ),
                None => {}
            }
            if patch.set.is_empty() {
                problem(format!("{field}.set"), "sets no field".to_owned());
            }
            for (path, value) in &patch.set {
                if let Err(error) = parse_path(path) {
                    problem(
                        format!("{field}.set"),
                        format!(
                            "{path:?} is not a patch path (`connection.host`, `items.0.name`, \
                             `items.-1`, `a\\.b`): {error}"
                        ),
                    );
                }
                if let Err(message) = check_template(value, &probe) {
                    problem(format!("{field}.set[{path:?}]"), message);
                }
            }
        }
    }
}

/// A context where every variable has a stand-in value, and `.Vars` holds the profile's.
fn probe_context(vars: BTreeMap<String, String>) -> TemplateContext {
    let stand_in = || Some("x".to_owned());
    TemplateContext {
        gateway_name: stand_in(),
        pod_name: stand_in(),
        pod_ordinal: Some("0".to_owned()),
        cr_name: stand_in(),
        namespace: stand_in(),
        reference: stand_in(),
        commit: stand_in(),
        labels: BTreeMap::new(),
        vars,
    }
}

/// Parses a template and checks the variables it reads against the probe context (any
/// `.Labels.key` is accepted: labels are only known per pod). Returns the template.
fn check_template(text: &str, probe: &TemplateContext) -> Result<Template, String> {
    let template = Template::parse("", text).map_err(|error| match error {
        stoker_core::Error::Template { message, .. } => format!("{text:?}: {message}"),
        other => format!("{text:?}: {other}"),
    })?;
    for path in template.variables() {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        // Any `.Labels.key` (labels are only known per pod), and the maps themselves
        // (`{{range .Vars}}`).
        if let ["Labels", _] | ["Labels"] | ["Vars"] = path.as_slice() {
            continue;
        }
        let dotted = format!(".{}", path.join("."));
        match probe.lookup(&path) {
            Ok(_) => {}
            Err(LookupError::Unknown) => {
                return Err(format!(
                    "{text:?} reads {dotted}, which is not a template variable (known: .GatewayName, .PodName, .PodOrdinal, .CRName, .Namespace, .Ref, .Commit, .Labels.key, .Vars.key)"
                ));
            }
            Err(LookupError::Unset) => {
                return Err(format!(
                    "{text:?} reads {dotted}, which neither the profile's vars nor spec.sync.defaults.vars define"
                ));
            }
            Err(LookupError::NotAValue) => {
                return Err(format!("{text:?} reads {dotted}, which is not a value"));
            }
        }
    }
    Ok(template)
}

/// Checks a mapping path as written and as rendered with stand-in values.
fn check_path(path: &str, probe: &TemplateContext) -> Result<(), String> {
    if path.trim().is_empty() {
        return Err("is empty".to_owned());
    }
    path_is_relative(path).map_err(|reason| format!("{path:?}: {reason}"))?;
    let template = check_template(path, probe)?;
    if template.is_literal() {
        return Ok(());
    }
    let mut probe = probe.clone();
    for variable in template.variables() {
        if let [first, key] = variable
            && first == "Labels"
        {
            probe.labels.insert(key.clone(), "x".to_owned());
        }
    }
    let rendered = template
        .render(&probe)
        .map_err(|error| format!("{path:?}: {error}"))?;
    path_is_relative(&rendered)
        .map_err(|reason| format!("{path:?} renders to {rendered:?}: {reason}"))
}

/// Refuses absolute paths and `..` components (`/` or `\` separated).
fn path_is_relative(path: &str) -> Result<(), &'static str> {
    let bytes = path.as_bytes();
    if path.starts_with(['/', '\\'])
        || (bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic())
    {
        return Err(
            "absolute paths are not allowed; paths are relative to the repository (source) or the gateway data directory (destination)",
        );
    }
    if path.split(['/', '\\']).any(|component| component == "..") {
        return Err("'..' is not allowed");
    }
    if path.contains('\0') {
        return Err("NUL bytes are not allowed");
    }
    Ok(())
}

fn check_vars(
    vars: &BTreeMap<String, String>,
    field: &str,
    problem: &mut impl FnMut(String, String),
) {
    for key in vars.keys() {
        if !is_identifier(key) {
            problem(
                field.to_owned(),
                format!(
                    "variable name {key:?} is not an identifier ([A-Za-z_][A-Za-z0-9_]*), so {{{{.Vars.{key}}}}} could not read it"
                ),
            );
        }
    }
}

fn check_excludes(patterns: &[String], field: &str, problem: &mut impl FnMut(String, String)) {
    if let Err((pattern, message)) = build_globset(patterns) {
        problem(field.to_owned(), format!("{pattern:?}: {message}"));
    }
}

/// Maximum number of problems quoted in the condition message.
const MAX_LISTED: usize = 10;

/// The `ProfilesValid` condition for the problems [`validate`] found.
pub fn profiles_valid_condition(
    problems: &[Problem],
    generation: i64,
    now: Timestamp,
) -> Condition {
    if problems.is_empty() {
        return conditions::new(
            PROFILES_VALID,
            Status::True,
            reasons::PROFILES_VALID,
            "All profiles valid",
            generation,
            now,
        );
    }
    conditions::new(
        PROFILES_VALID,
        Status::False,
        reasons::PROFILES_INVALID,
        summary(problems),
        generation,
        now,
    )
}

/// The problems on one line, as the condition and the admission webhook say them: the first
/// ten, `; `-separated, and how many more.
pub fn summary(problems: &[Problem]) -> String {
    let mut message = problems
        .iter()
        .take(MAX_LISTED)
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    if problems.len() > MAX_LISTED {
        message.push_str(&format!("; and {} more", problems.len() - MAX_LISTED));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(value: serde_json::Value) -> GatewaySyncSpec {
        serde_json::from_value(value).unwrap()
    }

    fn minimal(profiles: serde_json::Value) -> GatewaySyncSpec {
        spec(json!({
            "git": {"repo": "https://git.example/r.git", "ref": "main"},
            "sync": {"profiles": profiles}
        }))
    }

    fn messages(spec: &GatewaySyncSpec, secrets: &SecretInventory) -> Vec<String> {
        validate(spec, secrets)
            .iter()
            .map(Problem::to_string)
            .collect()
    }

    #[test]
    fn a_good_spec_has_no_problems() {
        let spec = spec(json!({
            "git": {"repo": "git@host:r.git", "ref": "main",
                    "auth": {"sshKey": {"secretRef": {"name": "ssh", "key": "id"},
                                        "knownHosts": {"secretRef": {"name": "ssh", "key": "known_hosts"}}}}},
            "gateway": {"api": {"secretName": "gw"}},
            "sync": {
                "defaults": {"vars": {"site": "1"}, "excludePatterns": ["**/*.bak"]},
                "profiles": {"standard": {
                    "vars": {"db": "db1"},
                    "mappings": [
                        {"source": "services/{{.GatewayName}}/projects", "destination": "projects"},
                        {"source": "sites/{{.Labels.site}}/{{.Vars.site}}", "destination": "config/{{ .Vars.db }}",
                         "patches": [{"file": "**/config.json", "set": {"connection.host": "{{.Vars.db}}"}}]}
                    ]
                }}
            }
        }));
        let mut secrets = SecretInventory::default();
        secrets.insert("ssh", ["id".to_owned(), "known_hosts".to_owned()]);
        secrets.insert("gw", ["apiKey".to_owned()]);
        assert_eq!(messages(&spec, &secrets), Vec::<String>::new());
        let condition = profiles_valid_condition(&[], 3, Timestamp::UNIX_EPOCH);
        assert_eq!(condition.status, "True");
        assert_eq!(condition.observed_generation, Some(3));
    }

    #[test]
    fn absolute_and_dotdot_paths_are_named_with_profile_and_mapping() {
        let spec = minimal(json!({"p": {"mappings": [
            {"source": "/abs", "destination": "ok"},
            {"source": "ok", "destination": "a/../../b"},
            {"source": "C:\\x", "destination": "ok"}
        ]}}));
        let found = messages(&spec, &SecretInventory::default());
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(
            found[0].starts_with("spec.sync.profiles.p.mappings[0].source: \"/abs\": absolute")
        );
        assert!(found[1].starts_with("spec.sync.profiles.p.mappings[1].destination"));
        assert!(found[1].contains("'..'"));
        assert!(found[2].contains("mappings[2].source"));
    }

    #[test]
    fn variables_that_render_an_escape_are_caught() {
        let spec = spec(json!({
            "git": {"repo": "r", "ref": "main"},
            "sync": {"defaults": {"vars": {"up": "../.."}},
                     "profiles": {"p": {"mappings": [{"source": "a", "destination": "{{.Vars.up}}/etc"}]}}}
        }));
        let found = messages(&spec, &SecretInventory::default());
        assert_eq!(found.len(), 1);
        assert!(found[0].contains("renders to \"../../etc\""), "{found:?}");
    }

    #[test]
    fn unknown_and_undefined_variables_are_reported() {
        let spec = minimal(json!({"p": {"mappings": [
            {"source": "{{.Gateway}}", "destination": "x"},
            {"source": "a", "destination": "{{.Vars.missing}}"},
            {"source": "{{.GatewayName | upper}}", "destination": "x"}
        ]}}));
        let found = messages(&spec, &SecretInventory::default());
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].contains(".Gateway, which is not a template variable"));
        assert!(found[1].contains(".Vars.missing"));
        assert!(
            found[2].contains(r#"function "upper" not defined"#),
            "{found:?}"
        );
    }

    #[test]
    fn variable_names_globs_and_empty_things() {
        let spec = spec(json!({
            "git": {"repo": "r", "ref": "main"},
            "sync": {"defaults": {"vars": {"bad-key": "1"}, "excludePatterns": ["a/["]},
                     "profiles": {"p": {"mappings": [], "vars": {"9x": "1"}},
                                  "q": {"mappings": [{"source": "a", "destination": "b",
                                                      "patches": [{"file": "[", "set": {}}]}]}}}
        }));
        let found = messages(&spec, &SecretInventory::default());
        let joined = found.join("\n");
        for expected in [
            "spec.sync.defaults.vars: variable name \"bad-key\"",
            "spec.sync.defaults.excludePatterns: \"a/[\"",
            "spec.sync.profiles.p.vars: variable name \"9x\"",
            "spec.sync.profiles.p.mappings: no mappings",
            "spec.sync.profiles.q.mappings[0].patches[0].file",
            "spec.sync.profiles.q.mappings[0].patches[0].set: sets no field",
        ] {
            assert!(
                joined.contains(expected),
                "missing {expected:?} in\n{joined}"
            );
        }
    }

    #[test]
    fn patch_paths_follow_the_sjson_syntax() {
        let spec = minimal(
            json!({"p": {"mappings": [{"source": "a", "destination": "b",
            "patches": [{"file": "x.json", "set": {
                "items.-1": "1", "a\\.": "1", "labels.app\\.io/name": "1",
                "a..b": "1", "": "1"}}]}]}}),
        );
        let found = messages(&spec, &SecretInventory::default());
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("\"\" is not a patch path"), "{found:?}");
        assert!(
            found[1].contains("\"a..b\" is not a patch path"),
            "{found:?}"
        );
    }

    #[test]
    fn a_patch_may_omit_file_on_a_file_mapping_only_and_any_polling_interval_passes() {
        let spec = spec(json!({
            "git": {"repo": "r", "ref": "main"},
            // Not a duration: the controller reports it in a condition; nothing is refused.
            "polling": {"interval": "5 minutes"},
            "sync": {"profiles": {"p": {"mappings": [
                {"source": "a.json", "destination": "b.json", "type": "file",
                 "patches": [{"set": {"x": "1"}}]},
                // Type inferred at sync time: the agent reports it then.
                {"source": "c.json", "destination": "d.json", "patches": [{"set": {"x": "1"}}]},
                {"source": "dir", "destination": "dir", "type": "dir",
                 "patches": [{"set": {"x": "1"}}]}
            ]}}}
        }));
        let found = messages(&spec, &SecretInventory::default());
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with(
                "spec.sync.profiles.p.mappings[2].patches[0].file: missing: only a file mapping may omit it"
            ),
            "{found:?}"
        );
    }

    #[test]
    fn at_least_one_profile() {
        let found = messages(&minimal(json!({})), &SecretInventory::default());
        assert_eq!(
            found,
            ["spec.sync.profiles: no profiles: define at least one"]
        );
    }

    #[test]
    fn missing_secrets_and_keys_are_reported() {
        let spec = spec(json!({
            "git": {"repo": "r", "ref": "main",
                    "auth": {"githubApp": {"appId": 1, "installationId": 2,
                                           "privateKeySecretRef": {"name": "app", "key": "pem"}}}},
            "gateway": {"api": {"secretName": "gw", "secretKey": "token"}},
            "sync": {"profiles": {"p": {"mappings": [{"source": "a", "destination": "b"}]}}}
        }));
        let mut secrets = SecretInventory::default();
        secrets.insert("app", ["key.pem".to_owned()]);
        let found = messages(&spec, &secrets);
        assert_eq!(
            found,
            [
                "spec.git.auth.githubApp.privateKeySecretRef: Secret \"app\" has no key \"pem\"",
                "spec.gateway.api: Secret \"gw\" not found in the namespace",
            ]
        );
        let condition =
            profiles_valid_condition(&validate(&spec, &secrets), 1, Timestamp::UNIX_EPOCH);
        assert_eq!(condition.status, "False");
        assert_eq!(condition.reason, "ProfilesInvalid");
        assert!(condition.message.contains("has no key"));
    }

    #[test]
    fn two_auth_methods_are_a_problem() {
        let spec = spec(json!({
            "git": {"repo": "r", "ref": "main",
                    "auth": {"token": {"secretRef": {"name": "t", "key": "k"}},
                             "sshKey": {"secretRef": {"name": "s", "key": "k"}}}},
            "sync": {"profiles": {"p": {"mappings": [{"source": "a", "destination": "b"}]}}}
        }));
        let mut secrets = SecretInventory::default();
        secrets.insert("t", ["k".to_owned()]);
        secrets.insert("s", ["k".to_owned()]);
        let found = messages(&spec, &secrets);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0],
            "spec.git.auth: sets 2 methods (token, sshKey); exactly one is allowed"
        );
    }

    #[test]
    fn inventory_reads_data_and_string_data_keys() {
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some("s".into()),
                ..Default::default()
            },
            data: Some(BTreeMap::from([("a".to_owned(), ByteString(vec![1]))])),
            string_data: Some(BTreeMap::from([("b".to_owned(), "x".to_owned())])),
            ..Default::default()
        };
        let inventory = SecretInventory::from_secrets([&secret]);
        assert!(inventory.has_key("s", "a") && inventory.has_key("s", "b"));
        assert!(!inventory.has_key("s", "c") && !inventory.has_secret("t"));
    }

    #[test]
    fn long_problem_lists_are_cut_in_the_message() {
        let problems: Vec<Problem> = (0..15)
            .map(|i| Problem {
                field: format!("f{i}"),
                message: "m".to_owned(),
                kind: ProblemKind::Spec,
            })
            .collect();
        let condition = profiles_valid_condition(&problems, 1, Timestamp::UNIX_EPOCH);
        assert!(condition.message.ends_with("; and 5 more"));
    }
}
