//! Data-quality faults of raw IDs: the forms a row's ID is written in
//! ([`Form`]: full-width, spaces, separators, legacy 15-digit, wrong check
//! character, impossible date, ...), how a row's forms are drawn
//! ([`draw_form`], [`Copies`] for duplicated rows), their bytes
//! ([`put_id`]), the per-file fault counters and the showcase people's
//! forced faults.

use super::rng::Rng;
use dxmesh_protocol::id::check_character;

/// Fault counters, by report name.
pub(super) const FAULT_NAMES: [&str; 12] = [
    "full_width",
    "full_width_x",
    "lowercase_x",
    "whitespace",
    "separator",
    "legacy_15",
    "check_character",
    "invalid_birth_date",
    "exact_duplicate",
    "normalised_duplicate",
    "name_conflict",
    "name_spacing",
];
pub(super) const F_EXACT_DUP: usize = 8;
pub(super) const F_NORM_DUP: usize = 9;
pub(super) const F_NAME_CONFLICT: usize = 10;
pub(super) const F_NAME_SPACING: usize = 11;

/// One forced fault per showcase person (see the module documentation).
pub(super) const SHOWCASE_FORMS: [Form; 9] = [
    Form::FullWidth,
    Form::FullWidthX,
    Form::LowerX,
    Form::Space(2),
    Form::Separator(0),
    Form::Legacy15,
    Form::WrongCheck(b'0'),
    Form::BadDate(0),
    Form::Space(1),
];

/// How one row's raw ID is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Form {
    Clean,
    /// Every character full-width (`Ｘ` included).
    FullWidth,
    /// ASCII digits, full-width `Ｘ`.
    FullWidthX,
    LowerX,
    /// Leading/trailing space or U+3000 (variant 0-4).
    Space(u8),
    /// `-` separators (variant 0-1).
    Separator(u8),
    Legacy15,
    /// This (wrong) check character.
    WrongCheck(u8),
    /// An impossible birth date with a matching check character (variant 0-2).
    BadDate(u8),
}

impl Form {
    /// Whether the raw ID normalises (otherwise the row is quarantined).
    pub(super) fn valid(self) -> bool {
        !matches!(self, Form::WrongCheck(_) | Form::BadDate(_))
    }
    pub(super) fn fault(self) -> Option<usize> {
        match self {
            Form::Clean => None,
            Form::FullWidth => Some(0),
            Form::FullWidthX => Some(1),
            Form::LowerX => Some(2),
            Form::Space(_) => Some(3),
            Form::Separator(_) => Some(4),
            Form::Legacy15 => Some(5),
            Form::WrongCheck(_) => Some(6),
            Form::BadDate(_) => Some(7),
        }
    }
}

const CHECK_CHARS: &[u8; 11] = b"0123456789X";

pub(super) fn draw_form(rng: &mut Rng, id: &[u8; 18], year: u16) -> Form {
    let r = rng.next();
    let v = (r >> 48) as u8;
    let ends_x = id[17] == b'X';
    match r % 100_000 {
        0..120 => {
            let pos = CHECK_CHARS.iter().position(|&c| c == id[17]).unwrap_or(0);
            Form::WrongCheck(CHECK_CHARS[(pos + 1 + usize::from(v % 10)) % 11])
        }
        120..150 => Form::BadDate(v % 3),
        150..550 => Form::FullWidth,
        550..1150 => Form::Space(v % 5),
        1150..1450 => Form::Separator(v % 2),
        1450..2650 if (1900..=1999).contains(&year) => Form::Legacy15,
        10_000..20_000 if ends_x => Form::LowerX,
        20_000..22_000 if ends_x => Form::FullWidthX,
        _ => Form::Clean,
    }
}

pub(super) fn put_id(buf: &mut Vec<u8>, id: &[u8; 18], form: Form) {
    const FW_X: &[u8] = "Ｘ".as_bytes();
    match form {
        Form::Clean => buf.extend_from_slice(id),
        Form::FullWidth => {
            for &b in id {
                if b == b'X' {
                    buf.extend_from_slice(FW_X);
                } else {
                    buf.extend_from_slice(&[0xEF, 0xBC, 0x90 + (b - b'0')]);
                }
            }
        }
        Form::FullWidthX => {
            buf.extend_from_slice(&id[..17]);
            buf.extend_from_slice(FW_X);
        }
        Form::LowerX => {
            buf.extend_from_slice(&id[..17]);
            buf.push(b'x');
        }
        Form::Space(v) => {
            let (pre, post) = match v {
                0 => (" ", ""),
                1 => ("", " "),
                2 => ("\u{3000}", ""),
                3 => ("", "\u{3000}"),
                _ => (" ", "\u{3000}"),
            };
            buf.extend_from_slice(pre.as_bytes());
            buf.extend_from_slice(id);
            buf.extend_from_slice(post.as_bytes());
        }
        Form::Separator(v) => {
            buf.extend_from_slice(&id[..6]);
            buf.push(b'-');
            if v == 0 {
                buf.extend_from_slice(&id[6..14]);
                buf.push(b'-');
                buf.extend_from_slice(&id[14..]);
            } else {
                buf.extend_from_slice(&id[6..]);
            }
        }
        Form::Legacy15 => {
            buf.extend_from_slice(&id[..6]);
            buf.extend_from_slice(&id[8..17]);
        }
        Form::WrongCheck(c) => {
            buf.extend_from_slice(&id[..17]);
            buf.push(c);
        }
        Form::BadDate(v) => {
            let mut x = *id;
            match v {
                0 => x[10..12].copy_from_slice(b"13"),
                1 => x[12..14].copy_from_slice(b"32"),
                _ => x[10..14].copy_from_slice(b"0230"),
            }
            x[17] = check_character(&x[..17]);
            buf.extend_from_slice(&x);
        }
    }
}

/// The raw forms a row is written with (twice for a duplicated row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Copies {
    pub(super) forms: [Form; 2],
    pub(super) n: u8,
}

impl Copies {
    pub(super) const ONE: Copies = Copies {
        forms: [Form::Clean; 2],
        n: 1,
    };
    pub(super) fn valid(&self) -> bool {
        self.forms[..usize::from(self.n)].iter().any(|f| f.valid())
    }
}
