//! The console's views read from the node's files rather than its daemon:
//! feeds published and pulled per epoch (their signed manifests), the
//! refusals (recent ones from the daemon, counts since start from the
//! metrics). The comparator's results are `cycles.rs`'s.

use super::pages::{self, esc};
use super::respond::{error_page, require, show, to_login};
use super::state::State as Shared;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use dxmesh_protocol::codec;
use dxmesh_protocol::feed::Manifest;
use dxmesh_protocol::signed::Signed;
use std::path::Path;
use std::sync::Arc;

type St = State<Arc<Shared>>;

/// `(agreement, epoch, manifest)` of every feed under `DATA_DIR/<kind>/`
/// (`feeds` published, `pulls` pulled), newest epoch first.
fn manifests(data_dir: &Path, kind: &str) -> Vec<(String, u64, Option<Manifest>)> {
    let mut out = Vec::new();
    let Ok(agreements) = std::fs::read_dir(data_dir.join(kind)) else {
        return out;
    };
    for a in agreements.flatten() {
        let Ok(epochs) = std::fs::read_dir(a.path()) else {
            continue;
        };
        for e in epochs.flatten() {
            let Some(epoch) = e.file_name().to_str().and_then(|s| s.parse::<u64>().ok()) else {
                continue;
            };
            let manifest = std::fs::read(e.path().join(crate::base::layout::MANIFEST_FILE))
                .ok()
                .and_then(|b| codec::decode::<Signed<Manifest>>(&b).ok())
                .and_then(|s| codec::decode::<Manifest>(s.body()).ok());
            out.push((
                a.file_name().to_string_lossy().into_owned(),
                epoch,
                manifest,
            ));
        }
    }
    out.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
    out
}

fn feed_rows(
    list: &[(String, u64, Option<Manifest>)],
    complete: impl Fn(&str, u64) -> bool,
) -> Vec<Vec<String>> {
    list.iter()
        .map(|(agreement, epoch, m)| {
            vec![
                format!(
                    "<a href=\"/agreements/{}\"><code id=\"feed-{}-{epoch}\">{}</code></a>",
                    esc(agreement),
                    esc(agreement),
                    esc(&agreement[..agreement.len().min(16)])
                ),
                epoch.to_string(),
                m.as_ref().map_or("-".into(), |m| esc(&m.dataset)),
                m.as_ref().map_or("-".into(), |m| m.records.to_string()),
                m.as_ref()
                    .map_or("-".into(), |m| m.chunk_hashes.len().to_string()),
                if complete(agreement, *epoch) {
                    "<span class=\"ok\">complete</span>".into()
                } else {
                    "<span class=\"note\">incomplete</span>".into()
                },
            ]
        })
        .collect()
}

pub(super) async fn feeds_page(State(st): St, headers: HeaderMap) -> Response {
    let Some(s) = require(&st, &headers) else {
        return to_login();
    };
    let data = st.data_dir.clone();
    let published = manifests(&data, crate::base::layout::FEEDS);
    let pulled = manifests(&data, crate::base::layout::PULLS);
    let head = [
        "agreement",
        "epoch",
        "dataset",
        "records",
        "chunks",
        "state",
    ];
    let publish = if s.role.may(super::accounts::Action::Publish) {
        format!(
            "<form method=\"post\" action=\"/publish\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<button>Publish the current epoch of every active agreement</button></form>",
            esc(&s.csrf)
        )
    } else {
        String::new()
    };
    let published = feed_rows(&published, |_, _| true);
    let pulled = feed_rows(&pulled, |a, e| {
        let agreement: Option<[u8; 32]> = hex::decode(a).ok().and_then(|b| b.try_into().ok());
        agreement.is_some_and(|a| crate::pull::pulls::is_complete(&data, &a, e))
    });
    let listed = |rows: &[Vec<String>], none: &str| {
        if rows.is_empty() {
            format!("<p class=\"note\">{none}</p>")
        } else {
            pages::table(&head, rows)
        }
    };
    let body = format!(
        "{publish}<h2>Published</h2>{}<h2>Pulled</h2>{}",
        listed(&published, "No feed published and kept on this node."),
        listed(&pulled, "No feed pulled and kept on this node."),
    );
    show("Feeds", &s, &body)
}

pub(super) async fn refusals_page(State(st): St, headers: HeaderMap) -> Response {
    let Some(s) = require(&st, &headers) else {
        return to_login();
    };
    let status = match st.status().await {
        Ok(status) => status,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    let counts: Vec<Vec<String>> = st
        .metrics
        .refusal_counts()
        .into_iter()
        .map(|((kind, code, peer), n)| {
            vec![
                esc(&kind),
                esc(&code),
                format!("<code>{}</code>", esc(&peer)),
                n.to_string(),
            ]
        })
        .collect();
    let recent: Vec<Vec<String>> = status
        .refusals
        .iter()
        .rev()
        .map(|r| {
            vec![
                esc(&r.at),
                format!("<code>{}</code>", esc(r.peer_id.as_deref().unwrap_or("-"))),
                esc(r.remote.as_deref().unwrap_or("-")),
                esc(&r.reason),
            ]
        })
        .collect();
    let or_none = |rows: &[Vec<String>], table: String| {
        if rows.is_empty() {
            "<p class=\"note\">No refusals since the node started.</p>".to_string()
        } else {
            table
        }
    };
    let body = format!(
        "<h2>By code and peer, since the node started</h2>{}<h2>Most recent</h2>{}",
        or_none(
            &counts,
            pages::table(&["kind", "code", "peer", "count"], &counts)
        ),
        or_none(
            &recent,
            pages::table(&["at", "peer", "address", "reason"], &recent)
        )
    );
    show("Refusals", &s, &body)
}
