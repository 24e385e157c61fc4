//! The test API server is real: namespaces, objects through the kube client and kubectl, data
//! surviving an API server restart, RBAC refusing a service account without a binding.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use stoker_testkit::kube_api::{Cluster, ENV_KUBECONFIG, cluster};
use stoker_testkit::process::{is_listening, wait_closed};
use tokio::sync::RwLock;

/// The restart test takes this for writing, every other test for reading: no test of this
/// binary sees the API server go away under it.
static APISERVER: RwLock<()> = RwLock::const_new(());

fn config_map(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..ConfigMap::default()
    }
}

fn kubectl_ok(c: &Cluster, args: &[&str]) -> String {
    let out = c.kubectl(args).unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn namespaces_are_fresh_and_unique() {
    let _up = APISERVER.read().await;
    let c = cluster().unwrap();
    let a = c.namespace("Fresh_NS").await.unwrap();
    let b = c.namespace("Fresh_NS").await.unwrap();
    assert_ne!(a, b);
    assert!(a.starts_with("fresh-ns-"), "{a}");
    let listed = kubectl_ok(c, &["get", "namespace", &a, "-o", "name"]);
    assert_eq!(listed, format!("namespace/{a}"));
}

/// One test for everything that touches the API server process, so that the restart does not
/// race the other tests of this binary.
#[tokio::test(flavor = "multi_thread")]
async fn configmap_via_client_and_kubectl_survives_apiserver_restart() {
    let _exclusive = APISERVER.write().await;
    let c = cluster().unwrap();
    let ns = c.namespace("configmap").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(c.client().unwrap(), &ns);
    api.create(
        &PostParams::default(),
        &config_map("greeting", &[("hello", "world")]),
    )
    .await
    .unwrap();
    let got = api.get("greeting").await.unwrap();
    assert_eq!(got.data.unwrap()["hello"], "world");

    assert_eq!(
        kubectl_ok(c, &["get", "configmap", "-n", &ns, "-o", "name"]),
        "configmap/greeting"
    );
    assert_eq!(
        kubectl_ok(
            c,
            &[
                "get",
                "configmap",
                "greeting",
                "-n",
                &ns,
                "-o",
                "jsonpath={.data.hello}"
            ]
        ),
        "world"
    );

    if !c.is_owned() {
        // STOKER_TEST_KUBECONFIG names a server this process does not own.
        assert!(c.restart_apiserver().await.is_err());
        return;
    }
    c.stop_apiserver().await.unwrap();
    let err = api.get("greeting").await.unwrap_err();
    assert!(
        !matches!(err, kube::Error::Api(_)),
        "a stopped API server answered: {err}"
    );
    c.start_apiserver().await.unwrap();
    // The same client reconnects; etcd kept the data.
    let got = api.get("greeting").await.unwrap();
    assert_eq!(got.data.unwrap()["hello"], "world");

    c.restart_apiserver().await.unwrap();
    let again: Api<ConfigMap> = Api::namespaced(c.client().unwrap(), &ns);
    assert_eq!(
        again.get("greeting").await.unwrap().data.unwrap()["hello"],
        "world"
    );
    assert_eq!(
        kubectl_ok(c, &["get", "configmap", "-n", &ns, "-o", "name"]),
        "configmap/greeting"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rbac_refuses_a_service_account_without_a_binding() {
    let _up = APISERVER.read().await;
    let c = cluster().unwrap();
    let ns = c.namespace("rbac").await.unwrap();
    let admin = c.client().unwrap();
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), &ns);
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some("nobody".to_owned()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    sas.create(&PostParams::default(), &sa).await.unwrap();
    let token = stoker_testkit::kube_api::service_account_token(&admin, &ns, "nobody", 600)
        .await
        .unwrap();

    let nobody: Api<ConfigMap> = Api::namespaced(c.client_with_token(&token).unwrap(), &ns);
    match nobody.list(&Default::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("expected 403 Forbidden, got {other:?}"),
    }
    // The admin may; and an unknown token is not even authenticated.
    let admins: Api<ConfigMap> = Api::namespaced(admin, &ns);
    admins.list(&Default::default()).await.unwrap();
    let stranger: Api<ConfigMap> =
        Api::namespaced(c.client_with_token("not-a-token").unwrap(), &ns);
    match stranger.list(&Default::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 401, "{status:?}"),
        other => panic!("expected 401 Unauthorized, got {other:?}"),
    }
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push(cmdline);
            }
        }
    }
    found
}

/// `stoker-kube` holds etcd and kube-apiserver the way a test binary's static does; when it is
/// SIGKILLed, both go down and the temporary directory is removed.
#[test]
fn apiserver_and_etcd_die_with_the_process_that_started_them() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stoker-kube"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut kubeconfig = None;
    for line in BufReader::new(stdout).lines().take(2) {
        let line = line.unwrap();
        let (name, value) = line.trim_start_matches("export ").split_once('=').unwrap();
        if name == ENV_KUBECONFIG {
            kubeconfig = Some(PathBuf::from(value.trim_matches('\'')));
        }
    }
    let kubeconfig = kubeconfig.expect("stoker-kube printed no kubeconfig");
    let dir = kubeconfig.parent().unwrap().to_owned();
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    let server = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: https://"))
        .unwrap();
    let addr = server.parse().unwrap();
    assert!(is_listening(addr), "{addr} not listening");
    let needle = dir.display().to_string();
    assert_eq!(
        processes_mentioning(&needle)
            .iter()
            .filter(|c| c.contains("etcd") || c.contains("kube-apiserver"))
            .count(),
        // etcd and kube-apiserver, each also in its reap-on-eof wrapper's command line.
        4,
        "{:?}",
        processes_mentioning(&needle)
    );

    // SIGKILL: no chance to clean up; the reap-on-eof wrappers do it.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        wait_closed(addr, Duration::from_secs(20)),
        "{addr} still open after its parent died"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while (Path::new(&dir).exists() || !processes_mentioning(&needle).is_empty())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(processes_mentioning(&needle), Vec::<String>::new());
    assert!(!dir.exists(), "{} left behind", dir.display());
}
