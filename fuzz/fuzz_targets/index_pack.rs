//! The indexer of the first fetch (`stoker-core/src/git/index_pack.rs`) on what a server may
//! send: arbitrary bytes, or a pack built from a description (see `pack_model`) with a right
//! trailer, read through buffers of any size.
//!
//! Never panics, never leaves a file behind on failure. On an intact pack: when every entry
//! decodes (by the harness's own decoder) the receive succeeds, and the pack and index it
//! writes give back every object; when an entry is damaged it fails as corruption.
#![no_main]

mod pack_model;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use pack_model::{Description, Expect, build};
use stoker_core::git::testing::{PackReader, receive};

#[derive(Arbitrary, Debug)]
enum Input {
    Raw { bytes: Vec<u8>, buffer: u16 },
    Pack { description: Description, buffer: u16 },
}

fuzz_target!(|input: Input| {
    let dir = tempfile::Builder::new()
        .prefix("stoker-fuzz-index_pack-")
        .tempdir_in("/dev/shm")
        .expect("a temporary directory in /dev/shm");
    let pack_dir = dir.path().join("objects/pack");
    std::fs::create_dir_all(&pack_dir).expect("objects/pack");
    match input {
        Input::Raw { bytes, buffer } => {
            if receive(&bytes, usize::from(buffer), &pack_dir).is_err() {
                assert_empty(&pack_dir);
            }
        }
        Input::Pack {
            description,
            buffer,
        } => {
            let Some(built) = build(&description) else {
                return;
            };
            let received = receive(&built.bytes, usize::from(buffer), &pack_dir);
            if received.is_err() {
                assert_empty(&pack_dir);
            }
            if !built.intact || built.entries.iter().any(|(_, _, e)| *e == Expect::Unknown) {
                return;
            }
            if built.entries.iter().any(|(_, _, e)| *e == Expect::Damaged) {
                let failure = received.expect_err("a pack with a damaged entry is refused");
                assert!(failure.corrupted, "{}", failure.message);
                return;
            }
            let (pack, objects) = match received {
                Ok(received) => received,
                Err(failure) => panic!("an intact pack is refused: {}", failure.message),
            };
            assert_eq!(objects as usize, built.entries.len());
            assert_eq!(std::fs::read(&pack).expect("the pack"), built.bytes);
            let reader = PackReader::open(dir.path()).expect("the received pack opens");
            for (offset, id, expect) in &built.entries {
                let Expect::Object(kind, data) = expect else {
                    unreachable!()
                };
                let read = reader.read(*id);
                assert_eq!(
                    read.as_ref().ok(),
                    Some(&Some((*kind, data.clone()))),
                    "entry at {offset}"
                );
            }
        }
    }
});

fn assert_empty(pack_dir: &std::path::Path) {
    let left: Vec<_> = std::fs::read_dir(pack_dir)
        .expect("listing objects/pack")
        .map(|entry| entry.expect("an entry").file_name())
        .collect();
    assert!(left.is_empty(), "a failed receive left {left:?}");
}
