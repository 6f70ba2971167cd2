//! A p3 importer of plain functions: its async `relay-plain` export calls the non-async
//! `membrane:p3lib/plain-calc` import, which a host links to a p2 provider (p2_plain_calc).

wit_bindgen::generate!({ path: "../../wit/p3-lib", world: "p3-plain-user" });

use exports::membrane::p3lib::relay_plain::Guest;
use membrane::p3lib::plain_calc;

struct PlainUser;

impl Guest for PlainUser {
    async fn add_twice(a: u32, b: u32) -> u32 {
        plain_calc::add(plain_calc::add(a, b), b)
    }
}

export!(PlainUser);
