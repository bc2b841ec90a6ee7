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
}


def write(target, seeds):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


write("head", HEAD)
write("chunked", CHUNKED)
write("h1_conn", H1_CONN)
