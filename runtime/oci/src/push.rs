//! Pushing a component as a Wasm OCI artifact (`membrane push`): the config blob and the
//! component layer are uploaded unless the registry has them (`HEAD` first), each in one
//! `POST` + `PUT` (the distribution API's monolithic upload), then the manifest is put
//! under the reference's tag.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, LOCATION};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use membrane_core::spec::oci::{Digest, OciRef};

use crate::artifact::{Artifact, MANIFEST_MEDIA_TYPE};
use crate::cache::digest_of;
use crate::error::{Object, OciError, OciErrorKind};
use crate::fetcher::OciFetcher;
use crate::registry::{Access, Session, unexpected};

/// What a push made.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pushed {
    /// The digest of the artifact's manifest: pin it with `oci://host/repo@<digest>`.
    pub manifest: Digest,
    /// The digest of the component layer.
    pub component: Digest,
}

/// What describes the component in the artifact's config: its world's exports and
/// imports (`wasi:http/incoming-handler@0.2.0`, ...), as `wkg oci push` records them.
#[derive(Debug, Clone, Default)]
pub struct World {
    /// The world's exports.
    pub exports: Vec<String>,
    /// The world's imports.
    pub imports: Vec<String>,
}

impl OciFetcher {
    /// Pushes `component` (the bytes of a component, checked by the caller) to `r`, which
    /// must name a tag, in the Wasm OCI artifact layout.
    pub async fn push(
        &self,
        r: &OciRef,
        component: Bytes,
        world: World,
    ) -> Result<Pushed, OciError> {
        let err = |kind| OciError::new(r, kind);
        let Some(tag) = r.tag() else {
            return Err(err(OciErrorKind::Protocol {
                detail: "a push needs a tag to put the artifact under (oci://host/repo:tag)".into(),
            }));
        };
        let http = self.http(r)?;
        let mut s = Session::new(http, self.settings(), r, Access::Push).map_err(err)?;
        let component_digest = digest_of(&component);
        let artifact = Artifact::new(
            &component_digest,
            component.len() as u64,
            world.exports,
            world.imports,
        );
        let config_digest = digest_of(&artifact.config);
        upload(
            &mut s,
            &config_digest,
            Bytes::from(artifact.config),
            Object::Config,
        )
        .await
        .map_err(err)?;
        upload(&mut s, &component_digest, component, Object::Component)
            .await
            .map_err(err)?;
        let manifest = digest_of(&artifact.manifest);
        let target = s.target(&format!("manifests/{tag}"));
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(MANIFEST_MEDIA_TYPE));
        let response = s
            .request(Method::PUT, &target, h, Bytes::from(artifact.manifest))
            .await
            .map_err(err)?;
        if response.status != StatusCode::CREATED && response.status != StatusCode::OK {
            return Err(err(unexpected(response, Object::Manifest, tag).await));
        }
        if let Some(announced) = response
            .headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Digest::parse(v).ok())
            && announced != manifest
        {
            return Err(err(OciErrorKind::DigestMismatch {
                object: Object::Manifest,
                expected: manifest,
                actual: announced,
            }));
        }
        Ok(Pushed {
            manifest,
            component: component_digest,
        })
    }
}

/// Uploads `bytes` of `digest` unless the repository has it.
async fn upload(
    s: &mut Session<'_>,
    digest: &Digest,
    bytes: Bytes,
    object: Object,
) -> Result<(), OciErrorKind> {
    let blob = s.target(&format!("blobs/{digest}"));
    let head = s
        .request(Method::HEAD, &blob, HeaderMap::new(), Bytes::new())
        .await?;
    if head.status == StatusCode::OK {
        return Ok(());
    }
    drop(head);
    let start = s.target("blobs/uploads/");
    let started = s
        .request(Method::POST, &start, HeaderMap::new(), Bytes::new())
        .await?;
    if started.status != StatusCode::ACCEPTED {
        return Err(unexpected(started, object, digest.as_str()).await);
    }
    let Some(location) = started.headers.get(LOCATION).and_then(|v| v.to_str().ok()) else {
        return Err(OciErrorKind::Protocol {
            detail: "the registry started an upload without a Location to send it to".into(),
        });
    };
    let mut put = started.from.join(location)?;
    let sep = if put.path.contains('?') { '&' } else { '?' };
    put.path = format!("{}{sep}digest={digest}", put.path);
    drop(started);
    let mut h = HeaderMap::new();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    let done = s.request(Method::PUT, &put, h, bytes).await?;
    if done.status != StatusCode::CREATED {
        return Err(unexpected(done, object, digest.as_str()).await);
    }
    Ok(())
}
