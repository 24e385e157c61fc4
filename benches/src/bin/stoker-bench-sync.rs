//! `stoker-bench-sync SOURCE LIVE [--revision ID] [--breakdown]`
//!
//! Runs `MergeStrategy::sync` once with a `LocalSource` over `SOURCE` into `LIVE` (one `dir`
//! mapping `.` → `.`), and prints one line of `key=value` pairs on stdout:
//! `total=<s> plan=<s> apply=<s> added=… modified=… deleted=… unchanged=… bytes=…`.
//!
//! With `--breakdown` it first times the read-only phases of planning one by one (listing the
//! source, computing the desired set, loading the manifest, scanning live) and prints them on a
//! second line (`list=… desired=… manifest=… scan=…`); `plan` minus their sum is the per-file
//! comparison. The extra work warms the page cache, so use it for a breakdown, not for the
//! A/B timing.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use stoker_core::{SyncStrategy, TemplateContext};
use stoker_sync::{MergeStrategy, desired, live, manifest};

struct Args {
    source: PathBuf,
    live: PathBuf,
    revision: String,
    breakdown: bool,
}

fn parse() -> Result<Args, String> {
    let mut positional = Vec::new();
    let mut revision = None;
    let mut breakdown = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--revision" => revision = Some(args.next().ok_or("--revision needs a value")?),
            "--breakdown" => breakdown = true,
            "-h" | "--help" => return Err(String::new()),
            flag if flag.starts_with("--") => return Err(format!("unknown flag {flag}")),
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    let [source, live] = <[PathBuf; 2]>::try_from(positional)
        .map_err(|_| "expected exactly two arguments: SOURCE LIVE".to_owned())?;
    let revision = revision.unwrap_or_else(|| source.display().to_string());
    Ok(Args {
        source,
        live,
        revision,
        breakdown,
    })
}

fn breakdown(args: &Args) -> Result<String, Box<dyn std::error::Error>> {
    let request = stoker_benches::request(&args.source, &args.revision, &args.live);
    let started = Instant::now();
    let listing = request.artifact.list()?;
    let list = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let set = desired::desired_set(&listing, &request.profile, &TemplateContext::default())?;
    let desired = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let (loaded, _) = manifest::load(&args.live);
    let manifest = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let tree = live::scan(&args.live, &set.scope)?;
    let scan = started.elapsed().as_secs_f64();

    Ok(format!(
        "list={list:.4} desired={desired:.4} manifest={manifest:.4} scan={scan:.4} files={} live_entries={} manifest_entries={}",
        set.files.len(),
        tree.entries.len(),
        loaded.map_or(0, |m| m.files.len()),
    ))
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("stoker-bench-sync: {message}");
            }
            eprintln!("usage: stoker-bench-sync SOURCE LIVE [--revision ID] [--breakdown]");
            return ExitCode::from(2);
        }
    };
    let phases = if args.breakdown {
        match breakdown(&args) {
            Ok(line) => Some(line),
            Err(error) => {
                eprintln!("stoker-bench-sync: breakdown: {error}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };

    let engine = MergeStrategy::default();
    let request = stoker_benches::request(&args.source, &args.revision, &args.live);
    let started = Instant::now();
    let plan = match engine.plan(&request) {
        Ok(plan) => plan,
        Err(error) => {
            eprintln!("stoker-bench-sync: plan: {error}");
            return ExitCode::FAILURE;
        }
    };
    let planned = started.elapsed().as_secs_f64();
    let applying = Instant::now();
    let report = match engine.apply(plan) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("stoker-bench-sync: apply: {error}");
            return ExitCode::FAILURE;
        }
    };
    let applied = applying.elapsed().as_secs_f64();
    let total = started.elapsed().as_secs_f64();
    println!(
        "total={total:.4} plan={planned:.4} apply={applied:.4} added={} modified={} deleted={} unchanged={} bytes={} warnings={}",
        report.added.len(),
        report.modified.len(),
        report.deleted.len(),
        report.unchanged,
        report.bytes_written,
        report.warnings.len(),
    );
    if let Some(line) = phases {
        println!("{line}");
    }
    ExitCode::SUCCESS
}
