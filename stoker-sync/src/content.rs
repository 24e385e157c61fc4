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
    let bytes = artifact.read(&file.source)?;
    let revision_free = !file.transform.template || !mentions_revision(&bytes);
    let produced = transform(path, file, bytes, context)?;
    let recipe = revision_free.then(|| Recipe {
        fingerprint: fingerprint(file, context),
        source_id: file.source_id,
    });
    Ok((ContentId::of_blob(&produced), recipe))
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
