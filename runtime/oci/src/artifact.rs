//! The Wasm OCI artifact layout (the CNCF TAG Runtime's "Wasm OCI Artifact", what
//! `wkg oci push` and `oci-wasm` write): an OCI image manifest whose config has the media
//! type `application/vnd.wasm.config.v0+json` and whose one layer, `application/wasm`, is
//! the component. Reading accepts that and the layer media types older tools used; any
//! other artifact (an image index, a container image, several layers) is refused by name.

use membrane_core::spec::oci::Digest;
use serde::{Deserialize, Serialize};

use crate::error::OciErrorKind;

/// The OCI image manifest's media type.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker's image manifest, which some registries answer with for the same layout.
pub const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The config media type of a Wasm artifact.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The layer media type of a Wasm artifact's component.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The largest manifest read (the distribution spec lets registries refuse larger ones).
pub const MAX_MANIFEST: u64 = 4 << 20;

/// The media types a manifest request accepts. Indexes are asked for too, so that a tag
/// naming one is refused with that reason rather than a registry's conversion.
pub const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json";

/// Layer media types that hold a Wasm binary: the current one and those of earlier tools
/// (wasm-to-oci, the first wasmCloud and Krustlet artifacts).
const WASM_LAYER_MEDIA_TYPES: &[&str] = &[
    WASM_LAYER_MEDIA_TYPE,
    "application/vnd.wasm.content.layer.v1+wasm",
    "application/vnd.module.wasm.content.layer.v1+wasm",
];

const INDEX_MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// A content descriptor: what a manifest says about one blob.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Descriptor {
    /// The blob's media type.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// The blob's digest (`algorithm:hex`).
    pub digest: String,
    /// The blob's size in bytes.
    pub size: u64,
}

/// An image manifest.
#[derive(Debug, Serialize, Deserialize)]
pub struct ImageManifest {
    /// Always 2.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// The manifest's own media type (optional in the OCI spec).
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// Just enough of any manifest to tell what it is.
#[derive(Deserialize)]
struct Kind {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    manifests: Option<serde::de::IgnoredAny>,
}

/// The component layer of a Wasm artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The component's digest.
    pub digest: Digest,
    /// Its size, as the manifest declares it.
    pub size: u64,
}

/// The component layer of the manifest `bytes` (`content_type`: the registry's
/// `Content-Type`, for a manifest that does not name its own media type).
pub fn component_layer(bytes: &[u8], content_type: Option<&str>) -> Result<Layer, OciErrorKind> {
    let not_wasm = |detail: String| OciErrorKind::NotWasm { detail };
    let kind: Kind = serde_json::from_slice(bytes).map_err(|e| OciErrorKind::Protocol {
        detail: format!("the manifest is not JSON the OCI spec describes: {e}"),
    })?;
    let media_type = kind
        .media_type
        .or_else(|| content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_string()));
    if kind.manifests.is_some()
        || media_type
            .as_deref()
            .is_some_and(|m| INDEX_MEDIA_TYPES.contains(&m))
    {
        return Err(not_wasm(
            "the reference names an image index (a list of images for several platforms)".into(),
        ));
    }
    if let Some(m) = media_type.as_deref()
        && m != MANIFEST_MEDIA_TYPE
        && m != DOCKER_MANIFEST_MEDIA_TYPE
        && !m.is_empty()
        && m != "application/json"
    {
        return Err(not_wasm(format!(
            "its manifest has media type {:?}",
            crate::error::clip(m)
        )));
    }
    let manifest: ImageManifest =
        serde_json::from_slice(bytes).map_err(|e| OciErrorKind::Protocol {
            detail: format!("the manifest is not an OCI image manifest: {e}"),
        })?;
    if manifest.schema_version != 2 {
        return Err(OciErrorKind::Protocol {
            detail: format!(
                "the manifest has schemaVersion {}, not 2",
                manifest.schema_version
            ),
        });
    }
    let types: Vec<String> = manifest
        .layers
        .iter()
        .map(|l| crate::error::shown(&l.media_type))
        .collect();
    let [layer] = manifest.layers.as_slice() else {
        return Err(not_wasm(format!(
            "it has {} layers ({}); a Wasm component artifact has one {WASM_LAYER_MEDIA_TYPE} layer",
            manifest.layers.len(),
            types.join(", ")
        )));
    };
    if !WASM_LAYER_MEDIA_TYPES.contains(&layer.media_type.as_str()) {
        return Err(not_wasm(format!(
            "its layer has media type {:?}; a Wasm component artifact has one {WASM_LAYER_MEDIA_TYPE} layer (config {:?})",
            types[0],
            crate::error::clip(&manifest.config.media_type)
        )));
    }
    let digest = Digest::parse(&layer.digest).map_err(|e| not_wasm(format!("its layer: {e}")))?;
    Ok(Layer {
        digest,
        size: layer.size,
    })
}

/// What `membrane push` writes: the config blob and the manifest of a Wasm artifact for a
/// component of `size` bytes with `digest`, whose world has `exports` and `imports`.
pub struct Artifact {
    /// The config blob (`application/vnd.wasm.config.v0+json`).
    pub config: Vec<u8>,
    /// The image manifest.
    pub manifest: Vec<u8>,
}

impl Artifact {
    /// The artifact of one component, as `wkg oci push` lays it out.
    pub fn new(digest: &Digest, size: u64, exports: Vec<String>, imports: Vec<String>) -> Artifact {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Config<'a> {
            created: String,
            architecture: &'a str,
            os: &'a str,
            layer_digests: Vec<&'a str>,
            component: Component,
        }
        #[derive(Serialize)]
        struct Component {
            exports: Vec<String>,
            imports: Vec<String>,
            target: Option<String>,
        }
        // SOURCE_DATE_EPOCH makes pushes of the same component reproducible.
        let created = std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map(|s| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s))
            .unwrap_or_else(std::time::SystemTime::now);
        let config = Config {
            created: humantime::format_rfc3339_seconds(created).to_string(),
            architecture: "wasm",
            os: "wasip2",
            layer_digests: vec![digest.as_str()],
            component: Component {
                exports,
                imports,
                target: None,
            },
        };
        let config = serde_json::to_vec(&config).unwrap_or_default();
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(MANIFEST_MEDIA_TYPE.into()),
            config: Descriptor {
                media_type: WASM_CONFIG_MEDIA_TYPE.into(),
                digest: crate::cache::digest_of(&config).to_string(),
                size: config.len() as u64,
            },
            layers: vec![Descriptor {
                media_type: WASM_LAYER_MEDIA_TYPE.into(),
                digest: digest.to_string(),
                size,
            }],
        };
        let manifest = serde_json::to_vec(&manifest).unwrap_or_default();
        Artifact { config, manifest }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(layers: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{MANIFEST_MEDIA_TYPE}","config":{{"mediaType":"{WASM_CONFIG_MEDIA_TYPE}","digest":"sha256:{h}","size":2}},"layers":[{layers}]}}"#,
            h = "0".repeat(64)
        )
    }

    #[test]
    fn the_wasm_layout_is_read_and_others_are_refused_by_name() {
        let d = format!("sha256:{}", "a".repeat(64));
        let one = format!(r#"{{"mediaType":"application/wasm","digest":"{d}","size":7}}"#);
        let layer = component_layer(manifest(&one).as_bytes(), None).unwrap();
        assert_eq!(layer.digest.as_str(), d);
        assert_eq!(layer.size, 7);

        let built = Artifact::new(&layer.digest, 7, vec!["a:b/c".into()], vec![]);
        assert_eq!(component_layer(&built.manifest, None).unwrap(), layer);
        let config: serde_json::Value = serde_json::from_slice(&built.config).unwrap();
        assert_eq!(config["os"], "wasip2");
        assert_eq!(config["layerDigests"][0], d.as_str());

        for (text, says) in [
            (manifest(""), "0 layers"),
            (manifest(&format!("{one},{one}")), "2 layers"),
            (
                manifest(&one.replace("application/wasm", "application/vnd.oci.image.layer.v1.tar+gzip")),
                "tar+gzip",
            ),
            (manifest(&one.replace(&d, "sha512:abc")), "sha256"),
            (
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#.to_string(),
                "image index",
            ),
        ] {
            match component_layer(text.as_bytes(), None) {
                Err(OciErrorKind::NotWasm { detail }) => assert!(detail.contains(says), "{detail}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        // What the registry chose reaches no terminal raw.
        let hostile = manifest(&format!(
            "{one},{}",
            one.replace("application/wasm", "x\\u001b[2Jy")
        ));
        match component_layer(hostile.as_bytes(), None) {
            Err(OciErrorKind::NotWasm { detail }) => {
                assert!(!detail.contains('\u{1b}'), "{detail}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            component_layer(b"[1,2", None),
            Err(OciErrorKind::Protocol { .. })
        ));
        let no_type =
            manifest(&one).replace(&format!(r#""mediaType":"{MANIFEST_MEDIA_TYPE}","#), "");
        assert!(component_layer(no_type.as_bytes(), Some(MANIFEST_MEDIA_TYPE)).is_ok());
        assert!(matches!(
            component_layer(
                no_type.as_bytes(),
                Some("application/vnd.oci.image.index.v1+json")
            ),
            Err(OciErrorKind::NotWasm { .. })
        ));
    }
}
