//! `membrane inspect`: a component's imports and exports, printed as WIT.

use std::process::ExitCode;

use std::path::{Path, PathBuf};

use wit_component::{DecodedWasm, WitPrinter};

use membrane_core::compile::check_header;

use crate::membrane::{Error, ErrorKind, Result};
use crate::output::out;

/// Print a component's imports and exports as WIT.
#[derive(clap::Args)]
pub struct Args {
    /// The component file.
    component: PathBuf,
    /// Also print the definitions of every interface it imports and exports.
    #[arg(long)]
    full: bool,
}

/// Runs `membrane inspect`.
pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    out(&inspect_file(&a.component, a.full)?)?;
    Ok(ExitCode::SUCCESS)
}

/// Decodes component bytes and prints their world as WIT.
///
/// The world with its `import` and `export` lines comes first, followed by the definitions
/// of the exported interfaces (their functions, with signatures, and types): what a user can
/// call. With `full`, the definitions of the imported interfaces follow too.
fn inspect(bytes: &[u8], full: bool) -> Result<String> {
    check_header("<inspected>", bytes).map_err(|e| {
        Error::new(
            ErrorKind::InvalidComponent,
            e.message().replace("module `<inspected>`: ", ""),
        )
    })?;
    let decoded = wit_component::decode(bytes).map_err(|e| {
        Error::new(
            ErrorKind::InvalidComponent,
            "the component's types cannot be decoded",
        )
        .with_source(e)
    })?;
    let (resolve, world) = match decoded {
        DecodedWasm::Component(resolve, world) => (resolve, world),
        DecodedWasm::WitPackage(..) => {
            return Err(Error::new(
                ErrorKind::InvalidComponent,
                "this file is a WIT package encoded as wasm, not a runnable component",
            ));
        }
    };
    let root = resolve.worlds[world].package.ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidComponent,
            "the component's world belongs to no package",
        )
    })?;
    let exported: Vec<_> = resolve.worlds[world]
        .exports
        .values()
        .filter_map(|item| match item {
            wit_parser::WorldItem::Interface { id, .. } => resolve.interfaces[*id].package,
            _ => None,
        })
        .collect();
    let nested: Vec<_> = resolve
        .packages
        .iter()
        .map(|(id, _)| id)
        .filter(|id| *id != root && (full || exported.contains(id)))
        .collect();
    let mut printer = WitPrinter::default();
    printer.print(&resolve, root, &nested).map_err(|e| {
        Error::new(
            ErrorKind::InvalidComponent,
            "the component's world cannot be printed",
        )
        .with_source(e)
    })?;
    // Doc comments and names come from the component: keep them from driving a terminal.
    Ok(membrane_core::sanitize::escape_lines(
        &printer.output.to_string(),
        "",
    ))
}

/// Reads a component file and prints it (see [`inspect`]).
fn inspect_file(path: impl AsRef<Path>, full: bool) -> Result<String> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::NotFound {
            ErrorKind::NotFound
        } else {
            ErrorKind::Io
        };
        Error::new(kind, format!("cannot read {}", path.display())).with_source(e)
    })?;
    inspect(&bytes, full).map_err(|e| e.context(path.display()))
}
