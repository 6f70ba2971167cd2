//! Every unknown key of a manifest in one report, each at its own line.
//!
//! The manifest's sections refuse unknown keys (`deny_unknown_fields`), and serde stops at
//! the first, at the line of the table that holds it. Here the document is parsed once
//! into a spanned tree; each time deserializing it stops at an unknown key, the key is
//! found in that table, reported at its own line, and taken out, and deserializing goes
//! on, so that two typos are two problems.

use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Unknown keys reported in one run, at most: past that the file is not a manifest.
const MAX_UNKNOWN: usize = 64;

/// What stopped the deserializing: a message and where, when known.
pub struct Problem {
    /// serde's message, e.g. "unknown field `x`, expected one of ...".
    pub message: String,
    /// Where in the text (the unknown key itself, for an unknown key).
    pub span: Option<Range<usize>>,
    /// The unknown key's dotted path (`modules.a.limits.memroy`), for an unknown key.
    pub key: Option<String>,
}

/// Deserializes `text`; the problems are every unknown key, then the first other error.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, Vec<Problem>> {
    let mut root = DeTable::parse(text).map_err(|e| vec![problem(&e)])?;
    let mut problems = Vec::new();
    loop {
        let result = T::deserialize(toml::de::Deserializer::from(root.clone()));
        let e = match result {
            Ok(value) if problems.is_empty() => return Ok(value),
            Ok(_) => return Err(by_line(problems)),
            Err(e) => e,
        };
        let removed = unknown_field(e.message())
            .zip(e.span())
            .filter(|_| problems.len() < MAX_UNKNOWN)
            .and_then(|(field, at)| remove(&mut root, &at, field));
        match removed {
            Some((key, span)) => problems.push(Problem {
                message: unknown_key(&key, e.message()),
                span: Some(span),
                key: Some(key),
            }),
            None => {
                let mut problems = by_line(problems);
                problems.push(problem(&e));
                return Err(problems);
            }
        }
    }
}

/// The unknown keys in the order of the text (serde meets them in its own).
fn by_line(mut problems: Vec<Problem>) -> Vec<Problem> {
    problems.sort_by_key(|p| p.span.as_ref().map(|s| s.start));
    problems
}

fn problem(e: &toml::de::Error) -> Problem {
    Problem {
        message: e.message().trim_end().to_string(),
        span: e.span(),
        key: None,
    }
}

/// What to say of the unknown key at `path`, from serde's "unknown field `x`, expected
/// one of `a`, `b`" (or "expected `a` or `b`", "expected `a`", "there are no fields"): the
/// known key nearest to it, when one is near, and the keys that table takes.
fn unknown_key(path: &str, serde_message: &str) -> String {
    let field = unknown_field(serde_message).unwrap_or(path);
    let known: Vec<&str> = serde_message
        .split_once("expected ")
        .map(|(_, list)| list.split('`').skip(1).step_by(2).collect())
        .unwrap_or_default();
    let near = known
        .iter()
        .map(|k| (distance(field, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min();
    let mut text = format!("{path}: unknown key `{field}`");
    if let Some((_, k)) = near {
        text += &format!("; did you mean `{k}`?");
    }
    if known.is_empty() {
        text += " (this table takes no keys)";
    } else {
        text += &format!(" (the keys here: {})", known.join(", "));
    }
    text
}

/// The edit distance between two short keys (insertions, deletions, substitutions and
/// swaps of neighbours).
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The field of serde's "unknown field `x`, expected ..." message.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split_once('`').map(|(field, _)| field)
}

/// Takes the key `field` out of the table that holds it: the key whose span is `at` (the
/// span serde gives), else the only key of that name inside the table whose span holds
/// `at` (a table's span, as serde gives for some). Its dotted path and its span.
fn remove(
    root: &mut Spanned<DeTable<'_>>,
    at: &Range<usize>,
    field: &str,
) -> Option<(String, Range<usize>)> {
    let exact = |key: &Spanned<toml::de::DeString<'_>>, _: &Range<usize>| {
        key.get_ref() == field && key.span() == *at
    };
    let inside = |key: &Spanned<toml::de::DeString<'_>>, table: &Range<usize>| {
        key.get_ref() == field && table.start <= at.start && at.end <= table.end
    };
    let whole = root.span();
    remove_where(root.get_mut(), &whole, "", &exact)
        .or_else(|| remove_where(root.get_mut(), &whole, "", &inside))
}

type Matches<'a> = dyn Fn(&Spanned<toml::de::DeString<'_>>, &Range<usize>) -> bool + 'a;

fn remove_where(
    table: &mut DeTable<'_>,
    span: &Range<usize>,
    path: &str,
    matches: &Matches<'_>,
) -> Option<(String, Range<usize>)> {
    if let Some(key) = table.keys().find(|k| matches(k, span)).cloned() {
        table.remove(&key);
        return Some((join(path, key.get_ref()), key.span()));
    }
    table.iter_mut().find_map(|(key, value)| {
        let inner = join(path, key.get_ref());
        remove_in(value, &inner, matches)
    })
}

fn remove_in(
    value: &mut Spanned<DeValue<'_>>,
    path: &str,
    matches: &Matches<'_>,
) -> Option<(String, Range<usize>)> {
    let span = value.span();
    match value.get_mut() {
        DeValue::Table(t) => remove_where(t, &span, path, matches),
        DeValue::Array(items) => items
            .iter_mut()
            .enumerate()
            .find_map(|(i, item)| remove_in(item, &format!("{path}[{i}]"), matches)),
        _ => None,
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        a: Option<u32>,
        #[serde(default)]
        t: std::collections::BTreeMap<String, Inner>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        b: Option<u32>,
        #[serde(default)]
        list: Vec<Inner>,
    }

    fn lines(text: &str, problems: &[Problem]) -> Vec<(Option<String>, usize)> {
        problems
            .iter()
            .map(|p| {
                let start = p.span.clone().unwrap().start;
                (p.key.clone(), text[..start].matches('\n').count() + 1)
            })
            .collect()
    }

    #[test]
    fn every_unknown_key_is_reported_at_its_line() {
        let text = "a = 1\nx = 2\n[t.one]\nb = 1\ny = 3\n\n[t.two]\nlist = [{ b = 1, z = 4 }]\n";
        let problems = from_str::<Doc>(text).expect_err("problems");
        assert_eq!(
            lines(text, &problems),
            [
                (Some("x".into()), 2),
                (Some("t.one.y".into()), 5),
                (Some("t.two.list[0].z".into()), 8)
            ]
        );
        assert_eq!(
            problems[1].message,
            "t.one.y: unknown key `y`; did you mean `b`? (the keys here: b, list)"
        );
        assert_eq!(
            unknown_key(
                "m.memroy",
                "unknown field `memroy`, expected one of `memory`, `timeout`"
            ),
            "m.memroy: unknown key `memroy`; did you mean `memory`? (the keys here: memory, timeout)"
        );
        assert_eq!(
            unknown_key("x.zzzzzz", "unknown field `zzzzzz`, expected `memory`"),
            "x.zzzzzz: unknown key `zzzzzz` (the keys here: memory)"
        );
    }

    #[test]
    fn unknown_keys_are_reported_up_to_the_limit() {
        let text: String = (0..MAX_UNKNOWN + 5)
            .map(|i| format!("k{i} = 1\n"))
            .collect();
        let problems = from_str::<Doc>(&text).expect_err("problems");
        // The limit's worth of keys, then the next one as the error that ends the report.
        assert_eq!(problems.len(), MAX_UNKNOWN + 1);
        assert!(problems[..MAX_UNKNOWN].iter().all(|p| p.key.is_some()));
        assert_eq!(problems[MAX_UNKNOWN].key, None);
    }

    #[test]
    fn other_errors_end_the_report() {
        let text = "c = 1\nt = { q = { b = \"text\" } }\n";
        let problems = from_str::<Doc>(text).expect_err("problems");
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].key.as_deref(), Some("c"));
        assert_eq!(problems[1].key, None);
        assert!(from_str::<Doc>("a = 1\n[t.x]\nb = 2\n").is_ok());
        assert!(from_str::<Doc>("a = [").is_err());
    }
}
