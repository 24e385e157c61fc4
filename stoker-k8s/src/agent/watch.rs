//! The two watches the sidecar keeps open (kube-runtime watchers, with their own backoff):
//! the metadata ConfigMap `stoker-metadata-{cr}` and the agent's own pod. Each publishes what
//! it last saw into the shared [`Inputs`]; the loop wakes only when something it plans from
//! changed (a pod's status churn does not wake it).

use crate::discovery::gateway_pod;
use crate::metadata::{AgentMetadata, metadata_configmap_name};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch_stream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::AgentConfig;
use super::plan::{Inputs, Observed};

/// Starts both watches; they run until the returned tasks are aborted.
pub fn spawn(
    client: kube::Client,
    config: &AgentConfig,
    inputs: watch::Sender<Inputs>,
) -> Vec<JoinHandle<()>> {
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &config.cr_namespace);
    let pods: Api<Pod> = Api::namespaced(client, &config.pod_namespace);
    let metadata_name = metadata_configmap_name(&config.cr_name);
    let metadata_inputs = inputs.clone();
    let metadata = tokio::spawn(follow(
        configmaps,
        metadata_name,
        move |configmap: Option<ConfigMap>| {
            let (observed, owner_uid) = match configmap {
                None => (Observed::Missing, None),
                Some(configmap) => {
                    let owner_uid = configmap
                        .metadata
                        .owner_references
                        .iter()
                        .flatten()
                        .find(|owner| owner.kind == crate::crd::KIND)
                        .map(|owner| owner.uid.clone());
                    let observed = match AgentMetadata::from_configmap(&configmap) {
                        Ok(metadata) => Observed::Present(metadata),
                        Err(error) => Observed::Invalid(error.to_string()),
                    };
                    (observed, owner_uid)
                }
            };
            metadata_inputs.send_if_modified(|inputs| {
                let changed = inputs.metadata != observed || inputs.owner_uid != owner_uid;
                inputs.metadata = observed;
                inputs.owner_uid = owner_uid;
                changed
            });
        },
    ));
    let pod = tokio::spawn(follow(
        pods,
        config.pod_name.clone(),
        move |pod: Option<Pod>| {
            let observed = match pod {
                None => Observed::Missing,
                Some(pod) => Observed::Present(gateway_pod(&pod)),
            };
            inputs.send_if_modified(|inputs| {
                let changed = inputs.pod != observed;
                inputs.pod = observed;
                changed
            });
        },
    ));
    vec![metadata, pod]
}

/// Watches the one object `name` in `api` and calls `publish` with it (or `None` when it does
/// not exist) after the initial list and after every change. Errors are logged; the watcher
/// reconnects with backoff.
async fn follow<K>(api: Api<K>, name: String, mut publish: impl FnMut(Option<K>))
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
    K::DynamicType: Default,
{
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = std::pin::pin!(watch_stream(api, config).default_backoff());
    let mut listed: Option<K> = None;
    let mut failing = false;
    while let Some(event) = stream.next().await {
        match event {
            Ok(event) => {
                if failing {
                    tracing::info!(%kind, %name, "watch reconnected");
                    failing = false;
                }
                match event {
                    Event::Init => listed = None,
                    Event::InitApply(object) => listed = Some(object),
                    Event::InitDone => publish(listed.take()),
                    Event::Apply(object) => publish(Some(object)),
                    Event::Delete(_) => publish(None),
                }
            }
            Err(error) => {
                // The first failure of a streak at warn, the rest at debug: the backoff
                // retries for as long as it takes.
                if failing {
                    tracing::debug!(%kind, %name, %error, "watch still failing");
                } else {
                    tracing::warn!(%kind, %name, %error, "watch failed; retrying with backoff");
                    failing = true;
                }
            }
        }
    }
}
