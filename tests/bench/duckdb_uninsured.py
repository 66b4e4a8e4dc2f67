"""The central-copy baseline (issue 6): load every department's raw CSV into
DuckDB and compute the same `uninsured` list as dxmesh, with ID
normalisation written in SQL (full-width digits and X, lowercase x, spaces
incl. U+3000, separators, legacy 15-digit upgrade, check character and
birth-date validation). Prints the wall time and the list size.

Usage: python3 duckdb_uninsured.py PROVINCE_DIR REF_DATE HOME_PROVINCE OUT_CSV
"""
import sys, time
import duckdb

root, ref, home, out = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
t0 = time.time()
con = duckdb.connect()
con.execute("SET threads TO 2")

def load(name, path):
    con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_csv('{root}/{path}', all_varchar=true, header=true)")

load("registry", "public_security/registry.csv")
load("ca", "civil_affairs/deaths.csv")
load("he", "health/deaths.csv")
load("ins", "hr/insured.csv")
load("nat", "ministry/national.csv")
t_load = time.time() - t0

W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
def check_expr(col):
    terms = " + ".join(f"CAST(substr({col},{i+1},1) AS INTEGER)*{w}" for i, w in enumerate(W))
    return f"substr('10X98765432', (({terms}) % 11) + 1, 1)"

con.execute(f"""
CREATE MACRO clean(x) AS upper(regexp_replace(translate(x, '０１２３４５６７８９Ｘｘ', '0123456789XX'), '[\\s\u3000\\-_./]', '', 'g'));
CREATE MACRO up15(c) AS CASE WHEN length(c) = 15 AND regexp_matches(c, '^[0-9]{{15}}$')
    THEN substr(c,1,6) || '19' || substr(c,7,9) || {check_expr("(substr(c,1,6) || '19' || substr(c,7,9))")}
    ELSE c END;
CREATE MACRO valid(c) AS length(c) = 18 AND regexp_matches(c, '^[0-9]{{17}}[0-9X]$')
    AND try_strptime(substr(c,7,8), '%Y%m%d') IS NOT NULL
    AND strftime(try_strptime(substr(c,7,8), '%Y%m%d'), '%Y%m%d') = substr(c,7,8)
    AND try_strptime(substr(c,7,8), '%Y%m%d') <= DATE '{ref}'
    AND substr(c,18,1) = {check_expr("c")};
CREATE MACRO norm(x) AS CASE WHEN valid(up15(clean(x))) THEN up15(clean(x)) ELSE NULL END;
""")
con.execute("CREATE TABLE reg AS SELECT norm(id_number) AS id, name, address FROM registry WHERE status = 'active'")
con.execute("""CREATE TABLE pen AS SELECT DISTINCT norm(id_number) AS id FROM ins
               WHERE status = 'active' AND insurance_type IN ('enterprise_pension','resident_pension')""")
con.execute("CREATE TABLE dead AS SELECT norm(id_number) AS id FROM ca UNION SELECT norm(id_number) FROM he")
con.execute(f"""CREATE TABLE oth AS SELECT DISTINCT norm(id_number) AS id FROM nat
               WHERE province_code <> '{home}' AND insurance_type IN ('enterprise_pension','resident_pension')""")
con.execute(f"""
CREATE TABLE result AS
WITH scope AS (
  SELECT * FROM reg WHERE id IS NOT NULL
    AND date_diff('year', strptime(substr(id,7,8), '%Y%m%d'), DATE '{ref}')
        - CASE WHEN strftime(DATE '{ref}', '%m%d') < substr(id,11,4) THEN 1 ELSE 0 END >= 16
)
SELECT DISTINCT s.id AS id_number, s.name, s.address FROM scope s
ANTI JOIN pen USING (id) ANTI JOIN dead USING (id) ANTI JOIN oth USING (id)
ORDER BY 1, 2, 3
""")
con.execute(f"COPY result TO '{out}' (HEADER, DELIMITER ',')")
n = con.execute("SELECT count(DISTINCT id_number) FROM result").fetchone()[0]
print(f"DUCKDB: {time.time() - t0:.2f}s (load {t_load:.2f}s), uninsured {n}")
