//! The {{name}} module: a library that exports `local:{{name}}/greet` (wit/world.wit).

wit_bindgen::generate!({ world: "{{name}}" });

use exports::local::{{snake}}::greet::Guest;

struct Component;

impl Guest for Component {
    fn hello(name: String) -> String {
        format!("Hello, {name}!")
    }
}

export!(Component);
