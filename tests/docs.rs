//! The README and the guide (docs/guide/*.md) stay true to the code:
//! - every `membrane ...` (or `cargo run -p membrane -- ...`) line of a `sh` or `console`
//!   block names a subcommand the binary has, and only flags that subcommand's `--help` lists;
//! - every `toml` block whose first line is `# membrane.toml` parses as a manifest with the
//!   runtime's own parser, and declares a valid app (`membrane::validate`) unless that line
//!   says `excerpt`;
//! - every relative link and image points at a file that exists, and every `#anchor` at a
//!   heading of its page (anchors made as GitHub makes them);
//! - every fenced block names its language (the embedding page is compiled as doctests,
//!   where a block without one would be compiled as Rust).
//!
//! Nothing here builds or runs a guest: the checks read text and ask the binary for its help.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

use crate::common::membrane;

/// The command reference: a `## \`membrane <command>\`` section per subcommand.
const COMMANDS_PAGE: &str = "docs/guide/commands.md";

/// Subcommands whose flags are documented on another page than the command reference.
const DOCUMENTED_ELSEWHERE: &[(&str, &str)] = &[
    ("lock", "docs/guide/registries.md"),
    ("push", "docs/guide/registries.md"),
];

#[test]
fn commands_in_the_docs_exist() {
    let mut help = Help::default();
    let problems: Vec<String> = pages()
        .iter()
        .flat_map(|p| check_commands(p, &mut help))
        .collect();
    assert_no_problems("commands", &problems);
}

/// The other direction: every subcommand and every flag the binary has is documented.
#[test]
fn the_command_reference_is_complete() {
    let problems = check_reference(&mut Help::default());
    assert_no_problems("command reference", &problems);
}

#[test]
fn manifests_in_the_docs_parse() {
    let problems: Vec<String> = pages().iter().flat_map(check_manifests).collect();
    assert_no_problems("manifests", &problems);
}

#[test]
fn links_in_the_docs_resolve() {
    let problems: Vec<String> = pages().iter().flat_map(check_links).collect();
    assert_no_problems("links", &problems);
}

#[test]
fn code_blocks_in_the_docs_name_their_language() {
    let problems: Vec<String> = pages().iter().flat_map(check_languages).collect();
    assert_no_problems("code blocks", &problems);
}

/// The checks find what they are meant to find: a page with one mistake of each kind.
#[test]
fn the_docs_checks_catch_mistakes() {
    let page = Page::new(
        root().join("docs/guide/selftest.md"),
        "# Title\n\n\
         [ok](README.md) [here](#title) [gone](no-such-page.md) [bad anchor](#nowhere)\n\
         [other page](../../README.md#no-such-heading) ![img](../no-such.png)\n\n\
         ```sh\n\
         membrane run --build examples/hello -- Ada\n\
         membrane frobnicate x\n\
         cargo run -p membrane -- check --no-such-flag x && membrane graph --format dot\n\
         ```\n\n\
         ```toml\n# membrane.toml\n\
         [modules.a]\ncomponent = \"a.wasm\"\nlimits = { memroy = \"1MiB\" }\n```\n\n\
         ```toml\n# membrane.toml\n\
         [app]\nentry = \"b\"\n[modules.a]\ncomponent = \"a.wasm\"\n```\n\n\
         ```toml\n# membrane.toml (excerpt)\n\
         [app]\nentry = \"b\"\n[modules.a]\ncomponent = \"a.wasm\"\n```\n\n\
         ```\nno language\n```\n"
            .to_string(),
    );
    let links = check_links(&page);
    assert_eq!(links.len(), 4, "{links:#?}");
    for (found, what) in links.iter().zip([
        "no-such-page.md",
        "#nowhere",
        "#no-such-heading",
        "no-such.png",
    ]) {
        assert!(found.contains(what), "{found}");
    }
    let commands = check_commands(&page, &mut Help::default());
    assert_eq!(commands.len(), 2, "{commands:#?}");
    assert!(commands[0].contains("frobnicate"), "{}", commands[0]);
    assert!(commands[1].contains("--no-such-flag"), "{}", commands[1]);
    let manifests = check_manifests(&page);
    assert_eq!(manifests.len(), 2, "{manifests:#?}");
    assert!(manifests[0].contains("memroy"), "{}", manifests[0]);
    assert!(manifests[1].contains("app.entry"), "{}", manifests[1]);
    assert_eq!(check_languages(&page).len(), 1);
}

#[test]
fn anchors_are_made_as_github_makes_them() {
    let page = Page::new(
        PathBuf::from("x.md"),
        "# Manifest reference (`membrane.toml`)\n## WASI 0.3 modules\n## Links\n## Links\n\
         ## `fused`: one Store\n"
            .to_string(),
    );
    let anchors: Vec<&str> = page.anchors.iter().map(String::as_str).collect();
    for a in [
        "manifest-reference-membranetoml",
        "wasi-03-modules",
        "links",
        "links-1",
        "fused-one-store",
    ] {
        assert!(anchors.contains(&a), "{a} not in {anchors:?}");
    }
}

fn assert_no_problems(what: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{} problem(s) with the {what} of README.md and docs/guide:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The repository's root, without `..` in it (links are compared as paths).
fn root() -> PathBuf {
    let root = crate::common::repo_root();
    root.canonicalize().unwrap_or(root)
}

/// README.md and every page of docs/guide, in name order.
fn pages() -> Vec<Page> {
    let root = root();
    let mut paths = vec![root.join("README.md")];
    let mut guide: Vec<PathBuf> = std::fs::read_dir(root.join("docs/guide"))
        .expect("docs/guide")
        .map(|e| e.expect("docs/guide entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    guide.sort();
    paths.extend(guide);
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
            Page::new(p, text)
        })
        .collect()
}

/// A Markdown page, read once: its fenced blocks, links and heading anchors.
struct Page {
    path: PathBuf,
    blocks: Vec<Block>,
    links: Vec<(String, usize)>,
    anchors: HashSet<String>,
}

/// A fenced code block: its language (the info string), its text, the line it starts on.
struct Block {
    info: String,
    text: String,
    line: usize,
}

impl Page {
    fn new(path: PathBuf, text: String) -> Page {
        let line_of = |offset: usize| text[..offset].matches('\n').count() + 1;
        let mut page = Page {
            path,
            blocks: Vec::new(),
            links: Vec::new(),
            anchors: HashSet::new(),
        };
        let mut slugs = Slugs::default();
        let mut heading: Option<String> = None;
        let mut block: Option<Block> = None;
        let options = Options::ENABLE_TABLES | Options::ENABLE_HEADING_ATTRIBUTES;
        for (event, range) in Parser::new_ext(&text, options).into_offset_iter() {
            match event {
                Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
                Event::End(TagEnd::Heading(_)) => {
                    let title = heading.take().unwrap_or_default();
                    page.anchors.insert(slugs.slug(&title));
                }
                Event::Start(Tag::CodeBlock(kind)) => {
                    let info = match kind {
                        CodeBlockKind::Fenced(info) => info.to_string(),
                        CodeBlockKind::Indented => "indented".to_string(),
                    };
                    block = Some(Block {
                        info,
                        text: String::new(),
                        line: line_of(range.start),
                    });
                }
                Event::End(TagEnd::CodeBlock) => page.blocks.extend(block.take()),
                Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                    page.links
                        .push((dest_url.to_string(), line_of(range.start)));
                }
                Event::Text(t) | Event::Code(t) => {
                    if let Some(b) = &mut block {
                        b.text.push_str(&t);
                    } else if let Some(h) = &mut heading {
                        h.push_str(&t);
                    }
                }
                _ => {}
            }
        }
        page
    }

    /// The page's path from the repository's root, for messages.
    fn name(&self) -> String {
        self.path
            .strip_prefix(root())
            .unwrap_or(&self.path)
            .display()
            .to_string()
    }

    /// The blocks whose language is one of `languages` (the first word of the info string).
    fn blocks_in<'a>(&'a self, languages: &'a [&str]) -> impl Iterator<Item = &'a Block> {
        self.blocks.iter().filter(move |b| {
            let lang = b.info.split([',', ' ']).next().unwrap_or("");
            languages.contains(&lang)
        })
    }
}

/// GitHub's heading anchors: lower case, only letters, digits, `-`, `_` and spaces kept,
/// each space a `-`; a repeated anchor gets `-1`, `-2`, ...
#[derive(Default)]
struct Slugs {
    seen: HashMap<String, usize>,
}

impl Slugs {
    fn slug(&mut self, title: &str) -> String {
        let base: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let n = self.seen.entry(base.clone()).or_insert(0);
        let slug = if *n == 0 { base } else { format!("{base}-{n}") };
        *n += 1;
        slug
    }
}

/// The `--help` texts of the binary, asked once each.
#[derive(Default)]
struct Help {
    texts: BTreeMap<String, String>,
    commands: Option<Vec<String>>,
}

impl Help {
    fn text(&mut self, sub: &str) -> &str {
        self.texts.entry(sub.to_string()).or_insert_with(|| {
            let o = if sub.is_empty() {
                membrane(&["--help"])
            } else {
                membrane(&[sub, "--help"])
            };
            assert!(o.status.success(), "membrane {sub} --help failed");
            String::from_utf8(o.stdout).expect("help is UTF-8")
        })
    }

    /// The subcommands `membrane --help` lists.
    fn commands(&mut self) -> &[String] {
        if self.commands.is_none() {
            let text = self.text("").to_string();
            let list = text
                .lines()
                .skip_while(|l| !l.starts_with("Commands:"))
                .skip(1)
                .take_while(|l| l.starts_with("  "))
                .filter_map(|l| l.split_whitespace().next().map(String::from))
                .collect();
            self.commands = Some(list);
        }
        self.commands.as_deref().unwrap_or_default()
    }
}

fn check_commands(page: &Page, help: &mut Help) -> Vec<String> {
    let mut problems = Vec::new();
    for block in page.blocks_in(&["sh", "console", "bash", "shell"]) {
        for (i, line) in logical_lines(&block.text) {
            let at = format!("{}:{}", page.name(), block.line + 1 + i);
            let line = line
                .trim_start()
                .strip_prefix("$ ")
                .unwrap_or(line.trim_start());
            for words in shell_commands(line) {
                if let Some(args) = membrane_args(&words) {
                    problems.extend(check_invocation(args, help).map(|p| format!("{at}: {p}")));
                }
            }
        }
    }
    problems
}

/// What is wrong with `membrane ARGS`, if anything: an unknown subcommand or a flag its
/// help does not list.
fn check_invocation(args: &[String], help: &mut Help) -> Option<String> {
    let shown = format!("`membrane {}`", args.join(" "));
    let Some(sub) = args.first() else {
        return Some(format!("{shown} names no subcommand"));
    };
    if sub.starts_with('-') {
        let known = ["--help", "-h", "--version", "-V"].contains(&sub.as_str());
        return (!known).then(|| format!("{shown}: `{sub}` is not an option of membrane"));
    }
    if !help.commands().contains(sub) {
        return Some(format!(
            "{shown}: no subcommand `{sub}` (membrane has {})",
            help.commands().join(", ")
        ));
    }
    let text = help.text(sub).to_string();
    for arg in args[1..].iter().take_while(|a| *a != "--") {
        let flag = arg.split('=').next().unwrap_or(arg);
        let is_flag = (flag.starts_with("--") && flag.len() > 2)
            || (flag.len() == 2
                && flag.starts_with('-')
                && flag[1..].chars().all(|c| c.is_ascii_alphabetic()));
        if is_flag && !lists_flag(&text, flag) {
            return Some(format!(
                "{shown}: `membrane {sub} --help` lists no flag `{flag}`"
            ));
        }
    }
    None
}

/// What the command reference lacks: a section for a subcommand, or a flag of one.
fn check_reference(help: &mut Help) -> Vec<String> {
    let read = |page: &str| std::fs::read_to_string(root().join(page)).ok();
    let reference = read(COMMANDS_PAGE).unwrap_or_default();
    let mut sections: BTreeMap<String, String> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in reference.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            current = title
                .trim_matches('`')
                .strip_prefix("membrane ")
                .map(|c| c.to_string());
        } else if let Some(c) = &current {
            let text = sections.entry(c.clone()).or_default();
            text.push_str(line);
            text.push('\n');
        }
    }
    let mut problems = Vec::new();
    for sub in help.commands().to_vec() {
        if sub == "help" {
            continue;
        }
        let elsewhere = DOCUMENTED_ELSEWHERE.iter().find(|(c, _)| *c == sub);
        let (page, text) = match elsewhere {
            Some((_, page)) => match read(page) {
                Some(text) => (*page, text),
                None => {
                    problems.push(format!(
                        "`membrane {sub}` is documented in {page}, which is missing"
                    ));
                    continue;
                }
            },
            None => match sections.get(&sub) {
                Some(text) => (COMMANDS_PAGE, text.clone()),
                None => {
                    problems.push(format!("{COMMANDS_PAGE} has no section `membrane {sub}`"));
                    continue;
                }
            },
        };
        for flag in help_flags(help.text(&sub)) {
            if !lists_flag(&text, &flag) {
                problems.push(format!(
                    "{page}: `membrane {sub}` has a flag `{flag}` the page does not mention"
                ));
            }
        }
    }
    problems
}

/// The long flags an option list of `--help` shows, but `--help` and `--version`.
fn help_flags(help: &str) -> Vec<String> {
    let mut flags: Vec<String> = help
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .flat_map(|l| l.split([' ', ',', '=', '<', '[']))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .filter(|w| *w != "--help" && *w != "--version")
        .map(String::from)
        .collect();
    flags.dedup();
    flags
}

/// Whether a text lists `flag` as a whole word (`--dir` is not `--dirs`).
fn lists_flag(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(i, _)| {
        let before = help[..i].chars().next_back();
        let after = help[i + flag.len()..].chars().next();
        before.is_none_or(|c| c.is_whitespace() || matches!(c, '[' | ',' | '`' | '('))
            && after.is_none_or(|c| !(c.is_alphanumeric() || c == '-' || c == '_'))
    })
}

/// The arguments of a `membrane` command in `words`: after `membrane`, or after the `--` of
/// `cargo run ... -p membrane ... --` (not an `--example` of the crate). Leading variable
/// assignments (`MEMBRANE_LOG=debug membrane ...`) are skipped.
fn membrane_args(words: &[String]) -> Option<&[String]> {
    let start = words.iter().position(|w| !is_assignment(w))?;
    let words = &words[start..];
    match words.first()?.as_str() {
        "membrane" => Some(&words[1..]),
        "cargo" if words.get(1).is_some_and(|w| w == "run") => {
            let sep = words.iter().position(|w| w == "--")?;
            let options = &words[2..sep];
            let names_membrane = options
                .windows(2)
                .any(|p| (p[0] == "-p" || p[0] == "--package") && p[1] == "membrane");
            let example = options
                .iter()
                .any(|o| o.starts_with("--example") || o.starts_with("--bin"));
            (names_membrane && !example).then(|| &words[sep + 1..])
        }
        _ => None,
    }
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && !name.starts_with('-')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// The lines of a shell block with `\`-continued lines joined, each with its index.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let (first, mut joined) = current.take().unwrap_or((i, String::new()));
        match line.strip_suffix('\\') {
            Some(head) => {
                joined.push_str(head);
                joined.push(' ');
                current = Some((first, joined));
            }
            None => {
                joined.push_str(line);
                out.push((first, joined));
            }
        }
    }
    out.extend(current);
    out
}

/// Splits a shell line as sh would into its simple commands (separated by `;`, `&`, `&&`,
/// `|`, `||`, redirections and parentheses), each a list of words with quotes removed.
/// A `#` that starts a word starts a comment.
fn shell_commands(line: &str) -> Vec<Vec<String>> {
    let mut commands = vec![Vec::new()];
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                w.extend(chars.by_ref().take_while(|&c| c != '\''));
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some(n @ ('"' | '\\' | '$' | '`')) => w.push(n),
                            Some(n) => {
                                w.push('\\');
                                w.push(n);
                            }
                            None => w.push('\\'),
                        },
                        c => w.push(c),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).extend(chars.next()),
            '#' if word.is_none() => break,
            c if c.is_whitespace() => {
                let last = commands.last_mut().expect("a command");
                last.extend(word.take());
            }
            ';' | '&' | '|' | '<' | '>' | '(' | ')' => {
                let last = commands.last_mut().expect("a command");
                last.extend(word.take());
                if !last.is_empty() {
                    commands.push(Vec::new());
                }
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    commands.last_mut().expect("a command").extend(word);
    commands.retain(|c| !c.is_empty());
    commands
}

fn check_manifests(page: &Page) -> Vec<String> {
    let mut problems = Vec::new();
    for block in page.blocks_in(&["toml"]) {
        let first = block.text.lines().next().unwrap_or("").trim();
        if !first.starts_with("# membrane.toml") {
            continue;
        }
        let at = format!("{}:{}", page.name(), block.line);
        // A base directory that does not exist: parsing resolves paths but opens nothing.
        let parsed = membrane::Manifest::parse(
            &block.text,
            Path::new("membrane.toml"),
            Path::new("/nonexistent"),
        );
        let result = parsed.and_then(|m| {
            if first.contains("excerpt") {
                Ok(())
            } else {
                membrane::validate(&m.app)
            }
        });
        if let Err(e) = result {
            problems.push(format!(
                "{at}: the manifest block is refused: {}",
                membrane::chain(&e)
            ));
        }
    }
    problems
}

fn check_links(page: &Page) -> Vec<String> {
    let mut problems = Vec::new();
    let root = root();
    let dir = page.path.parent().unwrap_or(Path::new("."));
    for (dest, line) in &page.links {
        let at = format!("{}:{line}", page.name());
        if dest.contains("://") || dest.starts_with("mailto:") {
            continue;
        }
        let (path, anchor) = match dest.split_once('#') {
            Some((p, a)) => (p, Some(a)),
            None => (dest.as_str(), None),
        };
        let target = if path.is_empty() {
            page.path.clone()
        } else {
            normalize(&dir.join(path))
        };
        let from_root = target.strip_prefix(&root).unwrap_or(&target);
        if !path.is_empty() && !target.exists() {
            problems.push(format!("{at}: `{dest}`: no file {}", from_root.display()));
            continue;
        }
        let Some(anchor) = anchor else { continue };
        let anchors = if target == page.path {
            page.anchors.clone()
        } else if target.extension().is_some_and(|e| e == "md") {
            let text = std::fs::read_to_string(&target).unwrap_or_default();
            Page::new(target.clone(), text).anchors
        } else {
            problems.push(format!(
                "{at}: `{dest}`: an anchor into a file that is not Markdown"
            ));
            continue;
        };
        if !anchors.contains(anchor) {
            let mut known: Vec<&String> = anchors.iter().collect();
            known.sort();
            problems.push(format!(
                "{at}: `{dest}`: {} has no heading `#{anchor}` (it has: {})",
                from_root.display(),
                known
                    .iter()
                    .map(|a| format!("#{a}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
    }
    problems
}

/// `a/b/../c` as `a/c`, without asking the file system (a link may name a missing file).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

fn check_languages(page: &Page) -> Vec<String> {
    page.blocks
        .iter()
        .filter(|b| b.info.trim().is_empty() || b.info == "indented")
        .map(|b| {
            format!(
                "{}:{}: a code block without a language (write ```text, ```sh, ...)",
                page.name(),
                b.line
            )
        })
        .collect()
}

#[test]
fn shell_lines_split_as_sh_splits_them() {
    let words = |line: &str| shell_commands(line);
    assert_eq!(
        words(r#"membrane call app.toml m 'a:b/c#d' '"x y"' 42 # a comment"#),
        [[
            "membrane", "call", "app.toml", "m", "a:b/c#d", "\"x y\"", "42"
        ]]
    );
    assert_eq!(
        words("cp a b && membrane reload --admin 127.0.0.1:9091 &"),
        [
            vec!["cp", "a", "b"],
            vec!["membrane", "reload", "--admin", "127.0.0.1:9091"]
        ]
    );
    assert_eq!(
        words(r#"membrane graph x > out.dot; echo "a\"b""#),
        [
            vec!["membrane", "graph", "x"],
            vec!["out.dot"],
            vec!["echo", "a\"b"]
        ]
    );
    let w = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let run = w(&["cargo", "run", "-p", "membrane", "--", "run", "--build"]);
    assert_eq!(membrane_args(&run), Some(&run[5..]));
    let example = w(&["cargo", "run", "-p", "membrane", "--example", "plugins"]);
    assert_eq!(membrane_args(&example), None);
    let env = w(&["MEMBRANE_LOG=debug", "membrane", "check"]);
    assert_eq!(membrane_args(&env), Some(&env[2..]));
    assert_eq!(
        logical_lines("membrane host x \\\n  --modules a\nls"),
        [
            (0, "membrane host x    --modules a".to_string()),
            (2, "ls".to_string())
        ]
    );
    assert!(lists_flag("  --dir <HOST>\n", "--dir"));
    assert!(!lists_flag("  --dirs <HOST>\n", "--dir"));
}
