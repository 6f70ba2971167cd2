//! A command that imports `acme:kv/store`: it cannot start unless that import is linked.

wit_bindgen::generate!({ path: "../../wit/acme-kv", world: "kv-client" });

fn main() {
    acme::kv::store::set("greeting", "hi").unwrap();
    println!("{:?}", acme::kv::store::get("greeting"));
}
