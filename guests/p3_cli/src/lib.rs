//! A `wasi:cli/run@0.3.0` command for the p3 `membrane run` tests: it writes `hello from p3`
//! and then its arguments (those after `argv[0]`, the module name), one per line, to stdout
//! through `wasi:cli/stdout@0.3.0`, and exits Ok, or Err when the first argument is `fail`.

use wasip3::cli::{environment, stdout};
use wasip3::wit_stream;

struct Cli;

impl wasip3::exports::cli::run::Guest for Cli {
    async fn run() -> Result<(), ()> {
        let args = environment::get_arguments();
        let args = args.get(1..).unwrap_or_default();
        let mut text = String::from("hello from p3\n");
        for arg in args {
            text.push_str(arg);
            text.push('\n');
        }

        let (mut tx, rx) = wit_stream::new();
        let written = stdout::write_via_stream(rx);
        tx.write_all(text.into_bytes()).await;
        drop(tx); // the end of the output: `written` resolves once it is all out
        written.await.map_err(|_| ())?;

        match args.first().map(String::as_str) {
            Some("fail") => Err(()),
            _ => Ok(()),
        }
    }
}

wasip3::cli::command::export!(Cli);
