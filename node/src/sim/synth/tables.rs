//! The fixed tables of the model: the home province's counties, other
//! birth regions and provinces, the name and address vocabularies, the
//! disability categories, insurance types and row statuses, and the sizes
//! that shape the population (showcase and boundary people, workers from
//! elsewhere, ID buckets).

/// Home-province counties: code suffix (after the province code), the
/// district's name (used in addresses when the home province is 44), weight.
pub(super) const COUNTIES: [(&str, &str, u32); 37] = [
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
pub(super) const RETIRED_SUFFIX: &str = "0583";
/// A retired county code suffix reserved for the showcase people (the
/// standard's own example region), so their IDs never collide.
pub(super) const SHOWCASE_SUFFIX: &str = "0524";
/// Birth regions in other provinces (filtered against the home province).
pub(super) const OTHER_REGIONS: [&str; 14] = [
    "430102", "430521", "450102", "452501", "360102", "362101", "350102", "510104", "420102",
    "411302", "522601", "460105", "110105", "310101",
];
/// Provinces pensions elsewhere are recorded under (filtered against the home province).
pub(super) const OTHER_PROVINCES: [&str; 11] = [
    "11", "31", "35", "36", "41", "42", "43", "45", "46", "51", "52",
];
/// Hong Kong, Macao and Taiwan residence permits.
pub(super) const PERMIT_REGIONS: [&str; 3] = ["810000", "820000", "830000"];

pub(super) const SURNAMES: &str = "王 李 张 刘 陈 杨 黄 赵 吴 周 徐 孙 马 朱 胡 郭 何 高 林 罗 郑 梁 谢 宋 \
     唐 许 韩 冯 邓 曹 彭 曾 肖 田 董 袁 潘 于 蒋 蔡 余 杜 叶 程 苏 魏 吕 丁 \
     任 沈 姚 卢 姜 崔 钟 谭 陆 汪 范 金 石 廖 贾 夏 韦 付 方 白 邹 孟 熊 秦 \
     邱 江 尹 薛 闫 段 雷 侯 龙 史 陶 黎 贺 顾 毛 郝 龚 邵 万 钱 严 覃 武 戴 \
     莫 孔 向 汤";
pub(super) const COMPOUND_SURNAMES: &str = "欧阳 司马 上官 诸葛 司徒 东方";
pub(super) const GIVEN_MALE: &str = "伟 强 磊 军 勇 杰 涛 超 刚 平 辉 鹏 飞 鑫 波 斌 浩 凯 健 俊 帆 帅 旭 龙 \
     峰 建 国 志 东 海 成 亮 坤 彬 豪 锋 振 荣 贤 昌 伦 铭 毅 翔 栋 权 威 雄";
pub(super) const GIVEN_FEMALE: &str = "芳 娜 敏 静 丽 艳 娟 霞 燕 玲 桂 英 秀 兰 萍 红 婷 雪 琳 晶 洁 颖 倩 慧 \
     莉 梅 琴 璐 欣 怡 悦 雅 婉 瑶 蕾 薇 凤 珍 妍 茜 蓉 丹 露 珊 菲 琪 岚 莹";
pub(super) const GIVEN_NEUTRAL: &str = "小 晓 文 子 一 嘉 思 宇 天 永 春 秋 德 明 新 金 玉 安 家 华 佳 俊 少 立 \
     志 建 丽 美 世 庆 锦 雨";
pub(super) const STREETS: &str = "中山路 解放路 人民路 建设路 新华路 和平路 东风路 文化路 沿江路 环市路 \
     天河路 黄埔大道 工业大道 江南大道 滨江路 广州大道 深南大道 北京路 青年路 花园路 \
     学府路 健康路 友谊路 朝阳路 光明路 幸福路 长安路 迎宾路 府前路 南华路 \
     岭南大道 珠江路 海滨路 桂花路 荔枝路 凤凰路 榕树街 石牌街 龙口街 新港路";
pub(super) const VILLAGES: &str = "石岗村 新围村 上塘村 下沙村 大岭村 白石村 龙田村 黄竹村 东坑村 西岸村 \
     南村 北约村 田心村 塘尾村 凤岗村 水口村 岭头村 坑口村 沙湾村 鹤山村";
pub(super) const DISABILITY_CATEGORIES: [(&str, u32); 7] = [
    ("physical", 48),
    ("visual", 12),
    ("hearing", 14),
    ("speech", 2),
    ("intellectual", 9),
    ("mental", 9),
    ("multiple", 6),
];

/// The insurance types of `docs/agreements.md`, as the synthetic exports spell them.
pub const INSURANCE_TYPES: [&str; 7] = [
    "enterprise_pension",
    "resident_pension",
    "employee_medical",
    "resident_medical",
    "unemployment",
    "work_injury",
    "maternity",
];
pub(super) const EP: u8 = 0;
pub(super) const RP: u8 = 1;
pub(super) const EM: u8 = 2;
pub(super) const RM: u8 = 3;
pub(super) const UN: u8 = 4;
pub(super) const WI: u8 = 5;
pub(super) const MA: u8 = 6;

pub(super) fn is_pension(ty: u8) -> bool {
    ty == EP || ty == RP
}

pub(super) const REG_STATUS: [&str; 3] = ["active", "moved_out", "cancelled"];
pub(super) const HR_STATUS: [&str; 3] = ["active", "suspended", "terminated"];
pub(super) const ACTIVE: u8 = 0;
pub(super) const MOVED_OUT: u8 = 1;
pub(super) const CANCELLED: u8 = 2;
pub(super) const SUSPENDED: u8 = 1;
pub(super) const TERMINATED: u8 = 2;
/// Residents needed before showcase and boundary people are generated.
pub(super) const SHOWCASE_MIN_RESIDENTS: u64 = 200;
/// People on the 16th-birthday boundary (after the showcase people).
pub(super) const EDGE_PEOPLE: u64 = 3;
/// Workers from elsewhere, per resident.
pub(super) const WORKER_SHARE: f64 = 0.05;
/// New residents per cycle, as a share of `residents` (people moving into
/// the province, registered from the cycle they arrive).
pub(super) const NEWCOMER_SHARE: f64 = 0.005;
/// Cycles with new residents (after these, the province only changes).
pub(super) const NEWCOMER_CYCLES: u32 = 36;
/// Share of rows with a raw-ID fault that their department corrects in a
/// period.
pub(super) const CORRECTION_SHARE: f64 = 0.1;
/// People per (region, date, gender) bucket: sequence numbers 000-999 by parity.
pub(super) const BUCKET: u16 = 500;
/// Furthest a birth date is shifted to find a bucket with room.
pub(super) const MAX_SHIFT: u16 = 60;
