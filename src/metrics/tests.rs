use super::render::histogram;
use super::*;

#[test]
fn histogram_buckets_are_cumulative_and_inclusive() {
    static H: Histogram = Histogram::new(&[10, 100], 1.0);
    for v in [1, 10, 11, 100, 1000] {
        H.observe(v);
    }
    let mut out = String::new();
    histogram(&mut out, "h", &[("a", "b")], &H);
    assert_eq!(
        out,
        "h_bucket{a=\"b\",le=\"10\"} 2\nh_bucket{a=\"b\",le=\"100\"} 4\n\
         h_bucket{a=\"b\",le=\"+Inf\"} 5\nh_sum{a=\"b\"} 1122\nh_count{a=\"b\"} 5\n"
    );
    assert_eq!(H.count(), 5);
}

#[test]
fn seconds_histograms_export_base_units() {
    static H: Histogram = Histogram::new(&[1_000, 2_500_000], 1e6);
    H.observe_duration(Duration::from_millis(2));
    let mut out = String::new();
    histogram(&mut out, "s", &[], &H);
    assert!(
        out.starts_with("s_bucket{le=\"0.001\"} 0\ns_bucket{le=\"2.5\"} 1\n"),
        "{out}"
    );
    assert!(out.contains("s_sum 0.002\n"), "{out}");
}

#[test]
fn every_route_and_class_is_exported_from_the_start() {
    let text = render();
    for r in Route::ALL {
        for c in STATUS_CLASSES {
            let series = format!(
                "upgate_requests_total{{route=\"{}\",code=\"{c}\"}} ",
                r.as_str()
            );
            assert!(text.contains(&series), "missing {series}");
        }
    }
    assert!(text.contains("upgate_body_bytes_total{path=\"splice\"} "));
    assert!(text.contains("upgate_timeouts_total{kind=\"keepalive\"} "));
}

#[test]
fn status_classes_clamp() {
    let before = METRICS.requests[Route::Other as usize][4].get();
    request_done(Route::Other, 599);
    request_done(Route::Other, 600);
    assert_eq!(METRICS.requests[Route::Other as usize][4].get(), before + 2);
}
