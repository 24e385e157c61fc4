//! Keeping credentials out of logs, errors and reports.

/// What credentials are replaced with.
const MASK: &str = "***";

/// A repository URL fit for logs and errors: credentials and query strings removed.
///
/// - `scheme://user:password@host/…` → `scheme://user:***@host/…` (the user name stays for
///   SSH, where it is `git`; for HTTP(S) the whole user info goes, since a lone user name is
///   often a token: `https://TOKEN@github.com/…`);
/// - `?access_token=…` and any other query → `?***`;
/// - scp-like `git@host:path` has no password and is kept.
///
/// ```
/// use stoker_core::git::redact_url;
/// assert_eq!(redact_url("https://x-access-token:ghs_abc@github.com/o/r.git"), "https://***@github.com/o/r.git");
/// assert_eq!(redact_url("https://ghp_secret@github.com/o/r"), "https://***@github.com/o/r");
/// assert_eq!(redact_url("ssh://git@host:2222/r.git"), "ssh://git@host:2222/r.git");
/// assert_eq!(redact_url("ssh://git:pw@host/r.git"), "ssh://git:***@host/r.git");
/// assert_eq!(redact_url("https://host/r.git?private_token=x"), "https://host/r.git?***");
/// assert_eq!(redact_url("git@github.com:o/r.git"), "git@github.com:o/r.git");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        // scp-like `user@host:path` or a local path: no password can be expressed.
        return url.to_owned();
    };
    let scheme = &url[..scheme_end];
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let mut tail = &rest[authority_end..];
    let mut out = String::with_capacity(url.len());
    out.push_str(scheme);
    out.push_str("://");
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let host = &authority[at + 1..];
            let keep_user = scheme.eq_ignore_ascii_case("ssh") || scheme.starts_with("git+ssh");
            match userinfo.split_once(':') {
                Some((user, _)) if keep_user => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(MASK);
                }
                None if keep_user => out.push_str(userinfo),
                _ => out.push_str(MASK),
            }
            out.push('@');
            out.push_str(host);
        }
        None => out.push_str(authority),
    }
    let fragment = tail.find('#').map(|index| {
        let fragment = &tail[index..];
        tail = &tail[..index];
        fragment
    });
    match tail.split_once('?') {
        Some((path, _)) => {
            out.push_str(path);
            out.push('?');
            out.push_str(MASK);
        }
        None => out.push_str(tail),
    }
    if let Some(fragment) = fragment {
        out.push_str(fragment);
    }
    out
}

/// Redacts every URL found in free text (an error message from a library, a server's reply):
/// each `scheme://…` run up to whitespace or a quote goes through [`redact_url`], and any
/// `secret` given is masked wherever it appears.
pub(crate) fn redact_text(text: &str, secrets: &[&str]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(index) = rest.find("://") {
        // Back up to the start of the scheme.
        let start = rest[..index]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.'))
            .map_or(0, |i| i + 1);
        let end = rest[index..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>'))
            .map_or(rest.len(), |i| index + i);
        out.push_str(&rest[..start]);
        out.push_str(&redact_url(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    for secret in secrets {
        if secret.len() >= 4 {
            out = out.replace(secret, MASK);
        }
    }
    out
}

/// A URL with its password (and, for HTTP, a lone user name) removed, and what was removed:
/// credentials are handed to gix through its credentials callback, never inside the URL, so no
/// gix error message can contain them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SplitUrl {
    /// The URL given to gix.
    pub url: String,
    /// The user name, when there was one.
    pub user: Option<String>,
    /// The password, when there was one.
    pub password: Option<String>,
}

/// Splits the credentials off an `http(s)://` URL. For other schemes a password is dropped
/// (ssh never uses one from the URL) and the user name kept.
pub(crate) fn split_credentials(url: &str) -> SplitUrl {
    let unchanged = || SplitUrl {
        url: url.to_owned(),
        user: None,
        password: None,
    };
    let Some(scheme_end) = url.find("://") else {
        return unchanged();
    };
    let scheme = &url[..scheme_end];
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return unchanged();
    };
    let userinfo = &authority[..at];
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        // ssh:// and git:// never use a password from the URL: drop it, keep the user.
        return match userinfo.split_once(':') {
            Some((user, _)) => SplitUrl {
                url: format!(
                    "{scheme}://{user}@{}{}",
                    &authority[at + 1..],
                    &rest[authority_end..]
                ),
                user: None,
                password: None,
            },
            None => unchanged(),
        };
    }
    let (user, password) = match userinfo.split_once(':') {
        Some((user, password)) => (percent_decode(user), Some(percent_decode(password))),
        // `https://TOKEN@host`: the lone user name is the secret (GitHub accepts it as the
        // password with any user name).
        None => ("x-access-token".to_owned(), Some(percent_decode(userinfo))),
    };
    SplitUrl {
        url: format!(
            "{scheme}://{}{}",
            &authority[at + 1..],
            &rest[authority_end..]
        ),
        user: Some(user),
        password,
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && index + 2 < bytes.len()
            && let Some(byte) = std::str::from_utf8(&bytes[index + 1..index + 3])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            index += 3;
            continue;
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_removes_every_form_of_credentials() {
        let cases = [
            (
                "https://user:s3cret@example.com/r.git",
                "https://***@example.com/r.git",
            ),
            ("http://tok@127.0.0.1:8080/r", "http://***@127.0.0.1:8080/r"),
            ("https://example.com/r.git", "https://example.com/r.git"),
            ("https://a:b@host/r?x=1#frag", "https://***@host/r?***#frag"),
            ("https://a:b@host", "https://***@host"),
            ("https://a:b@c@host/r", "https://***@host/r"),
            ("ssh://git@host/r", "ssh://git@host/r"),
            ("ssh://git:pw@host/r", "ssh://git:***@host/r"),
            ("git@host:o/r.git", "git@host:o/r.git"),
            ("file:///tmp/repo", "file:///tmp/repo"),
            ("/tmp/repo", "/tmp/repo"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(redact_url(input), expected, "{input}");
        }
    }

    #[test]
    fn redact_text_finds_urls_and_secrets_in_messages() {
        let text = "failed to GET \"https://u:tok123@h/r/info/refs?service=git-upload-pack\" (token tok123)";
        let redacted = redact_text(text, &["tok123"]);
        assert!(!redacted.contains("tok123"), "{redacted}");
        assert!(
            redacted.contains("https://***@h/r/info/refs?***"),
            "{redacted}"
        );
        assert_eq!(redact_text("no urls here", &[]), "no urls here");
        // Short "secrets" are not masked (they would mangle ordinary words).
        assert_eq!(redact_text("a b c", &["a"]), "a b c");
    }

    #[test]
    fn credentials_are_split_off_http_urls() {
        assert_eq!(
            split_credentials("https://x-access-token:ghs%2Fx@github.com/o/r.git"),
            SplitUrl {
                url: "https://github.com/o/r.git".into(),
                user: Some("x-access-token".into()),
                password: Some("ghs/x".into()),
            }
        );
        assert_eq!(
            split_credentials("https://ghp_tok@github.com/o/r"),
            SplitUrl {
                url: "https://github.com/o/r".into(),
                user: Some("x-access-token".into()),
                password: Some("ghp_tok".into()),
            }
        );
        let ssh = split_credentials("ssh://git@host/r");
        assert_eq!(ssh.url, "ssh://git@host/r");
        assert_eq!(ssh.password, None);
        let ssh = split_credentials("ssh://git:pw@host:22/r");
        assert_eq!(ssh.url, "ssh://git@host:22/r");
        assert_eq!(ssh.password, None);
        let plain = split_credentials("https://host/r");
        assert_eq!(plain.user, None);
    }
}
