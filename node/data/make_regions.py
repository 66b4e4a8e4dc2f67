#!/usr/bin/env python3
"""Builds node/data/regions.tsv, the GB/T 2260 region names dxmesh shows
next to region codes (the first six digits of an ID number).

Sources (see docs/decisions.md):
  - china-division 2.7.0 (npm; WTFPL): the National Bureau of Statistics'
    2023 statistical division codes: provinces, prefectures, counties;
  - gb2260 0.6.0 (npm; MIT): the GB/T 2260 revisions 2002-2016, for codes
    retired since (older ID numbers still carry them).

Usage: make_regions.py CHINA_DIVISION_PACKAGE_DIR GB2260_PACKAGE_DIR > regions.tsv
(the `package/` folders of the two npm tarballs).

Output, one code a line, sorted: code, name, prefecture name, province
name, and the last revision that listed it ("current" for codes in force).
"""
import csv
import json
import os
import sys

cd, gb = sys.argv[1], sys.argv[2]
dist = os.path.join(cd, "dist")
provinces = {r["code"]: r["name"] for r in csv.DictReader(open(os.path.join(dist, "provinces.csv"), encoding="utf-8"))}
cities = {r["code"]: r["name"] for r in csv.DictReader(open(os.path.join(dist, "cities.csv"), encoding="utf-8"))}
rows = {}
for code, name in provinces.items():
    rows[code + "0000"] = (name, "", name, "current")
for code, name in cities.items():
    province = provinces.get(code[:2], "")
    # 市辖区 / 县 (the districts of a municipality): the municipality's name.
    shown = province if name in ("市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划") else name
    rows[code + "00"] = (shown, shown, province, "current")
for r in csv.DictReader(open(os.path.join(dist, "areas.csv"), encoding="utf-8")):
    province = provinces.get(r["provinceCode"], "")
    city = rows.get(r["cityCode"] + "00", ("", "", "", ""))[0]
    rows[r["code"]] = (r["name"], city, province, "current")
# Codes in force that the statistical list leaves out: Taiwan, and the
# codes the residence permits of Hong Kong, Macao and Taiwan residents
# carry (810000, 820000, 830000; GB/T 2260 lists the first two as the
# regions themselves).
for code, name in (
    ("710000", "台湾省"),
    ("810000", "香港特别行政区"),
    ("820000", "澳门特别行政区"),
    ("830000", "台湾居民居住证"),
):
    rows[code] = (name, "", name, "current")
lib = os.path.join(gb, "lib")
revisions = sorted(f[:-5] for f in os.listdir(lib) if f[:6].isdigit() and f.endswith(".json"))
# Newest first: a retired code keeps the name of the last revision listing it.
for rev in reversed(revisions):
    table = json.load(open(os.path.join(lib, rev + ".json"), encoding="utf-8"))
    for code, name in table.items():
        if code in rows or len(code) != 6:
            continue
        province = table.get(code[:2] + "0000", "")
        city = table.get(code[:4] + "00", "")
        if city in ("市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划", ""):
            city = province
        if code.endswith("0000"):
            city = ""
        elif code.endswith("00"):
            name = city
        rows[code] = (name, city, province, rev)
out = csv.writer(sys.stdout, delimiter="\t", lineterminator="\n")
for code in sorted(rows):
    out.writerow((code,) + rows[code])
