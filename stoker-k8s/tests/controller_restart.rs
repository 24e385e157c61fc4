//! The controller survives an API-server restart and converges afterwards. In its own test
//! binary: the restart takes the API server away from every test sharing the binary.
#![allow(clippy::unwrap_used)]

mod controller_support;

use std::time::Duration;

use controller_support::{World, spec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_survives_an_api_server_restart_and_converges() {
    let world = World::start("restart").await;
    let first = world.repo.rev_parse("main").unwrap();
    world.create_gs("site", spec("main")).await;
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
}
