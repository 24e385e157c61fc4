//! Producing a desired file's bytes: the source blob, rendered and patched; hashing sources
//! and live files.
//!
//! **Memory per file.** A file copied as it is (no `template`, no `patches`) is never held
//! whole: it is hashed here, and written by `apply`, through [`Artifact::open`] in chunks
//! ([`crate::fsops::copy_sparse`]), and so are live files ([`hash_file`]). A transformed file is
//! configuration text, rendered and patched in memory: its source may be at most
//! [`MAX_TRANSFORMED_BYTES`] ([`Error::TooLargeToTransform`] otherwise).

use std::io::Read;

use stoker_core::content_id::BlobHasher;
use stoker_core::{Artifact, ContentId, TemplateContext, patch, template};

use crate::desired::DesiredFile;
use crate::error::{Error, Result};

/// The largest source a template or patch is applied to (64 MiB): transformed files are held
/// in memory, several at once (one per I/O thread).
pub const MAX_TRANSFORMED_BYTES: u64 = 64 << 20;

/// Reads the source of `file` and applies its transform. `path` is the destination (for errors).
/// The source is read whole, so it may be at most [`MAX_TRANSFORMED_BYTES`]; use [`open`] for a
/// file copied as it is.
pub fn produce(
    artifact: &dyn Artifact,
    path: &str,
    file: &DesiredFile,
    context: &TemplateContext,
) -> Result<Vec<u8>> {
    let bytes = read_to_transform(artifact, path, file)?;
    transform(path, file, bytes, context)
}

/// The source of a transformed `file`, whole, refused beyond [`MAX_TRANSFORMED_BYTES`] (before
/// reading when the listing says so, and while reading when it grew since).
fn read_to_transform(artifact: &dyn Artifact, path: &str, file: &DesiredFile) -> Result<Vec<u8>> {
    let too_large = |size| Error::TooLargeToTransform {
        path: path.to_owned(),
        source_path: file.source.clone(),
        mapping: file.mapping,
        size,
        limit: MAX_TRANSFORMED_BYTES,
    };
    if file.source_size > MAX_TRANSFORMED_BYTES {
        return Err(too_large(file.source_size));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(file.source_size).unwrap_or(0));
    artifact
        .open(&file.source)?
        .take(MAX_TRANSFORMED_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| Error::io("reading source", file.source.clone(), source))?;
    if bytes.len() as u64 > MAX_TRANSFORMED_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// What `apply` writes at `path`, as a reader, and the length it should yield: the source
/// streamed from the artifact for a file copied as it is (whatever its size), the produced
/// bytes for a transformed one.
pub fn open<'a>(
    artifact: &'a dyn Artifact,
    path: &str,
    file: &DesiredFile,
    context: &TemplateContext,
) -> Result<(Box<dyn Read + Send + 'a>, u64)> {
    if file.transform.is_identity() {
        return Ok((artifact.open(&file.source)?, file.source_size));
    }
    let bytes = produce(artifact, path, file, context)?;
    let len = bytes.len() as u64;
    Ok((Box::new(std::io::Cursor::new(bytes)), len))
}

/// The content id and length of what [`open`] yields, read in chunks (a dry run's report).
pub fn hash_content(
    artifact: &dyn Artifact,
    path: &str,
    file: &DesiredFile,
    context: &TemplateContext,
) -> Result<(ContentId, u64)> {
    if file.transform.is_identity() {
        return hash_source(artifact, file);
    }
    let bytes = produce(artifact, path, file, context)?;
    Ok((ContentId::of_blob(&bytes), bytes.len() as u64))
}

/// Hashes the source of an untransformed `file` through [`Artifact::open`], in chunks.
fn hash_source(artifact: &dyn Artifact, file: &DesiredFile) -> Result<(ContentId, u64)> {
    hash_twice(|| artifact.open(&file.source), file.source_size).map_err(|error| match error {
        Opened::Open(error) => error.into(),
        Opened::Io(source) => Error::io("reading source", file.source.clone(), source),
    })
}

/// Applies `file`'s transform to the source bytes.
pub fn transform(
    path: &str,
    file: &DesiredFile,
    mut bytes: Vec<u8>,
    context: &TemplateContext,
) -> Result<Vec<u8>> {
    if file.transform.template {
        if bytes.contains(&0) {
            return Err(Error::Content {
                path: path.to_owned(),
                message: format!(
                    "{} is a binary file (it contains a NUL byte) and cannot be rendered as a template (mappings[{}].template is true)",
                    file.source, file.mapping
                ),
                source: None,
            });
        }
        let text = String::from_utf8(bytes).map_err(|_| Error::Content {
            path: path.to_owned(),
            message: format!(
                "{} is not UTF-8 text and cannot be rendered as a template (mappings[{}].template is true)",
                file.source, file.mapping
            ),
            source: None,
        })?;
        bytes = if template::has_actions(&text) {
            template::render(&file.source, &text, context)?.into_bytes()
        } else {
            text.into_bytes()
        };
    }
    if !file.transform.patches.is_empty() {
        bytes = patch::apply_patches(path, &bytes, &file.transform.patches)?;
    }
    Ok(bytes)
}

/// Content id of the desired content: free when the source knows it and nothing is transformed,
/// otherwise computed from the produced bytes.
pub fn desired_id(
    artifact: &dyn Artifact,
    path: &str,
    file: &DesiredFile,
    context: &TemplateContext,
) -> Result<ContentId> {
    if let Some(id) = file.known_id() {
        return Ok(id);
    }
    if file.transform.is_identity() {
        let (id, _) = hash_source(artifact, file)?;
        // A source without free ids (a local directory) may remember it for next time.
        artifact.record_content_id(&file.source, id);
        return Ok(id);
    }
    Ok(ContentId::of_blob(&produce(artifact, path, file, context)?))
}

/// What a transformed file's content is made of besides its source's bytes, kept in the manifest
/// so that a later plan knows, without producing it, that the desired content has not changed:
/// when the fingerprint is the same and the source's bytes are the same (equal content ids, or
/// a path the source's diff does not list), the content id is the one recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recipe {
    /// Fingerprint of the source path, the transform (template flag, rendered patches) and, for
    /// a template, the variables other than `Commit` and `Ref`.
    pub fingerprint: ContentId,
    /// The source's content id, when the source listed it.
    pub source_id: Option<ContentId>,
}

/// The fingerprint of everything but the source's bytes that `file`'s content depends on, for a
/// template that does not use `{{.Commit}}` or `{{.Ref}}`.
pub fn fingerprint(file: &DesiredFile, context: &TemplateContext) -> ContentId {
    let variables = file.transform.template.then(|| {
        let mut variables = context.clone();
        variables.commit = None;
        variables.reference = None;
        variables
    });
    let text = format!(
        "{}\0{:?}\0{:?}",
        file.source, file.transform.patches, variables
    );
    ContentId::of_blob(text.as_bytes())
}

/// True when a template's text may read `{{.Commit}}` or `{{.Ref}}` (which change with every
/// revision): its content is then never reused from the manifest.
fn mentions_revision(text: &[u8]) -> bool {
    text.windows(3).any(|window| window == b"Ref")
        || text.windows(6).any(|window| window == b"Commit")
}

/// Content id of a transformed file's desired content (produced, never taken from the source),
/// and its [`Recipe`] unless it depends on the revision.
pub fn transformed_id(
    artifact: &dyn Artifact,
    path: &str,
    file: &DesiredFile,
    context: &TemplateContext,
) -> Result<(ContentId, Option<Recipe>)> {
    let bytes = read_to_transform(artifact, path, file)?;
    let revision_free = !file.transform.template || !mentions_revision(&bytes);
    let produced = transform(path, file, bytes, context)?;
    let recipe = revision_free.then(|| Recipe {
        fingerprint: fingerprint(file, context),
        source_id: file.source_id,
    });
    Ok((ContentId::of_blob(&produced), recipe))
}

/// Hashes a reader as a Git blob of `expected_len` bytes, in chunks (constant memory). Returns
/// the id and how many bytes the reader yielded: the id is the blob id only when that is
/// `expected_len` (a blob id hashes its length first).
pub fn hash_reader(reader: &mut dyn Read, expected_len: u64) -> std::io::Result<(ContentId, u64)> {
    let size = usize::try_from(expected_len.saturating_add(1))
        .unwrap_or(HASH_CHUNK)
        .clamp(512, HASH_CHUNK);
    let mut buffer = vec![0u8; size];
    let mut hasher = BlobHasher::new(expected_len);
    let mut len = 0u64;
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        hasher.update(&buffer[..read]);
        len += read as u64;
    }
    Ok((hasher.finish(), len))
}

/// How much [`hash_reader`] reads at a time.
const HASH_CHUNK: usize = 128 << 10;

/// Why [`hash_twice`] failed.
enum Opened<E> {
    Open(E),
    Io(std::io::Error),
}

/// Hashes what `open` yields, announced as `expected_len` bytes; when it yields another length
/// (the file changed since it was listed or `stat`ed), opens and hashes it again with the length
/// seen. A third length in a row is an error.
fn hash_twice<R: Read, E>(
    mut open: impl FnMut() -> std::result::Result<R, E>,
    expected_len: u64,
) -> std::result::Result<(ContentId, u64), Opened<E>> {
    let mut expected = expected_len;
    for _ in 0..2 {
        let mut reader = open().map_err(Opened::Open)?;
        let (id, len) = hash_reader(&mut reader, expected).map_err(Opened::Io)?;
        if len == expected {
            return Ok((id, len));
        }
        expected = len;
    }
    Err(Opened::Io(std::io::Error::other(
        "the file changed while it was being read",
    )))
}

/// Hashes a live file (or any local file) in chunks.
pub fn hash_file(path: &std::path::Path) -> std::io::Result<ContentId> {
    let len = std::fs::symlink_metadata(path)?.len();
    match hash_twice(|| std::fs::File::open(path), len) {
        Ok((id, _)) => Ok(id),
        Err(Opened::Open(error) | Opened::Io(error)) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hashing_in_chunks_gives_the_blob_id() {
        let bytes: Vec<u8> = (0..(3 * HASH_CHUNK + 17))
            .map(|i| (i % 251) as u8)
            .collect();
        let (id, len) = hash_reader(&mut &bytes[..], bytes.len() as u64).unwrap();
        assert_eq!((id, len), (ContentId::of_blob(&bytes), bytes.len() as u64));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, &bytes).unwrap();
        assert_eq!(hash_file(&file).unwrap(), ContentId::of_blob(&bytes));
    }

    #[test]
    fn a_length_other_than_announced_is_hashed_again_with_the_length_seen() {
        let mut calls = 0;
        let (id, len) = hash_twice(
            || {
                calls += 1;
                Ok::<_, ()>(&b"grown"[..])
            },
            3,
        )
        .ok()
        .unwrap();
        assert_eq!((id, len, calls), (ContentId::of_blob(b"grown"), 5, 2));
    }
}
