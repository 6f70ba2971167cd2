//! The `membrane` command (see the membrane-cli crate).

fn main() -> std::process::ExitCode {
    membrane_cli::main()
}
