//! Test data: dates relative to today, resident ID numbers, a generated
//! household registry and the terms of its feed.

/// Today's date (UTC) as `YYYY-MM-DD`, and `days` from today.
pub fn day(days: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    dxmesh_protocol::date::Date::from_days_since_epoch((now / 86_400) as i64 + days)
        .map(|d| d.to_string())
        .unwrap_or_default()
}

/// Registry terms (2 pulls, 100 records) whose epochs last two days from
/// ten days ago (epoch 5 starts today), each kept three days after it
/// starts: epoch 1 is past its retention.
pub fn short_retention_terms() -> String {
    registry_terms(2, 100)
        .replace("period = \"daily\"", "period = \"P2D\"")
        .replace("window = \"P1D\"", "window = \"P2D\"")
        .replace("retention_days = 90", "retention_days = 3")
        .replace(
            &format!("anchor = \"{}\"", day(-1)),
            &format!("anchor = \"{}\"", day(-10)),
        )
}

/// A terms file for the household registry feed, valid from yesterday for a
/// year, daily cycle anchored yesterday with a whole-day window; its one
/// agreed job is [`REGISTRY_JOB`]'s `uninsured` (every registry token), and
/// at most `quota` records are disclosed per epoch.
pub fn registry_terms(max_pulls: u32, quota: u64) -> String {
    format!(
        r#"dataset = "registry"
token_group = "registration"
purpose_code = "registration/uninsured-outreach"
purpose = "Find registered residents without social insurance."
not_before = "{from}"
not_after = "{until}"
retention_days = 90
fields = [
  {{ name = "id_number", treatment = "token" }},
  {{ name = "name", treatment = "attr_token" }},
  {{ name = "region_code", treatment = "clear" }},
]
rows = [ {{ equals = {{ field = "status", value = "active" }} }}, {{ age_at_least = 16 }} ]
[cycle]
period = "daily"
anchor = "{from}"
window = "P1D"
max_pulls = {max_pulls}
[disclosure]
fields = ["id_number", "name", "address"]
max_records_per_epoch = {quota}
[disclosure.inputs.registry]
dataset = "registry"
provider = "public_security"
[[disclosure.jobs]]
kind = "uninsured"
expr = "registry"
"#,
        from = day(-1),
        until = day(365),
    )
}

/// The terms of [`registry_terms`] (3 pulls, a quota of 1,000,000) between
/// `provider` and `consumer`, written to `dir/terms.toml` and read back.
pub fn registry_feed_terms(
    dir: &std::path::Path,
    provider: &dxmesh_protocol::identity::Identity,
    consumer: &dxmesh_protocol::identity::Identity,
) -> dxmesh_protocol::agreement::Terms {
    let path = dir.join("terms.toml");
    std::fs::write(&path, registry_terms(3, 1_000_000)).expect("terms file");
    dxmesh_node::agreements::terms_file::TermsFile::load(&path)
        .and_then(|t| t.to_terms(&path, Some(provider.public()), Some(consumer.public())))
        .expect("registry terms")
}

/// The comparison job the registry terms agree to: `uninsured` is every
/// token of the registry feed (nothing disclosed by the job itself).
pub const REGISTRY_JOB: &str = r#"order = ["uninsured"]
[inputs.registry]
dataset = "registry"
provider = "public_security"
[results.uninsured]
expr = "registry"
"#;

/// A valid resident ID number: region, birth date `YYYYMMDD`, sequence.
pub fn make_id(region: &str, birth: &str, seq: u32) -> String {
    let body = format!("{region}{birth}{:03}", seq % 1000);
    let check = dxmesh_protocol::id::check_character(body.as_bytes()) as char;
    format!("{body}{check}")
}

/// One row of a generated household registry.
#[derive(Debug, Clone)]
pub struct RegistryRow {
    /// The ID as written in the export (possibly dirty).
    pub raw_id: String,
    /// The normalised ID.
    pub id: String,
    /// Name.
    pub name: String,
    /// Birth date `YYYY-MM-DD`.
    pub birth_date: String,
    /// Region code.
    pub region: String,
    /// Address.
    pub address: String,
    /// active / moved_out / cancelled.
    pub status: String,
}

impl RegistryRow {
    /// Whether the registry feed's row scope (active, 16 or older) keeps it.
    pub fn in_scope(&self) -> bool {
        let year: i32 = self.birth_date[..4].parse().unwrap_or(0);
        self.status == "active" && year <= 2000
    }
}

/// `n` registry rows: mostly active adults born 1940-2000, every 7th a minor
/// (born 2015), every 11th moved out; every 13th ID in a dirty but valid form.
pub fn registry_rows(n: usize) -> Vec<RegistryRow> {
    const SURNAMES: [&str; 8] = ["王", "李", "张", "刘", "陈", "杨", "黄", "赵"];
    (0..n)
        .map(|i| {
            let year = if i % 7 == 3 { 2015 } else { 1940 + (i % 61) };
            let birth = format!("{year}{:02}{:02}", 1 + i % 12, 1 + i % 28);
            let region = format!("4401{:02}", 1 + (i / 1000) % 20);
            let id = make_id(&region, &birth, i as u32);
            let raw_id = match i % 13 {
                5 => id.to_lowercase(),
                6 => format!(" {}\u{3000}", id),
                7 => id
                    .chars()
                    .map(|c| {
                        if c.is_ascii_digit() {
                            char::from_u32(c as u32 + 0xFEE0).unwrap_or(c)
                        } else {
                            c
                        }
                    })
                    .collect(),
                _ => id.clone(),
            };
            RegistryRow {
                raw_id,
                name: format!("{}测{}号", SURNAMES[i % 8], i),
                birth_date: format!("{}-{}-{}", &birth[..4], &birth[4..6], &birth[6..]),
                region,
                address: format!("广州市某区某路{}号{}室", i, i % 100),
                status: if i % 11 == 4 {
                    "moved_out".into()
                } else {
                    "active".into()
                },
                id,
            }
        })
        .collect()
}

/// The registry export as CSV text.
pub fn registry_csv(rows: &[RegistryRow]) -> String {
    let mut s = String::from("id_number,name,gender,birth_date,region_code,address,status\n");
    for r in rows {
        s.push_str(&format!(
            "{},{},,{},{},{},{}\n",
            r.raw_id, r.name, r.birth_date, r.region, r.address, r.status
        ));
    }
    s
}

/// The registry as an input of a committed result: public security's
/// `registry` dataset, unfiltered, read from the feed whose signed
/// manifest has digest `manifest`.
pub fn registry_input(manifest: [u8; 32]) -> dxmesh_protocol::commitment::CommittedInput {
    dxmesh_protocol::commitment::CommittedInput {
        input: dxmesh_protocol::agreement::AgreedInput {
            name: "registry".into(),
            dataset: "registry".into(),
            provider: "public_security".into(),
            filter: vec![],
        },
        manifest,
    }
}
