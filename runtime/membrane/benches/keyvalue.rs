//! The key-value stores, raw and through a guest.
//!
//! ```sh
//! cargo bench -p membrane --bench keyvalue              # every section
//! cargo bench -p membrane --bench keyvalue -- nats      # the sections whose name has "nats"
//! ```
//!
//! - `embedded`: the redb store's write throughput, one writer (one fsync per write, the
//!   floor a store without group commit has) against 8 and 32 concurrent writers sharing
//!   commits (each writer sets its own keys, 100-byte values), and reads.
//! - `guest`: a guest's get, set and increment (the kv probe, `App::call`) on the embedded
//!   store, isolated and in a worker process (through the host), against the raw backend.
//! - `nats`: the same on NATS JetStream (a `nats-server -js` started here on 127.0.0.1): raw
//!   async-nats (direct get, publish and ack), through an isolated guest, and through a
//!   `remote` guest served by a host in this process.
//! - `contention`: increments of one key from two NATS connections ("two hosts"), raw
//!   compare-and-swap with its retries counted, and through two apps' guests.
#![allow(missing_docs)]

mod common;
mod kvnats;
#[path = "../../../tests/remote/nats.rs"]
mod nats;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use membrane::BucketSpec;
use membrane_core::keyvalue::backend::{Backend, Write};
use membrane_core::keyvalue::embedded::Embedded;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// Writes per second with `writers` threads making `each` writes.
fn throughput(store: &Arc<Embedded>, writers: usize, each: usize) -> f64 {
    let start = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                let rt = rt();
                for i in 0..each {
                    rt.block_on(store.write(
                        "b",
                        Write::Set {
                            key: format!("w{w}-{i}"),
                            value: vec![b'x'; 100],
                        },
                    ))
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    (writers * each) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; other words select sections.
    let words: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |section: &str| words.is_empty() || words.iter().any(|w| section.contains(w));
    if wanted("embedded") {
        embedded();
    }
    if wanted("guest") {
        kvnats::guest_embedded();
    }
    if nats::nats_server().is_some() {
        if wanted("nats") {
            kvnats::nats_paths();
        }
        if wanted("contention") {
            kvnats::contention();
        }
    }
}

fn embedded() {
    let dir = tempfile::tempdir().unwrap();
    let buckets: BTreeMap<String, BucketSpec> = [("b".to_string(), BucketSpec::new())].into();
    let store = Arc::new(Embedded::open(&dir.path().join("kv.redb"), &buckets).unwrap());
    let one = throughput(&store, 1, 200);
    println!("1 writer: {one:.0} writes/s (one fsync each)");
    for writers in [8, 32] {
        let n = throughput(&store, writers, 200);
        println!(
            "{writers} writers: {n:.0} writes/s ({:.1}x one writer)",
            n / one
        );
    }
    let rt = rt();
    let start = Instant::now();
    let reads = 100_000;
    for i in 0..reads {
        std::hint::black_box(
            rt.block_on(store.get("b", &format!("w0-{}", i % 200)))
                .unwrap(),
        );
    }
    println!(
        "get: {:.2} us each",
        start.elapsed().as_secs_f64() * 1e6 / reads as f64
    );
}
