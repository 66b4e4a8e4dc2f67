//! The HTTPS operator console of a running node, as its users meet it: a
//! real TLS client that trusts only the node's own certificate logs in
//! with each role, reads every page, is refused what its role may not do
//! (and the refusal is in the audit log), `/metrics` parses as Prometheus
//! text, and headless Chromium logs in and renders every page.

use dxmesh_tests::{Setup, registry_terms, setup};
use std::sync::Arc;
use std::time::Duration;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

const BIN: &str = env!("CARGO_BIN_EXE_dxmesh-under-test");

/// A client that trusts the provider's console certificate and nothing
/// else, and does not follow redirects (the tests look at them).
fn client(s: &Setup) -> ureq::Agent {
    client_of(&s.ps.dir)
}

/// A client that trusts the console certificate of node directory `dir`.
fn client_of(dir: &std::path::Path) -> ureq::Agent {
    let pem = std::fs::read(dir.join("console/cert.pem")).unwrap();
    let cert = Certificate::from_pem(&pem).unwrap();
    ureq::Agent::config_builder()
        .tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::Specific(Arc::new(vec![cert])))
                .build(),
        )
        .max_redirects(0)
        .max_redirects_will_error(false)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn console_url(s: &Setup) -> String {
    s.pps
        .status()
        .console_url
        .expect("the provider's status names its console")
}

fn add_user(s: &Setup, user: &str, role: &str, password: &str) {
    add_user_at(s, &s.pps, user, role, password);
}

fn add_user_at(s: &Setup, node: &dxmesh_tests::NodeProc, user: &str, role: &str, password: &str) {
    let file = s.mesh.path().join(format!("{user}.pw"));
    std::fs::write(&file, format!("{password}\n")).unwrap();
    node.cli(&[
        "console",
        "user",
        "add",
        "--user",
        user,
        "--role",
        role,
        "--password-file",
        file.to_str().unwrap(),
    ]);
}

/// A logged-in browser: the session cookie and the form token.
#[derive(Debug, PartialEq)]
struct Login {
    cookie: String,
    csrf: String,
}

fn get(agent: &ureq::Agent, url: &str, login: Option<&Login>) -> (u16, String) {
    let mut req = agent.get(url);
    if let Some(l) = login {
        req = req.header("Cookie", &l.cookie);
    }
    let mut r = req.call().unwrap();
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_string().unwrap_or_default())
}

fn post(agent: &ureq::Agent, url: &str, login: &Login, csrf: &str) -> (u16, String) {
    let mut r = agent
        .post(url)
        .header("Cookie", &login.cookie)
        .send_form([("csrf", csrf)])
        .unwrap();
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_string().unwrap_or_default())
}

fn login(agent: &ureq::Agent, base: &str, user: &str, password: &str) -> Result<Login, u16> {
    let r = agent
        .post(format!("{base}login"))
        .send_form([("user", user), ("password", password)])
        .unwrap();
    if r.status().as_u16() != 303 {
        return Err(r.status().as_u16());
    }
    let set = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie")
        .to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("Secure") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let mut l = Login {
        cookie,
        csrf: String::new(),
    };
    let (_, page) = get(agent, &format!("{base}feeds"), Some(&l));
    let at = page.find("name=\"csrf\" value=\"").expect("a form token") + 19;
    l.csrf = page[at..at + 64].to_string();
    Ok(l)
}

#[test]
fn each_role_reads_every_page_and_does_only_what_it_may() {
    let (s, _) = setup(BIN, 100, &registry_terms(2, 10));
    add_user(&s, "admin", "administrator", "admin password 1");
    add_user(&s, "oper", "operator", "operator password");
    add_user(&s, "audit", "auditor", "auditor password");
    let agent = client(&s);
    let base = console_url(&s);
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");

    // Not logged in: every page sends the browser to log in.
    let (code, _) = get(&agent, &format!("{base}agreements"), None);
    assert_eq!(code, 303);
    assert_eq!(login(&agent, &base, "admin", "not the password"), Err(401));
    assert_eq!(login(&agent, &base, "nobody", "admin password 1"), Err(401));

    let thread = &s.thread;
    let detail = format!("agreements/{thread}");
    for (user, password) in [
        ("admin", "admin password 1"),
        ("oper", "operator password"),
        ("audit", "auditor password"),
    ] {
        let l = login(&agent, &base, user, password).unwrap();
        let pages = [
            ("", s.ps.peer_id.as_str()),
            ("peers", s.cmp.peer_id.as_str()),
            ("agreements", "registry"),
            (detail.as_str(), "Transcript"),
            ("feeds", "No feed published and kept on this node."),
            ("refusals", "No refusals since the node started."),
            ("audit", "Latest checkpoint"),
            ("results", "No comparison"),
        ];
        for (path, expect) in pages {
            let (code, body) = get(&agent, &format!("{base}{path}"), Some(&l));
            assert_eq!(code, 200, "{user} /{path}: {body}");
            assert!(body.contains(expect), "{user} /{path} lacks {expect:?}");
            assert!(
                body.contains(&format!("{user} (")),
                "{user} /{path} names the account"
            );
        }
    }

    // One id everywhere: the agreements page lists and links the
    // agreement id (the feeds page's), with short peer ids.
    let l = login(&agent, &base, "audit", "auditor password").unwrap();
    let (_, list) = get(&agent, &format!("{base}agreements"), Some(&l));
    let agreement = &s.agreement;
    // Shown by agreement id, linked by thread (no two negotiations share one).
    assert!(
        list.contains(&format!(
            "href=\"/agreements/{}\"><code>{}</code>",
            s.thread,
            &agreement[..16]
        )),
        "{list}"
    );
    assert!(!list.contains(&s.cmp.peer_id), "{list}");
    let (_, one) = get(&agent, &format!("{base}agreements/{agreement}"), Some(&l));
    assert!(
        one.contains(&format!("<p>agreement {agreement} · registry · ")),
        "{one}"
    );
    assert!(!one.contains(" · </p>"), "{one}");
    // The login page says which node it is.
    let (_, form) = get(&agent, &format!("{base}login"), None);
    assert!(
        form.contains("department public_security, role provider, mesh test-province"),
        "{form}"
    );

    // Each role is shown only the buttons it may use.
    for (user, password, publish, suspend) in [
        ("admin", "admin password 1", true, true),
        ("oper", "operator password", true, false),
        ("audit", "auditor password", false, false),
    ] {
        let l = login(&agent, &base, user, password).unwrap();
        let (_, feeds) = get(&agent, &format!("{base}feeds"), Some(&l));
        assert_eq!(feeds.contains("action=\"/publish\""), publish, "{user}");
        let (_, list) = get(&agent, &format!("{base}agreements"), Some(&l));
        assert_eq!(list.contains("/suspend\""), suspend, "{user}");
    }

    // The auditor changes nothing; the operator publishes but does not
    // touch agreements; a form from another session is refused.
    let audit = login(&agent, &base, "audit", "auditor password").unwrap();
    let (code, body) = post(&agent, &format!("{base}publish"), &audit, &audit.csrf);
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("auditor may not publish"), "{body}");
    let oper = login(&agent, &base, "oper", "operator password").unwrap();
    let suspend = format!("{base}agreements/{}/suspend", &thread[..16]);
    let (code, body) = post(&agent, &suspend, &oper, &oper.csrf);
    assert_eq!(code, 403, "{body}");
    let (code, _) = post(&agent, &format!("{base}publish"), &oper, &audit.csrf);
    assert_eq!(code, 403, "another session's form token");
    let (code, body) = post(&agent, &format!("{base}publish"), &oper, &oper.csrf);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("feeds published"), "{body}");
    let admin = login(&agent, &base, "admin", "admin password 1").unwrap();
    let (code, body) = post(&agent, &suspend, &admin, &admin.csrf);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("suspended"), "{body}");

    // Every login, failure and action is in the audit log.
    let (_, log) = get(&agent, &format!("{base}audit"), Some(&admin));
    // In words: no JSON, no byte arrays.
    for needle in [
        "<td>console login</td>",
        "failed login as",
        "(auditor) asked to publish all active agreements: not allowed",
        "asked to agreement suspend",
    ] {
        assert!(log.contains(needle), "audit page lacks {needle}: {log}");
    }
    assert!(!log.contains("&quot;") && !log.contains(":["), "{log}");
    // Filtered by kind: console actions only.
    let (_, actions) = get(
        &agent,
        &format!("{base}audit?kind=console_action"),
        Some(&admin),
    );
    assert!(actions.contains("asked to agreement suspend"), "{actions}");
    assert!(!actions.contains("<td>console login</td>"), "{actions}");
    // A day with no entries shows none, and says so.
    let (_, none) = get(
        &agent,
        &format!("{base}audit?from=2100-01-01"),
        Some(&admin),
    );
    assert!(none.contains("No entry matches these filters."), "{none}");
    // A day that is not one is refused, saying so.
    let (code, bad) = get(&agent, &format!("{base}audit?to=tomorrow"), Some(&admin));
    assert_eq!(code, 400, "{bad}");
    assert!(
        bad.contains("to &quot;tomorrow&quot;: not a day (YYYY-MM-DD)"),
        "{bad}"
    );

    // Logging out ends the session.
    let (code, _) = post(&agent, &format!("{base}logout"), &admin, &admin.csrf);
    assert_eq!(code, 303);
    let (code, _) = get(&agent, &base, Some(&admin));
    assert_eq!(code, 303);
}

#[test]
fn metrics_parse_and_health_answers() {
    let (s, _) = setup(BIN, 100, &registry_terms(2, 10));
    let agent = client(&s);
    let base = console_url(&s);
    assert_eq!(get(&agent, &format!("{base}healthz"), None).0, 200);
    assert_eq!(
        get(&agent, &format!("{base}readyz"), None),
        (200, "ready\n".into())
    );
    // Five failed logins lock an account out, its right password too;
    // every try is logged and counted.
    add_user(&s, "victim", "operator", "the right password");
    for _ in 0..5 {
        assert_eq!(login(&agent, &base, "victim", "a wrong password"), Err(401));
    }
    assert_eq!(
        login(&agent, &base, "victim", "the right password"),
        Err(429)
    );
    // A failed login and a refused pull are counted.
    let _ = login(&agent, &base, "nobody", "no such account");
    s.pcmp
        .cli_fails(&["pull", "--agreement", &s.agreement[..12]]);
    std::thread::sleep(Duration::from_millis(500));
    let (code, text) = get(&agent, &format!("{base}metrics"), None);
    assert_eq!(code, 200);
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");
    let value = |name: &str, label: Option<(&str, &str)>| {
        scrape
            .samples
            .iter()
            .filter(|m| m.metric == name)
            .filter(|m| label.is_none_or(|(k, v)| m.labels.get(k) == Some(v)))
            .map(|m| match m.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
            .sum::<f64>()
    };
    assert_eq!(
        value("dxmesh_console_logins_total", Some(("outcome", "failed"))),
        7.0,
        "{text}"
    );
    assert_eq!(value("dxmesh_peers_connected", None), 1.0, "{text}");
    assert_eq!(
        value("dxmesh_refusals_total", Some(("code", "not_published"))),
        1.0,
        "{text}"
    );
    assert!(value("dxmesh_audit_log_entries", None) > 3.0, "{text}");
    for name in [
        "dxmesh_pulls_total",
        "dxmesh_pull_bytes_total",
        "dxmesh_chunks_verified_total",
        "dxmesh_ministry_queries_total",
    ] {
        assert!(
            scrape.samples.iter().any(|m| m.metric == name),
            "{name} missing: {text}"
        );
    }
}

/// A person with a browser: Chromium renders the login page (which names
/// the node), the login form is sent as the browser sends it (the fields
/// it rendered), and every page the account reaches is rendered and
/// photographed (`target/screenshots/console-*.png`), with the words a
/// person looks for on it and no raw byte arrays or JSON.
#[test]
fn a_browser_logs_in_and_reads_every_page_in_words() {
    let Some(chromium) = dxmesh_tests::browser::chromium() else {
        return;
    };
    let (s, _) = setup(BIN, 50, &registry_terms(2, 10));
    add_user(&s, "admin", "administrator", "admin password 1");
    let base = console_url(&s);
    let dom = dxmesh_tests::browser::render(chromium, &format!("{base}login"), "console-login");
    assert!(dom.contains("<title>Log in · dxmesh</title>"), "{dom}");
    assert!(
        dom.contains("department public_security, role provider"),
        "{dom}"
    );
    // The form as rendered: where it posts and what it asks.
    assert!(
        dom.contains("<form method=\"post\" action=\"/login\">"),
        "{dom}"
    );
    for field in ["name=\"user\"", "name=\"password\" type=\"password\""] {
        assert!(dom.contains(field), "{field}: {dom}");
    }
    let agent = client(&s);
    let l = login(&agent, &base, "admin", "admin password 1").unwrap();
    let saved = tempfile::tempdir().unwrap();
    let agreement = &s.agreement;
    let pages: [(&str, &[&str]); 8] = [
        ("", &["public_security", "PeerId"]),
        ("peers", &["public_security", "comparator", "connected"]),
        (
            "agreements",
            &["registry", "public_security (…", "comparator (…"],
        ),
        (
            &format!("agreements/{agreement}"),
            &["Transcript", "registry", "propose"],
        ),
        ("feeds", &["Published"]),
        ("refusals", &["No refusals since the node started."]),
        (
            "audit",
            &[
                "console login",
                "admin logged in (administrator)",
                "Latest checkpoint",
            ],
        ),
        ("results", &["No comparison"]),
    ];
    for (k, (path, words)) in pages.iter().enumerate() {
        let (code, html) = get(&agent, &format!("{base}{path}"), Some(&l));
        assert_eq!(code, 200, "/{path}");
        let file = saved.path().join(format!("{k}.html"));
        std::fs::write(&file, &html).unwrap();
        let name = format!(
            "console-{}",
            if path.is_empty() {
                "node"
            } else {
                path.split('/').next().unwrap_or("page")
            }
        );
        let name = if path.contains('/') {
            format!("{name}-one")
        } else {
            name
        };
        let dom =
            dxmesh_tests::browser::render(chromium, &format!("file://{}", file.display()), &name);
        for w in *words {
            assert!(dom.contains(w), "/{path} lacks {w:?}: {dom}");
        }
        assert!(dom.contains("admin (administrator)"), "/{path}");
        assert!(
            !dxmesh_tests::browser::has_byte_array(&dom),
            "/{path}: {dom}"
        );
        assert!(!dom.contains("&quot;"), "/{path} shows JSON: {dom}");
    }
}

/// An administrator logged in, then removed (and another one demoted to
/// auditor): their open sessions are refused on the very next request,
/// and an action through them is not taken. Every response carries the
/// security headers; the console's self-signed certificate is valid for
/// two years from today, not for centuries.
#[test]
fn a_removed_or_demoted_account_is_refused_at_once_and_pages_carry_security_headers() {
    let (s, _) = setup(BIN, 100, &registry_terms(2, 10));
    add_user(&s, "adm2", "administrator", "second admin password");
    add_user(&s, "adm3", "administrator", "third admin password");
    let agent = client(&s);
    let base = console_url(&s);
    let removed = login(&agent, &base, "adm2", "second admin password").unwrap();
    let demoted = login(&agent, &base, "adm3", "third admin password").unwrap();
    let (code, _) = get(&agent, &format!("{base}feeds"), Some(&removed));
    assert_eq!(code, 200);
    s.pps.cli(&["console", "user", "remove", "--user", "adm2"]);
    add_user(&s, "adm3", "auditor", "third admin password");
    for l in [&removed, &demoted] {
        let (code, _) = get(&agent, &format!("{base}feeds"), Some(l));
        assert_eq!(code, 303, "a changed account's session still reads pages");
        let (code, _) = post(&agent, &format!("{base}publish"), l, &l.csrf);
        assert_eq!(code, 401, "a changed account's session still acts");
    }
    // Logged in again, the demoted account has its new role only.
    let again = login(&agent, &base, "adm3", "third admin password").unwrap();
    let (code, _) = post(&agent, &format!("{base}publish"), &again, &again.csrf);
    assert_eq!(code, 403);
    // Headers on a page, on the login form and on an error.
    for (url, who) in [
        (format!("{base}feeds"), Some(&again)),
        (format!("{base}login"), None),
        (format!("{base}agreements/nothing-like-this"), Some(&again)),
    ] {
        let mut req = agent.get(&url);
        if let Some(l) = who {
            req = req.header("Cookie", &l.cookie);
        }
        let r = req.call().unwrap();
        let h = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        assert!(
            h("content-security-policy").contains("frame-ancestors 'none'"),
            "{url}"
        );
        assert_eq!(h("x-frame-options"), "DENY", "{url}");
        assert!(
            h("strict-transport-security").starts_with("max-age="),
            "{url}"
        );
        assert_eq!(h("x-content-type-options"), "nosniff", "{url}");
        assert_eq!(h("cache-control"), "no-store", "{url}");
    }
    let pem = std::fs::read_to_string(s.ps.dir.join("console/cert.pem")).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-enddate"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(pem.as_bytes())?;
            c.wait_with_output()
        });
    if let Ok(out) = out {
        let end = String::from_utf8_lossy(&out.stdout);
        let in_two_years = (dxmesh_tests::day(0)[..4].parse::<u32>().unwrap() + 2).to_string();
        assert!(end.contains(&in_two_years), "{end}");
    }
}

/// Sixty wrong passwords for one account sent at once: each attempt is
/// counted before its password is checked, so at most the five the
/// lock-out allows reach a check (401), the rest are refused before it
/// (429, or 503 when the queue of checks is full); then the right password
/// is refused too until the lock-out ends.
#[test]
fn a_parallel_burst_of_wrong_passwords_gets_at_most_five_checks() {
    let (s, _) = setup(BIN, 100, &registry_terms(2, 10));
    add_user(&s, "target", "administrator", "the right password");
    let base = console_url(&s);
    let agent = client(&s);
    let codes: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..60)
            .map(|i| {
                let (agent, base) = (agent.clone(), base.clone());
                scope.spawn(move || {
                    login(&agent, &base, "target", &format!("wrong password {i}")).unwrap_err()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let checked = codes.iter().filter(|c| **c == 401).count();
    assert!(checked <= 5, "{checked} password checks: {codes:?}");
    assert!(
        codes.iter().all(|c| [401, 429, 503].contains(c)),
        "{codes:?}"
    );
    assert_eq!(
        login(&agent, &base, "target", "the right password"),
        Err(429)
    );
    // The burst came from one address, past its twenty failures: another
    // account, with its right password, is refused from there too (names
    // tried one after another from one place are throttled as well).
    add_user(&s, "colleague", "operator", "colleague's password");
    let mut r = agent
        .post(format!("{base}login"))
        .send_form([("user", "colleague"), ("password", "colleague's password")])
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let page = r.body_mut().read_to_string().unwrap();
    assert!(
        page.contains("too many failed logins from this address"),
        "{page}"
    );
}

/// The comparator's results pages: every comparison it ran, newest first,
/// each with a page of its own (its results, the changes since the cycle
/// before, the files it wrote), and the way back and forth between them.
#[test]
fn the_comparator_lists_every_cycle_with_a_page_each() {
    let (s, _) = setup(BIN, 60, &registry_terms(3, 10_000));
    let job = format!(
        "{}disclose = {{ input = \"registry\", fields = [\"id_number\", \"name\"] }}\n",
        dxmesh_tests::REGISTRY_JOB
    );
    s.pps.cli(&["publish"]);
    s.compare(&job, "cycle-a");
    let n = s.compare(&job, "cycle-b")["results"]["uninsured"]["count"]
        .as_u64()
        .unwrap();
    add_user_at(&s, &s.pcmp, "analyst", "auditor", "analyst password");
    let agent = client_of(&s.cmp.dir);
    let base = s.pcmp.status().console_url.expect("a console");
    let l = login(&agent, &base, "analyst", "analyst password").unwrap();
    let (code, list) = get(&agent, &format!("{base}results"), Some(&l));
    assert_eq!(code, 200);
    assert!(
        list.find("cycle 2</a>").unwrap() < list.find("cycle 1</a>").unwrap(),
        "newest first: {list}"
    );
    assert!(
        list.contains("cycle-b") && list.contains(&format!("uninsured {n}")),
        "{list}"
    );
    let (code, two) = get(&agent, &format!("{base}results/2"), Some(&l));
    assert_eq!(code, 200, "{two}");
    let count = format!("<td>uninsured</td><td>{n}</td>");
    for words in [
        "<h1>Cycle 2</h1>",
        "← cycle 1",
        "uninsured.csv</code>",
        count.as_str(),
    ] {
        assert!(two.contains(words), "{words}: {two}");
    }
    let (code, _) = get(&agent, &format!("{base}results/3"), Some(&l));
    assert_eq!(code, 404);
    // The audit log's pulls link to the feeds they pulled.
    let (_, pulls) = get(
        &agent,
        &format!("{base}audit?kind=pull_completed"),
        Some(&l),
    );
    let anchor = format!("feed-{}-", s.agreement);
    assert!(
        pulls.contains(&format!("<a href=\"/feeds#{anchor}")),
        "{pulls}"
    );
    let (_, feeds) = get(&agent, &format!("{base}feeds"), Some(&l));
    assert!(feeds.contains(&format!("id=\"{anchor}")), "{feeds}");
    // compare writes no report.html (the demo does): none to show.
    let (code, _) = get(&agent, &format!("{base}results/1/report"), Some(&l));
    assert_eq!(code, 404);
}
