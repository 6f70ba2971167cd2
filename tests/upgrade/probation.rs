//! Probation after an upgrade: a broken version rolls back by itself, a rollback by hand,
//! the failure ratio, and the end of probation.

use std::time::Duration;

use membrane::{ErrorKind, GenerationState, UpgradePolicy};

use super::{API, circuit, greet, hello, linked, on_probation};
use crate::common::{guests, text_of};

#[tokio::test]
async fn a_broken_version_rolls_back_by_itself_within_the_circuits_max() {
    let app = linked(greet(guests::GREET_V1).restart(circuit(3))).await;
    let broken = greet(guests::GREET_BROKEN)
        .restart(circuit(3))
        .upgrade(on_probation());
    app.upgrade("greet", broken).await.unwrap();
    assert_eq!(app.status()["greet"].generation, 2);
    let mut failed = 0;
    let mut answers = Vec::new();
    for _ in 0..10 {
        match hello(&app).await {
            Ok(text) => answers.push(text),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Trap, "{}", membrane::chain(&e));
                failed += 1;
            }
        }
    }
    assert_eq!(failed, 3, "no more failed calls than the circuit's max");
    assert!(answers.iter().all(|a| a == "v1 hello x"), "{answers:?}");
    let st = &app.status()["greet"];
    assert_eq!(st.generation, 1);
    assert_eq!(st.state, GenerationState::Serving);
    let last = st.last_upgrade.clone().unwrap();
    assert!(last.message.starts_with("rolled back:"), "{}", last.message);
    assert_eq!((last.from, last.to), (2, 1));
    // Nothing left to roll back to.
    assert_eq!(
        app.rollback("greet").unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn more_failures_than_the_rollback_ratio_roll_back() {
    let app = linked(greet(guests::GREET_V1)).await;
    // `hello` traps in the broken version, `version` works: half the calls fail.
    let broken = greet(guests::GREET_BROKEN)
        .restart(circuit(1000))
        .upgrade(on_probation().rollback_ratio(0.4));
    app.upgrade("greet", broken).await.unwrap();
    let mut rounds = 0;
    while app.status()["greet"].generation == 2 {
        let _ = hello(&app).await;
        let _ = app.call("greet", &format!("{API}#version"), &[]).await;
        rounds += 1;
        assert!(rounds < 100, "no rollback after {rounds} rounds");
    }
    // At least UpgradePolicy::MIN_CALLS calls are needed before the ratio counts.
    assert!(rounds * 2 >= UpgradePolicy::MIN_CALLS, "{rounds}");
    let last = app.status()["greet"].last_upgrade.clone().unwrap();
    assert!(last.message.contains("rollback_ratio"), "{}", last.message);
    assert_eq!(hello(&app).await.unwrap(), "v1 hello x");
}

#[tokio::test]
async fn rollback_by_hand_during_probation_and_not_after() {
    let app = linked(greet(guests::GREET_V1)).await;
    app.upgrade("greet", greet(guests::GREET_V2).upgrade(on_probation()))
        .await
        .unwrap();
    let st = &app.status()["greet"];
    let GenerationState::Probation { left } = st.state else {
        panic!("{:?}", st.state)
    };
    assert!(left > Duration::from_secs(500));
    let r = app.rollback("greet").unwrap();
    assert_eq!((r.from, r.to), (2, 1));
    assert_eq!(hello(&app).await.unwrap(), "v1 hello x");
    let st = &app.status()["greet"];
    assert_eq!((st.generation, st.state), (1, GenerationState::Serving));
    assert_eq!(
        st.last_upgrade.as_ref().unwrap().message,
        "rolled back by hand"
    );

    // After a short probation the new version is kept for good.
    let short = UpgradePolicy::default().probation(Duration::from_millis(200));
    app.upgrade("greet", greet(guests::GREET_V2).upgrade(short))
        .await
        .unwrap();
    assert_eq!(app.status()["greet"].generation, 3);
    super::eventually("probation ends", || {
        app.status()["greet"].state == GenerationState::Serving
    })
    .await;
    assert_eq!(
        app.rollback("greet").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let v = app
        .call("greet", &format!("{API}#version"), &[])
        .await
        .unwrap();
    assert_eq!(text_of(&v[0]), "v2");
}
