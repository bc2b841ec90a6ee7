//! The tus and IETF header parsers, on the values real clients send, one call per iteration.
//!
//! - `tus_append_head`: everything a tus `PATCH` asks of this module before its body
//!   (`Tus-Resumable`, `Upload-Offset`, the append's `Content-Type`, the offset compared with
//!   the upload's): the parsing cost paid once per append.
//! - `ietf_append_head`: the same for an IETF append (`Upload-Draft-Interop-Version`,
//!   `Upload-Offset` and `Upload-Complete` as structured fields, the `application/partial-upload`
//!   media type).
//! - `metadata_uppy`: `Upload-Metadata` as Uppy's Tus plugin writes it (six pairs), parsed at
//!   creation; `checksum_sha256`: `Upload-Checksum`; `concat_final_8`: `Upload-Concat` naming
//!   eight partial uploads.
//!
//! Run: `cargo bench --bench resumable_headers -- --warm-up-time 1 --measurement-time 3`.
//! Figures: docs/performance.md, "Forms and resumable headers".

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use upgate::http::{
    check_offset, check_offset_octet_stream, parse_ietf_upload_offset, parse_tus_resumable,
    parse_upload_complete, parse_upload_offset, Checksum, Concat, InteropVersion, Metadata,
};

const METADATA_UPPY: &[u8] = b"relativePath bnVsbA==,name dmFjYXRpb24gdmlkZW8gKDIwMjYpLm1wNA==,\
type dmlkZW8vbXA0,filetype dmlkZW8vbXA0,filename dmFjYXRpb24gdmlkZW8gKDIwMjYpLm1wNA==,\
userid NzQxMg==";
const CHECKSUM: &[u8] = b"sha256 uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=";
const CONCAT: &[u8] = b"final;/upload/tus/app/6f1c0e9a21b84d7c /upload/tus/app/0b5e7f3d9c2a4e18 \
/upload/tus/app/9d2c4b6e8f0a1c3e /upload/tus/app/4e6a8c0e2b4d6f81 /upload/tus/app/7a9c1e3b5d7f9a2c \
/upload/tus/app/2c4e6a8b0d2f4a6c /upload/tus/app/5b7d9f1a3c5e7b9d /upload/tus/app/8e0a2c4e6b8d0f2a";

fn resumable_headers(c: &mut Criterion) {
    let mut g = c.benchmark_group("resumable_headers");
    g.bench_function("tus_append_head", |b| {
        b.iter(|| {
            parse_tus_resumable(black_box(b"1.0.0")).unwrap();
            let offset = parse_upload_offset(black_box(b"1065353216")).unwrap();
            check_offset_octet_stream(Some(black_box(b"application/offset+octet-stream"))).unwrap();
            check_offset(black_box(1_065_353_216), offset).unwrap();
        })
    });
    g.bench_function("ietf_append_head", |b| {
        b.iter(|| {
            let version = InteropVersion::parse(black_box(b"8")).unwrap();
            let offset = parse_ietf_upload_offset(black_box(b"1065353216")).unwrap();
            let complete = parse_upload_complete(black_box(b"?1")).unwrap();
            version
                .check_append_content_type(Some(black_box(b"application/partial-upload")))
                .unwrap();
            black_box((offset, complete))
        })
    });
    g.bench_function("metadata_uppy", |b| {
        b.iter(|| Metadata::parse(black_box(METADATA_UPPY)).unwrap())
    });
    g.bench_function("checksum_sha256", |b| {
        b.iter(|| Checksum::parse(black_box(CHECKSUM)).unwrap())
    });
    g.bench_function("concat_final_8", |b| {
        b.iter(|| Concat::parse(black_box(CONCAT)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, resumable_headers);
criterion_main!(benches);
