//! The console's HTML: one server-rendered page per view, with its style
//! inline and no scripts or external assets (a console on an isolated
//! network must render as it is). Every value shown goes through [`esc`].

use super::sessions::Session;
use crate::admin::{
    AgreementDetail, AgreementSummary, AuditPage, AuditQuery, ConsoleInfo, StatusInfo,
};

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
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

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1d2733}\
header{background:#1d3557;color:#fff;padding:.6em 1em;display:flex;gap:1.2em;align-items:center}\
header a{color:#fff;text-decoration:none}header form{margin-left:auto}\
main{padding:1em 1.5em}table{border-collapse:collapse;margin:.5em 0 1.5em}\
td,th{border:1px solid #ccd;padding:.25em .6em;text-align:left;vertical-align:top}\
th{background:#eef2f7}pre{background:#f6f8fa;padding:.6em;overflow-x:auto}\
.ok{color:#1a7f37}.bad{color:#b42318}.note{color:#556}code{word-break:break-all}";

/// A whole page: the navigation (with the account and a logout button
/// when logged in) and `body`.
pub fn page(title: &str, session: Option<&Session>, body: &str) -> String {
    let nav = match session {
        Some(s) => format!(
            "<a href=\"/\">Node</a><a href=\"/peers\">Peers</a><a href=\"/agreements\">Agreements</a>\
<a href=\"/feeds\">Feeds</a><a href=\"/refusals\">Refusals</a><a href=\"/audit\">Audit log</a>\
<a href=\"/results\">Results</a><form method=\"post\" action=\"/logout\">\
<input type=\"hidden\" name=\"csrf\" value=\"{}\"><span>{} ({})</span> <button>Log out</button></form>",
            esc(&s.csrf),
            esc(&s.user),
            s.role.name()
        ),
        None => String::new(),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · dxmesh</title>\
<style>{STYLE}</style></head><body><header><strong>dxmesh</strong>{nav}</header>\
<main><h1>{}</h1>{body}</main></body></html>",
        esc(title),
        esc(title)
    )
}

/// The login form, saying which node it is (`node`), with a message
/// after a failed try.
pub fn login(message: Option<&str>, node: &str) -> String {
    let message = message
        .map(|m| format!("<p class=\"bad\">{}</p>", esc(m)))
        .unwrap_or_default();
    page(
        "Log in",
        None,
        &format!(
            "<p class=\"note\">{}</p>{message}<form method=\"post\" action=\"/login\">\
<p><label>Account <input name=\"user\" autocomplete=\"username\" required></label></p>\
<p><label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label></p>\
<p><button>Log in</button></p></form>",
            esc(node)
        ),
    )
}

/// A table with a header row; cells are already escaped HTML.
pub fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut t = String::from("<table><tr>");
    for h in head {
        t.push_str(&format!("<th>{}</th>", esc(h)));
    }
    t.push_str("</tr>");
    for r in rows {
        t.push_str("<tr>");
        for c in r {
            t.push_str(&format!("<td>{c}</td>"));
        }
        t.push_str("</tr>");
    }
    t.push_str("</table>");
    t
}

/// The node page: identity, roster, addresses, the console itself.
pub fn node(s: &StatusInfo) -> String {
    let rows = vec![
        vec!["PeerId".into(), esc(&s.peer_id)],
        vec!["department".into(), esc(&s.department)],
        vec!["role".into(), esc(&s.role)],
        vec!["name".into(), esc(&s.display_name)],
        vec![
            "mesh / roster".into(),
            format!(
                "{} version {}",
                esc(s.mesh.as_deref().unwrap_or("none")),
                s.roster_version
            ),
        ],
        vec!["own admission".into(), esc(&s.self_admission)],
        vec!["listening".into(), esc(&s.listen_addresses.join(" "))],
        vec!["peers connected".into(), s.connected.len().to_string()],
        vec!["uptime".into(), format!("{} s", s.uptime_secs)],
    ];
    format!(
        "{}<h2>Public key</h2><pre>{}</pre>",
        table(&["", ""], &rows),
        esc(&s.public_key_pem)
    )
}

/// The peers page: every roster member, its admission, and whether it is
/// connected now.
pub fn peers(s: &StatusInfo, info: &ConsoleInfo) -> String {
    let rows: Vec<Vec<String>> = info
        .members
        .iter()
        .map(|m| {
            let connected = s.connected.iter().find(|c| c.peer_id == m.peer_id);
            vec![
                esc(&m.department),
                esc(&m.role),
                esc(&m.display_name),
                format!("<code>{}</code>", esc(&m.peer_id)),
                esc(&m.admission),
                match connected {
                    Some(c) => format!(
                        "<span class=\"ok\">connected</span> {}",
                        esc(&c.addresses.join(" "))
                    ),
                    None if m.peer_id == s.peer_id => "this node".into(),
                    None => "<span class=\"note\">not connected</span>".into(),
                },
            ]
        })
        .collect();
    table(
        &["department", "role", "name", "PeerId", "admission", "state"],
        &rows,
    )
}

/// The agreements page: each agreement by its id (the one the feeds,
/// the audit log and the report show), its dataset and parties, its
/// state, its current epoch (reference date, window) and the quotas used
/// in it, with the actions its state and this account's role allow.
pub fn agreements(list: &[AgreementSummary], session: &Session) -> String {
    if list.is_empty() {
        return "<p class=\"note\">No agreement yet: propose one with <code>dxmesh agreement propose</code>.</p>".into();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|a| {
            let used = a.epoch.as_ref().map_or("-".to_string(), |e| e.line());
            vec![
                // Shown by agreement id; linked by thread, which no two
                // negotiations share (the same terms proposed again do).
                format!(
                    "<a href=\"/agreements/{}\"><code>{}</code></a>",
                    esc(&a.thread),
                    esc(&a.agreement[..a.agreement.len().min(16)])
                ),
                esc(&a.dataset),
                esc(&crate::admin::short_party(&a.provider)),
                esc(&crate::admin::short_party(&a.consumer)),
                esc(&a.status),
                esc(&used),
                actions(a, session),
            ]
        })
        .collect();
    table(
        &[
            "agreement",
            "dataset",
            "provider",
            "consumer",
            "state",
            "this epoch",
            "actions",
        ],
        &rows,
    )
}

/// The action buttons for an agreement that its state allows and the
/// session's role may use (both are checked again when a button posts).
fn actions(a: &AgreementSummary, session: &Session) -> String {
    use super::accounts::Action;
    let allowed: &[(&str, Action)] = match a.status.as_str() {
        "proposed" | "countered" => &[("accept", Action::AgreementAccept)],
        "accepted" | "active" => &[("suspend", Action::AgreementSuspend)],
        "suspended" => &[("resume", Action::AgreementResume)],
        _ => &[],
    };
    allowed
        .iter()
        .filter(|(_, action)| session.role.may(*action))
        .map(|(verb, _)| {
            format!(
                "<form method=\"post\" action=\"/agreements/{}/{verb}\" style=\"display:inline\">\
<input type=\"hidden\" name=\"csrf\" value=\"{}\"><button>{verb}</button></form>",
                esc(&a.thread),
                esc(&session.csrf)
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One agreement: its summary, terms and signed transcript.
pub fn agreement(d: &AgreementDetail) -> String {
    let steps: Vec<Vec<String>> = d
        .transcript
        .iter()
        .map(|s| {
            vec![
                s.seq.to_string(),
                esc(&s.at),
                esc(&s.action),
                format!("<code>{}</code>", esc(&s.signer)),
                format!("<code>{}</code>", esc(&s.digest)),
            ]
        })
        .collect();
    let sm = &d.summary;
    let subtitle: Vec<String> = [
        format!("agreement {}", sm.agreement),
        sm.dataset.clone(),
        format!(
            "{} → {}",
            crate::admin::short_party(&sm.provider),
            crate::admin::short_party(&sm.consumer)
        ),
        sm.status.clone(),
        sm.epoch.as_ref().map(|e| e.line()).unwrap_or_default(),
        sm.message.clone(),
    ]
    .into_iter()
    .filter(|f| !f.is_empty())
    .map(|f| esc(&f))
    .collect();
    format!(
        "<p>{}</p><h2>Terms</h2><pre>{}</pre><h2>Transcript</h2>{}",
        subtitle.join(" · "),
        esc(&d.terms_toml),
        table(&["seq", "at", "action", "signer", "digest"], &steps)
    )
}

/// The audit page: size, alerts, retention warnings, the latest
/// checkpoint and its cosignatures, then a page of entries in words
/// (newest first) with the filters that chose them and a link to older
/// ones; each entry links to the agreement it is about.
pub fn audit(info: &ConsoleInfo, page: &AuditPage, q: &AuditQuery) -> String {
    let rows: Vec<Vec<String>> = page
        .lines
        .iter()
        .map(|l| {
            let mut what = esc(&l.what);
            if let Some((id, name)) = &l.agreement {
                what.push_str(&format!(
                    "<br><a href=\"/agreements/{}\">{}</a>",
                    esc(id),
                    esc(name)
                ));
            }
            if let Some(feed) = &l.feed {
                what.push_str(&format!(" · <a href=\"/feeds#{}\">the feed</a>", esc(feed)));
            }
            let kind = if l.kind == "fork_detected" || l.kind.ends_with("refused") {
                format!("<span class=\"bad\">{}</span>", esc(&l.kind_words))
            } else {
                esc(&l.kind_words)
            };
            vec![
                l.seq.to_string(),
                esc(&l.at),
                kind,
                esc(l.party.as_deref().unwrap_or("")),
                what,
            ]
        })
        .collect();
    let cosigs = if info.cosignatures.is_empty() {
        "<p class=\"note\">no cosignature on this checkpoint yet</p>".to_string()
    } else {
        format!("<pre>{}</pre>", esc(&info.cosignatures.join("\n")))
    };
    let retention: String = info
        .retention
        .iter()
        .map(|r| format!("<p class=\"bad\">Retention: {}</p>", esc(r)))
        .collect();
    let entries = if rows.is_empty() && page.older.is_some() {
        "<p class=\"note\">No entry among the latest looked through matches these filters; older ones may (below).</p>".to_string()
    } else if rows.is_empty() {
        "<p class=\"note\">No entry matches these filters.</p>".to_string()
    } else {
        table(
            &["#", "at", "what happened", "other party", "details"],
            &rows,
        )
    };
    let older = match page.older {
        Some(before) => format!(
            "<p><a href=\"/audit?{}\">Older entries</a></p>",
            query_string(&AuditQuery {
                before: Some(before),
                ..q.clone()
            })
        ),
        None => "<p class=\"note\">The first entry of the log is on this page.</p>".into(),
    };
    format!(
        "<p>{} entries; {} fork alerts.</p>{retention}<h2>Entries</h2>{}{entries}{older}\
<h2>Latest checkpoint</h2><pre>{}</pre><h2>Cosignatures</h2>{cosigs}",
        page.size,
        info.alerts,
        audit_filters(q),
        esc(info.checkpoint.as_deref().unwrap_or("none yet")),
    )
}

/// The filter form of the audit page (a GET form: the address says what
/// is shown, and can be kept or sent).
fn audit_filters(q: &AuditQuery) -> String {
    let kinds: String = std::iter::once(("", "every kind"))
        .chain(crate::audit::words::KINDS)
        .map(|(k, w)| {
            let selected = if q.kind.as_deref().unwrap_or("") == k {
                " selected"
            } else {
                ""
            };
            format!("<option value=\"{k}\"{selected}>{}</option>", esc(w))
        })
        .collect();
    let value = |v: &Option<String>| esc(v.as_deref().unwrap_or(""));
    format!(
        "<form method=\"get\" action=\"/audit\"><label>Kind <select name=\"kind\">{kinds}</select></label> \
<label>Party <input name=\"party\" value=\"{}\" placeholder=\"department, name\"></label> \
<label>From <input name=\"from\" type=\"date\" value=\"{}\"></label> \
<label>To <input name=\"to\" type=\"date\" value=\"{}\"></label> <button>Show</button> \
<a href=\"/audit\">all, newest first</a></form>",
        value(&q.party),
        value(&q.from),
        value(&q.to)
    )
}

/// A query's filters as a query string (values percent-encoded).
fn query_string(q: &AuditQuery) -> String {
    let enc = |v: &str| -> String {
        v.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let mut parts = Vec::new();
    for (k, v) in [
        ("kind", &q.kind),
        ("party", &q.party),
        ("from", &q.from),
        ("to", &q.to),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            parts.push(format!("{k}={}", enc(v)));
        }
    }
    if let Some(b) = q.before {
        parts.push(format!("before={b}"));
    }
    esc(&parts.join("&"))
}

/// A short page saying what happened.
pub fn message(ok: bool, text: &str) -> String {
    format!(
        "<p class=\"{}\">{}</p><p><a href=\"/agreements\">Agreements</a> · <a href=\"/feeds\">Feeds</a></p>",
        if ok { "ok" } else { "bad" },
        esc(text)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::AuditLine;

    #[test]
    fn the_audit_page_warns_of_commitments_about_to_lose_their_feeds() {
        let info = ConsoleInfo {
            audit_size: 3,
            checkpoint: None,
            cosignatures: vec![],
            alerts: 0,
            retention: vec![
                "the pulled feed of agreement 0a1b epoch 5 is kept until 2026-12-10 <then>".into(),
            ],
            members: vec![],
        };
        let empty = AuditPage {
            lines: vec![],
            size: 3,
            older: None,
        };
        let page = audit(&info, &empty, &AuditQuery::default());
        assert!(
            page.contains("<p class=\"bad\">Retention: the pulled feed of agreement 0a1b epoch 5 is kept until 2026-12-10 &lt;then&gt;</p>"),
            "{page}"
        );
        assert!(page.contains("No entry matches these filters."), "{page}");
        let quiet = audit(
            &ConsoleInfo {
                retention: vec![],
                ..info
            },
            &empty,
            &AuditQuery::default(),
        );
        assert!(!quiet.contains("Retention:"), "{quiet}");
    }

    #[test]
    fn audit_entries_are_a_table_in_words_linked_to_their_agreement_with_a_next_page() {
        let info = ConsoleInfo {
            audit_size: 120,
            checkpoint: None,
            cosignatures: vec![],
            alerts: 0,
            retention: vec![],
            members: vec![],
        };
        let page = AuditPage {
            lines: vec![AuditLine {
                seq: 119,
                at: "2026-12-08T00:01:02Z".into(),
                kind: "pull_served".into(),
                kind_words: "pull served".into(),
                party: Some("comparator (…KooWab12)".into()),
                what: "epoch 3: comparator pulled manifest abababababab…".into(),
                agreement: Some((
                    "0a1b".repeat(16),
                    "deaths, health → comparator (0a1b0a1b0a1b…)".into(),
                )),
                feed: Some(format!("feed-{}-3", "0a1b".repeat(16))),
            }],
            size: 120,
            older: Some(70),
        };
        let q = AuditQuery {
            kind: Some("pull_served".into()),
            party: Some("comp arator&".into()),
            ..AuditQuery::default()
        };
        let html = audit(&info, &page, &q);
        assert!(
            html.contains("<td>pull served</td><td>comparator (…KooWab12)</td>"),
            "{html}"
        );
        assert!(
            html.contains(&format!(
                "<a href=\"/agreements/{}\">deaths, health → comparator",
                "0a1b".repeat(16)
            )),
            "{html}"
        );
        // The filters stay chosen, and the next page keeps them.
        assert!(
            html.contains(&format!(
                "<a href=\"/feeds#feed-{}-3\">the feed</a>",
                "0a1b".repeat(16)
            )),
            "{html}"
        );
        assert!(
            html.contains("<option value=\"pull_served\" selected>pull served</option>"),
            "{html}"
        );
        assert!(html.contains("value=\"comp arator&amp;\""), "{html}");
        assert!(
            html.contains("<a href=\"/audit?kind=pull_served&amp;party=comp%20arator%26&amp;before=70\">Older entries</a>"),
            "{html}"
        );
        assert!(!html.contains("[224,"), "{html}");
    }

    #[test]
    fn everything_shown_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let p = page("<script>", None, "");
        assert!(!p.contains("<script>"));
        assert!(login(Some("<b>"), "<node>").contains("&lt;b&gt;"));
        assert!(login(None, "<node>").contains("&lt;node&gt;"));
    }
}
