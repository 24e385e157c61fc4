//! Content ids: Git blob ids, so that a Git source gives them for free.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The id of a file's content: the Git blob id (SHA-1 of `blob <len>\0<bytes>`).
///
/// Git sources read it from the tree without touching the blob; everything else (a local
/// directory, rendered templates, live files) computes it with [`ContentId::of_blob`] (feature
/// `hash`), so ids from any source compare equal for equal bytes.
///
/// ```
/// # #[cfg(feature = "hash")] {
/// use stoker_core::ContentId;
/// // `git hash-object` of an empty file
/// assert_eq!(
///     ContentId::of_blob(b"").to_string(),
///     "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
/// );
/// # }
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentId(pub [u8; 20]);

impl ContentId {
    /// Computes the Git blob id of `bytes`.
    #[cfg(feature = "hash")]
    pub fn of_blob(bytes: &[u8]) -> Self {
        let mut hasher = BlobHasher::new(bytes.len() as u64);
        hasher.update(bytes);
        hasher.finish()
    }

    /// Parses 40 hexadecimal digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 40 {
            return None;
        }
        let mut id = [0u8; 20];
        for (slot, pair) in id.iter_mut().zip(bytes.chunks_exact(2)) {
            let high = hex_value(pair[0])?;
            let low = hex_value(pair[1])?;
            *slot = (high << 4) | low;
        }
        Some(ContentId(id))
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Streams bytes into a Git blob id when the length is known up front (a file being copied).
///
/// ```
/// # #[cfg(feature = "hash")] {
/// use stoker_core::content_id::{BlobHasher, ContentId};
/// let mut hasher = BlobHasher::new(11);
/// hasher.update(b"hello ");
/// hasher.update(b"world");
/// assert_eq!(hasher.finish(), ContentId::of_blob(b"hello world"));
/// # }
/// ```
#[cfg(feature = "hash")]
pub struct BlobHasher {
    inner: sha1::Sha1,
}

#[cfg(feature = "hash")]
impl BlobHasher {
    /// Starts a blob of `len` bytes.
    pub fn new(len: u64) -> Self {
        use sha1::Digest;
        let mut inner = sha1::Sha1::new();
        inner.update(format!("blob {len}\0").as_bytes());
        BlobHasher { inner }
    }

    /// Feeds the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        use sha1::Digest;
        self.inner.update(bytes);
    }

    /// The id. It is only the Git blob id if exactly `len` bytes were fed.
    pub fn finish(self) -> ContentId {
        use sha1::Digest;
        ContentId(self.inner.finalize().into())
    }
}

impl std::fmt::Display for ContentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for ContentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ContentId({self})")
    }
}

impl Serialize for ContentId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ContentId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        ContentId::from_hex(&text)
            .ok_or_else(|| serde::de::Error::custom("a content id is 40 hexadecimal digits"))
    }
}

#[cfg(all(test, feature = "hash"))]
mod tests {
    use super::*;

    #[test]
    fn content_id_matches_git_hash_object() {
        // printf 'hello\n' | git hash-object --stdin
        assert_eq!(
            ContentId::of_blob(b"hello\n").to_string(),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
    }

    #[test]
    fn hex_round_trips() {
        let id = ContentId::of_blob(b"x");
        assert_eq!(ContentId::from_hex(&id.to_string()), Some(id));
        assert_eq!(ContentId::from_hex("xyz"), None);
    }
}
