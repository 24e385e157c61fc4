//! `stoker-bench-sync SOURCE LIVE [--revision ID] [--known-ids] [--id-cache FILE] [--breakdown]`
//!
//! Runs `MergeStrategy::sync` once with a `LocalSource` over `SOURCE` into `LIVE` (one `dir`
//! mapping `.` → `.`), and prints one line of `key=value` pairs on stdout:
//! `total=<s> plan=<s> apply=<s> added=… modified=… deleted=… unchanged=… bytes=…`.
//!
//! `--known-ids` hashes every source file *before* the clock starts and hands the engine a
//! listing with content ids, as a Git source would (blob ids are free there).
//!
//! `--id-cache FILE` gives the `LocalSource` a content-id cache (as `stoker-agent sync --source`
//! has by default): ids the engine computed are remembered, keyed by `lstat`.
//!
//! `--breakdown` first times, one by one and read-only, what planning and applying are made of,
//! and prints them on a second line:
//! - `list`, `desired`, `manifest`, `scan`: the phases of `plan` before the per-file comparison
//!   (`plan` minus their sum is the comparison); `scan` is a full scan (every directory
//!   listed), `scan_guided` the one `plan` does, guided by the manifest's directory records
//!   (`dirs_listed` directories listed; both scans must agree);
//! - `list_scan_parallel`: listing and scanning on two threads at once;
//! - `hash_seq`, `hash_2t`: reading and hashing every source file on one and on two threads
//!   (what the comparison does when the source has no content ids);
//! - `mkdirs_engine`, `mkdirs_once`: creating the desired directories in a scratch directory
//!   next to `LIVE`, the engine's way (`fsops::create_dirs` per file directory, which `lstat`s
//!   every ancestor each time) and with each directory created once, parents first. The
//!   scratch directories (`LIVE.scratch-*`) are left for the caller to remove.
//!
//! The extra work warms the page cache: use it for a breakdown, not for A/B timing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use stoker_core::{
    Artifact, ContentId, LocalSource, Revision, SyncStrategy, TemplateContext, relpath,
};
use stoker_sync::fsops::{self, Steps};
use stoker_sync::{MergeStrategy, desired, live, manifest};

type Failure = Box<dyn std::error::Error>;

struct Args {
    source: PathBuf,
    live: PathBuf,
    revision: String,
    breakdown: bool,
    known_ids: bool,
    id_cache: Option<PathBuf>,
}

fn parse() -> Result<Args, String> {
    let mut positional = Vec::new();
    let mut revision = None;
    let mut breakdown = false;
    let mut known_ids = false;
    let mut id_cache = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--revision" => revision = Some(args.next().ok_or("--revision needs a value")?),
            "--breakdown" => breakdown = true,
            "--known-ids" => known_ids = true,
            "--id-cache" => {
                id_cache = Some(PathBuf::from(args.next().ok_or("--id-cache needs a file")?))
            }
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
        known_ids,
        id_cache,
    })
}

fn seconds<T>(work: impl FnOnce() -> T) -> (T, f64) {
    let started = Instant::now();
    let value = work();
    (value, started.elapsed().as_secs_f64())
}

fn hash_all(artifact: &dyn Artifact, paths: &[String]) -> Result<(), stoker_core::Error> {
    for path in paths {
        std::hint::black_box(ContentId::of_blob(&artifact.read(path)?));
    }
    Ok(())
}

/// Every directory the desired files need, ancestors included.
fn all_dirs(file_dirs: &BTreeSet<String>) -> BTreeSet<String> {
    let mut dirs = BTreeSet::new();
    for dir in file_dirs {
        let mut current = Some(dir.as_str());
        while let Some(path) = current.filter(|p| !p.is_empty()) {
            if !dirs.insert(path.to_owned()) {
                break;
            }
            current = relpath::parent(path);
        }
    }
    dirs
}

fn scratch(live: &Path, suffix: &str) -> Result<PathBuf, Failure> {
    let mut name = live
        .file_name()
        .ok_or("LIVE has no file name")?
        .to_os_string();
    // Never reused (deleting a big tree right before creating one skews the timing on ext4).
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    name.push(format!(".scratch-{suffix}-{}-{nanos}", std::process::id()));
    let dir = live.with_file_name(name);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn breakdown(args: &Args) -> Result<String, Failure> {
    let artifact = LocalSource::new(&args.source).artifact(Revision::new(args.revision.as_str()));
    let (listing, list) = seconds(|| artifact.list());
    let listing = listing?;
    let profile = stoker_benches::whole_tree_profile();
    // Engine errors become strings inside the timed closures (they are large values).
    let (set, desired) = seconds(|| {
        desired::desired_set(&listing, &profile, &TemplateContext::default())
            .map_err(|e| e.to_string())
    });
    let set = set?;
    let ((loaded, _), manifest) = seconds(|| manifest::load(&args.live));
    let (tree, scan) = seconds(|| live::scan(&args.live, &set.scope).map_err(|e| e.to_string()));
    let tree = tree?;
    let written = manifest::written_at(&args.live);
    let ((guided, dirs_listed), scan_guided) = seconds(|| {
        let guide = loaded
            .as_ref()
            .zip(written)
            .map(|(m, written)| live::Guide {
                dirs: &m.dirs,
                written,
            });
        match live::scan_guided(&args.live, &set.scope, guide) {
            Ok(scan) => (Ok(scan.tree), scan.listed),
            Err(e) => (Err(e.to_string()), 0),
        }
    });
    if guided? != tree {
        return Err("the guided scan differs from the full scan".into());
    }

    let fresh = LocalSource::new(&args.source).artifact(Revision::new(args.revision.as_str()));
    let (joined, list_scan_parallel) = seconds(|| {
        std::thread::scope(|scope| {
            let listing = scope.spawn(|| fresh.list().map(drop).map_err(|e| e.to_string()));
            let scanned = live::scan(&args.live, &set.scope)
                .map(drop)
                .map_err(|e| e.to_string());
            let listed = listing
                .join()
                .unwrap_or_else(|_| Err("listing panicked".into()));
            listed.and(scanned)
        })
    });
    joined?;

    let paths: Vec<String> = set.files.values().map(|f| f.source.clone()).collect();
    let (hashed, hash_seq) = seconds(|| hash_all(&artifact, &paths));
    hashed?;
    let (half_a, half_b) = paths.split_at(paths.len() / 2);
    let (hashed, hash_2t) = seconds(|| {
        std::thread::scope(|scope| {
            let other = scope.spawn(|| hash_all(&artifact, half_b).map_err(|e| e.to_string()));
            let mine = hash_all(&artifact, half_a).map_err(|e| e.to_string());
            mine.and(
                other
                    .join()
                    .unwrap_or_else(|_| Err("hashing panicked".into())),
            )
        })
    });
    hashed?;

    let file_dirs: BTreeSet<String> = set
        .files
        .keys()
        .map(|p| relpath::parent(p).unwrap_or("").to_owned())
        .collect();
    let engine_dir = scratch(&args.live, "mkdir-engine")?;
    let steps = Steps::default();
    let (made, mkdirs_engine) = seconds(|| {
        for dir in &file_dirs {
            fsops::create_dirs(&engine_dir, dir, &steps).map_err(|e| e.to_string())?;
        }
        Ok::<(), String>(())
    });
    made?;
    let once_dir = scratch(&args.live, "mkdir-once")?;
    let dirs = all_dirs(&file_dirs);
    let (made, mkdirs_once) = seconds(|| {
        // Sorted, so every parent comes before its children: one `mkdir` per directory.
        dirs.iter()
            .try_for_each(|dir| std::fs::create_dir(once_dir.join(dir)))
    });
    made?;

    Ok(format!(
        "list={list:.4} desired={desired:.4} manifest={manifest:.4} scan={scan:.4} \
         scan_guided={scan_guided:.4} dirs_listed={dirs_listed} \
         list_scan_parallel={list_scan_parallel:.4} hash_seq={hash_seq:.4} hash_2t={hash_2t:.4} \
         mkdirs_engine={mkdirs_engine:.4} mkdirs_once={mkdirs_once:.4} \
         files={} file_dirs={} dirs={} live_entries={} manifest_entries={}",
        set.files.len(),
        file_dirs.len(),
        dirs.len(),
        tree.entries.len(),
        loaded.map_or(0, |m| m.files.len()),
    ))
}

fn run(args: &Args) -> Result<(), Failure> {
    let phases = if args.breakdown {
        Some(breakdown(args)?)
    } else {
        None
    };
    let artifact: Arc<dyn Artifact> = if args.known_ids {
        Arc::new(stoker_benches::KnownIds::new(&args.source, &args.revision)?)
    } else {
        let mut source = LocalSource::new(&args.source);
        if let Some(file) = &args.id_cache {
            source = source.with_id_cache(file);
        }
        Arc::new(source.artifact(Revision::new(args.revision.as_str())))
    };
    let request = stoker_benches::request_from(artifact, &args.live);

    let engine = MergeStrategy::default();
    let started = Instant::now();
    let plan = engine.plan(&request).map_err(|e| format!("plan: {e}"))?;
    let planned = started.elapsed().as_secs_f64();
    let applying = Instant::now();
    let report = engine.apply(plan).map_err(|e| format!("apply: {e}"))?;
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
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("stoker-bench-sync: {message}");
            }
            eprintln!(
                "usage: stoker-bench-sync SOURCE LIVE [--revision ID] [--known-ids] [--breakdown]"
            );
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("stoker-bench-sync: {error}");
            ExitCode::FAILURE
        }
    }
}
