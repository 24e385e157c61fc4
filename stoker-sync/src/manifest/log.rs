//! The manifest's log, `manifest.log`: what incremental syncs changed, appended instead of
//! rewriting the manifest (see the parent module for the layout).

use std::path::Path;

use super::{ManifestDelta, wire};
use crate::error::{Error, Result};
use crate::fsops;
use crate::live::Stat;

/// The first bytes of `manifest.log`.
const MAGIC: &[u8; 8] = b"stkmlog1";

/// The magic, then the inode, size and mtime of the manifest the log extends.
pub(super) const HEADER_LEN: usize = 8 + 24;

/// Each record's length and CRC-32.
pub(super) const RECORD_HEADER_LEN: usize = 8;

/// The log is folded into a new manifest once it is longer than this and than a quarter of the
/// manifest: past that, reading it back costs more than rewriting the manifest saves.
const FLOOR: u64 = 256 * 1024;

/// The deltas a log holds, in order, and why the rest of it (if any) was not used.
pub(super) struct LogRead {
    pub(super) deltas: Vec<ManifestDelta>,
    pub(super) problem: Option<String>,
}

/// Identifies the manifest a log extends: it is only ever replaced by a rename, which gives a
/// new inode and mtime.
fn base_identity(base: &Stat) -> [u8; 24] {
    let mut identity = [0; 24];
    identity[..8].copy_from_slice(&base.ino.to_le_bytes());
    identity[8..16].copy_from_slice(&base.size.to_le_bytes());
    identity[16..].copy_from_slice(&base.mtime.to_le_bytes());
    identity
}

/// The header of a log extending the manifest whose `lstat` is `base`.
pub(super) fn header(base: &Stat) -> Vec<u8> {
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&base_identity(base));
    header
}

/// Reads a log written for the manifest whose `lstat` is `base`.
pub(super) fn read(bytes: &[u8], base: &Stat) -> LogRead {
    let mut read = LogRead {
        deltas: Vec::new(),
        problem: None,
    };
    if bytes.len() < HEADER_LEN || bytes[..MAGIC.len()] != MAGIC[..] {
        read.problem = Some("is not a manifest log".to_owned());
        return read;
    }
    if bytes[MAGIC.len()..HEADER_LEN] != base_identity(base) {
        read.problem = Some("extends another manifest".to_owned());
        return read;
    }
    let mut rest = &bytes[HEADER_LEN..];
    while !rest.is_empty() {
        let Some((payload, after)) = next_record(rest) else {
            read.problem = Some("ends in an incomplete or damaged record".to_owned());
            return read;
        };
        match wire::decode_delta(payload) {
            Ok(delta) => read.deltas.push(delta),
            Err(error) => {
                read.problem = Some(format!("holds a record that does not decode: {error}"));
                return read;
            }
        }
        rest = after;
    }
    read
}

/// The payload of the record `bytes` starts with, if complete and intact, and what follows it.
fn next_record(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let header = bytes.get(..RECORD_HEADER_LEN)?;
    let length = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().ok()?);
    let end = RECORD_HEADER_LEN.checked_add(length)?;
    let payload = bytes.get(RECORD_HEADER_LEN..end)?;
    (crc32fast::hash(payload) == crc).then(|| (payload, &bytes[end..]))
}

/// A delta as a log record.
pub(super) fn frame(payload: &[u8]) -> Option<Vec<u8>> {
    let length = u32::try_from(payload.len()).ok()?;
    let mut record = Vec::with_capacity(RECORD_HEADER_LEN + payload.len());
    record.extend_from_slice(&length.to_le_bytes());
    record.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    record.extend_from_slice(payload);
    Some(record)
}

/// True when a log of `log` (its `lstat`, `None`: no log yet) extending a manifest of `base`
/// would, with a record of `record_len` bytes more, be long enough to fold into the manifest.
pub(super) fn too_long(base: &Stat, log: Option<&Stat>, record_len: usize) -> bool {
    let after = log.map_or(HEADER_LEN as u64, |log| log.size) + record_len as u64;
    after > FLOOR && after > base.size / 4
}

/// True when the log at `log_file` starts with the header of a log extending `base`.
pub(super) fn header_matches(log_file: &Path, base: &Stat) -> bool {
    let mut found = [0; HEADER_LEN];
    fsops::open_state_file(log_file)
        .and_then(|file| file.ok_or_else(|| std::io::ErrorKind::NotFound.into()))
        .and_then(|file| std::io::Read::read_exact(&mut &file, &mut found))
        .is_ok_and(|()| found[..] == header(base)[..])
}

/// Writes `record` to the log, durably: a new log (with its header) when there is none yet,
/// else appended. A failure part-way leaves a torn record, which the next read reports (and
/// the next sync then rewrites the manifest).
pub(super) fn write_record(
    log_file: &Path,
    base: &Stat,
    exists: bool,
    record: &[u8],
) -> Result<()> {
    if !exists {
        let mut bytes = header(base);
        bytes.extend_from_slice(record);
        return fsops::write_state_file(log_file, &bytes);
    }
    let appended = fsops::open_state_file_append(log_file).and_then(|mut file| {
        std::io::Write::write_all(&mut file, record)?;
        file.sync_data()
    });
    appended.map_err(|source| Error::io("appending to", log_file, source))
}
