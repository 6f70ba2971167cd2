//! The entry module: a command that asks the `greeter` module for each greeting. It has no
//! grants but the terminal; the call crosses into the greeter's own sandbox.

wit_bindgen::generate!({ path: "../wit", world: "app" });

use local::greeter::greet::hello;

fn main() {
    let mut names: Vec<String> = std::env::args().skip(1).collect();
    if names.is_empty() {
        names.push("world".into());
    }
    for name in &names {
        println!("{}", hello(name));
    }
}
