//! The metrics Stoker's binaries export, as the tests know them: one list shared by the test
//! that scrapes the operator and the agent (both directions: nothing missing, nothing
//! unexpected) and the chart test that checks every metric its dashboards and alerts query
//! exists. Also a small parser of the text exposition.
//!
//! Names are as PromQL sees them: counters end in `_total`; a histogram `h` also answers to
//! `h_bucket`, `h_sum` and `h_count`. Labels are the label keys of every series (`le` of
//! histogram buckets left out).

use std::collections::{BTreeMap, BTreeSet};

/// A metric family: its PromQL name, type and label keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exported {
    /// The name PromQL queries (`…_total` for a counter).
    pub name: &'static str,
    /// `counter`, `gauge` or `histogram`.
    pub kind: &'static str,
    /// The label keys of each series.
    pub labels: &'static [&'static str],
}

const fn m(name: &'static str, kind: &'static str, labels: &'static [&'static str]) -> Exported {
    Exported { name, kind, labels }
}

const NN: &[&str] = &["name", "namespace"];

/// What `stoker-operator` serves on `/metrics` (stoker-operator v0.5.1's controller and webhook
/// metrics, and ours).
pub const OPERATOR: &[Exported] = &[
    m(
        "stoker_controller_reconcile_total",
        "counter",
        &["name", "namespace", "result"],
    ),
    m(
        "stoker_controller_reconcile_duration_seconds",
        "histogram",
        NN,
    ),
    m(
        "stoker_controller_ref_resolve_duration_seconds",
        "histogram",
        NN,
    ),
    m(
        "stoker_controller_ref_resolve_total",
        "counter",
        &["name", "namespace", "result"],
    ),
    m("stoker_controller_gateways_discovered", "gauge", NN),
    m("stoker_controller_gateways_synced", "gauge", NN),
    m("stoker_controller_gateways_missing_sidecar", "gauge", NN),
    m("stoker_controller_cr_ready", "gauge", NN),
    m("stoker_controller_cr_paused", "gauge", NN),
    m(
        "stoker_controller_cr_info",
        "gauge",
        &[
            "name",
            "namespace",
            "git_repo",
            "git_ref",
            "auth_type",
            "polling_interval",
        ],
    ),
    m(
        "stoker_controller_condition_status",
        "gauge",
        &["name", "namespace", "type"],
    ),
    m(
        "stoker_controller_gateway_sync_status",
        "gauge",
        &["name", "namespace", "gateway"],
    ),
    m(
        "stoker_controller_gateway_last_sync_timestamp_seconds",
        "gauge",
        &["name", "namespace", "gateway"],
    ),
    m("stoker_controller_last_sync_timestamp_seconds", "gauge", NN),
    m(
        "stoker_controller_github_app_token_expiry_timestamp_seconds",
        "gauge",
        &["app_id", "installation_id", "name", "namespace"],
    ),
    m(
        "stoker_controller_notifications_total",
        "counter",
        &["name", "namespace", "type", "result"],
    ),
    m(
        "stoker_webhook_injector_injections_total",
        "counter",
        &["namespace", "result"],
    ),
    m(
        "stoker_webhook_receiver_requests_total",
        "counter",
        &["source", "status_code"],
    ),
    m(
        "stoker_webhook_validations_total",
        "counter",
        &["namespace", "result"],
    ),
    m(
        "stoker_webhook_admission_duration_seconds",
        "histogram",
        &["webhook"],
    ),
];

/// What `stoker-agent sidecar` serves on its metrics port (stoker-operator v0.5.1's agent
/// metrics, and ours).
pub const AGENT: &[Exported] = &[
    m(
        "stoker_agent_sync_duration_seconds",
        "histogram",
        &["profile"],
    ),
    m("stoker_agent_sync_total", "counter", &["profile", "result"]),
    m("stoker_agent_files_changed", "gauge", &["profile"]),
    m("stoker_agent_files_added", "gauge", &["profile"]),
    m("stoker_agent_files_modified", "gauge", &["profile"]),
    m("stoker_agent_files_deleted", "gauge", &["profile"]),
    m(
        "stoker_agent_git_fetch_duration_seconds",
        "histogram",
        &["operation"],
    ),
    m(
        "stoker_agent_git_fetch_total",
        "counter",
        &["operation", "result"],
    ),
    m("stoker_agent_scan_duration_seconds", "histogram", &[]),
    m("stoker_agent_scan_total", "counter", &["result"]),
    m("stoker_agent_designer_sessions_blocked", "gauge", &[]),
    m("stoker_agent_designer_sessions_active", "gauge", &[]),
    m("stoker_agent_last_sync_timestamp_seconds", "gauge", &[]),
    m("stoker_agent_last_sync_success", "gauge", &[]),
    m("stoker_agent_sync_skipped_total", "counter", &["reason"]),
    m(
        "stoker_agent_gateway_startup_duration_seconds",
        "histogram",
        &[],
    ),
    m(
        "stoker_agent_sync_errors_total",
        "counter",
        &["profile", "reason"],
    ),
    m(
        "stoker_agent_file_changes_total",
        "counter",
        &["profile", "operation"],
    ),
];

/// Whether a name found in a PromQL expression is one of `exported` (a histogram's `_bucket`,
/// `_sum` and `_count` count as the histogram).
pub fn is_exported(exported: &[Exported], name: &str) -> bool {
    exported.iter().any(|metric| {
        metric.name == name
            || (metric.kind == "histogram"
                && ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|suffix| name.strip_suffix(suffix) == Some(metric.name)))
    })
}

/// A family found in a scrape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scraped {
    /// `counter`, `gauge`, `histogram`, … from its `# TYPE` line.
    pub kind: String,
    /// The label keys of each series, one set per distinct key set (normally one).
    pub label_sets: BTreeSet<BTreeSet<String>>,
}

/// The families of a text exposition (Prometheus 0.0.4 or OpenMetrics), by PromQL name.
pub fn parse(text: &str) -> BTreeMap<String, Scraped> {
    let mut families: BTreeMap<String, Scraped> = BTreeMap::new();
    // The family's name in the TYPE line, and its PromQL name.
    let mut declared: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(family), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            let promql = if kind == "counter" && !family.ends_with("_total") {
                format!("{family}_total")
            } else {
                family.to_owned()
            };
            families.entry(promql.clone()).or_default().kind = kind.to_owned();
            declared.push((family.to_owned(), promql));
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let series = line.split_whitespace().next().unwrap_or_default();
        let (sample, labels) = match series.split_once('{') {
            Some((sample, rest)) => (sample, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        // The longest declared family the sample belongs to.
        let Some((_, promql)) = declared
            .iter()
            .filter(|(family, _)| {
                sample == family
                    || ["_total", "_bucket", "_sum", "_count", "_created"]
                        .iter()
                        .any(|suffix| sample.strip_suffix(suffix) == Some(family.as_str()))
            })
            .max_by_key(|(family, _)| family.len())
        else {
            continue;
        };
        let keys: BTreeSet<String> = label_keys(labels)
            .into_iter()
            .filter(|key| key != "le")
            .collect();
        if let Some(scraped) = families.get_mut(promql) {
            scraped.label_sets.insert(keys);
        }
    }
    families
}

/// The keys of `k1="v1",k2="v2"` (values may hold escaped quotes and commas).
fn label_keys(labels: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut rest = labels;
    while let Some((key, after)) = rest.split_once("=\"") {
        keys.push(key.trim_start_matches(',').trim().to_owned());
        // Skip the value up to its closing, unescaped quote.
        let mut escaped = false;
        let mut end = after.len();
        for (i, c) in after.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = i;
                    break;
                }
                _ => escaped = false,
            }
        }
        rest = after.get(end + 1..).unwrap_or_default();
    }
    keys
}

/// Compares a scrape with `expected`, both ways: every family listed is served with its
/// type, every family served (with the `prefix`) is listed, and every series of a listed
/// family has exactly its label keys. `without_series` names families the scenario cannot
/// give a series (not served then, or served without samples; their labels are checked by the
/// unit tests that record every metric). Returns every difference.
pub fn compare(
    scraped: &BTreeMap<String, Scraped>,
    expected: &[Exported],
    prefix: &str,
    without_series: &[&str],
) -> Vec<String> {
    let mut problems = Vec::new();
    for metric in expected {
        let Some(found) = scraped.get(metric.name) else {
            // A family without series is not served at all (like Go's client, prometheus-client
            // writes nothing for it).
            if !without_series.contains(&metric.name) {
                problems.push(format!("{} is not served", metric.name));
            }
            continue;
        };
        if found.kind != metric.kind {
            problems.push(format!(
                "{} is a {}, expected a {}",
                metric.name, found.kind, metric.kind
            ));
        }
        let want: BTreeSet<String> = metric.labels.iter().map(|l| (*l).to_owned()).collect();
        if found.label_sets.is_empty() && !without_series.contains(&metric.name) {
            problems.push(format!("{} has no series", metric.name));
        }
        for keys in &found.label_sets {
            if *keys != want {
                problems.push(format!(
                    "{} has labels {keys:?}, expected {want:?}",
                    metric.name
                ));
            }
        }
    }
    for name in scraped.keys() {
        if name.starts_with(prefix) && !expected.iter().any(|metric| metric.name == name) {
            problems.push(format!("{name} is served but not listed"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_families_types_and_label_keys() {
        let text = "# HELP a_b Some.\n# TYPE a_b counter\na_b_total{x=\"1\",y=\"a\\\"b,c=\\\"\"} 2\n\
            # TYPE h histogram\nh_bucket{p=\"x\",le=\"0.1\"} 0\nh_sum{p=\"x\"} 0\nh_count{p=\"x\"} 0\n\
            # TYPE g gauge\ng 1\n# EOF\n";
        let families = parse(text);
        assert_eq!(families["a_b_total"].kind, "counter");
        assert_eq!(
            families["a_b_total"].label_sets,
            BTreeSet::from([BTreeSet::from(["x".to_owned(), "y".to_owned()])])
        );
        assert_eq!(
            families["h"].label_sets,
            BTreeSet::from([BTreeSet::from(["p".to_owned()])])
        );
        assert_eq!(families["g"].label_sets, BTreeSet::from([BTreeSet::new()]));
        let expected = [m("a_b_total", "counter", &["x", "y"]), m("g", "gauge", &[])];
        assert_eq!(
            compare(&families, &expected, "", &[]),
            vec!["h is served but not listed".to_owned()]
        );
        assert!(is_exported(&[m("h", "histogram", &[])], "h_bucket"));
        assert!(!is_exported(&[m("g", "gauge", &[])], "g_bucket"));
    }
}
