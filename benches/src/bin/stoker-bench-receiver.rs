//! `stoker-bench-receiver`: the webhook receiver's throughput and latency on loopback. Run it
//! through `benches/receiver-throughput.sh`.
//!
//! On the test API server (the one `STOKER_TEST_KUBECONFIG` names, else one it starts), it
//! serves the receiver in-process with `stoker_k8s::receiver::start`, the function the operator
//! calls, configured as the operator configures it from its flags: a global HMAC secret, the
//! managed namespace, and the per-client rate limit off (`--webhook-receiver-rate-limit 0`: every
//! request comes from 127.0.0.1, so the default 20/s would answer nearly all of them 429). The
//! namespace holds `GATEWAYSYNCS` GatewaySyncs of other repositories plus `site`.
//!
//! Three kinds of request, `REQUESTS` each, sent by `CONCURRENCY` clients with one keep-alive
//! connection each; every answer's status is checked:
//!
//! - **wrong HMAC**: `POST /webhook/{ns}/site` signed with another key: 401.
//! - **accepted (v0.5.1 generic)**: `POST /webhook/{ns}/site`, `{"ref": "v1.0.<i>"}` correctly
//!   signed, a new ref each time: the annotations are patched and a `WebhookReceived` Event is
//!   published: 202.
//! - **push, no match**: a GitHub push event of a repository no GatewaySync uses, correctly
//!   signed, a new delivery id each time: 202 with nothing triggered.
//!
//! It prints requests per second and p50/p90/p99/max latency per kind, as seen by the client.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::json;
use stoker_k8s::crd::crd;
use stoker_k8s::metrics::OperatorMetrics;
use stoker_k8s::receiver::auth::hub_signature;
use stoker_k8s::receiver::limits::RateLimit;
use stoker_k8s::receiver::{ReceiverConfig, Secrets};
use stoker_testkit::kube_api::{cluster, install_crypto_provider};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const SECRET: &[u8] = b"bench-receiver-secret";

fn setting(name: &str, default: usize) -> Result<usize> {
    match std::env::var(name) {
        Ok(value) => value.parse().with_context(|| format!("{name}={value:?}")),
        Err(_) => Ok(default),
    }
}

/// One request: path, extra headers, body.
type Request = (String, Vec<(String, String)>, Vec<u8>);

/// One kind of request: how to make request `i`, and the status expected.
struct Kind {
    name: &'static str,
    expect: u16,
    request: Box<dyn Fn(usize) -> Request + Send + Sync>,
}

#[tokio::main]
async fn main() -> Result<()> {
    install_crypto_provider();
    let requests = setting("REQUESTS", 2000)?;
    let concurrency = setting("CONCURRENCY", 8)?.max(1);
    let others = setting("GATEWAYSYNCS", 50)?;
    let c = cluster()?;
    c.apply_crd(&crd(), "stoker-bench", Duration::from_secs(30))
        .await?;
    let client = c.client()?;
    let ns = c.namespace("bench-receiver").await?;
    stoker_benches::create_gateway_sync(&client, &ns, "site", "https://git.example/plant/site.git")
        .await?;
    for n in 0..others {
        let repo = format!("https://git.example/plant/other-{n}.git");
        stoker_benches::create_gateway_sync(&client, &ns, &format!("other-{n}"), &repo).await?;
    }

    let mut config = ReceiverConfig::new(
        "127.0.0.1:0".parse()?,
        Secrets {
            hmac: vec![SECRET.to_vec()],
            tokens: Vec::new(),
        },
    );
    config.namespaces = vec![ns.clone()];
    config.rate_limit = RateLimit {
        per_second: 0.0,
        burst: 0,
    };
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let receiver =
        stoker_k8s::receiver::start(client.clone(), config, OperatorMetrics::new(), shutdown)
            .await?;
    let address = receiver.address();

    eprintln!(
        "==> {requests} requests per kind, {concurrency} keep-alive connections, {} GatewaySyncs",
        others + 1
    );
    println!("| kind | answer | requests | concurrency | requests/s | p50 | p90 | p99 | max |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for kind in kinds(&ns) {
        // A short warm-up (connections, the API server's caches), not counted.
        run(address, &kind, requests.min(50), concurrency, 0).await?;
        let started = Instant::now();
        let mut samples = run(address, &kind, requests, concurrency, 1_000_000).await?;
        let took = started.elapsed();
        print_row(&kind, requests, concurrency, took, &mut samples);
    }
    Ok(())
}

fn kinds(ns: &str) -> Vec<Kind> {
    let site = format!("/webhook/{ns}/site");
    let wrong = site.clone();
    vec![
        Kind {
            name: "wrong HMAC",
            expect: 401,
            request: Box::new(move |_| {
                let body = br#"{"ref": "v9.9.9"}"#.to_vec();
                let signature = hub_signature(b"not-the-secret", &body);
                let headers = vec![("X-Hub-Signature-256".to_owned(), signature)];
                (wrong.clone(), headers, body)
            }),
        },
        Kind {
            name: "accepted (v0.5.1 generic ref, new each time)",
            expect: 202,
            request: Box::new(move |i| {
                let body = json!({"ref": format!("v1.0.{i}")}).to_string().into_bytes();
                let headers = vec![(
                    "X-Hub-Signature-256".to_owned(),
                    hub_signature(SECRET, &body),
                )];
                (site.clone(), headers, body)
            }),
        },
        Kind {
            name: "push matching no GatewaySync (GitHub)",
            expect: 202,
            request: Box::new(|i| {
                let body = github_push(i);
                let headers = vec![
                    ("X-GitHub-Event".to_owned(), "push".to_owned()),
                    ("X-GitHub-Delivery".to_owned(), format!("bench-{i}")),
                    (
                        "X-Hub-Signature-256".to_owned(),
                        hub_signature(SECRET, &body),
                    ),
                ];
                ("/webhook/push".to_owned(), headers, body)
            }),
        },
    ]
}

/// A GitHub push of one commit touching one file, to a repository no GatewaySync uses.
fn github_push(i: usize) -> Vec<u8> {
    let after = format!("{i:040x}");
    json!({
        "ref": "refs/heads/main",
        "before": format!("{:040x}", i + 1),
        "after": after,
        "created": false, "deleted": false, "forced": false,
        "repository": {
            "clone_url": "https://github.com/elsewhere/unrelated.git",
            "ssh_url": "git@github.com:elsewhere/unrelated.git",
            "html_url": "https://github.com/elsewhere/unrelated",
            "default_branch": "main"
        },
        "commits": [{"id": after, "added": [], "removed": [],
                     "modified": ["projects/demo/view.json"]}],
        "total_commits": 1
    })
    .to_string()
    .into_bytes()
}

/// Sends `requests` requests of `kind` over `concurrency` keep-alive connections (request
/// numbers from `offset`); returns each one's latency.
async fn run(
    address: SocketAddr,
    kind: &Kind,
    requests: usize,
    concurrency: usize,
    offset: usize,
) -> Result<Vec<Duration>> {
    let prepared: Vec<_> = (0..requests).map(|i| (kind.request)(offset + i)).collect();
    let prepared = Arc::new(prepared);
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let prepared = Arc::clone(&prepared);
        let expect = kind.expect;
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(address).await?;
            stream.set_nodelay(true)?;
            let mut stream = BufReader::new(stream);
            let mut samples = Vec::new();
            for (path, headers, body) in prepared.iter().skip(worker).step_by(concurrency) {
                let started = Instant::now();
                let status = exchange(&mut stream, path, headers, body).await?;
                samples.push(started.elapsed());
                if status != expect {
                    bail!("POST {path}: answered {status}, expected {expect}");
                }
            }
            Ok::<_, anyhow::Error>(samples)
        }));
    }
    let mut all = Vec::with_capacity(requests);
    for task in tasks {
        all.extend(task.await??);
    }
    Ok(all)
}

/// One HTTP/1.1 request on a kept-alive connection; returns the answer's status (its body is
/// read and dropped).
async fn exchange(
    stream: &mut BufReader<TcpStream>,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<u16> {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: receiver\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let inner = stream.get_mut();
    inner.write_all(head.as_bytes()).await?;
    inner.write_all(body).await?;
    let mut line = String::new();
    stream.read_line(&mut line).await?;
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("status line {line:?}"))?;
    let mut length = 0usize;
    loop {
        line.clear();
        if stream.read_line(&mut line).await? == 0 {
            bail!("connection closed in the answer's headers");
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse()?;
        }
    }
    let mut rest = vec![0; length];
    stream.read_exact(&mut rest).await?;
    Ok(status)
}

fn print_row(
    kind: &Kind,
    requests: usize,
    concurrency: usize,
    took: Duration,
    samples: &mut [Duration],
) {
    samples.sort();
    let at = |q: f64| {
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        format!("{:.2} ms", samples[index].as_secs_f64() * 1000.0)
    };
    println!(
        "| {} | {} | {requests} | {concurrency} | {:.0} | {} | {} | {} | {} |",
        kind.name,
        kind.expect,
        requests as f64 / took.as_secs_f64(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
}
