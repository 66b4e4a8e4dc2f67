//! Exports in the encodings Chinese departments' systems write: found by
//! the import (byte-order mark, else UTF-8 or GB18030) or named, decoded
//! as they stream, and a byte the encoding does not define reported with
//! its line and column, never replaced.

use super::*;
use dxmesh_protocol::date::Date;
use dxmesh_protocol::id::check_character;
use std::path::{Path, PathBuf};

const ID_A: &str = "44010519800101001";
const ID_B: &str = "44010519900202002";

fn id18(first17: &str) -> String {
    let mut s = first17.to_string();
    s.push(check_character(first17.as_bytes()) as char);
    s
}

/// A registry export with Chinese names and addresses, CRLF line ends.
fn export() -> String {
    format!(
        "id_number,name,address\r\n{},张伟,广州市人民路1号\r\n{},\"王芳，欧阳\",\"深圳市\r\n中山北路2号\"\r\n",
        id18(ID_A),
        id18(ID_B)
    )
}

fn import_bytes(
    bytes: &[u8],
    encoding: Option<&'static encoding_rs::Encoding>,
) -> (tempfile::TempDir, Result<ImportReport, ImportError>) {
    let dir = tempfile::tempdir().unwrap();
    let file: PathBuf = dir.path().join("export.csv");
    std::fs::write(&file, bytes).unwrap();
    let opts = ImportOptions {
        dataset: "registry".into(),
        file,
        mapping: None,
        format: None,
        reference: Date::new(2026, 11, 27).unwrap(),
        encoding,
        delimiter: None,
        sheet: None,
        accept_shrink: false,
        memory: crate::base::config::LimitsConfig::default().sort_bytes(),
    };
    let r = import(&dir.path().join("data"), &opts);
    (dir, r)
}

fn names(data: &Path) -> Vec<(String, Vec<String>)> {
    let reader = DatasetReader::open(data, "registry").unwrap();
    reader
        .blocks()
        .flat_map(|b| b.unwrap())
        .map(|r| (r.id.as_str().to_string(), r.values))
        .collect()
}

fn expected() -> Vec<(String, Vec<String>)> {
    vec![
        (
            id18(ID_A),
            vec!["张伟".to_string(), "广州市人民路1号".to_string()],
        ),
        (
            id18(ID_B),
            vec![
                "王芳，欧阳".to_string(),
                "深圳市\r\n中山北路2号".to_string(),
            ],
        ),
    ]
}

#[test]
fn gb18030_utf16_and_utf8_with_bom_import_the_same_records() {
    let text = export();
    let (gb, _, _) = encoding_rs::GB18030.encode(&text);
    let mut utf16le = vec![0xFF, 0xFE];
    utf16le.extend(text.encode_utf16().flat_map(|u| u.to_le_bytes()));
    let mut utf16be = vec![0xFE, 0xFF];
    utf16be.extend(text.encode_utf16().flat_map(|u| u.to_be_bytes()));
    let mut utf8_bom = b"\xEF\xBB\xBF".to_vec();
    utf8_bom.extend_from_slice(text.as_bytes());
    for (bytes, named, found) in [
        (gb.to_vec(), None, "gb18030"),
        (gb.to_vec(), Some(encoding_rs::GBK), "GBK"),
        (utf16le, None, "UTF-16LE"),
        (utf16be, None, "UTF-16BE"),
        (utf8_bom, None, "UTF-8"),
        (text.clone().into_bytes(), None, "UTF-8"),
    ] {
        let (dir, r) = import_bytes(&bytes, named);
        let r = r.unwrap_or_else(|e| panic!("{found}: {e}"));
        assert_eq!(r.encoding, found);
        assert_eq!((r.rows_read, r.rows_kept), (2, 2), "{found}");
        assert_eq!(names(&dir.path().join("data")), expected(), "{found}");
        // The source's hash is of its bytes as they are on disk.
        let sha = hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes));
        assert_eq!(r.source_sha256, sha, "{found}");
    }
}

#[test]
fn a_damaged_byte_in_a_utf8_export_is_reported_not_read_as_gb18030() {
    let mut bytes = export().into_bytes();
    // Cut 张 (three bytes in UTF-8) to its first two: valid GB18030 bytes.
    let at = bytes.windows(3).position(|w| w == "张".as_bytes()).unwrap();
    bytes.remove(at + 2);
    let (_, r) = import_bytes(&bytes, None);
    let e = r.unwrap_err().to_string();
    assert!(e.contains(":2: invalid UTF-8"), "{e}");
    assert!(e.contains("--encoding gb18030"), "{e}");
}

#[test]
fn a_byte_the_encoding_does_not_define_stops_the_import_at_its_line_and_column() {
    let text = export();
    let (gb, _, _) = encoding_rs::GB18030.encode(&text);
    let mut bad = gb.to_vec();
    // Line 3 is `<id>,"王芳...`; cut its name's second character in half.
    let line3 = bad
        .windows(id18(ID_B).len())
        .position(|w| w == id18(ID_B).as_bytes())
        .unwrap();
    let at = line3 + 18 + 2 + 2; // id, comma, quote, 王 (two bytes)
    bad[at + 1] = 0x20;
    let (_, r) = import_bytes(&bad, Some(encoding_rs::GB18030));
    let e = r.unwrap_err().to_string();
    assert!(e.contains("export.csv"), "{e}");
    assert!(e.contains("line 3, column 22"), "{e}");
    assert!(e.contains("not valid gb18030"), "{e}");
    // Nothing of it became a dataset.
    let (dir, r) = import_bytes(&bad, None);
    assert!(r.is_err());
    assert!(DatasetReader::open(&dir.path().join("data"), "registry").is_err());
}

#[test]
fn a_gb18030_export_with_chinese_headers_maps_through_deploy_mappings() {
    let mapping = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/mappings/zh-headers.toml");
    let text = format!(
        "公民身份号码,姓名,死亡日期\n{},张伟,2025年\n{},王芳,20250102\n",
        id18(ID_A),
        id18(ID_B)
    );
    let (gb, _, _) = encoding_rs::GB18030.encode(&text);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deaths.csv");
    std::fs::write(&file, &gb).unwrap();
    let data = dir.path().join("data");
    let r = import(
        &data,
        &ImportOptions {
            dataset: "deaths".into(),
            file,
            mapping: Some(mapping),
            format: None,
            reference: Date::new(2026, 11, 27).unwrap(),
            encoding: None,
            delimiter: None,
            sheet: None,
            accept_shrink: false,
            memory: crate::base::config::LimitsConfig::default().sort_bytes(),
        },
    )
    .unwrap();
    assert_eq!(r.encoding, "gb18030");
    assert_eq!(r.columns, ["id_number", "name", "death_date"]);
    // Every row is accounted for: the bad date is quarantined, not lost.
    assert_eq!((r.rows_read, r.rows_kept, r.rows_quarantined), (2, 1, 1));
    let reader = DatasetReader::open(&data, "deaths").unwrap();
    let rows: Vec<Record> = reader.blocks().flat_map(|b| b.unwrap()).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].values, ["王芳", "2025-01-02"]);
}

/// The offset of 1-based line `line` in `bytes`.
fn line_start(bytes: &[u8], line: usize) -> usize {
    bytes
        .split(|&b| b == b'\n')
        .take(line - 1)
        .map(|l| l.len() + 1)
        .sum()
}

/// A GBK export of 39 people with one byte the encoding does not define,
/// in the name on line 20.
fn gbk_with_a_bad_byte_on_line_20() -> Vec<u8> {
    let mut text = String::from("id_number,name,address\r\n");
    for i in 1..=39u32 {
        text.push_str(&format!(
            "{},张伟{i},广州市人民路{i}号\r\n",
            id18(&format!("440105198001{:02}{:03}", i % 28 + 1, i))
        ));
    }
    let (gb, _, _) = encoding_rs::GBK.encode(&text);
    let mut bytes = gb.to_vec();
    // 18 ID characters and the comma: the name's first byte.
    let at = line_start(&bytes, 20) + 19;
    bytes[at] = 0xFF;
    bytes
}

#[test]
fn a_gbk_export_with_a_bad_byte_past_its_first_lines_is_read_as_gbk_and_stops_on_that_byte() {
    let bad = gbk_with_a_bad_byte_on_line_20();
    // Without --encoding: found to be GB18030, and the byte named where it is.
    let (dir, r) = import_bytes(&bad, None);
    let e = anyhow::Error::from(r.unwrap_err());
    let text = crate::cli::error_text(&e);
    assert!(text.contains("export.csv"), "{text}");
    assert!(text.contains("line 20, column 20"), "{text}");
    assert!(text.contains("0xFF are not valid gb18030"), "{text}");
    // Said once, not once per cause.
    assert_eq!(text.matches("line 20").count(), 1, "{text}");
    assert!(DatasetReader::open(&dir.path().join("data"), "registry").is_err());
    // Named: the same.
    let (_, r) = import_bytes(&bad, Some(encoding_rs::GB18030));
    let text = crate::cli::error_text(&anyhow::Error::from(r.unwrap_err()));
    assert_eq!(text.matches("line 20, column 20").count(), 1, "{text}");
    // A UTF-8 export with a damaged byte on line 20 is still UTF-8's error.
    let mut utf8 = String::from_utf8(
        encoding_rs::GBK
            .decode_without_bom_handling(&gbk_with_a_bad_byte_on_line_20())
            .0
            .into_owned()
            .into_bytes(),
    )
    .unwrap()
    .into_bytes();
    let at = line_start(&utf8, 20) + 20;
    utf8[at] = 0xFF;
    let (_, r) = import_bytes(&utf8, None);
    let text = crate::cli::error_text(&anyhow::Error::from(r.unwrap_err()));
    assert!(text.contains(":20: invalid UTF-8"), "{text}");
}

#[test]
fn a_utf8_export_with_chinese_and_a_damaged_byte_is_never_read_as_gb18030() {
    // A row with Chinese, then a name with one byte dropped, at every
    // position of its characters: always UTF-8's error, on that line.
    let header = "id_number,name,address\n";
    let row = |id: &str| format!("{},欧阳娜娜,广州市人民路1号\n", id18(id));
    let first = row(ID_A);
    let name = header.len() + first.len() + 19;
    for cut in name..name + "欧阳娜娜".len() {
        let mut bytes = format!("{header}{first}{}", row(ID_B)).into_bytes();
        bytes.remove(cut);
        let (_, r) = import_bytes(&bytes, None);
        let text = crate::cli::error_text(&anyhow::Error::from(r.unwrap_err()));
        assert!(text.contains(":3: invalid UTF-8"), "cut at {cut}: {text}");
    }
}
