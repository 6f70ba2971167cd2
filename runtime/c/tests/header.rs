//! The header and the library agree: every `extern "C" fn membrane_*` exported by
//! runtime/c/src is declared in include/membrane.h and nothing else is, each with the same
//! parameter and return types (the Rust types mapped to their C spelling).

use std::collections::BTreeMap;
use std::path::Path;

/// A function's C return type and parameter types, as token lists (`const char *` is
/// `["const", "char", "*"]`).
type Signature = (Vec<String>, Vec<Vec<String>>);

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `MembraneHostCall<'_>` -> `membrane_host_call_t`.
fn c_name(rust: &str) -> String {
    let rust = rust.split('<').next().unwrap_or(rust);
    let mut out = String::new();
    for (i, ch) in rust.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out.push_str("_t");
    out
}

/// A Rust parameter type in C tokens. A pointer's constness goes on what it points to.
fn rust_to_c(ty: &str) -> Vec<String> {
    let ty = ty.trim();
    let pointer = |inner: &str, pointee_const: bool| {
        let mut t = rust_to_c(inner);
        if pointee_const {
            // The pointee is const: the base type when it is one, else its last pointer.
            if t.last().is_some_and(|l| l == "*") {
                t.push("const".into());
            } else {
                t.insert(0, "const".into());
            }
        }
        t.push("*".into());
        t
    };
    if let Some(inner) = ty.strip_prefix("*const ") {
        return pointer(inner, true);
    }
    if let Some(inner) = ty.strip_prefix("*mut ") {
        return pointer(inner, false);
    }
    if let Some(inner) = ty.strip_prefix("Option<").and_then(|t| t.strip_suffix('>')) {
        return rust_to_c(inner);
    }
    let base = match ty {
        "c_char" => "char".to_string(),
        "c_void" => "void".to_string(),
        "u8" => "uint8_t".to_string(),
        "u32" => "uint32_t".to_string(),
        "u64" => "uint64_t".to_string(),
        "i32" => "int32_t".to_string(),
        "usize" => "size_t".to_string(),
        "bool" => "bool".to_string(),
        t if t.starts_with("Membrane") => c_name(t),
        t => panic!("no C spelling for the Rust type `{t}`: add it to rust_to_c"),
    };
    vec![base]
}

/// Splits at the commas outside `<>` and `()`.
fn split_params(s: &str) -> Vec<String> {
    let (mut out, mut depth, mut cur) = (Vec::new(), 0i32, String::new());
    for ch in s.chars() {
        match ch {
            '<' | '(' => depth += 1,
            '>' | ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    out.push(cur);
    out.into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Every `#[unsafe(no_mangle)] pub [unsafe] extern "C" fn membrane_*` in src/.
fn library() -> BTreeMap<String, Signature> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(crate_dir().join("src")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("#[unsafe(no_mangle)]") {
            rest = &rest[at + "#[unsafe(no_mangle)]".len()..];
            let head = rest.trim_start();
            let head = head
                .strip_prefix("pub unsafe extern \"C\" fn ")
                .or_else(|| head.strip_prefix("pub extern \"C\" fn "))
                .unwrap_or_else(|| {
                    panic!(
                        "{}: an exported item that is not a `pub extern \"C\" fn`: {}",
                        path.display(),
                        &head[..80.min(head.len())]
                    )
                });
            let name_end = head.find('(').unwrap();
            let name = head[..name_end].trim().to_string();
            assert!(
                name.starts_with("membrane_"),
                "{name}: exported names start with membrane_"
            );
            // The parameter list ends at the `)` matching the first `(`.
            let mut depth = 0;
            let mut close = 0;
            for (i, ch) in head.char_indices().skip(name_end) {
                match ch {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            close = i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let params = split_params(&head[name_end + 1..close])
                .iter()
                .map(|p| {
                    let (_, ty) = p.split_once(':').unwrap();
                    rust_to_c(ty)
                })
                .collect();
            let after = head[close + 1..].trim_start();
            let ret = match after.strip_prefix("->") {
                Some(r) => rust_to_c(&r[..r.find('{').unwrap()]),
                None => vec!["void".to_string()],
            };
            assert!(
                out.insert(name.clone(), (ret, params)).is_none(),
                "{name} twice"
            );
        }
    }
    out
}

/// C tokens: identifiers, `*`, `(`, `)`, `,`, `;`.
fn tokens(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for ch in s.chars() {
        if ch.is_ascii_alphanumeric() || ch == '_' {
            word.push(ch);
            continue;
        }
        if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        if "*(),;{}".contains(ch) {
            out.push(ch.to_string());
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// The header without comments and preprocessor lines.
fn header_code() -> String {
    let text = std::fs::read_to_string(crate_dir().join("include/membrane.h")).unwrap();
    let mut code = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("/*") {
        code.push_str(&rest[..at]);
        let end = rest[at..].find("*/").expect("an unterminated comment") + at + 2;
        rest = &rest[end..];
    }
    code.push_str(rest);
    code.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every function the header declares (not the typedefs).
fn header() -> BTreeMap<String, Signature> {
    let code = header_code();
    let mut out = BTreeMap::new();
    for decl in code.split(';') {
        let t = tokens(decl);
        // `extern "C" {` and `}` of C++ guards leave `extern`, `C`, `{`, `}` behind.
        let t: Vec<String> = t
            .into_iter()
            .skip_while(|x| x == "extern" || x == "C" || x == "{" || x == "}")
            .filter(|x| x != "{" && x != "}")
            .collect();
        if t.is_empty() || t[0] == "typedef" {
            continue;
        }
        let open = t
            .iter()
            .position(|x| x == "(")
            .unwrap_or_else(|| panic!("not a declaration: {t:?}"));
        let name = t[open - 1].clone();
        let ret = t[..open - 1].to_vec();
        assert_eq!(t.last().map(String::as_str), Some(")"), "{name}: {t:?}");
        let inner = &t[open + 1..t.len() - 1];
        let mut params = Vec::new();
        if inner != ["void"] {
            for p in inner.split(|x| x == ",") {
                let mut p = p.to_vec();
                let pname = p.pop().unwrap();
                assert!(
                    !["*", "const"].contains(&pname.as_str()),
                    "{name}: every parameter has a name in the header"
                );
                params.push(p);
            }
        }
        assert!(
            out.insert(name.clone(), (ret, params)).is_none(),
            "{name} twice in the header"
        );
    }
    out
}

#[test]
fn header_declares_exactly_the_exported_functions() {
    let lib = library();
    let head = header();
    assert!(lib.len() > 40, "found only {} functions in src/", lib.len());
    let only_lib: Vec<&String> = lib.keys().filter(|k| !head.contains_key(*k)).collect();
    let only_head: Vec<&String> = head.keys().filter(|k| !lib.contains_key(*k)).collect();
    assert!(
        only_lib.is_empty() && only_head.is_empty(),
        "exported but not declared: {only_lib:?}; declared but not exported: {only_head:?}"
    );
    let mut wrong = Vec::new();
    for (name, sig) in &lib {
        if head[name] != *sig {
            wrong.push(format!(
                "{name}: the library has {:?}, the header {:?}",
                sig, head[name]
            ));
        }
    }
    assert!(wrong.is_empty(), "signatures differ:\n{}", wrong.join("\n"));
}

/// Every exported function runs its body inside the panic guard (`ffi::guard` or
/// `ffi::guard_plain`, directly or through a helper that does), so no Rust panic unwinds
/// into C; `membrane_version` returns a constant and cannot panic.
#[test]
fn every_entry_point_is_guarded() {
    // The helpers entry points go through, each checked to guard what it runs.
    let helpers = [("error.rs", "fn field"), ("spec.rs", "fn set")];
    let source = |file: &str| std::fs::read_to_string(crate_dir().join("src").join(file)).unwrap();
    let body = |item: &str| item.split("\n}\n").next().unwrap().to_string();
    for (file, helper) in helpers {
        let text = source(file);
        let at = text
            .find(helper)
            .unwrap_or_else(|| panic!("{file}: no `{helper}`"));
        assert!(
            body(&text[at..]).contains("guard"),
            "{file}: `{helper}` does not guard"
        );
    }
    let mut unguarded = Vec::new();
    for entry in std::fs::read_dir(crate_dir().join("src")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for item in text.split("#[unsafe(no_mangle)]").skip(1) {
            let name = item.split('(').next().unwrap().rsplit(' ').next().unwrap();
            let body = body(item);
            let guarded = ["guard(", "guard_plain(", "field(", "set("]
                .iter()
                .any(|g| body.contains(g));
            if name != "membrane_version" && !guarded {
                unguarded.push(name.to_string());
            }
        }
    }
    assert!(
        unguarded.is_empty(),
        "entry points without the panic guard: {unguarded:?}"
    );
}

#[test]
fn the_mapping_spells_pointers_as_c_does() {
    assert_eq!(
        rust_to_c("*const *const c_char"),
        ["const", "char", "*", "const", "*"]
    );
    assert_eq!(
        rust_to_c("*mut *mut MembraneError"),
        ["membrane_error_t", "*", "*"]
    );
    assert_eq!(rust_to_c("*mut *const u8"), ["const", "uint8_t", "*", "*"]);
    assert_eq!(rust_to_c("Option<MembraneHostFn>"), ["membrane_host_fn_t"]);
    assert_eq!(
        rust_to_c("*mut MembraneHostCall<'_>"),
        ["membrane_host_call_t", "*"]
    );
}
