#!/usr/bin/env python3
"""Writes the checked-in fuzz seeds: fuzz/seeds/<target>/<name>.

Run from anywhere: python3 fuzz/seeds/generate.py. The files are replayed by
tests/fuzz_corpus.rs and passed to `cargo fuzz run <target> corpus/<target> seeds/<target>`.
h1_conn seeds start with the split prefix read by `check::splits_from_prefix`: one byte giving
the number of split points (low 4 bits), then two little-endian bytes per point.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

UPLOAD_HEAD = (
    b"POST /app1/path/file.bin HTTP/1.1\r\n"
    b"Host: upload.example.com\r\n"
    b"User-Agent: curl/8.5.0\r\n"
    b"Accept: */*\r\n"
    b"Expect: 100-continue\r\n"
    b"appid: app1\r\n"
    b"callback_url_pre: http://app1.example.com/callback_url_pre\r\n"
    b"callback_url_post: http://app1.example.com/callback_url_post\r\n"
    b"Content-Length: 11\r\n"
    b"Content-Type: application/octet-stream\r\n\r\n"
)
CHUNKED_HEAD = (
    b"PUT /app1/dir/movie.mp4 HTTP/1.1\r\n"
    b"Host: upload.example.com\r\n"
    b"Expect: 100-continue\r\n"
    b"appid: app1\r\n"
    b"callback_url_post: https://app1.example.com/done?x=1\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
CHUNKED_BODY = (
    b"5;name=value\r\nhello\r\n"
    b"6 ; q=\"quoted; str\"\r\n world\r\n"
    b"000A\r\n0123456789\r\n"
    b"0\r\nX-Checksum: sha256=abc\r\nX-Other: 1\r\n\r\n"
)
GET = b"GET /app1/path/file.bin HTTP/1.1\r\nHost: upload.example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n"

HEAD = {
    "upload_post_cl": UPLOAD_HEAD,
    "upload_put_chunked": CHUNKED_HEAD,
    "get_curl": GET,
    "http10_keepalive": b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "absolute_form": b"GET http://upload.example.com/app1/x?y=1 HTTP/1.1\r\nHost: upload.example.com\r\n\r\n",
    "options_star": b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    "cl_and_te": b"POST /app1/x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    "bare_lf": b"GET / HTTP/1.1\nHost: h\r\n\r\n",
    "obs_fold": b"GET / HTTP/1.1\r\nHost: h\r\nX-Long: a\r\n  continued\r\n\r\n",
    "cl_conflict": b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n",
    "cl_list_same": b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n",
    "cl_overflow": b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551616\r\n\r\n",
    "two_hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "missing_host": b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n",
    "http2_version": b"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
    "te_gzip": b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
    "te_gzip_chunked": b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    "te_chunked_twice": b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
    "te_http10": b"POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    "long_target": b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: h\r\n\r\n",
    "nul_in_value": b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n",
    "space_before_colon": b"GET / HTTP/1.1\r\nHost : h\r\n\r\n",
    "partial": b"POST /app1/x HTTP/1.1\r\nHost: h\r\nContent-Len",
    "expect_other": b"POST /a HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\n",
    "bad_method": b"G@T / HTTP/1.1\r\nHost: h\r\n\r\n",
    "many_headers": b"GET / HTTP/1.1\r\nHost: h\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(12)) + b"\r\n",
    "connection_close": b"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, close\r\n\r\n",
}

CHUNKED = {
    "simple": b"5\r\nhello\r\n0\r\n\r\n",
    "extensions": b"5;name=value\r\nhello\r\n3 ; q=\"x;y\"\t;z\r\nabc\r\n0;last\r\n\r\n",
    "trailers": b"3\r\nabc\r\n0\r\nX-Checksum: sha256=abc\r\nX-Other:\t1\r\n\r\n",
    "hex_case_zeros": b"000A\r\n0123456789\r\na\r\n0123456789\r\n0000\r\n\r\n",
    "then_next_request": CHUNKED_BODY + GET,
    "empty_body": b"0\r\n\r\n",
    "size_overflow": b"FFFFFFFFFFFFFFFFF\r\nx\r\n0\r\n\r\n",
    "size_max_u64": b"FFFFFFFFFFFFFFFF\r\nabc",
    "bare_lf_size": b"5\nhello\r\n0\r\n\r\n",
    "bare_lf_trailer": b"0\r\nX: y\n\r\n",
    "no_crlf_after_data": b"5\r\nhelloX0\r\n\r\n",
    "no_digits": b";ext\r\nabc\r\n",
    "space_no_ext": b"5 \r\nhello\r\n0\r\n\r\n",
    "long_extension": b"1;" + b"e" * 60 + b"\r\nx\r\n0\r\n\r\n",
    "control_in_ext": b"1;a=\x01\r\nx\r\n0\r\n\r\n",
    "bad_trailer": b"0\r\nbad trailer\r\n\r\n",
    "large_trailers": b"0\r\n" + b"".join(b"X-T%d: %s\r\n" % (i, b"v" * 20) for i in range(4)) + b"\r\n",
    "incomplete": b"10\r\nabc",
    "negative": b"-5\r\nhello\r\n0\r\n\r\n",
}


def h1(data, splits=()):
    return bytes([len(splits)]) + b"".join(struct.pack("<H", s) for s in splits) + data


UPLOAD = UPLOAD_HEAD + b"hello world"
H1_CONN = {
    "upload_cl": h1(UPLOAD),
    "upload_cl_split": h1(UPLOAD, (1, 40, len(UPLOAD_HEAD) - 1, len(UPLOAD_HEAD) + 3)),
    "upload_chunked": h1(CHUNKED_HEAD + CHUNKED_BODY, (len(CHUNKED_HEAD) + 2, len(CHUNKED_HEAD) + 20)),
    "pipelined_get_post_get": h1(GET + UPLOAD + GET, (len(GET) + 5,)),
    "pipelined_close_in_middle": h1(GET.replace(b"Accept", b"Connection: close\r\nAccept") + GET),
    "pipelined_chunked_then_get": h1(CHUNKED_HEAD + CHUNKED_BODY + GET),
    "http10_keepalive_twice": h1(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" * 2 + b"GET /b HTTP/1.0\r\n\r\n"),
    "blank_lines_first": h1(b"\r\n\r\n" + GET, (1, 3)),
    "cl_and_te": h1(HEAD["cl_and_te"] + b"5\r\nhello\r\n0\r\n\r\n"),
    "bare_lf": h1(HEAD["bare_lf"]),
    "obs_fold": h1(HEAD["obs_fold"]),
    "chunk_size_overflow": h1(CHUNKED_HEAD + b"FFFFFFFFFFFFFFFFF\r\nx\r\n0\r\n\r\n"),
    "incomplete_body": h1(UPLOAD[:-3]),
    "incomplete_head": h1(UPLOAD_HEAD[:50]),
    "expect_empty_body": h1(b"POST /app1/x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n" + GET),
    "head_over_tight_limit": h1(b"GET / HTTP/1.1\r\nHost: h\r\n" + b"X-Pad: " + b"p" * 300 + b"\r\n\r\n"),
    "too_many_headers": h1(HEAD["many_headers"]),
    "smuggle_te_space": h1(b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\nabc" + GET),
    "request_after_error": h1(HEAD["two_hosts"] + GET),
    # Found by fuzzing: a target that is not origin-form and a bare LF further down must be
    # named BadLineEnding however the bytes are split.
    "bare_lf_after_bad_target": bytes.fromhex("016800")
    + b"GET th/file.bin HTTP/1.1\r\nHost: upload.example.com\r\nUser-Agent: curn38.5.0\r\n"
    b"Accept:\n1ost: upload.exupload.e`xm\r\nUsecept: */*\r\n\r\n",
}

# Upload paths as the request-target's path (query removed): good ones and traversal shapes.
PATH = {
    "simple": b"/app1/file.bin",
    "nested": b"/app1/a/b/c/photo-2024.jpg",
    "escaped_space": b"/app1/my%20file.txt",
    "utf8": b"/app1/%E6%96%87%E4%BB%B6.txt",
    "dotdot": b"/app1/../etc/passwd",
    "dot": b"/app1/./x",
    "escaped_dotdot": b"/app1/%2e%2e/x",
    "escaped_slash": b"/app1/a%2fb",
    "backslash": b"/app1/a\\..\\b",
    "overlong_dot": b"/app1/%c0%ae%c0%ae/x",
    "nul": b"/app1/a%00b",
    "empty_segment": b"/app1//x",
    "appid_only": b"/app1",
    "long": b"/app1/" + b"a" * 1100,
    "long_segment": b"/app1/" + b"s" * 300,
    "bad_escape": b"/app1/%zz",
}

# Registration bodies: the first byte selects form (even) or JSON (odd), bit 1 an appid in the path.
FORM = {
    "form_full": b"\x00appid=app1&callback_url_pre=http%3A%2F%2F127.0.0.1%3A9000%2Fpre&callback_url_post=http%3A%2F%2F127.0.0.1%3A9000%2Fpost",
    "form_hosts": b"\x00appid=app1&callback_hosts=127.0.0.1%3A9000&callback_hosts=app.example.com",
    "form_path_appid": b"\x02callback_url_pre=http://a.example/pre",
    "form_mismatch": b"\x02appid=app2",
    "form_plus": b"\x00appid=my+app&max_body_bytes=1048576",
    "form_bad_percent": b"\x00appid=%zz",
    "form_bad_utf8": b"\x00appid=%ff",
    "form_repeated": b"\x00appid=a&appid=a",
    "form_unknown": b"\x00appid=a&colour=red",
    "form_empty_pairs": b"\x00&&appid=a&&",
    "form_rotate": b"\x02rotate_secret=true",
    "form_many": b"\x00" + b"&".join(b"f%d=v" % i for i in range(70)),
    "json_full": b'\x01{"appid":"app1","callback_url_pre":"http://127.0.0.1:9000/pre","callback_hosts":["127.0.0.1:9000"],"max_body_bytes":10}',
    "json_types": b'\x01{"appid":1,"rotate_secret":"yes"}',
    "json_nested": b'\x03{"callback_hosts":[["a"]],"x":{"y":[1,2,{}]}}',
    "json_file_url": b'\x01{"appid":"a","callback_url_pre":"file:///etc/passwd"}',
}

# Callback URLs: an optional app callback_hosts entry, a NUL, then the URL.
CALLBACK_URL = {
    "listed": b"http://127.0.0.1:8081/pre",
    "listed_name": b"https://app.example.com/cb",
    "other_port": b"http://127.0.0.1:8082/pre",
    "loopback_2": b"http://127.0.0.2:8081/",
    "decimal": b"http://2130706433:8081/",
    "decimal_2": b"http://2130706434:8081/",
    "octal": b"http://0177.0.0.2:8081/",
    "hex": b"http://0x7f.0.0.1:8081/",
    "mapped": b"http://[::ffff:127.0.0.2]:8081/",
    "link_local": b"http://169.254.169.254/latest/meta-data",
    "private": b"http://10.0.0.1/",
    "userinfo": b"http://user:pw@127.0.0.1:8081/",
    "userinfo_trick": b"http://127.0.0.1:8081@127.0.0.2/",
    "file": b"file:///etc/passwd",
    "gopher": b"gopher://127.0.0.1:8081/_x",
    "app_entry": b"10.1.2.3:9000\x00http://10.1.2.3:9000/cb",
    "app_entry_v6": b"[::1]:9000\x00http://[::1]:9000/cb",
    "app_entry_name": b"cb.example.org\x00http://CB.Example.ORG./x",
    "app_entry_other_port": b"10.1.2.3:9000\x00http://10.1.2.3:9001/cb",
    "trailing_dot": b"http://app.example.com./",
    # Found by fuzzing: host ".." against entry "." (one trailing dot ignored, so they match).
    "dot_names": b".\x00\x00\x00https:../........s;.........p://5ht!t",
}


# multipart/form-data bodies, with the h1_conn split prefix. The boundary is the body's first
# line without its `--` (check::boundary_in), else AaB03x.
def part(boundary, headers, data):
    return b"--" + boundary + b"\r\n" + headers + b"\r\n" + data + b"\r\n"


def form(boundary, *parts):
    return b"".join(parts) + b"--" + boundary + b"--\r\n"


CURL_B = b"------------------------V2ymHFg03ehbqgZCaKO6jy"
CHROME_B = b"----WebKitFormBoundaryePkpFF7tjBAqx29L"
CD = b"Content-Disposition: form-data; "
CURL_FORM = form(
    CURL_B,
    part(CURL_B, CD + b'name="key"\r\n', b"avatars/a.txt"),
    part(CURL_B, CD + b'name="file"; filename="a.txt"\r\nContent-Type: text/plain\r\n', b"hello\n"),
)
CHROME_FORM = form(
    CHROME_B,
    part(CHROME_B, CD + b'name="key"\r\n', b"avatars/${filename}"),
    part(CHROME_B, CD + b'name="file"; filename="photo.png"\r\nContent-Type: image/png\r\n',
         b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\r\n--\r\n-\x00\xff"),
)
A = b"AaB03x"
NEAR_MISSES = (b"x\r\n--AaB03xX\r\n--AaB03\r\n--AaB03x--z\n--AaB03x\r\n\r--AaB03x\r\n"
               b"\r\n--AaB03x\rX\r\n--AaB03x-\r\n--AaB03x \t y\r\n--aab03x\r\n")


def simple(headers, data=b"v"):
    return form(A, part(A, headers, data))


MULTIPART = {
    "curl_form": h1(CURL_FORM, (60, 61, 130)),
    "requests_form": h1(form(
        b"9d4e6ab0d8f04f1f8d1f3e1b8b3a5c21",
        part(b"9d4e6ab0d8f04f1f8d1f3e1b8b3a5c21", CD + b'name="key"\r\n', b"reports/${filename}"),
        part(b"9d4e6ab0d8f04f1f8d1f3e1b8b3a5c21",
             CD + b'name="file"; filename="report.csv"\r\nContent-Type: text/csv\r\n', b"a,b\r\n1,2\r\n"),
    )),
    "chrome_form": h1(CHROME_FORM, (len(CHROME_FORM) - 50, len(CHROME_FORM) - 45)),
    "browser_utf8_names": h1(simple(
        CD + 'name="caf\u00e9 %22x%22%0D%0A"; filename="r\u00e9sum\u00e9 \u6587\u4ef6 100%.pdf"\r\n'.encode()
        + b"Content-Type: application/pdf\r\n", b"%PDF-1.7")),
    "filename_star": h1(simple(
        CD + b"name=file; filename=\"fallback.txt\"; filename*=UTF-8''%E6%96%87%E4%BB%B6.txt\r\n")),
    "quoted_pair": h1(simple(CD + b'name="a\\"b"; filename="C:\\\\dir\\file.txt"\r\n')),
    "boundary_like_lines": h1(simple(CD + b'name="f"; filename="x"\r\n', NEAR_MISSES), (20, 75, 76, 77, 90, 91)),
    "crlf_at_end_of_data": h1(simple(CD + b'name="f"; filename="x"\r\n', b"line\r\n\r\n")),
    "padding_preamble_epilogue": h1(
        b"preamble\r\n--AaB03x \t\r\n" + CD + b"name=a\r\n\r\n1\r\n--AaB03x--  \r\nepilogue\r\n--AaB03x\r\n"),
    "content_type_line_first": h1(
        b"multipart/form-data; charset=utf-8; boundary=\"AaB03x\"\r\n\r\n--AaB03x\r\n" + CD
        + b"name=a\r\n\r\n1\r\n--AaB03x--"),
    "empty_form": h1(b"--AaB03x--\r\n"),
    "truncated": h1(simple(CD + b"name=a\r\n")[:-12]),
    "no_disposition": h1(simple(b"Content-Type: text/plain\r\n")),
    "not_form_data": h1(simple(b'Content-Disposition: attachment; name="a"\r\n')),
    "missing_name": h1(simple(CD + b'filename="a"\r\n')),
    "bare_lf_header": h1(simple(CD + b"name=a\nX: y\r\n")),
    "too_much_padding": h1(b"--AaB03x" + b" " * 33 + b"\r\n" + CD + b"name=a\r\n\r\n1\r\n--AaB03x--"),
    "headers_too_large": h1(simple(CD + b"name=a\r\nX-Pad: " + b"p" * 8200 + b"\r\n")),
    "too_many_parts": h1(form(A, *[part(A, CD + b"name=f%d\r\n" % i, b"%d" % i) for i in range(65)])),
    "preamble_too_large": h1(b"p" * 8193 + b"\r\n" + simple(CD + b"name=a\r\n")),
}

# Resumable-upload header values (tus 1.0, IETF draft), one field value each, as the tus
# protocol's examples and tus-js-client 4.3.1 write them, plus two refusals.
RESUMABLE_HEADERS = {
    "tus_resumable": b"1.0.0",
    "metadata_tus_example": b"filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential",
    "metadata_tus_js_client": b"filename bXkgZmlsZS50eHQ=,filetype dGV4dC9wbGFpbg==,relativePath bnVsbA==",
    "checksum_sha1": b"sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=",
    "checksum_sha256": b"sha256 uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=",
    "checksum_unknown_algorithm": b"crc32 DUoRhQ==",
    "concat_final": b"final;https://tus.example.org/files/a /files/b",
    "concat_partial": b"partial",
    "upload_offset": b"1230000000",
    "upload_offset_overflow": b"9223372036854775808",
    "upload_complete_true": b"?1",
    "upload_complete_params": b'?0;a=1;b="x";c=:YQ==:;d=tok/en;e=1.5',
    "interop_version_tus_js_client": b"6",
    "method_override": b"PATCH",
    "content_type_partial_upload": b"application/partial-upload",
    "defer_length": b"1",
}
# etcd 3.4 watch stream lines (`registry = "etcd"`): what the gateway writes, and near misses.
ETCD_WATCH = {
    "bad_base64": b'{"result":{"header":{"revision":"7"},"events":[{"kv":{"key":"***","mod_revision":"6"}}]}}',
    "bad_revision": b'{"result":{"header":{"revision":"seven"}}}',
    "canceled": b'{"result":{"header":{"revision":"3"},"canceled":true,"cancel_reason":"mvcc: required revision is a future revision"}}',
    "compacted": b'{"result":{"header":{"raft_term":"2"},"canceled":true,"compact_revision":"2"}}\n',
    "created": b'{"result":{"header":{"cluster_id":"1","member_id":"2","revision":"2","raft_term":"2"},"created":true}}\n',
    "delete": b'{"result":{"header":{"revision":"8"},"events":[{"type":"DELETE","kv":{"key":"L3VwZ2F0ZS9hcHBzL2E=","mod_revision":"8"}}]}}\n',
    "empty_object": b'{}',
    "error": b'{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}}',
    "huge_revision": b'{"result":{"header":{"revision":"99999999999999999999999"}}}',
    "negative": b'{"result":{"header":{"revision":"-5"},"events":[{"type":"DELETE","kv":{"key":"","mod_revision":"-1"}}]}}',
    "nested_garbage": b'{"result":{"events":{"kv":[1,2,3]},"created":"yes"}}',
    "not_json": b'HTTP/1.1 200 OK\r\n',
    "numbers_as_numbers": b'{"result":{"header":{"revision":12},"events":[{"kv":{"key":"YQ==","mod_revision":12,"value":"YQ=="}}]}}',
    "put": b'{"result":{"header":{"revision":"7"},"events":[{"kv":{"key":"L3VwZ2F0ZS9hcHBzL2E=","create_revision":"2","mod_revision":"6","version":"1","value":"e30="}}]}}\n',
    "put_and_delete": b'{"result":{"header":{"revision":"9"},"events":[{"kv":{"key":"YQ==","mod_revision":"9","value":""}},{"type":"DELETE","kv":{"key":"Yg==","mod_revision":"9"}}]}}',
    "unknown_type": b'{"result":{"header":{"revision":"4"},"events":[{"type":"EXPIRE","kv":{"key":"YQ==","mod_revision":"4","value":"eA=="}}]}}',
}
# What clients send to tls_listen: openssl s_client ClientHellos (TLS 1.3, 1.2, ALPN, SNI,
# P-256, an RSA key exchange the node refuses), whole and cut; plain HTTP, alerts, truncated
# and oversized records, an SSLv2 hello. Byte 0 picks the cut (check_tls_bytes).
TLS_BYTES = {
    "alert": b'\x03\x15\x03\x03\x00\x02\x02(',
    "application_data_first": b'\t\x17\x03\x03\x00\x10AAAAAAAAAAAAAAAA',
    "change_cipher_spec": b'\x01\x14\x03\x03\x00\x01\x01',
    "client_hello_alpn": b"\x00\x16\x03\x01\x016\x01\x00\x012\x03\x03\rS\x1fi\x80\x96\x1f\xf7#\xd8\xbd\x9b\xc3&\xcc\xca'\x9e\xdds?U)\xeb\xb21g\xfa\xe6^\xdc2 \xb0U\xbfn)0`D)\xa0n\xc8j]{\xb91\xdb{\xc8&\xa9\x95\xc8>\xb2\xb5smQ\xfct\x00>\x13\x02\x13\x03\x13\x01\xc0,\xc00\x00\x9f\xcc\xa9\xcc\xa8\xcc\xaa\xc0+\xc0/\x00\x9e\xc0$\xc0(\x00k\xc0#\xc0'\x00g\xc0\n\xc0\x14\x009\xc0\t\xc0\x13\x003\x00\x9d\x00\x9c\x00=\x00<\x005\x00/\x00\xff\x01\x00\x00\xab\x00\x0b\x00\x04\x03\x00\x01\x02\x00\n\x00\x16\x00\x14\x00\x1d\x00\x17\x00\x1e\x00\x19\x00\x18\x01\x00\x01\x01\x01\x02\x01\x03\x01\x04\x00#\x00\x00\x00\x10\x00\x0e\x00\x0c\x02h2\x08http/1.1\x00\x16\x00\x00\x00\x17\x00\x00\x00\r\x00*\x00(\x04\x03\x05\x03\x06\x03\x08\x07\x08\x08\x08\t\x08\n\x08\x0b\x08\x04\x08\x05\x08\x06\x04\x01\x05\x01\x06\x01\x03\x03\x03\x01\x03\x02\x04\x02\x05\x02\x06\x02\x00+\x00\t\x08\x03\x04\x03\x03\x03\x02\x03\x01\x00-\x00\x02\x01\x01\x003\x00&\x00$\x00\x1d\x00 J\xf2[\x1f`c\xce\x17\xe3\x80\xf4B\xc2^6k\xf5=\x10\xc6\xb9\x175]7\x8d\xcb\xf6}Z-2",
    "client_hello_alpn_cut": b"a\x16\x03\x01\x016\x01\x00\x012\x03\x03\rS\x1fi\x80\x96\x1f\xf7#\xd8\xbd\x9b\xc3&\xcc\xca'\x9e\xdds?U)\xeb\xb21g\xfa\xe6^\xdc2 \xb0U\xbfn)0`D)\xa0n\xc8j]{\xb91\xdb{\xc8&\xa9\x95\xc8>\xb2\xb5smQ\xfct\x00>\x13\x02\x13\x03\x13\x01\xc0,\xc00\x00\x9f\xcc\xa9\xcc\xa8\xcc\xaa\xc0+\xc0/\x00\x9e\xc0$\xc0(\x00k\xc0#\xc0'\x00g\xc0\n\xc0\x14\x009\xc0\t\xc0\x13\x003\x00\x9d\x00\x9c\x00=\x00<\x005\x00/\x00\xff\x01\x00\x00\xab\x00\x0b\x00\x04\x03\x00\x01\x02\x00\n\x00\x16\x00\x14\x00\x1d\x00\x17\x00\x1e\x00\x19\x00\x18\x01\x00\x01\x01\x01\x02\x01\x03\x01\x04\x00#\x00\x00\x00\x10\x00\x0e\x00\x0c\x02h2\x08http/1.1\x00\x16\x00\x00\x00\x17\x00\x00\x00\r\x00*\x00(\x04\x03\x05\x03\x06\x03\x08\x07\x08\x08\x08\t\x08\n\x08\x0b\x08\x04\x08\x05\x08\x06\x04\x01\x05\x01\x06\x01\x03\x03\x03\x01\x03\x02\x04\x02\x05\x02\x06\x02\x00+\x00\t\x08\x03\x04\x03\x03\x03\x02\x03\x01\x00-\x00\x02\x01\x01\x003\x00&\x00$\x00\x1d\x00 J\xf2[\x1f`c\xce\x17\xe3\x80\xf4B\xc2^6k\xf5=\x10\xc6\xb9\x175]7\x8d\xcb\xf6}Z-2",
    "client_hello_p256": b'\x00\x16\x03\x01\x00\xeb\x01\x00\x00\xe7\x03\x03\xac+ZE>\xd2bq\x13\x1a\x16\xbc\xe3[\xb1E\x9c\xcc\xec`\xf7\x94\x9epo>\xbb\x9a\x1d\xaf\x1b\\ d3G\xe8\xe9\xe7\x93.\x10#\x9d\x1f\xe1yH)\x92\x94\x10\x87\x1f\xb0\x8aV\x93N\x84\xb6\x90\xb4\xa98\x00\x08\x13\x02\x13\x03\x13\x01\x00\xff\x01\x00\x00\x96\x00\x0b\x00\x04\x03\x00\x01\x02\x00\n\x00\x04\x00\x02\x00\x17\x00#\x00\x00\x00\x16\x00\x00\x00\x17\x00\x00\x00\r\x00\x1e\x00\x1c\x04\x03\x05\x03\x06\x03\x08\x07\x08\x08\x08\t\x08\n\x08\x0b\x08\x04\x08\x05\x08\x06\x04\x01\x05\x01\x06\x01\x00+\x00\x03\x02\x03\x04\x00-\x00\x02\x01\x01\x003\x00G\x00E\x00\x17\x00A\x04y\xb3k\xb49\n\xcdz\xd8\xc5\x11\\>\x95\xf9SMN\xcb_\xed\xc1\x0e\xaa|\xa8\xe0Q\x87\xbf\xf9\xc9\xa4\xb9\xf7y9U\x10\x0e\xc0>a\xdci|\xed\xeb\xa0\xce(e\x82\xe7\xec\xe9\x8d\x1bL\xfb\xc6\xcd\xe3"',
    "client_hello_p256_cut": b'u\x16\x03\x01\x00\xeb\x01\x00\x00\xe7\x03\x03\xac+ZE>\xd2bq\x13\x1a\x16\xbc\xe3[\xb1E\x9c\xcc\xec`\xf7\x94\x9epo>\xbb\x9a\x1d\xaf\x1b\\ d3G\xe8\xe9\xe7\x93.\x10#\x9d\x1f\xe1yH)\x92\x94\x10\x87\x1f\xb0\x8aV\x93N\x84\xb6\x90\xb4\xa98\x00\x08\x13\x02\x13\x03\x13\x01\x00\xff\x01\x00\x00\x96\x00\x0b\x00\x04\x03\x00\x01\x02\x00\n\x00\x04\x00\x02\x00\x17\x00#\x00\x00\x00\x16\x00\x00\x00\x17\x00\x00\x00\r\x00\x1e\x00\x1c\x04\x03\x05\x03\x06\x03\x08\x07\x08\x08\x08\t\x08\n\x08\x0b\x08\x04\x08\x05\x08\x06\x04\x01\x05\x01\x06\x01\x00+\x00\x03\x02\x03\x04\x00-\x00\x02\x01\x01\x003\x00G\x00E\x00\x17\x00A\x04y\xb3k\xb49\n\xcdz\xd8\xc5\x11\\>\x95\xf9SMN\xcb_\xed\xc1\x0e\xaa|\xa8\xe0Q\x87\xbf\xf9\xc9\xa4\xb9\xf7y9U\x10\x0e\xc0>a\xdci|\xed\xeb\xa0\xce(e\x82\xe7\xec\xe9\x8d\x1bL\xfb\xc6\xcd\xe3"',
    "client_hello_rsa_kx": b'\x00\x16\x03\x01\x00k\x01\x00\x00g\x03\x03\xdf^\x08;\x18\xaa\xa9\xb5d\x03R|\xe7\x08\xec\xaa\xf0$c\xcc\x9e\xf4!\x88\xe9Oj!|\xcfq\xcc\x00\x00\x04\x00<\x00\xff\x01\x00\x00:\x00#\x00\x00\x00\x16\x00\x00\x00\x17\x00\x00\x00\r\x00*\x00(\x04\x03\x05\x03\x06\x03\x08\x07\x08\x08\x08\t\x08\n\x08\x0b\x08\x04\x08\x05\x08\x06\x04\x01\x05\x01\x06\x01\x03\x03\x03\x01\x03\x02\x04\x02\x05\x02\x06\x02',
    "client_hello_rsa_kx_cut": b'\x89\x16\x03\x01\x00k\x01\x00\x00g\x03\x03\xdf^\x08;\x18\xaa\xa9\xb5d\x03R|\xe7\x08\xec\xaa\xf0$c\xcc\x9e\xf4!\x88\xe9Oj!|\xcfq\xcc\x00\x00\x04\x00<\x00\xff\x01\x00\x00:\x00#\x00\x00\x00\x16\x00\x00\x00\x17\x00\x00\x00\r\x00*\x00(\x04\x03\x05\x03\x06\x03\x08\x07\x08\x08\x08\t\x08\n\x08\x0b\x08\x04\x08\x05\x08\x06\x04\x01\x05\x01\x06\x01\x03\x03\x03\x01\x03\x02\x04\x02\x05\x02\x06\x02',
    "client_hello_sni": b"\x00\x16\x03\x01\x01<\x01\x00\x018\x03\x03\x9b\x86\x00\x8b\xbcdL\xb7\xdc\xf3k\xe3\xb2\xdc\xf5\x94\xca\x1d\xcd@`3\xcf\x9a\x94\x1b\x9d<E\x16\xe2\xe1 \nu\x8cg\xb8]]\x03\xf0@\x9b\xd7\x1be\x8b\x07\x1f\xc7Ju*\xfc5\xd6\x0bP\xd5sy\x1cbt\x00>\x13\x02\x13\x03\x13\x01\xc0,\xc00\x00\x9f\xcc\xa9\xcc\xa8\xcc\xaa\xc0+\xc0/\x00\x9e\xc0$\xc0(\x00k\xc0#\xc0'\x00g\xc0\n\xc0\x14\x009\xc0\t\xc0\x13\x003\x00\x9d\x00\x9c\x00=\x00<\x005\x00/\x00\xff\x01\x00\x00\xb1\x00\x00\x00\x14\x00\x12\x00\x00\x0fuploads.example\x00\x0b\x00\x04\x03\x00\x01\x02\x00\n\x00\x16\x00\x14\x00\x1d\x00\x17\x00\x1e\x00\x19\x00\x18\x01\x00\x01\x01\x01\x02\x01\x03\x01\x04\x00#\x00\x00\x00\x16\x00\x00\x00\x17\x00\x00\x00\r\x00*\x00(\x04\x03\x05\x03\x06\x03\x08\x07\x08\x08\x08\t\x08\n\x08\x0b\x08\x04\x08\x05\x08\x06\x04\x01\x05\x01\x06\x01\x03\x03\x03\x01\x03\x02\x04\x02\x05\x02\x06\x02\x00+\x00\t\x08\x03\x04\x03\x03\x03\x02\x03\x01\x00-\x00\x02\x01\x01\x003\x00&\x00$\x00\x1d\x00 %'l&\x1e\xc8L)\xa2\xeb\xe3\xd9\x12\xee\xe6\\\xa7\xb7\x06]}X@\xd3\xc1|w\xce\xbb~\xae)",
    "client_hello_sni_cut": b"\x9d\x16\x03\x01\x01<\x01\x00\x018\x03\x03\x9b\x86\x00\x8b\xbcdL\xb7\xdc\xf3k\xe3\xb2\xdc\xf5\x94\xca\x1d\xcd@`3\xcf\x9a\x94\x1b\x9d<E\x16\xe2\xe1 \nu\x8cg\xb8]]\x03\xf0@\x9b\xd7\x1be\x8b\x07\x1f\xc7Ju*\xfc5\xd6\x0bP\xd5sy\x1cbt\x00>\x13\x02\x13\x03\x13\x01\xc0,\xc00\x00\x9f\xcc\xa9\xcc\xa8\xcc\xaa\xc0+\xc0/\x00\x9e\xc0$\xc0(\x00k\xc0#\xc0'\x00g\xc0\n\xc0\x14\x009\xc0\t\xc0\x13\x003\x00\x9d\x00\x9c\x00=\x00<\x005\x00/\x00\xff\x01\x00\x00\xb1\x00\x00\x00\x14\x00\x12\x00\x00\x0fuploads.example\x00\x0b\x00\x04\x03\x00\x01\x02\x00\n\x00\x16\x00\x14\x00\x1d\x00\x17\x00\x1e\x00\x19\x00\x18\x01\x00\x01\x01\x01\x02\x01\x03\x01\x04\x00#\x00\x00\x00\x16\x00\x00\x00\x17\x00\x00\x00\r\x00*\x00(\x04\x03\x05\x03\x06\x03\x08\x07\x08\x08\x08\t\x08\n\x08\x0b\x08\x04\x08\x05\x08\x06\x04\x01\x05\x01\x06\x01\x03\x03\x03\x01\x03\x02\x04\x02\x05\x02\x06\x02\x00+\x00\t\x08\x03\x04\x03\x03\x03\x02\x03\x01\x00-\x00\x02\x01\x01\x003\x00&\x00$\x00\x1d\x00 %'l&\x1e\xc8L)\xa2\xeb\xe3\xd9\x12\xee\xe6\\\xa7\xb7\x06]}X@\xd3\xc1|w\xce\xbb~\xae)",
    "client_hello_tls12": b"\x00\x16\x03\x01\x00\xb7\x01\x00\x00\xb3\x03\x03\xfe\xc1<d9\xa9*\xfa\xf6B\xbf\xb2\x16\xe0x`\x1a\xa75\xa9L\xab\xb9\xbav\x01G\xd7\x8e\xae\xbe\x8b\x00\x008\xc0,\xc00\x00\x9f\xcc\xa9\xcc\xa8\xcc\xaa\xc0+\xc0/\x00\x9e\xc0$\xc0(\x00k\xc0#\xc0'\x00g\xc0\n\xc0\x14\x009\xc0\t\xc0\x13\x003\x00\x9d\x00\x9c\x00=\x00<\x005\x00/\x00\xff\x01\x00\x00R\x00\x0b\x00\x04\x03\x00\x01\x02\x00\n\x00\x0c\x00\n\x00\x1d\x00\x17\x00\x1e\x00\x19\x00\x18\x00#\x00\x00\x00\x16\x00\x00\x00\x17\x00\x00\x00\r\x00*\x00(\x04\x03\x05\x03\x06\x03\x08\x07\x08\x08\x08\t\x08\n\x08\x0b\x08\x04\x08\x05\x08\x06\x04\x01\x05\x01\x06\x01\x03\x03\x03\x01\x03\x02\x04\x02\x05\x02\x06\x02",
    "client_hello_tls12_cut": b"\xb1\x16\x03\x01\x00\xb7\x01\x00\x00\xb3\x03\x03\xfe\xc1<d9\xa9*\xfa\xf6B\xbf\xb2\x16\xe0x`\x1a\xa75\xa9L\xab\xb9\xbav\x01G\xd7\x8e\xae\xbe\x8b\x00\x008\xc0,\xc00\x00\x9f\xcc\xa9\xcc\xa8\xcc\xaa\xc0+\xc0/\x00\x9e\xc0$\xc0(\x00k\xc0#\xc0'\x00g\xc0\n\xc0\x14\x009\xc0\t\xc0\x13\x003\x00\x9d\x00\x9c\x00=\x00<\x005\x00/\x00\xff\x01\x00\x00R\x00\x0b\x00\x04\x03\x00\x01\x02\x00\n\x00\x0c\x00\n\x00\x1d\x00\x17\x00\x1e\x00\x19\x00\x18\x00#\x00\x00\x00\x16\x00\x00\x00\x17\x00\x00\x00\r\x00*\x00(\x04\x03\x05\x03\x06\x03\x08\x07\x08\x08\x08\t\x08\n\x08\x0b\x08\x04\x08\x05\x08\x06\x04\x01\x05\x01\x06\x01\x03\x03\x03\x01\x03\x02\x04\x02\x05\x02\x06\x02",
    "client_hello_tls13": b"\x00\x16\x03\x01\x00\xdc\x01\x00\x00\xd8\x03\x03\x83F\xd3\xec\x1a?\xf6Fq\xc3\xbd*\x08-\x05\xc8\xb8\x8cO\xd9\x92\x04\xa91\x1a>\x10\xb2\x10N\xb8\x0c \xd3\xca\x04\xa7Tq\xf6\x04.,FW\x92\xea\xcdP\xb7K\x1eb\xee\xa7V\x04{\x15*\xec\xbe\xd6\\\x06\x00\x08\x13\x02\x13\x03\x13\x01\x00\xff\x01\x00\x00\x87\x00\x0b\x00\x04\x03\x00\x01\x02\x00\n\x00\x16\x00\x14\x00\x1d\x00\x17\x00\x1e\x00\x19\x00\x18\x01\x00\x01\x01\x01\x02\x01\x03\x01\x04\x00#\x00\x00\x00\x16\x00\x00\x00\x17\x00\x00\x00\r\x00\x1e\x00\x1c\x04\x03\x05\x03\x06\x03\x08\x07\x08\x08\x08\t\x08\n\x08\x0b\x08\x04\x08\x05\x08\x06\x04\x01\x05\x01\x06\x01\x00+\x00\x03\x02\x03\x04\x00-\x00\x02\x01\x01\x003\x00&\x00$\x00\x1d\x00 \xdax\xcc\x03xo\xca`9\xf7\xd7bu\xa8\xceZ\x92='\xea#\xb8\xe9b\x9a\x1d\x161\xb7\xe6\xe9s",
    "client_hello_tls13_cut": b"\xc5\x16\x03\x01\x00\xdc\x01\x00\x00\xd8\x03\x03\x83F\xd3\xec\x1a?\xf6Fq\xc3\xbd*\x08-\x05\xc8\xb8\x8cO\xd9\x92\x04\xa91\x1a>\x10\xb2\x10N\xb8\x0c \xd3\xca\x04\xa7Tq\xf6\x04.,FW\x92\xea\xcdP\xb7K\x1eb\xee\xa7V\x04{\x15*\xec\xbe\xd6\\\x06\x00\x08\x13\x02\x13\x03\x13\x01\x00\xff\x01\x00\x00\x87\x00\x0b\x00\x04\x03\x00\x01\x02\x00\n\x00\x16\x00\x14\x00\x1d\x00\x17\x00\x1e\x00\x19\x00\x18\x01\x00\x01\x01\x01\x02\x01\x03\x01\x04\x00#\x00\x00\x00\x16\x00\x00\x00\x17\x00\x00\x00\r\x00\x1e\x00\x1c\x04\x03\x05\x03\x06\x03\x08\x07\x08\x08\x08\t\x08\n\x08\x0b\x08\x04\x08\x05\x08\x06\x04\x01\x05\x01\x06\x01\x00+\x00\x03\x02\x03\x04\x00-\x00\x02\x01\x01\x003\x00&\x00$\x00\x1d\x00 \xdax\xcc\x03xo\xca`9\xf7\xd7bu\xa8\xceZ\x92='\xea#\xb8\xe9b\x9a\x1d\x161\xb7\xe6\xe9s",
    "empty": b'',
    "huge_length": b'\x02\x16\x03\x01\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00',
    "plain_http": b'\x80GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n',
    "sslv2_hello": b'\x05\x80.\x01\x00\x02\x00\x15\x00\x00\x00\x10\x07\x00\xc0\x07\x00\xc0\x07\x00\xc0\x07\x00\xc0\x07\x00\xc0\x07\x00\xc0\x07\x00\xc0\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00',
    "truncated_record": b'\x10\x16\x03\x01\x02\x00\x01\x00\x01\xfc',
}

# The record layer after a handshake (check_tls_records): byte 0 the suite (TLS 1.3 or 1.2,
# AES-256-GCM or ChaCha20-Poly1305), byte 1 the cut; then a plan of (op, len, bytes): op % 4 is
# 0 seal a record of the bytes, 1 raw bytes, 2 flip a bit in what was sent, 3 close_notify.
def plan(*steps):
    out = b""
    for op, arg in steps:
        out += bytes([op, len(arg)]) + arg
    return out

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
TLS_RECORDS = {}
for suite in range(4):
    TLS_RECORDS[f"request_{suite}"] = bytes([suite, 100]) + plan((0, REQUEST))
    TLS_RECORDS[f"two_records_close_{suite}"] = bytes([suite, 37]) + plan((0, REQUEST), (0, b"x" * 200), (3, b""))
    TLS_RECORDS[f"flipped_{suite}"] = bytes([suite, 200]) + plan((0, REQUEST), (2, b"\x05"), (0, b"y" * 10))
TLS_RECORDS["raw_after_record"] = bytes([0, 128]) + plan((0, REQUEST), (1, b"\x17\x03\x03\x00\x20" + b"z" * 32))
TLS_RECORDS["oversized_header"] = bytes([1, 10]) + plan((1, b"\x17\x03\x03\x48\x01"))
TLS_RECORDS["handshake_type_tls12"] = bytes([2, 3]) + plan((1, b"\x16\x03\x03\x00\x20" + b"h" * 32))
TLS_RECORDS["empty_records"] = bytes([3, 250]) + plan((0, b""), (0, b""), (0, b"a"))
TLS_RECORDS["data_after_close"] = bytes([0, 90]) + plan((0, REQUEST), (3, b""), (0, REQUEST))


def write(target, seeds):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


write("head", HEAD)
write("chunked", CHUNKED)
write("h1_conn", H1_CONN)
write("path", PATH)
write("register_form", FORM)
write("callback_url", CALLBACK_URL)
write("multipart", MULTIPART)
write("resumable_headers", RESUMABLE_HEADERS)
write("etcd_watch", ETCD_WATCH)
write("tls_bytes", TLS_BYTES)
write("tls_records", TLS_RECORDS)
