//! Smart HTTP under gix: reqwest on a single-threaded runtime, driven by the fetching thread.
//!
//! gix's own reqwest backend runs each request on a helper thread, over reqwest's blocking client
//! (itself a runtime on another thread), and hands the response to the fetch through rendezvous
//! pipes fed 8 KiB at a time: a 140 MB pack cost tens of thousands of thread hand-offs, and the
//! fetch spent more time waking threads than inflating objects. This [`Http`] runs reqwest's
//! async client on a current-thread runtime that the fetching thread drives itself, so the
//! socket is read, decrypted and parsed where the pack is indexed. Requests, headers, redirects and
//! errors keep the meaning gix's backend gives them, so the transport's authentication and retry
//! logic is unchanged: a 401 is [`AuthenticationRequired`], a 5xx or a failed connect is
//! retryable, a 403 is a permission error. Trust is the same too: the platform's roots plus the
//! configured CA file.
//!
//! gix asks for a request, writes the request body (if any), then reads the headers, then the
//! body. The request therefore goes out on the first read of its headers or body, with all that
//! was written; until then it waits in an [`Exchange`] that the three handles share.

use std::io::{self, BufRead, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::runtime::Runtime;

use gix::protocol::transport::client::AuthenticationRequired;
use gix::protocol::transport::client::blocking_io::http::{
    self as gix_http, GetResponse, Http, PostBodyDataKind, PostResponse, options::FollowRedirects,
};

/// As many redirects as curl, and so git, follows.
const MAX_REDIRECTS: usize = 50;

/// Connect timeout unless `gitoxide.http.connectTimeout` says otherwise (gix's backend uses the
/// same).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// gix's [`Http`] over reqwest, trusting `extra_certificates` on top of the platform's roots.
pub(crate) struct DirectHttp {
    extra_certificates: Option<Vec<reqwest::Certificate>>,
    /// How long a response may send nothing (`GitSourceConfig::stall_timeout`).
    stall_timeout: Duration,
    client: Option<(reqwest::Client, Arc<Runtime>)>,
    options: gix_http::Options,
    /// The redirect policy of the current request, which the client's redirect hook reads.
    redirect: Arc<Mutex<RedirectRule>>,
    /// Whether the next request may follow redirects (`http.followRedirects`: `initial` allows
    /// the first request only).
    follow: Option<FollowRedirects>,
    /// The repository's URL after a followed redirect, for the requests after it.
    redirected_base_url: Arc<Mutex<Option<String>>>,
}

#[derive(Clone, Default)]
struct RedirectRule {
    follow: bool,
    /// Configured extra headers must not go to another server: such redirects are refused.
    has_extra_headers: bool,
    /// The part of the request URL below the repository's URL (`/info/refs?service=…`), which a
    /// redirect to another server must keep.
    tail: String,
}

impl DirectHttp {
    /// A transport that trusts `extra_certificates` in addition to the platform's roots and
    /// fails responses that send nothing for `stall_timeout`.
    pub(crate) fn new(
        extra_certificates: Option<Vec<reqwest::Certificate>>,
        stall_timeout: Duration,
    ) -> Self {
        DirectHttp {
            extra_certificates,
            stall_timeout,
            client: None,
            options: gix_http::Options::default(),
            redirect: Arc::default(),
            follow: None,
            redirected_base_url: Arc::default(),
        }
    }

    fn client(&mut self) -> gix::Result<(reqwest::Client, Arc<Runtime>)> {
        if let Some(client) = &self.client {
            return Ok(client.clone());
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| {
                gix::Error::from_error(io::Error::other(format!("the HTTP runtime: {error}")))
            })?;
        let rule = Arc::clone(&self.redirect);
        let mut builder = reqwest::Client::builder()
            .connect_timeout(self.options.connect_timeout.unwrap_or(CONNECT_TIMEOUT))
            .read_timeout(self.stall_timeout)
            .http1_title_case_headers()
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                let rule = lock(&rule).clone();
                if !rule.follow {
                    return attempt.stop();
                }
                if rule.has_extra_headers {
                    return attempt
                        .error("refusing to follow a redirect with configured extra headers");
                }
                if attempt.previous().len() >= MAX_REDIRECTS {
                    return attempt.error("too many redirects");
                }
                let Some(previous) = attempt.previous().last() else {
                    return attempt.follow();
                };
                let next = attempt.url();
                if !scheme_is_safe(next, previous) {
                    let message = format!(
                        "refusing to follow a redirect from {} to {}: never from https to http",
                        previous.as_str(),
                        next.as_str()
                    );
                    return attempt.error(message);
                }
                let same_server = next.host_str() == previous.host_str()
                    && next.port_or_known_default() == previous.port_or_known_default()
                    && next.scheme() == previous.scheme();
                if same_server || next.as_str().ends_with(&rule.tail) {
                    attempt.follow()
                } else {
                    let message = format!(
                        "redirect to {} does not end with the requested {:?}",
                        next.as_str(),
                        rule.tail
                    );
                    attempt.error(message)
                }
            }));
        if let Some(certificates) = &self.extra_certificates {
            builder = builder.tls_certs_merge(certificates.iter().cloned());
        }
        let client = builder.build().map_err(|error| {
            gix::Error::from_error(io::Error::other(format!("the HTTP client: {error}")))
        })?;
        let client = (client, Arc::new(runtime));
        self.client = Some(client.clone());
        Ok(client)
    }

    fn exchange(
        &mut self,
        url: &str,
        base_url: &str,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
        post: bool,
    ) -> gix::Result<Exchange> {
        let (client, runtime) = self.client()?;
        let mut header_map = reqwest::header::HeaderMap::new();
        for line in headers {
            insert_header(&mut header_map, line.as_ref());
        }
        for line in &self.options.extra_headers {
            insert_header(&mut header_map, line);
        }
        let tail = url.strip_prefix(base_url).unwrap_or_default().to_owned();
        let effective_url = match lock(&self.redirected_base_url).as_deref() {
            Some(redirected) => format!("{redirected}{tail}"),
            None => url.to_owned(),
        };
        let follow = *self.follow.get_or_insert(self.options.follow_redirects);
        *lock(&self.redirect) = RedirectRule {
            follow: matches!(follow, FollowRedirects::Initial | FollowRedirects::All),
            has_extra_headers: !self.options.extra_headers.is_empty(),
            tail: tail.clone(),
        };
        if follow == FollowRedirects::Initial {
            self.follow = Some(FollowRedirects::None);
        }
        Ok(Exchange::new(Request {
            client,
            runtime,
            post,
            url: effective_url,
            headers: header_map,
            body: Vec::new(),
            tail,
            redirected_base_url: Arc::clone(&self.redirected_base_url),
        }))
    }
}

impl Http for DirectHttp {
    type Headers = HeadersReader;
    type ResponseBody = BodyReader;
    type PostBody = BodyWriter;

    fn get(
        &mut self,
        url: &str,
        base_url: &str,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> gix::Result<GetResponse<HeadersReader, BodyReader>> {
        let exchange = self.exchange(url, base_url, headers, false)?;
        Ok(GetResponse {
            headers: HeadersReader::new(exchange.clone()),
            body: BodyReader::new(exchange),
        })
    }

    fn post(
        &mut self,
        url: &str,
        base_url: &str,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
        _body: PostBodyDataKind,
    ) -> gix::Result<PostResponse<HeadersReader, BodyReader, BodyWriter>> {
        // Both kinds are buffered: a fetch's request body is its wants and haves, small.
        let exchange = self.exchange(url, base_url, headers, true)?;
        Ok(PostResponse {
            post_body: BodyWriter(exchange.clone()),
            headers: HeadersReader::new(exchange.clone()),
            body: BodyReader::new(exchange),
        })
    }

    fn configure(&mut self, config: &dyn std::any::Any) -> gix::Result<()> {
        if let Some(options) = config.downcast_ref::<gix_http::Options>() {
            self.options = options.clone();
            // A new connect timeout needs a new client.
            self.client = None;
        }
        Ok(())
    }

    fn redirected_base_url(&self) -> Option<String> {
        lock(&self.redirected_base_url).clone()
    }
}

/// One request and its response, shared by the handles that write its body and read its answer.
#[derive(Clone)]
struct Exchange(Arc<Mutex<Stage>>);

enum Stage {
    /// Not sent yet: the body is still being written.
    Waiting(Box<Request>),
    /// Sent; the response waits for whoever reads first.
    Answered(io::Result<Answer>),
    /// The response (or its error) has been taken.
    Taken,
}

/// A response and the runtime that reads its body.
struct Answer {
    response: reqwest::Response,
    runtime: Arc<Runtime>,
}

struct Request {
    client: reqwest::Client,
    runtime: Arc<Runtime>,
    post: bool,
    url: String,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
    tail: String,
    redirected_base_url: Arc<Mutex<Option<String>>>,
}

impl Exchange {
    fn new(request: Request) -> Self {
        Exchange(Arc::new(Mutex::new(Stage::Waiting(Box::new(request)))))
    }

    /// Sends the request if that has not happened yet.
    fn send(&self) {
        let mut stage = lock(&self.0);
        *stage = match std::mem::replace(&mut *stage, Stage::Taken) {
            Stage::Waiting(request) => Stage::Answered(request.send()),
            other => other,
        };
    }

    /// The response's header lines (`name:value\n`), leaving the response for the body reader;
    /// or the request's error.
    fn header_lines(&self) -> io::Result<Vec<u8>> {
        self.send();
        let mut stage = lock(&self.0);
        match std::mem::replace(&mut *stage, Stage::Taken) {
            Stage::Answered(Ok(answer)) => {
                let mut lines = Vec::new();
                for (name, value) in answer.response.headers() {
                    lines.extend_from_slice(name.as_str().as_bytes());
                    lines.push(b':');
                    lines.extend_from_slice(value.as_bytes());
                    lines.push(b'\n');
                }
                *stage = Stage::Answered(Ok(answer));
                Ok(lines)
            }
            Stage::Answered(Err(error)) => Err(error),
            Stage::Waiting(_) | Stage::Taken => Ok(Vec::new()),
        }
    }

    /// The response, to read its body; `None` when it failed (its error went to the headers) or
    /// was taken.
    fn take_response(&self) -> io::Result<Option<Answer>> {
        self.send();
        let mut stage = lock(&self.0);
        match std::mem::replace(&mut *stage, Stage::Taken) {
            Stage::Answered(Ok(answer)) => Ok(Some(answer)),
            Stage::Answered(Err(error)) => Err(error),
            Stage::Waiting(_) | Stage::Taken => Ok(None),
        }
    }
}

impl Request {
    fn send(self) -> io::Result<Answer> {
        let builder = if self.post {
            self.client.post(&self.url).body(self.body)
        } else {
            self.client.get(&self.url)
        };
        // `send` starts its timers when called: inside the block, on this runtime.
        let response = self
            .runtime
            .block_on(async { builder.headers(self.headers).send().await })
            .map_err(send_error)?;
        let final_url = response.url().as_str();
        if final_url != self.url {
            // gix sends the next requests to the repository's new home (the redirect hook has
            // already refused unsafe schemes).
            let base = final_url.strip_suffix(self.tail.as_str()).ok_or_else(|| {
                io::Error::other(format!(
                    "the redirect to {final_url} cannot be reconciled with {}: \
                     its path does not end in {:?}",
                    self.url, self.tail
                ))
            })?;
            *lock(&self.redirected_base_url) = Some(base.to_owned());
        }
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            let www_authenticate = response
                .headers()
                .get_all(reqwest::header::WWW_AUTHENTICATE)
                .iter()
                .map(|value| value.as_bytes().into())
                .collect();
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                AuthenticationRequired { www_authenticate },
            ));
        }
        if status.is_client_error() || status.is_server_error() {
            return Err(status_error(status));
        }
        Ok(Answer {
            response,
            runtime: self.runtime,
        })
    }
}

/// A status error, classified as gix's own backend does: 403 is a permission error, a 5xx other
/// than 501 is retryable, the rest are permanent.
fn status_error(status: reqwest::StatusCode) -> io::Error {
    use gix::error::{Class, ClassificationMarker};
    let message = io::Error::other(format!("Received HTTP status {}", status.as_str()));
    let (kind, class) = match status {
        reqwest::StatusCode::FORBIDDEN => (io::ErrorKind::Other, Some(Class::PermissionDenied)),
        reqwest::StatusCode::CONFLICT => (io::ErrorKind::Other, Some(Class::Conflict)),
        reqwest::StatusCode::NOT_IMPLEMENTED => (io::ErrorKind::Other, Some(Class::Unsupported)),
        status if status.is_server_error() => {
            (io::ErrorKind::ConnectionAborted, Some(Class::Retryable))
        }
        _ => (io::ErrorKind::Other, None),
    };
    match class {
        Some(class) => io::Error::new(kind, ClassificationMarker::with_source(class, message)),
        None => io::Error::new(kind, message),
    }
}

/// A request that got no response: a failed connect or a timeout is retryable, the rest (a TLS
/// failure among them, classified by the caller from the message) are not by themselves.
fn send_error(error: reqwest::Error) -> io::Error {
    use gix::error::{Class, ClassificationMarker};
    if error.is_timeout() || error.is_connect() {
        io::Error::other(ClassificationMarker::with_source(Class::Retryable, error))
    } else {
        io::Error::other(error)
    }
}

/// A body that broke off: a stall is a timeout, anything else a lost connection; both are
/// retryable, as a fresh request may well complete.
fn body_error(error: reqwest::Error) -> io::Error {
    let kind = if error.is_timeout() {
        io::ErrorKind::TimedOut
    } else {
        io::ErrorKind::ConnectionAborted
    };
    io::Error::new(kind, error)
}

/// Whether a redirect from `from` to `to` keeps or upgrades the scheme (as git: never to plain
/// http from https, never to anything but http(s)).
fn scheme_is_safe(to: &reqwest::Url, from: &reqwest::Url) -> bool {
    matches!(
        (from.scheme(), to.scheme()),
        ("https", "https") | ("http", "http") | ("http", "https")
    )
}

/// Adds one `name: value` line; lines that are not valid headers are skipped, as gix does.
fn insert_header(headers: &mut reqwest::header::HeaderMap, line: &str) {
    let Some((name, value)) = line.split_once(':') else {
        return;
    };
    if let (Ok(name), Ok(value)) = (
        reqwest::header::HeaderName::from_bytes(name.as_bytes()),
        reqwest::header::HeaderValue::from_str(value.trim()),
    ) {
        headers.append(name, value);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values stay consistent when a holder panics: each is replaced whole.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Collects the request body until the request is sent.
pub(crate) struct BodyWriter(Exchange);

impl Write for BodyWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match &mut *lock(&(self.0).0) {
            Stage::Waiting(request) => {
                request.body.extend_from_slice(bytes);
                Ok(bytes.len())
            }
            Stage::Answered(_) | Stage::Taken => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the request was already sent",
            )),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The response's headers as `name:value` lines; sends the request on the first read.
pub(crate) struct HeadersReader {
    exchange: Exchange,
    lines: Option<io::Cursor<Vec<u8>>>,
}

impl HeadersReader {
    fn new(exchange: Exchange) -> Self {
        HeadersReader {
            exchange,
            lines: None,
        }
    }
}

impl Read for HeadersReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_buffered(self, buf)
    }
}

/// `Read::read` of a reader whose buffer is its source.
fn read_buffered(reader: &mut impl BufRead, buf: &mut [u8]) -> io::Result<usize> {
    let available = reader.fill_buf()?;
    let count = available.len().min(buf.len());
    buf[..count].copy_from_slice(&available[..count]);
    reader.consume(count);
    Ok(count)
}

impl BufRead for HeadersReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.lines.is_none() {
            match self.exchange.header_lines() {
                Ok(lines) => self.lines = Some(io::Cursor::new(lines)),
                Err(error) => {
                    // Reported once; after it the headers read as empty.
                    self.lines = Some(io::Cursor::new(Vec::new()));
                    return Err(error);
                }
            }
        }
        match &mut self.lines {
            Some(lines) => lines.fill_buf(),
            None => Ok(&[]),
        }
    }

    fn consume(&mut self, amount: usize) {
        if let Some(lines) = &mut self.lines {
            lines.consume(amount);
        }
    }
}

/// The response body, read chunk by chunk as the connection delivers it; sends the request on
/// the first read if the headers were not read.
pub(crate) struct BodyReader {
    exchange: Exchange,
    answer: Option<Answer>,
    chunk: bytes::Bytes,
    started: bool,
}

impl BodyReader {
    fn new(exchange: Exchange) -> Self {
        BodyReader {
            exchange,
            answer: None,
            chunk: bytes::Bytes::new(),
            started: false,
        }
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_buffered(self, buf)
    }
}

impl BufRead for BodyReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if !self.started {
            self.started = true;
            self.answer = self.exchange.take_response()?;
        }
        while self.chunk.is_empty() {
            let Some(answer) = &mut self.answer else {
                break;
            };
            match answer.runtime.block_on(answer.response.chunk()) {
                Ok(Some(chunk)) => self.chunk = chunk,
                Ok(None) => self.answer = None,
                Err(error) => {
                    self.answer = None;
                    return Err(body_error(error));
                }
            }
        }
        Ok(&self.chunk)
    }

    fn consume(&mut self, amount: usize) {
        let _ = self.chunk.split_to(amount.min(self.chunk.len()));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn url(text: &str) -> reqwest::Url {
        reqwest::Url::parse(text).unwrap()
    }

    #[test]
    fn redirects_never_downgrade_to_plain_http() {
        assert!(scheme_is_safe(&url("https://b/x"), &url("https://a/x")));
        assert!(scheme_is_safe(&url("https://b/x"), &url("http://a/x")));
        assert!(scheme_is_safe(&url("http://b/x"), &url("http://a/x")));
        assert!(!scheme_is_safe(&url("http://b/x"), &url("https://a/x")));
        assert!(!scheme_is_safe(&url("ftp://b/x"), &url("https://a/x")));
    }

    fn classified(status: u16) -> gix::Error {
        let error = status_error(reqwest::StatusCode::from_u16(status).unwrap());
        gix::Error::from_error(error)
    }

    #[test]
    fn status_errors_are_classified_as_gix_classifies_them() {
        assert!(classified(503).can_retry_lenient());
        assert!(classified(500).is_retryable());
        assert!(!classified(501).can_retry_lenient());
        assert!(classified(501).is_unsupported());
        assert!(classified(403).is_permission_denied());
        assert!(!classified(403).can_retry_lenient());
        assert!(!classified(404).can_retry_lenient());
        assert!(!classified(404).is_permission_denied());
        assert!(classified(404).to_string().contains("404"));
    }

    #[test]
    fn malformed_extra_headers_are_skipped() {
        let mut headers = reqwest::header::HeaderMap::new();
        insert_header(&mut headers, "Git-Protocol: version=2");
        insert_header(&mut headers, "no colon here");
        insert_header(&mut headers, "bad name: x");
        insert_header(&mut headers, "X-Twice: 1");
        insert_header(&mut headers, "X-Twice: 2");
        assert_eq!(headers.len(), 3);
        assert_eq!(headers["git-protocol"], "version=2");
        assert_eq!(headers.get_all("x-twice").iter().count(), 2);
    }

    #[test]
    fn a_failed_request_is_reported_once_through_its_headers() {
        // Nothing listens on port 9: the request is sent on the first read of the headers,
        // after the whole body was accepted, and its failure comes from there.
        let mut transport = DirectHttp::new(None, Duration::from_secs(30));
        let response = transport
            .post(
                "http://127.0.0.1:9/repo/git-upload-pack",
                "http://127.0.0.1:9/repo",
                ["Content-Type: application/x-git-upload-pack-request"],
                PostBodyDataKind::BoundedAndFitsIntoMemory,
            )
            .unwrap();
        let mut body = response.post_body;
        body.write_all(b"0000").unwrap();
        let mut headers = response.headers;
        let error = headers.fill_buf().unwrap_err();
        assert!(
            gix::Error::from_error(error).can_retry_lenient(),
            "a refused connect is retryable"
        );
        // Reported once; the body then reads as empty and the writer is closed.
        assert!(headers.fill_buf().unwrap().is_empty());
        let mut rest = Vec::new();
        response.body.take(1).read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        assert_eq!(
            body.write(b"more").unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
    }
}
