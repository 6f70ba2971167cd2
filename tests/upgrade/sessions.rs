//! Resource sessions stay on the generation they started on.

use super::{FRONT, greet, linked};
use crate::common::guests;
use crate::common::text_of;

async fn bump(app: &membrane::App) -> String {
    let out = app
        .call("front", &format!("{FRONT}#bump"), &[])
        .await
        .unwrap();
    text_of(&out[0])
}

#[tokio::test]
async fn sessions_opened_before_the_switch_keep_working_until_the_importer_instance_ends() {
    let app = linked(greet(guests::GREET_V1)).await;
    app.call("front", &format!("{FRONT}#open"), &[])
        .await
        .unwrap();
    assert_eq!(bump(&app).await, "v1:1");
    app.upgrade("greet", greet(guests::GREET_V2)).await.unwrap();
    // The importer instance keeps its session, and its counter, on generation 1 (the
    // counter goes on from 1); its calls without resources go to generation 2.
    assert_eq!(bump(&app).await, "v2:2");
    assert_eq!(bump(&app).await, "v2:3");
    let st = &app.status()["greet"];
    assert_eq!((st.generation, st.draining), (2, 1));
    // New calls without a session go to generation 2.
    let v = app
        .call("greet", &format!("{}#version", super::API), &[])
        .await
        .unwrap();
    assert_eq!(text_of(&v[0]), "v2");
    // The importer instance ends (a trap discards it), and its session with it.
    let e = app
        .call("front", &format!("{FRONT}#crash"), &[])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), membrane::ErrorKind::Trap);
    super::eventually("generation 1 drains", || {
        app.status()["greet"].draining == 0
    })
    .await;
    // A new importer instance opens a new session, on generation 2.
    assert_eq!(bump(&app).await, "v2:1");
}
