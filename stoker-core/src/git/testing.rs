//! The hand-written pack layer, reachable from outside the crate for the fuzz targets
//! (`fuzz/`), the property tests and the memory measurement ([`use_gix_path`]) only (feature
//! `testing`). Not API: nothing here is stable, and it never appears in a release build of the
//! binaries.
//!
//! Objects and ids cross this boundary as plain bytes (a pack's type number, a 20-byte SHA-1)
//! so that the fuzz crate needs no gix of its own.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::index_pack;
use super::pack::{Kind, Opened, Packs};

/// Set by [`use_gix_path`]: read at the two places where Stoker's pack layer stands in for gix's.
static GIX_PATH: AtomicBool = AtomicBool::new(false);

/// A measurement switch for the whole process (benches/memory-limit.sh): with `true`, the first
/// fetch into an empty cache goes through gix's own `prepare_fetch(..).receive(..)` (gix's
/// indexer) and trees and blobs are read through gix's object database (its memory-mapped
/// packs) instead of the hand-written pack layer. Set it before the first fetch; `false` (the
/// default) is the production path.
pub fn use_gix_path(on: bool) {
    GIX_PATH.store(on, Ordering::Relaxed);
}

/// Whether [`use_gix_path`] turned the hand-written pack layer off.
pub(crate) fn gix_path() -> bool {
    GIX_PATH.load(Ordering::Relaxed)
}

/// Applies the git delta `delta` to `base` ([`super::pack`]'s decoder).
pub fn apply_delta(base: &[u8], delta: &[u8]) -> Result<Vec<u8>, String> {
    super::pack::apply_delta(base, delta)
}

/// `data` as one zlib stream (what a pack entry's data is).
pub fn deflate(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut out =
        gix::zlib::stream::deflate::Write::new(Vec::new(), gix::zlib::Compression::BEST_SPEED);
    // Writing to a Vec cannot fail.
    let _ = out.write_all(data);
    let _ = out.flush();
    out.into_inner()
}

/// A version 2 pack index listing `objects` (id, CRC-32, offset) for the pack whose checksum
/// is `checksum`: the bytes [`super::index_pack`] writes.
pub fn encode_index(objects: &[([u8; 20], u32, u64)], checksum: [u8; 20]) -> Vec<u8> {
    let entries: Vec<index_pack::Entry> = objects
        .iter()
        .map(|(id, crc32, offset)| index_pack::Entry::whole(id_of(*id), *crc32, *offset))
        .collect();
    // Every entry has an id, so encoding cannot fail.
    index_pack::encode_index(&entries, &id_of(checksum)).unwrap_or_default()
}

/// Receives the pack `stream` (read `buffer` bytes at a time) into the empty directory
/// `pack_dir`, as the first fetch does: the pack's path and its object count, or the error
/// (`{:#}`), and whether it is a corruption error.
pub fn receive(stream: &[u8], buffer: usize, pack_dir: &Path) -> Result<(PathBuf, u32), Failure> {
    let mut input = BufReader::with_capacity(buffer.max(1), stream);
    index_pack::receive(
        &mut input,
        pack_dir,
        &mut gix::progress::Discard,
        &AtomicBool::new(false),
    )
    .map(|received| (received.pack, received.objects))
    .map_err(|error| Failure {
        corrupted: error.is_corrupted(),
        message: format!("{error:#}"),
    })
}

/// Why [`receive`] failed.
#[derive(Debug)]
pub struct Failure {
    /// The pack was found damaged (rather than an I/O failure).
    pub corrupted: bool,
    /// The error and its causes.
    pub message: String,
}

/// The packs of a repository, read with the hand-written reader ([`super::pack::Packs`]).
#[derive(Debug)]
pub struct PackReader(Packs);

/// An object read: its pack type number (1 commit, 2 tree, 3 blob, 4 tag) and its bytes.
pub type Object = (u8, Vec<u8>);

impl PackReader {
    /// Opens every pack of the repository at `git_dir`.
    pub fn open(git_dir: &Path) -> Result<PackReader, String> {
        Packs::open(git_dir).map(PackReader)
    }

    /// Object `id`, decoded whole: `Ok(None)` when no pack has it.
    pub fn read(&self, id: [u8; 20]) -> Result<Option<Object>, String> {
        Ok(self
            .0
            .read(&id_of(id))?
            .map(|(kind, data)| (type_number(kind), data)))
    }

    /// Object `id` through the reader a sync uses (streamed when large and stored whole).
    pub fn read_opened(&self, id: [u8; 20]) -> Result<Option<Object>, String> {
        match self.0.open_object(&id_of(id))? {
            None => Ok(None),
            Some(Opened::Whole(kind, data)) => Ok(Some((type_number(kind), data))),
            Some(Opened::Stream(kind, mut reader)) => {
                let mut data = Vec::new();
                reader
                    .read_to_end(&mut data)
                    .map_err(|error| error.to_string())?;
                Ok(Some((type_number(kind), data)))
            }
        }
    }

    /// The inflated size of object `id`: `Ok(None)` when no pack has it.
    pub fn size(&self, id: [u8; 20]) -> Result<Option<u64>, String> {
        self.0.size(&id_of(id))
    }
}

fn id_of(bytes: [u8; 20]) -> gix::ObjectId {
    gix::ObjectId::Sha1(bytes)
}

fn type_number(kind: Kind) -> u8 {
    match kind {
        Kind::Commit => 1,
        Kind::Tree => 2,
        Kind::Blob => 3,
        Kind::Tag => 4,
    }
}
