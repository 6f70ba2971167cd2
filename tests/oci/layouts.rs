//! What a reference may name: an artifact another tool pushed in the Wasm OCI layout loads;
//! anything else is refused by name; a malformed reference is a manifest problem at its key.

use membrane::ErrorKind;
use membrane::oci::OciErrorKind;

use super::registry::{Registry, header, sha256};
use super::*;
use crate::common::{assert_clean_failure, guests, membrane};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Puts a one-layer artifact in `repository:tag` by hand, as `wkg oci push` lays it out
/// (its config's fields, an annotation), with `layer_type` as the layer's media type.
fn put_by_hand(reg: &Registry, repository: &str, tag: &str, component: &[u8], layer_type: &str) {
    let layer = reg.put_blob(repository, component);
    let config = format!(
        r#"{{"created":"2025-01-01T00:00:00Z","author":null,"architecture":"wasm","os":"wasip2","layerDigests":["{layer}"],"component":{{"exports":["acme:greet/api@1.0.0"],"imports":[],"target":null}}}}"#
    );
    let config_digest = reg.put_blob(repository, config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.wasm.config.v0+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"{layer_type}","digest":"{layer}","size":{}}}],"annotations":{{"org.opencontainers.image.created":"2025-01-01T00:00:00Z"}}}}"#,
        config.len(),
        component.len()
    );
    let status = reg.put_manifest(repository, tag, OCI_MANIFEST, manifest.as_bytes());
    assert_eq!(status, 201, "{}", reg.log());
}

#[tokio::test]
async fn an_artifact_another_tool_pushed_loads_and_other_artifacts_are_refused() {
    let Some(reg) = Registry::start() else { return };
    let component = std::fs::read(guests::GREET_V1).unwrap();
    put_by_hand(&reg, "other/tool", "v1", &component, "application/wasm");
    // What the registry says about it is what was put.
    let (status, headers, _) = reg
        .http(
            "HEAD",
            "/v2/other/tool/manifests/v1",
            &[("Accept", OCI_MANIFEST)],
            b"",
        )
        .unwrap();
    assert_eq!(status, 200);
    assert!(header(&headers, "docker-content-digest").is_some());

    let tmp = tempfile::tempdir().unwrap();
    manifest(tmp.path(), &reg.reference("other/tool:v1"));
    let app = load(tmp.path(), &tmp.path().join("cache")).await.unwrap();
    assert_eq!(hello(&app, "wkg").await, "v1 hello wkg");
    assert_eq!(
        cached_components(&tmp.path().join("cache")),
        [format!(
            "{}.wasm",
            sha256(&component).trim_start_matches("sha256:")
        )]
    );

    // A container image's layer is not a component: refused, saying what it is.
    put_by_hand(
        &reg,
        "other/image",
        "v1",
        &component,
        "application/vnd.oci.image.layer.v1.tar+gzip",
    );
    manifest(tmp.path(), &reg.reference("other/image:v1"));
    let e = load(tmp.path(), &tmp.path().join("cache"))
        .await
        .err()
        .expect("refused");
    assert_eq!(
        e.kind(),
        ErrorKind::InvalidComponent,
        "{}",
        membrane::chain(&e)
    );
    assert_eq!(e.module(), Some(MODULE));
    match &oci_error(&e).kind {
        OciErrorKind::NotWasm { detail } => assert!(detail.contains("tar+gzip"), "{detail}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_malformed_reference_is_a_manifest_problem_at_its_key() {
    let tmp = tempfile::tempdir().unwrap();
    common::write_manifest(
        tmp.path(),
        "[app]\n\n[modules.greet]\ncomponent = \"oci://127.0.0.1:5000/Acme/greet\"\n",
    );
    let e = read_manifest(tmp.path()).expect_err("refused");
    assert_eq!(e.kind(), ErrorKind::Manifest);
    assert_eq!(e.key(), Some("modules.greet.component"));
    assert_eq!(e.location().map(|l| l.line), Some(4));
    let o = membrane(&["check", tmp.path().to_str().unwrap()]);
    assert_clean_failure(&o, "membrane.toml:4");
    assert_clean_failure(&o, "modules.greet.component");
}
