//! Keeps the serving certificate current, in one of two ways:
//!
//! - **Secret** (no cert-manager): the TLS Secret is the one source of truth that every replica
//!   reads. Each round a replica reads it, renews what [`certs::judge`] says is due (writing
//!   with the Secret's `resourceVersion`, so when two replicas race one wins and the other
//!   re-reads), makes both webhook configurations' `caBundle` equal to the Secret's bundle, and
//!   only then serves the Secret's certificate. Renewals therefore never present a certificate
//!   the API server cannot verify.
//! - **Files** (cert-manager mounts its Secret): re-reads `tls.crt` and `tls.key` each round;
//!   cert-manager's CA injector keeps the `caBundle`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use super::certs::{
    self, CA_CERT_KEY, CA_KEY_KEY, Lifetimes, Material, TLS_CERT_KEY, TLS_KEY_KEY, Verdict,
};
use super::tls::ServingCertificate;
use crate::error::{Error, Result};

/// Annotation on the TLS Secret: when the current authority was staged (RFC 3339).
pub const STAGED_AT_ANNOTATION: &str = "stoker.io/ca-staged-at";
/// Annotation on the TLS Secret saying what it is.
const SECRET_TYPE_ANNOTATION: &str = "stoker.io/secret-type";

/// Where the serving certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateSource {
    /// The operator's own authority, kept in a Secret.
    SelfSigned(SelfSigned),
    /// `tls.crt` and `tls.key` in a directory (a mounted cert-manager Secret).
    Files(PathBuf),
}

/// The self-signed set-up: which Secret, which names, which configurations to keep trusting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelfSigned {
    /// The TLS Secret's namespace (the operator's).
    pub namespace: String,
    /// The TLS Secret's name.
    pub secret: String,
    /// The names the serving certificate must carry (DNS names or IP addresses).
    pub names: BTreeSet<String>,
    /// The MutatingWebhookConfiguration whose `caBundle` is kept, if any.
    pub mutating_configuration: Option<String>,
    /// The ValidatingWebhookConfiguration whose `caBundle` is kept, if any.
    pub validating_configuration: Option<String>,
    /// Validity of new certificates.
    pub lifetimes: Lifetimes,
}

impl SelfSigned {
    /// The DNS names a Service `service` in `namespace` is called by
    /// (`svc`, `svc.ns`, `svc.ns.svc`, `svc.ns.svc.cluster.local`).
    pub fn service_names(service: &str, namespace: &str) -> BTreeSet<String> {
        [
            service.to_owned(),
            format!("{service}.{namespace}"),
            format!("{service}.{namespace}.svc"),
            format!("{service}.{namespace}.svc.cluster.local"),
        ]
        .into()
    }
}

/// Runs rounds until `shutdown`, each round followed by the wait it asks for (errors back off
/// from 1 s to a minute).
pub(crate) async fn keep(
    client: kube::Client,
    source: CertificateSource,
    serving: ServingCertificate,
    poll: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut keeper = Keeper {
        client,
        serving,
        poll,
        missing_warned: BTreeSet::new(),
    };
    let mut backoff = Duration::from_secs(1);
    loop {
        let round = match &source {
            CertificateSource::SelfSigned(setup) => keeper.secret_round(setup).await,
            CertificateSource::Files(dir) => keeper.files_round(dir).await,
        };
        let wait = match round {
            Ok(wait) => {
                backoff = Duration::from_secs(1);
                wait
            }
            Err(error) => {
                tracing::warn!(error = %stoker_core::error::chain(&error), retry_in_s = backoff.as_secs(), "webhook certificate");
                let wait = backoff;
                backoff = (backoff * 2).min(Duration::from_secs(60));
                wait
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

struct Keeper {
    client: kube::Client,
    serving: ServingCertificate,
    poll: Duration,
    /// Configurations already reported missing (reported once, not every round).
    missing_warned: BTreeSet<String>,
}

/// After writing the Secret, look again at once (through the API server, so that a replica
/// that lost a race reads the winner's material).
const AGAIN: Duration = Duration::from_millis(200);

impl Keeper {
    async fn files_round(&mut self, dir: &std::path::Path) -> Result<Duration> {
        let cert = read_text(dir.join(TLS_CERT_KEY)).await?;
        let key = read_text(dir.join(TLS_KEY_KEY)).await?;
        if self.serving.load(&cert, &key)? {
            tracing::info!(dir = %dir.display(), "serving the webhook certificate from files");
        }
        Ok(self.poll)
    }

    async fn secret_round(&mut self, setup: &SelfSigned) -> Result<Duration> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &setup.namespace);
        let secret = api
            .get_opt(&setup.secret)
            .await
            .map_err(|source| Error::kube("reading Secret", &setup.secret, source))?;
        let material = secret.as_ref().and_then(material_of);
        let staged_at = secret.as_ref().and_then(staged_at_of);
        let now = SystemTime::now();
        let verdict = certs::judge(
            material.as_ref(),
            &setup.names,
            now,
            staged_at,
            &setup.lifetimes,
        );
        let (renewed, staged) = match verdict {
            Verdict::Fresh { recheck } => {
                let material = material.ok_or_else(|| Error::Certificate {
                    message: "judged fresh without material".to_owned(),
                })?;
                self.publish(setup, &material).await?;
                let until = recheck.duration_since(now).unwrap_or_default();
                return Ok(until.clamp(Duration::from_secs(1), self.poll));
            }
            Verdict::NewAuthority(why) => {
                tracing::info!(secret = %setup.secret, reason = %why, "making a new webhook certificate authority");
                let fresh_install = material.is_none();
                let staged =
                    certs::stage_authority(material.as_ref(), &setup.names, now, &setup.lifetimes)?;
                (staged, (!fresh_install).then_some(now))
            }
            Verdict::NewServing(why) => {
                tracing::info!(secret = %setup.secret, reason = %why, "signing a new webhook serving certificate");
                let mut material = material.ok_or_else(|| Error::Certificate {
                    message: "a serving renewal without material".to_owned(),
                })?;
                certs::sign_serving(&mut material, &setup.names, now, &setup.lifetimes)?;
                (material, None)
            }
        };
        self.write(&api, setup, secret, &renewed, staged).await?;
        Ok(AGAIN)
    }

    /// Creates or replaces the Secret; losing a race to another replica is not an error (the
    /// next round reads what it wrote).
    async fn write(
        &self,
        api: &Api<Secret>,
        setup: &SelfSigned,
        existing: Option<Secret>,
        material: &Material,
        staged_at: Option<SystemTime>,
    ) -> Result<()> {
        let secret = secret_of(setup, existing.as_ref(), material, staged_at);
        let result = match existing {
            Some(_) => {
                api.replace(&setup.secret, &PostParams::default(), &secret)
                    .await
            }
            None => api.create(&PostParams::default(), &secret).await,
        };
        match result {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                tracing::debug!(secret = %setup.secret, "another replica wrote the webhook Secret first");
                Ok(())
            }
            Err(source) => Err(Error::kube("writing Secret", &setup.secret, source)),
        }
    }

    /// Makes the configurations trust the bundle, then serves the certificate.
    async fn publish(&mut self, setup: &SelfSigned, material: &Material) -> Result<()> {
        let bundle = material.ca_bundle.as_bytes();
        if let Some(name) = &setup.mutating_configuration {
            let api: Api<MutatingWebhookConfiguration> = Api::all(self.client.clone());
            self.trust(&api, name, bundle).await?;
        }
        if let Some(name) = &setup.validating_configuration {
            let api: Api<ValidatingWebhookConfiguration> = Api::all(self.client.clone());
            self.trust(&api, name, bundle).await?;
        }
        if self.serving.load(&material.cert, &material.key)? {
            tracing::info!(
                secret = %setup.secret,
                issuer = certs::serving_issuer(material).unwrap_or_default(),
                expires = ?certs::serving_not_after(material).map(jiff_time),
                "serving a new webhook certificate"
            );
        }
        Ok(())
    }

    /// Sets `caBundle` of every webhook of configuration `name` to `bundle` where it differs.
    async fn trust<K>(&mut self, api: &Api<K>, name: &str, bundle: &[u8]) -> Result<()>
    where
        K: kube::Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
    {
        let Some(configuration) = api
            .get_opt(name)
            .await
            .map_err(|source| Error::kube("reading webhook configuration", name, source))?
        else {
            if self.missing_warned.insert(name.to_owned()) {
                tracing::warn!(configuration = %name, "webhook configuration not found; its caBundle cannot be kept (create it, e.g. with the chart)");
            }
            return Ok(());
        };
        self.missing_warned.remove(name);
        let value = serde_json::to_value(&configuration).map_err(|source| Error::Serialize {
            what: "a webhook configuration",
            source,
        })?;
        let Some(patch) = bundle_patch(&value, bundle) else {
            return Ok(());
        };
        api.patch(name, &PatchParams::default(), &Patch::<()>::Json(patch))
            .await
            .map_err(|source| Error::kube("setting caBundle of", name, source))?;
        tracing::info!(configuration = %name, "webhook configuration now trusts the operator's certificate authority");
        Ok(())
    }
}

/// A JSON patch setting `clientConfig.caBundle` of each webhook whose bundle differs, each
/// guarded by a test of the webhook's name (so a concurrent edit that reorders the list makes
/// the patch fail instead of touching the wrong webhook). None when nothing differs.
pub(crate) fn bundle_patch(
    configuration: &serde_json::Value,
    bundle: &[u8],
) -> Option<json_patch::Patch> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bundle);
    let webhooks = configuration.get("webhooks")?.as_array()?;
    let mut operations = Vec::new();
    for (index, webhook) in webhooks.iter().enumerate() {
        let current = webhook
            .pointer("/clientConfig/caBundle")
            .and_then(|v| v.as_str());
        if current == Some(encoded.as_str()) {
            continue;
        }
        let name = webhook.get("name").cloned().unwrap_or_default();
        operations.push(serde_json::json!({"op": "test", "path": format!("/webhooks/{index}/name"), "value": name}));
        operations.push(serde_json::json!({"op": "add", "path": format!("/webhooks/{index}/clientConfig/caBundle"), "value": encoded}));
    }
    if operations.is_empty() {
        return None;
    }
    serde_json::from_value(serde_json::Value::Array(operations)).ok()
}

async fn read_text(path: PathBuf) -> Result<String> {
    tokio::fs::read_to_string(&path)
        .await
        .map_err(|source| Error::io(path, source))
}

fn material_of(secret: &Secret) -> Option<Material> {
    let data = secret.data.as_ref()?;
    let text = |key: &str| {
        data.get(key)
            .and_then(|bytes| String::from_utf8(bytes.0.clone()).ok())
    };
    Some(Material {
        ca_bundle: text(CA_CERT_KEY)?,
        ca_key: text(CA_KEY_KEY)?,
        cert: text(TLS_CERT_KEY)?,
        key: text(TLS_KEY_KEY)?,
    })
}

fn staged_at_of(secret: &Secret) -> Option<SystemTime> {
    let text = secret
        .metadata
        .annotations
        .as_ref()?
        .get(STAGED_AT_ANNOTATION)?;
    let at: jiff::Timestamp = text.parse().ok()?;
    Some(SystemTime::from(at))
}

fn jiff_time(at: SystemTime) -> String {
    jiff::Timestamp::try_from(at)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// The Secret to write: the existing one's metadata (so `resourceVersion` guards the write)
/// with the new material.
fn secret_of(
    setup: &SelfSigned,
    existing: Option<&Secret>,
    material: &Material,
    staged_at: Option<SystemTime>,
) -> Secret {
    let mut metadata = existing
        .map(|s| s.metadata.clone())
        .unwrap_or_else(|| ObjectMeta {
            name: Some(setup.secret.clone()),
            namespace: Some(setup.namespace.clone()),
            ..ObjectMeta::default()
        });
    let annotations = metadata.annotations.get_or_insert_with(BTreeMap::new);
    annotations.insert(SECRET_TYPE_ANNOTATION.to_owned(), "webhook-tls".to_owned());
    match staged_at {
        Some(at) => annotations.insert(STAGED_AT_ANNOTATION.to_owned(), jiff_time(at)),
        None => annotations.remove(STAGED_AT_ANNOTATION),
    };
    metadata.labels.get_or_insert_with(BTreeMap::new).insert(
        "app.kubernetes.io/managed-by".to_owned(),
        "stoker-operator".to_owned(),
    );
    let bytes = |text: &str| ByteString(text.as_bytes().to_vec());
    Secret {
        metadata,
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([
            (CA_CERT_KEY.to_owned(), bytes(&material.ca_bundle)),
            (CA_KEY_KEY.to_owned(), bytes(&material.ca_key)),
            (TLS_CERT_KEY.to_owned(), bytes(&material.cert)),
            (TLS_KEY_KEY.to_owned(), bytes(&material.key)),
        ])),
        ..Secret::default()
    }
}
