//! The controller survives an API-server restart and converges afterwards. In its own test
//! binary, not in `tests/it`: the testkit starts one API server per test binary, and the
//! restart would take it away from every test sharing the binary.
#![allow(clippy::unwrap_used)]

#[path = "it/controller_support/mod.rs"]
mod controller_support;

use std::time::{Duration, Instant};

use controller_support::{World, spec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_survives_an_api_server_restart_and_converges() {
    let world = World::start("restart").await;
    let first = world.repo.rev_parse("main").unwrap();
    world.create_gs("site", spec("main")).await;
    // Without polling, only the watches bring changes in.
    let mut quiet = spec("main");
    quiet["polling"] = serde_json::json!({"enabled": false});
    world.create_gs("quiet", quiet.clone()).await;
    world
        .wait_gs("quiet", "the first commit resolves", |gs| {
            gs.status
                .as_ref()
                .and_then(|s| s.last_sync_commit.as_deref())
                == Some(first.as_str())
        })
        .await;
    world
        .wait_gs("site", "the first commit resolves", |gs| {
            gs.status
                .as_ref()
                .and_then(|s| s.last_sync_commit.as_deref())
                == Some(first.as_str())
        })
        .await;
    if !world.cluster.is_owned() {
        panic!(
            "this test restarts the API server, so it needs the one the testkit starts: unset STOKER_TEST_KUBECONFIG"
        );
    }

    world.cluster.stop_apiserver().await.unwrap();
    // While it is down, the ref moves.
    let second = world
        .repo
        .commit("main", &[("projects/demo/b.json", b"{}")], "second")
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    world.cluster.start_apiserver().await.unwrap();

    world
        .wait_gs("site", "the new commit after the restart", |gs| {
            gs.status
                .as_ref()
                .and_then(|s| s.last_sync_commit.as_deref())
                == Some(second.as_str())
        })
        .await;
    // And it still reacts to changes made after the restart.
    world.create_pod("gw-0", "site", &[], &[], true).await;
    world
        .wait_gs("site", "the new pod is discovered", |gs| {
            gs.status
                .as_ref()
                .is_some_and(|s| s.discovered_gateways.len() == 1)
        })
        .await;

    // Regression: through the watches, promptly. kube-runtime's default pause after a watch
    // error (up to 30 s, shared by all the controller's watches) turned the errors of a restart
    // into 110 s in which the controller noticed nothing: a new resource or pod was only seen by
    // polling.
    let restarted = Instant::now();
    world.create_gs("late", quiet).await;
    world.create_pod("quiet-0", "quiet", &[], &[], true).await;
    let api = world.gs_api();
    let (mut late, mut discovered) = (None, None);
    while restarted.elapsed() < Duration::from_secs(30) && (late.is_none() || discovered.is_none())
    {
        let status = |gs: stoker_k8s::GatewaySync| gs.status.unwrap_or_default();
        if late.is_none()
            && status(api.get("late").await.unwrap())
                .last_sync_commit
                .is_some()
        {
            late = Some(restarted.elapsed());
        }
        if discovered.is_none()
            && status(api.get("quiet").await.unwrap())
                .discovered_gateways
                .len()
                == 1
        {
            discovered = Some(restarted.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        late.is_some() && discovered.is_some(),
        "30 s after the restart, without polling: a new resource reconciled after {late:?}, a \
         new pod discovered after {discovered:?}"
    );
}
