//! A real Kubernetes API server for tests: etcd + `kube-apiserver` on loopback (envtest-style:
//! no kubelet, no controller-manager, no scheduler).
//!
//! [`cluster()`] starts one API server per test binary on first use, from the binaries that
//! `hack/kube.sh install` builds and caches (found through `STOKER_KUBE_BIN_DIR`, else
//! `hack/kube.sh bin-dir`). Tests share it and isolate themselves with a fresh namespace each:
//!
//! ```no_run
//! # async fn demo() -> stoker_testkit::Result<()> {
//! use stoker_testkit::kube_api::cluster;
//! let c = cluster()?;
//! let ns = c.namespace("my-test").await?; // "my-test-PID-N", created
//! let client = c.client()?;                // kube::Client, admin (system:masters)
//! let out = c.kubectl(["get", "configmaps", "-n", &ns, "-o", "name"])?;
//! c.restart_apiserver().await?;            // same port, same etcd: data survives
//! # Ok(()) }
//! ```
//!
//! What the API server runs with: `--authorization-mode=RBAC`; TLS with a throw-away CA
//! (`certificate-authority-data` in the kubeconfig); an admin bearer token (static token file,
//! user `stoker-test-admin` in group `system:masters`); a service-account signing key, so the
//! `TokenRequest` API works and service-account tokens authenticate (and are subject to RBAC);
//! the `ServiceAccount` admission plugin off, as in envtest, since no controller creates the
//! `default` service accounts. Nothing deletes namespaces (there is no namespace controller):
//! the whole cluster is thrown away with the test binary.
//!
//! # Reusing an API server started by a script
//!
//! When `STOKER_TEST_KUBECONFIG` is set (`hack/kube.sh start` prints it), [`cluster()`] starts
//! nothing and talks to that API server as the kubeconfig's current context says.
//! [`Cluster::restart_apiserver`] is then refused: the process is not ours.
//!
//! # Process lifetime
//!
//! etcd and `kube-apiserver` run under `hack/lib/reap-on-eof.sh` (see [`crate::process`]): they
//! die with the test binary however it exits, and their temporary directory is removed.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ObjectMeta, PostParams};

use crate::process::{ExitTempDir, Reaped, free_port, loopback, run, wait_closed};
use crate::{Error, Result};

/// Env var: a kubeconfig of a running API server to use instead of starting one.
pub const ENV_KUBECONFIG: &str = "STOKER_TEST_KUBECONFIG";
/// Env var: the directory holding `etcd`, `kube-apiserver` and `kubectl`
/// (`hack/kube.sh install --print-bin-dir`).
pub const ENV_BIN_DIR: &str = "STOKER_KUBE_BIN_DIR";
/// The admin user's bearer token in clusters this crate starts (only ever valid on loopback).
pub const ADMIN_TOKEN: &str = "stoker-test-admin-token";
/// The admin user's name (in group `system:masters`).
pub const ADMIN_USER: &str = "stoker-test-admin";
/// How long the API server gets to report `/readyz` ok.
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// The shared API server of this test binary, started on first use (or the one named by
/// `STOKER_TEST_KUBECONFIG`).
///
/// Fails — every time, with the same message — when it cannot be started, e.g. when the
/// binaries have not been built: "… run `hack/kube.sh install`". Tests should propagate the
/// error (`cluster()?` or `.expect(…)`), never skip.
pub fn cluster() -> Result<&'static Cluster> {
    static CLUSTER: OnceLock<std::result::Result<Cluster, String>> = OnceLock::new();
    CLUSTER
        .get_or_init(|| {
            let cluster = match std::env::var_os(ENV_KUBECONFIG) {
                Some(path) => KubeBinaries::locate()
                    .and_then(|bins| Cluster::from_kubeconfig(Path::new(&path), bins)),
                None => KubeBinaries::locate().and_then(|bins| Cluster::start(None, bins)),
            };
            cluster.map_err(|e| format!("cannot get the test Kubernetes API server: {e}"))
        })
        .as_ref()
        .map_err(|e| Error::Invalid(e.clone()))
}

/// Installs aws-lc-rs as rustls' process-wide crypto provider, unless one is installed already
/// (feature unification can enable both ring and aws-lc-rs, and then rustls refuses to pick).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The cached `etcd`, `kube-apiserver` and `kubectl` built by `hack/kube.sh install`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeBinaries {
    dir: PathBuf,
}

impl KubeBinaries {
    /// The binaries in `$STOKER_KUBE_BIN_DIR`, else in the directory `hack/kube.sh bin-dir`
    /// prints. Never builds anything: when they are missing, the error says to run
    /// `hack/kube.sh install` (a cold build takes tens of minutes, too long to hide in a test).
    pub fn locate() -> Result<Self> {
        if let Some(dir) = std::env::var_os(ENV_BIN_DIR) {
            return Self::in_dir(Path::new(&dir));
        }
        let script = hack_kube_sh();
        let output = Command::new("bash")
            .arg(&script)
            .arg("bin-dir")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::io(format!("run bash {}", script.display()), e))?;
        if !output.status.success() {
            return Err(Error::KubeBinaries {
                dir: None,
                detail: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        let dir = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        Self::in_dir(Path::new(&dir))
    }

    /// The binaries in `dir`; an error naming the first one missing.
    pub fn in_dir(dir: &Path) -> Result<Self> {
        let bins = Self {
            dir: dir.to_owned(),
        };
        for path in [bins.etcd(), bins.kube_apiserver(), bins.kubectl()] {
            if !path.is_file() {
                return Err(Error::KubeBinaries {
                    dir: Some(dir.to_owned()),
                    detail: format!("{} is missing", path.display()),
                });
            }
        }
        Ok(bins)
    }

    /// The directory holding the binaries.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `etcd`.
    pub fn etcd(&self) -> PathBuf {
        self.dir.join("etcd")
    }

    /// `kube-apiserver`.
    pub fn kube_apiserver(&self) -> PathBuf {
        self.dir.join("kube-apiserver")
    }

    /// `kubectl`.
    pub fn kubectl(&self) -> PathBuf {
        self.dir.join("kubectl")
    }
}

/// `hack/kube.sh` in the checkout this crate was built from.
fn hack_kube_sh() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir.parent().unwrap_or(crate_dir).join("hack/kube.sh")
}

/// A Kubernetes API server to test against: one this crate started ([`Cluster::start`]), or
/// one described by a kubeconfig ([`Cluster::from_kubeconfig`]).
#[derive(Debug)]
pub struct Cluster {
    kubeconfig: PathBuf,
    server: String,
    bins: KubeBinaries,
    config: kube::Config,
    owned: Option<Owned>,
}

/// What this process started. Dropping it stops etcd and the API server (statics never drop;
/// then they die with the process).
#[derive(Debug)]
struct Owned {
    apiserver: Arc<ApiServer>,
    // Dropped after the API server (fields drop in order): stopping etcd first would make a
    // stopping API server log errors.
    _etcd: Reaped,
    _temp: Option<ExitTempDir>,
}

/// The `kube-apiserver` process and how to start it again.
#[derive(Debug)]
struct ApiServer {
    port: u16,
    program: PathBuf,
    args: Vec<OsString>,
    log_dir: PathBuf,
    kubectl: PathBuf,
    kubeconfig: PathBuf,
    starts: AtomicU64,
    process: Mutex<Option<Reaped>>,
}

impl Cluster {
    /// Starts etcd and `kube-apiserver` on free loopback ports, with certificates, keys, etcd's
    /// data, the kubeconfig and logs in `state` (created; kept; an earlier cluster's data there
    /// is discarded), or by default in a temporary directory removed when this process exits.
    /// Returns once `/readyz` is ok.
    pub fn start(state: Option<&Path>, bins: KubeBinaries) -> Result<Self> {
        install_crypto_provider();
        let temp = match state {
            Some(_) => None,
            None => Some(ExitTempDir::new("stoker-kube")?),
        };
        let dir = match (state, &temp) {
            (Some(state), _) => state.to_owned(),
            (None, Some(t)) => t.path().to_owned(),
            (None, None) => return Err(Error::Invalid("no state directory".into())),
        };
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| Error::io(format!("canonicalize {}", dir.display()), e))?;
        let pki = Pki::create(&dir.join("pki"))?;

        let (etcd, etcd_url) = start_etcd(&bins, &dir)?;
        let kubeconfig = dir.join("kubeconfig");
        let mut last_error = None;
        // The port was free a moment ago; another process may take it first: retry.
        for _ in 0..3 {
            let port = free_port()?;
            let server = format!("https://127.0.0.1:{port}");
            write_kubeconfig(&kubeconfig, &server, &pki.ca_cert, ADMIN_TOKEN)?;
            let apiserver = ApiServer {
                port,
                program: bins.kube_apiserver(),
                args: apiserver_args(port, &etcd_url, &pki),
                log_dir: dir.clone(),
                kubectl: bins.kubectl(),
                kubeconfig: kubeconfig.clone(),
                starts: AtomicU64::new(0),
                process: Mutex::new(None),
            };
            match apiserver.start() {
                Ok(()) => {
                    let config = load_config(&kubeconfig)?;
                    tracing::info!(%server, dir = %dir.display(), "test kube-apiserver ready");
                    return Ok(Self {
                        kubeconfig,
                        server,
                        bins,
                        config,
                        owned: Some(Owned {
                            apiserver: Arc::new(apiserver),
                            _etcd: etcd,
                            _temp: temp,
                        }),
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, port, "kube-apiserver did not start; retrying");
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| Error::Invalid("kube-apiserver did not start".into())))
    }

    /// An API server described by `kubeconfig` (its current context). Nothing is started;
    /// `bins` provides `kubectl`.
    pub fn from_kubeconfig(kubeconfig: &Path, bins: KubeBinaries) -> Result<Self> {
        install_crypto_provider();
        let config = load_config(kubeconfig)?;
        Ok(Self {
            kubeconfig: kubeconfig.to_owned(),
            server: config
                .cluster_url
                .to_string()
                .trim_end_matches('/')
                .to_owned(),
            bins,
            config,
            owned: None,
        })
    }

    /// The kubeconfig file (admin credentials; current context set).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The API server's URL, `https://127.0.0.1:PORT`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The binaries (`kubectl` is used by [`Cluster::kubectl`]).
    pub fn binaries(&self) -> &KubeBinaries {
        &self.bins
    }

    /// The client configuration of the kubeconfig (admin), to adjust before building a client
    /// (timeouts, another user's token in `auth_info`, …).
    pub fn config(&self) -> kube::Config {
        self.config.clone()
    }

    /// A new admin client. Must be called inside a Tokio runtime (the client spawns a task).
    pub fn client(&self) -> Result<kube::Client> {
        client_for(self.config())
    }

    /// A new client authenticating with a bearer `token` (e.g. a service account's, from the
    /// `TokenRequest` API) instead of the admin's.
    pub fn client_with_token(&self, token: &str) -> Result<kube::Client> {
        let mut config = self.config();
        config.auth_info = kube::config::AuthInfo {
            token: Some(token.to_owned().into()),
            ..kube::config::AuthInfo::default()
        };
        client_for(config)
    }

    /// Creates a namespace with a fresh name for one test: `PREFIX-PID-N` (the prefix made a
    /// valid DNS label: lowercased, other characters replaced by `-`, at most 40 of them).
    /// Returns its name. Namespaces are never deleted (no namespace controller runs).
    pub async fn namespace(&self, prefix: &str) -> Result<String> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let api: kube::Api<Namespace> = kube::Api::all(self.client()?);
        let prefix = dns_label_prefix(prefix);
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let name = format!("{prefix}-{}-{n}", std::process::id());
            let ns = Namespace {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    labels: Some([("stoker.io/test".to_owned(), "true".to_owned())].into()),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            };
            match api.create(&PostParams::default(), &ns).await {
                Ok(_) => return Ok(name),
                // Left over from an earlier process with the same id, on a shared API server.
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(e) => {
                    return Err(Error::kube(format!("create namespace {name}"), e));
                }
            }
        }
    }

    /// Applies a CustomResourceDefinition (server-side apply as `field_manager`) and waits up
    /// to `timeout` until the API server reports it `Established`, so objects of its kind can be
    /// created right after.
    pub async fn apply_crd(
        &self,
        crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        field_manager: &str,
        timeout: Duration,
    ) -> Result<()> {
        apply_crd(&self.client()?, crd, field_manager, timeout).await
    }

    /// `kubectl --kubeconfig KUBECONFIG ARGS...`, prepared (stdin null; the caller may change
    /// that, e.g. to pipe a manifest to `apply -f -`).
    pub fn kubectl_command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(self.bins.kubectl());
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `kubectl ARGS...` against this API server and returns its output, whatever its
    /// exit status (an error only if it could not be run).
    pub fn kubectl<I, S>(&self, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.kubectl_command(args);
        cmd.output()
            .map_err(|e| Error::io(format!("run {}", crate::process::describe(&cmd)), e))
    }

    /// Stops `kube-apiserver` (etcd keeps running) and waits until its port is closed.
    /// Clients see connection errors until [`Cluster::start_apiserver`].
    ///
    /// Only on a cluster this crate started; an error for one from `STOKER_TEST_KUBECONFIG`.
    pub async fn stop_apiserver(&self) -> Result<()> {
        let apiserver = self.owned_apiserver()?;
        blocking(move || apiserver.stop()).await
    }

    /// Starts `kube-apiserver` again on the same port with the same etcd, and waits for
    /// `/readyz`. Everything stored before is still there.
    pub async fn start_apiserver(&self) -> Result<()> {
        let apiserver = self.owned_apiserver()?;
        blocking(move || apiserver.start()).await
    }

    /// [`Cluster::stop_apiserver`] then [`Cluster::start_apiserver`]: for "the controller
    /// survives an API server restart" tests.
    pub async fn restart_apiserver(&self) -> Result<()> {
        let apiserver = self.owned_apiserver()?;
        blocking(move || {
            apiserver.stop()?;
            apiserver.start()
        })
        .await
    }

    /// Whether this process started the API server (so it can be stopped and restarted).
    pub fn is_owned(&self) -> bool {
        self.owned.is_some()
    }

    /// The `export …` lines that make other processes reuse this API server
    /// (`STOKER_TEST_KUBECONFIG`, `STOKER_KUBE_BIN_DIR`).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (ENV_KUBECONFIG, self.kubeconfig.display().to_string()),
            (ENV_BIN_DIR, self.bins.dir().display().to_string()),
        ]
    }

    fn owned_apiserver(&self) -> Result<Arc<ApiServer>> {
        match &self.owned {
            Some(owned) => Ok(Arc::clone(&owned.apiserver)),
            None => Err(Error::Invalid(format!(
                "the API server at {} was not started by this process ({ENV_KUBECONFIG} is \
                 set): it cannot be stopped or restarted from here",
                self.server
            ))),
        }
    }
}

/// Runs blocking work off the async executor when there is one.
async fn blocking<T, F>(work: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle
            .spawn_blocking(work)
            .await
            .map_err(|e| Error::Invalid(format!("blocking task failed: {e}")))?,
        Err(_) => work(),
    }
}

fn client_for(config: kube::Config) -> Result<kube::Client> {
    install_crypto_provider();
    kube::Client::try_from(config).map_err(|e| Error::kube("build a kube client", e))
}

/// Reads a kubeconfig into a client configuration. kube's loader is async; it runs on a
/// throw-away runtime on its own thread, so this works inside and outside a runtime.
fn load_config(path: &Path) -> Result<kube::Config> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .map_err(|e| Error::kube(format!("read kubeconfig {}", path.display()), e))?;
    let what = format!("load kubeconfig {}", path.display());
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| Error::io("build a Tokio runtime", e))?;
                runtime
                    .block_on(kube::Config::from_custom_kubeconfig(
                        kubeconfig,
                        &kube::config::KubeConfigOptions::default(),
                    ))
                    .map_err(|e| Error::kube(what.clone(), e))
            })
            .join()
            .map_err(|_| Error::Invalid(format!("{what}: the loader thread panicked")))?
    })
}

impl ApiServer {
    fn lock(&self) -> MutexGuard<'_, Option<Reaped>> {
        // A panic while holding the lock leaves a valid Option behind.
        self.process
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts the process (if not running) and waits for `/readyz`.
    fn start(&self) -> Result<()> {
        let mut process = self.lock();
        if let Some(running) = process.as_mut()
            && running.try_exited().is_none()
        {
            return Ok(());
        }
        let n = self.starts.fetch_add(1, Ordering::Relaxed);
        let log = self.log_dir.join(format!("kube-apiserver.{n}.log"));
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args);
        let started = Instant::now();
        let mut reaped = Reaped::spawn_command("kube-apiserver", &cmd, &log)?;
        wait_ready(&mut reaped, &self.kubectl, &self.kubeconfig, READY_TIMEOUT)?;
        tracing::debug!(port = self.port, elapsed = ?started.elapsed(), "kube-apiserver ready");
        *process = Some(reaped);
        Ok(())
    }

    /// Stops the process (if running) and waits until its port is closed.
    fn stop(&self) -> Result<()> {
        let mut process = self.lock();
        if let Some(mut running) = process.take() {
            running.stop();
        }
        let addr = loopback(self.port);
        if !wait_closed(addr, Duration::from_secs(10)) {
            return Err(Error::Invalid(format!(
                "{addr} still accepts connections after kube-apiserver was stopped"
            )));
        }
        Ok(())
    }
}

/// Polls `kubectl get --raw /readyz` until it says `ok`; fails early if the server exits.
fn wait_ready(
    server: &mut Reaped,
    kubectl: &Path,
    kubeconfig: &Path,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = server.try_exited() {
            return Err(server.startup_error(format!("exited before /readyz was ok: {status}")));
        }
        let output = Command::new(kubectl)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["get", "--raw", "/readyz", "--request-timeout=5s"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::io(format!("run {}", kubectl.display()), e))?;
        if output.status.success() && String::from_utf8_lossy(&output.stdout).trim() == "ok" {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let last = String::from_utf8_lossy(&output.stderr).trim().to_owned();
            return Err(server.startup_error(format!(
                "/readyz not ok after {timeout:?}; kubectl said: {last}"
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Starts etcd on two free loopback ports (client, peer); returns it and its client URL.
fn start_etcd(bins: &KubeBinaries, dir: &Path) -> Result<(Reaped, String)> {
    let mut last_error = None;
    for attempt in 0..3 {
        let (client_port, peer_port) = (free_port()?, free_port()?);
        if client_port == peer_port {
            continue;
        }
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let data = dir.join(format!("etcd-data-{attempt}"));
        // A state directory used before: start from an empty store (the keys are new too).
        if data.exists() {
            std::fs::remove_dir_all(&data)
                .map_err(|e| Error::io(format!("remove {}", data.display()), e))?;
        }
        let mut cmd = Command::new(bins.etcd());
        cmd.arg("--name=stoker-test")
            .arg(format!("--data-dir={}", data.display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=stoker-test={peer_url}"))
            .arg("--initial-cluster-state=new")
            // Test data: durability across a power cut is not needed; speed is.
            .arg("--unsafe-no-fsync")
            .arg("--log-level=warn");
        let log = dir.join("etcd.log");
        let mut etcd = Reaped::spawn_command("etcd", &cmd, &log)?;
        match etcd.wait_listening(loopback(client_port), crate::process::STARTUP_TIMEOUT) {
            Ok(()) => return Ok((etcd, client_url)),
            Err(e) => {
                tracing::warn!(error = %e, "etcd did not start; retrying");
                last_error = Some(e);
            }
        }
    }
    Err(last_error.unwrap_or_else(|| Error::Invalid("etcd did not start".into())))
}

fn apiserver_args(port: u16, etcd_url: &str, pki: &Pki) -> Vec<OsString> {
    let path = |p: &Path| p.display().to_string();
    [
        "--bind-address=127.0.0.1".to_owned(),
        "--advertise-address=127.0.0.1".to_owned(),
        format!("--secure-port={port}"),
        format!("--etcd-servers={etcd_url}"),
        format!("--tls-cert-file={}", path(&pki.server_cert)),
        format!("--tls-private-key-file={}", path(&pki.server_key)),
        format!("--client-ca-file={}", path(&pki.ca_cert)),
        format!("--token-auth-file={}", path(&pki.tokens)),
        "--authorization-mode=RBAC".to_owned(),
        "--anonymous-auth=false".to_owned(),
        format!("--service-account-key-file={}", path(&pki.sa_pub)),
        format!("--service-account-signing-key-file={}", path(&pki.sa_key)),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local".to_owned(),
        // Addresses handed out to Service objects only: nothing routes to them, no traffic.
        "--service-cluster-ip-range=10.0.0.0/24".to_owned(),
        "--allow-privileged=true".to_owned(),
        // No controller creates the `default` service accounts the plugin insists on.
        "--disable-admission-plugins=ServiceAccount".to_owned(),
        "--profiling=false".to_owned(),
        "--v=1".to_owned(),
    ]
    .into_iter()
    .map(OsString::from)
    .collect()
}

/// Keys and certificates, made with the `openssl` CLI.
#[derive(Debug)]
struct Pki {
    ca_cert: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    sa_key: PathBuf,
    sa_pub: PathBuf,
    tokens: PathBuf,
}

impl Pki {
    fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        let p = |name: &str| dir.join(name);
        let pki = Self {
            ca_cert: p("ca.crt"),
            server_cert: p("apiserver.crt"),
            server_key: p("apiserver.key"),
            sa_key: p("sa.key"),
            sa_pub: p("sa.pub"),
            tokens: p("tokens.csv"),
        };
        let ca_key = p("ca.key");
        let csr = p("apiserver.csr");
        let ext = p("apiserver.ext");
        let openssl = || Command::new("openssl");
        run(openssl()
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-days", "3650", "-subj", "/CN=stoker-test-ca"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&pki.ca_cert))
        .map_err(missing_openssl)?;
        run(openssl()
            .args([
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-subj", "/CN=kube-apiserver"])
            .arg("-keyout")
            .arg(&pki.server_key)
            .arg("-out")
            .arg(&csr))?;
        std::fs::write(
            &ext,
            "basicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\n\
             subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,\
             DNS:kubernetes.default,DNS:kubernetes.default.svc\n",
        )
        .map_err(|e| Error::io(format!("write {}", ext.display()), e))?;
        run(openssl()
            .args(["x509", "-req", "-days", "3650", "-sha256"])
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(&pki.ca_cert)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-CAcreateserial")
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&pki.server_cert))?;
        run(openssl()
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ])
            .arg("-out")
            .arg(&pki.sa_key))?;
        run(openssl()
            .args(["pkey", "-pubout", "-in"])
            .arg(&pki.sa_key)
            .arg("-out")
            .arg(&pki.sa_pub))?;
        // token,user,uid,"group1,group2"
        std::fs::write(
            &pki.tokens,
            format!("{ADMIN_TOKEN},{ADMIN_USER},{ADMIN_USER},\"system:masters\"\n"),
        )
        .map_err(|e| Error::io(format!("write {}", pki.tokens.display()), e))?;
        Ok(pki)
    }
}

fn missing_openssl(e: Error) -> Error {
    match e {
        Error::Missing { .. } => Error::Invalid(
            "openssl is not installed (Debian package openssl; `hack/git-servers.sh install` \
             installs it)"
                .into(),
        ),
        e => e,
    }
}

/// Writes a kubeconfig with the CA embedded and a bearer token, current context set.
fn write_kubeconfig(path: &Path, server: &str, ca_cert: &Path, token: &str) -> Result<()> {
    let ca =
        std::fs::read(ca_cert).map_err(|e| Error::io(format!("read {}", ca_cert.display()), e))?;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca);
    let text = format!(
        "apiVersion: v1\n\
         kind: Config\n\
         clusters:\n\
         - name: stoker-test\n  \
           cluster:\n    \
             server: {server}\n    \
             certificate-authority-data: {ca}\n\
         users:\n\
         - name: {ADMIN_USER}\n  \
           user:\n    \
             token: {token}\n\
         contexts:\n\
         - name: stoker-test\n  \
           context:\n    \
             cluster: stoker-test\n    \
             user: {ADMIN_USER}\n\
         current-context: stoker-test\n"
    );
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| Error::io(format!("write {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(format!("rename to {}", path.display()), e))
}

/// A prefix usable in a DNS-1123 label: lowercase alphanumerics and `-`, starting with a
/// letter or digit, at most 40 characters (room for `-PID-N`).
fn dns_label_prefix(prefix: &str) -> String {
    let mut out: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    while out.ends_with('-') {
        out.pop();
    }
    let trimmed = out.trim_start_matches('-');
    if trimmed.is_empty() {
        "test".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Applies a CustomResourceDefinition with `client` (server-side apply as `field_manager`) and
/// waits up to `timeout` until it is `Established`. For callers with their own client (a
/// benchmark against a `hack/kube.sh start` server); tests use [`Cluster::apply_crd`].
pub async fn apply_crd(
    client: &kube::Client,
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    field_manager: &str,
    timeout: Duration,
) -> Result<()> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let name = crd.metadata.name.clone().unwrap_or_default();
    let api: kube::Api<CustomResourceDefinition> = kube::Api::all(client.clone());
    api.patch(
        &name,
        &kube::api::PatchParams::apply(field_manager).force(),
        &kube::api::Patch::Apply(crd),
    )
    .await
    .map_err(|e| Error::kube(format!("apply CustomResourceDefinition {name}"), e))?;
    let deadline = Instant::now() + timeout;
    loop {
        let established = api
            .get(&name)
            .await
            .map_err(|e| Error::kube(format!("get CustomResourceDefinition {name}"), e))?
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        if established {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Invalid(format!(
                "CustomResourceDefinition {name} was not Established within {timeout:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `probe` every 100 ms until it returns `Some`, or panics naming `what` after `timeout`
/// (for tests: the panic is the failure).
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A token for the existing service account `namespace/name` (TokenRequest, no audience), valid
/// for `seconds`: to act as that account (and be held to its RBAC) with
/// [`Cluster::client_with_token`].
pub async fn service_account_token(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    seconds: i64,
) -> Result<String> {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;
    let accounts: kube::Api<ServiceAccount> = kube::Api::namespaced(client.clone(), namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(seconds),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    let response = accounts
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .map_err(|e| Error::kube(format!("TokenRequest for {namespace}/{name}"), e))?;
    response
        .status
        .map(|status| status.token)
        .ok_or_else(|| Error::Invalid(format!("TokenRequest for {namespace}/{name}: no status")))
}

#[cfg(test)]
mod tests {
    use super::dns_label_prefix;

    #[test]
    fn prefixes_become_dns_labels() {
        assert_eq!(dns_label_prefix("My_Test::restart"), "my-test--restart");
        assert_eq!(dns_label_prefix("--"), "test");
        assert_eq!(dns_label_prefix(""), "test");
        assert_eq!(dns_label_prefix(&"a".repeat(100)).len(), 40);
        assert_eq!(dns_label_prefix("-x-"), "x");
    }
}
