//! The greeter module: exports local:greeter/greet. It has no grants at all.

wit_bindgen::generate!({ path: "../wit", world: "greeter" });

use exports::local::greeter::greet::Guest;

struct Greeter;

impl Guest for Greeter {
    fn hello(name: String) -> String {
        format!("Hello, {name}!")
    }
}

export!(Greeter);
