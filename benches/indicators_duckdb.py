#!/usr/bin/env python3
"""DuckDB side of benches/indicators.sh: the indicator suite as raw SQL.

Subcommands:

  prepare QUERIES_DIR OUT_DIR
      Writes OUT_DIR/<id>.sql for every queries/*.sql: the TOML header
      stripped and the $placeholders replaced with the parameters' literal
      defaults (no default: CAST(NULL AS VARCHAR) for text, CAST(NULL AS INT)
      for int). Files calling the survey functions (svy_mean, svy_prop,
      svy_total, svy_ratio), which only osservatorio has, are left out and
      listed in OUT_DIR/skipped.tsv as "<id>\\t<reason>".

  run WAREHOUSE SQL_DIR [--out DIR] [--keep-going]
      One DuckDB connection: registers every table of the warehouse as a view
      over its current Parquet files (read from the Delta log: checkpoint, then
      `add` minus `remove` actions of the later commits), then runs every
      SQL_DIR/*.sql in name order and fetches all its rows. With --out, writes
      each result to DIR/<id>.csv. A failing query stops the run, unless
      --keep-going, which lists it in DIR/failed.tsv (or standard error).

  race WAREHOUSE SQL_DIR FLIGHT_URI ROUNDS
      The suite with both engines warm, in one process: one DuckDB
      connection with the views registered, and one ADBC Flight SQL
      connection to a running `osservatorio serve` (token in the environment
      variable OSSERVATORIO_TOKEN). Each round runs every SQL_DIR/*.sql on
      both, fetching all rows, the engines' order alternating between rounds.
      Prints JSON {"duckdb": [seconds per round], "osservatorio": [...]}.
      Needs adbc-driver-flightsql and pyarrow besides duckdb.

  compare A_DIR B_DIR [IDS...]
      Compares A_DIR/<id>.csv with B_DIR/<id>.csv: same header, same rows once
      sorted, numbers equal within a relative tolerance of 1e-9 (and empty
      cells only with empty cells). Prints the differences; exits 1 if any.

Only the standard library and the duckdb package (plus ADBC for race).
"""
import csv
import datetime
import decimal
import glob
import json
import math
import os
import re
import sys
import tomllib
import urllib.parse

SURVEY_FUNCTIONS = re.compile(r"\bsvy_(mean|prop|total|ratio)\s*\(", re.IGNORECASE)
PLACEHOLDER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
REL_TOL = 1e-9


# --- prepare ----------------------------------------------------------------

def split_header(text):
    """(TOML header, SQL body) of an indicator file."""
    lines = text.splitlines(keepends=True)
    header = []
    i = 0
    while i < len(lines) and lines[i].startswith("--"):
        line = lines[i]
        if line.startswith("-- "):
            header.append(line[3:])
        elif line.startswith("--"):
            header.append(line[2:])
        i += 1
    return "".join(header), "".join(lines[i:])


def literal(param):
    kind = param.get("type", "text")
    if "default" not in param:
        return "CAST(NULL AS INT)" if kind == "int" else "CAST(NULL AS VARCHAR)"
    value = param["default"]
    if kind == "int":
        return str(int(value))
    return "'" + str(value).replace("'", "''") + "'"


def prepare(queries_dir, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    skipped = []
    prepared = 0
    for path in sorted(glob.glob(os.path.join(queries_dir, "*.sql"))):
        header, body = split_header(open(path, encoding="utf-8").read())
        meta = tomllib.loads(header)
        qid = meta.get("id") or os.path.splitext(os.path.basename(path))[0]
        if SURVEY_FUNCTIONS.search(body):
            skipped.append((qid, "survey functions (svy_*), osservatorio only"))
            continue
        values = {p["name"]: literal(p) for p in meta.get("parameters", [])}

        def substitute(m):
            name = m.group(1)
            if name not in values:
                sys.exit(f"{path}: ${name} is not a declared parameter")
            return values[name]

        sql = PLACEHOLDER.sub(substitute, body).strip().rstrip(";") + "\n"
        with open(os.path.join(out_dir, qid + ".sql"), "w", encoding="utf-8") as f:
            f.write(sql)
        prepared += 1
    with open(os.path.join(out_dir, "skipped.tsv"), "w", encoding="utf-8") as f:
        for qid, reason in skipped:
            f.write(f"{qid}\t{reason}\n")
    print(f"{prepared} queries prepared, {len(skipped)} skipped", file=sys.stderr)


# --- Delta log ----------------------------------------------------------------

DELTA_TYPES = {
    "string": "VARCHAR", "long": "BIGINT", "integer": "INTEGER", "short": "SMALLINT",
    "byte": "TINYINT", "float": "FLOAT", "double": "DOUBLE", "boolean": "BOOLEAN",
    "date": "DATE", "timestamp": "TIMESTAMPTZ", "timestamp_ntz": "TIMESTAMP",
    "binary": "BLOB",
}


def duck_type(delta_type):
    if isinstance(delta_type, str):
        if delta_type in DELTA_TYPES:
            return DELTA_TYPES[delta_type]
        m = re.fullmatch(r"decimal\((\d+),\s*(\d+)\)", delta_type)
        if m:
            return f"DECIMAL({m.group(1)},{m.group(2)})"
    raise SystemExit(f"unsupported Delta type {delta_type!r}")


def current_files(con, table_dir):
    """(schema fields, partition columns, current data files) of a Delta table."""
    log = os.path.join(table_dir, "_delta_log")
    files = {}
    metadata = None
    start = -1
    last_checkpoint = os.path.join(log, "_last_checkpoint")
    if os.path.exists(last_checkpoint):
        cp = json.load(open(last_checkpoint))
        start = int(cp["version"])
        parts = sorted(glob.glob(os.path.join(log, f"{start:020d}.checkpoint*.parquet")))
        if not parts:
            raise SystemExit(f"{log}: checkpoint {start} listed but not found")
        plist = ", ".join("'" + p.replace("'", "''") + "'" for p in parts)
        for add, meta in con.execute(
            f"SELECT to_json(add), to_json(metaData) FROM read_parquet([{plist}], union_by_name=true)"
        ).fetchall():
            if add and add != "null":
                a = json.loads(add)
                files[a["path"]] = a
            if meta and meta != "null":
                metadata = json.loads(meta)
    commits = sorted(
        (int(os.path.basename(p)[:20]), p)
        for p in glob.glob(os.path.join(log, "*.json"))
        if re.fullmatch(r"\d{20}\.json", os.path.basename(p))
    )
    for version, path in commits:
        if version <= start:
            continue
        for line in open(path, encoding="utf-8"):
            if not line.strip():
                continue
            action = json.loads(line)
            if "add" in action:
                files[action["add"]["path"]] = action["add"]
            elif "remove" in action:
                files.pop(action["remove"]["path"], None)
            elif "metaData" in action:
                metadata = action["metaData"]
            elif "protocol" in action and action["protocol"].get("minReaderVersion", 1) > 1:
                features = action["protocol"].get("readerFeatures") or []
                if set(features) - {"timestampNtz"}:
                    raise SystemExit(f"{table_dir}: Delta reader features {features} not supported here")
    if metadata is None:
        raise SystemExit(f"{table_dir}: no metaData in the Delta log")
    fields = json.loads(metadata["schemaString"])["fields"]
    paths = [os.path.join(table_dir, urllib.parse.unquote(p)) for p in sorted(files)]
    return fields, metadata.get("partitionColumns", []), paths


def quote_ident(name):
    return '"' + name.replace('"', '""') + '"'


def register(con, warehouse):
    tables = 0
    for table_dir in sorted(glob.glob(os.path.join(warehouse, "*", "_delta_log"))):
        table_dir = os.path.dirname(table_dir)
        name = os.path.basename(table_dir)
        fields, partitions, paths = current_files(con, table_dir)
        types = {f["name"]: duck_type(f["type"]) for f in fields}
        columns = ", ".join(
            f"CAST({quote_ident(f['name'])} AS {types[f['name']]}) AS {quote_ident(f['name'])}"
            for f in fields
        )
        if not paths:
            defs = ", ".join(f"{quote_ident(f['name'])} {types[f['name']]}" for f in fields)
            con.execute(f"CREATE TEMP TABLE {quote_ident(name)} ({defs})")
        else:
            plist = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
            options = ""
            if partitions:
                hive_types = ", ".join(f"'{p}': {types[p]}" for p in partitions)
                options = f", hive_partitioning = true, hive_types = {{{hive_types}}}"
            else:
                options = ", hive_partitioning = false"
            con.execute(
                f"CREATE VIEW {quote_ident(name)} AS SELECT {columns} FROM read_parquet([{plist}]{options})"
            )
        tables += 1
    if tables == 0:
        raise SystemExit(f"{warehouse}: no Delta tables found")


# --- run --------------------------------------------------------------------

def cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return str(value)


def run(warehouse, sql_dir, out_dir=None, keep_going=False):
    import duckdb

    con = duckdb.connect()
    # DataFusion divides integers as integers; DuckDB's `/` would give a double.
    con.execute("SET integer_division = true")
    register(con, warehouse)
    failed = []
    for path in sorted(glob.glob(os.path.join(sql_dir, "*.sql"))):
        qid = os.path.splitext(os.path.basename(path))[0]
        sql = open(path, encoding="utf-8").read()
        try:
            cur = con.execute(sql)
            rows = cur.fetchall()
            header = [d[0] for d in cur.description]
        except duckdb.Error as e:
            if not keep_going:
                raise SystemExit(f"{qid}: {e}")
            failed.append((qid, str(e).splitlines()[0]))
            continue
        if out_dir:
            with open(os.path.join(out_dir, qid + ".csv"), "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f, lineterminator="\n")
                w.writerow(header)
                w.writerows([cell(v) for v in r] for r in rows)
    if failed:
        target = open(os.path.join(out_dir, "failed.tsv"), "w", encoding="utf-8") if out_dir else sys.stderr
        for qid, msg in failed:
            target.write(f"{qid}\t{msg}\n")


# --- race -------------------------------------------------------------------

def race(warehouse, sql_dir, flight_uri, rounds):
    import time

    import adbc_driver_flightsql.dbapi as flight_sql
    import duckdb
    from adbc_driver_flightsql import DatabaseOptions

    queries = [
        open(path, encoding="utf-8").read()
        for path in sorted(glob.glob(os.path.join(sql_dir, "*.sql")))
    ]
    duck = duckdb.connect()
    duck.execute("SET integer_division = true")
    register(duck, warehouse)
    token = os.environ["OSSERVATORIO_TOKEN"]
    osv = flight_sql.connect(
        flight_uri,
        db_kwargs={DatabaseOptions.AUTHORIZATION_HEADER.value: f"Bearer {token}"},
    )
    osv_cursor = osv.cursor()

    def duck_suite():
        for sql in queries:
            duck.sql(sql).to_arrow_table()

    def osv_suite():
        for sql in queries:
            osv_cursor.execute(sql)
            osv_cursor.fetch_arrow_table()

    times = {"duckdb": [], "osservatorio": []}
    for round_number in range(rounds):
        order = [("duckdb", duck_suite), ("osservatorio", osv_suite)]
        if round_number % 2:
            order.reverse()
        for name, suite in order:
            started = time.perf_counter()
            suite()
            times[name].append(time.perf_counter() - started)
    osv_cursor.close()
    osv.close()
    print(json.dumps(times))


# --- compare ----------------------------------------------------------------

def sort_key(row):
    key = []
    for c in row:
        n = None
        if c != "":
            try:
                n = float(c)
            except ValueError:
                n = None
        key.append((0, n, "") if n is not None else (1, 0.0, c))
    return key


def same_cell(a, b):
    if a == b:
        return True
    if a == "" or b == "":
        return False
    if a.lower() in ("true", "false") or b.lower() in ("true", "false"):
        return a.lower() == b.lower()
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return math.isclose(x, y, rel_tol=REL_TOL, abs_tol=0.0) or (x == 0.0 and y == 0.0)


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return (rows[0] if rows else []), rows[1:]


def compare(a_dir, b_dir, ids):
    if not ids:
        ids = sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(a_dir, "*.csv")))
    bad = 0
    for qid in ids:
        ha, ra = read_csv(os.path.join(a_dir, qid + ".csv"))
        hb, rb = read_csv(os.path.join(b_dir, qid + ".csv"))
        problems = []
        if ha != hb:
            problems.append(f"header: {ha} vs {hb}")
        if len(ra) != len(rb):
            problems.append(f"row count: {len(ra)} vs {len(rb)}")
        ra, rb = sorted(ra, key=sort_key), sorted(rb, key=sort_key)
        for i, (x, y) in enumerate(zip(ra, rb)):
            if len(x) != len(y) or not all(same_cell(p, q) for p, q in zip(x, y)):
                problems.append(f"sorted row {i + 1}: {','.join(x)}  vs  {','.join(y)}")
        if problems:
            bad += 1
            print(f"MISMATCH {qid} ({len(ra)} vs {len(rb)} rows)")
            for p in problems[:10]:
                print(f"  {p}")
            if len(problems) > 10:
                print(f"  ... {len(problems) - 10} more")
        else:
            print(f"equal    {qid} ({len(ra)} rows)")
    print(f"{len(ids) - bad} of {len(ids)} results equal")
    return 1 if bad else 0


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(argv) >= 2 else 2
    cmd, args = argv[1], argv[2:]
    if cmd == "prepare" and len(args) == 2:
        prepare(*args)
        return 0
    if cmd == "run" and len(args) >= 2:
        out_dir = None
        keep_going = "--keep-going" in args
        rest = [a for a in args if a != "--keep-going"]
        if "--out" in rest:
            i = rest.index("--out")
            out_dir = rest[i + 1]
            del rest[i:i + 2]
            os.makedirs(out_dir, exist_ok=True)
        if len(rest) != 2:
            print(__doc__, file=sys.stderr)
            return 2
        run(rest[0], rest[1], out_dir, keep_going)
        return 0
    if cmd == "race" and len(args) == 4:
        race(args[0], args[1], args[2], int(args[3]))
        return 0
    if cmd == "compare" and len(args) >= 2:
        return compare(args[0], args[1], args[2:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
