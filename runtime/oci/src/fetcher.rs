//! [`OciFetcher`]: the runtime's `ComponentFetcher` for `oci://` references.
//!
//! A pull, in order, asking the registry only for what the cache lacks:
//! 1. pinned by `membrane.lock` and the locked component is cached: no request at all;
//! 2. the manifest: from the cache when the reference is pinned by digest, else from the
//!    registry (by the pinned digest, or by tag), its bytes checked against the pinned
//!    digest (and against the `Docker-Content-Digest` the registry announces);
//! 3. its one component layer ([`crate::artifact`]); with a lock, it must be the locked
//!    one; larger than the limit is refused before a byte is read;
//! 4. the layer: from the cache, else streamed into a temporary file, hashed as it comes,
//!    stopped at its declared size, and kept only if it hashes to its digest.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use membrane_core::fetch::{BoxFuture, ComponentFetcher, FetchRequest, Fetched};
use membrane_core::spec::oci::{Digest, OciRef};

use crate::artifact::{self, MAX_MANIFEST};
use crate::cache::{Cache, digest_of};
use crate::error::{Object, OciError, OciErrorKind};
use crate::http::Http;
use crate::registry::{Access, Session, unexpected};
use crate::settings::Settings;

/// What a pull resolved a reference to, and where the component is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pulled {
    /// The digest of the artifact's manifest.
    pub manifest: Digest,
    /// The digest of its component layer.
    pub component: Digest,
    /// The cached component file.
    pub path: PathBuf,
}

/// Pulls `oci://` components into `<cache>/oci` (see the crate's documentation). Cheap to
/// clone.
#[derive(Clone)]
pub struct OciFetcher {
    inner: Arc<Inner>,
}

struct Inner {
    cache: Cache,
    settings: Settings,
    http: Result<Http, String>,
}

impl std::fmt::Debug for OciFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciFetcher")
            .field("cache", &self.inner.cache)
            .field("settings", &self.inner.settings)
            .finish()
    }
}

impl OciFetcher {
    /// A fetcher keeping artifacts under `cache_dir` (the runtime's cache directory,
    /// `membrane::default_cache_dir()` for the command), with [`Settings::from_env`].
    pub fn new(cache_dir: impl Into<PathBuf>) -> OciFetcher {
        OciFetcher::with_settings(cache_dir, Settings::from_env())
    }

    /// A fetcher with explicit settings.
    pub fn with_settings(cache_dir: impl Into<PathBuf>, settings: Settings) -> OciFetcher {
        let http = settings
            .roots()
            .and_then(|roots| Http::new(roots, settings.insecure.clone()));
        OciFetcher {
            inner: Arc::new(Inner {
                cache: Cache::new(&cache_dir.into()),
                settings,
                http,
            }),
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub(crate) fn http(&self, r: &OciRef) -> Result<&Http, OciError> {
        self.inner
            .http
            .as_ref()
            .map_err(|e| OciError::new(r, OciErrorKind::Credentials { detail: e.clone() }))
    }

    /// Pulls the component of `r` (at most `max_size` bytes) into the cache, or finds it
    /// there, verified by digest.
    pub async fn pull(&self, r: &OciRef, max_size: u64) -> Result<Pulled, OciError> {
        self.pull_inner(r, max_size)
            .await
            .map_err(|kind| OciError::new(r, kind))
    }

    async fn pull_inner(&self, r: &OciRef, max_size: u64) -> Result<Pulled, OciErrorKind> {
        let cache = &self.inner.cache;
        if let Some(l) = r.locked()
            && let Some(path) = cache.component(&l.component).await?
        {
            tracing::debug!(target: "membrane::oci", reference = %r, digest = %l.component, "locked component found in the cache");
            return Ok(Pulled {
                manifest: l.manifest.clone(),
                component: l.component.clone(),
                path,
            });
        }
        let http = self
            .inner
            .http
            .as_ref()
            .map_err(|e| OciErrorKind::Credentials { detail: e.clone() })?;
        let mut session: Option<Session<'_>> = None;
        let (manifest, bytes, content_type) = match r.pinned() {
            Some(d) => match cache.manifest(d, MAX_MANIFEST).await? {
                Some(bytes) => (d.clone(), bytes, None),
                None => {
                    let s = open(&mut session, http, &self.inner.settings, r)?;
                    let (bytes, content_type) = get_manifest(s, d.as_str()).await?;
                    let actual = digest_of(&bytes);
                    if actual != *d {
                        return Err(OciErrorKind::DigestMismatch {
                            object: Object::Manifest,
                            expected: d.clone(),
                            actual,
                        });
                    }
                    cache.store_manifest(d, bytes.to_vec()).await?;
                    (d.clone(), bytes.to_vec(), content_type)
                }
            },
            None => {
                let s = open(&mut session, http, &self.inner.settings, r)?;
                let (bytes, content_type) = get_manifest(s, r.manifest_reference()).await?;
                let d = digest_of(&bytes);
                cache.store_manifest(&d, bytes.to_vec()).await?;
                (d, bytes.to_vec(), content_type)
            }
        };
        let layer = artifact::component_layer(&bytes, content_type.as_deref())?;
        if let Some(l) = r.locked()
            && layer.digest != l.component
        {
            return Err(OciErrorKind::DigestMismatch {
                object: Object::Component,
                expected: l.component.clone(),
                actual: layer.digest,
            });
        }
        if layer.size > max_size {
            return Err(OciErrorKind::TooLarge {
                object: Object::Component,
                limit: max_size,
            });
        }
        if let Some(path) = cache.component(&layer.digest).await? {
            return Ok(Pulled {
                manifest,
                component: layer.digest,
                path,
            });
        }
        let s = open(&mut session, http, &self.inner.settings, r)?;
        let path = get_component(s, cache, &layer, max_size).await?;
        tracing::info!(target: "membrane::oci", reference = %r, manifest = %manifest, component = %layer.digest, bytes = layer.size, "component pulled");
        Ok(Pulled {
            manifest,
            component: layer.digest,
            path,
        })
    }
}

impl ComponentFetcher for OciFetcher {
    fn fetch<'a>(
        &'a self,
        request: FetchRequest<'a>,
    ) -> BoxFuture<'a, membrane_core::Result<Fetched>> {
        Box::pin(async move {
            self.pull(request.reference, request.max_size)
                .await
                .map(|p| Fetched::new(p.path, p.component))
                .map_err(|e| e.into_error(Some(request.module)))
        })
    }
}

/// The session of `slot`, opened on first use: a pull that finds everything cached makes
/// no request.
fn open<'s, 'h>(
    slot: &'s mut Option<Session<'h>>,
    http: &'h Http,
    settings: &Settings,
    r: &OciRef,
) -> Result<&'s mut Session<'h>, OciErrorKind> {
    if slot.is_none() {
        *slot = Some(Session::new(http, settings, r, Access::Pull)?);
    }
    Ok(slot.as_mut().expect("just set"))
}

/// The manifest `reference` (a tag or a digest) names, and its `Content-Type`.
async fn get_manifest(
    s: &mut Session<'_>,
    reference: &str,
) -> Result<(Bytes, Option<String>), OciErrorKind> {
    let target = s.target(&format!("manifests/{reference}"));
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static(artifact::ACCEPT));
    let response = s
        .request(Method::GET, &target, headers, Bytes::new())
        .await?;
    if response.status != StatusCode::OK {
        return Err(unexpected(response, Object::Manifest, reference).await);
    }
    let content_type = response
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let announced = response
        .headers
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Digest::parse(v).ok());
    let (bytes, _) = crate::http::read_limited(response, MAX_MANIFEST)
        .await
        .map_err(|e| {
            e.unwrap_or(OciErrorKind::TooLarge {
                object: Object::Manifest,
                limit: MAX_MANIFEST,
            })
        })?;
    if let Some(announced) = announced {
        let actual = digest_of(&bytes);
        if actual != announced {
            return Err(OciErrorKind::DigestMismatch {
                object: Object::Manifest,
                expected: announced,
                actual,
            });
        }
    }
    Ok((bytes, content_type))
}

/// Streams the component `layer` into the cache: at most its declared size (itself within
/// `max_size`), kept only if it hashes to its digest.
async fn get_component(
    s: &mut Session<'_>,
    cache: &Cache,
    layer: &artifact::Layer,
    max_size: u64,
) -> Result<PathBuf, OciErrorKind> {
    let target = s.target(&format!("blobs/{}", layer.digest));
    let response = s
        .request(Method::GET, &target, HeaderMap::new(), Bytes::new())
        .await?;
    if response.status != StatusCode::OK {
        return Err(unexpected(response, Object::Component, layer.digest.as_str()).await);
    }
    let limit = layer.size.min(max_size);
    if crate::http::content_length(&response.headers).is_some_and(|n| n > limit) {
        return Err(too_much(layer, max_size));
    }
    let mut body = response.body;
    let mut writer = cache.component_writer(&layer.digest).await?;
    while let Some(data) = crate::http::next_data(&mut body).await? {
        if writer.written() + data.len() as u64 > limit {
            return Err(too_much(layer, max_size));
        }
        writer.write(&data)?;
    }
    match writer.finish(&layer.digest)? {
        Ok(path) => Ok(path),
        Err(actual) => Err(OciErrorKind::DigestMismatch {
            object: Object::Component,
            expected: layer.digest.clone(),
            actual,
        }),
    }
}

/// A component body longer than its manifest declares, or than the limit.
fn too_much(layer: &artifact::Layer, max_size: u64) -> OciErrorKind {
    if layer.size >= max_size {
        OciErrorKind::TooLarge {
            object: Object::Component,
            limit: max_size,
        }
    } else {
        OciErrorKind::Protocol {
            detail: format!(
                "the registry sent more than the {} bytes the manifest declares for the component",
                layer.size
            ),
        }
    }
}
