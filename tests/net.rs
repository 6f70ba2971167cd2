//! Network grants: only listed destinations connect; everything else is refused.

use std::io::{Read, Write};
use std::net::TcpListener;

use crate::common::*;

/// A server on 127.0.0.1 that answers `pong` to every connection. Returns its port.
fn pong_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 16];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"pong");
        }
    });
    port
}

/// A port with nothing listening on it.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn granted_destination_connects() {
    let port = pong_server();
    let app = probe(|m| m.network(format!("127.0.0.1:{port}"))).await;
    let out = caps(&app, "connect", &[s(&format!("127.0.0.1:{port}"))])
        .await
        .unwrap();
    assert_eq!(result_text(&out), Ok("pong".into()));
}

#[tokio::test]
async fn ungranted_destinations_are_refused() {
    let granted = pong_server();
    let other = pong_server();
    let app = probe(|m| m.network(format!("127.0.0.1:{granted}"))).await;
    for addr in [
        format!("127.0.0.1:{other}"),
        format!("127.0.0.2:{granted}"),
        format!("[::1]:{granted}"),
        format!("[::ffff:127.0.0.2]:{granted}"),
        "169.254.169.254:80".to_string(),
    ] {
        let out = caps(&app, "connect", &[s(&addr)]).await.unwrap();
        let err = result_text(&out).expect_err(&addr);
        assert!(!err.is_empty(), "{addr}");
    }
    // The other server is really up: the refusal came from the grant, not from the network.
    let app = probe(|m| m.network(format!("127.0.0.1:{other}"))).await;
    let out = caps(&app, "connect", &[s(&format!("127.0.0.1:{other}"))])
        .await
        .unwrap();
    assert_eq!(result_text(&out), Ok("pong".into()));
}

#[tokio::test]
async fn no_grant_means_no_network() {
    let port = pong_server();
    let app = probe(|m| m).await;
    let out = caps(&app, "connect", &[s(&format!("127.0.0.1:{port}"))])
        .await
        .unwrap();
    assert!(result_text(&out).is_err());
    let out = caps(&app, "resolve", &[s("localhost")]).await.unwrap();
    assert!(
        result_text(&out).is_err(),
        "name lookup works without a grant: {out:?}"
    );
}

#[tokio::test]
async fn granted_name_resolves_and_connects() {
    let port = pong_server();
    let app = probe(|m| m.network(format!("localhost:{port}"))).await;
    let out = caps(&app, "connect", &[s(&format!("localhost:{port}"))])
        .await
        .unwrap();
    assert_eq!(result_text(&out), Ok("pong".into()));
    // Another port on the same host is still refused.
    let other = closed_port();
    let out = caps(&app, "connect", &[s(&format!("localhost:{other}"))])
        .await
        .unwrap();
    assert!(result_text(&out).is_err());
}

#[tokio::test]
async fn ip_grants_do_not_enable_name_lookup() {
    let port = pong_server();
    let app = probe(|m| m.network(format!("127.0.0.1:{port}"))).await;
    let out = caps(&app, "resolve", &[s("localhost")]).await.unwrap();
    assert!(result_text(&out).is_err(), "{out:?}");
}
