//! Pure policy tests. Nothing here opens a socket; private and public addresses appear only as
//! text.

use crate::error::Fault;
use std::net::SocketAddr;

use crate::callback::{AllowEntry, CallbackPolicy, Guard, GuardRefusal, PolicyError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Allowed,
    Malformed,
    Scheme,
    Userinfo,
    NotListed,
    Restricted,
}

fn kind(result: &Result<crate::callback::CheckedUrl, PolicyError>) -> Want {
    match result {
        Ok(_) => Want::Allowed,
        Err(PolicyError::Malformed { .. } | PolicyError::NoHost) => Want::Malformed,
        Err(PolicyError::Scheme { .. }) => Want::Scheme,
        Err(PolicyError::Userinfo) => Want::Userinfo,
        Err(PolicyError::NotListed { .. }) => Want::NotListed,
        Err(PolicyError::Restricted { .. }) => Want::Restricted,
    }
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

const APP: &[&str] = &["app1.example.com"];

/// (url, node callback_allow, app callback_hosts, expected)
const CASES: &[(&str, &[&str], &[&str], Want)] = &[
    // Allowed by name, through either list.
    ("http://app1.example.com/cb", APP, &[], Want::Allowed),
    ("https://app1.example.com/cb", APP, &[], Want::Allowed),
    (
        "http://cb.app1.test/x?y=1#f",
        &[],
        &["cb.app1.test"],
        Want::Allowed,
    ),
    ("HTTP://APP1.Example.COM/cb", APP, &[], Want::Allowed),
    (
        "http://app1.example.com/cb",
        &["APP1.EXAMPLE.COM"],
        &[],
        Want::Allowed,
    ),
    ("http://app1.example.com./cb", APP, &[], Want::Allowed),
    (
        "http://app1.example.com/cb",
        &["app1.example.com."],
        &[],
        Want::Allowed,
    ),
    (
        "http://xn--bcher-kva.example/",
        &["bücher.example"],
        &[],
        Want::Allowed,
    ),
    (
        "http://BÜCHER.example/",
        &["xn--bcher-kva.example"],
        &[],
        Want::Allowed,
    ),
    // Ports: `host` is any port, `host:port` only that one (default ports count).
    ("http://app1.example.com:8080/cb", APP, &[], Want::Allowed),
    (
        "http://app1.example.com:8080/cb",
        &["app1.example.com:8080"],
        &[],
        Want::Allowed,
    ),
    (
        "http://app1.example.com:8081/cb",
        &["app1.example.com:8080"],
        &[],
        Want::NotListed,
    ),
    (
        "http://app1.example.com/cb",
        &["app1.example.com:80"],
        &[],
        Want::Allowed,
    ),
    (
        "https://app1.example.com/cb",
        &["app1.example.com:443"],
        &[],
        Want::Allowed,
    ),
    (
        "https://app1.example.com/cb",
        &["app1.example.com:80"],
        &[],
        Want::NotListed,
    ),
    (
        "http://app1.example.com:443/cb",
        &["app1.example.com:80"],
        &[],
        Want::NotListed,
    ),
    // Names match exactly: no suffix, prefix or subdomain games.
    ("http://evil.example.com/", APP, &[], Want::NotListed),
    (
        "http://app1.example.com.evil.com/",
        APP,
        &[],
        Want::NotListed,
    ),
    ("http://sub.app1.example.com/", APP, &[], Want::NotListed),
    ("http://example.com/", APP, &[], Want::NotListed),
    ("http://app1.example.co/", APP, &[], Want::NotListed),
    ("http://app1.example.com/", &[], &[], Want::NotListed),
    (
        "http://app1.example.com/",
        &["*.example.com"],
        &["*"],
        Want::NotListed,
    ),
    ("http://localhost/", APP, &[], Want::NotListed),
    // Listed by name only: the URL passes; the guard checks the resolved address.
    ("http://localhost:9000/", &["localhost"], &[], Want::Allowed),
    // Schemes.
    ("ftp://app1.example.com/f", APP, &[], Want::Scheme),
    ("file:///etc/passwd", APP, &[], Want::Scheme),
    ("file://app1.example.com/etc/passwd", APP, &[], Want::Scheme),
    ("gopher://app1.example.com:70/_x", APP, &[], Want::Scheme),
    ("data:text/plain,hello", APP, &[], Want::Scheme),
    ("javascript:alert(1)", APP, &[], Want::Scheme),
    ("ws://app1.example.com/", APP, &[], Want::Scheme),
    ("dict://app1.example.com:11211/", APP, &[], Want::Scheme),
    // Userinfo.
    ("http://user:pw@app1.example.com/", APP, &[], Want::Userinfo),
    ("http://user@app1.example.com/", APP, &[], Want::Userinfo),
    ("http://:pw@app1.example.com/", APP, &[], Want::Userinfo),
    (
        "http://app1.example.com@evil.example.com/",
        APP,
        &[],
        Want::Userinfo,
    ),
    // Not URLs.
    ("", APP, &[], Want::Malformed),
    ("not a url", APP, &[], Want::Malformed),
    ("/callback", APP, &[], Want::Malformed),
    ("app1.example.com/cb", APP, &[], Want::Malformed),
    ("http://", APP, &[], Want::Malformed),
    ("http://[::1/", APP, &[], Want::Malformed),
    ("http://app1.example.com:99999/", APP, &[], Want::Malformed),
    ("http://999.1.1.1/", APP, &[], Want::Malformed),
    // Restricted IP literals, not listed.
    ("http://127.0.0.1/", APP, &[], Want::Restricted),
    ("http://127.0.0.2:8080/", APP, &[], Want::Restricted),
    ("http://10.0.0.1/", APP, &[], Want::Restricted),
    ("http://172.16.0.1/", APP, &[], Want::Restricted),
    ("http://172.31.255.255/", APP, &[], Want::Restricted),
    ("http://192.168.1.1/", APP, &[], Want::Restricted),
    (
        "http://169.254.169.254/latest/meta-data/",
        APP,
        &[],
        Want::Restricted,
    ),
    ("http://100.64.0.1/", APP, &[], Want::Restricted),
    ("http://0.0.0.0/", APP, &[], Want::Restricted),
    ("http://224.0.0.1/", APP, &[], Want::Restricted),
    ("http://255.255.255.255/", APP, &[], Want::Restricted),
    ("http://192.0.2.1/", APP, &[], Want::Restricted),
    ("http://198.51.100.7/", APP, &[], Want::Restricted),
    ("http://203.0.113.9/", APP, &[], Want::Restricted),
    ("http://[::1]/", APP, &[], Want::Restricted),
    ("http://[::]/", APP, &[], Want::Restricted),
    ("http://[fc00::1]/", APP, &[], Want::Restricted),
    ("http://[fd12:3456::1]/", APP, &[], Want::Restricted),
    ("http://[fe80::1]/", APP, &[], Want::Restricted),
    ("http://[ff02::1]/", APP, &[], Want::Restricted),
    ("http://[2001:db8::1]/", APP, &[], Want::Restricted),
    ("http://[::ffff:127.0.0.2]/", APP, &[], Want::Restricted),
    ("http://[::ffff:7f00:1]/", APP, &[], Want::Restricted),
    ("http://[::ffff:10.0.0.1]/", APP, &[], Want::Restricted),
    ("http://[::127.0.0.1]/", APP, &[], Want::Restricted),
    ("http://[64:ff9b::7f00:1]/", APP, &[], Want::Restricted),
    ("http://[2002:7f00:1::1]/", APP, &[], Want::Restricted),
    // Alternative IPv4 spellings, normalised by the URL parser before the check.
    ("http://2130706433/", APP, &[], Want::Restricted),
    ("http://0x7f.1/", APP, &[], Want::Restricted),
    ("http://0x7f000001/", APP, &[], Want::Restricted),
    ("http://0177.0.0.1/", APP, &[], Want::Restricted),
    ("http://017700000001/", APP, &[], Want::Restricted),
    ("http://127.1/", APP, &[], Want::Restricted),
    ("http://127.0.1/", APP, &[], Want::Restricted),
    ("http://127.0.0.1./", APP, &[], Want::Restricted),
    ("http://0/", APP, &[], Want::Restricted),
    ("http://0xa.0.0.1/", APP, &[], Want::Restricted),
    ("http://%31%32%37.0.0.1/", APP, &[], Want::Restricted),
    ("http://127.0.0.1%2e/", APP, &[], Want::Restricted),
    ("http://①②⑦.0.0.1/", APP, &[], Want::Restricted),
    // Spellings of other restricted addresses: 127.0.0.2, private and link-local.
    ("http://2130706434/", APP, &[], Want::Restricted),
    ("http://0177.0.0.2/", APP, &[], Want::Restricted),
    ("http://0x7f.0.0.2/", APP, &[], Want::Restricted),
    ("http://0x7f000002/", APP, &[], Want::Restricted),
    ("http://127.2/", APP, &[], Want::Restricted),
    ("http://167772161/", APP, &[], Want::Restricted),
    ("http://012.0.0.1/", APP, &[], Want::Restricted),
    ("http://3232235777/", APP, &[], Want::Restricted),
    ("http://0xc0.0xa8.1.1/", APP, &[], Want::Restricted),
    (
        "http://2852039166/latest/meta-data/",
        APP,
        &[],
        Want::Restricted,
    ),
    ("http://0xa9fea9fe/", APP, &[], Want::Restricted),
    ("http://[::ffff:192.168.1.1]/", APP, &[], Want::Restricted),
    ("http://[::ffff:c0a8:101]/", APP, &[], Want::Restricted),
    (
        "http://[::ffff:169.254.169.254]/",
        APP,
        &[],
        Want::Restricted,
    ),
    ("http://[::ffff:a9fe:a9fe]/", APP, &[], Want::Restricted),
    ("http://1572395042/", APP, &[], Want::NotListed),
    // Listing 127.0.0.1 lets no spelling of 127.0.0.2 through, and userinfo cannot borrow
    // the listed address.
    (
        "http://2130706434:9000/",
        &["127.0.0.1:9000"],
        &[],
        Want::Restricted,
    ),
    (
        "http://0x7f.0.0.2:9000/",
        &["127.0.0.1"],
        &[],
        Want::Restricted,
    ),
    (
        "http://[::ffff:127.0.0.2]:9000/",
        &["127.0.0.1"],
        &[],
        Want::Restricted,
    ),
    (
        "http://127.0.0.1:9000@127.0.0.2/",
        &["127.0.0.1:9000"],
        &[],
        Want::Userinfo,
    ),
    (
        "http://127.0.0.2:9000@127.0.0.1:9000/",
        &["127.0.0.1:9000"],
        &[],
        Want::Userinfo,
    ),
    // ...and they stay refused when a name list would otherwise allow them.
    ("http://2130706433/", &["localhost"], &[], Want::Restricted),
    // Explicitly listed restricted addresses are allowed, exactly as listed.
    (
        "http://127.0.0.1:9000/cb",
        &["127.0.0.1:9000"],
        &[],
        Want::Allowed,
    ),
    (
        "http://127.0.0.1:9001/cb",
        &["127.0.0.1:9000"],
        &[],
        Want::Restricted,
    ),
    (
        "http://127.0.0.1:9001/cb",
        &["127.0.0.1"],
        &[],
        Want::Allowed,
    ),
    (
        "http://2130706433:9000/",
        &["127.0.0.1"],
        &[],
        Want::Allowed,
    ),
    (
        "http://127.0.0.1:9000/",
        &["0x7f.1:9000"],
        &[],
        Want::Allowed,
    ),
    ("http://127.0.0.2/", &["127.0.0.1"], &[], Want::Restricted),
    ("http://10.1.2.3/", APP, &["10.1.2.3"], Want::Allowed),
    ("http://[::1]:8080/", &["[::1]:8080"], &[], Want::Allowed),
    ("http://[::1]:8080/", &["::1"], &[], Want::Allowed),
    ("http://[::1]:8081/", &["[::1]:8080"], &[], Want::Restricted),
    ("http://[0:0:0:0:0:0:0:1]/", &["[::1]"], &[], Want::Allowed),
    (
        "http://[::ffff:127.0.0.1]/",
        &["127.0.0.1"],
        &[],
        Want::Restricted,
    ),
    (
        "http://127.0.0.1/",
        &["[::ffff:127.0.0.1]"],
        &[],
        Want::Restricted,
    ),
    (
        "http://[::ffff:127.0.0.1]/",
        &["[::ffff:127.0.0.1]"],
        &[],
        Want::Allowed,
    ),
    // Public IP literals must be listed too.
    (
        "http://93.184.216.34/",
        &["93.184.216.34"],
        &[],
        Want::Allowed,
    ),
    ("http://93.184.216.34/", APP, &[], Want::NotListed),
    ("http://1572395042/", &["93.184.216.34"], &[], Want::Allowed),
    (
        "http://[2606:4700::1111]/",
        &["[2606:4700::1111]"],
        &[],
        Want::Allowed,
    ),
    (
        "http://[2606:4700::1111]/",
        &["2606:4700::1111"],
        &[],
        Want::Allowed,
    ),
    ("http://[2606:4700::1111]/", APP, &[], Want::NotListed),
    // Unparsable app entries never match, and do not break the good ones.
    (
        "http://app1.example.com/",
        &[],
        &["http://x/", "app1.example.com"],
        Want::Allowed,
    ),
    (
        "http://app1.example.com/",
        &[],
        &["app1.example.com:abc"],
        Want::NotListed,
    ),
];

#[test]
fn policy_table() {
    let mut failures = Vec::new();
    for &(url, node, app, want) in CASES {
        let policy = CallbackPolicy::new(strings(node));
        let result = policy.check(url, &strings(app));
        let got = kind(&result);
        if got != want {
            failures.push(format!(
                "{url:?} node={node:?} app={app:?}: want {want:?}, got {result:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_refusal_is_403_callback_not_allowed_with_its_own_message() {
    let policy = CallbackPolicy::new(strings(APP));
    let errors: Vec<PolicyError> = [
        "nope",
        "ftp://app1.example.com/",
        "http://u:p@app1.example.com/",
        "http://other.example.com/",
        "http://127.0.0.1/",
    ]
    .iter()
    .map(|u| policy.check(u, &[]).unwrap_err())
    .collect();
    let mut messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    for e in &errors {
        assert_eq!((e.status(), e.code()), (403, "callback_not_allowed"));
    }
    messages.dedup();
    assert_eq!(messages.len(), errors.len(), "{messages:?}");
    assert!(messages[4].contains("127.0.0.1"), "{}", messages[4]);
}

#[test]
fn checked_url_is_the_normalised_url() {
    let policy = CallbackPolicy::new(strings(&["127.0.0.1:9000"]));
    let checked = policy.check("http://0x7f.1:9000/a/../cb", &[]).unwrap();
    assert_eq!(checked.url().as_str(), "http://127.0.0.1:9000/cb");
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn guard_lists_the_ip_entries_of_both_lists() {
    let policy = CallbackPolicy::new(strings(&["127.0.0.1:9000", "app.example", "[fd00::5]"]));
    let checked = policy
        .check(
            "http://app.example/cb",
            &strings(&["10.0.0.5", "cb.app.example"]),
        )
        .unwrap();
    let guard = checked.guard();
    assert_eq!(guard.listed().len(), 3);
    assert!(guard.permits(addr("127.0.0.1:9000")));
    assert!(!guard.permits(addr("127.0.0.1:9001")));
    assert!(!guard.permits(addr("127.0.0.2:9000")));
    assert!(guard.permits(addr("10.0.0.5:80")));
    assert!(guard.permits(addr("10.0.0.5:1")));
    assert!(!guard.permits(addr("10.0.0.6:80")));
    assert!(guard.permits(addr("[fd00::5]:443")));
    assert!(!guard.permits(addr("[fd00::6]:443")));
    assert!(guard.permits(addr("93.184.216.34:80")));
    assert!(guard.permits(addr("[2606:4700::1111]:443")));
}

#[test]
fn guard_filter_keeps_permitted_addresses_and_fails_when_none_is_left() {
    let guard = Guard::none();
    let mixed = vec![addr("10.0.0.1:80"), addr("93.184.216.34:80")];
    assert_eq!(
        guard.filter("x:80", mixed).unwrap(),
        [addr("93.184.216.34:80")]
    );
    let err = guard
        .filter("x:80", vec![addr("127.0.0.1:80"), addr("[::1]:80")])
        .unwrap_err();
    let refusal = err
        .get_ref()
        .unwrap()
        .downcast_ref::<GuardRefusal>()
        .unwrap();
    assert_eq!(refusal.refused, [addr("127.0.0.1:80"), addr("[::1]:80")]);
    assert!(refusal.to_string().contains("127.0.0.1:80"), "{refusal}");
    // Nothing resolved is not a refusal (ureq reports it as a DNS failure).
    assert_eq!(guard.filter("x:80", vec![]).unwrap(), []);
}

#[test]
fn guard_resolver_checks_literals_and_resolved_names() {
    use ureq::Resolver as _;
    let guard = Guard::none();
    // IP literals are parsed, not looked up.
    assert_eq!(
        guard.resolve("93.184.216.34:80").unwrap(),
        [addr("93.184.216.34:80")]
    );
    assert!(guard.resolve("127.0.0.1:80").is_err());
    assert!(guard.resolve("[::ffff:127.0.0.1]:80").is_err());
    // `localhost` resolves (from /etc/hosts) to loopback only: refused unless listed.
    let err = guard.resolve("localhost:80").unwrap_err();
    assert!(err.get_ref().unwrap().is::<GuardRefusal>(), "{err}");
    let policy = CallbackPolicy::new(strings(&["localhost", "127.0.0.1"]));
    let checked = policy.check("http://localhost/", &[]).unwrap();
    let resolved = checked.guard().resolve("localhost:80").unwrap();
    assert!(resolved.contains(&addr("127.0.0.1:80")), "{resolved:?}");
    assert!(
        resolved.iter().all(|a| a.ip().to_string() == "127.0.0.1"),
        "{resolved:?}"
    );
}

#[test]
fn allow_entries_parse_or_fail_loudly() {
    for good in [
        "app1.example.com",
        "app1.example.com:8080",
        "localhost",
        "1.2.3.4",
        "1.2.3.4:80",
        "[::1]",
        "[::1]:80",
        "::1",
        "fd00::5",
        " padded.example ",
    ] {
        assert!(good.parse::<AllowEntry>().is_ok(), "{good:?}");
        assert!(CallbackPolicy::validate_entry(good).is_ok(), "{good:?}");
    }
    for bad in [
        "",
        " ",
        "http://app1.example.com",
        "app1.example.com/cb",
        "user@app1.example.com",
        "*.example.com",
        "app1.example.com:",
        "app1.example.com:99999",
        "app1.example.com:http",
        "[::1",
        "[::1]x",
        "[::1]:",
        "[nothex]",
        "a b",
        "1:2:3",
    ] {
        assert!(bad.parse::<AllowEntry>().is_err(), "{bad:?}");
    }
    let err = CallbackPolicy::try_new(&strings(&["ok.example", "bad/entry"])).unwrap_err();
    assert_eq!(err.entry, "bad/entry");
    assert!(CallbackPolicy::try_new(&strings(&["ok.example", "127.0.0.1:1"])).is_ok());
}
