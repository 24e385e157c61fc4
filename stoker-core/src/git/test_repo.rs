//! Test fixtures shared by the pack reader's and the pack indexer's tests: a repository whose
//! history git deltifies, built with git itself.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs git in `dir` with `input` on stdin (isolated from the user's configuration); its
/// stdout. Panics, naming the command, when git fails or is missing.
pub(crate) fn git(dir: &Path, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("git {args:?} does not start (is git installed?): {error}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "git {args:?} failed");
    output.stdout
}

/// A repository in `work` with several commits of similar files (git deltifies them into
/// chains) and an empty file.
pub(crate) fn deltified_history(work: &Path) {
    std::fs::create_dir_all(work).unwrap();
    git(work, &["init", "-q"], b"");
    let mut text = String::new();
    for round in 0..6 {
        for line in 0..400 {
            text.push_str(&format!("line {line} of round {round}: some shared text\n"));
        }
        for file in 0..5 {
            std::fs::write(work.join(format!("f{file}.txt")), format!("{file}\n{text}")).unwrap();
        }
        std::fs::write(work.join("empty"), "").unwrap();
        git(work, &["add", "-A"], b"");
        git(
            work,
            &["commit", "-q", "-m", &format!("round {round}")],
            b"",
        );
    }
}

/// A pack stream (header, entries, trailing SHA-1) of a 8-byte blob and `chain` offset deltas,
/// each against the one before (each object is its level as 8 digits), then, when `id_tail`,
/// a delta against the last one's id. What a hostile server can send in a few hundred KB.
pub(crate) fn chain_pack(chain: u32, id_tail: bool) -> Vec<u8> {
    let count = 1 + chain + u32::from(id_tail);
    let mut pack = b"PACK\0\0\0\x02".to_vec();
    pack.extend_from_slice(&count.to_be_bytes());
    let level = |n: u32| format!("{n:08}").into_bytes();
    // type blob, size 8
    pack.push((3 << 4) | 8);
    pack.extend_from_slice(&deflated(&level(0)));
    // base size 8, result size 8, insert 8 bytes
    let delta = |n: u32| [&[8u8, 8, 8][..], &level(n)].concat();
    let mut previous = 12u64;
    for n in 1..=chain {
        let offset = pack.len() as u64;
        pack.push((6 << 4) | 11);
        let mut distance = offset - previous;
        let mut encoded = vec![(distance & 0x7f) as u8];
        distance >>= 7;
        while distance != 0 {
            distance -= 1;
            encoded.push(0x80 | (distance & 0x7f) as u8);
            distance >>= 7;
        }
        encoded.reverse();
        pack.extend_from_slice(&encoded);
        pack.extend_from_slice(&deflated(&delta(n)));
        previous = offset;
    }
    if id_tail {
        let base = gix::objs::compute_hash(
            gix::hash::Kind::Sha1,
            gix::object::Kind::Blob,
            &level(chain),
        )
        .unwrap();
        pack.push((7 << 4) | 11);
        pack.extend_from_slice(base.as_bytes());
        pack.extend_from_slice(&deflated(&delta(chain + 1)));
    }
    let mut hasher = gix::hash::hasher(gix::hash::Kind::Sha1);
    hasher.update(&pack);
    pack.extend_from_slice(hasher.try_finalize().unwrap().as_bytes());
    pack
}

/// `data` as one zlib stream.
pub(crate) fn deflated(data: &[u8]) -> Vec<u8> {
    let mut out =
        gix::zlib::stream::deflate::Write::new(Vec::new(), gix::zlib::Compression::BEST_SPEED);
    out.write_all(data).unwrap();
    out.flush().unwrap();
    out.into_inner()
}

/// Runs `f` on a thread with a 256 KiB stack (a recursion per delta would overflow it).
pub(crate) fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}
