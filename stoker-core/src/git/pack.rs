//! Reading blobs from the cache's packs with positioned reads (`pread`) instead of gix's memory
//! maps.
//!
//! gix maps a pack file whole and reads objects from the map; every page a read touches stays
//! in the process's resident set until the map goes. A cold sync reads every blob, so the whole
//! pack (66 MB for the 20k-file benchmark repository) became resident on top of the engine's own
//! memory, twice the peak of `git clone --depth 1`. Here an object is read into a buffer that
//! lives as long as the read: the kernel's page cache still holds the pack (and serves the
//! reads), but it is not charged to this process's resident set.
//!
//! What a sync reads in bulk goes through here: the trees of the listed commit, the sizes of
//! its blobs and the blobs themselves (a depth-1 pack interleaves trees with blobs over its
//! whole length, so reading the trees alone through gix maps nearly all of it). Commits and tags
//! are still read through gix, and so is any object not found in a pack (a loose object), by
//! the callers.
//!
//! Decoding follows the pack format (`Documentation/gitformat-pack.txt`): an entry header (type,
//! inflated size, and for deltas the base's negative offset or id), a zlib stream, and for
//! deltas a base size, a result size and copy/insert instructions. Entry ends come from the
//! index's sorted offsets (the next entry's start, or the trailing checksum). Every size read
//! from the pack is checked before it is trusted: a damaged pack yields an error, never a panic
//! or a huge allocation.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use gix::odb::pack;
use gix::odb::pack::data::entry::Header;

/// Decoded delta bases kept for the next delta against them, at most this many bytes. Delta
/// chains in a fetched pack are short (git's default depth is 50; the benchmark's are at most
/// 6) and siblings are read close together, so a few MB catch most repeats.
const BASE_CACHE_BYTES: usize = 8 << 20;

/// Objects larger than this are not kept as bases.
const BASE_CACHE_MAX_OBJECT: usize = 1 << 20;

/// Longest delta chain followed before the pack is taken as damaged (a cycle).
const MAX_CHAIN: usize = 10_000;

/// Largest object decoded whole (a tree, a delta, a delta's result), and so the largest size a
/// pack may record for one. Objects stored whole are streamed whatever their size
/// ([`Packs::open_object`]). The recorded size only bounds; what is allocated grows with the
/// data (see `PackFile::inflate` and [`apply_delta`]).
const MAX_OBJECT_BYTES: u64 = 4 << 30;

/// The kind of a decoded object.
pub(crate) type Kind = gix::object::Kind;

/// The packs of one repository, read with `pread`.
pub(crate) struct Packs {
    packs: Vec<Pack>,
    bases: Mutex<BaseCache>,
    inflaters: Mutex<Vec<gix::zlib::Inflate>>,
}

impl std::fmt::Debug for Packs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packs")
            .field("packs", &self.packs.len())
            .finish_non_exhaustive()
    }
}

struct Pack {
    index: pack::index::File,
    file: PackFile,
}

/// A pack's data file, read with `pread`, and where its entries start.
pub(crate) struct PackFile {
    data: File,
    path: PathBuf,
    /// The start of every entry, ascending, then the start of the trailing checksum: entry `i`
    /// ends where entry `i + 1` starts.
    bounds: Vec<u64>,
}

/// One pack entry's header, where its compressed data lies.
struct EntryAt {
    header: Header,
    size: u64,
    data: std::ops::Range<u64>,
}

impl Packs {
    /// Opens every pack (`objects/pack/pack-*.pack` with its `.idx`) of the repository at
    /// `git_dir`. A pack whose index or header does not match is an error (the caller treats
    /// the cache as damaged).
    pub fn open(git_dir: &Path) -> Result<Packs, String> {
        let dir = git_dir.join("objects").join("pack");
        let mut packs = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Packs::from_packs(packs));
            }
            Err(error) => return Err(format!("listing {}: {error}", dir.display())),
        };
        let mut indexes: Vec<PathBuf> = entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| {
                path.extension().is_some_and(|e| e == "idx")
                    && path.with_extension("pack").is_file()
            })
            .collect();
        indexes.sort();
        for index_path in indexes {
            packs.push(Pack::open(&index_path)?);
        }
        // Largest first: most lookups hit the big pack of the first fetch.
        packs.sort_by_key(|p| std::cmp::Reverse(p.index.num_objects()));
        Ok(Packs::from_packs(packs))
    }

    /// No packs: every lookup misses, and the callers read through gix.
    pub fn none() -> Packs {
        Packs::from_packs(Vec::new())
    }

    fn from_packs(packs: Vec<Pack>) -> Packs {
        Packs {
            packs,
            bases: Mutex::new(BaseCache::default()),
            inflaters: Mutex::new(Vec::new()),
        }
    }

    fn locate(&self, id: &gix::oid) -> Option<(usize, u64)> {
        self.packs.iter().enumerate().find_map(|(number, pack)| {
            pack.index
                .lookup(id)
                .map(|index| (number, pack.index.pack_offset_at_index(index)))
        })
    }

    /// Where object `id` is, other than on the delta chain being walked (`chain`): a pack may
    /// hold an object twice, once as a delta against its other copy (git accepts such packs),
    /// and the copy [`Self::locate`] finds may be that delta itself.
    fn locate_outside<I: Iterator<Item = (usize, u64)>>(
        &self,
        id: &gix::oid,
        chain: impl Fn() -> I,
    ) -> Option<(usize, u64)> {
        let on_chain = |at: (usize, u64)| chain().any(|c| c == at);
        let found = self.locate(id)?;
        if !on_chain(found) {
            return Some(found);
        }
        // Copies of an id are next to each other in an index, sorted by id.
        self.packs.iter().enumerate().find_map(|(number, pack)| {
            let index = &pack.index;
            let hit = index.lookup(id)?;
            let mut first = hit;
            while first > 0 && index.oid_at_index(first - 1) == id {
                first -= 1;
            }
            (first..index.num_objects())
                .take_while(|&i| index.oid_at_index(i) == id)
                .map(|i| (number, index.pack_offset_at_index(i)))
                .find(|&at| !on_chain(at))
        })
    }

    /// The object `id`, decoded: `Ok(None)` when no pack has it.
    pub fn read(&self, id: &gix::oid) -> Result<Option<(Kind, Vec<u8>)>, String> {
        let Some((number, offset)) = self.locate(id) else {
            return Ok(None);
        };
        let mut inflate = self.inflater();
        let result = self.decode(number, offset, &mut inflate);
        self.return_inflater(inflate);
        let (kind, data) = result.map_err(|error| format!("object {id}: {error}"))?;
        Ok(Some((kind, data.into_owned())))
    }

    /// The object `id` as a reader: `Ok(None)` when no pack has it. An object stored whole (not
    /// as a delta) of at least [`STREAM_MIN_BYTES`] is inflated as it is read, a chunk at a
    /// time, with constant memory whatever its size ([`Opened::Stream`]). A delta needs its
    /// whole base and builds its whole result, so a deltified object is decoded whole
    /// ([`Opened::Whole`]), as is a small object (one read, a pooled inflater). Git stores
    /// blobs above `core.bigFileThreshold` (512 MiB by default) whole, never as deltas.
    pub fn open_object(&self, id: &gix::oid) -> Result<Option<Opened<'_>>, String> {
        let Some((pack, offset, entry)) = self.entry(id)? else {
            return Ok(None);
        };
        if !entry.header.is_delta() && entry.size >= STREAM_MIN_BYTES {
            let kind = entry
                .header
                .as_kind()
                .ok_or_else(|| format!("object {id}: the entry at {offset} has no object kind"))?;
            let input = PackRange {
                pack,
                at: entry.data.start,
                end: entry.data.end,
            };
            let reader = InflateReader::new(input, entry.size, format!("object {id}"));
            return Ok(Some(Opened::Stream(kind, Box::new(reader))));
        }
        Ok(self.read(id)?.map(|(kind, data)| Opened::Whole(kind, data)))
    }

    /// The inflated size of object `id` (for a delta, the size of the object it encodes):
    /// `Ok(None)` when no pack has it.
    pub fn size(&self, id: &gix::oid) -> Result<Option<u64>, String> {
        let Some((pack, _, entry)) = self.entry(id)? else {
            return Ok(None);
        };
        if !entry.header.is_delta() {
            return Ok(Some(entry.size));
        }
        // A delta starts with the base's size and the result's, as varints: inflate its start.
        let mut inflate = self.inflater();
        let result = delta_result_size(pack, &entry, &mut inflate);
        self.return_inflater(inflate);
        result
            .map(Some)
            .map_err(|error| format!("object {id}: {error}"))
    }

    /// The pack holding object `id`, its offset there and its entry header: `Ok(None)` when no
    /// pack has it.
    fn entry(&self, id: &gix::oid) -> Result<Option<(&PackFile, u64, EntryAt)>, String> {
        let Some((number, offset)) = self.locate(id) else {
            return Ok(None);
        };
        let pack = &self.packs[number].file;
        let entry = pack
            .entry(offset)
            .map_err(|error| format!("object {id}: {error}"))?;
        Ok(Some((pack, offset, entry)))
    }

    fn inflater(&self) -> gix::zlib::Inflate {
        self.inflaters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_default()
    }

    fn return_inflater(&self, inflate: gix::zlib::Inflate) {
        let mut pool = self
            .inflaters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if pool.len() < 64 {
            pool.push(inflate);
        }
    }

    /// The object at `offset` of pack `number`, resolving deltas (bases from the cache when
    /// they are there). The chain is walked down to a whole object or a cached base, keeping
    /// each delta, then applied upwards: a loop, not recursion, because a damaged or hostile
    /// pack may chain up to [`MAX_CHAIN`] deltas and a reader thread's stack is small.
    fn decode(
        &self,
        number: usize,
        offset: u64,
        inflate: &mut gix::zlib::Inflate,
    ) -> Result<(Kind, Bytes), String> {
        // (pack, offset, inflated delta) from the object asked for down to its base.
        let mut deltas: Vec<(usize, u64, Vec<u8>)> = Vec::new();
        let (mut pack, mut at) = (number, offset);
        let (kind, mut data) = loop {
            if deltas.len() > MAX_CHAIN {
                return Err(format!(
                    "delta chain longer than {MAX_CHAIN} at offset {offset}"
                ));
            }
            let (entry, read, start) = self.packs[pack].file.entry_with_data(at)?;
            let compressed = &read[start..];
            let base = match entry.header {
                Header::OfsDelta { base_distance } => {
                    let base = Header::verified_base_pack_offset(at, base_distance)
                        .ok_or_else(|| format!("delta at {at} points before the pack"))?;
                    (pack, base)
                }
                Header::RefDelta { base_id } => {
                    let chain = || deltas.iter().map(|(p, o, _)| (*p, *o)).chain([(pack, at)]);
                    self.locate_outside(&base_id, chain)
                        .ok_or_else(|| format!("delta base {base_id} is in no pack"))?
                }
                header => {
                    let kind = header
                        .as_kind()
                        .ok_or_else(|| format!("entry at {at} has no object kind"))?;
                    let whole = PackFile::inflate(&entry, compressed, inflate)?;
                    if deltas.is_empty() {
                        return Ok((kind, Bytes::Owned(whole)));
                    }
                    let whole: Arc<[u8]> = whole.into();
                    self.keep(pack, at, kind, &whole);
                    break (kind, Bytes::Shared(whole));
                }
            };
            deltas.push((pack, at, PackFile::inflate(&entry, compressed, inflate)?));
            if let Some(hit) = self.cached(base.0, base.1) {
                break hit;
            }
            (pack, at) = base;
        };
        while let Some((pack, at, delta)) = deltas.pop() {
            let object = apply_delta(&data, &delta)?;
            data = if deltas.is_empty() {
                Bytes::Owned(object)
            } else {
                // The base of the next delta up: kept for its siblings.
                let object: Arc<[u8]> = object.into();
                self.keep(pack, at, kind, &object);
                Bytes::Shared(object)
            };
        }
        Ok((kind, data))
    }

    fn cached(&self, pack: usize, offset: u64) -> Option<(Kind, Bytes)> {
        self.bases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(pack, offset)
            .map(|(kind, data)| (kind, Bytes::Shared(data)))
    }

    fn keep(&self, pack: usize, offset: u64, kind: Kind, data: &Arc<[u8]>) {
        if data.len() <= BASE_CACHE_MAX_OBJECT {
            self.bases
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .put(pack, offset, kind, data.clone());
        }
    }
}

impl Pack {
    fn open(index_path: &Path) -> Result<Pack, String> {
        let path = index_path.with_extension("pack");
        let index = pack::index::File::at(index_path, gix::hash::Kind::Sha1)
            .map_err(|error| format!("{}: {error}", index_path.display()))?;
        let data = File::open(&path).map_err(|error| format!("{}: {error}", path.display()))?;
        let len = data
            .metadata()
            .map_err(|error| format!("{}: {error}", path.display()))?
            .len();
        let mut header = [0u8; 12];
        data.read_exact_at(&mut header, 0)
            .map_err(|error| format!("{}: reading the header: {error}", path.display()))?;
        let version = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        let count = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
        if &header[..4] != b"PACK" || !(version == 2 || version == 3) {
            return Err(format!("{}: not a version 2 or 3 pack", path.display()));
        }
        if count != index.num_objects() {
            return Err(format!(
                "{}: {count} objects, its index lists {}",
                path.display(),
                index.num_objects()
            ));
        }
        let trailer = len
            .checked_sub(20)
            .filter(|t| *t >= 12)
            .ok_or_else(|| format!("{}: truncated", path.display()))?;
        let mut bounds = index.sorted_offsets();
        if bounds.first().is_some_and(|first| *first < 12)
            || bounds.last().is_some_and(|last| *last >= trailer)
        {
            return Err(format!(
                "{}: its index points outside the pack",
                path.display()
            ));
        }
        bounds.push(trailer);
        Ok(Pack {
            index,
            file: PackFile::new(data, path, bounds),
        })
    }
}

impl PackFile {
    /// The pack `data` (at `path`, for messages) whose entries start at `bounds`, ascending, the
    /// last being the start of the trailing checksum.
    pub(crate) fn new(data: File, path: PathBuf, bounds: Vec<u64>) -> PackFile {
        PackFile { data, path, bounds }
    }

    /// The entry at `offset`: its header, and its data inflated.
    pub(crate) fn inflated(
        &self,
        offset: u64,
        inflate: &mut gix::zlib::Inflate,
    ) -> Result<(Header, Vec<u8>), String> {
        let (entry, read, start) = self.entry_with_data(offset)?;
        let data = Self::inflate(&entry, &read[start..], inflate)?;
        Ok((entry.header, data))
    }

    /// The end of the entry starting at `offset` (the next entry's start, or the trailer's).
    fn end_of(&self, offset: u64) -> Result<u64, String> {
        let next = self.bounds.partition_point(|start| *start <= offset);
        if next == 0 || self.bounds[next - 1] != offset || next == self.bounds.len() {
            return Err(format!(
                "{}: no entry starts at offset {offset}",
                self.path.display()
            ));
        }
        Ok(self.bounds[next])
    }

    /// Parses the entry header at the start of `head` (read from `offset`).
    fn parse(&self, head: &[u8], offset: u64, end: u64) -> Result<EntryAt, String> {
        let entry = pack::data::Entry::from_bytes(head, offset, gix::hash::Kind::Sha1)
            .map_err(|error| format!("entry at {offset}: {error}"))?;
        if entry.data_offset > end {
            return Err(format!("entry at {offset}: header runs past its end"));
        }
        Ok(EntryAt {
            header: entry.header,
            size: entry.decompressed_size,
            data: entry.data_offset..end,
        })
    }

    /// The header of the entry at `offset`, and the range of its compressed data.
    fn entry(&self, offset: u64) -> Result<EntryAt, String> {
        let end = self.end_of(offset)?;
        // Type and size (at most 10 bytes for a 64-bit size), then at most 10 bytes of base
        // offset or a 20-byte base id.
        let mut head = [0u8; 32];
        let available = usize::try_from((end - offset).min(head.len() as u64)).unwrap_or(0);
        self.read_at(&mut head[..available], offset)?;
        self.parse(&head[..available], offset, end)
    }

    /// The entry at `offset`, read whole in one call, and where its compressed data starts in
    /// what was read.
    fn entry_with_data(&self, offset: u64) -> Result<(EntryAt, Vec<u8>, usize), String> {
        let end = self.end_of(offset)?;
        let len = usize::try_from(end - offset).map_err(|_| "entry too large".to_owned())?;
        let mut buf = vec![0u8; len];
        self.read_at(&mut buf, offset)?;
        let entry = self.parse(&buf, offset, end)?;
        let start = usize::try_from(entry.data.start - offset).unwrap_or(0);
        Ok((entry, buf, start))
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), String> {
        self.data
            .read_exact_at(buf, offset)
            .map_err(|error| format!("{}: reading at {offset}: {error}", self.path.display()))
    }

    /// The entry's data, inflated to exactly its recorded size. The recorded size comes from
    /// the pack and is not trusted with an allocation: at most [`INFLATE_RESERVE_BYTES`] are
    /// reserved up front, and the buffer grows with what the stream actually inflates to.
    fn inflate(
        entry: &EntryAt,
        compressed: &[u8],
        inflate: &mut gix::zlib::Inflate,
    ) -> Result<Vec<u8>, String> {
        let at = entry.data.start;
        let size = usize::try_from(entry.size)
            .ok()
            .filter(|size| *size as u64 <= MAX_OBJECT_BYTES)
            .ok_or_else(|| format!("the entry at {at} records {} bytes: too large", entry.size))?;
        // zlib cannot inflate beyond 1032:1: a larger recorded size is damage.
        if entry.size
            > (compressed.len() as u64)
                .saturating_mul(1032)
                .saturating_add(64)
        {
            return Err(format!(
                "the entry at {at} records {size} bytes from {} compressed: damaged",
                compressed.len()
            ));
        }
        // One spare byte: a stream that inflates to more than the recorded size is caught.
        let limit = size + 1;
        let mut out = Vec::with_capacity(limit.min(INFLATE_RESERVE_BYTES));
        let mut input = compressed;
        inflate.reset();
        loop {
            if out.len() == out.capacity() {
                // Double what arrived so far, never past the recorded size.
                out.reserve_exact(out.len().max(INFLATE_RESERVE_BYTES).min(limit - out.len()));
            }
            let start = out.len();
            out.resize(out.capacity().min(limit), 0);
            let (status, read, written) = inflate
                .prefix(input, &mut out[start..])
                .map_err(|error| format!("inflating the entry at {at}: {error}"))?;
            out.truncate(start + written);
            input = &input[read..];
            let inflated = out.len();
            if status == gix::zlib::Status::StreamEnd && inflated == size {
                return Ok(out);
            }
            if status == gix::zlib::Status::StreamEnd || inflated == limit {
                return Err(format!(
                    "the entry at {at} inflates to {} bytes, its header says {size}",
                    if inflated == limit { "more" } else { "fewer" }
                ));
            }
            if read == 0 && written == 0 {
                return Err(format!(
                    "the entry at {at} does not inflate past {inflated} bytes (status {status:?}), its header says {size}"
                ));
            }
        }
    }
}

/// Bytes reserved before an entry is inflated: a recorded size up to this is allocated at
/// once; beyond it the buffer grows with the inflated data, so a damaged or hostile size never
/// decides an allocation on its own.
const INFLATE_RESERVE_BYTES: usize = 1 << 20;

/// Objects stored whole from this size up are streamed by [`Packs::open_object`].
pub(crate) const STREAM_MIN_BYTES: u64 = 256 << 10;

/// How much compressed data a streamed object reads at a time.
const STREAM_INPUT_BYTES: usize = 64 << 10;

/// An object opened by [`Packs::open_object`].
pub(crate) enum Opened<'a> {
    /// Inflated as it is read.
    Stream(Kind, Box<InflateReader<PackRange<'a>>>),
    /// Decoded whole (a delta, or a small object).
    Whole(Kind, Vec<u8>),
}

/// The compressed bytes of one pack entry, read with `pread`.
pub(crate) struct PackRange<'a> {
    pack: &'a PackFile,
    at: u64,
    end: u64,
}

impl std::io::Read for PackRange<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = usize::try_from(self.end - self.at)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        if want == 0 {
            return Ok(0);
        }
        let read = self.pack.data.read_at(&mut buf[..want], self.at)?;
        if read == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "{}: the pack ends at {} inside an entry",
                    self.pack.path.display(),
                    self.at
                ),
            ));
        }
        self.at += read as u64;
        Ok(read)
    }
}

/// A zlib stream inflated as it is read, which must inflate to exactly `size` bytes: a pack
/// entry's data, or a loose object. Holds one buffer of compressed input and zlib's state,
/// whatever the object's size. A stream that ends early, inflates to more or fewer bytes than
/// `size`, or is damaged (zlib checks its Adler-32) is an `InvalidData` error.
pub(crate) struct InflateReader<R> {
    input: R,
    buffer: Box<[u8]>,
    start: usize,
    end: usize,
    inflate: gix::zlib::Inflate,
    produced: u64,
    size: u64,
    done: bool,
    what: String,
}

impl<R: std::io::Read> InflateReader<R> {
    /// Inflates the zlib stream `input` yields, which must inflate to `size` bytes; `what`
    /// names it in errors.
    pub(crate) fn new(input: R, size: u64, what: String) -> Self {
        InflateReader {
            input,
            buffer: vec![0u8; STREAM_INPUT_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
            inflate: gix::zlib::Inflate::default(),
            produced: 0,
            size,
            done: false,
            what,
        }
    }

    /// Sets the size the stream must inflate to (a loose object's, once its header is read).
    pub(crate) fn set_size(&mut self, size: u64) {
        self.size = size;
    }

    /// How many bytes were inflated so far.
    pub(crate) fn produced(&self) -> u64 {
        self.produced
    }

    fn damaged(&self, message: String) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {message}", self.what),
        )
    }
}

impl<R: std::io::Read> std::io::Read for InflateReader<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        // One spare byte: a stream that inflates to more than `size` is caught.
        let room = usize::try_from((self.size - self.produced.min(self.size)).saturating_add(1))
            .unwrap_or(usize::MAX)
            .min(out.len());
        loop {
            if self.done {
                return Ok(0);
            }
            if self.start == self.end {
                self.start = 0;
                self.end = loop {
                    match self.input.read(&mut self.buffer) {
                        Ok(read) => break read,
                        Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(error) => return Err(error),
                    }
                };
            }
            let input = &self.buffer[self.start..self.end];
            let (status, read, written) = self
                .inflate
                .prefix(input, &mut out[..room])
                .map_err(|error| self.damaged(format!("inflating: {error}")))?;
            let exhausted = input.is_empty();
            self.start += read;
            self.produced += written as u64;
            if self.produced > self.size {
                return Err(self.damaged(format!(
                    "inflates to more than the {} bytes its header says",
                    self.size
                )));
            }
            if status == gix::zlib::Status::StreamEnd {
                self.done = true;
                if self.produced != self.size {
                    return Err(self.damaged(format!(
                        "inflates to {} bytes, its header says {}",
                        self.produced, self.size
                    )));
                }
            } else if read == 0 && written == 0 {
                return Err(self.damaged(if exhausted {
                    "the compressed data ends before the stream does".to_owned()
                } else {
                    "does not inflate (zlib makes no progress)".to_owned()
                }));
            }
            if written > 0 {
                return Ok(written);
            }
        }
    }
}

/// The result size a delta entry declares, from the start of its inflated data.
fn delta_result_size(
    pack: &PackFile,
    entry: &EntryAt,
    inflate: &mut gix::zlib::Inflate,
) -> Result<u64, String> {
    // Two varints of at most 10 bytes each. A zlib stream's first block header can be a few
    // hundred bytes; read more when the first try does not yield 20 bytes.
    let mut want = 512u64;
    loop {
        let end = (entry.data.start + want).min(entry.data.end);
        let mut compressed = vec![0u8; usize::try_from(end - entry.data.start).unwrap_or(0)];
        pack.read_at(&mut compressed, entry.data.start)?;
        let mut out = [0u8; 20];
        inflate.reset();
        let (_, _, written) = inflate
            .prefix(&compressed, &mut out)
            .map_err(|error| format!("inflating the delta at {}: {error}", entry.data.start))?;
        let out = &out[..written];
        if let Some((_, used)) = varint(out)
            && let Some((size, _)) = varint(&out[used..])
        {
            return Ok(size);
        }
        if end == entry.data.end {
            return Err(format!("the delta at {} is truncated", entry.data.start));
        }
        want *= 8;
    }
}

/// A little-endian base-128 size at the start of `data`, and how many bytes it took.
fn varint(data: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, byte) in data.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f).checked_shl(7 * i as u32)?;
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Applies a git delta (base size, result size, then copy and insert instructions) to `base`.
///
/// A first pass checks every instruction and adds up what they yield, so that the result is
/// allocated once, at its true size: a size declared by the pack never decides an allocation
/// on its own (a few bytes of delta could otherwise ask for gigabytes).
pub(crate) fn apply_delta(base: &[u8], delta: &[u8]) -> Result<Vec<u8>, String> {
    let (base_size, used) = varint(delta).ok_or_else(|| corrupt_delta("base size"))?;
    let mut instructions = &delta[used..];
    let (result_size, used) = varint(instructions).ok_or_else(|| corrupt_delta("result size"))?;
    instructions = &instructions[used..];
    if base_size != base.len() as u64 {
        return Err(corrupt_delta(&format!(
            "it expects a base of {base_size} bytes, the base has {}",
            base.len()
        )));
    }
    if result_size > MAX_OBJECT_BYTES {
        return Err(corrupt_delta("result too large"));
    }
    let mut yielded = 0u64;
    delta_pieces(base, instructions, |piece| {
        yielded += piece.len() as u64;
        if yielded > result_size {
            return Err(corrupt_delta("result larger than declared"));
        }
        Ok(())
    })?;
    if yielded != result_size {
        return Err(corrupt_delta("result smaller than declared"));
    }
    let mut out = Vec::with_capacity(usize::try_from(result_size).unwrap_or(0));
    delta_pieces(base, instructions, |piece| {
        out.extend_from_slice(piece);
        Ok(())
    })?;
    Ok(out)
}

fn corrupt_delta(what: &str) -> String {
    format!("corrupt delta: {what}")
}

/// Hands each piece of the result the delta's `instructions` describe (a slice of `base` or of
/// the instructions) to `sink`, in order.
fn delta_pieces<'a>(
    base: &'a [u8],
    instructions: &'a [u8],
    mut sink: impl FnMut(&'a [u8]) -> Result<(), String>,
) -> Result<(), String> {
    let mut i = 0;
    while i < instructions.len() {
        let command = instructions[i];
        i += 1;
        if command & 0x80 != 0 {
            let mut field = |bit: u8, shift: u32| -> Result<usize, String> {
                if command & bit == 0 {
                    return Ok(0);
                }
                let byte = *instructions
                    .get(i)
                    .ok_or_else(|| corrupt_delta("truncated copy"))?;
                i += 1;
                Ok(usize::from(byte) << shift)
            };
            let offset = field(0x01, 0)? | field(0x02, 8)? | field(0x04, 16)? | field(0x08, 24)?;
            let mut size = field(0x10, 0)? | field(0x20, 8)? | field(0x40, 16)?;
            if size == 0 {
                size = 0x10000;
            }
            let copied = offset
                .checked_add(size)
                .and_then(|end| base.get(offset..end))
                .ok_or_else(|| corrupt_delta("copy outside the base"))?;
            sink(copied)?;
        } else if command != 0 {
            let size = usize::from(command);
            let inserted = instructions
                .get(i..i + size)
                .ok_or_else(|| corrupt_delta("truncated insert"))?;
            sink(inserted)?;
            i += size;
        } else {
            return Err(corrupt_delta("reserved instruction 0"));
        }
    }
    Ok(())
}

/// An object's bytes: owned, or shared with the base cache.
enum Bytes {
    Owned(Vec<u8>),
    Shared(Arc<[u8]>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Owned(data) => data,
            Bytes::Shared(data) => data,
        }
    }
}

impl Bytes {
    fn into_owned(self) -> Vec<u8> {
        match self {
            Bytes::Owned(data) => data,
            Bytes::Shared(data) => data.to_vec(),
        }
    }
}

/// A decoded object kept as a delta base.
type Base = (Kind, Arc<[u8]>);

/// Decoded delta bases by (pack, offset), the oldest dropped first beyond `BASE_CACHE_BYTES`.
#[derive(Default)]
struct BaseCache {
    map: HashMap<(usize, u64), Base>,
    order: VecDeque<(usize, u64)>,
    bytes: usize,
}

impl BaseCache {
    fn get(&self, pack: usize, offset: u64) -> Option<Base> {
        self.map.get(&(pack, offset)).cloned()
    }

    fn put(&mut self, pack: usize, offset: u64, kind: Kind, data: Arc<[u8]>) {
        let len = data.len();
        if self.map.insert((pack, offset), (kind, data)).is_some() {
            return;
        }
        self.order.push_back((pack, offset));
        self.bytes += len;
        while self.bytes > BASE_CACHE_BYTES {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some((_, data)) = self.map.remove(&oldest) {
                self.bytes -= data.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A temporary Git directory whose `objects/pack` holds the pack `stream`, received as the
    /// first fetch receives one: the directory (removed when dropped) and the Git directory.
    fn received(stream: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let git_dir = dir.path().to_path_buf();
        let pack_dir = git_dir.join("objects").join("pack");
        std::fs::create_dir_all(&pack_dir).unwrap();
        let mut input = std::io::BufReader::new(stream);
        super::super::index_pack::receive(
            &mut input,
            &pack_dir,
            &mut gix::progress::Discard,
            &std::sync::atomic::AtomicBool::new(false),
        )
        .unwrap();
        (dir, git_dir)
    }

    #[test]
    fn deltas_copy_and_insert() {
        let base = b"hello, world";
        // base 12, result 11: copy 0..5 ("hello"), insert "!!", copy 7..11 ("worl")
        let delta = [12, 11, 0x91, 0, 5, 2, b'!', b'!', 0x91, 7, 4];
        assert_eq!(apply_delta(base, &delta).unwrap(), b"hello!!worl");
        // wrong base size, copy past the base, declared size not reached, reserved 0
        assert!(apply_delta(base, &[11, 1, 1, b'x']).is_err());
        assert!(apply_delta(base, &[12, 5, 0x91, 10, 5]).is_err());
        assert!(apply_delta(base, &[12, 5, 1, b'x']).is_err());
        assert!(apply_delta(base, &[12, 1, 0]).is_err());
        // a declared result of 1 GiB from one instruction is found out before any allocation
        let huge = [12, 0x80, 0x80, 0x80, 0x80, 0x04, 0x91, 0, 5];
        assert_eq!(
            apply_delta(base, &huge).unwrap_err(),
            "corrupt delta: result smaller than declared"
        );
        assert!(varint(&[0x80, 0x80]).is_none());
        assert_eq!(varint(&[0x91, 0x01]), Some((145, 2)));
    }

    /// A copy may take up to 16 MiB in one instruction of four bytes (git writes at most
    /// 64 KiB, other writers more): a 1 MiB result from a five-byte delta body is no lie (the
    /// `pack_read` fuzz target found it refused as "result too large").
    #[test]
    fn one_copy_may_take_megabytes() {
        let base: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
        // base 1 MiB, result 1 MiB: copy offset 0, size 0x100000 (only the high size byte)
        let delta = [0x80, 0x80, 0x40, 0x80, 0x80, 0x40, 0xc0, 0x10];
        assert_eq!(apply_delta(&base, &delta).unwrap(), base);
        // and a 2 MiB result from two such copies
        let delta = [
            0x80, 0x80, 0x40, 0x80, 0x80, 0x80, 0x01, 0xc0, 0x10, 0xc0, 0x10,
        ];
        assert_eq!(
            apply_delta(&base, &delta).unwrap(),
            [&base[..], &base[..]].concat()
        );
    }

    /// A pack holding an object twice, whole and as a delta against its own id, reads: the
    /// delta's base is the other copy, not the delta itself (found by the `pack_read` and
    /// `index_pack` fuzz targets as an endless chain).
    #[test]
    fn a_delta_against_its_own_id_takes_the_other_copy() {
        let id = gix::objs::compute_hash(gix::hash::Kind::Sha1, Kind::Blob, b"same").unwrap();
        let mut stream = b"PACK\0\0\0\x02\0\0\0\x02".to_vec();
        stream.push((3 << 4) | 4);
        stream.extend_from_slice(&super::super::test_repo::deflated(b"same"));
        // base 4, result 4, copy 0..4
        stream.push((7 << 4) | 4);
        stream.extend_from_slice(id.as_bytes());
        stream.extend_from_slice(&super::super::test_repo::deflated(&[4, 4, 0x90, 4]));
        let mut hasher = gix::hash::hasher(gix::hash::Kind::Sha1);
        hasher.update(&stream);
        stream.extend_from_slice(hasher.try_finalize().unwrap().as_bytes());
        let (_dir, git_dir) = received(&stream);
        let packs = Packs::open(&git_dir).unwrap();
        let pack = &packs.packs[0];
        assert_eq!(pack.index.num_objects(), 2);
        // Whichever copy a lookup finds, both read.
        for i in 0..2 {
            let offset = pack.index.pack_offset_at_index(i);
            let (kind, data) = packs.decode(0, offset, &mut Default::default()).unwrap();
            assert_eq!(
                (kind, &*data),
                (Kind::Blob, &b"same"[..]),
                "copy at {offset}"
            );
        }
        assert_eq!(
            packs.read(&id).unwrap(),
            Some((Kind::Blob, b"same".to_vec()))
        );
    }

    /// The end of a chain of 9,000 offset deltas reads on a thread with a small stack: the
    /// chain is walked in a loop, not by recursion.
    #[test]
    fn a_long_delta_chain_reads_on_a_small_stack() {
        let stream = super::super::test_repo::chain_pack(9_000, false);
        let (_dir, git_dir) = received(&stream);
        let last = gix::objs::compute_hash(gix::hash::Kind::Sha1, Kind::Blob, b"00009000").unwrap();
        let read = super::super::test_repo::on_small_stack(move || {
            let packs = Packs::open(&git_dir).unwrap();
            let read = packs.read(&last).unwrap();
            let size = packs.size(&last).unwrap();
            (read, size)
        });
        assert_eq!(read, (Some((Kind::Blob, b"00009000".to_vec())), Some(8)));
    }

    /// Every object of a real, deltified pack reads back as gix reads it, and sizes match.
    #[test]
    fn reads_what_gix_reads() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        super::super::test_repo::deltified_history(&work);
        super::super::test_repo::git(&work, &["gc", "-q", "--aggressive"], b"");
        let repo = gix::open_opts(work.join(".git"), gix::open::Options::isolated()).unwrap();
        let packs = Packs::open(repo.git_dir()).unwrap();
        assert!(!packs.packs.is_empty());
        let mut deltas = 0;
        let mut seen = 0;
        for pack in &packs.packs {
            for entry in pack.index.iter() {
                let id = entry.oid;
                let expected = repo.find_object(id).unwrap();
                let (kind, data) = packs.read(&id).unwrap().unwrap();
                assert_eq!(kind, expected.kind);
                assert_eq!(data, expected.data, "{id}");
                assert_eq!(packs.size(&id).unwrap(), Some(data.len() as u64));
                deltas += usize::from(
                    pack.file
                        .entry(entry.pack_offset)
                        .unwrap()
                        .header
                        .is_delta(),
                );
                seen += 1;
            }
        }
        assert!(seen > 30 && deltas > 10, "{seen} objects, {deltas} deltas");
        assert_eq!(
            packs
                .read(&gix::ObjectId::null(gix::hash::Kind::Sha1))
                .unwrap(),
            None
        );
    }

    /// A large blob stored whole streams through `open` in small reads, and reads back as gix
    /// reads it; a damaged or truncated one is an error, never a short read taken as the end.
    #[test]
    fn large_whole_objects_stream() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        super::super::test_repo::git(&work, &["init", "-q"], b"");
        let big: Vec<u8> = (0..3 * STREAM_MIN_BYTES as usize + 7)
            .map(|i| ((i * 7919) % 251) as u8)
            .collect();
        std::fs::write(work.join("big.bin"), &big).unwrap();
        std::fs::write(work.join("small.txt"), "small").unwrap();
        super::super::test_repo::git(&work, &["add", "."], b"");
        super::super::test_repo::git(&work, &["commit", "-q", "-m", "one"], b"");
        super::super::test_repo::git(&work, &["gc", "-q"], b"");
        let repo = gix::open_opts(work.join(".git"), gix::open::Options::isolated()).unwrap();
        let packs = Packs::open(repo.git_dir()).unwrap();
        let id = gix::ObjectId::Sha1(crate::ContentId::of_blob(&big).0);
        let Some(Opened::Stream(kind, mut reader)) = packs.open_object(&id).unwrap() else {
            panic!("a large whole blob is streamed");
        };
        assert_eq!(kind, gix::object::Kind::Blob);
        let mut read = Vec::new();
        let mut chunk = [0u8; 1000];
        loop {
            let n = reader.read(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            read.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(read, big);
        let small = gix::ObjectId::Sha1(crate::ContentId::of_blob(b"small").0);
        assert!(matches!(
            packs.open_object(&small).unwrap(),
            Some(Opened::Whole(gix::object::Kind::Blob, data)) if data == b"small"
        ));

        // The same stream cut short, or claiming another size, is an error.
        let compressed = {
            let pack = &packs.packs[0];
            let offset = pack
                .index
                .lookup(id)
                .map(|index| pack.index.pack_offset_at_index(index))
                .unwrap();
            let entry = pack.file.entry(offset).unwrap();
            let mut compressed = vec![0u8; (entry.data.end - entry.data.start) as usize];
            pack.file
                .read_at(&mut compressed, entry.data.start)
                .unwrap();
            compressed
        };
        let cut = &compressed[..compressed.len() / 2];
        let error = InflateReader::new(cut, big.len() as u64, "cut".into())
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData, "{error}");
        let error = InflateReader::new(&compressed[..], big.len() as u64 - 1, "short".into())
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(error.to_string().contains("more than"), "{error}");
        let error = InflateReader::new(&compressed[..], big.len() as u64 + 1, "long".into())
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(error.to_string().contains("its header says"), "{error}");
    }
}
