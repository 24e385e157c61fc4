//! The pack reader of a sync (`stoker-core/src/git/pack.rs`): entry headers, zlib data, offset
//! and id deltas, delta chains, the base cache, streamed large objects.
//!
//! Two kinds of input. A delta and a base: `apply_delta` agrees with the harness's own decoder
//! (same bytes, or both refuse). A pack built from a description (see `pack_model`), written
//! with an index listing every entry: opening it and reading every entry (whole, through the
//! reader a sync uses, and its size) never panics; an entry the harness can decode reads back
//! as that object with that size, an entry it finds damaged is an error.
#![no_main]

mod pack_model;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use pack_model::{Data, Description, Expect, build, reference_apply};
use stoker_core::git::testing::{PackReader, apply_delta, encode_index};

#[derive(Arbitrary, Debug)]
enum Input {
    Delta { base: Data, delta: Vec<u8> },
    Pack(Description),
}

fuzz_target!(|input: Input| {
    match input {
        Input::Delta { base, delta } => {
            let base = match base {
                Data::Bytes(bytes) => bytes,
                Data::Repeat { byte, len } => vec![byte; (len % (1 << 20)) as usize],
            };
            let ours = apply_delta(&base, &delta).ok();
            assert_eq!(ours, reference_apply(&base, &delta), "delta {delta:?}");
        }
        Input::Pack(description) => read_pack(&description),
    }
});

fn read_pack(description: &Description) {
    let Some(built) = build(description) else {
        return;
    };
    let dir = tempfile::Builder::new()
        .prefix("stoker-fuzz-pack_read-")
        .tempdir_in("/dev/shm")
        .expect("a temporary directory in /dev/shm");
    let pack_dir = dir.path().join("objects/pack");
    std::fs::create_dir_all(&pack_dir).expect("objects/pack");
    let checksum: [u8; 20] = built.bytes[built.bytes.len() - 20..]
        .try_into()
        .expect("20 bytes");
    let listed: Vec<([u8; 20], u32, u64)> = built
        .entries
        .iter()
        .map(|(offset, id, _)| (*id, 0, *offset))
        .collect();
    std::fs::write(pack_dir.join("pack-fuzz.pack"), &built.bytes).expect("writing the pack");
    std::fs::write(pack_dir.join("pack-fuzz.idx"), encode_index(&listed, checksum))
        .expect("writing the index");
    let Ok(reader) = PackReader::open(dir.path()) else {
        // The header or the index does not match the pack: refused as a whole.
        return;
    };
    for (offset, id, expect) in &built.entries {
        let read = reader.read(*id);
        let opened = reader.read_opened(*id);
        let size = reader.size(*id);
        if !built.intact {
            continue;
        }
        match expect {
            Expect::Object(kind, data) => {
                let want = Some((*kind, data.clone()));
                assert_eq!(read.as_ref().ok(), Some(&want), "read at {offset}: {read:?}");
                assert_eq!(opened.as_ref().ok(), Some(&want), "opened at {offset}");
                assert_eq!(size, Ok(Some(data.len() as u64)), "size at {offset}");
            }
            Expect::Damaged => {
                assert!(read.is_err(), "damaged entry at {offset} read: {read:?}");
                assert!(opened.is_err(), "damaged entry at {offset} opened: {opened:?}");
            }
            Expect::Unknown => {}
        }
    }
}
