//! Resolves and fetches a Git reference with `GitSource`, then reads every blob, printing the
//! timings as one JSON line. Used to measure the Git source against `git clone --depth 1`:
//!
//! ```sh
//! cargo run --release -p stoker-core --features git --example git_fetch -- URL CACHE_DIR [REF [--fetch-only]]
//! ```
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use stoker_core::Artifact;
use stoker_core::git::{GitSource, GitSourceConfig};

/// This process's peak resident set (`VmHWM`), in KiB: without the `git-upload-pack` that a
/// `file://` fetch runs as a child.
fn peak_rss_kib() -> u64 {
    status_kib("VmHWM:")
}

/// A `/proc/self/status` field in KiB (`RssAnon:` is heap and stacks, `RssFile:` mapped files
/// such as pack files).
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(cache)) = (args.next(), args.next()) else {
        eprintln!("usage: git_fetch URL CACHE_DIR [REF]");
        std::process::exit(2);
    };
    let reference = args.next().unwrap_or_else(|| "HEAD".to_owned());
    // `--fetch-only`: stop after the fetch (to measure its peak memory alone).
    let fetch_only = args.next().is_some_and(|a| a == "--fetch-only");
    let source = GitSource::new(GitSourceConfig::new(url, cache))?;

    let started = Instant::now();
    let revision = source.resolve_blocking(&reference)?;
    let resolve_ms = started.elapsed().as_secs_f64() * 1e3;

    let started = Instant::now();
    let artifact = source.fetch_blocking(&revision)?;
    let fetch_ms = started.elapsed().as_secs_f64() * 1e3;

    if fetch_only {
        println!(
            "{{\"commit\":\"{}\",\"resolve_ms\":{resolve_ms:.1},\"fetch_ms\":{fetch_ms:.1},\"peak_rss_kib\":{},\"rss_anon_kib\":{},\"rss_file_kib\":{}}}",
            revision.id,
            peak_rss_kib(),
            status_kib("RssAnon:"),
            status_kib("RssFile:")
        );
        return Ok(());
    }

    let started = Instant::now();
    let listing = artifact.list()?;
    let list_ms = started.elapsed().as_secs_f64() * 1e3;

    // Read every regular file from two threads, as the engine's rayon pool would.
    let started = Instant::now();
    let files: Vec<_> = listing
        .entries
        .iter()
        .filter(|e| e.kind.is_regular())
        .collect();
    let bytes: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|worker| {
                let artifact = &artifact;
                let files = &files;
                scope.spawn(move || {
                    files
                        .iter()
                        .skip(worker)
                        .step_by(2)
                        .map(|entry| artifact.read(&entry.path).unwrap().len() as u64)
                        .sum::<u64>()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    let read_ms = started.elapsed().as_secs_f64() * 1e3;

    println!(
        "{{\"commit\":\"{}\",\"resolve_ms\":{resolve_ms:.1},\"fetch_ms\":{fetch_ms:.1},\"list_ms\":{list_ms:.1},\"read_all_ms\":{read_ms:.1},\"files\":{},\"bytes\":{bytes},\"peak_rss_kib\":{}}}",
        revision.id,
        files.len(),
        peak_rss_kib()
    );
    Ok(())
}
