//! The gateway simulator's HTTP surface: the `stoker-gateway-sim` binary, its key check and its
//! `/_sim/...` admin API, spoken to with plain HTTP/1.1 over loopback.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use stoker_testkit::gateway_sim::{Call, DesignerSession, Endpoint};

const KEY: &str = "sim-test:c2VjcmV0";

/// The binary, killed when dropped.
struct Sim {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Sim {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_stoker-gateway-sim"))
        .args(["--api-key-file", key_file.to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&line).unwrap();
    let url = json["url"].as_str().unwrap();
    let addr: SocketAddr = url.strip_prefix("http://").unwrap().parse().unwrap();
    assert_eq!(json["port"], addr.port());
    Sim {
        child,
        addr,
        _dir: dir,
    }
}

/// One request; returns (status, body).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let key = key
        .map(|k| format!("X-Ignition-API-Token: {k}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{key}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

#[test]
#[allow(clippy::too_many_lines)] // one scenario against the simulator binary, step by step
fn binary_checks_the_key_records_calls_and_obeys_the_admin_api() {
    let sim = start();
    let a = sim.addr;

    // The key: none, wrong, right.
    assert_eq!(http(a, "GET", "/data/api/v1/gateway-info", None, "").0, 401);
    assert_eq!(
        http(a, "GET", "/data/api/v1/gateway-info", Some("x:y"), "").0,
        401
    );
    let (status, body) = http(a, "GET", "/data/api/v1/gateway-info", Some(KEY), "");
    assert_eq!(status, 200);
    let info: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["name"], "stoker-sim");
    assert_eq!(
        http(a, "POST", "/data/api/v1/scan/projects", Some(KEY), "").0,
        200
    );
    assert_eq!(
        http(a, "GET", "/data/api/v1/scan/projects", Some(KEY), "").0,
        405
    );
    assert_eq!(http(a, "GET", "/nope", Some(KEY), "").0, 404);

    let (_, body) = http(a, "GET", "/_sim/calls", None, "");
    let calls: Vec<Call> = serde_json::from_str(&body).unwrap();
    let summary: Vec<(String, String, bool, Option<u16>)> = calls
        .iter()
        .map(|c| (c.method.clone(), c.path.clone(), c.authorized, c.status))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "GET".into(),
                "/data/api/v1/gateway-info".into(),
                false,
                Some(401)
            ),
            (
                "GET".into(),
                "/data/api/v1/gateway-info".into(),
                false,
                Some(401)
            ),
            (
                "GET".into(),
                "/data/api/v1/gateway-info".into(),
                true,
                Some(200)
            ),
            (
                "POST".into(),
                "/data/api/v1/scan/projects".into(),
                true,
                Some(200)
            ),
            (
                "GET".into(),
                "/data/api/v1/scan/projects".into(),
                true,
                Some(405)
            ),
            ("GET".into(), "/nope".into(), true, Some(404)),
        ]
    );
    assert_eq!(calls[3].endpoint(), Some(Endpoint::ScanProjects));
    assert_eq!(calls[4].endpoint(), None, "wrong method");
    assert!(calls.windows(2).all(|w| w[0].at_unix_ms <= w[1].at_unix_ms));
    assert_eq!(http(a, "DELETE", "/_sim/calls", None, "").0, 204);
    assert_eq!(http(a, "GET", "/_sim/calls", None, "").1, "[]");

    // Designer sessions.
    let (status, body) = http(
        a,
        "POST",
        "/_sim/designers",
        None,
        r#"{"user": "alice", "project": "demo"}"#,
    );
    assert_eq!(status, 201);
    let alice: DesignerSession = serde_json::from_str(&body).unwrap();
    let (_, body) = http(a, "GET", "/data/api/v1/designers", Some(KEY), "");
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(listed["items"][0]["user"], "alice");
    assert_eq!(listed["items"][0]["id"], alice.id.as_str());
    assert_eq!(
        http(
            a,
            "DELETE",
            &format!("/_sim/designers/{}", alice.id),
            None,
            ""
        )
        .0,
        204
    );
    assert_eq!(
        http(
            a,
            "DELETE",
            &format!("/_sim/designers/{}", alice.id),
            None,
            ""
        )
        .0,
        404
    );
    let (_, body) = http(a, "GET", "/data/api/v1/designers", Some(KEY), "");
    assert!(body.contains(r#""items":[]"#), "{body}");
    assert_eq!(http(a, "POST", "/_sim/designers", None, "{}").0, 400);

    // Faults: before the key check, used up after `times`.
    let (status, _) = http(
        a,
        "PUT",
        "/_sim/faults/scan-config",
        None,
        r#"{"status": 500, "times": 1}"#,
    );
    assert_eq!(status, 200);
    assert_eq!(http(a, "POST", "/data/api/v1/scan/config", None, "").0, 500);
    assert_eq!(
        http(a, "POST", "/data/api/v1/scan/config", Some(KEY), "").0,
        200
    );
    assert_eq!(http(a, "PUT", "/_sim/faults/scan", None, "{}").0, 404);
    assert_eq!(http(a, "PUT", "/_sim/faults/gateway-info", None, "").0, 200);
    assert_eq!(
        http(a, "GET", "/data/api/v1/gateway-info", Some(KEY), "").0,
        503
    );
    let (_, body) = http(a, "GET", "/_sim/faults", None, "");
    assert!(body.contains("gateway-info"), "{body}");
    assert_eq!(
        http(a, "DELETE", "/_sim/faults/gateway-info", None, "").0,
        204
    );
    assert_eq!(
        http(a, "GET", "/data/api/v1/gateway-info", Some(KEY), "").0,
        200
    );

    // Down for a while: connections refused, then back by itself.
    let (status, _) = http(
        a,
        "PUT",
        "/_sim/mode",
        None,
        r#"{"mode": "refuse", "for_ms": 500}"#,
    );
    assert_eq!(status, 200);
    assert!(
        stoker_testkit::process::wait_closed(a, Duration::from_secs(5)),
        "the port did not close"
    );
    let mut back = false;
    for _ in 0..200 {
        if stoker_testkit::process::is_listening(a) {
            back = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(back, "the simulator did not come back");
    let (_, body) = http(a, "GET", "/_sim/mode", None, "");
    assert!(body.contains(r#""mode":"up""#), "{body}");
}
