//! The {{name}} command: greets the people named on its command line.
//!
//! It sees only what membrane.toml grants: the variable GREETING, and nothing of the
//! host's files, environment or network.

fn main() {
    let greeting = std::env::var("GREETING").unwrap_or_else(|_| "Hello".into());
    let mut names: Vec<String> = std::env::args().skip(1).collect();
    if names.is_empty() {
        names.push("world".into());
    }
    for name in &names {
        println!("{greeting}, {name}!");
    }
    // Not granted, so not there: the host's environment stays outside.
    if std::env::var("HOME").is_ok() {
        eprintln!("unexpected: HOME is visible");
    }
}
