//! Text helpers shared by the import's stages: trimming what exports put
//! around values, and reading the date forms they write.

use dxmesh_protocol::date::Date;

/// Trims Unicode whitespace (including the ideographic space U+3000) and BOMs.
pub(super) fn clean(s: &str) -> &str {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) if f > b' ' && f < 0x7F && l > b' ' && l < 0x7F => s,
        _ => s.trim_matches(|c: char| c.is_whitespace() || c == '\u{FEFF}'),
    }
}

/// Parses `YYYY-MM-DD`, `YYYYMMDD`, `YYYY/MM/DD` or `YYYY.MM.DD`.
pub(super) fn parse_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    let (y, m, d) = match b.len() {
        8 => (&b[0..4], &b[4..6], &b[6..8]),
        10 if matches!(b[4], b'-' | b'/' | b'.') && b[7] == b[4] => (&b[0..4], &b[5..7], &b[8..10]),
        _ => return None,
    };
    let num = |digits: &[u8]| -> Option<u32> {
        digits.iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    Date::new(
        u16::try_from(num(y)?).ok()?,
        u8::try_from(num(m)?).ok()?,
        u8::try_from(num(d)?).ok()?,
    )
}
