//! The request heads both head benches parse: an upload as `upgate upload` or curl sends it,
//! a curl download, and a 40-field browser head.

/// A typical upload head, as `upgate upload` or curl sends it (~400 bytes).
pub const UPLOAD: &[u8] = b"POST /app1/path/file.bin HTTP/1.1\r\n\
Host: upload.example.com\r\n\
User-Agent: curl/8.5.0\r\n\
Accept: */*\r\n\
Expect: 100-continue\r\n\
appid: app1\r\n\
callback_url_pre: http://app1.example.com/callbacks/callback_url_pre?token=abcdef0123\r\n\
callback_url_post: http://app1.example.com/callbacks/callback_url_post?token=abcdef0123\r\n\
Content-Length: 1048576\r\n\
Content-Type: application/octet-stream\r\n\r\n";

/// A download as curl sends it.
pub const CURL_GET: &[u8] = b"GET /app1/path/file.bin HTTP/1.1\r\n\
Host: upload.example.com\r\n\
User-Agent: curl/8.5.0\r\n\
Accept: */*\r\n\r\n";

/// A browser-like head with 40 fields (~1.8 KB).
pub fn browser_head() -> Vec<u8> {
    let mut h = b"GET /app1/static/images/photo-2024-01-01.jpg?size=large&v=3 HTTP/1.1\r\n\
Host: upload.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.9,fr;q=0.8\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Connection: keep-alive\r\n\
Referer: https://app1.example.com/gallery/2024/01\r\n\
Cookie: session=0123456789abcdef0123456789abcdef; theme=dark; consent=yes\r\n\
Cache-Control: max-age=0\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-User: ?1\r\n\
Sec-Ch-Ua: \"Chromium\";v=\"120\", \"Not?A_Brand\";v=\"24\"\r\n\
Sec-Ch-Ua-Mobile: ?0\r\n\
Sec-Ch-Ua-Platform: \"Linux\"\r\n\
If-None-Match: \"5f3c-1a2b3c4d\"\r\n\
If-Modified-Since: Mon, 01 Jan 2024 00:00:00 GMT\r\n\
DNT: 1\r\n"
        .to_vec();
    for i in 0..20 {
        h.extend_from_slice(
            format!("X-Trace-{i:02}: value-{i:02}-0123456789abcdef\r\n").as_bytes(),
        );
    }
    h.extend_from_slice(b"\r\n");
    h
}
