//! The example app: greets the people named on the command line, using a granted
//! read-only directory and one granted environment variable.

use std::io::Write;

fn main() {
    let greeting = std::fs::read_to_string("/data/greeting.txt")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| format!("(no greeting: {e})"));
    let punctuation = std::env::var("PUNCTUATION").unwrap_or_else(|_| ".".into());
    let mut names: Vec<String> = std::env::args().skip(1).collect();
    if names.is_empty() {
        names.push("world".into());
    }
    let mut out = std::io::stdout();
    for name in &names {
        writeln!(out, "{greeting}, {name}{punctuation}").unwrap();
    }
    // The sandbox has no ambient authority: this secret is outside the grant.
    match std::fs::read_to_string("/etc/hostname") {
        Ok(_) => writeln!(out, "unexpected: the host file system is visible").unwrap(),
        Err(_) => writeln!(out, "(the host's /etc is out of reach, as it should be)").unwrap(),
    }
    // The log goes to stderr, which the manifest routes to Membrane's log.
    eprintln!("greeted {} people", names.len());
}
