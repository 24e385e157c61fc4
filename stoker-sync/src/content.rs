//! Producing a desired file's bytes: the source blob, rendered and patched.

use stoker_core::{Artifact, ContentId, TemplateContext, patch, template};

use crate::desired::DesiredFile;
use crate::error::{Error, Result};

/// Reads the source of `file` and applies its transform. `path` is the destination (for errors).
pub fn produce(
    artifact: &dyn Artifact,
    path: &str,
    file: &DesiredFile,
    context: &TemplateContext,
) -> Result<Vec<u8>> {
    let bytes = artifact.read(&file.source)?;
    transform(path, file, bytes, context)
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
        let mut reader = artifact.open(&file.source)?;
        let id = hash_reader(&mut reader, file.source_size)
            .map_err(|source| Error::io("reading source", file.source.clone(), source))?;
        // A source without free ids (a local directory) may remember it for next time.
        artifact.record_content_id(&file.source, id);
        return Ok(id);
    }
    Ok(ContentId::of_blob(&produce(artifact, path, file, context)?))
}

/// Hashes a reader as a Git blob. The length is not trusted: the bytes are buffered when the
/// reader yields a different amount than `expected_len`.
pub fn hash_reader(
    reader: &mut dyn std::io::Read,
    expected_len: u64,
) -> std::io::Result<ContentId> {
    // Small files (the common case) are read whole; the hasher needs the length up front.
    let mut bytes = Vec::with_capacity(usize::try_from(expected_len).unwrap_or(0).min(1 << 20));
    reader.read_to_end(&mut bytes)?;
    Ok(ContentId::of_blob(&bytes))
}

/// Hashes a live file.
pub fn hash_file(path: &std::path::Path) -> std::io::Result<ContentId> {
    let bytes = std::fs::read(path)?;
    Ok(ContentId::of_blob(&bytes))
}
