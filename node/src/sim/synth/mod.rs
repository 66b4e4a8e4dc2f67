//! A synthetic province: department exports with realistic proportions and
//! data-quality faults, plus the results a correct comparison must find.
//!
//! [`synth`] writes, under [`SynthOptions::out`]:
//!
//! ```text
//! public_security/registry.csv    id_number,name,gender,birth_date,region_code,address,status
//! civil_affairs/deaths.csv        id_number,name,death_date
//! health/deaths.csv               id_number,death_date
//! disabled_federation/register.csv  id_number,name,category,level,certificate_date
//! hr/insured.csv                  id_number,name,insurance_type,status,since
//! ministry/national.csv           id_number,province_code,insurance_type
//! expected/uninsured.csv          id_number,name,address
//! expected/deceased_insured.csv   id_number,name,insurance_type
//! expected/disabled_uninsured.csv id_number,name,address
//! expected/name_conflicts.csv     id_number,name
//! expected/coverage.csv           region_code,eligible,covered
//! expected/summary.json           the SynthReport
//! ```
//!
//! Every file is UTF-8 CSV with a header line; existing files are
//! overwritten. Nothing is fsynced: the output is a test fixture.
//!
//! ## Determinism
//!
//! Person `i` is a pure function of `(seed, i)` (a SplitMix64 stream keyed by
//! both) and of a 16-bit slot that a sequential first pass assigns to make
//! ID numbers unique: the first pass counts people per (birth region, birth
//! date, gender) and gives each its own sequence number (shifting the birth
//! date a day earlier in the practically impossible case of 500 people in
//! one bucket). The same options therefore give byte-identical files, and two
//! threads can each regenerate every person and write different departments:
//! one writes the registry, the death and disability registers, the ministry
//! index and the expected results, the other the HR file (the largest).
//!
//! ## The population
//!
//! Residents (`residents` of them, each with a household-registry row) have
//! a Chinese name, an age from a coarse population pyramid (about 85 % aged
//! 16 or more), a registry county among the home province's counties and a
//! birth region (the ID's first six digits) that is the same county for most,
//! another home county or another province for migrants, and a retired code
//! for a few old people. About 1 % die within the three years before the
//! reference date (recorded by civil affairs, health or both; 70 % still have
//! an `active` registry row; a quarter of those with a pension keep it
//! `active`: the fraud case); about 1 % of registry rows are `moved_out` or
//! `cancelled` (moves out of the province, moves between counties, living
//! cancellations) and 0.2 % of people hold two `active` registrations in two
//! counties. About 2 % are in the disability register (and are uninsured three
//! times as often). Of living adults, about 4.7 % are insured nowhere (no HR
//! rows, medical only, or a suspended or terminated pension), 2.35 % have a
//! pension in another province only, and the rest an `active` enterprise or
//! resident pension here (with the matching medical, unemployment, work-injury
//! and maternity rows; 0.3 % are insured in another province as well). A
//! further 5 % of `residents` are workers from other provinces (and Hong Kong,
//! Macao and Taiwan permit holders) insured here but absent from the registry.
//! The ministry index holds the province's active pension records (province
//! code = home province) and the other-province pensions of its people.
//!
//! ## Data-quality faults
//!
//! Each row's raw ID is, independently: full-width digits (0.4 %), leading or
//! trailing spaces including U+3000 (0.6 %), separators (0.3 %), the legacy
//! 15-digit form (1.2 % of rows of people born 1900-1999, and only those),
//! lowercase `x` (10 % of IDs ending in `X`), full-width `Ｘ` (2 % of them),
//! a wrong check character (0.12 %) or an impossible birth date with a
//! matching check character (0.03 %). 0.25 % of rows are written twice,
//! 60 % of them as exact duplicates. 0.2 % of HR people carry a different
//! name (another given character) and 0.3 % of living HR people the same name
//! with a space or U+3000 inside (no conflict after
//! [`normalize_attr`]). In provinces of 200 residents or more, the
//! first nine are "showcase" people with one fault each in every row of every
//! file (so each fault occurs in each file), and the next three are born on
//! the 16th-birthday boundary and on 29 February.
//!
//! ## Expected results
//!
//! Computed from the ground truth with the comparison rules: a row whose raw
//! ID cannot be normalised (wrong check character, impossible date) does not
//! exist; every other raw ID stands for the true 18-digit number. With R the
//! reference date and "pension" meaning `enterprise_pension` or
//! `resident_pension`:
//!
//! * `registry_scope`: IDs with an `active` registry row, aged 16 or more at R
//!   (from the ID's birth date; [`Date::age_on`]).
//! * `deceased`: IDs in either death register.
//! * `pension_insured`: IDs with an `active` pension row in HR.
//! * `other_province`: IDs with a pension in the ministry index under another
//!   province code.
//! * `uninsured` = scope − pension_insured − deceased − other_province: one
//!   line per distinct (name, address) of the ID's active registry rows.
//! * `deceased_insured` = pension_insured ∩ deceased: one line per distinct
//!   (HR name, pension type) of its active pension rows.
//! * `disabled_uninsured` = uninsured ∩ disability register.
//! * `name_conflicts`: IDs in scope with an active HR row whose set of active
//!   registry names and set of active HR names differ after
//!   [`normalize_attr`]: one line per registry name.
//! * `coverage`: per registry county of the scope rows (an ID counts in each
//!   county it has active rows in): eligible = scope − deceased, covered =
//!   eligible − uninsured.
//!
//! Lists are sorted by line (so by ID number first).

use dxmesh_protocol::date::Date;
use dxmesh_protocol::id::check_character;
use dxmesh_protocol::token::normalize_attr;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Largest number of residents [`synth`] accepts (more than any province has).
pub const MAX_RESIDENTS: u64 = 200_000_000;

/// The department files, relative to the output directory, with their headers.
pub const DEPARTMENT_FILES: [(&str, &str); 6] = [
    (REGISTRY.0, REGISTRY.1),
    (CIVIL_DEATHS.0, CIVIL_DEATHS.1),
    (HEALTH_DEATHS.0, HEALTH_DEATHS.1),
    (DISABILITY.0, DISABILITY.1),
    (HR.0, HR.1),
    (NATIONAL.0, NATIONAL.1),
];

/// The expected-result CSV files, relative to the output directory, with their headers.
pub const EXPECTED_FILES: [(&str, &str); 5] = [
    (UNINSURED.0, UNINSURED.1),
    (DECEASED_INSURED.0, DECEASED_INSURED.1),
    (DISABLED_UNINSURED.0, DISABLED_UNINSURED.1),
    (NAME_CONFLICTS.0, NAME_CONFLICTS.1),
    (COVERAGE.0, COVERAGE.1),
];

/// The summary file (the [`SynthReport`] as JSON), relative to the output directory.
pub const SUMMARY_FILE: &str = "expected/summary.json";

const REGISTRY: (&str, &str) = (
    "public_security/registry.csv",
    "id_number,name,gender,birth_date,region_code,address,status",
);
const CIVIL_DEATHS: (&str, &str) = ("civil_affairs/deaths.csv", "id_number,name,death_date");
const HEALTH_DEATHS: (&str, &str) = ("health/deaths.csv", "id_number,death_date");
const DISABILITY: (&str, &str) = (
    "disabled_federation/register.csv",
    "id_number,name,category,level,certificate_date",
);
const HR: (&str, &str) = (
    "hr/insured.csv",
    "id_number,name,insurance_type,status,since",
);
const NATIONAL: (&str, &str) = (
    "ministry/national.csv",
    "id_number,province_code,insurance_type",
);
const UNINSURED: (&str, &str) = ("expected/uninsured.csv", "id_number,name,address");
const DECEASED_INSURED: (&str, &str) = (
    "expected/deceased_insured.csv",
    "id_number,name,insurance_type",
);
const DISABLED_UNINSURED: (&str, &str) =
    ("expected/disabled_uninsured.csv", "id_number,name,address");
const NAME_CONFLICTS: (&str, &str) = ("expected/name_conflicts.csv", "id_number,name");
const COVERAGE: (&str, &str) = ("expected/coverage.csv", "region_code,eligible,covered");

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthOptions {
    /// Residents in the household registry (at most [`MAX_RESIDENTS`]).
    pub residents: u64,
    /// Output directory (created if missing; files in it are overwritten).
    pub out: PathBuf,
    /// Seed: the same options give byte-identical files.
    pub seed: u64,
    /// The cycle's reference date (1980-01-01 or later): ages and recent
    /// deaths are relative to it, and no one is born after it.
    pub reference: Date,
    /// Two-digit code of the home province (`"44"`).
    pub home_province: String,
}

/// Sizes of the expected result sets (distinct ID numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ExpectedCounts {
    /// IDs with an active registry row, aged 16 or more at the reference date.
    pub registry_scope: u64,
    /// IDs in a death register.
    pub deceased: u64,
    /// IDs with an active pension row in HR.
    pub pension_insured: u64,
    /// IDs with a pension in the ministry index under another province.
    pub other_province: u64,
    /// IDs in the uninsured list.
    pub uninsured: u64,
    /// IDs in the deceased-but-insured list.
    pub deceased_insured: u64,
    /// IDs in the disabled-and-uninsured list.
    pub disabled_uninsured: u64,
    /// IDs in the name-conflict list.
    pub name_conflicts: u64,
    /// IDs that only the ministry index removes from the uninsured list.
    pub removed_other_province: u64,
}

/// What [`synth`] wrote; also written as `expected/summary.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SynthReport {
    /// The seed.
    pub seed: u64,
    /// Residents generated (registry people; workers from elsewhere come on top).
    pub residents: u64,
    /// The reference date.
    #[serde(serialize_with = "serialize_date")]
    pub reference: Date,
    /// The home province code.
    pub home_province: String,
    /// Sizes of the expected result sets.
    pub counts: ExpectedCounts,
    /// Data rows (header excluded) of every CSV written, by path relative to the output directory.
    pub files: BTreeMap<String, u64>,
    /// Per department file, rows carrying each fault (`full_width`,
    /// `check_character`, `exact_duplicate`, `name_conflict`, ...).
    pub faults: BTreeMap<String, BTreeMap<String, u64>>,
}

fn serialize_date<S: serde::Serializer>(d: &Date, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(d)
}

/// Why [`synth`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SynthError {
    /// The options cannot be honoured.
    #[error("invalid synth options: {0}")]
    Options(String),
    /// Too many people share a birth region, date and gender for unique ID numbers.
    #[error("too many people share a birth region, date and gender to give them unique ID numbers")]
    TooDense,
    /// A file or directory could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The summary could not be encoded.
    #[error("encoding the summary: {0}")]
    Json(#[from] serde_json::Error),
    /// A generator thread panicked.
    #[error("a generator thread panicked")]
    Panicked,
}

fn io_err(path: &Path, source: io::Error) -> SynthError {
    SynthError::Io {
        path: path.to_path_buf(),
        source,
    }
}

// ---------------------------------------------------------------------------
// Tables

/// Home-province counties: code suffix (after the province code), the
/// district's name (used in addresses when the home province is 44), weight.
const COUNTIES: [(&str, &str, u32); 37] = [
    ("0103", "广州市荔湾区", 8),
    ("0104", "广州市越秀区", 10),
    ("0105", "广州市海珠区", 16),
    ("0106", "广州市天河区", 20),
    ("0111", "广州市白云区", 30),
    ("0112", "广州市黄埔区", 12),
    ("0113", "广州市番禺区", 25),
    ("0114", "广州市花都区", 16),
    ("0115", "广州市南沙区", 8),
    ("0117", "广州市从化区", 7),
    ("0118", "广州市增城区", 14),
    ("0303", "深圳市罗湖区", 10),
    ("0304", "深圳市福田区", 15),
    ("0305", "深圳市南山区", 18),
    ("0306", "深圳市宝安区", 45),
    ("0307", "深圳市龙岗区", 40),
    ("0308", "深圳市盐田区", 2),
    ("0402", "珠海市香洲区", 12),
    ("0507", "汕头市龙湖区", 6),
    ("0604", "佛山市禅城区", 11),
    ("0605", "佛山市南海区", 37),
    ("0606", "佛山市顺德区", 32),
    ("0703", "江门市蓬江区", 9),
    ("0802", "湛江市赤坎区", 3),
    ("0902", "茂名市茂南区", 9),
    ("1202", "肇庆市端州区", 5),
    ("1302", "惠州市惠城区", 15),
    ("1402", "梅州市梅江区", 4),
    ("1502", "汕尾市城区", 5),
    ("1602", "河源市源城区", 5),
    ("1702", "阳江市江城区", 7),
    ("1802", "清远市清城区", 8),
    ("1900", "东莞市", 105),
    ("2000", "中山市", 44),
    ("5102", "潮州市湘桥区", 4),
    ("5202", "揭阳市榕城区", 9),
    ("5302", "云浮市云城区", 3),
];
/// A retired county code suffix (Chenghai county), for some old natives.
const RETIRED_SUFFIX: &str = "0583";
/// A retired county code suffix reserved for the showcase people (the
/// standard's own example region), so their IDs never collide.
const SHOWCASE_SUFFIX: &str = "0524";
/// Birth regions in other provinces (filtered against the home province).
const OTHER_REGIONS: [&str; 14] = [
    "430102", "430521", "450102", "452501", "360102", "362101", "350102", "510104", "420102",
    "411302", "522601", "460105", "110105", "310101",
];
/// Provinces pensions elsewhere are recorded under (filtered against the home province).
const OTHER_PROVINCES: [&str; 11] = [
    "11", "31", "35", "36", "41", "42", "43", "45", "46", "51", "52",
];
/// Hong Kong, Macao and Taiwan residence permits.
const PERMIT_REGIONS: [&str; 3] = ["810000", "820000", "830000"];

const SURNAMES: &str = "王 李 张 刘 陈 杨 黄 赵 吴 周 徐 孙 马 朱 胡 郭 何 高 林 罗 郑 梁 谢 宋 \
     唐 许 韩 冯 邓 曹 彭 曾 肖 田 董 袁 潘 于 蒋 蔡 余 杜 叶 程 苏 魏 吕 丁 \
     任 沈 姚 卢 姜 崔 钟 谭 陆 汪 范 金 石 廖 贾 夏 韦 付 方 白 邹 孟 熊 秦 \
     邱 江 尹 薛 闫 段 雷 侯 龙 史 陶 黎 贺 顾 毛 郝 龚 邵 万 钱 严 覃 武 戴 \
     莫 孔 向 汤";
const COMPOUND_SURNAMES: &str = "欧阳 司马 上官 诸葛 司徒 东方";
const GIVEN_MALE: &str = "伟 强 磊 军 勇 杰 涛 超 刚 平 辉 鹏 飞 鑫 波 斌 浩 凯 健 俊 帆 帅 旭 龙 \
     峰 建 国 志 东 海 成 亮 坤 彬 豪 锋 振 荣 贤 昌 伦 铭 毅 翔 栋 权 威 雄";
const GIVEN_FEMALE: &str = "芳 娜 敏 静 丽 艳 娟 霞 燕 玲 桂 英 秀 兰 萍 红 婷 雪 琳 晶 洁 颖 倩 慧 \
     莉 梅 琴 璐 欣 怡 悦 雅 婉 瑶 蕾 薇 凤 珍 妍 茜 蓉 丹 露 珊 菲 琪 岚 莹";
const GIVEN_NEUTRAL: &str = "小 晓 文 子 一 嘉 思 宇 天 永 春 秋 德 明 新 金 玉 安 家 华 佳 俊 少 立 \
     志 建 丽 美 世 庆 锦 雨";
const STREETS: &str = "中山路 解放路 人民路 建设路 新华路 和平路 东风路 文化路 沿江路 环市路 \
     天河路 黄埔大道 工业大道 江南大道 滨江路 广州大道 深南大道 北京路 青年路 花园路 \
     学府路 健康路 友谊路 朝阳路 光明路 幸福路 长安路 迎宾路 府前路 南华路 \
     岭南大道 珠江路 海滨路 桂花路 荔枝路 凤凰路 榕树街 石牌街 龙口街 新港路";
const VILLAGES: &str = "石岗村 新围村 上塘村 下沙村 大岭村 白石村 龙田村 黄竹村 东坑村 西岸村 \
     南村 北约村 田心村 塘尾村 凤岗村 水口村 岭头村 坑口村 沙湾村 鹤山村";
const DISABILITY_CATEGORIES: [(&str, u32); 7] = [
    ("physical", 48),
    ("visual", 12),
    ("hearing", 14),
    ("speech", 2),
    ("intellectual", 9),
    ("mental", 9),
    ("multiple", 6),
];

const INSURANCE_TYPES: [&str; 7] = [
    "enterprise_pension",
    "resident_pension",
    "employee_medical",
    "resident_medical",
    "unemployment",
    "work_injury",
    "maternity",
];
const EP: u8 = 0;
const RP: u8 = 1;
const EM: u8 = 2;
const RM: u8 = 3;
const UN: u8 = 4;
const WI: u8 = 5;
const MA: u8 = 6;

fn is_pension(ty: u8) -> bool {
    ty == EP || ty == RP
}

const REG_STATUS: [&str; 3] = ["active", "moved_out", "cancelled"];
const HR_STATUS: [&str; 3] = ["active", "suspended", "terminated"];
const ACTIVE: u8 = 0;
const MOVED_OUT: u8 = 1;
const CANCELLED: u8 = 2;
const SUSPENDED: u8 = 1;
const TERMINATED: u8 = 2;

/// Fault counters, by report name.
const FAULT_NAMES: [&str; 12] = [
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
const F_EXACT_DUP: usize = 8;
const F_NORM_DUP: usize = 9;
const F_NAME_CONFLICT: usize = 10;
const F_NAME_SPACING: usize = 11;

/// One forced fault per showcase person (see the module documentation).
const SHOWCASE_FORMS: [Form; 9] = [
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
/// Residents needed before showcase and boundary people are generated.
const SHOWCASE_MIN_RESIDENTS: u64 = 200;
/// People on the 16th-birthday boundary (after the showcase people).
const EDGE_PEOPLE: u64 = 3;
/// Workers from elsewhere, per resident.
const WORKER_SHARE: f64 = 0.05;
/// People per (region, date, gender) bucket: sequence numbers 000-999 by parity.
const BUCKET: u16 = 500;
/// Furthest a birth date is shifted to find a bucket with room.
const MAX_SHIFT: u16 = 60;

// ---------------------------------------------------------------------------
// Random numbers

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix64(self.0)
    }
    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    /// Uniform in `lo..=hi` (`lo <= hi`).
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------------------
// Raw ID forms

/// How one row's raw ID is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
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
    fn valid(self) -> bool {
        !matches!(self, Form::WrongCheck(_) | Form::BadDate(_))
    }
    fn fault(self) -> Option<usize> {
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

fn draw_form(rng: &mut Rng, id: &[u8; 18], year: u16) -> Form {
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

fn put_id(buf: &mut Vec<u8>, id: &[u8; 18], form: Form) {
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
struct Copies {
    forms: [Form; 2],
    n: u8,
}

impl Copies {
    const ONE: Copies = Copies {
        forms: [Form::Clean; 2],
        n: 1,
    };
    fn valid(&self) -> bool {
        self.forms[..usize::from(self.n)].iter().any(|f| f.valid())
    }
}

// ---------------------------------------------------------------------------
// People

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Name {
    surname: &'static str,
    given: [&'static str; 2],
    n_given: u8,
    /// Between surname and given name: empty, or spacing noise.
    gap: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Address {
    rural: bool,
    place: u8,
    number: u16,
    building: u8,
    room: u16,
}

#[derive(Debug, Clone, Copy)]
struct RegRow {
    county: u8,
    address: Address,
    status: u8,
    ids: Copies,
}

#[derive(Debug, Clone, Copy)]
struct DeathRow {
    date: Date,
    ids: Copies,
}

#[derive(Debug, Clone, Copy)]
struct DisRow {
    category: u8,
    level: u8,
    date: Date,
    ids: Copies,
}

#[derive(Debug, Clone, Copy)]
struct HrRow {
    ty: u8,
    status: u8,
    since: Date,
    ids: Copies,
}

#[derive(Debug, Clone, Copy)]
struct NatRow {
    province: [u8; 2],
    ty: u8,
    ids: Copies,
}

/// A fixed-capacity list.
#[derive(Debug, Clone, Copy)]
struct Small<T: Copy, const N: usize> {
    items: [T; N],
    len: usize,
}

impl<T: Copy, const N: usize> Small<T, N> {
    fn new(fill: T) -> Self {
        Small {
            items: [fill; N],
            len: 0,
        }
    }
    fn push(&mut self, t: T) {
        debug_assert!(self.len < N, "Small capacity exceeded");
        if self.len < N {
            self.items[self.len] = t;
            self.len += 1;
        }
    }
    fn as_slice(&self) -> &[T] {
        &self.items[..self.len]
    }
    fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.items[..self.len]
    }
}

/// Name variant in HR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HrName {
    Same,
    Conflict,
    Spaced,
}

#[derive(Debug, Clone)]
struct Person {
    id: [u8; 18],
    birth: Date,
    male: bool,
    name: Name,
    hr_name: Name,
    hr_variant: HrName,
    regs: Small<RegRow, 3>,
    civil: Option<DeathRow>,
    health: Option<DeathRow>,
    disability: Option<DisRow>,
    hr: Small<HrRow, 8>,
    national: Small<NatRow, 4>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Resident,
    Edge(u8),
    Worker,
    Showcase(u8),
}

/// What the first pass needs: everything that decides the ID's bucket.
#[derive(Debug, Clone, Copy)]
struct Core {
    kind: Kind,
    /// Index into `Ctx::regions`.
    region: usize,
    /// Registry county (index into `Ctx::counties`).
    county: usize,
    birth_days: i64,
    male: bool,
}

/// Everything derived from the options.
struct Ctx {
    seed_key: u64,
    residents: u64,
    total: u64,
    showcase: u64,
    edges: u64,
    reference: Date,
    r_days: i64,
    min_days: i64,
    ndays: usize,
    home: [u8; 2],
    /// Home county codes.
    counties: Vec<[u8; 6]>,
    county_cum: Vec<u32>,
    district_names: bool,
    /// Birth regions: the counties, then retired, showcase, other provinces, permits.
    regions: Vec<[u8; 6]>,
    idx_retired: usize,
    idx_showcase: usize,
    other_start: usize,
    other_len: usize,
    permit_start: usize,
    other_provinces: Vec<[u8; 2]>,
    /// Dates from `min_days` to `r_days`, by day.
    dates: Vec<Date>,
    surnames: Vec<&'static str>,
    compound_surnames: Vec<&'static str>,
    given_male: Vec<&'static str>,
    given_female: Vec<&'static str>,
    given_neutral: Vec<&'static str>,
    streets: Vec<&'static str>,
    villages: Vec<&'static str>,
}

fn code6(s: &str) -> [u8; 6] {
    let mut c = [0u8; 6];
    c.copy_from_slice(&s.as_bytes()[..6]);
    c
}

fn words(list: &'static str) -> Vec<&'static str> {
    list.split_whitespace().collect()
}

impl Ctx {
    fn new(opts: &SynthOptions) -> Result<Ctx, SynthError> {
        let h = opts.home_province.as_bytes();
        if h.len() != 2 || !(b'1'..=b'9').contains(&h[0]) || !h[1].is_ascii_digit() {
            return Err(SynthError::Options(format!(
                "home province {:?} must be two digits, 10-99",
                opts.home_province
            )));
        }
        if opts.residents > MAX_RESIDENTS {
            return Err(SynthError::Options(format!(
                "{} residents; at most {MAX_RESIDENTS}",
                opts.residents
            )));
        }
        if opts.reference.year() < 1980 {
            return Err(SynthError::Options(format!(
                "reference date {} is before 1980-01-01",
                opts.reference
            )));
        }
        let home = [h[0], h[1]];
        let prefixed = |suffix: &str| {
            let mut c = [0u8; 6];
            c[..2].copy_from_slice(&home);
            c[2..].copy_from_slice(suffix.as_bytes());
            c
        };
        let counties: Vec<[u8; 6]> = COUNTIES.iter().map(|c| prefixed(c.0)).collect();
        let mut county_cum = Vec::with_capacity(COUNTIES.len());
        let mut acc = 0;
        for c in COUNTIES {
            acc += c.2;
            county_cum.push(acc);
        }
        let mut regions = counties.clone();
        let idx_retired = regions.len();
        regions.push(prefixed(RETIRED_SUFFIX));
        let idx_showcase = regions.len();
        regions.push(prefixed(SHOWCASE_SUFFIX));
        let other_start = regions.len();
        regions.extend(
            OTHER_REGIONS
                .iter()
                .filter(|r| r.as_bytes()[..2] != home)
                .map(|r| code6(r)),
        );
        let other_len = regions.len() - other_start;
        let permit_start = regions.len();
        regions.extend(
            PERMIT_REGIONS
                .iter()
                .filter(|r| r.as_bytes()[..2] != home)
                .map(|r| code6(r)),
        );
        let other_provinces = OTHER_PROVINCES
            .iter()
            .filter(|p| p.as_bytes() != home)
            .map(|p| [p.as_bytes()[0], p.as_bytes()[1]])
            .collect();
        let r_days = opts.reference.days_since_epoch();
        // Ages reach 104, plus the bucket shifts.
        let min_days = r_days - 107 * 366;
        let workers = (opts.residents as f64 * WORKER_SHARE).round() as u64;
        let showcase = if opts.residents >= SHOWCASE_MIN_RESIDENTS {
            SHOWCASE_FORMS.len() as u64
        } else {
            0
        };
        let edges = if showcase > 0 { EDGE_PEOPLE } else { 0 };
        Ok(Ctx {
            seed_key: mix64(opts.seed ^ 0xD1B5_4A32_D192_ED03),
            residents: opts.residents,
            total: opts.residents + workers,
            showcase,
            edges,
            reference: opts.reference,
            r_days,
            min_days,
            ndays: (r_days - min_days + 1) as usize,
            home,
            counties,
            county_cum,
            district_names: home == *b"44",
            regions,
            idx_retired,
            idx_showcase,
            other_start,
            other_len,
            permit_start,
            other_provinces,
            dates: (min_days..=r_days)
                .map(|d| Date::from_days_since_epoch(d).expect("after 1870"))
                .collect(),
            surnames: words(SURNAMES),
            compound_surnames: words(COMPOUND_SURNAMES),
            given_male: words(GIVEN_MALE),
            given_female: words(GIVEN_FEMALE),
            given_neutral: words(GIVEN_NEUTRAL),
            streets: words(STREETS),
            villages: words(VILLAGES),
        })
    }

    /// Given-name characters for a gender.
    fn given(&self, male: bool) -> &[&'static str] {
        if male {
            &self.given_male
        } else {
            &self.given_female
        }
    }

    /// The date `days` after 1970-01-01 (a table lookup in the generated range).
    fn date(&self, days: i64) -> Date {
        match usize::try_from(days - self.min_days)
            .ok()
            .and_then(|k| self.dates.get(k))
        {
            Some(d) => *d,
            None => Date::from_days_since_epoch(days).expect("dates stay after 1870"),
        }
    }

    fn rng(&self, i: u64) -> Rng {
        Rng(mix64(self.seed_key ^ i.wrapping_mul(GOLDEN)))
    }

    fn pick_county(&self, rng: &mut Rng) -> usize {
        let total = *self.county_cum.last().expect("counties");
        let x = rng.below(u64::from(total)) as u32;
        self.county_cum.partition_point(|&c| c <= x)
    }

    fn other_county(&self, rng: &mut Rng, c: usize) -> usize {
        let n = self.counties.len();
        (c + 1 + rng.below(n as u64 - 1) as usize) % n
    }

    fn bucket(&self, region: usize, days: i64, male: bool) -> Option<usize> {
        if days < self.min_days || days > self.r_days {
            return None;
        }
        Some(((region * self.ndays + (days - self.min_days) as usize) << 1) | usize::from(male))
    }

    fn n_buckets(&self) -> usize {
        self.regions.len() * self.ndays * 2
    }
}

/// Population pyramid: age bands (inclusive years) and weights per mille.
const AGE_BANDS: [(i64, i64, u64); 7] = [
    (0, 15, 150),
    (16, 29, 170),
    (30, 44, 210),
    (45, 59, 240),
    (60, 74, 160),
    (75, 89, 60),
    (90, 104, 10),
];

fn years_days(years: i64) -> i64 {
    years * 365 + years / 4
}

fn core(ctx: &Ctx, i: u64, rng: &mut Rng) -> Core {
    if i < ctx.showcase {
        let j = i as usize;
        let birth = Date::new(1950, 1, 1)
            .expect("valid date")
            .days_since_epoch()
            + 41 * j as i64;
        return Core {
            kind: Kind::Showcase(j as u8),
            region: ctx.idx_showcase,
            county: j % ctx.counties.len(),
            birth_days: birth,
            male: j.is_multiple_of(2),
        };
    }
    let male = rng.next() & 1 == 1;
    let county = ctx.pick_county(rng);
    if i >= ctx.residents {
        let r = rng.below(100);
        let region = if r < 3 && ctx.permit_start < ctx.regions.len() {
            ctx.permit_start + rng.below((ctx.regions.len() - ctx.permit_start) as u64) as usize
        } else {
            ctx.other_start + rng.below(ctx.other_len as u64) as usize
        };
        let birth_days = ctx.r_days - rng.range(years_days(18) + 1, years_days(60) - 1);
        return Core {
            kind: Kind::Worker,
            region,
            county,
            birth_days,
            male,
        };
    }
    let (kind, birth_days) = if i < ctx.showcase + ctx.edges {
        let k = (i - ctx.showcase) as u8;
        let sixteen = ctx
            .reference
            .add_months(-192)
            .expect("reference after 1980");
        let d = match k {
            0 => sixteen.days_since_epoch(),
            1 => sixteen.days_since_epoch() + 1,
            _ => {
                let mut y = ctx.reference.year() - 16;
                while !dxmesh_protocol::date::is_leap(y) {
                    y -= 1;
                }
                Date::new(y, 2, 29).expect("leap day").days_since_epoch()
            }
        };
        (Kind::Edge(k), d.min(ctx.r_days))
    } else {
        let mut x = rng.below(1000);
        let mut band = AGE_BANDS[AGE_BANDS.len() - 1];
        for b in AGE_BANDS {
            if x < b.2 {
                band = b;
                break;
            }
            x -= b.2;
        }
        let ago = rng.range(years_days(band.0), years_days(band.1 + 1) - 1);
        (Kind::Resident, ctx.r_days - ago)
    };
    let r = rng.below(1000);
    let old = ctx.date(birth_days).year() < 1983;
    let region = if r < 720 || (r >= 995 && !old) {
        county
    } else if r < 880 {
        ctx.other_county(rng, county)
    } else if r < 995 {
        ctx.other_start + rng.below(ctx.other_len as u64) as usize
    } else {
        ctx.idx_retired
    };
    Core {
        kind,
        region,
        county,
        birth_days,
        male,
    }
}

/// The first pass: a slot (sequence number index and birth-date shift) per person.
fn assign_slots(ctx: &Ctx) -> Result<Vec<u16>, SynthError> {
    let mut counters = vec![0u16; ctx.n_buckets()];
    let mut slots = vec![0u16; ctx.total as usize];
    for (i, slot) in slots.iter_mut().enumerate() {
        let mut rng = ctx.rng(i as u64);
        let c = core(ctx, i as u64, &mut rng);
        if matches!(c.kind, Kind::Showcase(_)) {
            continue;
        }
        let mut found = false;
        for shift in 0..=MAX_SHIFT {
            let b = ctx
                .bucket(c.region, c.birth_days - i64::from(shift), c.male)
                .ok_or(SynthError::TooDense)?;
            if counters[b] < BUCKET {
                *slot = shift * BUCKET + counters[b];
                counters[b] += 1;
                found = true;
                break;
            }
        }
        if !found {
            return Err(SynthError::TooDense);
        }
    }
    Ok(slots)
}

fn put_digits(out: &mut [u8], mut n: u32) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// The true ID and the (possibly shifted) birth date.
fn make_id(ctx: &Ctx, c: &Core, slot: u16) -> ([u8; 18], i64) {
    let mut id = [0u8; 18];
    id[..6].copy_from_slice(&ctx.regions[c.region]);
    let (days, seq) = if matches!(c.kind, Kind::Showcase(_)) {
        (c.birth_days, None)
    } else {
        let shift = slot / BUCKET;
        let k = slot % BUCKET;
        let days = c.birth_days - i64::from(shift);
        let b = ctx.bucket(c.region, days, c.male).unwrap_or(0);
        let h = mix64(ctx.seed_key ^ (b as u64).wrapping_mul(GOLDEN)) % u64::from(BUCKET);
        let s = ((h as u32 + u32::from(k)) % u32::from(BUCKET)) * 2 + u32::from(c.male);
        (days, Some(s))
    };
    let birth = ctx.date(days);
    put_digits(&mut id[6..10], u32::from(birth.year()));
    put_digits(&mut id[10..12], u32::from(birth.month()));
    put_digits(&mut id[12..14], u32::from(birth.day()));
    match seq {
        Some(s) => {
            put_digits(&mut id[14..17], s);
            id[17] = check_character(&id[..17]);
        }
        None => {
            // Showcase: the first sequence number of the right parity whose
            // check character is X (so every X fault can be shown).
            let mut s = u32::from(c.male);
            loop {
                put_digits(&mut id[14..17], s);
                id[17] = check_character(&id[..17]);
                if id[17] == b'X' || s >= 998 {
                    break;
                }
                s += 2;
            }
        }
    }
    (id, days)
}

/// How duplicated rows are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dup {
    Random,
    Exact,
    Clean,
}

/// Draws the per-row raw forms of one person.
struct RowGen {
    rng: Rng,
    id: [u8; 18],
    year: u16,
    forced: Option<Form>,
    dup: Dup,
}

impl RowGen {
    fn form(&mut self) -> Form {
        match self.forced {
            Some(f) => f,
            None => draw_form(&mut self.rng, &self.id, self.year),
        }
    }
    fn copies(&mut self) -> Copies {
        let f1 = self.form();
        match self.dup {
            Dup::Exact => Copies {
                forms: [f1, f1],
                n: 2,
            },
            Dup::Clean => Copies {
                forms: [f1, Form::Clean],
                n: 2,
            },
            Dup::Random => {
                let r = self.rng.next();
                if r % 10_000 < 25 {
                    let f2 = if (r >> 32) % 10 < 6 { f1 } else { self.form() };
                    Copies {
                        forms: [f1, f2],
                        n: 2,
                    }
                } else {
                    Copies {
                        forms: [f1, Form::Clean],
                        n: 1,
                    }
                }
            }
        }
    }
}

fn random_name(ctx: &Ctx, rng: &mut Rng, male: bool) -> Name {
    let surname = if rng.below(1000) < 5 {
        rng.pick(&ctx.compound_surnames)
    } else {
        let u = rng.unit();
        ctx.surnames[((u * u) * ctx.surnames.len() as f64) as usize]
    };
    let gendered = ctx.given(male);
    let (given, n_given) = if rng.chance(0.75) {
        let first = if rng.chance(0.4) {
            rng.pick(&ctx.given_neutral)
        } else {
            rng.pick(gendered)
        };
        ([first, rng.pick(gendered)], 2)
    } else {
        let g = rng.pick(gendered);
        ([g, g], 1)
    };
    Name {
        surname,
        given,
        n_given,
        gap: "",
    }
}

/// The same person's name with another first given character.
fn conflicting_name(ctx: &Ctx, rng: &mut Rng, name: Name, male: bool) -> Name {
    let list = ctx.given(male);
    let cur = name.given[0];
    let new = match list.iter().position(|&g| g == cur) {
        Some(p) => list[(p + 1 + rng.below(list.len() as u64 - 1) as usize) % list.len()],
        None => rng.pick(list),
    };
    let mut n = name;
    n.given[0] = new;
    n
}

fn random_address(ctx: &Ctx, rng: &mut Rng) -> Address {
    let r = rng.next();
    let rural = r % 100 < 18;
    let place = if rural {
        ((r >> 8) % ctx.villages.len() as u64) as u8
    } else {
        ((r >> 8) % ctx.streets.len() as u64) as u8
    };
    let number = 1 + ((r >> 16) % 300) as u16;
    let building = if rural || (r >> 28) % 10 >= 6 {
        0
    } else {
        1 + ((r >> 32) % 30) as u8
    };
    let room = (1 + ((r >> 40) % 30) as u16) * 100 + 1 + ((r >> 50) % 8) as u16;
    Address {
        rural,
        place,
        number,
        building,
        room,
    }
}

/// Generates person `i`.
fn person(ctx: &Ctx, i: u64, slot: u16) -> Person {
    let mut rng = ctx.rng(i);
    let c = core(ctx, i, &mut rng);
    let (id, birth_days) = make_id(ctx, &c, slot);
    let birth = ctx.date(birth_days);
    let (forced, dup) = match c.kind {
        Kind::Showcase(j) => (
            Some(SHOWCASE_FORMS[usize::from(j)]),
            match j {
                0 => Dup::Exact,
                2 => Dup::Clean,
                _ => Dup::Random,
            },
        ),
        _ => (None, Dup::Random),
    };
    let name = random_name(ctx, &mut rng, c.male);
    let placeholder = Date::new(2000, 1, 1).expect("valid date");
    let mut p = Person {
        id,
        birth,
        male: c.male,
        name,
        hr_name: name,
        hr_variant: HrName::Same,
        regs: Small::new(RegRow {
            county: 0,
            address: Address {
                rural: false,
                place: 0,
                number: 0,
                building: 0,
                room: 0,
            },
            status: ACTIVE,
            ids: Copies::ONE,
        }),
        civil: None,
        health: None,
        disability: None,
        hr: Small::new(HrRow {
            ty: 0,
            status: ACTIVE,
            since: placeholder,
            ids: Copies::ONE,
        }),
        national: Small::new(NatRow {
            province: [0; 2],
            ty: 0,
            ids: Copies::ONE,
        }),
    };
    let mut g = RowGen {
        rng,
        id,
        year: birth.year(),
        forced,
        dup,
    };
    match c.kind {
        Kind::Showcase(j) => showcase(ctx, &mut g, &mut p, &c, j),
        Kind::Worker => worker(ctx, &mut g, &mut p, birth_days),
        Kind::Resident | Kind::Edge(_) => resident(ctx, &mut g, &mut p, &c, birth_days),
    }
    // The ministry index holds every active pension of the province.
    for k in 0..p.hr.len {
        let row = p.hr.items[k];
        if row.status == ACTIVE && is_pension(row.ty) {
            let ids = g.copies();
            p.national.push(NatRow {
                province: ctx.home,
                ty: row.ty,
                ids,
            });
        }
    }
    p
}

/// A start date within the last 30 years, from age 16 (from birth for children).
fn since(g: &mut RowGen, ctx: &Ctx, birth_days: i64) -> Date {
    let mut lo = birth_days + years_days(16) + 1;
    if lo > ctx.r_days {
        lo = birth_days;
    }
    let lo = lo.max(ctx.r_days - years_days(30));
    ctx.date(g.rng.range(lo, ctx.r_days))
}

fn push_hr(g: &mut RowGen, ctx: &Ctx, p: &mut Person, birth_days: i64, ty: u8, status: u8) {
    let since = since(g, ctx, birth_days);
    let ids = g.copies();
    p.hr.push(HrRow {
        ty,
        status,
        since,
        ids,
    });
}

fn push_other_province(g: &mut RowGen, ctx: &Ctx, p: &mut Person, ty: u8) {
    let province = g.rng.pick(&ctx.other_provinces);
    let ids = g.copies();
    p.national.push(NatRow { province, ty, ids });
}

fn push_reg(ctx: &Ctx, g: &mut RowGen, p: &mut Person, county: usize, status: u8) {
    let address = random_address(ctx, &mut g.rng);
    let ids = g.copies();
    p.regs.push(RegRow {
        county: county as u8,
        address,
        status,
        ids,
    });
}

fn disability_row(g: &mut RowGen, ctx: &Ctx, birth_days: i64) -> DisRow {
    let total: u32 = DISABILITY_CATEGORIES.iter().map(|c| c.1).sum();
    let mut x = g.rng.below(u64::from(total)) as u32;
    let mut category = 0;
    for (k, c) in DISABILITY_CATEGORIES.iter().enumerate() {
        if x < c.1 {
            category = k as u8;
            break;
        }
        x -= c.1;
    }
    let level = match g.rng.below(100) {
        0..10 => 1,
        10..30 => 2,
        30..60 => 3,
        _ => 4,
    };
    let lo = birth_days.max(ctx.r_days - years_days(20));
    let date = ctx.date(g.rng.range(lo, ctx.r_days));
    let ids = g.copies();
    DisRow {
        category,
        level,
        date,
        ids,
    }
}

fn death_rows(
    g: &mut RowGen,
    ctx: &Ctx,
    p: &mut Person,
    birth_days: i64,
    civil: bool,
    health: bool,
) {
    let lo = birth_days.max(ctx.r_days - years_days(3));
    let date = ctx.date(g.rng.range(lo, ctx.r_days));
    if civil {
        let ids = g.copies();
        p.civil = Some(DeathRow { date, ids });
    }
    if health {
        let ids = g.copies();
        p.health = Some(DeathRow { date, ids });
    }
}

fn showcase(ctx: &Ctx, g: &mut RowGen, p: &mut Person, c: &Core, j: u8) {
    let birth_days = c.birth_days;
    push_reg(ctx, g, p, c.county, ACTIVE);
    death_rows(g, ctx, p, birth_days, true, true);
    p.disability = Some(disability_row(g, ctx, birth_days));
    push_hr(g, ctx, p, birth_days, EP, ACTIVE);
    push_hr(g, ctx, p, birth_days, EM, TERMINATED);
    push_other_province(g, ctx, p, RP);
    if j == 1 {
        p.hr_name = conflicting_name(ctx, &mut g.rng, p.name, p.male);
        p.hr_variant = HrName::Conflict;
    }
}

fn worker(ctx: &Ctx, g: &mut RowGen, p: &mut Person, birth_days: i64) {
    if g.rng.chance(0.9) {
        for ty in [EP, EM, UN, WI, MA] {
            push_hr(g, ctx, p, birth_days, ty, ACTIVE);
        }
    } else {
        push_hr(g, ctx, p, birth_days, EP, TERMINATED);
        push_hr(g, ctx, p, birth_days, EM, TERMINATED);
    }
}

fn resident(ctx: &Ctx, g: &mut RowGen, p: &mut Person, c: &Core, birth_days: i64) {
    let age = p.birth.age_on(ctx.reference);
    let adult = age >= 16;
    let edge = matches!(c.kind, Kind::Edge(_));
    let p_dead = if edge {
        0.0
    } else if age >= 60 {
        0.035
    } else if adult {
        0.003
    } else {
        0.0005
    };
    let dead = g.rng.chance(p_dead);
    // No longer living in the province (moved out, or registration cancelled).
    let mut away = false;
    if dead {
        let status = if g.rng.chance(0.3) { CANCELLED } else { ACTIVE };
        push_reg(ctx, g, p, c.county, status);
        let u = g.rng.below(10);
        death_rows(g, ctx, p, birth_days, u < 8, !(5..8).contains(&u));
    } else if edge {
        push_reg(ctx, g, p, c.county, ACTIVE);
    } else {
        let u = g.rng.below(1000);
        match u {
            0..5 => {
                push_reg(ctx, g, p, c.county, MOVED_OUT);
                away = true;
            }
            5..8 => {
                let old = ctx.other_county(&mut g.rng, c.county);
                push_reg(ctx, g, p, old, MOVED_OUT);
                push_reg(ctx, g, p, c.county, ACTIVE);
            }
            8..10 => {
                let second = ctx.other_county(&mut g.rng, c.county);
                push_reg(ctx, g, p, c.county, ACTIVE);
                push_reg(ctx, g, p, second, ACTIVE);
            }
            10..11 => {
                push_reg(ctx, g, p, c.county, CANCELLED);
                away = true;
            }
            _ => push_reg(ctx, g, p, c.county, ACTIVE),
        }
    }
    let disabled = !edge && g.rng.chance(0.02);
    if disabled {
        p.disability = Some(disability_row(g, ctx, birth_days));
    }

    // Insurance.
    let mut insured_here = false;
    if edge {
        // Boundary people are uninsured: whether they are listed depends on age alone.
    } else if !adult {
        if g.rng.chance(0.92) {
            push_hr(g, ctx, p, birth_days, RM, ACTIVE);
        }
    } else if away {
        if g.rng.chance(0.45) {
            push_other_province(g, ctx, p, EP);
        }
        if g.rng.chance(0.5) {
            push_hr(g, ctx, p, birth_days, EP, TERMINATED);
        }
    } else {
        let p_uninsured = if disabled { 0.15 } else { 0.047 };
        let u = g.rng.unit();
        if u < p_uninsured {
            match g.rng.below(100) {
                0..45 => {}
                45..70 => push_hr(g, ctx, p, birth_days, RM, ACTIVE),
                70..90 => {
                    push_hr(g, ctx, p, birth_days, EP, SUSPENDED);
                    push_hr(g, ctx, p, birth_days, EM, SUSPENDED);
                }
                _ => {
                    push_hr(g, ctx, p, birth_days, RP, TERMINATED);
                    push_hr(g, ctx, p, birth_days, RM, ACTIVE);
                }
            }
        } else if u < p_uninsured + 0.0235 {
            let ty = if g.rng.chance(0.8) { EP } else { RP };
            push_other_province(g, ctx, p, ty);
            if g.rng.chance(0.35) {
                push_hr(g, ctx, p, birth_days, EP, TERMINATED);
            }
            if g.rng.chance(0.2) {
                push_hr(g, ctx, p, birth_days, RM, ACTIVE);
            }
        } else {
            insured_here = true;
            let enterprise = g.rng.chance(if age < 60 { 0.62 } else { 0.55 });
            if enterprise {
                if g.rng.chance(0.05) {
                    push_hr(g, ctx, p, birth_days, RP, TERMINATED);
                }
                push_hr(g, ctx, p, birth_days, EP, ACTIVE);
                push_hr(g, ctx, p, birth_days, EM, ACTIVE);
                if age < 60 {
                    let un = if g.rng.chance(0.04) {
                        SUSPENDED
                    } else {
                        ACTIVE
                    };
                    push_hr(g, ctx, p, birth_days, UN, un);
                    push_hr(g, ctx, p, birth_days, WI, ACTIVE);
                    if g.rng.chance(0.85) {
                        push_hr(g, ctx, p, birth_days, MA, ACTIVE);
                    }
                }
            } else {
                push_hr(g, ctx, p, birth_days, RP, ACTIVE);
                push_hr(g, ctx, p, birth_days, RM, ACTIVE);
            }
            if g.rng.chance(0.003) {
                push_other_province(g, ctx, p, EP);
            }
        }
    }
    if dead {
        // A quarter of the insured dead still draw a pension.
        let fraud = insured_here && g.rng.chance(0.25);
        for row in p.hr.as_mut_slice() {
            if row.status == ACTIVE && !(fraud && is_pension(row.ty)) {
                row.status = TERMINATED;
            }
        }
    }
    if p.hr.len > 0 {
        let u = g.rng.below(1000);
        if u < 2 {
            p.hr_name = conflicting_name(ctx, &mut g.rng, p.name, p.male);
            p.hr_variant = HrName::Conflict;
        } else if u < 5 && !dead {
            p.hr_name.gap = if g.rng.next() & 1 == 0 {
                " "
            } else {
                "\u{3000}"
            };
            p.hr_variant = HrName::Spaced;
        }
    }
}

// ---------------------------------------------------------------------------
// Formatting

fn put_name(buf: &mut Vec<u8>, n: &Name) {
    buf.extend_from_slice(n.surname.as_bytes());
    buf.extend_from_slice(n.gap.as_bytes());
    for g in &n.given[..usize::from(n.n_given)] {
        buf.extend_from_slice(g.as_bytes());
    }
}

fn put_uint(buf: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

fn put_date(buf: &mut Vec<u8>, d: Date) {
    let mut t = *b"0000-00-00";
    put_digits(&mut t[0..4], u32::from(d.year()));
    put_digits(&mut t[5..7], u32::from(d.month()));
    put_digits(&mut t[8..10], u32::from(d.day()));
    buf.extend_from_slice(&t);
}

fn put_address(buf: &mut Vec<u8>, ctx: &Ctx, county: usize, a: &Address) {
    if ctx.district_names {
        buf.extend_from_slice(COUNTIES[county].1.as_bytes());
    }
    if a.rural {
        buf.extend_from_slice(ctx.villages[usize::from(a.place)].as_bytes());
        put_uint(buf, u64::from(a.number));
        buf.extend_from_slice("号".as_bytes());
    } else {
        buf.extend_from_slice(ctx.streets[usize::from(a.place)].as_bytes());
        put_uint(buf, u64::from(a.number));
        buf.extend_from_slice("号".as_bytes());
        if a.building > 0 {
            put_uint(buf, u64::from(a.building));
            buf.extend_from_slice("栋".as_bytes());
            put_uint(buf, u64::from(a.room));
            buf.extend_from_slice("房".as_bytes());
        }
    }
}

/// Flush threshold of the output buffers.
const FLUSH_AT: usize = 4 << 20;

/// One CSV being written: a large buffer flushed with `write_all`.
struct Out {
    rel: &'static str,
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    rows: u64,
    faults: [u64; FAULT_NAMES.len()],
}

/// What was written to one file.
struct Written {
    rel: &'static str,
    rows: u64,
    faults: Option<[u64; FAULT_NAMES.len()]>,
}

impl Out {
    fn create(dir: &Path, (rel, header): (&'static str, &'static str)) -> Result<Out, SynthError> {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
        }
        let file = File::create(&path).map_err(|e| io_err(&path, e))?;
        let mut buf = Vec::with_capacity(FLUSH_AT + (64 << 10));
        buf.extend_from_slice(header.as_bytes());
        buf.push(b'\n');
        Ok(Out {
            rel,
            path,
            file,
            buf,
            rows: 0,
            faults: [0; FAULT_NAMES.len()],
        })
    }

    fn end_row(&mut self) -> Result<(), SynthError> {
        self.buf.push(b'\n');
        self.rows += 1;
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SynthError> {
        self.file
            .write_all(&self.buf)
            .map_err(|e| io_err(&self.path, e))?;
        self.buf.clear();
        Ok(())
    }

    /// Writes the ID of copy `k` of a row and counts its faults.
    fn id(&mut self, id: &[u8; 18], ids: &Copies, k: usize) {
        let f = ids.forms[k];
        put_id(&mut self.buf, id, f);
        if let Some(x) = f.fault() {
            self.faults[x] += 1;
        }
        if k == 1 {
            let d = if ids.forms[1] == ids.forms[0] {
                F_EXACT_DUP
            } else {
                F_NORM_DUP
            };
            self.faults[d] += 1;
        }
    }

    fn finish(mut self, department: bool) -> Result<Written, SynthError> {
        self.flush()?;
        Ok(Written {
            rel: self.rel,
            rows: self.rows,
            faults: department.then_some(self.faults),
        })
    }
}

// ---------------------------------------------------------------------------
// Expected results

/// Lines of one expected list, in one arena.
#[derive(Default)]
struct Lines {
    text: Vec<u8>,
    spans: Vec<(usize, usize)>,
}

impl Lines {
    /// Keeps the line started at `start` unless it repeats one since span `first`.
    fn close(&mut self, first: usize, start: usize) {
        let line = &self.text[start..];
        if self.spans[first..]
            .iter()
            .any(|&(s, e)| &self.text[s..e] == line)
        {
            self.text.truncate(start);
        } else {
            self.spans.push((start, self.text.len()));
        }
    }

    fn write(
        mut self,
        dir: &Path,
        file: (&'static str, &'static str),
    ) -> Result<Written, SynthError> {
        let text = &self.text;
        self.spans
            .sort_unstable_by(|a, b| text[a.0..a.1].cmp(&text[b.0..b.1]));
        let mut out = Out::create(dir, file)?;
        for &(s, e) in &self.spans {
            out.buf.extend_from_slice(&text[s..e]);
            out.end_row()?;
        }
        out.finish(false)
    }
}

#[derive(Default)]
struct Expected {
    counts: ExpectedCounts,
    uninsured: Lines,
    deceased_insured: Lines,
    disabled_uninsured: Lines,
    name_conflicts: Lines,
    /// Per county: (scope IDs, eligible, covered).
    coverage: Vec<(u64, u64, u64)>,
}

impl Expected {
    fn add(&mut self, ctx: &Ctx, p: &Person) {
        let home = ctx.home;
        let deceased =
            p.civil.is_some_and(|d| d.ids.valid()) || p.health.is_some_and(|d| d.ids.valid());
        let hr_ok = |r: &&HrRow| r.status == ACTIVE && r.ids.valid();
        let pension =
            p.hr.as_slice()
                .iter()
                .filter(hr_ok)
                .any(|r| is_pension(r.ty));
        let hr_active = p.hr.as_slice().iter().any(|r| hr_ok(&r));
        let other = p
            .national
            .as_slice()
            .iter()
            .any(|r| r.province != home && is_pension(r.ty) && r.ids.valid());
        let disabled = p.disability.is_some_and(|d| d.ids.valid());
        let active = |r: &&RegRow| r.status == ACTIVE && r.ids.valid();
        let scope =
            p.regs.as_slice().iter().any(|r| active(&r)) && p.birth.age_on(ctx.reference) >= 16;

        let c = &mut self.counts;
        c.registry_scope += u64::from(scope);
        c.deceased += u64::from(deceased);
        c.pension_insured += u64::from(pension);
        c.other_province += u64::from(other);
        let base = scope && !pension && !deceased;
        c.removed_other_province += u64::from(base && other);
        let uninsured = base && !other;
        if uninsured {
            c.uninsured += 1;
            reg_lines(&mut self.uninsured, ctx, p);
            if disabled {
                c.disabled_uninsured += 1;
                reg_lines(&mut self.disabled_uninsured, ctx, p);
            }
        }
        if pension && deceased {
            c.deceased_insured += 1;
            let l = &mut self.deceased_insured;
            let first = l.spans.len();
            for r in
                p.hr.as_slice()
                    .iter()
                    .filter(hr_ok)
                    .filter(|r| is_pension(r.ty))
            {
                let start = l.text.len();
                l.text.extend_from_slice(&p.id);
                l.text.push(b',');
                put_name(&mut l.text, &p.hr_name);
                l.text.push(b',');
                l.text
                    .extend_from_slice(INSURANCE_TYPES[usize::from(r.ty)].as_bytes());
                l.close(first, start);
            }
        }
        if scope && hr_active && p.hr_name != p.name && !same_after_normalising(&p.name, &p.hr_name)
        {
            c.name_conflicts += 1;
            let l = &mut self.name_conflicts;
            let first = l.spans.len();
            for _ in p.regs.as_slice().iter().filter(active) {
                let start = l.text.len();
                l.text.extend_from_slice(&p.id);
                l.text.push(b',');
                put_name(&mut l.text, &p.name);
                l.close(first, start);
            }
        }
        if scope {
            if self.coverage.is_empty() {
                self.coverage = vec![(0, 0, 0); ctx.counties.len()];
            }
            let regs = p.regs.as_slice();
            for (k, r) in regs.iter().enumerate() {
                if !active(&r) || regs[..k].iter().any(|q| active(&q) && q.county == r.county) {
                    continue;
                }
                let cov = &mut self.coverage[usize::from(r.county)];
                cov.0 += 1;
                if !deceased {
                    cov.1 += 1;
                    cov.2 += u64::from(!uninsured);
                }
            }
        }
    }
}

fn same_after_normalising(a: &Name, b: &Name) -> bool {
    let mut x = Vec::with_capacity(16);
    let mut y = Vec::with_capacity(16);
    put_name(&mut x, a);
    put_name(&mut y, b);
    normalize_attr(&String::from_utf8_lossy(&x)) == normalize_attr(&String::from_utf8_lossy(&y))
}

/// One line per distinct (name, address) of the person's valid active registry rows.
fn reg_lines(l: &mut Lines, ctx: &Ctx, p: &Person) {
    let first = l.spans.len();
    for r in p.regs.as_slice() {
        if r.status != ACTIVE || !r.ids.valid() {
            continue;
        }
        let start = l.text.len();
        l.text.extend_from_slice(&p.id);
        l.text.push(b',');
        put_name(&mut l.text, &p.name);
        l.text.push(b',');
        put_address(&mut l.text, ctx, usize::from(r.county), &r.address);
        l.close(first, start);
    }
}

// ---------------------------------------------------------------------------
// The two generator threads

/// Persons between checks of the stop flag.
const STOP_CHECK: u64 = 1 << 16;

/// Registry, death registers, disability register, ministry index and the expected results.
fn gen_population(
    ctx: &Ctx,
    slots: &[u16],
    dir: &Path,
    stop: &AtomicBool,
) -> Result<(Vec<Written>, ExpectedCounts), SynthError> {
    let mut reg = Out::create(dir, REGISTRY)?;
    let mut civil = Out::create(dir, CIVIL_DEATHS)?;
    let mut health = Out::create(dir, HEALTH_DEATHS)?;
    let mut dis = Out::create(dir, DISABILITY)?;
    let mut nat = Out::create(dir, NATIONAL)?;
    let mut exp = Expected::default();
    for (i, &slot) in slots.iter().enumerate() {
        let i = i as u64;
        if i.is_multiple_of(STOP_CHECK) && stop.load(Ordering::Relaxed) {
            return Err(SynthError::Panicked);
        }
        let p = person(ctx, i, slot);
        for r in p.regs.as_slice() {
            for k in 0..usize::from(r.ids.n) {
                reg.id(&p.id, &r.ids, k);
                let b = &mut reg.buf;
                b.push(b',');
                put_name(b, &p.name);
                b.extend_from_slice(if p.male { b",male," } else { b",female," });
                put_date(b, p.birth);
                b.push(b',');
                b.extend_from_slice(&ctx.counties[usize::from(r.county)]);
                b.push(b',');
                put_address(b, ctx, usize::from(r.county), &r.address);
                b.push(b',');
                b.extend_from_slice(REG_STATUS[usize::from(r.status)].as_bytes());
                reg.end_row()?;
            }
        }
        if let Some(d) = &p.civil {
            for k in 0..usize::from(d.ids.n) {
                civil.id(&p.id, &d.ids, k);
                civil.buf.push(b',');
                put_name(&mut civil.buf, &p.name);
                civil.buf.push(b',');
                put_date(&mut civil.buf, d.date);
                civil.end_row()?;
            }
        }
        if let Some(d) = &p.health {
            for k in 0..usize::from(d.ids.n) {
                health.id(&p.id, &d.ids, k);
                health.buf.push(b',');
                put_date(&mut health.buf, d.date);
                health.end_row()?;
            }
        }
        if let Some(d) = &p.disability {
            for k in 0..usize::from(d.ids.n) {
                dis.id(&p.id, &d.ids, k);
                let b = &mut dis.buf;
                b.push(b',');
                put_name(b, &p.name);
                b.push(b',');
                b.extend_from_slice(DISABILITY_CATEGORIES[usize::from(d.category)].0.as_bytes());
                b.push(b',');
                b.push(b'0' + d.level);
                b.push(b',');
                put_date(b, d.date);
                dis.end_row()?;
            }
        }
        for r in p.national.as_slice() {
            for k in 0..usize::from(r.ids.n) {
                nat.id(&p.id, &r.ids, k);
                let b = &mut nat.buf;
                b.push(b',');
                b.extend_from_slice(&r.province);
                b.push(b',');
                b.extend_from_slice(INSURANCE_TYPES[usize::from(r.ty)].as_bytes());
                nat.end_row()?;
            }
        }
        exp.add(ctx, &p);
    }
    let mut written = vec![
        reg.finish(true)?,
        civil.finish(true)?,
        health.finish(true)?,
        dis.finish(true)?,
        nat.finish(true)?,
    ];
    written.push(exp.uninsured.write(dir, UNINSURED)?);
    written.push(exp.deceased_insured.write(dir, DECEASED_INSURED)?);
    written.push(exp.disabled_uninsured.write(dir, DISABLED_UNINSURED)?);
    written.push(exp.name_conflicts.write(dir, NAME_CONFLICTS)?);
    let mut cov = Out::create(dir, COVERAGE)?;
    let mut order: Vec<usize> = (0..ctx.counties.len()).collect();
    order.sort_by_key(|&k| ctx.counties[k]);
    for k in order {
        let Some(&(scope, eligible, covered)) = exp.coverage.get(k) else {
            continue;
        };
        if scope == 0 {
            continue;
        }
        cov.buf.extend_from_slice(&ctx.counties[k]);
        cov.buf.push(b',');
        put_uint(&mut cov.buf, eligible);
        cov.buf.push(b',');
        put_uint(&mut cov.buf, covered);
        cov.end_row()?;
    }
    written.push(cov.finish(false)?);
    Ok((written, exp.counts))
}

/// HR.
fn gen_insurance(
    ctx: &Ctx,
    slots: &[u16],
    dir: &Path,
    stop: &AtomicBool,
) -> Result<Vec<Written>, SynthError> {
    let mut hr = Out::create(dir, HR)?;
    for (i, &slot) in slots.iter().enumerate() {
        let i = i as u64;
        if i.is_multiple_of(STOP_CHECK) && stop.load(Ordering::Relaxed) {
            return Err(SynthError::Panicked);
        }
        let p = person(ctx, i, slot);
        let name_fault = match p.hr_variant {
            HrName::Same => None,
            HrName::Conflict => Some(F_NAME_CONFLICT),
            HrName::Spaced => Some(F_NAME_SPACING),
        };
        for r in p.hr.as_slice() {
            for k in 0..usize::from(r.ids.n) {
                hr.id(&p.id, &r.ids, k);
                let b = &mut hr.buf;
                b.push(b',');
                put_name(b, &p.hr_name);
                b.push(b',');
                b.extend_from_slice(INSURANCE_TYPES[usize::from(r.ty)].as_bytes());
                b.push(b',');
                b.extend_from_slice(HR_STATUS[usize::from(r.status)].as_bytes());
                b.push(b',');
                put_date(b, r.since);
                if let Some(f) = name_fault {
                    hr.faults[f] += 1;
                }
                hr.end_row()?;
            }
        }
    }
    Ok(vec![hr.finish(true)?])
}

/// Generates a synthetic province into `opts.out` and returns what was written.
///
/// Deterministic: the same options give byte-identical files. Uses two
/// threads (one per group of departments). See the module documentation for
/// the model, the faults and the rules behind the expected results.
pub fn synth(opts: &SynthOptions) -> Result<SynthReport, SynthError> {
    let ctx = Ctx::new(opts)?;
    fs::create_dir_all(&opts.out).map_err(|e| io_err(&opts.out, e))?;
    let slots = assign_slots(&ctx)?;
    let stop = AtomicBool::new(false);
    let dir = opts.out.as_path();
    let (population, insurance) = std::thread::scope(|s| {
        let ins = s.spawn(|| {
            let r = gen_insurance(&ctx, &slots, dir, &stop);
            if r.is_err() {
                // The other thread stops early (reporting `Panicked`, which
                // the match below replaces with this error).
                stop.store(true, Ordering::Relaxed);
            }
            r
        });
        let pop = s.spawn(|| {
            let r = gen_population(&ctx, &slots, dir, &stop);
            if r.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
            r
        });
        (pop.join(), ins.join())
    });
    let (population, insurance) = match (population, insurance) {
        (Ok(p), Ok(i)) => (p, i),
        _ => return Err(SynthError::Panicked),
    };
    // Report the real failure rather than the other thread's reaction to it.
    let (mut written, counts, insurance) = match (population, insurance) {
        (Ok((w, c)), Ok(i)) => (w, c, i),
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => return Err(e),
        (Err(SynthError::Panicked), Err(e)) | (Err(e), Err(_)) => return Err(e),
    };
    written.extend(insurance);
    let mut files = BTreeMap::new();
    let mut faults = BTreeMap::new();
    for w in written {
        files.insert(w.rel.to_string(), w.rows);
        if let Some(f) = w.faults {
            let per: BTreeMap<String, u64> = FAULT_NAMES
                .iter()
                .zip(f)
                .map(|(n, c)| (n.to_string(), c))
                .collect();
            faults.insert(w.rel.to_string(), per);
        }
    }
    let report = SynthReport {
        seed: opts.seed,
        residents: opts.residents,
        reference: opts.reference,
        home_province: opts.home_province.clone(),
        counts,
        files,
        faults,
    };
    let mut json = serde_json::to_vec_pretty(&report)?;
    json.push(b'\n');
    let path = opts.out.join(SUMMARY_FILE);
    fs::write(&path, json).map_err(|e| io_err(&path, e))?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dxmesh_protocol::id::{IdError, IdNumber, normalize};
    use std::collections::{BTreeSet, HashMap};

    fn reference() -> Date {
        Date::new(2026, 6, 30).unwrap()
    }

    fn opts(dir: &Path, residents: u64, seed: u64) -> SynthOptions {
        SynthOptions {
            residents,
            out: dir.to_path_buf(),
            seed,
            reference: reference(),
            home_province: "44".to_string(),
        }
    }

    /// Rows of a CSV file after checking its header.
    fn read(dir: &Path, (rel, header): (&str, &str)) -> Vec<Vec<String>> {
        let text = fs::read_to_string(dir.join(rel)).unwrap();
        assert_eq!(text.lines().next(), Some(header), "{rel} header");
        let mut r = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(text.as_bytes());
        let cols = header.split(',').count();
        r.records()
            .map(|rec| {
                let rec = rec.unwrap();
                assert_eq!(rec.len(), cols, "{rel}: {rec:?}");
                rec.iter().map(str::to_string).collect()
            })
            .collect()
    }

    fn is_pension(t: &str) -> bool {
        t == "enterprise_pension" || t == "resident_pension"
    }

    fn naive_age(birth: Date, on: Date) -> u32 {
        let mut age = u32::from(on.year()) - u32::from(birth.year());
        if (on.month(), on.day()) < (birth.month(), birth.day()) {
            age -= 1;
        }
        age
    }

    /// The expected files, recomputed from the written CSVs with a naive
    /// implementation; also the counts.
    fn naive(dir: &Path, r: Date, home: &str) -> (BTreeMap<&'static str, String>, ExpectedCounts) {
        let norm = |raw: &str| normalize(raw, r).ok();
        // id -> [(status, name, address, region)]
        let mut reg: HashMap<IdNumber, Vec<[String; 4]>> = HashMap::new();
        for row in read(dir, REGISTRY) {
            if let Some(id) = norm(&row[0]) {
                reg.entry(id).or_default().push([
                    row[6].clone(),
                    row[1].clone(),
                    row[5].clone(),
                    row[4].clone(),
                ]);
            }
        }
        let mut deceased = BTreeSet::new();
        for row in read(dir, CIVIL_DEATHS)
            .into_iter()
            .chain(read(dir, HEALTH_DEATHS))
        {
            deceased.extend(norm(&row[0]));
        }
        let disabled: BTreeSet<IdNumber> = read(dir, DISABILITY)
            .iter()
            .filter_map(|row| norm(&row[0]))
            .collect();
        // id -> [(name, type)] of active rows
        let mut hr: HashMap<IdNumber, Vec<(String, String)>> = HashMap::new();
        for row in read(dir, HR) {
            if let Some(id) = norm(&row[0])
                && row[3] == "active"
            {
                hr.entry(id)
                    .or_default()
                    .push((row[1].clone(), row[2].clone()));
            }
        }
        let other: BTreeSet<IdNumber> = read(dir, NATIONAL)
            .iter()
            .filter(|row| row[1] != home && is_pension(&row[2]))
            .filter_map(|row| norm(&row[0]))
            .collect();
        let scope: BTreeSet<IdNumber> = reg
            .iter()
            .filter(|(id, rows)| {
                rows.iter().any(|x| x[0] == "active") && naive_age(id.birth_date(), r) >= 16
            })
            .map(|(id, _)| *id)
            .collect();
        let pension: BTreeSet<IdNumber> = hr
            .iter()
            .filter(|(_, rows)| rows.iter().any(|(_, t)| is_pension(t)))
            .map(|(id, _)| *id)
            .collect();
        let base: BTreeSet<IdNumber> = scope
            .iter()
            .filter(|id| !pension.contains(id) && !deceased.contains(id))
            .copied()
            .collect();
        let uninsured: BTreeSet<IdNumber> = base.difference(&other).copied().collect();
        let active_rows = |id: &IdNumber| reg[id].iter().filter(|x| x[0] == "active");
        let reg_lines = |ids: &mut dyn Iterator<Item = &IdNumber>| {
            let mut lines = BTreeSet::new();
            for id in ids {
                for x in active_rows(id) {
                    lines.insert(format!("{id},{},{}", x[1], x[2]));
                }
            }
            lines
        };
        let file = |header: &str, lines: BTreeSet<String>| {
            let mut s = format!("{header}\n");
            for l in lines {
                s.push_str(&l);
                s.push('\n');
            }
            s
        };
        let mut out = BTreeMap::new();
        out.insert(
            UNINSURED.0,
            file(UNINSURED.1, reg_lines(&mut uninsured.iter())),
        );
        let disabled_uninsured: BTreeSet<IdNumber> =
            uninsured.intersection(&disabled).copied().collect();
        out.insert(
            DISABLED_UNINSURED.0,
            file(
                DISABLED_UNINSURED.1,
                reg_lines(&mut disabled_uninsured.iter()),
            ),
        );
        let deceased_insured: BTreeSet<IdNumber> =
            pension.intersection(&deceased).copied().collect();
        let mut lines = BTreeSet::new();
        for id in &deceased_insured {
            for (name, t) in &hr[id] {
                if is_pension(t) {
                    lines.insert(format!("{id},{name},{t}"));
                }
            }
        }
        out.insert(DECEASED_INSURED.0, file(DECEASED_INSURED.1, lines));
        let mut conflicts = BTreeSet::new();
        let mut lines = BTreeSet::new();
        for id in &scope {
            let Some(h) = hr.get(id) else { continue };
            let rn: BTreeSet<String> = active_rows(id).map(|x| normalize_attr(&x[1])).collect();
            let hn: BTreeSet<String> = h.iter().map(|(n, _)| normalize_attr(n)).collect();
            if rn != hn {
                conflicts.insert(*id);
                for x in active_rows(id) {
                    lines.insert(format!("{id},{}", x[1]));
                }
            }
        }
        out.insert(NAME_CONFLICTS.0, file(NAME_CONFLICTS.1, lines));
        let mut cov: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for id in &scope {
            let regions: BTreeSet<&String> = active_rows(id).map(|x| &x[3]).collect();
            for region in regions {
                let e = cov.entry(region.clone()).or_default();
                if !deceased.contains(id) {
                    e.0 += 1;
                    if !uninsured.contains(id) {
                        e.1 += 1;
                    }
                }
            }
        }
        let mut s = format!("{}\n", COVERAGE.1);
        for (region, (e, c)) in cov {
            s.push_str(&format!("{region},{e},{c}\n"));
        }
        out.insert(COVERAGE.0, s);
        let counts = ExpectedCounts {
            registry_scope: scope.len() as u64,
            deceased: deceased.len() as u64,
            pension_insured: pension.len() as u64,
            other_province: other.len() as u64,
            uninsured: uninsured.len() as u64,
            deceased_insured: deceased_insured.len() as u64,
            disabled_uninsured: disabled_uninsured.len() as u64,
            name_conflicts: conflicts.len() as u64,
            removed_other_province: base.intersection(&other).count() as u64,
        };
        (out, counts)
    }

    #[test]
    fn synth_expected_results_match_a_naive_recomputation() {
        for (seed, residents, home) in [(1, 2_000, "44"), (2, 2_000, "44"), (3, 1_500, "43")] {
            let dir = tempfile::tempdir().unwrap();
            let mut o = opts(dir.path(), residents, seed);
            o.home_province = home.to_string();
            let report = synth(&o).unwrap();
            let (files, counts) = naive(dir.path(), reference(), home);
            for (rel, text) in &files {
                let written = fs::read_to_string(dir.path().join(rel)).unwrap();
                assert_eq!(&written, text, "{rel} (seed {seed})");
                assert_eq!(
                    report.files[*rel],
                    text.lines().count() as u64 - 1,
                    "{rel} row count"
                );
            }
            assert_eq!(report.counts, counts, "seed {seed}");
            let summary: serde_json::Value =
                serde_json::from_slice(&fs::read(dir.path().join(SUMMARY_FILE)).unwrap()).unwrap();
            assert_eq!(
                summary["counts"]["uninsured"].as_u64(),
                Some(counts.uninsured)
            );
            assert_eq!(
                summary["counts"]["removed_other_province"].as_u64(),
                Some(counts.removed_other_province)
            );
            assert_eq!(
                summary["files"][REGISTRY.0].as_u64(),
                Some(report.files[REGISTRY.0])
            );
            // Every list is non-trivial in a province this size.
            assert!(counts.uninsured > 0 && counts.deceased_insured > 0);
            assert!(counts.name_conflicts > 0 && counts.removed_other_province > 0);
        }
    }

    #[test]
    fn synth_is_deterministic() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let c = tempfile::tempdir().unwrap();
        let ra = synth(&opts(a.path(), 3_000, 7)).unwrap();
        let rb = synth(&opts(b.path(), 3_000, 7)).unwrap();
        let rc = synth(&opts(c.path(), 3_000, 8)).unwrap();
        assert_eq!(ra, rb);
        let all = DEPARTMENT_FILES
            .iter()
            .chain(EXPECTED_FILES.iter())
            .map(|f| f.0)
            .chain([SUMMARY_FILE]);
        for rel in all {
            let x = fs::read(a.path().join(rel)).unwrap();
            assert_eq!(x, fs::read(b.path().join(rel)).unwrap(), "{rel}");
        }
        assert_ne!(
            fs::read(a.path().join(REGISTRY.0)).unwrap(),
            fs::read(c.path().join(REGISTRY.0)).unwrap()
        );
        assert_ne!(ra.counts, rc.counts);
    }

    #[test]
    fn synth_files_parse_with_their_headers() {
        let dir = tempfile::tempdir().unwrap();
        let report = synth(&opts(dir.path(), 2_000, 11)).unwrap();
        for f in DEPARTMENT_FILES.iter().chain(EXPECTED_FILES.iter()) {
            let rows = read(dir.path(), *f);
            assert_eq!(report.files[f.0], rows.len() as u64, "{}", f.0);
        }
        assert_eq!(
            report.files.len(),
            DEPARTMENT_FILES.len() + EXPECTED_FILES.len()
        );
        for row in read(dir.path(), REGISTRY) {
            assert!(["male", "female"].contains(&row[2].as_str()));
            Date::parse(&row[3]).unwrap();
            assert!(row[4].len() == 6 && row[4].starts_with("44"));
            assert!(["active", "moved_out", "cancelled"].contains(&row[6].as_str()));
        }
        let mut child_since = BTreeSet::new();
        for row in read(dir.path(), HR) {
            assert!(INSURANCE_TYPES.contains(&row[2].as_str()));
            assert!(HR_STATUS.contains(&row[3].as_str()));
            let since = Date::parse(&row[4]).unwrap();
            assert!(since <= reference());
            if let Ok(id) = normalize(&row[0], reference()) {
                assert!(id.birth_date() <= since, "{row:?}");
                if id.birth_date().age_on(reference()) < 16 {
                    child_since.insert(since);
                }
            }
        }
        assert!(child_since.len() > 10, "children's start dates vary");
        for row in read(dir.path(), DISABILITY) {
            assert!(DISABILITY_CATEGORIES.iter().any(|c| c.0 == row[2]));
            assert!(("1"..="4").contains(&row[3].as_str()));
            let d = Date::parse(&row[4]).unwrap();
            assert!(d <= reference());
            if let Ok(id) = normalize(&row[0], reference()) {
                assert!(id.birth_date() <= d);
            }
        }
        for row in read(dir.path(), NATIONAL) {
            assert!(row[1].len() == 2 && INSURANCE_TYPES.contains(&row[2].as_str()));
        }
        // Dates never lie after the reference date; deaths never before birth.
        for row in read(dir.path(), CIVIL_DEATHS) {
            let d = Date::parse(&row[2]).unwrap();
            assert!(d <= reference());
            if let Ok(id) = normalize(&row[0], reference()) {
                assert!(id.birth_date() <= d);
            }
        }
    }

    #[test]
    fn synth_proportions_are_sane() {
        let dir = tempfile::tempdir().unwrap();
        let n = 20_000u64;
        let report = synth(&opts(dir.path(), n, 5)).unwrap();
        let c = report.counts;
        let share = |x: u64| x as f64 / n as f64;
        let within = |what: &str, x: f64, lo: f64, hi: f64| {
            assert!(x >= lo && x <= hi, "{what}: {x:.4} not in [{lo}, {hi}]");
        };
        within("registry scope", share(c.registry_scope), 0.80, 0.88);
        within("uninsured", share(c.uninsured), 0.03, 0.065);
        within("deceased", share(c.deceased), 0.006, 0.018);
        within(
            "removed by ministry",
            share(c.removed_other_province),
            0.012,
            0.03,
        );
        within("pension insured", share(c.pension_insured), 0.72, 0.9);
        within("deceased insured", share(c.deceased_insured), 0.001, 0.006);
        within("name conflicts", share(c.name_conflicts), 0.0005, 0.005);
        within(
            "disability rows",
            share(report.files[DISABILITY.0]),
            0.014,
            0.028,
        );
        within(
            "disabled uninsured",
            c.disabled_uninsured as f64 / c.uninsured as f64,
            0.02,
            0.15,
        );
        let registry = read(dir.path(), REGISTRY);
        let adults = registry
            .iter()
            .filter(|r| Date::parse(&r[3]).unwrap().age_on(reference()) >= 16)
            .count();
        within("adults", adults as f64 / registry.len() as f64, 0.82, 0.88);
        let stale = registry.iter().filter(|r| r[6] != "active").count();
        within(
            "moved_out/cancelled",
            stale as f64 / registry.len() as f64,
            0.006,
            0.02,
        );
        let reg_ids: BTreeSet<IdNumber> = registry
            .iter()
            .filter_map(|r| normalize(&r[0], reference()).ok())
            .collect();
        let hr_ids: BTreeSet<IdNumber> = read(dir.path(), HR)
            .iter()
            .filter_map(|r| normalize(&r[0], reference()).ok())
            .collect();
        let outsiders = hr_ids.difference(&reg_ids).count();
        within(
            "insured outside the registry",
            share(outsiders as u64),
            0.03,
            0.07,
        );
        // Counties: 20-40 distinct, all in the home province.
        let counties: BTreeSet<&str> = registry.iter().map(|r| r[4].as_str()).collect();
        assert!((20..=40).contains(&counties.len()), "{}", counties.len());
    }

    /// The faults a raw ID shows.
    fn faults_of(raw: &str) -> Vec<&'static str> {
        let mut f = Vec::new();
        if raw.chars().any(|c| ('\u{FF10}'..='\u{FF19}').contains(&c)) {
            f.push("full_width");
        }
        if raw.contains('Ｘ') {
            f.push("full_width_x");
        }
        if raw.contains('x') {
            f.push("lowercase_x");
        }
        if raw.starts_with([' ', '\u{3000}']) || raw.ends_with([' ', '\u{3000}']) {
            f.push("whitespace");
        }
        if raw.contains('\u{3000}') {
            f.push("ideographic_space");
        }
        if raw.contains('-') {
            f.push("separator");
        }
        if raw.len() == 15 {
            f.push("legacy_15");
        }
        match normalize(raw, reference()) {
            Err(IdError::CheckCharacter { .. }) => f.push("check_character"),
            Err(IdError::InvalidBirthDate { .. }) => f.push("invalid_birth_date"),
            Err(e) => panic!("{raw:?}: unexpected {e}"),
            Ok(id) => {
                if raw.len() == 15 {
                    assert!((1900..=1999).contains(&id.birth_date().year()), "{raw}");
                }
            }
        }
        f
    }

    #[test]
    fn synth_every_fault_occurs_in_every_department_file() {
        let dir = tempfile::tempdir().unwrap();
        let report = synth(&opts(dir.path(), 2_000, 3)).unwrap();
        let all = [
            "full_width",
            "full_width_x",
            "lowercase_x",
            "whitespace",
            "ideographic_space",
            "separator",
            "legacy_15",
            "check_character",
            "invalid_birth_date",
        ];
        for f in DEPARTMENT_FILES {
            let text = fs::read_to_string(dir.path().join(f.0)).unwrap();
            let lines: Vec<&str> = text.lines().skip(1).collect();
            let mut seen = BTreeSet::new();
            for line in &lines {
                seen.extend(faults_of(line.split(',').next().unwrap()));
            }
            for fault in all {
                assert!(seen.contains(fault), "{}: no {fault}", f.0);
            }
            let distinct: BTreeSet<&&str> = lines.iter().collect();
            assert!(
                distinct.len() < lines.len(),
                "{}: no exact duplicate row",
                f.0
            );
            // The report's fault counts agree with the file.
            let counts = &report.faults[f.0];
            assert!(counts["exact_duplicate"] >= 1);
            assert_eq!(
                counts["check_character"],
                lines
                    .iter()
                    .filter(|l| faults_of(l.split(',').next().unwrap()).contains(&"check_character"))
                    .count() as u64
            );
        }
        // The same person under a different name in HR (not just spacing).
        let mut names: HashMap<IdNumber, BTreeSet<String>> = HashMap::new();
        for row in read(dir.path(), REGISTRY) {
            if let Ok(id) = normalize(&row[0], reference()) {
                names.entry(id).or_default().insert(row[1].clone());
            }
        }
        let mut conflicts = 0;
        let mut spacing = 0;
        for row in read(dir.path(), HR) {
            let Ok(id) = normalize(&row[0], reference()) else {
                continue;
            };
            let Some(reg) = names.get(&id) else { continue };
            if !reg.contains(&row[1]) {
                if reg
                    .iter()
                    .any(|n| normalize_attr(n) == normalize_attr(&row[1]))
                {
                    spacing += 1;
                } else {
                    conflicts += 1;
                }
            }
        }
        assert!(conflicts > 0 && spacing > 0, "{conflicts} {spacing}");
        assert_eq!(report.faults[HR.0]["name_conflict"], conflicts);
        assert_eq!(report.faults[HR.0]["name_spacing"], spacing);
    }

    #[test]
    fn synth_ids_are_unique_per_person() {
        // Rows of one person agree on name and birth date: no two people share an ID.
        let dir = tempfile::tempdir().unwrap();
        synth(&opts(dir.path(), 30_000, 9)).unwrap();
        let mut seen: HashMap<IdNumber, (String, String)> = HashMap::new();
        for row in read(dir.path(), REGISTRY) {
            if let Ok(id) = normalize(&row[0], reference()) {
                let v = (row[1].clone(), row[3].clone());
                assert_eq!(id.birth_date().to_string(), row[3]);
                assert_eq!(
                    id.gender() == dxmesh_protocol::id::Gender::Male,
                    row[2] == "male"
                );
                if let Some(old) = seen.insert(id, v.clone()) {
                    assert_eq!(old, v, "{id}");
                }
            }
        }
    }

    #[test]
    fn synth_refuses_bad_options() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts(dir.path(), 10, 1);
        o.home_province = "4".to_string();
        assert!(matches!(synth(&o), Err(SynthError::Options(_))));
        let mut o = opts(dir.path(), MAX_RESIDENTS + 1, 1);
        o.home_province = "44".to_string();
        assert!(matches!(synth(&o), Err(SynthError::Options(_))));
        let mut o = opts(dir.path(), 10, 1);
        o.reference = Date::new(1970, 1, 1).unwrap();
        assert!(matches!(synth(&o), Err(SynthError::Options(_))));
        // A tiny province works (no showcase people).
        let r = synth(&opts(dir.path(), 10, 1)).unwrap();
        assert!(r.files[REGISTRY.0] >= 10);
    }
}
