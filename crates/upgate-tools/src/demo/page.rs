//! The demo application's two views of what it received: an HTML page for people (it reloads
//! itself every few seconds) and `/uploads.json` for scripts.

use std::fmt::Write as _;

use serde_json::json;

use super::state::Upload;

/// Seconds between the page's reloads.
pub const REFRESH_SECS: u32 = 2;

/// `{"appid":…,"uploads":[…]}`, pretty-printed (people read it too).
pub fn uploads_json(appid: &str, uploads: &[Upload]) -> String {
    let doc = json!({ "appid": appid, "uploads": uploads });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

/// The page at `/`.
pub fn html(appid: &str, uploads: &[Upload], verifying: bool) -> String {
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
<meta http-equiv="refresh" content="{REFRESH_SECS}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{appid} uploads · upgate demo app</title>
<style>
body {{ font: 15px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; padding: 0 1rem; }}
h1 {{ font-size: 1.5rem; margin-bottom: .2rem; }}
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
footer {{ color: #888; font-size: .85em; margin-top: 1rem; }}
</style>
</head>
<body>
<h1>Uploads received by <code>{appid}</code></h1>
<p class="sub">{count} stored on the upload node; {trust}.</p>
<table id="uploads">
<thead><tr><th>#</th><th>file (download link on the node)</th><th>size</th><th>type</th><th>received (UTC)</th></tr></thead>
<tbody>
{rows}</tbody>
</table>
<footer>upgate demo app · reloads every {REFRESH_SECS} s · <a href="/uploads.json">uploads.json</a></footer>
</body>
</html>
"#,
        appid = escape(appid),
        count = match uploads.len() {
            1 => "1 file".to_string(),
            n => format!("{n} files"),
        },
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
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use upgate_contract::{SecondInfo, SuccessTrue};

    fn upload(name: &str) -> Upload {
        Upload {
            info: SecondInfo {
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

    #[test]
    fn the_page_lists_and_links_each_upload_escaped() {
        let page = html("demo", &[upload("a<b>.txt")], true);
        assert!(page.contains(
            r#"<a class="file" href="http://node/demo/d/a&lt;b&gt;.txt">a&lt;b&gt;.txt</a>"#
        ));
        assert!(page.contains("1.5 KiB"));
        assert!(page.contains("1970-01-01 00:00:00"));
        assert!(page.contains(r#"http-equiv="refresh""#));
        assert!(!page.contains("<b>"));
        assert!(html("demo", &[], false).contains("No uploads yet"));
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
