//! A p2 provider of `membrane:p3lib/plain-calc` (plain functions, no async), for linking p2
//! and p3 importers (p2_calc_user, p3_plain_user) to a p2 export.

wit_bindgen::generate!({ path: "../../wit/p3-lib", world: "p2-plain-calc" });

use exports::membrane::p3lib::plain_calc::Guest;

struct PlainCalc;

impl Guest for PlainCalc {
    fn add(a: u32, b: u32) -> u32 {
        a.wrapping_add(b)
    }

    fn upper(text: String) -> String {
        text.to_uppercase()
    }
}

export!(PlainCalc);
