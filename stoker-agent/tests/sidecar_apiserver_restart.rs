//! `stoker-agent sidecar` across a kube-apiserver restart (its own test binary: it restarts
//! the API server this binary started). The agent keeps its files and its gateway while the API
//! server is away, its watches reconnect, and a commit pushed afterwards converges.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is the right failure

#[path = "it/sidecar_support/mod.rs"]
mod sidecar_support;

use std::time::Duration;

use serde_json::json;
use sidecar_support::World;
use stoker_k8s::crd::SyncStatus;

const CR: &str = "site";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_survives_an_api_server_restart() {
    let mut world = World::new("sidecar-restart").await;
    assert!(
        world.cluster.is_owned(),
        "this test restarts its own API server"
    );
    let c1 = world.commit(&[("projects/demo/project.json", "v1")], "first");
    world.create_api_secret("gw-api").await;
    world
        .create_gatewaysync(
            CR,
            json!({
                "git": {"repo": world.repo_url, "ref": "main"},
                "polling": {"interval": "2s"},
                "gateway": {"port": world.sim.addr().port(), "api": {"secretName": "gw-api"}},
                "sync": {"profiles": {"standard": {
                    "mappings": [{"source": "projects", "destination": "projects"}]}}},
            }),
        )
        .await;
    world.create_pod("ignition-0", CR, &[], &[]).await;
    let env = world.agent_env("ignition-0");
    let agent = world.start_agent("ignition-0", env);
    world
        .wait_status(CR, "ignition-0", "Synced at c1", |s| {
            s.status == SyncStatus::Synced && s.commit.as_deref() == Some(c1.as_str())
        })
        .await;

    world.cluster.stop_apiserver().await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    // While the API server is away the agent stays up, started and ready: the gateway keeps
    // its files and its agent.
    assert_eq!(world.agents[agent].probe("/healthz"), Some(200));
    assert_eq!(world.agents[agent].probe("/readyz"), Some(200));
    world.cluster.start_apiserver().await.unwrap();

    // A commit pushed after the restart converges (the operator's polling picks it up; the
    // agent's watch has reconnected).
    let c2 = world.commit(&[("projects/demo/project.json", "v2")], "second");
    world
        .wait_status(CR, "ignition-0", "Synced at c2 after the restart", |s| {
            s.status == SyncStatus::Synced && s.commit.as_deref() == Some(c2.as_str())
        })
        .await;
    assert_eq!(
        std::fs::read_to_string(world.data("ignition-0").join("projects/demo/project.json"))
            .unwrap(),
        "v2"
    );
    assert!(
        world.agents[agent].log().contains("watch"),
        "the agent logged its watch failing and reconnecting"
    );
}
