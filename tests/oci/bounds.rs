//! What a registry must not get away with: bytes that are not the ones pinned, and more
//! bytes than the bounds allow (a component past `max_component_size`, a body longer than
//! its manifest declares, an endless manifest or token answer).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use membrane::ErrorKind;
use membrane::oci::{Object, OciErrorKind};

use super::registry::{Registry, sha256};
use super::*;
use crate::common::{assert_clean_failure, guests};

#[tokio::test]
async fn an_altered_blob_is_refused_with_both_digests() {
    let Some(reg) = Registry::start() else { return };
    let reference = reg.reference("acme/greet:1.0");
    let pushed = push(&reference, guests::GREET_V1).await;
    // Same length, other bytes: the registry serves them as the blob.
    let data = reg.blob_data(pushed.component.as_str());
    let mut bytes = std::fs::read(&data).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();

    let tmp = tempfile::tempdir().unwrap();
    manifest(tmp.path(), &reference);
    let cache = tmp.path().join("cache");
    let e = load(tmp.path(), &cache).await.err().expect("refused");
    assert_eq!(e.kind(), ErrorKind::Integrity, "{}", membrane::chain(&e));
    assert_eq!(e.module(), Some(MODULE));
    assert_eq!(e.key(), Some("modules.greet.component"));
    let oci = oci_error(&e);
    assert_eq!(oci.reference, reference);
    match &oci.kind {
        OciErrorKind::DigestMismatch {
            object: Object::Component,
            expected,
            actual,
        } => {
            assert_eq!(*expected, pushed.component);
            assert_eq!(actual.as_str(), sha256(&bytes));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        cached_components(&cache).is_empty(),
        "nothing of it is kept"
    );
    let o = membrane_in_cache(&tmp.path().join("cli-cache"))
        .args([
            "call",
            tmp.path().to_str().unwrap(),
            MODULE,
            HELLO,
            r#""x""#,
        ])
        .output()
        .unwrap();
    assert_clean_failure(&o, "error[integrity]");
    assert_clean_failure(&o, pushed.component.as_str());
}

#[tokio::test]
async fn max_component_size_bounds_a_pull_and_a_body_stops_at_its_declared_size() {
    let Some(reg) = Registry::start() else { return };
    let component = std::fs::read(guests::GREET_V1).unwrap();
    let reference = reg.reference("acme/greet:1.0");
    push(&reference, guests::GREET_V1).await;
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");

    // One byte less than the component: refused before a byte of it is read.
    let limit = component.len() - 1;
    common::write_manifest(
        tmp.path(),
        &format!(
            "[app]\nmax_component_size = \"{limit}B\"\n[modules.{MODULE}]\ncomponent = \"{reference}\"\n"
        ),
    );
    let e = load(tmp.path(), &cache).await.err().expect("refused");
    assert_eq!(
        e.kind(),
        ErrorKind::InvalidComponent,
        "{}",
        membrane::chain(&e)
    );
    assert_eq!(e.key(), Some("app.max_component_size"));
    assert_eq!(
        oci_error(&e).kind,
        OciErrorKind::TooLarge {
            object: Object::Component,
            limit: limit as u64
        }
    );
    assert!(cached_components(&cache).is_empty());
    // At the exact size it loads.
    common::write_manifest(
        tmp.path(),
        &format!(
            "[app]\nmax_component_size = \"{}B\"\n[modules.{MODULE}]\ncomponent = \"{reference}\"\n",
            component.len()
        ),
    );
    let app = load(tmp.path(), &cache).await.unwrap();
    assert_eq!(hello(&app, "fits").await, "v1 hello fits");

    // A manifest that declares fewer bytes than the blob has: the download stops there.
    let layer = sha256(&component);
    let config = reg.put_blob("acme/short", b"{}");
    let short = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.wasm.config.v0+json","digest":"{config}","size":2}},"layers":[{{"mediaType":"application/wasm","digest":"{layer}","size":1000}}]}}"#
    );
    reg.put_blob("acme/short", &component);
    let status = reg.put_manifest(
        "acme/short",
        "1",
        "application/vnd.oci.image.manifest.v1+json",
        short.as_bytes(),
    );
    assert_eq!(status, 201, "{}", reg.log());
    manifest(tmp.path(), &reg.reference("acme/short:1"));
    let e = load(tmp.path(), &tmp.path().join("short-cache"))
        .await
        .err()
        .expect("refused");
    match &oci_error(&e).kind {
        OciErrorKind::Protocol { detail } => {
            assert!(detail.contains("1000 bytes"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
    assert!(cached_components(&tmp.path().join("short-cache")).is_empty());
}

/// What an [`Endless`] server answers a manifest request with.
#[derive(Clone, Copy)]
enum Answer {
    /// 200 and a manifest that never ends.
    Manifest,
    /// A bearer challenge whose token service answers a token that never ends.
    Token,
    /// 500 and an error body that never ends.
    Error,
}

/// A "registry" that answers with bodies that never end: what a hostile registry can do
/// to a client that trusts lengths it is told.
struct Endless {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Endless {
    fn start(answer: Answer) -> Endless {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    continue;
                };
                std::thread::spawn(move || {
                    let _ = conn.set_nonblocking(false);
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
                        head.push(byte[0]);
                    }
                    let head = String::from_utf8_lossy(&head);
                    let start = if head.starts_with("GET /token") {
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"token\":\""
                            .to_string()
                    } else if let Answer::Token = answer {
                        let realm = format!("http://127.0.0.1:{port}/token");
                        let _ = conn.write_all(format!(
                            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"{realm}\",service=\"x\"\r\nContent-Length: 0\r\n\r\n"
                        ).as_bytes());
                        return;
                    } else if let Answer::Error = answer {
                        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\n"
                            .to_string()
                    } else {
                        "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n\r\n{\"schemaVersion\":2,\"x\":\"".to_string()
                    };
                    let chunk = vec![b'a'; 64 << 10];
                    if conn.write_all(start.as_bytes()).is_err() {
                        return;
                    }
                    // Until the client hangs up.
                    while conn.write_all(&chunk).is_ok() {}
                });
            }
        });
        Endless { port, stop }
    }
}

impl Drop for Endless {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[tokio::test]
async fn an_endless_manifest_or_token_answer_is_cut_off_at_its_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");

    let server = Endless::start(Answer::Manifest);
    manifest(
        tmp.path(),
        &format!("oci://127.0.0.1:{}/acme/greet:1.0", server.port),
    );
    let e = load(tmp.path(), &cache).await.err().expect("refused");
    assert_eq!(
        oci_error(&e).kind,
        OciErrorKind::TooLarge {
            object: Object::Manifest,
            limit: membrane::oci::artifact::MAX_MANIFEST
        },
        "{}",
        membrane::chain(&e)
    );

    let server = Endless::start(Answer::Token);
    manifest(
        tmp.path(),
        &format!("oci://127.0.0.1:{}/acme/greet:1.0", server.port),
    );
    let e = load(tmp.path(), &cache).await.err().expect("refused");
    match &oci_error(&e).kind {
        OciErrorKind::Protocol { detail } => assert!(detail.contains("over 1 MiB"), "{detail}"),
        other => panic!("{other:?}"),
    }

    // An error body is read for the message only up to 16 KiB, and shown clipped.
    let server = Endless::start(Answer::Error);
    manifest(
        tmp.path(),
        &format!("oci://127.0.0.1:{}/acme/greet:1.0", server.port),
    );
    let e = load(tmp.path(), &cache).await.err().expect("refused");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    match &oci_error(&e).kind {
        OciErrorKind::Protocol { detail } => {
            assert!(detail.contains("500"), "{detail}");
            assert!(detail.len() < 400, "{detail}");
        }
        other => panic!("{other:?}"),
    }
}
