//! Sizes as people write them, the same everywhere a size is read (config keys, registration
//! fields, the tools' flags): a whole number of bytes, or one followed by `K`, `M`, `G` or `T`
//! (binary multiples; `KB`, `KiB`, `k` mean the same).

/// `1048576`, `512K`, `10M`, `2GiB`, `1T` → bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let mult: Option<u64> = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => Some(1),
        "k" | "kb" | "kib" => Some(1 << 10),
        "m" | "mb" | "mib" => Some(1 << 20),
        "g" | "gb" | "gib" => Some(1 << 30),
        "t" | "tb" | "tib" => Some(1 << 40),
        _ => None,
    };
    digits
        .parse::<u64>()
        .ok()
        .zip(mult)
        .and_then(|(n, m)| n.checked_mul(m))
        .ok_or_else(|| format!("{s:?} is not a size (e.g. 1048576, 512K, 10M, 2G)"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_with_and_without_suffixes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("64KB"), Ok(65536));
        assert_eq!(parse_size("10G"), Ok(10 << 30));
        assert_eq!(parse_size(" 1GiB "), Ok(1 << 30));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
        for bad in ["", "G", "1x", "-1", "1.5G", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
