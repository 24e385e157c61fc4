//! Packs built from a fuzzed description, with what each entry should decode to, for the
//! `pack_read` and `index_pack` targets.
//!
//! A description is a list of entries: whole objects (any type number, honest or lying size),
//! offset deltas and id deltas against any other entry (forwards, backwards, themselves), with
//! copy/insert instructions that may point outside their base, and raw bytes. The harness
//! compresses each entry's data, writes the entry headers, the pack header and the trailing
//! SHA-1, so the fuzzer spends its time inside the pack format instead of on checksums. Next to
//! the bytes it computes, with its own small decoder written from the format description, what
//! every entry decodes to: an object, damage, or unknown (raw bytes, or built on them).
#![allow(dead_code)]

use arbitrary::Arbitrary;
use sha1::{Digest, Sha1};
use stoker_core::git::testing::deflate;

/// Copies are at most 1 MiB (the format allows 16 MiB), bases made of repeated bytes too.
const MAX_COPY: u32 = 1 << 20;

/// Descriptions of an object larger than this are not built: a legitimately large object is
/// not what these targets look for, and memory must stay a signal of a bug.
pub const MAX_OBJECT: u64 = 32 << 20;

#[derive(Arbitrary, Debug)]
pub struct Description {
    pub entries: Vec<Spec>,
    /// Overrides the object count of the pack header.
    pub count: Option<u32>,
    /// Cuts the pack (before its trailer is computed) to this many bytes from the end.
    pub cut: Option<u16>,
    /// Flips one byte (position, xor) after the trailer is computed.
    pub flip: Option<(u16, u8)>,
}

#[derive(Arbitrary, Debug)]
pub enum Spec {
    Whole { kind: u8, data: Data, size: Size },
    OfsDelta { base: u16, delta: Delta, size: Size },
    RefDelta { base: u16, delta: Delta, size: Size },
    /// An entry's bytes as they are (header and data).
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
pub enum Data {
    Bytes(Vec<u8>),
    Repeat { byte: u8, len: u32 },
}

/// The size an entry header declares.
#[derive(Arbitrary, Debug)]
pub enum Size {
    Honest,
    Declared(u64),
}

#[derive(Arbitrary, Debug)]
pub struct Delta {
    pub base_size: Size,
    pub result_size: Size,
    pub ops: Vec<Op>,
    /// The compressed data cut to this many bytes.
    pub truncate: Option<u8>,
}

#[derive(Arbitrary, Debug)]
pub enum Op {
    Copy { offset: u32, len: u32 },
    Insert(Vec<u8>),
    /// An instruction byte and what follows as they are (reserved 0, truncated copies).
    Raw(Vec<u8>),
    /// The same copy many times.
    Repeat { offset: u16, len: u16, times: u8 },
}

/// What an entry decodes to, by the harness's own decoder.
#[derive(Clone, Debug, PartialEq)]
pub enum Expect {
    Object(u8, Vec<u8>),
    Damaged,
    Unknown,
}

/// A pack built from a description.
pub struct Built {
    pub bytes: Vec<u8>,
    /// Each entry's offset, the id the harness gives it, and what it decodes to.
    pub entries: Vec<(u64, [u8; 20], Expect)>,
    /// The pack is well formed: header count right, nothing cut or flipped.
    pub intact: bool,
}

impl Data {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Data::Bytes(bytes) => bytes.clone(),
            Data::Repeat { byte, len } => vec![*byte; (*len % (MAX_COPY + 1)) as usize],
        }
    }
}

/// `value` as the little-endian base-128 size of a delta header.
fn varint(mut value: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// An entry header: type and size.
fn entry_header(kind: u8, size: u64, out: &mut Vec<u8>) {
    let mut byte = (kind << 4) | (size & 0x0f) as u8;
    let mut rest = size >> 4;
    while rest != 0 {
        out.push(byte | 0x80);
        byte = (rest & 0x7f) as u8;
        rest >>= 7;
    }
    out.push(byte);
}

/// An offset delta's distance to its base, in the format's offset encoding.
fn ofs_distance(mut distance: u64, out: &mut Vec<u8>) {
    let mut bytes = vec![(distance & 0x7f) as u8];
    distance >>= 7;
    while distance != 0 {
        distance -= 1;
        bytes.push(0x80 | (distance & 0x7f) as u8);
        distance >>= 7;
    }
    bytes.reverse();
    out.extend_from_slice(&bytes);
}

fn copy(offset: u32, len: u32, out: &mut Vec<u8>) {
    let len = len % (MAX_COPY + 1);
    let mut command = 0x80u8;
    let mut args = Vec::new();
    for i in 0..4 {
        let byte = (offset >> (8 * i)) as u8;
        if byte != 0 {
            command |= 1 << i;
            args.push(byte);
        }
    }
    // A size of 0x10000 is written as no size bytes.
    let encoded = if len == 0x10000 { 0 } else { len };
    for i in 0..3 {
        let byte = (encoded >> (8 * i)) as u8;
        if byte != 0 {
            command |= 0x10 << i;
            args.push(byte);
        }
    }
    out.push(command);
    out.extend_from_slice(&args);
}

impl Delta {
    /// The instructions (without the two sizes).
    fn instructions(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for op in &self.ops {
            match op {
                Op::Copy { offset, len } => copy(*offset, *len, &mut out),
                Op::Insert(bytes) => {
                    for chunk in bytes.chunks(127) {
                        out.push(chunk.len() as u8);
                        out.extend_from_slice(chunk);
                    }
                }
                Op::Raw(bytes) => out.extend_from_slice(bytes),
                Op::Repeat { offset, len, times } => {
                    for _ in 0..*times {
                        copy(u32::from(*offset), u32::from(*len), &mut out);
                    }
                }
            }
        }
        out
    }
}

/// The reference decoder: applies `delta` (sizes and instructions) to `base`; `None` when the
/// delta is damaged. Written from `gitformat-pack.txt`, independently of Stoker's.
pub fn reference_apply(base: &[u8], delta: &[u8]) -> Option<Vec<u8>> {
    let mut at = 0usize;
    let mut size = || -> Option<u64> {
        let mut value = 0u64;
        let mut shift = 0u32;
        loop {
            let byte = *delta.get(at)?;
            at += 1;
            if shift >= 64 {
                return None;
            }
            value |= u64::from(byte & 0x7f).checked_shl(shift)?;
            if (u64::from(byte & 0x7f) << shift) >> shift != u64::from(byte & 0x7f) {
                return None;
            }
            shift += 7;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
    };
    let base_size = size()?;
    let result_size = size()?;
    if base_size != base.len() as u64 {
        return None;
    }
    let mut out = Vec::new();
    while at < delta.len() {
        let command = delta[at];
        at += 1;
        if command & 0x80 != 0 {
            let mut offset = 0usize;
            let mut len = 0usize;
            for i in 0..4 {
                if command & (1 << i) != 0 {
                    offset |= usize::from(*delta.get(at)?) << (8 * i);
                    at += 1;
                }
            }
            for i in 0..3 {
                if command & (0x10 << i) != 0 {
                    len |= usize::from(*delta.get(at)?) << (8 * i);
                    at += 1;
                }
            }
            if len == 0 {
                len = 0x10000;
            }
            out.extend_from_slice(base.get(offset..offset.checked_add(len)?)?);
        } else if command != 0 {
            let len = usize::from(command);
            out.extend_from_slice(delta.get(at..at + len)?);
            at += len;
        } else {
            return None;
        }
        if out.len() as u64 > result_size {
            return None;
        }
    }
    (out.len() as u64 == result_size).then_some(out)
}

/// Git's id of an object.
pub fn object_id(kind: u8, data: &[u8]) -> [u8; 20] {
    let name = match kind {
        1 => "commit",
        2 => "tree",
        3 => "blob",
        _ => "tag",
    };
    let mut hasher = Sha1::new();
    hasher.update(format!("{name} {}\0", data.len()).as_bytes());
    hasher.update(data);
    hasher.finalize().into()
}

/// A stand-in id for an entry whose object is not known (distinct per entry).
fn stand_in_id(index: usize) -> [u8; 20] {
    let mut hasher = Sha1::new();
    hasher.update(b"stand-in ");
    hasher.update(index.to_le_bytes());
    hasher.finalize().into()
}

/// What the entries decode to, resolved in dependency order (deltas against later entries and
/// cycles included).
struct Resolver<'a> {
    specs: &'a [Spec],
    /// The base entry of each delta, by index.
    bases: Vec<Option<usize>>,
    /// Each delta's full data (sizes and instructions), as compressed into the pack.
    deltas: Vec<Vec<u8>>,
    done: Vec<Option<Expect>>,
}

impl Resolver<'_> {
    fn expect(&mut self, index: usize, depth: usize) -> Expect {
        if let Some(done) = &self.done[index] {
            return done.clone();
        }
        if depth > self.specs.len() {
            return Expect::Damaged; // a cycle
        }
        let expect = match &self.specs[index] {
            Spec::Raw(_) => Expect::Unknown,
            Spec::Whole { kind, data, size } => {
                let data = data.bytes();
                match (kind % 8, size) {
                    (6 | 7, _) => Expect::Unknown,
                    (0 | 5, _) => Expect::Damaged,
                    (_, Size::Declared(declared)) if *declared != data.len() as u64 => {
                        Expect::Damaged
                    }
                    (kind, _) => Expect::Object(kind, data),
                }
            }
            Spec::OfsDelta { size, .. } | Spec::RefDelta { size, .. } => {
                match self.bases[index] {
                    None => Expect::Damaged,
                    Some(base) => match self.expect(base, depth + 1) {
                        Expect::Object(kind, base) => {
                            let delta = &self.deltas[index];
                            match (reference_apply(&base, delta), size) {
                                (None, _) => Expect::Damaged,
                                (Some(_), Size::Declared(d)) if *d != delta.len() as u64 => {
                                    Expect::Damaged
                                }
                                (Some(object), _) => Expect::Object(kind, object),
                            }
                        }
                        other => other,
                    },
                }
            }
        };
        self.done[index] = Some(expect.clone());
        expect
    }
}

/// Builds the pack a description describes; `None` when it describes an object larger than
/// [`MAX_OBJECT`].
pub fn build(description: &Description) -> Option<Built> {
    let specs = &description.entries;
    let n = specs.len();
    // Base choice: offset deltas against an earlier entry (the first has none); id deltas
    // against any entry.
    let bases: Vec<Option<usize>> = specs
        .iter()
        .enumerate()
        .map(|(index, spec)| match spec {
            Spec::OfsDelta { base, .. } if index > 0 => {
                Some(index - 1 - usize::from(*base) % index)
            }
            Spec::RefDelta { base, .. } => Some(usize::from(*base) % n),
            _ => None,
        })
        .collect();
    // Delta data needs the base's size, which needs the base's object: resolve sizes first
    // with honest placeholder sizes replaced once known. Honest sizes are computed from the
    // harness's expectation of the base (0 when unknown).
    let mut deltas: Vec<Vec<u8>> = vec![Vec::new(); n];
    let mut resolver = Resolver {
        specs,
        bases: bases.clone(),
        deltas: Vec::new(),
        done: vec![None; n],
    };
    // Entries in an order where every base comes before its deltas when there is one (bases
    // of cycles get size 0): repeat until nothing changes, at most n rounds.
    let mut base_len: Vec<Option<u64>> = vec![None; n];
    for _ in 0..=n.min(64) {
        for index in 0..n {
            if let Spec::OfsDelta { delta, .. } | Spec::RefDelta { delta, .. } = &specs[index] {
                let base = bases[index].and_then(|b| base_len[b]).unwrap_or(0);
                let instructions = delta.instructions();
                let mut data = Vec::new();
                varint(honest(&delta.base_size, base), &mut data);
                let result = reference_result_len(&instructions);
                if result > MAX_OBJECT {
                    return None;
                }
                varint(honest(&delta.result_size, result), &mut data);
                data.extend_from_slice(&instructions);
                deltas[index] = data;
            }
        }
        resolver.deltas = deltas.clone();
        resolver.done = vec![None; n];
        let lens: Vec<Option<u64>> = (0..n)
            .map(|index| match resolver.expect(index, 0) {
                Expect::Object(_, data) => Some(data.len() as u64),
                _ => None,
            })
            .collect();
        if lens == base_len {
            break;
        }
        base_len = lens;
    }
    let expects: Vec<Expect> = (0..n).map(|index| resolver.expect(index, 0)).collect();
    let ids: Vec<[u8; 20]> = expects
        .iter()
        .enumerate()
        .map(|(index, expect)| match expect {
            Expect::Object(kind, data) => object_id(*kind, data),
            _ => stand_in_id(index),
        })
        .collect();

    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"PACK");
    bytes.extend_from_slice(&2u32.to_be_bytes());
    let count = description.count.unwrap_or(n as u32);
    bytes.extend_from_slice(&count.to_be_bytes());
    let mut entries = Vec::with_capacity(n);
    let mut offsets = Vec::with_capacity(n);
    for (index, spec) in specs.iter().enumerate() {
        let offset = bytes.len() as u64;
        offsets.push(offset);
        match spec {
            Spec::Raw(raw) => bytes.extend_from_slice(raw),
            Spec::Whole { kind, data, size } => {
                let data = data.bytes();
                entry_header(kind % 8, honest(size, data.len() as u64), &mut bytes);
                bytes.extend_from_slice(&deflate(&data));
            }
            Spec::OfsDelta { size, delta, .. } | Spec::RefDelta { size, delta, .. } => {
                let data = &deltas[index];
                let declared = honest(size, data.len() as u64);
                match (spec, bases[index]) {
                    (Spec::OfsDelta { .. }, Some(base)) => {
                        entry_header(6, declared, &mut bytes);
                        ofs_distance(offset - offsets[base], &mut bytes);
                    }
                    (Spec::OfsDelta { .. }, None) => {
                        // The first entry: a distance past the pack's start.
                        entry_header(6, declared, &mut bytes);
                        ofs_distance(offset + 1, &mut bytes);
                    }
                    (_, base) => {
                        entry_header(7, declared, &mut bytes);
                        bytes.extend_from_slice(&ids[base.unwrap_or(0)]);
                    }
                }
                let mut compressed = deflate(data);
                if let Some(keep) = delta.truncate {
                    compressed.truncate(usize::from(keep));
                }
                bytes.extend_from_slice(&compressed);
            }
        }
        entries.push((offset, ids[index], expects[index].clone()));
    }
    if let Some(cut) = description.cut {
        let keep = bytes.len().saturating_sub(usize::from(cut));
        bytes.truncate(keep.max(12));
    }
    let trailer: [u8; 20] = Sha1::digest(&bytes).into();
    bytes.extend_from_slice(&trailer);
    if let Some((at, xor)) = description.flip {
        let at = usize::from(at) % bytes.len();
        bytes[at] ^= xor;
    }
    let intact = description.count.is_none_or(|c| c as usize == n)
        && description.cut.is_none_or(|c| c == 0)
        && description.flip.is_none_or(|(_, xor)| xor == 0)
        && specs.iter().all(|spec| match spec {
            Spec::OfsDelta { delta, .. } | Spec::RefDelta { delta, .. } => delta.truncate.is_none(),
            _ => true,
        });
    Some(Built {
        bytes,
        entries,
        intact,
    })
}

fn honest(size: &Size, actual: u64) -> u64 {
    match size {
        Size::Honest => actual,
        Size::Declared(declared) => *declared,
    }
}

/// How many bytes the instructions produce when every copy is in range (the honest result
/// size).
fn reference_result_len(instructions: &[u8]) -> u64 {
    let mut at = 0usize;
    let mut len = 0u64;
    while at < instructions.len() {
        let command = instructions[at];
        at += 1;
        if command & 0x80 != 0 {
            let mut size = 0u64;
            at += (command & 0x0f).count_ones() as usize;
            for i in 0..3 {
                if command & (0x10 << i) != 0 {
                    size |= u64::from(instructions.get(at).copied().unwrap_or(0)) << (8 * i);
                    at += 1;
                }
            }
            len += if size == 0 { 0x10000 } else { size };
        } else {
            at += usize::from(command);
            len += u64::from(command);
        }
    }
    len
}
