//! Printing a `SyncReport` for people (text) and programs (JSON).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use stoker_core::SyncReport;

use crate::gateway::GatewayOutcome;

/// How many changed paths the text output lists before summarising the rest.
pub const MAX_LISTED: usize = 50;

/// `text` safe to print on one line of text output: backslashes and control characters are
/// escaped as in Rust string literals (`\\`, `\n`, `\t`, `\r`, `\u{1b}`), and so are the
/// Unicode bidirectional controls that reorder what a terminal shows. A file named
/// `a\n+ forged` cannot forge a line of the report. Borrowed when nothing needs escaping.
///
/// ```
/// use stoker_agent::output::escape;
/// assert_eq!(escape("projects/a b/view.json"), "projects/a b/view.json");
/// assert_eq!(escape("a\n+ forged"), "a\\n+ forged");
/// assert_eq!(escape("C:\\x\u{1b}[31m"), "C:\\\\x\\u{1b}[31m");
/// ```
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c == '\\'
        || c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// [`escape`] for a path.
fn escape_path(path: &Path) -> String {
    escape(&path.to_string_lossy()).into_owned()
}

/// A short summary, then the changed paths (`+` added, `~` modified, `-` deleted), then
/// warnings. Paths, project names and warnings are [`escape`]d. `source` is the `--source`
/// directory, if the files came from one: the revision is then a fingerprint of its listing,
/// not a commit, and is shown as such.
pub fn write_text(
    out: &mut dyn Write,
    report: &SyncReport,
    dest: &Path,
    source: Option<&Path>,
) -> std::io::Result<()> {
    let verb = if report.dry_run {
        "would sync"
    } else {
        "synced"
    };
    let what = match source {
        Some(source) => format!(
            "directory {} (fingerprint {}, not a commit)",
            escape_path(source),
            report.revision.short_id()
        ),
        None => escape(&report.revision.to_string()).into_owned(),
    };
    writeln!(
        out,
        "{verb} {what} (profile {}) into {} in {:.2}s",
        escape(&report.profile),
        escape_path(dest),
        report.duration.as_secs_f64()
    )?;
    writeln!(
        out,
        "  {} added, {} modified, {} deleted, {} unchanged, {} written",
        report.added.len(),
        report.modified.len(),
        report.deleted.len(),
        report.unchanged,
        human_bytes(report.bytes_written)
    )?;
    if !report.projects.is_empty() {
        let projects: Vec<Cow<'_, str>> = report.projects.iter().map(|p| escape(p)).collect();
        writeln!(out, "  projects: {}", projects.join(", "))?;
    }
    let mut lines: Vec<(&str, char)> = Vec::with_capacity(report.changed());
    lines.extend(report.added.iter().map(|c| (c.path.as_str(), '+')));
    lines.extend(report.modified.iter().map(|c| (c.path.as_str(), '~')));
    lines.extend(report.deleted.iter().map(|c| (c.path.as_str(), '-')));
    lines.sort();
    for (path, mark) in lines.iter().take(MAX_LISTED) {
        writeln!(out, "  {mark} {}", escape(path))?;
    }
    if lines.len() > MAX_LISTED {
        writeln!(
            out,
            "  … and {} more (use --output json for the full list)",
            lines.len() - MAX_LISTED
        )?;
    }
    for warning in &report.warnings {
        writeln!(out, "  warning: {}", escape(warning))?;
    }
    Ok(())
}

/// What the sync asked the gateway: Designer sessions seen, the rescan or why it failed.
pub fn write_gateway_text(
    out: &mut dyn Write,
    gateway: &GatewayOutcome,
    report: &SyncReport,
) -> std::io::Result<()> {
    if let Some(sessions) = gateway.designer_sessions.as_ref().filter(|s| !s.is_empty()) {
        writeln!(
            out,
            "  gateway: {} Designer session(s) open: {}",
            sessions.len(),
            escape(&sessions.join("; "))
        )?;
    }
    if let Some(why) = &gateway.unreachable {
        if gateway.rescan_owed {
            writeln!(
                out,
                "  gateway: not answering, not asked to rescan: RESCAN OWED ({})",
                escape(why)
            )?;
        } else {
            writeln!(
                out,
                "  gateway: not answering; no rescan needed (nothing changed) ({})",
                escape(why)
            )?;
        }
    } else if let Some(scan) = &gateway.scan {
        writeln!(out, "  gateway: rescan requested ({scan})")?;
    } else if let Some(error) = &gateway.scan_error {
        writeln!(out, "  gateway: rescan FAILED: {}", escape(error))?;
    } else if report.dry_run {
        writeln!(out, "  gateway: no rescan (dry run)")?;
    } else if report.changed() == 0 {
        writeln!(out, "  gateway: no rescan needed (nothing changed)")?;
    }
    Ok(())
}

/// The report as pretty JSON; with a gateway, its outcome under the key `gateway`.
pub fn write_json(
    out: &mut dyn Write,
    report: &SyncReport,
    gateway: Option<&GatewayOutcome>,
) -> std::io::Result<()> {
    match gateway {
        None => serde_json::to_writer_pretty(&mut *out, report)?,
        Some(gateway) => {
            let mut value = serde_json::to_value(report)?;
            if let serde_json::Value::Object(map) = &mut value {
                map.insert("gateway".to_owned(), serde_json::to_value(gateway)?);
            }
            serde_json::to_writer_pretty(&mut *out, &value)?;
        }
    }
    writeln!(out)
}

/// `1536` → `1.5 KiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_leaves_ordinary_text_alone_and_escapes_the_rest() {
        assert!(matches!(escape("projects/é ü/v.json"), Cow::Borrowed(_)));
        assert_eq!(escape("a\n+ forged"), "a\\n+ forged");
        assert_eq!(escape("a\r\tb"), "a\\r\\tb");
        assert_eq!(escape("back\\slash"), "back\\\\slash");
        assert_eq!(escape("\u{1b}[2J\u{7f}\u{85}"), "\\u{1b}[2J\\u{7f}\\u{85}");
        assert_eq!(escape("abc\u{202e}fdp.exe"), "abc\\u{202e}fdp.exe");
    }

    #[test]
    fn text_output_cannot_be_forged_by_a_path() {
        let report = SyncReport {
            revision: stoker_core::Revision::new("0123456789abcdef"),
            profile: "default".into(),
            dry_run: false,
            added: vec![stoker_core::FileChange {
                path: "p/x\n  - important.json".into(),
                content_id: None,
                previous_content_id: None,
            }],
            modified: Vec::new(),
            deleted: Vec::new(),
            unchanged: 0,
            bytes_written: 2,
            warnings: vec!["skipped symlink p/\u{1b}]0;title\u{7}".into()],
            duration: std::time::Duration::ZERO,
            projects: Vec::new(),
        };
        let mut out = Vec::new();
        write_text(&mut out, &report, Path::new("/data\nx"), None).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(text.contains("into /data\\nx in"), "{text}");
        assert!(text.contains("  + p/x\\n  - important.json\n"), "{text}");
        assert!(
            text.contains("warning: skipped symlink p/\\u{1b}]0;title\\u{7}"),
            "{text}"
        );
    }

    #[test]
    fn human_bytes_uses_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
    }
}
