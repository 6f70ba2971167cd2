//! A command for testing `membrane run`: its first argument says what to do.

use std::io::{Read, Write};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("args") => println!("{}", args[2..].join(",")),
        Some("env") => println!(
            "{}",
            std::env::var(&args[2]).unwrap_or_else(|_| "<unset>".into())
        ),
        Some("exit") => std::process::exit(args[2].parse().unwrap()),
        Some("stdin") => {
            let mut input = String::new();
            match std::io::stdin().read_to_string(&mut input) {
                Ok(_) => println!("stdin: {input:?}"),
                Err(e) => println!("stdin error: {e}"),
            }
        }
        Some("stderr") => {
            eprintln!("{}", args[2]);
        }
        Some("lines") => {
            // Many lines at once, then a long one without a newline.
            let mut out = std::io::stdout();
            for i in 0..3 {
                writeln!(out, "line {i}").unwrap();
            }
            let long = "x".repeat(args[2].parse().unwrap());
            write!(out, "{long}").unwrap();
            out.flush().unwrap();
        }
        Some("newlines") => {
            // Bare newlines in one write: the host must not log one event per byte.
            let n: usize = args[2].parse().unwrap();
            let mut out = std::io::stdout();
            out.write_all(&vec![b'\n'; n]).unwrap();
            out.flush().unwrap();
        }
        Some("manylines") => {
            let mut out = std::io::stdout();
            for i in 0..args[2].parse::<usize>().unwrap() {
                writeln!(out, "l{i}").unwrap();
            }
        }
        Some("panic") => panic!("cli_probe was told to panic"),
        Some("spin") => loop {
            std::hint::black_box(());
        },
        other => {
            eprintln!("unknown command {other:?}");
            std::process::exit(2);
        }
    }
}
