//! The hand-written pack layer reads what gix reads: on generated repositories (random nested
//! trees, blobs that are versions of one another so that git stores deltas, several commits),
//! packed by `git repack -adf`, every object read through `git::testing::PackReader` (whole,
//! through the reader a sync uses, and its size) has gix's type and bytes. The same objects sent
//! as a server sends them (`git pack-objects --stdout`, with offset deltas or deltas against
//! ids) and indexed by the first fetch's indexer read back the same, and its index lists every
//! object.
//!
//! Needs the `testing` feature (`cargo test -p stoker-core --features testing --test
//! git_pack_gix`; `hack/test.sh` runs it).
#![cfg(feature = "testing")]
#![allow(clippy::unwrap_used)]

// Shared with the `it` binary's Git tests.
#[path = "it/git_support/mod.rs"]
mod git_support;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use git_support::{git, git_command};
use proptest::prelude::*;
use stoker_core::git::testing::{PackReader, receive};

/// One file written in a commit: which path, and how its content differs from a shared body.
#[derive(Clone, Debug)]
struct Write1 {
    path: u8,
    body_lines: u16,
    edit_at: u16,
    edit: Vec<u8>,
}

fn write_strategy() -> impl Strategy<Value = Write1> {
    (
        0u8..12,
        0u16..250,
        any::<u16>(),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(path, body_lines, edit_at, edit)| Write1 {
            path,
            body_lines,
            edit_at,
            edit,
        })
}

/// Paths at several depths, sharing directories.
fn path_of(path: u8) -> String {
    match path % 4 {
        0 => format!("f{path}.txt"),
        1 => format!("a/f{path}.conf"),
        2 => format!("a/b/f{path}.json"),
        _ => format!("c/d/e/f{path}.bin"),
    }
}

/// A shared body with `edit` spliced in: versions of a file are deltas of each other.
fn content_of(write: &Write1) -> Vec<u8> {
    let mut body = Vec::new();
    for line in 0..write.body_lines {
        body.extend_from_slice(
            format!("line {line} of a gateway resource, same in every version\n").as_bytes(),
        );
    }
    let at = usize::from(write.edit_at) % (body.len() + 1);
    body.splice(at..at, write.edit.iter().copied());
    body
}

/// A repository in `work` with one commit per element of `commits`, all of it in one pack.
fn generate(work: &Path, commits: &[Vec<Write1>]) {
    std::fs::create_dir_all(work).unwrap();
    git(work, &["init", "-q"]);
    for (number, writes) in commits.iter().enumerate() {
        for write in writes {
            let path = work.join(path_of(write.path));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, content_of(write)).unwrap();
        }
        // A commit that removes one file now and then, so trees shrink too.
        if number % 3 == 2 {
            let gone = work.join(path_of(writes.first().map_or(0, |w| w.path)));
            let _ = std::fs::remove_file(gone);
        }
        git(work, &["add", "-A"]);
        git(
            work,
            &[
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                &format!("commit {number}"),
            ],
        );
    }
    git(work, &["repack", "-adfq", "--depth=8", "--window=20"]);
}

/// Every object of the repository at `git_dir`, by `git cat-file`.
fn all_objects(git_dir: &Path) -> Vec<gix::ObjectId> {
    git(
        git_dir,
        &[
            "cat-file",
            "--batch-all-objects",
            "--batch-check=%(objectname)",
        ],
    )
    .lines()
    .map(|line| gix::ObjectId::from_hex(line.as_bytes()).unwrap())
    .collect()
}

/// How many entries of the packs in `pack_dir` are deltas (`git verify-pack -v`).
fn deltas_in(pack_dir: &Path) -> usize {
    let mut deltas = 0;
    for entry in std::fs::read_dir(pack_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "idx") {
            let listing = git(pack_dir, &["verify-pack", "-v", path.to_str().unwrap()]);
            // A delta's line has its chain depth and its base after the offset.
            deltas += listing
                .lines()
                .filter(|line| line.split_whitespace().count() == 7)
                .count();
        }
    }
    deltas
}

fn type_number(kind: gix::object::Kind) -> u8 {
    match kind {
        gix::object::Kind::Commit => 1,
        gix::object::Kind::Tree => 2,
        gix::object::Kind::Blob => 3,
        gix::object::Kind::Tag => 4,
    }
}

/// Every object of `ids` reads through `reader` as gix reads it from `repo`.
fn same_as_gix(reader: &PackReader, repo: &gix::Repository, ids: &[gix::ObjectId]) {
    for id in ids {
        let expected = repo.find_object(*id).unwrap();
        let want = Some((type_number(expected.kind), expected.data.clone()));
        let key: [u8; 20] = id.as_bytes().try_into().unwrap();
        assert_eq!(reader.read(key).unwrap(), want, "read {id}");
        assert_eq!(reader.read_opened(key).unwrap(), want, "opened {id}");
        assert_eq!(
            reader.size(key).unwrap(),
            Some(expected.data.len() as u64),
            "size {id}"
        );
    }
}

/// The pack a server sends for every object of `work`'s repository.
fn server_pack(work: &Path, offset_deltas: bool) -> Vec<u8> {
    let objects = git(work, &["rev-list", "--objects", "--all"]);
    let mut args = vec!["pack-objects", "--stdout", "-q", "--depth=8"];
    if offset_deltas {
        args.push("--delta-base-offset");
    }
    let mut child = git_command(work)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(objects.as_bytes()).unwrap());
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(output.status.success(), "git pack-objects failed");
    output.stdout
}

fn commits() -> impl Strategy<Value = Vec<Vec<Write1>>> {
    prop::collection::vec(prop::collection::vec(write_strategy(), 1..8), 2..6)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// A repacked repository reads the same through the pack reader as through gix.
    #[test]
    fn the_pack_reader_reads_what_gix_reads(commits in commits()) {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        generate(&work, &commits);
        let git_dir = work.join(".git");
        let repo = gix::open_opts(&git_dir, gix::open::Options::isolated()).unwrap();
        let ids = all_objects(&git_dir);
        let reader = PackReader::open(&git_dir).unwrap();
        same_as_gix(&reader, &repo, &ids);
        // Bodies of 60+ lines recur across commits: git stores some as deltas.
        if commits.iter().flatten().filter(|w| w.body_lines > 60).count() > 2 {
            prop_assert!(deltas_in(&git_dir.join("objects/pack")) > 0);
        }
    }

    /// What a server sends, indexed by the first fetch's indexer, reads the same as gix reads
    /// the repository it came from, with offset deltas and with deltas against ids.
    #[test]
    fn the_indexer_indexes_what_gix_reads(commits in commits(), buffer in 256usize..70_000) {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        generate(&work, &commits);
        let repo = gix::open_opts(work.join(".git"), gix::open::Options::isolated()).unwrap();
        let ids = all_objects(&work.join(".git"));
        for offset_deltas in [true, false] {
            let fetched = dir.path().join(format!("fetched-{offset_deltas}"));
            let pack_dir = fetched.join("objects/pack");
            std::fs::create_dir_all(&pack_dir).unwrap();
            let stream = server_pack(&work, offset_deltas);
            let (_, objects) = receive(&stream, buffer, &pack_dir).unwrap();
            prop_assert_eq!(objects as usize, ids.len());
            let reader = PackReader::open(&fetched).unwrap();
            same_as_gix(&reader, &repo, &ids);
        }
    }
}

/// This process's peak virtual memory (`VmPeak`), in bytes: what it ever reserved, touched or
/// not.
fn peak_virtual() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmPeak:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib << 10
}

/// A one-entry pack of a blob whose header records `declared` bytes, over `data` deflated.
fn lying_pack(declared: u64, data: &[u8]) -> Vec<u8> {
    let mut pack = b"PACK\0\0\0\x02\0\0\0\x01".to_vec();
    // Type 3 (blob) and the size's low four bits, then seven bits a byte.
    let mut byte = (3u8 << 4) | (declared & 0x0f) as u8;
    let mut rest = declared >> 4;
    while rest != 0 {
        pack.push(byte | 0x80);
        byte = (rest & 0x7f) as u8;
        rest >>= 7;
    }
    pack.push(byte);
    pack.extend_from_slice(&stoker_core::git::testing::deflate(data));
    // The trailing checksum: neither reader below gets as far as checking it.
    pack.extend_from_slice(&[7; 20]);
    pack
}

/// A pack entry whose header records 4 GiB (the largest object the layer decodes) over 4.5 MiB
/// of incompressible data (so zlib's 1032:1 bound does not rule it out) fails as damage, in the
/// cache's reader (whole and streamed) and in the first fetch's indexer, and the process never
/// reserves the recorded size: buffers grow with the inflated data.
#[test]
fn a_pack_recording_a_huge_object_fails_without_allocating_it() {
    let declared: u64 = 4 << 30;
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let data: Vec<u8> = (0..(9 << 19) / 8)
        .flat_map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()
        })
        .collect();
    let pack = lying_pack(declared, &data);
    let dir = tempfile::tempdir().unwrap();
    let pack_dir = dir.path().join("objects/pack");
    std::fs::create_dir_all(&pack_dir).unwrap();
    let id = [1u8; 20];
    std::fs::write(pack_dir.join("pack-1.pack"), &pack).unwrap();
    std::fs::write(
        pack_dir.join("pack-1.idx"),
        stoker_core::git::testing::encode_index(&[(id, 0, 12)], [7; 20]),
    )
    .unwrap();

    let before = peak_virtual();
    let reader = PackReader::open(dir.path()).unwrap();
    assert_eq!(reader.size(id).unwrap(), Some(declared));
    let whole = reader.read(id).unwrap_err();
    assert!(whole.contains("inflates to fewer bytes"), "{whole}");
    let streamed = reader.read_opened(id).unwrap_err();
    assert!(streamed.contains(&format!("{}", data.len())), "{streamed}");
    let fetched = dir.path().join("fetched");
    std::fs::create_dir_all(&fetched).unwrap();
    let failure = receive(&pack, 64 << 10, &fetched).unwrap_err();
    assert!(failure.corrupted, "{}", failure.message);
    let grown = peak_virtual().saturating_sub(before);
    assert!(grown < 1 << 30, "peak virtual memory grew by {grown} bytes");
}
