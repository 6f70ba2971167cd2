//! A p2 importer of `membrane:p3lib/plain-calc`: its plain `plain-user` exports call the
//! import, which a host may link to a p2 provider (p2_plain_calc) or to a p3 provider of the
//! same interface with async functions (p3_plain_calc).

wit_bindgen::generate!({ path: "../../wit/p3-lib", world: "p2-calc-user" });

use exports::membrane::p3lib::plain_user::Guest;
use membrane::p3lib::plain_calc;

struct CalcUser;

impl Guest for CalcUser {
    fn add_twice(a: u32, b: u32) -> u32 {
        plain_calc::add(plain_calc::add(a, b), b)
    }

    fn shout(text: String) -> String {
        plain_calc::upper(&text)
    }
}

export!(CalcUser);
