//! Receiving the pack of the first fetch into an empty cache, and writing its index, with
//! positioned reads: `git index-pack`, done the way git does it.
//!
//! Why not gix: `gix_pack::Bundle::write_to_directory` maps the received pack whole to hash its
//! objects and resolve its deltas, and its resolver can only hand out slices of that map. Every
//! page stays resident until the map goes: for the 20k-file benchmark repository that is 68 MB
//! charged to the agent at the end of the fetch, its peak. Here the pack streams to a file while
//! each entry is inflated once (to find where it ends, to hash the objects that are not deltas,
//! and to take its CRC-32); deltas are then resolved from their bases with `pread`, each base
//! read once, its deltas applied while it is in hand (git's order). Nothing holds more than a
//! delta chain's objects at a time.
//!
//! Only the first fetch into an empty cache comes here (the caller decides). Later fetches are
//! small, and may be thin: the server sends deltas against objects the cache already has, and
//! gix completes such packs with those objects. A delta whose base is not in the pack is refused
//! here, as damage.
//!
//! The index written is version 2 (`Documentation/gitformat-pack.txt`): the same bytes as
//! `git index-pack` writes for the same pack (checked in the tests).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use gix::ObjectId;
use gix::error::{ResultExt, corruption, message};
use gix::odb::pack::data::entry::Header;
use gix::{Count, DynNestedProgress, Progress};

use super::pack::{Kind, PackFile, apply_delta};

/// Names of this module's temporary files in `objects/pack` (what a killed fetch leaves there
/// is removed when the cache is next opened: `cache::open_or_init`).
const TEMPORARY_PREFIX: &str = "tmp_stoker_";

/// Most objects a pack may declare: its entries are kept in memory (about 60 bytes each).
const MAX_OBJECTS: u32 = 100_000_000;

/// A pack received and indexed, under its final name.
#[derive(Debug)]
pub(crate) struct Received {
    /// The `.pack` file (its `.idx` is beside it).
    pub(crate) pack: PathBuf,
    /// How many objects it holds.
    pub(crate) objects: u32,
}

/// One pack entry, as the stream showed it.
pub(crate) struct Entry {
    offset: u64,
    crc32: u32,
    /// The object's id: known from the stream for whole objects, after resolution for deltas.
    id: Option<ObjectId>,
    base: Base,
}

impl Entry {
    /// A whole object's entry (for the fuzz targets' index encoder).
    #[cfg(feature = "testing")]
    pub(crate) fn whole(id: ObjectId, crc32: u32, offset: u64) -> Entry {
        Entry {
            offset,
            crc32,
            id: Some(id),
            base: Base::Whole(Kind::Blob),
        }
    }
}

/// What an entry needs before its object is known.
#[derive(Clone, Copy)]
enum Base {
    /// Nothing: a whole object.
    Whole(Kind),
    /// The entry at this offset of the same pack.
    Offset(u64),
    /// The object with this id.
    Id(ObjectId),
}

/// Reads the pack `input` carries to its end, writes it and its index into `pack_dir` (the
/// cache's `objects/pack`), and returns where. On any error nothing is left in `pack_dir`.
pub(crate) fn receive(
    input: &mut dyn BufRead,
    pack_dir: &Path,
    progress: &mut dyn DynNestedProgress,
    cancel: &AtomicBool,
) -> gix::Result<Received> {
    let temporary = tempfile::Builder::new()
        .prefix(TEMPORARY_PREFIX)
        .suffix(".pack")
        .tempfile_in(pack_dir)
        .or_raise(|| message!("creating a pack file in {}", pack_dir.display()))?;
    let streamed = stream(input, temporary.as_file(), progress, cancel)?;
    let mut entries = streamed.entries;

    let mut bounds: Vec<u64> = entries.iter().map(|entry| entry.offset).collect();
    bounds.push(streamed.trailer_at);
    let data = temporary
        .reopen()
        .or_raise(|| message!("reopening {}", temporary.path().display()))?;
    let pack = PackFile::new(data, temporary.path().to_path_buf(), bounds);
    resolve_deltas(&mut entries, &pack, progress, cancel)?;
    let index = encode_index(&entries, &streamed.checksum)?;

    let name = format!("pack-{}", streamed.checksum);
    let pack_path = pack_dir.join(format!("{name}.pack"));
    let index_path = pack_dir.join(format!("{name}.idx"));
    let mut index_file = tempfile::Builder::new()
        .prefix(TEMPORARY_PREFIX)
        .suffix(".idx")
        .tempfile_in(pack_dir)
        .or_raise(|| message!("creating an index file in {}", pack_dir.display()))?;
    index_file
        .write_all(&index)
        .or_raise(|| message!("writing {}", index_file.path().display()))?;
    // The pack first: an index makes its pack visible, so it goes last.
    temporary
        .persist(&pack_path)
        .map_err(|error| error.error)
        .or_raise(|| message!("moving the pack to {}", pack_path.display()))?;
    index_file
        .persist(&index_path)
        .map_err(|error| error.error)
        .or_raise(|| message!("moving the index to {}", index_path.display()))?;
    Ok(Received {
        pack: pack_path,
        objects: u32::try_from(entries.len()).unwrap_or(u32::MAX),
    })
}

/// What the stream pass learned.
struct Streamed {
    entries: Vec<Entry>,
    /// Where the trailing checksum starts.
    trailer_at: u64,
    /// The pack's checksum (its trailer, verified).
    checksum: ObjectId,
}

/// The input, copied to the pack file as it is read, with the pack's running checksum and the
/// current entry's CRC-32.
struct Recorder<'a> {
    input: &'a mut dyn BufRead,
    output: BufWriter<&'a File>,
    checksum: gix::hash::Hasher,
    crc32: crc32fast::Hasher,
    offset: u64,
    /// Reading the input or writing the pack failed (the network or the disk, not the pack's
    /// content).
    io_failed: bool,
}

impl Recorder<'_> {
    /// Takes `len` bytes from the front of the input's buffer.
    fn take(&mut self, len: usize) -> std::io::Result<()> {
        let buffer = self.input.fill_buf()?;
        let taken = &buffer[..len];
        self.output.write_all(taken)?;
        self.checksum.update(taken);
        self.crc32.update(taken);
        self.offset += len as u64;
        self.input.consume(len);
        Ok(())
    }

    /// Inflates the zlib stream at the front of the input, which must inflate to exactly
    /// `size` bytes, handing the inflated bytes to `sink`.
    fn inflate(
        &mut self,
        inflate: &mut gix::zlib::Inflate,
        scratch: &mut [u8],
        size: u64,
        mut sink: impl FnMut(&[u8]),
    ) -> gix::Result<()> {
        let start = self.offset;
        inflate.reset();
        let mut produced = 0u64;
        loop {
            let buffer = self
                .input
                .fill_buf()
                .or_raise(|| message!("receiving the entry at {start}"))?;
            if buffer.is_empty() {
                return Err(corrupt(format!(
                    "the pack ends inside the entry at {start}"
                )));
            }
            let (status, read, written) = inflate
                .prefix(buffer, scratch)
                .or_raise(|| corruption(format!("inflating the entry at {start}")))?;
            produced += written as u64;
            if produced > size {
                return Err(corrupt(format!(
                    "the entry at {start} inflates to more than the {size} bytes its header says"
                )));
            }
            sink(&scratch[..written]);
            self.take(read)
                .or_raise(|| message!("writing the entry at {start}"))?;
            match status {
                gix::zlib::Status::StreamEnd => break,
                _ if read == 0 && written == 0 => {
                    return Err(corrupt(format!(
                        "the entry at {start} does not inflate (zlib makes no progress)"
                    )));
                }
                _ => {}
            }
        }
        if produced != size {
            return Err(corrupt(format!(
                "the entry at {start} inflates to {produced} bytes, its header says {size}"
            )));
        }
        Ok(())
    }
}

impl Read for Recorder<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let buffer = self
            .input
            .fill_buf()
            .inspect_err(|_| self.io_failed = true)?;
        let len = buffer.len().min(out.len());
        out[..len].copy_from_slice(&buffer[..len]);
        self.take(len).inspect_err(|_| self.io_failed = true)?;
        Ok(len)
    }
}

/// The first pass: the pack is copied to `file`, every entry inflated once, whole objects
/// hashed, the trailing checksum verified.
#[allow(clippy::too_many_lines)] // one pass over the stream, its cases in order
fn stream(
    input: &mut dyn BufRead,
    file: &File,
    progress: &mut dyn DynNestedProgress,
    cancel: &AtomicBool,
) -> gix::Result<Streamed> {
    let mut recorder = Recorder {
        input,
        output: BufWriter::with_capacity(256 << 10, file),
        checksum: gix::hash::hasher(gix::hash::Kind::Sha1),
        crc32: crc32fast::Hasher::new(),
        offset: 0,
        io_failed: false,
    };
    let mut header = [0u8; 12];
    recorder
        .read_exact(&mut header)
        .or_raise(|| message("receiving the pack header"))?;
    let version = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    let count = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
    if &header[..4] != b"PACK" || !(version == 2 || version == 3) {
        return Err(corrupt("the server sent no version 2 or 3 pack".to_owned()));
    }
    if count > MAX_OBJECTS {
        return Err(corrupt(format!(
            "the pack declares {count} objects, more than {MAX_OBJECTS}"
        )));
    }

    let mut objects = progress.add_child("receiving objects".into());
    objects.init(Some(count as usize), gix::progress::count("objects"));
    let mut received = progress.add_child("receiving".into());
    received.init(None, gix::progress::bytes());
    // The count is the server's word: entries are only reserved for as many as a modest pack
    // holds, and grow with what actually arrives.
    let mut entries = Vec::with_capacity(count.min(1 << 16) as usize);
    let mut inflate = gix::zlib::Inflate::default();
    let mut scratch = vec![0u8; 64 << 10];
    for _ in 0..count {
        if cancel.load(Ordering::Relaxed) {
            return Err(cancelled());
        }
        let offset = recorder.offset;
        recorder.crc32 = crc32fast::Hasher::new();
        let entry = match gix::odb::pack::data::Entry::from_read(&mut recorder, offset, 20) {
            Ok(entry) => entry,
            // A header that does not parse (an unknown type, a size that overflows, the pack
            // ending) is damage, as in the entry's data; a failed read is the network's.
            Err(error) if !recorder.io_failed => {
                return Err(corrupt(format!(
                    "the entry header at {offset} is damaged: {error}"
                )));
            }
            Err(error) => {
                return Err(error).or_raise(|| message!("receiving the entry header at {offset}"));
            }
        };
        let size = entry.decompressed_size;
        let (base, id) = match entry.header {
            Header::OfsDelta { base_distance } => {
                let base =
                    Header::verified_base_pack_offset(offset, base_distance).ok_or_else(|| {
                        corrupt(format!("the delta at {offset} points before the pack"))
                    })?;
                recorder.inflate(&mut inflate, &mut scratch, size, |_| {})?;
                (Base::Offset(base), None)
            }
            Header::RefDelta { base_id } => {
                recorder.inflate(&mut inflate, &mut scratch, size, |_| {})?;
                (Base::Id(base_id), None)
            }
            header => {
                let kind = header
                    .as_kind()
                    .ok_or_else(|| corrupt(format!("the entry at {offset} has no object kind")))?;
                let mut hasher = gix::hash::hasher(gix::hash::Kind::Sha1);
                hasher.update(&gix::objs::encode::loose_header(kind, size));
                recorder.inflate(&mut inflate, &mut scratch, size, |data| hasher.update(data))?;
                let id = hasher
                    .try_finalize()
                    .or_raise(|| corruption(format!("hashing the object at {offset}")))?;
                (Base::Whole(kind), Some(id))
            }
        };
        entries.push(Entry {
            offset,
            crc32: recorder.crc32.clone().finalize(),
            id,
            base,
        });
        objects.inc();
        received.set(recorder.offset as usize);
    }

    let trailer_at = recorder.offset;
    let expected = std::mem::replace(
        &mut recorder.checksum,
        gix::hash::hasher(gix::hash::Kind::Sha1),
    )
    .try_finalize()
    .or_raise(|| corruption("hashing the pack"))?;
    let mut trailer = [0u8; 20];
    recorder
        .read_exact(&mut trailer)
        .or_raise(|| message("receiving the pack's checksum"))?;
    let checksum = ObjectId::from_bytes_or_panic(&trailer);
    if checksum != expected {
        return Err(corrupt(format!(
            "the pack's checksum is {checksum}, its content hashes to {expected}"
        )));
    }
    recorder
        .output
        .flush()
        .or_raise(|| message("writing the pack"))?;
    Ok(Streamed {
        entries,
        trailer_at,
        checksum,
    })
}

/// The second pass: the ids of the deltas, git's way. Every delta hangs below its base: an
/// offset delta below the entry at its base offset, a delta against an id below whichever entry
/// turns out to have that id. From each whole object with deltas below it, the tree is walked
/// depth first, each delta inflated and applied once, with its base in hand.
fn resolve_deltas(
    entries: &mut [Entry],
    pack: &PackFile,
    progress: &mut dyn DynNestedProgress,
    cancel: &AtomicBool,
) -> gix::Result<()> {
    let deltas = entries.iter().filter(|entry| entry.id.is_none()).count();
    if deltas == 0 {
        return Ok(());
    }
    let mut resolved_deltas = progress.add_child("resolving deltas".into());
    resolved_deltas.init(Some(deltas), gix::progress::count("deltas"));

    // children[i]: the offset deltas against entry i; waiting: the deltas against an id.
    let mut children: Vec<Vec<u32>> = vec![Vec::new(); entries.len()];
    let mut waiting: HashMap<ObjectId, Vec<u32>> = HashMap::new();
    for (index, entry) in entries.iter().enumerate() {
        match entry.base {
            Base::Whole(_) => {}
            Base::Offset(base) => {
                let base_index = entries
                    .binary_search_by_key(&base, |entry| entry.offset)
                    .map_err(|_| {
                        corrupt(format!(
                            "the delta at {} points at {base}, where no entry starts",
                            entry.offset
                        ))
                    })?;
                children[base_index].push(index as u32);
            }
            Base::Id(id) => waiting.entry(id).or_default().push(index as u32),
        }
    }

    let mut walker = Walker {
        pack,
        inflate: gix::zlib::Inflate::default(),
        cancel,
        children,
        waiting,
    };
    for root in 0..entries.len() {
        let (Base::Whole(kind), Some(id)) = (entries[root].base, entries[root].id) else {
            continue;
        };
        let below = walker.below(root, id);
        if below.is_empty() {
            continue;
        }
        let data = walker.inflated(&entries[root])?;
        walker.apply_below(entries, kind, data, below, &resolved_deltas)?;
    }

    // What is still waiting is against an object that is not in the pack: a thin pack, which
    // an empty cache cannot complete.
    if let Some((base_id, waiting)) = walker.waiting.iter().next() {
        let offset = waiting
            .first()
            .map_or(0, |&child| entries[child as usize].offset);
        return Err(corrupt(format!(
            "the delta at {offset} is against {base_id}, which is not in the pack (a thin pack into an empty cache)"
        )));
    }
    if let Some(entry) = entries.iter().find(|entry| entry.id.is_none()) {
        return Err(corrupt(format!(
            "the delta at {} could not be resolved (its base is never reached)",
            entry.offset
        )));
    }
    Ok(())
}

/// Reads objects of the received pack and applies deltas.
struct Walker<'a> {
    pack: &'a PackFile,
    inflate: gix::zlib::Inflate,
    cancel: &'a AtomicBool,
    /// The offset deltas against each entry, taken when the entry is resolved.
    children: Vec<Vec<u32>>,
    /// The deltas against an id, taken when an entry with that id is resolved.
    waiting: HashMap<ObjectId, Vec<u32>>,
}

impl Walker<'_> {
    fn inflated(&mut self, entry: &Entry) -> gix::Result<Vec<u8>> {
        let (_, data) = self
            .pack
            .inflated(entry.offset, &mut self.inflate)
            .map_err(corrupt)?;
        Ok(data)
    }

    /// The deltas against entry `index`, whose object has id `id`: each is handed out once.
    fn below(&mut self, index: usize, id: ObjectId) -> Vec<u32> {
        let mut below = std::mem::take(&mut self.children[index]);
        if let Some(by_id) = self.waiting.remove(&id) {
            below.extend(by_id);
        }
        below
    }

    /// Applies the deltas `below` an object (`data`, of type `kind`), and theirs, depth first,
    /// one at a time: only the objects on the path down to the delta being applied are held,
    /// and a base goes as soon as its last delta is applied.
    fn apply_below(
        &mut self,
        entries: &mut [Entry],
        kind: Kind,
        data: Vec<u8>,
        below: Vec<u32>,
        progress: &dyn Count,
    ) -> gix::Result<()> {
        let mut path = vec![(data, below)];
        while let Some((base, pending)) = path.last_mut() {
            let Some(child) = pending.pop() else {
                path.pop();
                continue;
            };
            let (object, id) = self.resolve(entries, child, kind, base, progress)?;
            let base_done = pending.is_empty();
            let below = self.below(child as usize, id);
            if base_done {
                path.pop();
            }
            if !below.is_empty() {
                path.push((object, below));
            }
        }
        Ok(())
    }

    /// Rebuilds delta `child` from `base` and records its id; its object and id.
    fn resolve(
        &mut self,
        entries: &mut [Entry],
        child: u32,
        kind: Kind,
        base: &[u8],
        progress: &dyn Count,
    ) -> gix::Result<(Vec<u8>, ObjectId)> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(cancelled());
        }
        let delta = self.inflated(&entries[child as usize])?;
        let entry = &mut entries[child as usize];
        let object = apply_delta(base, &delta)
            .map_err(|error| corrupt(format!("the delta at {}: {error}", entry.offset)))?;
        let id = gix::objs::compute_hash(gix::hash::Kind::Sha1, kind, &object)
            .or_raise(|| corruption(format!("hashing the object at {}", entry.offset)))?;
        entry.id = Some(id);
        progress.inc();
        Ok((object, id))
    }
}

/// The version 2 index of `entries` (all resolved) for the pack whose checksum is `checksum`.
pub(crate) fn encode_index(entries: &[Entry], checksum: &ObjectId) -> gix::Result<Vec<u8>> {
    let mut sorted: Vec<(ObjectId, u32, u64)> = Vec::with_capacity(entries.len());
    for entry in entries {
        let id = entry
            .id
            .ok_or_else(|| corrupt(format!("the object at {} has no id", entry.offset)))?;
        sorted.push((id, entry.crc32, entry.offset));
    }
    sorted.sort_unstable_by_key(|(id, _, offset)| (*id, *offset));

    let mut out = Vec::with_capacity(8 + 256 * 4 + sorted.len() * 28 + 40);
    out.extend_from_slice(b"\xfftOc");
    out.extend_from_slice(&2u32.to_be_bytes());
    let mut below = 0usize;
    for first in 0..=255u8 {
        below += sorted[below..]
            .iter()
            .take_while(|(id, _, _)| id.as_bytes()[0] == first)
            .count();
        out.extend_from_slice(&(below as u32).to_be_bytes());
    }
    for (id, _, _) in &sorted {
        out.extend_from_slice(id.as_bytes());
    }
    for (_, crc32, _) in &sorted {
        out.extend_from_slice(&crc32.to_be_bytes());
    }
    // Offsets from 2^31 go to a table of 64-bit offsets, referred to with the high bit set.
    let mut large = Vec::new();
    for (_, _, offset) in &sorted {
        match u32::try_from(*offset) {
            Ok(small) if small < 0x8000_0000 => out.extend_from_slice(&small.to_be_bytes()),
            _ => {
                let position = 0x8000_0000 | large.len() as u32;
                out.extend_from_slice(&position.to_be_bytes());
                large.push(*offset);
            }
        }
    }
    for offset in large {
        out.extend_from_slice(&offset.to_be_bytes());
    }
    out.extend_from_slice(checksum.as_bytes());
    let mut hasher = gix::hash::hasher(gix::hash::Kind::Sha1);
    hasher.update(&out);
    let own = hasher
        .try_finalize()
        .or_raise(|| corruption("hashing the index"))?;
    out.extend_from_slice(own.as_bytes());
    Ok(out)
}

fn corrupt(text: String) -> gix::Error {
    gix::Exn::from(corruption(text)).into()
}

fn cancelled() -> gix::Error {
    gix::Exn::from(gix::error::cancelled("receiving the pack was cancelled")).into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::test_repo::{chain_pack, deltified_history, git, on_small_stack};
    use super::*;
    use std::io::BufReader;

    /// The pack of a deltified history as a server would send it: with offset deltas, or with
    /// deltas against ids.
    fn pack_stream(dir: &Path, offset_deltas: bool) -> Vec<u8> {
        let work = dir.join("work");
        deltified_history(&work);
        let objects = git(&work, &["rev-list", "--objects", "--all"], b"");
        let mut args = vec!["pack-objects", "--stdout", "-q"];
        if offset_deltas {
            args.push("--delta-base-offset");
        }
        git(&work, &args, &objects)
    }

    /// A temporary directory, a deltified pack with offset deltas, and an empty pack directory.
    fn pack_fixture() -> (tempfile::TempDir, Vec<u8>, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let stream = pack_stream(dir.path(), true);
        let pack_dir = dir.path().join("pack");
        std::fs::create_dir_all(&pack_dir).unwrap();
        (dir, stream, pack_dir)
    }

    fn receive_from(stream: &[u8], pack_dir: &Path, buffer: usize) -> gix::Result<Received> {
        let mut input = BufReader::with_capacity(buffer, stream);
        receive(
            &mut input,
            pack_dir,
            &mut gix::progress::Discard,
            &AtomicBool::new(false),
        )
    }

    /// The pack arrives in pieces of every size; what is written is the pack, and its index is
    /// byte for byte the one `git index-pack` writes.
    #[test]
    fn writes_the_index_git_writes() {
        for offset_deltas in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let stream = pack_stream(dir.path(), offset_deltas);
            let count = u32::from_be_bytes(stream[8..12].try_into().unwrap());
            for buffer in [7, 4096, 1 << 20] {
                let pack_dir = dir.path().join(format!("pack-{buffer}"));
                std::fs::create_dir_all(&pack_dir).unwrap();
                let received = receive_from(&stream, &pack_dir, buffer).unwrap();
                assert_eq!(received.objects, count);
                assert_eq!(std::fs::read(&received.pack).unwrap(), stream);

                let expected_index = pack_dir.join("by-git.idx");
                git(
                    dir.path(),
                    &[
                        "index-pack",
                        "-o",
                        expected_index.to_str().unwrap(),
                        received.pack.to_str().unwrap(),
                    ],
                    b"",
                );
                assert_eq!(
                    std::fs::read(received.pack.with_extension("idx")).unwrap(),
                    std::fs::read(&expected_index).unwrap(),
                    "offset deltas: {offset_deltas}, buffer {buffer}"
                );
                let names: Vec<_> = std::fs::read_dir(&pack_dir)
                    .unwrap()
                    .map(|entry| entry.unwrap().file_name().into_string().unwrap())
                    .filter(|name| name.starts_with(TEMPORARY_PREFIX))
                    .collect();
                assert!(names.is_empty(), "temporaries left: {names:?}");
            }
        }
    }

    /// A pack cut short, or with one byte changed, is refused as damaged and leaves nothing in
    /// the pack directory.
    #[test]
    fn a_damaged_pack_is_refused_and_leaves_nothing() {
        let (_dir, stream, pack_dir) = pack_fixture();

        let truncated = &stream[..stream.len() / 2];
        let error = receive_from(truncated, &pack_dir, 4096).unwrap_err();
        assert!(format!("{error:#}").contains("ends inside"), "{error:#}");

        let mut flipped = stream.clone();
        let at = flipped.len() - 100;
        flipped[at] ^= 0x40;
        let error = receive_from(&flipped, &pack_dir, 4096).unwrap_err();
        assert!(error.is_corrupted(), "{error:#}");

        let mut no_trailer = stream.clone();
        let last = no_trailer.len() - 1;
        no_trailer[last] ^= 1;
        let error = receive_from(&no_trailer, &pack_dir, 4096).unwrap_err();
        assert!(format!("{error:#}").contains("checksum"), "{error:#}");

        assert_eq!(std::fs::read_dir(&pack_dir).unwrap().count(), 0);
    }

    /// A raised cancellation flag stops the receive as cancelled (not as damage, which would be
    /// retried), and nothing is left in the pack directory.
    #[test]
    fn a_cancelled_receive_stops_and_leaves_nothing() {
        let (_dir, stream, pack_dir) = pack_fixture();
        let mut input = BufReader::new(stream.as_slice());
        let error = receive(
            &mut input,
            &pack_dir,
            &mut gix::progress::Discard,
            &AtomicBool::new(true),
        )
        .unwrap_err();
        assert!(error.is_cancelled(), "{error:#}");
        assert!(!error.is_corrupted(), "{error:#}");
        assert_eq!(std::fs::read_dir(&pack_dir).unwrap().count(), 0);
    }

    /// A delta against an object the pack does not hold (a thin pack) is refused by name.
    #[test]
    fn a_thin_pack_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        pack_stream(dir.path(), false);
        let head = String::from_utf8(git(&work, &["rev-parse", "HEAD"], b"")).unwrap();
        let thin = git(
            &work,
            &["pack-objects", "--stdout", "-q", "--revs", "--thin"],
            format!("{}\n^{}~1\n", head.trim(), head.trim()).as_bytes(),
        );
        let pack_dir = dir.path().join("pack");
        std::fs::create_dir_all(&pack_dir).unwrap();
        let error = receive_from(&thin, &pack_dir, 4096).unwrap_err();
        assert!(
            format!("{error:#}").contains("not in the pack"),
            "{error:#}"
        );
        assert_eq!(std::fs::read_dir(&pack_dir).unwrap().count(), 0);
    }

    /// A pack whose header declares 100 million objects and then ends is refused without
    /// reserving room for them first (found by the `index_pack` fuzz target).
    #[test]
    fn a_huge_declared_count_reserves_nothing_up_front() {
        let dir = tempfile::tempdir().unwrap();
        let mut stream = b"PACK\0\0\0\x02".to_vec();
        stream.extend_from_slice(&100_000_000u32.to_be_bytes());
        let error = receive_from(&stream, dir.path(), 4096).unwrap_err();
        assert!(
            format!("{error:#}").contains("entry header at 12"),
            "{error:#}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// An entry header of type 0 (or 5, reserved) is damage, like damaged entry data, not an
    /// I/O failure that would be retried (found by the `index_pack` fuzz target).
    #[test]
    fn an_unknown_entry_type_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        for kind in [0u8, 5] {
            let mut stream = b"PACK\0\0\0\x02\0\0\0\x01".to_vec();
            stream.push(kind << 4);
            stream.extend_from_slice(&[0; 20]);
            let error = receive_from(&stream, dir.path(), 4096).unwrap_err();
            assert!(error.is_corrupted(), "type {kind}: {error:#}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// A long chain of offset deltas with a delta against the id of its last object resolves,
    /// on a thread with a small stack: nothing recurses per delta.
    #[test]
    fn a_long_delta_chain_resolves_on_a_small_stack() {
        let dir = tempfile::tempdir().unwrap();
        let pack_dir = dir.path().to_path_buf();
        let stream = chain_pack(20_000, true);
        let received =
            on_small_stack(move || receive_from(&stream, &pack_dir, 1 << 16).map(|r| r.objects));
        assert_eq!(received.unwrap(), 20_002);
    }

    #[test]
    fn large_offsets_go_to_their_own_table() {
        let id = |byte: u8| ObjectId::from_bytes_or_panic(&[byte; 20]);
        let entry = |byte: u8, offset: u64| Entry {
            offset,
            crc32: u32::from(byte),
            id: Some(id(byte)),
            base: Base::Whole(Kind::Blob),
        };
        let entries = [entry(2, 12), entry(1, 5 << 30)];
        let index = encode_index(&entries, &id(9)).unwrap();
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &index).unwrap();
        let parsed = gix::odb::pack::index::File::at(file.path(), gix::hash::Kind::Sha1).unwrap();
        assert_eq!(parsed.num_objects(), 2);
        assert_eq!(parsed.pack_offset_at_index(0), 5 << 30);
        assert_eq!(parsed.pack_offset_at_index(1), 12);
        assert_eq!(parsed.crc32_at_index(0), Some(1));
        parsed
            .verify_checksum(&mut gix::progress::Discard, &AtomicBool::new(false))
            .unwrap();
    }
}
