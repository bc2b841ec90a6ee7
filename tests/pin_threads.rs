//! `pin_threads = true`: each io_uring runtime's thread runs on one CPU of those the node may
//! use, one CPU each while there are enough, and the node serves as before. Its own test
//! binary, so that no other test's node has threads of the same names.

mod support;

use support::*;

/// The CPUs each of this process's threads named `prefix…` may run on (`/proc`).
fn allowed_cpus_of(prefix: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let dir = task.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let comm = comm.trim().to_owned();
        if !comm.starts_with(prefix) {
            continue;
        }
        let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        let cpus = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap_or("")
            .trim()
            .to_owned();
        out.push((comm, cpus));
    }
    out.sort();
    out
}

#[test]
fn pinned_runtime_threads_each_keep_to_their_own_cpu_and_serve() {
    let cores = std::thread::available_parallelism().unwrap().get();
    let mut config = test_config();
    config.threads = cores;
    config.pin_threads = true;
    let node = start(config);
    // A new thread names and pins itself once it runs, which may be after `start` returns:
    // waited for, at most 5 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let cpus = loop {
        let rings = allowed_cpus_of("upgate-uring-");
        let cpus: std::collections::BTreeSet<usize> =
            rings.iter().filter_map(|(_, c)| c.parse().ok()).collect();
        if rings.len() == cores && cpus.len() == cores {
            break cpus;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "each ring thread on a CPU of its own: {rings:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert_eq!(cpus.len(), cores);
    let (wire, _) = exchange(
        node.local_addr(),
        b"GET /healthz HTTP/1.1\r\nHost: n\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(wire.status, 200);
    node.shutdown();
}
