//! Human-readable sizes ("64MiB") and durations ("500ms") used by the manifest.

use std::time::Duration;

/// Parses a byte size such as `64MiB`, `512 KiB`, `1GiB`, `100MB` or `4096`.
///
/// Binary units (KiB, MiB, GiB) are powers of 1024; decimal units (KB, MB, GB) powers of 1000;
/// a bare number is bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let digits = digits.replace('_', "");
    if digits.is_empty() {
        return Err(format!(
            "{text:?} is not a size: expected a number with a unit, like \"64MiB\""
        ));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size: the number is too large"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "{text:?} is not a size: unknown unit {other:?} (use B, KiB, MiB, GiB, KB, MB or GB)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{text:?} is not a size: it overflows 64 bits"))
}

/// Parses a duration such as `500ms`, `2s`, `1m 30s` or `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!(
            "{text:?} is not a duration ({e}): use a number with a unit, like \"500ms\" or \"2s\""
        )
    })
}

/// Formats a byte count with the largest binary unit that divides it.
pub fn format_size(bytes: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("512 KiB").unwrap(), 512 << 10);
        assert_eq!(parse_size("1_000").unwrap(), 1000);
        assert_eq!(parse_size("2MB").unwrap(), 2_000_000);
        assert!(parse_size("64 megs").unwrap_err().contains("unknown unit"));
        assert!(parse_size("MiB").unwrap_err().contains("expected a number"));
        assert!(
            parse_size("99999999999TiB")
                .unwrap_err()
                .contains("overflows")
        );
        assert_eq!(format_size(64 << 20), "64MiB");
        assert_eq!(format_size(1000), "1000B");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m 30s").unwrap(), Duration::from_secs(90));
        assert!(
            parse_duration("fast")
                .unwrap_err()
                .contains("not a duration")
        );
    }
}
