//! Interface versions, matched the way the component model matches them: a provider can
//! serve an import when it is at least as new and on the same compatibility track (same
//! major version from 1.0 on; same minor for 0.x; the exact version for 0.0.x and for
//! prereleases).

use semver::Version;

/// Whether an export at `provided` can serve an import at `required`.
pub fn compatible(required: Option<&str>, provided: Option<&str>) -> bool {
    match (required, provided) {
        (None, None) => true,
        (Some(r), Some(p)) => match (Version::parse(r), Version::parse(p)) {
            (Ok(r), Ok(p)) => compatible_versions(&r, &p),
            _ => r == p,
        },
        _ => false,
    }
}

fn compatible_versions(r: &Version, p: &Version) -> bool {
    if !r.pre.is_empty() || !p.pre.is_empty() {
        return r == p;
    }
    let same_track = match (r.major, r.minor) {
        (0, 0) => p.major == 0 && p.minor == 0 && p.patch == r.patch,
        (0, m) => p.major == 0 && p.minor == m,
        (maj, _) => p.major == maj,
    };
    same_track && p >= r
}

/// Checks the version part of a link key.
pub fn parse(version: &str) -> Result<(), String> {
    Version::parse(version)
        .map(|_| ())
        .map_err(|e| format!("{version:?} is not a semantic version ({e})"))
}

#[cfg(test)]
mod tests {
    use super::compatible;

    #[test]
    fn component_model_rules() {
        let ok = |r, p| compatible(Some(r), Some(p));
        assert!(ok("1.2.0", "1.4.1"));
        assert!(ok("1.2.0", "1.2.0"));
        assert!(!ok("1.2.0", "2.0.0"));
        assert!(
            !ok("1.4.0", "1.2.0"),
            "an older provider lacks what the import may use"
        );
        assert!(ok("0.2.0", "0.2.7"));
        assert!(!ok("0.2.0", "0.3.0"));
        assert!(!ok("0.0.1", "0.0.2"));
        assert!(!ok("1.0.0-rc1", "1.0.0"));
        assert!(ok("1.0.0-rc1", "1.0.0-rc1"));
        assert!(compatible(None, None));
        assert!(!compatible(Some("1.0.0"), None));
        assert!(!compatible(None, Some("1.0.0")));
    }
}
