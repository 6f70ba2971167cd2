//! A registry that asks for credentials (htpasswd, HTTP basic): anonymous access is a typed
//! `Denied`; credentials from the environment are sent only to the registry they name.

use membrane::ErrorKind;
use membrane::oci::{Credentials, OciErrorKind, Settings};

use super::registry::Registry;
use super::*;
use crate::common::{assert_clean_failure, guests, stderr, stdout};

/// The test user's password, and its bcrypt hash as htpasswd keeps it.
const PASSWORD: &str = "s3cret";
const HASH: &str = "$2b$04$fiKYBegMAYq5PaCzZQx6xulLlBeXUr9h6Svli79/LU/L28Zkjnhiq";

#[tokio::test]
async fn credentials_reach_the_registry_that_asks_and_only_it() {
    let Some(reg) = Registry::with_htpasswd("ann", HASH) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let reference = reg.reference("acme/greet:1.0");

    // Anonymous: refused, saying how to log in.
    let o = membrane_in_cache(&cache)
        .args(["push", guests::GREET_V1, &reference])
        .output()
        .unwrap();
    assert_clean_failure(&o, "error[denied]");
    assert_clean_failure(&o, "MEMBRANE_OCI_USERNAME");
    // Credentials for another registry are not sent here.
    let o = membrane_in_cache(&cache)
        .args(["push", guests::GREET_V1, &reference])
        .env("MEMBRANE_OCI_USERNAME", "ann")
        .env("MEMBRANE_OCI_PASSWORD", PASSWORD)
        .env("MEMBRANE_OCI_REGISTRY", "registry.example")
        .output()
        .unwrap();
    assert_clean_failure(&o, "error[denied]");
    // Without naming the registry, they are refused rather than sent anywhere.
    let o = membrane_in_cache(&cache)
        .args(["push", guests::GREET_V1, &reference])
        .env("MEMBRANE_OCI_USERNAME", "ann")
        .env("MEMBRANE_OCI_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert_clean_failure(&o, "MEMBRANE_OCI_REGISTRY");
    let o = membrane_in_cache(&cache)
        .args(["push", guests::GREET_V1, &reference])
        .env("MEMBRANE_OCI_USERNAME", "ann")
        .env("MEMBRANE_OCI_PASSWORD", PASSWORD)
        .env("MEMBRANE_OCI_REGISTRY", reg.address())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("sha256:"));

    manifest(tmp.path(), &reference);
    let e = load(tmp.path(), &tmp.path().join("anonymous"))
        .await
        .err()
        .expect("refused");
    assert_eq!(e.kind(), ErrorKind::Denied, "{}", membrane::chain(&e));
    assert_eq!(e.module(), Some(MODULE));
    assert_eq!(
        oci_error(&e).kind,
        OciErrorKind::Unauthorized { status: 401 }
    );

    let mut settings = Settings::new();
    settings.credentials.insert(
        reg.address(),
        Credentials {
            username: "ann".into(),
            password: PASSWORD.into(),
        },
    );
    let app = runtime_with(OciFetcher::with_settings(
        tmp.path().join("logged-in"),
        settings,
    ))
    .load(tmp.path().join("membrane.toml"))
    .await
    .unwrap();
    assert_eq!(hello(&app, "ann").await, "v1 hello ann");
}
