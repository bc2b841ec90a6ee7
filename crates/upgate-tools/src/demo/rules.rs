//! The demo application's acceptance rules for the pre-upload callback: its own appid, a size
//! limit and an extension allow-list. Pure: the first file info in, a decision out.

use upgate_contract::FirstInfo;

/// What the application accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// Largest file, in bytes (`--max-size`); `None`: any size.
    pub max_size: Option<u64>,
    /// Allowed extensions, lower case without the dot (`--allow-ext`); empty: any.
    pub allow_ext: Vec<String>,
}

impl Rules {
    /// `Ok` to accept, `Err(reason)` to veto; the reason reaches the uploading client. A body
    /// of unknown size (chunked, or a browser's form) is accepted: the accepting answer carries
    /// [`Rules::max_size`] as `max_bytes`, which the node enforces while the body streams.
    pub fn decide(&self, appid: &str, info: &FirstInfo) -> Result<(), String> {
        if info.appid != appid {
            return Err(format!(
                "this application is {appid:?}, not {:?}",
                info.appid
            ));
        }
        if !self.allow_ext.is_empty() {
            let ext = extension(&info.filename);
            if !self
                .allow_ext
                .iter()
                .any(|a| Some(a.as_str()) == ext.as_deref())
            {
                let shown = ext.map_or_else(|| "no extension".to_string(), |e| format!(".{e}"));
                return Err(format!(
                    "file type {shown} is not allowed (allowed: {})",
                    self.allow_ext.join(", ")
                ));
            }
        }
        if let (Some(max), Some(size)) = (self.max_size, info.size) {
            if size > max {
                return Err(format!(
                    "file is {size} bytes; this application accepts at most {max}"
                ));
            }
        }
        Ok(())
    }
}

/// The lower-case extension of a file name, without the dot.
fn extension(filename: &str) -> Option<String> {
    let (stem, ext) = filename.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

/// `--allow-ext jpg,.PNG, txt` → `["jpg", "png", "txt"]`.
pub fn parse_ext_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|e| e.trim().trim_start_matches('.').to_ascii_lowercase())
        .filter(|e| !e.is_empty())
        .collect()
}

/// `--max-size 10M` → 10485760 (the one size syntax of the contract crate).
pub use upgate_contract::parse_size;

#[cfg(test)]
mod tests {
    use super::*;

    fn info(filename: &str, size: Option<u64>) -> FirstInfo {
        FirstInfo {
            appid: "demo".into(),
            filename: filename.into(),
            path: format!("dir/{filename}"),
            size,
            content_type: "application/octet-stream".into(),
            upload_id: "u1".into(),
            client_ip: "127.0.0.1".into(),
            request: None,
            offset: None,
            length: None,
            node_id: None,
        }
    }

    #[test]
    fn decisions() {
        let rules = Rules {
            max_size: Some(100),
            allow_ext: parse_ext_list("jpg, .PNG,txt,"),
        };
        assert_eq!(rules.allow_ext, ["jpg", "png", "txt"]);
        let cases: &[(&str, Option<u64>, Option<&str>)] = &[
            ("a.jpg", Some(100), None),
            ("A.PNG", Some(0), None),
            ("a.exe", Some(1), Some("file type .exe is not allowed")),
            (
                "README",
                Some(1),
                Some("file type no extension is not allowed"),
            ),
            (".txt", Some(1), Some("no extension")),
            ("a.txt", Some(101), Some("file is 101 bytes")),
            ("a.txt", None, None),
        ];
        for (name, size, want) in cases {
            let got = rules.decide("demo", &info(name, *size));
            match want {
                None => assert_eq!(got, Ok(()), "{name}"),
                Some(w) => {
                    let reason = got.expect_err(name);
                    assert!(reason.contains(w), "{name}: {reason}");
                }
            }
        }
        let open = Rules::default();
        assert_eq!(open.decide("demo", &info("x", None)), Ok(()));
        assert!(open
            .decide("other", &info("a.jpg", Some(1)))
            .unwrap_err()
            .contains("not \"demo\""));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("10m"), Ok(10 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("3MB"), Ok(3 << 20));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}
