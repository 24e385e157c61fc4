//! Printing a `SyncReport` for people (text) and programs (JSON).

use std::io::Write;
use std::path::Path;

use stoker_core::SyncReport;

use crate::gateway::GatewayOutcome;

/// How many changed paths the text output lists before summarising the rest.
pub const MAX_LISTED: usize = 50;

/// A short summary, then the changed paths (`+` added, `~` modified, `-` deleted), then
/// warnings.
pub fn write_text(out: &mut dyn Write, report: &SyncReport, dest: &Path) -> std::io::Result<()> {
    let verb = if report.dry_run {
        "would sync"
    } else {
        "synced"
    };
    writeln!(
        out,
        "{verb} {} (profile {}) into {} in {:.2}s",
        report.revision,
        report.profile,
        dest.display(),
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
        writeln!(out, "  projects: {}", report.projects.join(", "))?;
    }
    let mut lines: Vec<(&str, char)> = Vec::with_capacity(report.changed());
    lines.extend(report.added.iter().map(|c| (c.path.as_str(), '+')));
    lines.extend(report.modified.iter().map(|c| (c.path.as_str(), '~')));
    lines.extend(report.deleted.iter().map(|c| (c.path.as_str(), '-')));
    lines.sort();
    for (path, mark) in lines.iter().take(MAX_LISTED) {
        writeln!(out, "  {mark} {path}")?;
    }
    if lines.len() > MAX_LISTED {
        writeln!(
            out,
            "  … and {} more (use --output json for the full list)",
            lines.len() - MAX_LISTED
        )?;
    }
    for warning in &report.warnings {
        writeln!(out, "  warning: {warning}")?;
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
            sessions.join("; ")
        )?;
    }
    if let Some(scan) = &gateway.scan {
        writeln!(out, "  gateway: rescan requested ({scan})")?;
    } else if let Some(error) = &gateway.scan_error {
        writeln!(out, "  gateway: rescan FAILED: {error}")?;
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
    fn human_bytes_uses_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
    }
}
