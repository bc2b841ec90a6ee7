//! Safe serving: what keeps a stored upload from running script in the node's origin when a
//! browser opens its URL.
//!
//! - Every download answer carries `X-Content-Type-Options: nosniff` ([`NOSNIFF`]): a browser
//!   renders the type the node names, never one it guesses from the bytes.
//! - A type that can run script ([`runs_script`]) is served with
//!   `Content-Disposition: attachment` (with the file's name, RFC 6266) and
//!   `Content-Security-Policy: sandbox`, unless the app listed it in its `inline_types`
//!   ([`SafeServing`]). Types compare by media type only: case-insensitive, parameters
//!   ignored.

use std::fmt::Write;

use crate::storage::mime;

/// The header every download answer carries.
pub const NOSNIFF: (&str, &str) = ("X-Content-Type-Options", "nosniff");

/// Media types a browser runs script from when it opens them: the contract's list, and the
/// other JavaScript MIME types of the WHATWG MIME Sniffing standard (`application/javascript`,
/// `text/ecmascript`, …) and `text/xsl`, which browsers treat as their twins.
const SCRIPT_CAPABLE: &[&str] = &[
    "text/html",
    "application/xhtml+xml",
    "image/svg+xml",
    "text/xml",
    "application/xml",
    "text/xsl",
    "text/javascript",
    "application/javascript",
    "application/ecmascript",
    "application/x-ecmascript",
    "application/x-javascript",
    "text/ecmascript",
    "text/javascript1.0",
    "text/javascript1.1",
    "text/javascript1.2",
    "text/javascript1.3",
    "text/javascript1.4",
    "text/javascript1.5",
    "text/jscript",
    "text/livescript",
    "text/x-ecmascript",
    "text/x-javascript",
];

/// Whether a browser may run script from a response of `content_type`: one of
/// [`SCRIPT_CAPABLE`], or any `+xml` type (browsers render every `*/*+xml` as an XML document,
/// in which XHTML-namespace `<script>` runs).
pub fn runs_script(content_type: &str) -> bool {
    let essence = mime::essence(content_type);
    SCRIPT_CAPABLE.contains(&essence.as_str()) || essence.ends_with("+xml")
}

/// How one app's downloads are served: the script-capable types it lets open inline (its
/// registration's `inline_types`).
#[derive(Clone, Copy)]
pub struct SafeServing<'a> {
    inline_types: InlineTypes<'a>,
}

/// Where the app's `inline_types` come from.
#[derive(Clone, Copy)]
enum InlineTypes<'a> {
    Known(&'a [String]),
    /// Looked up only for a script-capable type: most downloads never need the registration.
    Lookup(&'a dyn Fn() -> Vec<String>),
}

impl std::fmt::Debug for SafeServing<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafeServing").finish_non_exhaustive()
    }
}

impl SafeServing<'static> {
    /// No type runs inline: every script-capable type is an attachment.
    pub const STRICT: SafeServing<'static> = SafeServing {
        inline_types: InlineTypes::Known(&[]),
    };
}

impl<'a> SafeServing<'a> {
    /// Serving that lets `inline_types` (media types; case and parameters do not matter) open
    /// inline although they can run script.
    pub fn new(inline_types: &'a [String]) -> Self {
        SafeServing {
            inline_types: InlineTypes::Known(inline_types),
        }
    }

    /// [`SafeServing::new`] with the types read from `lookup` (the app's registration) when a
    /// download's type can run script, and only then.
    pub fn lookup(lookup: &'a dyn Fn() -> Vec<String>) -> Self {
        SafeServing {
            inline_types: InlineTypes::Lookup(lookup),
        }
    }

    /// Whether `content_type` is served as an attachment in a sandbox.
    pub fn confines(&self, content_type: &str) -> bool {
        if !runs_script(content_type) {
            return false;
        }
        let essence = mime::essence(content_type);
        let listed = |types: &[String]| types.iter().any(|t| mime::essence(t) == essence);
        match self.inline_types {
            InlineTypes::Known(types) => !listed(types),
            InlineTypes::Lookup(lookup) => !listed(&lookup()),
        }
    }

    /// The fields a download of `filename`, served as `content_type`, carries besides
    /// [`NOSNIFF`]: none for a type that opens inline, else `Content-Disposition: attachment`
    /// and `Content-Security-Policy: sandbox`.
    pub fn headers(&self, content_type: &str, filename: &str) -> Vec<(&'static str, String)> {
        if !self.confines(content_type) {
            return Vec::new();
        }
        vec![
            ("Content-Disposition", attachment(filename)),
            ("Content-Security-Policy", "sandbox".to_string()),
        ]
    }
}

/// `attachment; filename="…"; filename*=UTF-8''…` (RFC 6266 §4.3 with RFC 8187): the quoted
/// name is an ASCII stand-in (anything but printable ASCII, and `"`, `\` and `%`, become `_`;
/// RFC 6266 Appendix D warns that some readers unescape `%` there), the extended one is the
/// whole UTF-8 name, percent-encoded outside RFC 8187's `attr-char`. No byte of the name can
/// reach the head unescaped.
pub fn attachment(filename: &str) -> String {
    let mut v = String::with_capacity(32 + filename.len() * 4);
    v.push_str("attachment; filename=\"");
    v.extend(filename.chars().map(|c| match c {
        '"' | '\\' | '%' => '_',
        ' '..='~' => c,
        _ => '_',
    }));
    v.push_str("\"; filename*=UTF-8''");
    for b in filename.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            v.push(char::from(b));
        } else {
            let _ = write!(v, "%{b:02X}");
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_capable_types_by_media_type_only() {
        let capable = [
            "text/html",
            "TEXT/HTML; charset=utf-8",
            " text/html ;charset=x",
            "application/xhtml+xml",
            "image/svg+xml",
            "Image/SVG+XML; q=1",
            "text/xml",
            "application/xml",
            "text/javascript",
            "application/javascript; charset=utf-8",
            "application/ecmascript",
            "text/ecmascript",
            "application/rss+xml",
        ];
        for ct in capable {
            assert!(runs_script(ct), "{ct}");
        }
        let inert = [
            "image/png",
            "text/plain; charset=utf-8",
            "application/json",
            "application/octet-stream",
            "text/css",
            "text/htmlx",
            "application/xml-dtd",
            "text/plain; note=text/html",
        ];
        for ct in inert {
            assert!(!runs_script(ct), "{ct}");
        }
    }

    #[test]
    fn script_capable_types_are_attachments_in_a_sandbox() {
        let h = SafeServing::STRICT.headers("text/html; charset=utf-8", "x.html");
        assert_eq!(
            h,
            vec![
                (
                    "Content-Disposition",
                    "attachment; filename=\"x.html\"; filename*=UTF-8''x.html".to_string()
                ),
                ("Content-Security-Policy", "sandbox".to_string()),
            ]
        );
        assert!(SafeServing::STRICT.headers("image/png", "x.png").is_empty());
    }

    #[test]
    fn inline_types_compare_by_media_type() {
        let inline = vec![
            "Image/SVG+XML; charset=utf-8".to_string(),
            "text/xml".into(),
        ];
        let serving = SafeServing::new(&inline);
        assert!(!serving.confines("image/svg+xml"));
        assert!(!serving.confines("TEXT/XML;charset=utf-8"));
        assert!(serving.confines("text/html"), "only the listed types");
        assert!(serving.headers("image/svg+xml", "a.svg").is_empty());
    }

    #[test]
    fn file_names_are_escaped_in_both_forms() {
        let cases = [
            (
                "report 2024.html",
                "attachment; filename=\"report 2024.html\"; filename*=UTF-8''report%202024.html",
            ),
            (
                "a\"b\\c%41;d.svg",
                "attachment; filename=\"a_b_c_41;d.svg\"; filename*=UTF-8''a%22b%5Cc%2541%3Bd.svg",
            ),
            (
                "résumé.html",
                "attachment; filename=\"r_sum_.html\"; filename*=UTF-8''r%C3%A9sum%C3%A9.html",
            ),
            (
                "x\r\ny.html",
                "attachment; filename=\"x__y.html\"; filename*=UTF-8''x%0D%0Ay.html",
            ),
        ];
        for (name, want) in cases {
            let got = attachment(name);
            assert_eq!(got, want, "{name:?}");
            assert!(got.bytes().all(|b| (0x20..0x7f).contains(&b)), "{got:?}");
        }
    }
}
