//! The names of GB/T 2260 region codes (an ID number's first six digits):
//! county, prefecture and province, for every code in force and every code
//! retired since 2002 (older ID numbers keep the code of their birthplace
//! as it was). The table is `node/data/regions.tsv`, built into the binary;
//! `node/data/make_regions.py` makes it from its two public sources (see
//! `docs/decisions.md`).

use std::collections::HashMap;
use std::sync::OnceLock;

/// One region code's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// The division's own name (海珠区; 广州市 for a prefecture's code).
    pub name: &'static str,
    /// Its prefecture (empty for a province's code).
    pub city: &'static str,
    /// Its province.
    pub province: &'static str,
    /// The last GB/T 2260 revision that listed it, for a retired code
    /// (`200912`: December 2009); None for a code in force.
    pub retired_after: Option<&'static str>,
}

static TABLE: OnceLock<HashMap<&'static str, Region>> = OnceLock::new();

fn table() -> &'static HashMap<&'static str, Region> {
    TABLE.get_or_init(|| {
        include_str!("../../data/regions.tsv")
            .lines()
            .filter_map(|line| {
                let mut f = line.split('\t');
                let code = f.next()?;
                let region = Region {
                    name: f.next()?,
                    city: f.next()?,
                    province: f.next()?,
                    retired_after: f.next().filter(|r| *r != "current"),
                };
                Some((code, region))
            })
            .collect()
    })
}

/// The names of region `code`, if it is a GB/T 2260 code.
pub fn lookup(code: &str) -> Option<Region> {
    table().get(code).copied()
}

/// A region as people read it: `广州市 海珠区` (the prefecture, then the
/// county), `广州市` for a prefecture's code, with `(retired after
/// 2009-12)` for a retired code; empty for a code no revision lists.
pub fn label(code: &str) -> String {
    let Some(r) = lookup(code) else {
        return String::new();
    };
    let mut text = if r.city.is_empty() || r.city == r.name {
        r.name.to_string()
    } else {
        format!("{} {}", r.city, r.name)
    };
    if let Some(rev) = r.retired_after {
        let (year, month) = rev.split_at(4.min(rev.len()));
        text.push_str(&format!(" (code retired after {year}-{month})"));
    }
    text
}

/// The prefecture a code lies in, by name (the province for a
/// municipality's districts, the province's name for its own code); empty
/// for an unknown code. For grouping.
pub fn city(code: &str) -> &'static str {
    lookup(code).map_or("", |r| if r.city.is_empty() { r.name } else { r.city })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counties_prefectures_and_retired_codes_are_named() {
        assert_eq!(label("440105"), "广州市 海珠区");
        assert_eq!(label("440100"), "广州市");
        assert_eq!(label("110101"), "北京市 东城区");
        assert_eq!(
            label("110103"),
            "北京市 崇文区 (code retired after 2009-12)"
        );
        assert_eq!(label("440000"), "广东省");
        // The residence permits' codes are in force.
        assert_eq!(label("810000"), "香港特别行政区");
        assert_eq!(label("830000"), "台湾居民居住证");
        assert_eq!(label("999999"), "");
        assert_eq!(label(""), "");
        assert_eq!(city("440105"), "广州市");
        assert_eq!(city("441900"), "东莞市");
        assert_eq!(city("999999"), "");
        let r = lookup("440305").unwrap();
        assert_eq!(
            (r.name, r.province, r.retired_after),
            ("南山区", "广东省", None)
        );
    }
}
