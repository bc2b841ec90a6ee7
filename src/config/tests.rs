use super::*;

#[test]
fn defaults_are_the_contracts() {
    let c = Config::default();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.data_dir, PathBuf::from("./data"));
    assert_eq!(c.expect, ExpectPolicy::Require);
    assert_eq!(c.callback_timeout_ms, 5000);
    assert_eq!(c.callback_workers, 32);
    assert_eq!(c.callback_queue, 4096);
    assert_eq!(c.max_body_bytes, 10 << 30);
    assert_eq!(c.max_head_bytes, 65536);
    assert_eq!(
        (
            c.header_timeout_ms,
            c.body_idle_timeout_ms,
            c.keepalive_timeout_ms
        ),
        (10_000, 30_000, 60_000)
    );
    assert_eq!(c.max_connections, 10_000);
    assert!(c.fsync && !c.overwrite && c.zero_copy && !c.pin_threads);
    assert_eq!(c.checksum, Checksum::None);
    assert_eq!(c.public_base(), "http://127.0.0.1:8080");
}

#[test]
fn toml_overrides_and_unknown_keys_name_the_line() {
    let c = Config::from_toml("listen = \"0.0.0.0:9000\"\nexpect = \"optional\"\ncallback_allow = [\"app.example.com\"]\n", "t.toml").unwrap();
    assert_eq!(c.listen.port(), 9000);
    assert_eq!(c.expect, ExpectPolicy::Optional);
    assert_eq!(c.callback_allow, vec!["app.example.com".to_string()]);
    let e = Config::from_toml("fsync = true\nfsink = false\n", "t.toml").unwrap_err();
    assert!(e.0.starts_with("t.toml:2:") && e.0.contains("fsink"), "{e}");
    let e = Config::from_toml("expect = \"sometimes\"\n", "t.toml").unwrap_err();
    assert!(e.0.starts_with("t.toml:1:"), "{e}");
    let e = Config::from_toml("callback_workers = 0\n", "t.toml").unwrap_err();
    assert!(e.0.contains("callback_workers"), "{e}");
    let e = Config::from_toml("max_head_bytes = 10\n", "t.toml").unwrap_err();
    assert!(e.0.contains("max_head_bytes"), "{e}");
}

#[test]
fn many_node_keys_are_checked_where_they_are_read() {
    let c = Config::from_toml(
        "registry = \"etcd\"\netcd_endpoints = [\"http://10.0.0.1:2379\"]\nnode_id = \"edge-1\"\n",
        "t.toml",
    )
    .unwrap();
    assert_eq!(c.registry, RegistryKind::Etcd);
    assert_eq!(c.node_id(), "edge-1");
    assert_eq!(c.etcd_endpoints, ["http://10.0.0.1:2379"]);
    assert_eq!(c.etcd_prefix, "/upgate/");
    assert_eq!(Config::default().registry, RegistryKind::Local);
    assert!(!Config::default().node_id().is_empty(), "the host name");
    let c = Config::from_toml(
        "store = \"s3\"\ns3_endpoint = \"http://127.0.0.1:3900\"\norigin_write = \"background\"\n",
        "t.toml",
    )
    .unwrap();
    assert_eq!(c.store, StoreKind::S3);
    assert_eq!(c.origin_write, OriginWrite::Background);
    assert_eq!(
        (c.s3_bucket.as_str(), c.s3_region.as_str()),
        ("upgate", "us-east-1")
    );
    assert_eq!(Config::default().store, StoreKind::Local);
    assert_eq!(Config::default().origin_write, OriginWrite::BeforeCallback);
    for (toml, key) in [
        (
            "registry = \"etcd\"\netcd_endpoints = []\n",
            "etcd_endpoints",
        ),
        (
            "registry = \"etcd\"\netcd_endpoints = [\"https://e:2379\"]\n",
            "etcd_endpoints",
        ),
        ("etcd_prefix = \"upgate\"\n", "etcd_prefix"),
        ("node_id = \"a b\"\n", "node_id"),
        ("node_id = \"\"\n", "node_id"),
        ("registry = \"zookeeper\"\n", "registry"),
        ("store = \"s3\"\n", "s3_endpoint"),
        (
            "store = \"s3\"\ns3_endpoint = \"garage:3900\"\n",
            "s3_endpoint",
        ),
        (
            "store = \"s3\"\ns3_endpoint = \"http://g\"\ns3_bucket = \"\"\n",
            "s3_bucket",
        ),
        ("store = \"nfs\"\n", "store"),
        ("origin_write = \"later\"\n", "origin_write"),
    ] {
        let e = Config::from_toml(toml, "t.toml").unwrap_err();
        assert!(e.0.contains(key), "{toml:?}: {e}");
    }
}
