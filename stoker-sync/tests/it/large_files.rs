//! Issue 15 item 4: large files stream (read, hashed and written in chunks) and sparse files
//! stay sparse. Memory is measured in `benches/` (`large-file-rss.sh`), not asserted here.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::common::*;
use stoker_core::content_id::BlobHasher;
use stoker_sync::Error;

const MIB: u64 = 1 << 20;

/// A sparse file of `len` bytes with a few regions of data (pseudo-random, so no chunk of them
/// is all zeros): at the start, in the middle, and just before the end.
fn sparse_file(path: &Path, len: u64, seed: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut file = std::fs::File::create(path).unwrap();
    file.set_len(len).unwrap();
    for (offset, size) in [(0, 4096), (len / 2 + 12_345, 300 << 10), (len - 1000, 1000)] {
        let data: Vec<u8> = (0..size)
            .map(|i| ((i as u64 * 2_654_435_761 + offset) >> 7) as u8 ^ seed | 1)
            .collect();
        file.seek(SeekFrom::Start(offset)).unwrap();
        file.write_all(&data).unwrap();
    }
}

/// The Git blob id of a file, hashed here in 1 MiB chunks.
fn blob_id(path: &Path) -> stoker_core::ContentId {
    let mut file = std::fs::File::open(path).unwrap();
    let mut hasher = BlobHasher::new(file.metadata().unwrap().len());
    let mut buffer = vec![0u8; MIB as usize];
    loop {
        let read = file.read(&mut buffer).unwrap();
        if read == 0 {
            return hasher.finish();
        }
        hasher.update(&buffer[..read]);
    }
}

/// The two files have the same bytes (compared in 1 MiB chunks).
fn same_bytes(a: &Path, b: &Path) -> bool {
    let (mut a, mut b) = (
        std::io::BufReader::with_capacity(MIB as usize, std::fs::File::open(a).unwrap()),
        std::io::BufReader::with_capacity(MIB as usize, std::fs::File::open(b).unwrap()),
    );
    let (mut x, mut y) = (vec![0u8; MIB as usize], vec![0u8; MIB as usize]);
    loop {
        let read = a.read(&mut x).unwrap();
        if read == 0 {
            return b.read(&mut y).unwrap() == 0;
        }
        if b.read_exact(&mut y[..read]).is_err() || x[..read] != y[..read] {
            return false;
        }
    }
}

/// Bytes the file system allocated for the file.
fn allocated(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().blocks() * 512
}

#[test]
fn a_large_sparse_file_is_synced_in_chunks_and_stays_sparse() {
    const LEN: u64 = 256 * MIB;
    let repo = Repo::new();
    let source = repo.path().join("modules/big.modl");
    sparse_file(&source, LEN, 0);
    assert!(
        allocated(&source) < 4 * MIB,
        "the file system makes sparse files"
    );
    let live = tempfile::tempdir().unwrap();
    let target = live.path().join("modules/big.modl");

    let request = request(repo.artifact("r1"), vec![dir(".", ".")], live.path());
    let report = sync(&request).unwrap();
    assert_eq!(report.added.len(), 1);
    assert_eq!(report.added[0].content_id, Some(blob_id(&source)));
    assert_eq!(report.bytes_written, LEN);
    assert_eq!(std::fs::metadata(&target).unwrap().len(), LEN);
    assert!(same_bytes(&source, &target));
    let used = allocated(&target);
    assert!(used < 4 * MIB, "the holes are kept: {used} bytes allocated");

    // The manifest vouches for it next time: nothing is read or written.
    let again = sync(&request).unwrap();
    assert!(again.added.is_empty() && again.modified.is_empty());

    // Changed in the middle: replaced (by the swap), still sparse, hashed on the way.
    sparse_file(&source, LEN, 0x55);
    let request = request_at(&repo, "r2", live.path());
    let report = sync(&request).unwrap();
    assert_eq!(report.modified.len(), 1);
    assert_eq!(report.modified[0].content_id, Some(blob_id(&source)));
    assert!(same_bytes(&source, &target));
    assert!(allocated(&target) < 4 * MIB);
    assert!(temporaries(live.path()).is_empty());
}

fn request_at(repo: &Repo, revision: &str, live: &Path) -> stoker_core::SyncRequest {
    request(repo.artifact(revision), vec![dir(".", ".")], live)
}

#[test]
fn a_transformed_file_beyond_the_limit_is_refused_naming_it() {
    let repo = Repo::new();
    repo.file("config/small.json", r#"{"a": 1}"#);
    sparse_file(&repo.path().join("config/huge.json"), 65 * MIB, 0);
    let live = tempfile::tempdir().unwrap();
    let mut mapping = dir("config", "config");
    mapping.template = true;
    let error = sync(&request(repo.artifact("r1"), vec![mapping], live.path())).unwrap_err();
    let Error::TooLargeToTransform {
        path,
        source_path,
        size,
        limit,
        ..
    } = &error
    else {
        panic!("{error}");
    };
    assert_eq!(
        (path.as_str(), source_path.as_str()),
        ("config/huge.json", "config/huge.json")
    );
    assert_eq!((*size, *limit), (65 * MIB, 64 * MIB));
    assert!(error.to_string().contains("config/huge.json"), "{error}");
    assert!(snapshot_live(live.path()).is_empty());
}
