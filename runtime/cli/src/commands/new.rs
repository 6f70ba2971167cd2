//! `membrane new`: a new module (or a small app) from a template, ready to build and run.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::output::out;
use crate::templates::{self, TEMPLATES, Template};

/// Create a new module from a template: its WIT, build files and membrane.toml.
#[derive(clap::Args)]
pub struct Args {
    /// The template (see --list).
    #[arg(required_unless_present = "list")]
    template: Option<String>,
    /// The module's name: lowercase words joined by '-', e.g. `my-module`. Also the
    /// directory created, unless --dir names another.
    #[arg(required_unless_present = "list")]
    name: Option<String>,
    /// The directory to create (it must not exist, or be empty); default: ./NAME.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// List the templates and exit.
    #[arg(long, conflicts_with_all = ["template", "name", "dir"])]
    list: bool,
}

/// Runs `membrane new`.
pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let (Some(template), Some(name)) = (a.template, a.name) else {
        out(&list())?;
        return Ok(ExitCode::SUCCESS);
    };
    let Some(template) = templates::find(&template) else {
        bail!(
            "there is no template {template:?}; the templates are: {}",
            TEMPLATES
                .iter()
                .map(|t| t.name)
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    templates::check_name(&name).map_err(anyhow::Error::msg)?;
    let dir = a.dir.unwrap_or_else(|| PathBuf::from(&name));
    create(template, &name, &dir)?;
    out(&next_steps(template, &name, &dir))?;
    Ok(ExitCode::SUCCESS)
}

/// The templates, one per line, as `--list` prints them.
fn list() -> String {
    let width = TEMPLATES.iter().map(|t| t.name.len()).max().unwrap_or(0);
    let mut text = String::new();
    for t in TEMPLATES {
        let _ = writeln!(text, "{:width$}  {}", t.name, t.about);
    }
    text += "\ncreate one with: membrane new <template> <name>\n";
    text
}

/// Writes the template's files into `dir`, which must not exist or be empty: nothing of
/// the user's is ever overwritten.
fn create(template: &Template, name: &str, dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} exists and is not empty; choose another name, or another directory with --dir",
                    dir.display()
                );
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => bail!("cannot use {} as the new directory: {e}", dir.display()),
    }
    for (path, text) in template.files {
        let file = dir.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&file, templates::fill(text, name))
            .with_context(|| format!("cannot write {}", file.display()))?;
    }
    Ok(())
}

/// What `membrane new` prints: what it made and the commands that try it.
fn next_steps(template: &Template, name: &str, dir: &Path) -> String {
    let mut text = format!(
        "created {}: {}\n\nnext:\n  cd {}\n",
        dir.display(),
        template.about,
        shell_word(&dir.display().to_string()),
    );
    for command in template.next {
        let _ = writeln!(text, "  {}", templates::fill(command, name));
    }
    text
}

/// `word` as one shell word.
fn shell_word(word: &str) -> String {
    if word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
