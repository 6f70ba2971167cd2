//! Environment grants: only the listed variables exist for the guest.

use membrane::Val;

use crate::common::*;

#[tokio::test]
async fn only_granted_variables_are_visible() {
    // SAFETY: the variable is only read, never removed, and no test sets it elsewhere.
    unsafe { std::env::set_var("MEMBRANE_TEST_HOST_SECRET", "leak") };
    let app = probe(|m| m.env("GREETING", "hi").env("EMPTY", "")).await;
    let out = caps(&app, "get-env", &[s("GREETING")]).await.unwrap();
    assert_eq!(out[0], Val::Option(Some(Box::new(s("hi")))));
    for name in ["MEMBRANE_TEST_HOST_SECRET", "PATH", "HOME"] {
        let out = caps(&app, "get-env", &[s(name)]).await.unwrap();
        assert_eq!(out[0], Val::Option(None), "{name} is visible");
    }
    let out = caps(&app, "env-vars", &[]).await.unwrap();
    assert_eq!(
        membrane::to_wave(&out[0]).unwrap(),
        r#"[("EMPTY", ""), ("GREETING", "hi")]"#
    );
}

#[tokio::test]
async fn no_grant_means_an_empty_environment() {
    let app = probe(|m| m).await;
    let out = caps(&app, "env-vars", &[]).await.unwrap();
    assert_eq!(out[0], Val::List(vec![]));
}

#[tokio::test]
async fn invalid_variable_names_are_refused_at_load() {
    let err = runtime()
        .load_spec(membrane::AppSpec::new().module(
            "m",
            membrane::ModuleSpec::from_file(guests::PROBE).env("A=B", "x"),
        ))
        .await
        .err()
        .expect("load fails");
    assert_eq!(err.kind(), membrane::ErrorKind::Manifest);
    assert_eq!(err.key(), Some("modules.m.grants.env.A=B"));
}
