//! Metrics, status and traces of a served app.

use super::{get, one, probe, sample};

async fn admin_get(s: &super::Served, path: &str) -> super::Reply {
    get(s.admin.expect("admin listener"), path).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_the_requests_sent() {
    let s = one(probe("m")).await;
    for i in 0..7 {
        assert_eq!(get(s.addr, &format!("/x{i}")).await.status, 200);
    }
    assert_eq!(get(s.addr, "/trap").await.status, 500);
    let r = admin_get(&s, "/metrics").await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
    );
    let m = r.body;
    // The text format: comments, samples `name{labels} value`, and the end marker.
    assert!(m.ends_with("# EOF\n"), "{m}");
    for line in m.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').expect(line);
        assert!(series.starts_with("membrane_"), "{line}");
        value.parse::<f64>().unwrap_or_else(|_| panic!("{line}"));
    }
    assert_eq!(
        sample(
            &m,
            "membrane_http_requests_total{route=\"/\",status=\"200\"}"
        ),
        Some(7.0),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            "membrane_http_requests_total{route=\"/\",status=\"500\"}"
        ),
        Some(1.0)
    );
    let handler = m
        .lines()
        .find(|l| {
            l.starts_with("membrane_calls_total{module=\"m\"") && l.contains("outcome=\"ok\"")
        })
        .expect("a calls sample");
    assert!(
        handler.contains("wasi:http/incoming-handler@0.2."),
        "{handler}"
    );
    assert!(handler.ends_with(" 7"), "{handler}");
    assert!(m.contains("membrane_call_duration_seconds_count{module=\"m\""));
    assert_eq!(sample(&m, "membrane_circuit_open{module=\"m\"}"), Some(0.0));
    assert_eq!(sample(&m, "membrane_queue_depth{module=\"m\"}"), Some(0.0));
    assert_eq!(
        sample(&m, "membrane_instances{module=\"m\",state=\"busy\"}"),
        Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_is_json_per_module() {
    let s = one(probe("m")).await;
    get(s.addr, "/x").await;
    let r = admin_get(&s, "/status").await;
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let m = &v["modules"]["m"];
    assert_eq!(m["busy"], 0);
    assert_eq!(m["idle"], 1);
    assert_eq!(m["circuit"], "healthy");
    assert_eq!(m["instances_limit"], 32);
    assert_eq!(admin_get(&s, "/nope").await.status, 404);
}
