//! The demo application's views: an HTML page for people, which uploads files from the
//! browser straight to the node (a `multipart/form-data` form enhanced by `page.js`: progress
//! bars, drag and drop) and lists what the app was told about, refreshing that list every few
//! seconds; `/rows`, the list alone, for that refresh; `/uploads.json` for scripts.

use std::fmt::Write as _;

use serde_json::json;

use super::browser::{FormTarget, TargetError, KEY_PREFIX, TOKEN_TTL_SECS};
use super::state::Upload;

/// Seconds between the page's refreshes of its list.
pub const REFRESH_SECS: u32 = 2;

/// The uploader, run by the page.
const SCRIPT: &str = include_str!("page.js");

/// `{"appid":…,"uploads":[…]}`, pretty-printed (people read it too).
pub fn uploads_json(appid: &str, uploads: &[Upload]) -> String {
    let doc = json!({ "appid": appid, "uploads": uploads });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

/// The uploads table's rows, newest first (the body of `GET /rows`).
pub fn rows(uploads: &[Upload]) -> String {
    let mut rows = String::new();
    for (i, u) in uploads.iter().enumerate().rev() {
        let _ = writeln!(
            rows,
            "<tr><td class=\"n\">{}</td><td><a class=\"file\" href=\"{}\">{}</a>\
             <div class=\"path\">{}</div></td><td class=\"num\">{}</td><td>{}</td>\
             <td class=\"time\">{}</td></tr>",
            i + 1,
            escape(&u.info.url),
            escape(&u.info.filename),
            escape(&u.info.path),
            human_size(u.info.size),
            escape(&u.info.content_type),
            utc(u.received_at),
        );
    }
    if uploads.is_empty() {
        rows.push_str(
            "<tr><td colspan=\"5\" class=\"empty\">No uploads yet. Upload a file to the node \
             and it appears here.</td></tr>\n",
        );
    }
    rows
}

/// The upload form: posts to the node with the fields of `form` (a token signed when the page
/// was made), the file last; or why browser uploads are off.
fn upload_section(form: &Result<FormTarget, TargetError>) -> String {
    let form = match form {
        Ok(form) => form,
        Err(why) => {
            return format!(
                "<p class=\"off\" id=\"upload-off\">Browser uploads are off: {}.</p>\n",
                escape(&why.to_string())
            )
        }
    };
    format!(
        r#"<form id="upload-form" method="post" enctype="multipart/form-data" action="{url}">
<input type="hidden" name="key" value="{key}">
<input type="hidden" name="token" value="{token}">
<div id="drop" class="drop">Drop files here, or <input id="file" type="file" name="file"></div>
<button type="submit">Upload</button>
<button type="button" id="sample" hidden>Send a sample file</button>
</form>
<p class="sub">Files go from this browser straight to the node: <code>POST {url}</code>
(<code>multipart/form-data</code>: <code>key</code>, <code>token</code>, then the file), under
<code>{prefix}</code>, with an upload token this app signs (valid {minutes} min). The node still
asks this app before it stores anything.</p>
<ol id="results"></ol>
"#,
        url = escape(&form.url),
        key = escape(&form.fields.key),
        token = escape(&form.fields.token),
        prefix = escape(KEY_PREFIX),
        minutes = TOKEN_TTL_SECS / 60,
    )
}

/// The page at `/`.
pub fn html(
    appid: &str,
    uploads: &[Upload],
    verifying: bool,
    form: &Result<FormTarget, TargetError>,
) -> String {
    let trust = if verifying {
        "every callback is verified (HMAC-SHA256, Standard Webhooks)"
    } else {
        "no secret: every callback is refused until the app is registered"
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{appid} uploads · upgate demo app</title>
<style>
body {{ font: 15px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; padding: 0 1rem; }}
h1 {{ font-size: 1.5rem; margin-bottom: .2rem; }}
h2 {{ font-size: 1.1rem; margin: 1.5rem 0 .4rem; }}
.sub {{ color: #666; margin-top: 0; }}
table {{ border-collapse: collapse; width: 100%; margin-top: 1rem; }}
th, td {{ text-align: left; padding: .45rem .6rem; border-bottom: 1px solid #ddd; vertical-align: top; }}
th {{ background: #f4f4f6; font-weight: 600; }}
td.num {{ text-align: right; white-space: nowrap; }}
td.n {{ color: #999; }}
td.time {{ white-space: nowrap; }}
.path {{ color: #888; font-size: .85em; }}
.empty {{ color: #888; text-align: center; padding: 2rem; }}
a.file {{ font-weight: 600; }}
.drop {{ border: 2px dashed #bbb; border-radius: .5rem; padding: 1.2rem; text-align: center; color: #555; margin-bottom: .6rem; }}
.drop.over {{ border-color: #36c; background: #eef3ff; }}
#results {{ padding-left: 1.2rem; }}
#results li {{ margin: .3rem 0; }}
#results .name {{ font-weight: 600; }}
#results progress {{ width: 12rem; vertical-align: middle; }}
#results li.done .state {{ color: #262; }}
#results li.failed .state {{ color: #a22; }}
.off {{ color: #a22; }}
footer {{ color: #888; font-size: .85em; margin-top: 1rem; }}
</style>
</head>
<body>
<h1>Uploads received by <code>{appid}</code></h1>
<p class="sub"><span id="count">{count}</span> stored on the upload node; {trust}.</p>
<h2>Upload</h2>
{upload}<h2>Received</h2>
<table id="uploads">
<thead><tr><th>#</th><th>file (download link on the node)</th><th>size</th><th>type</th><th>received (UTC)</th></tr></thead>
<tbody>
{rows}</tbody>
</table>
<footer>upgate demo app · the list refreshes every {REFRESH_SECS} s · <a href="/uploads.json">uploads.json</a></footer>
<script>
{SCRIPT}</script>
</body>
</html>
"#,
        appid = escape(appid),
        count = match uploads.len() {
            1 => "1 file".to_string(),
            n => format!("{n} files"),
        },
        upload = upload_section(form),
        rows = rows(uploads),
    )
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `1536` → `1.5 KiB`.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Unix seconds → `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn utc(secs: u64) -> String {
    let t = upgate_http::UtcTime::from_unix(secs);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::browser::Browser;
    use upgate_contract::{SecondInfo, SuccessTrue};

    fn upload(name: &str) -> Upload {
        Upload {
            info: SecondInfo {
                event: Default::default(),
                node_id: None,
                appid: "demo".into(),
                filename: name.into(),
                path: format!("d/{name}"),
                size: 1536,
                content_type: "text/plain".into(),
                upload_id: "u1".into(),
                success: SuccessTrue,
                url: format!("http://node/demo/d/{name}"),
                sha256: None,
                metadata: None,
            },
            webhook_id: "evt".into(),
            received_at: 0,
            deliveries: 1,
        }
    }

    fn form() -> Result<FormTarget, TargetError> {
        let browser = Browser {
            node_url: Some("http://node:1".into()),
            origins: vec![],
        };
        browser.target("demo", Some("whsec_AAAA"), None, None, 0)
    }

    #[test]
    fn the_page_lists_and_links_each_upload_escaped() {
        let page = html("demo", &[upload("a<b>.txt")], true, &form());
        assert!(page.contains(
            r#"<a class="file" href="http://node/demo/d/a&lt;b&gt;.txt">a&lt;b&gt;.txt</a>"#
        ));
        assert!(page.contains("1.5 KiB"));
        assert!(page.contains("1970-01-01 00:00:00"));
        assert!(!page.contains("<b>"));
        assert!(html("demo", &[], false, &form()).contains("No uploads yet"));
    }

    #[test]
    fn the_form_posts_key_and_token_then_the_file_to_the_node() {
        let page = html("demo", &[], true, &form());
        let token = form().unwrap().fields.token;
        let action = r#"<form id="upload-form" method="post" enctype="multipart/form-data" action="http://node:1/upload/form/demo">"#;
        let key = r#"<input type="hidden" name="key" value="uploads/${filename}">"#;
        let tok = format!(r#"<input type="hidden" name="token" value="{token}">"#);
        let file = r#"<input id="file" type="file" name="file">"#;
        let at = |s: &str| {
            page.find(s)
                .unwrap_or_else(|| panic!("{s} not on the page"))
        };
        assert!(at(action) < at(key) && at(key) < at(&tok) && at(&tok) < at(file));
        assert!(page.contains("xhr.upload.onprogress"));
        assert!(
            !SCRIPT.contains("</script"),
            "the inline script cannot end early"
        );
        let off = html("demo", &[], true, &Err(TargetError::NoNode));
        assert!(off.contains(
            r#"<p class="off" id="upload-off">Browser uploads are off: the app knows no node URL"#
        ));
        assert!(!off.contains("<form"));
    }

    #[test]
    fn json_has_appid_and_the_notification_fields() {
        let doc: serde_json::Value =
            serde_json::from_str(&uploads_json("demo", &[upload("a.txt")])).unwrap();
        assert_eq!(doc["appid"], "demo");
        let u = &doc["uploads"][0];
        assert_eq!(u["filename"], "a.txt");
        assert_eq!(u["success"], "true");
        assert_eq!(u["url"], "http://node/demo/d/a.txt");
        assert_eq!(u["webhook_id"], "evt");
        assert!(u.get("sha256").is_none());
    }

    #[test]
    fn dates_and_sizes() {
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20");
        assert_eq!(human_size(5), "5 B");
        assert_eq!(human_size(3 << 20), "3.0 MiB");
    }
}
