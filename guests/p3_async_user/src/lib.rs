//! A p3 importer of async functions without streams: its async `relay-async` export calls
//! the `async func`s of the `membrane:p3lib/async-plain` import (p3_lib exports them).

wit_bindgen::generate!({ path: "../../wit/p3-lib", world: "p3-async-user" });

use exports::membrane::p3lib::relay_async::Guest;
use membrane::p3lib::async_plain;

struct AsyncUser;

impl Guest for AsyncUser {
    async fn add_twice(a: u32, b: u32) -> u32 {
        async_plain::add(async_plain::add(a, b).await, b).await
    }

    async fn shout(text: String) -> String {
        async_plain::upper(text).await
    }
}

export!(AsyncUser);
