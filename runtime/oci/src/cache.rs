//! Pulled artifacts on disk, by digest, under the runtime's cache directory:
//!
//! ```text
//! <cache>/oci/sha256/<hex>.wasm                 component layers
//! <cache>/oci/manifests/sha256/<hex>.json       their manifests
//! ```
//!
//! Directories are private (0700; one others can write is refused, as for compiled code).
//! A file is written under a temporary name and renamed into place only once its bytes
//! hash to its digest, and it is hashed again whenever it is used: a damaged or altered
//! entry is removed and pulled again, never used.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use membrane_core::spec::oci::Digest;
use sha2::{Digest as _, Sha256};

use crate::error::OciErrorKind;

/// The artifacts cache.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// The cache under `cache_dir` (the runtime's cache directory).
    pub fn new(cache_dir: &Path) -> Cache {
        Cache {
            root: cache_dir.join("oci"),
        }
    }

    /// Where the component of `digest` is kept.
    pub fn component_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("sha256")
            .join(format!("{}.wasm", digest.hex()))
    }

    fn manifest_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("manifests")
            .join("sha256")
            .join(format!("{}.json", digest.hex()))
    }

    /// The kept component of `digest`, when it is there and still hashes to it.
    pub async fn component(&self, digest: &Digest) -> Result<Option<PathBuf>, OciErrorKind> {
        let path = self.component_path(digest);
        let verified = verify(path.clone(), digest.clone(), None).await?;
        Ok(verified.map(|_| path))
    }

    /// The kept manifest of `digest`, when it is there and still hashes to it.
    pub async fn manifest(
        &self,
        digest: &Digest,
        max: u64,
    ) -> Result<Option<Vec<u8>>, OciErrorKind> {
        verify(self.manifest_path(digest), digest.clone(), Some(max)).await
    }

    /// Keeps `bytes`, the manifest of `digest` (already verified by the caller).
    pub async fn store_manifest(
        &self,
        digest: &Digest,
        bytes: Vec<u8>,
    ) -> Result<(), OciErrorKind> {
        let path = self.manifest_path(digest);
        blocking(move || {
            let mut w = Writer::create(&path)?;
            w.write(&bytes)?;
            w.commit(&path)
        })
        .await
    }

    /// A writer for the component of `digest`.
    pub async fn component_writer(&self, digest: &Digest) -> Result<BlobWriter, OciErrorKind> {
        let path = self.component_path(digest);
        let writer = blocking({
            let path = path.clone();
            move || Writer::create(&path)
        })
        .await?;
        Ok(BlobWriter {
            writer: Some(writer),
            path,
            hasher: Sha256::new(),
            written: 0,
        })
    }
}

/// A component being downloaded: hashed as it is written, in place only once verified.
pub struct BlobWriter {
    writer: Option<Writer>,
    path: PathBuf,
    hasher: Sha256,
    written: u64,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Appends `data`. Local disk writes of one network frame are short enough to do on the
    /// task that downloads.
    pub fn write(&mut self, data: &[u8]) -> Result<(), OciErrorKind> {
        self.hasher.update(data);
        self.written += data.len() as u64;
        match &mut self.writer {
            Some(w) => w.write(data),
            None => Ok(()),
        }
    }

    /// The digest of what was written.
    pub fn digest(&self) -> Digest {
        digest_of_hasher(self.hasher.clone())
    }

    /// Puts the file in place if what was written hashes to `expected`; otherwise removes
    /// it and returns the actual digest.
    pub fn finish(mut self, expected: &Digest) -> Result<Result<PathBuf, Digest>, OciErrorKind> {
        let actual = self.digest();
        let Some(w) = self.writer.take() else {
            return Ok(Err(actual));
        };
        if actual != *expected {
            w.discard();
            return Ok(Err(actual));
        }
        w.commit(&self.path)?;
        Ok(Ok(self.path.clone()))
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if let Some(w) = self.writer.take() {
            w.discard();
        }
    }
}

/// A file under a temporary name beside its final one.
struct Writer {
    tmp: PathBuf,
    file: std::fs::File,
}

impl Writer {
    fn create(path: &Path) -> Result<Writer, OciErrorKind> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = path.parent().unwrap_or(Path::new("."));
        membrane_core::cache::private_dir(dir).map_err(|e| cache_error(dir, &e))?;
        let mut n = 0u32;
        loop {
            let tmp = dir.join(format!(".tmp-{}-{n}", std::process::id()));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
            {
                Ok(file) => return Ok(Writer { tmp, file }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(e) => return Err(cache_error(&tmp, &e)),
            }
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<(), OciErrorKind> {
        self.file
            .write_all(data)
            .map_err(|e| cache_error(&self.tmp, &e))
    }

    fn commit(self, path: &Path) -> Result<(), OciErrorKind> {
        let result = self
            .file
            .sync_all()
            .and_then(|()| std::fs::rename(&self.tmp, path));
        if let Err(e) = result {
            let _ = std::fs::remove_file(&self.tmp);
            return Err(cache_error(path, &e));
        }
        Ok(())
    }

    fn discard(self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

fn cache_error(path: &Path, e: &dyn std::fmt::Display) -> OciErrorKind {
    OciErrorKind::Cache {
        path: path.to_path_buf(),
        cause: e.to_string(),
    }
}

/// The SHA-256 digest of `bytes`.
pub fn digest_of(bytes: &[u8]) -> Digest {
    digest_of_hasher(Sha256::new_with_prefix(bytes))
}

fn digest_of_hasher(h: Sha256) -> Digest {
    let hex = h
        .finalize()
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            use std::fmt::Write as _;
            let _ = write!(s, "{b:02x}");
            s
        });
    Digest::sha256(&hex).expect("64 lowercase hex digits")
}

/// The file at `path` if it hashes to `digest`: its bytes when `keep` bounds them, else an
/// empty vector. A file that does not match is removed; none gives `None`.
async fn verify(
    path: PathBuf,
    digest: Digest,
    keep: Option<u64>,
) -> Result<Option<Vec<u8>>, OciErrorKind> {
    blocking(move || {
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(cache_error(&path, &e)),
        };
        let mut h = Sha256::new();
        let mut kept = Vec::new();
        let mut buf = vec![0u8; 256 << 10];
        let mut reader = std::io::BufReader::new(file);
        loop {
            let n = reader.read(&mut buf).map_err(|e| cache_error(&path, &e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            if let Some(max) = keep {
                if kept.len() as u64 + n as u64 > max {
                    let _ = std::fs::remove_file(&path);
                    return Ok(None);
                }
                kept.extend_from_slice(&buf[..n]);
            }
        }
        if digest_of_hasher(h) != digest {
            tracing::warn!(target: "membrane::oci", path = %path.display(), "a cached artifact does not match its digest; it is removed and pulled again");
            let _ = std::fs::remove_file(&path);
            return Ok(None);
        }
        Ok(Some(kept))
    })
    .await
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, OciErrorKind> + Send + 'static,
) -> Result<T, OciErrorKind> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| OciErrorKind::Cache {
            path: PathBuf::new(),
            cause: format!("the cache task failed: {e}"),
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_are_used_only_while_they_match_their_digest() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let bytes = b"\0asm component bytes";
        let d = digest_of(bytes);
        assert_eq!(cache.component(&d).await.unwrap(), None);
        let mut w = cache.component_writer(&d).await.unwrap();
        w.write(bytes).unwrap();
        let path = w.finish(&d).unwrap().unwrap();
        assert_eq!(cache.component(&d).await.unwrap(), Some(path.clone()));
        std::fs::write(&path, b"altered").unwrap();
        assert_eq!(cache.component(&d).await.unwrap(), None);
        assert!(!path.exists(), "an altered entry is removed");

        let mut w = cache.component_writer(&d).await.unwrap();
        w.write(b"other bytes").unwrap();
        let actual = w.finish(&d).unwrap().unwrap_err();
        assert_eq!(actual, digest_of(b"other bytes"));
        assert!(!path.exists(), "bytes of another digest are not kept");
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        cache.store_manifest(&d, bytes.to_vec()).await.unwrap();
        assert_eq!(
            cache.manifest(&d, 100).await.unwrap().as_deref(),
            Some(&bytes[..])
        );
        assert_eq!(cache.manifest(&d, 4).await.unwrap(), None);
    }
}
