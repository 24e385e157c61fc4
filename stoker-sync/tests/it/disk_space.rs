//! Issue 15 item 5: a sync that does not fit in the live file system's free space is refused
//! before anything is written, and a file system that fills up part way through an apply says
//! which files are already at the new revision; the next sync converges.

use crate::common::*;
use stoker_sync::{ApplyOptions, Error};

/// Ten files of 8 KiB each (one of them replacing an older version), one file that stays.
fn repo_and_live() -> (Repo, tempfile::TempDir) {
    let repo = Repo::new();
    for i in 0..10 {
        repo.file(&format!("data/f{i}.bin"), vec![b'a' + i as u8; 8192]);
    }
    let live = tempfile::tempdir().unwrap();
    write(live.path(), "data/f0.bin", "old version");
    (repo, live)
}

#[test]
fn a_sync_that_does_not_fit_is_refused_and_writes_nothing() {
    let (repo, live) = repo_and_live();
    let request = request(repo.artifact("r1"), vec![dir("data", "data")], live.path());
    let before = snapshot_live(live.path());
    let options = ApplyOptions {
        assume_free_bytes: Some(64 << 10),
        ..ApplyOptions::default()
    };
    let error = sync_with(options, &request).unwrap_err();
    let Error::InsufficientSpace {
        live: path,
        needed,
        available,
    } = &error
    else {
        panic!("{error}");
    };
    assert_eq!(path, live.path());
    assert_eq!(*available, 64 << 10);
    // Ten files of two 4 KiB blocks each, at least, plus the margin.
    assert!(*needed > 10 * 8192 + (1 << 20), "{needed}");
    let message = error.to_string();
    assert!(
        message.contains("not enough free space") && message.contains("nothing was written"),
        "{message}"
    );
    assert_eq!(snapshot_live(live.path()), before);
    assert!(!live.path().join(".stoker/journal.json").exists());
    assert!(!live.path().join(".stoker/manifest.bin").exists());
    assert!(temporaries(live.path()).is_empty());

    // A dry run does not check (it writes nothing), and with room the same sync goes through.
    assert_eq!(dry_run(&request).unwrap().added.len(), 9);
    let options = ApplyOptions {
        assume_free_bytes: Some(*needed),
        ..ApplyOptions::default()
    };
    let report = sync_with(options, &request).unwrap();
    assert_eq!((report.added.len(), report.modified.len()), (9, 1));
}

#[test]
fn a_disk_filling_up_mid_apply_names_the_files_already_written_and_the_next_sync_converges() {
    let (repo, live) = repo_and_live();
    let request = request(repo.artifact("r1"), vec![dir("data", "data")], live.path());
    let options = ApplyOptions {
        // The check passes (someone else fills the disk after it): room for four files.
        assume_free_bytes: Some(u64::MAX),
        disk_full_after_bytes: Some(4 * 8192),
        io_threads: 1,
        ..ApplyOptions::default()
    };
    let error = sync_with(options, &request).unwrap_err();
    let Error::DiskFull {
        live: path,
        revision,
        planned,
        applied_count,
        applied,
        source,
    } = &error
    else {
        panic!("{error}");
    };
    assert_eq!(path, live.path());
    assert_eq!(revision, "r1");
    assert_eq!((*planned, *applied_count), (10, 4));
    assert_eq!(applied.len(), 4);
    assert!(source.is_disk_full(), "{source}");
    let message = error.to_string();
    assert!(
        message.contains("4 of 10 file(s) to write are already at revision r1")
            && message.contains(&applied[0])
            && message.contains("the next sync converges"),
        "{message}"
    );
    // Every file is old or new, never partial; the listed ones are new.
    let tree = snapshot_live(live.path());
    for i in 0..10 {
        let path = format!("data/f{i}.bin");
        let new = vec![b'a' + i as u8; 8192];
        match tree.get(&path) {
            Some(node) if node.bytes() == new.as_slice() => assert!(applied.contains(&path)),
            Some(node) => {
                assert_eq!(node.bytes(), b"old version");
                assert!(!applied.contains(&path));
            }
            None => assert!(!applied.contains(&path), "{path}"),
        }
    }
    // The failed write's temporary and the old files the others swapped out are gone.
    assert!(temporaries(live.path()).is_empty());
    assert!(live.path().join(".stoker/journal.json").exists());

    // Room again: the next sync finishes the job.
    let report = sync(&request).unwrap();
    assert_eq!(report.added.len() + report.modified.len(), 6, "{report:?}");
    for i in 0..10 {
        assert_eq!(
            std::fs::read(live.path().join(format!("data/f{i}.bin"))).unwrap(),
            vec![b'a' + i as u8; 8192]
        );
    }
    assert!(temporaries(live.path()).is_empty());
    let again = sync(&request).unwrap();
    assert!(again.added.is_empty() && again.modified.is_empty() && again.deleted.is_empty());
}

/// A real file system that is full: a 1 MiB tmpfs (needs root and `mount`; skipped, with a
/// note, where the test environment does not allow it).
#[test]
fn a_real_small_file_system_is_refused_then_fills_up_and_converges_after_growing() {
    let Some(mount) = Tmpfs::mount("1m") else {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    };
    let repo = Repo::new();
    for i in 0..6 {
        repo.file(&format!("data/f{i}.bin"), vec![b'a' + i as u8; 256 << 10]);
    }
    let live = mount.dir.path().join("live");
    let request = request(repo.artifact("r1"), vec![dir("data", "data")], &live);

    // 1.5 MiB of files and the margin do not fit in 1 MiB: refused by the real statvfs.
    let error = sync(&request).unwrap_err();
    assert!(matches!(error, Error::InsufficientSpace { .. }), "{error}");
    assert!(snapshot_live(&live).is_empty());

    // Past the check, the kernel says ENOSPC part way.
    let options = ApplyOptions {
        assume_free_bytes: Some(u64::MAX),
        ..ApplyOptions::default()
    };
    let error = sync_with(options, &request).unwrap_err();
    let Error::DiskFull {
        applied_count,
        planned,
        ..
    } = &error
    else {
        panic!("{error}");
    };
    assert_eq!(*planned, 6);
    assert!(*applied_count < 6, "{error}");

    // Grown to 8 MiB, the next sync converges.
    mount.resize("8m");
    sync(&request).unwrap();
    for i in 0..6 {
        assert_eq!(
            std::fs::read(live.join(format!("data/f{i}.bin"))).unwrap(),
            vec![b'a' + i as u8; 256 << 10]
        );
    }
    assert!(temporaries(&live).is_empty());
}

/// Runs `command` to its end, spawned while no sync holds a lock (see `common::fork`).
fn run(command: &mut std::process::Command) -> std::io::Result<std::process::ExitStatus> {
    spawn(command)?.wait()
}

/// A tmpfs mounted on a temporary directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let status = run(std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null()))
        .ok()?;
        status.success().then_some(Tmpfs { dir })
    }

    fn resize(&self, size: &str) {
        let status = run(std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.dir.path()))
        .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = run(std::process::Command::new("umount").arg(self.dir.path()));
    }
}
