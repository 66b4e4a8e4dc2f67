//! The console's HTML: one server-rendered page per view, with its style
//! inline and no scripts or external assets (a console on an isolated
//! network must render as it is). Every value shown goes through [`esc`].

use super::sessions::Session;
use crate::admin::{AgreementDetail, AgreementSummary, ConsoleInfo, StatusInfo};

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
.ok{color:#1a7f37}.bad{color:#b42318}.note{color:#556}";

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

/// The login form, with a message after a failed try.
pub fn login(message: Option<&str>) -> String {
    let message = message
        .map(|m| format!("<p class=\"bad\">{}</p>", esc(m)))
        .unwrap_or_default();
    page(
        "Log in",
        None,
        &format!(
            "{message}<form method=\"post\" action=\"/login\">\
<p><label>Account <input name=\"user\" autocomplete=\"username\" required></label></p>\
<p><label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label></p>\
<p><button>Log in</button></p></form>"
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

/// The agreements page: each agreement's state, its current epoch
/// (reference date, window) and the quotas used in it, with the actions this account's role allows.
pub fn agreements(list: &[AgreementSummary], session: &Session) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|a| {
            let used = a.epoch.as_ref().map_or("-".to_string(), |e| e.line());
            vec![
                format!(
                    "<a href=\"/agreements/{}\"><code>{}</code></a>",
                    esc(&a.thread),
                    esc(&a.thread[..a.thread.len().min(16)])
                ),
                esc(&a.dataset),
                esc(&a.status),
                esc(&a.provider),
                esc(&a.consumer),
                esc(&used),
                actions(&a.thread, session),
            ]
        })
        .collect();
    table(
        &[
            "thread",
            "dataset",
            "state",
            "provider",
            "consumer",
            "quota used",
            "actions",
        ],
        &rows,
    )
}

/// The action buttons for agreement `thread` that the session's role may
/// use (the role is checked again when a button posts).
fn actions(thread: &str, session: &Session) -> String {
    use super::accounts::Action;
    [
        ("accept", Action::AgreementAccept),
        ("suspend", Action::AgreementSuspend),
        ("resume", Action::AgreementResume),
    ]
    .iter()
    .filter(|(_, action)| session.role.may(*action))
    .map(|(a, _)| {
        format!(
            "<form method=\"post\" action=\"/agreements/{}/{a}\" style=\"display:inline\">\
<input type=\"hidden\" name=\"csrf\" value=\"{}\"><button>{a}</button></form>",
            esc(thread),
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
    format!(
        "<p>{} · {} · {}</p><h2>Terms</h2><pre>{}</pre><h2>Transcript</h2>{}",
        esc(&d.summary.dataset),
        esc(&d.summary.status),
        esc(&d.summary.message),
        esc(&d.terms_toml),
        table(&["seq", "at", "action", "signer", "digest"], &steps)
    )
}

/// The audit page: size, the latest checkpoint and its cosignatures, the
/// newest entries.
pub fn audit(info: &ConsoleInfo) -> String {
    let tail: Vec<Vec<String>> = info
        .audit_tail
        .iter()
        .map(|(seq, at, kind, json)| {
            vec![
                seq.to_string(),
                esc(at),
                esc(kind),
                format!("<code>{}</code>", esc(json)),
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
    format!(
        "<p>{} entries; {} fork alerts.</p>{retention}<h2>Latest checkpoint</h2><pre>{}</pre>\
<h2>Cosignatures</h2>{cosigs}<h2>Newest entries</h2>{}",
        info.audit_size,
        info.alerts,
        esc(info.checkpoint.as_deref().unwrap_or("none yet")),
        table(&["seq", "at", "kind", "event"], &tail)
    )
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

    #[test]
    fn the_audit_page_warns_of_commitments_about_to_lose_their_feeds() {
        let info = ConsoleInfo {
            audit_size: 3,
            checkpoint: None,
            cosignatures: vec![],
            audit_tail: vec![],
            alerts: 0,
            retention: vec![
                "the pulled feed of agreement 0a1b epoch 5 is kept until 2026-12-10 <then>".into(),
            ],
            members: vec![],
        };
        let page = audit(&info);
        assert!(
            page.contains("<p class=\"bad\">Retention: the pulled feed of agreement 0a1b epoch 5 is kept until 2026-12-10 &lt;then&gt;</p>"),
            "{page}"
        );
        let quiet = audit(&ConsoleInfo {
            retention: vec![],
            ..info
        });
        assert!(!quiet.contains("Retention:"), "{quiet}");
    }

    #[test]
    fn everything_shown_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let p = page("<script>", None, "");
        assert!(!p.contains("<script>"));
        assert!(login(Some("<b>")).contains("&lt;b&gt;"));
    }
}
