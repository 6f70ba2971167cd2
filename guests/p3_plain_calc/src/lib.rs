//! A WASI 0.3 provider of `membrane:p3lib/plain-calc` with async functions (world
//! `p3-plain-calc` of wit/p3-plain-async), for a WASI 0.2 importer of the same interface
//! (guests/p2_calc_user) linked to it.

wit_bindgen::generate!({ path: "../../wit/p3-plain-async", world: "p3-plain-calc" });

use exports::membrane::p3lib::plain_calc::Guest;

struct Calc;

impl Guest for Calc {
    async fn add(a: u32, b: u32) -> u32 {
        a.wrapping_add(b)
    }

    async fn upper(text: String) -> String {
        text.to_uppercase()
    }
}

export!(Calc);
