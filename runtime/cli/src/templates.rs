//! The templates of `membrane new`: each a directory under `runtime/cli/templates/`,
//! compiled into the binary. In their files `{{name}}` is the new module's name (kebab
//! case: a module name, a WIT package and a Cargo package at once) and `{{snake}}` the same
//! with `_` for `-` (the Rust identifier and the file a Cargo library is built to).

/// One template: its files, and the commands that try what it made.
pub struct Template {
    /// What `membrane new <template>` calls it.
    pub name: &'static str,
    /// One line for `membrane new --list`.
    pub about: &'static str,
    /// Each file's path in the new directory and its text, before substitution.
    pub files: &'static [(&'static str, &'static str)],
    /// The commands to run in the new directory, in order, before substitution.
    pub next: &'static [&'static str],
}

macro_rules! files {
    ($template:literal: $($path:literal),+ $(,)?) => {
        &[$(($path, include_str!(concat!("../templates/", $template, "/", $path)))),+]
    };
}

/// The call that tries a library module of the templates.
const CALL_HELLO: &str =
    "membrane call membrane.toml {{name}} 'local:{{name}}/greet@0.1.0#hello' '\"Ada\"'";

/// Every template, in the order `--list` shows them.
pub const TEMPLATES: &[Template] = &[
    Template {
        name: "rust-lib",
        about: "a Rust library module: exports a WIT interface that other modules link to",
        files: files!("rust-lib": "Cargo.toml", "src/lib.rs", "wit/world.wit", "membrane.toml", ".gitignore"),
        next: &["membrane build", CALL_HELLO],
    },
    Template {
        name: "rust-command",
        about: "a Rust command: a program with arguments, run by `membrane run`",
        files: files!("rust-command": "Cargo.toml", "src/main.rs", "membrane.toml", ".gitignore"),
        next: &["membrane run --build -- Ada"],
    },
    Template {
        name: "rust-http",
        about: "a Rust HTTP service (wasi:http), served by `membrane serve`",
        files: files!("rust-http": "Cargo.toml", "src/lib.rs", "membrane.toml", ".gitignore"),
        next: &["membrane serve --build", "curl http://127.0.0.1:8080/hello"],
    },
    Template {
        name: "python",
        about: "a Python library module (componentize-py, installed on first build)",
        files: files!("python": "app.py", "wit/world.wit", "build.sh", "membrane.toml", ".gitignore"),
        next: &["membrane build", CALL_HELLO],
    },
    Template {
        name: "js",
        about: "a JavaScript library module (componentize-js, installed on first build by npm)",
        files: files!("js": "app.js", "package.json", "wit/world.wit", "build.sh", "membrane.toml", ".gitignore"),
        next: &["membrane build", CALL_HELLO],
    },
    Template {
        name: "linked",
        about: "two Rust modules linked by a WIT interface: a command and the library it calls",
        files: files!(
            "linked": "Cargo.toml",
            "wit/greeter.wit",
            "app/Cargo.toml",
            "app/src/main.rs",
            "greeter/Cargo.toml",
            "greeter/src/lib.rs",
            "membrane.toml",
            ".gitignore",
        ),
        next: &["membrane run --build -- Ada", "membrane graph"],
    },
];

/// The template called `name`.
pub fn find(name: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.name == name)
}

/// `text` with the placeholders filled for the module `name`.
pub fn fill(text: &str, name: &str) -> String {
    text.replace("{{name}}", name)
        .replace("{{snake}}", &name.replace('-', "_"))
}

/// Checks a new module's name: it becomes a module name, a WIT package and world name and
/// a Cargo package, so it must be all of them: lowercase words of letters and digits, each
/// starting with a letter, joined by single `-`.
pub fn check_name(name: &str) -> Result<(), String> {
    let words_ok = !name.is_empty()
        && name.split('-').all(|w| {
            w.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    if !words_ok {
        return Err(format!(
            "{name:?} cannot name a module: use lowercase words of letters and digits joined by '-', each starting with a letter (e.g. `my-module`)"
        ));
    }
    if name.len() > 64 {
        return Err(format!("{name:?} is longer than 64 characters"));
    }
    if ["host", "greeter", "wit", "target"].contains(&name) {
        return Err(format!(
            "{name:?} is a name the templates use themselves; choose another"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["hello", "my-module", "a1-b2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Hello",
            "my_module",
            "1st",
            "a--b",
            "-a",
            "a-",
            "a-1",
            "host",
            "x y",
        ] {
            let e = check_name(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn placeholders_are_filled_in_every_file() {
        for t in TEMPLATES {
            assert!(
                t.files.iter().any(|(p, _)| *p == "membrane.toml"),
                "{}",
                t.name
            );
            for (path, text) in t.files {
                let filled = fill(text, "my-mod");
                assert!(!filled.contains("{{"), "{}/{path}: {filled}", t.name);
            }
        }
    }
}
