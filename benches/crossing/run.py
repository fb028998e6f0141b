#!/usr/bin/env python3
"""The crossing workload: borderflow replay against DuckDB and Pathway.

    .local/venv/bin/python benches/crossing/run.py [--rows N] [--batch-rows N]
        [--workers N] [--binary PATH | --profile dev|release] [--skip-pathway]

For each of q1, q2, q3 and all (the .sql files next to this script) it runs
  - borderflow: `borderflow --workers W replay --table reads=DATA --views Q.sql
    --batch-rows B --order-by t --out DIR`, its figures from the JSON line it
    prints last (its `seconds` time the feed and commits only, after loading);
  - DuckDB, in batch, over the same Parquet file with the same SQL (each
    `CREATE VIEW` run as `CREATE TABLE … AS`, so a view that selects from an
    earlier one reads its result, as in borderflow), threads = W, timed
    from connecting to the last result fetched as Arrow;
  - Pathway (pathway_queries.py, under .local/venv-pathway), fed the same
    rows in the same order as a stream, one epoch per B rows (see that
    file's docstring for how it feeds and what its clock covers);
then compares the three answers of every view as multisets of rows and
fails (exit status 1, a message on stderr) if any differ.

Prints one JSON object per query and a final summary, one per line.

The data come from generate.py, cached in .local/bench/crossing/ by rows,
seed and the generator's digest. Pathway lives in its own virtual
environment, .local/venv-pathway, installed from
benches/requirements-bench.txt when missing or changed: Pathway requires
pyarrow < 26, and the project's .local/venv pins pyarrow 26.0.1.
"""

import argparse
import collections
import datetime
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
LOCAL = ROOT / ".local"
BENCH_DIR = LOCAL / "bench" / "crossing"
PATHWAY_VENV = LOCAL / "venv-pathway"
REQUIREMENTS = ROOT / "benches" / "requirements-bench.txt"

QUERIES = {"q1": ["matches"], "q2": ["hourly"], "q3": ["frequent"], "all": ["matches", "hourly", "frequent"]}
COLUMNS = {
    "matches": ["plate", "crossing", "exit_id", "entry_id", "exit_t", "entry_t"],
    "hourly": ["crossing", "hour", "matches", "max_transit_s"],
    "frequent": ["plate", "exits"],
}

sys.path.insert(0, str(HERE))
import generate  # noqa: E402


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def default_binary(profile: str) -> Path:
    target = os.environ.get("CARGO_TARGET_DIR") or str(Path.home() / ".cache" / "borderflow" / "target")
    folder = "debug" if profile in ("dev", "debug", "test") else profile
    return Path(target) / folder / "borderflow"


def data_file(rows: int, seed: int) -> Path:
    """The reads, generated once per (rows, seed, generator version)."""
    digest = sha256(HERE / "generate.py")[:8]
    path = BENCH_DIR / f"reads-{rows}-seed{seed}-{digest}.parquet"
    if not path.exists():
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        table = generate.generate(rows, seed)
        tmp = path.with_suffix(".parquet.tmp")
        pq.write_table(table, tmp, compression="zstd", row_group_size=128 * 1024)
        tmp.rename(path)
        print(f"generated {path} ({rows} reads) in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return path


def pathway_python() -> Path:
    """Pathway's interpreter, its environment installed (quietly) when missing or stale."""
    python = PATHWAY_VENV / "bin" / "python"
    stamp = PATHWAY_VENV / ".requirements-bench.sha256"
    want = sha256(REQUIREMENTS)
    if python.exists() and stamp.exists() and stamp.read_text().strip() == want:
        return python
    print(f"installing {REQUIREMENTS} into {PATHWAY_VENV} (once; a few minutes)", file=sys.stderr)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PATHWAY_VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
        check=True, stdout=subprocess.DEVNULL,
    )
    stamp.write_text(want + "\n")
    return python


def last_json_line(text: str) -> dict:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON line in the output")


def run_process(what: str, cmd: list[str], timeout: float, env: dict | None = None) -> tuple[dict, float]:
    started = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"FAILED: {what} ran past --timeout {timeout:.0f} s: {' '.join(cmd)}")
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-8000:])
        raise SystemExit(f"FAILED: {what} exited with status {done.returncode}: {' '.join(cmd)}")
    try:
        return last_json_line(done.stdout), wall
    except ValueError:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"FAILED: {what} printed no JSON line: {' '.join(cmd)}")


def run_borderflow(binary: Path, data: Path, sql: Path, args, out: Path) -> dict:
    cmd = [str(binary), "--workers", str(args.workers), "replay", "--table", f"reads={data}",
           "--views", str(sql), "--batch-rows", str(args.batch_rows), "--order-by", "t", "--out", str(out)]
    figures, wall = run_process("borderflow replay", cmd, args.timeout)
    figures["wall_s"] = round(wall, 3)
    return figures


def run_duckdb(data: Path, sql: Path, views: list[str], workers: int) -> tuple[dict, dict[str, pa.Table]]:
    # The same SQL; each view materialised in file order, as a batch user would.
    text = re.sub(r"\bCREATE\s+VIEW\b", "CREATE TABLE", sql.read_text(), flags=re.IGNORECASE)
    started = time.perf_counter()
    con = duckdb.connect(config={"threads": workers})
    con.execute(f"CREATE VIEW reads AS SELECT * FROM read_parquet('{data}')")
    con.execute(text)
    answers = {v: con.sql(f"SELECT * FROM {v}").to_arrow_table() for v in views}
    seconds = time.perf_counter() - started
    rows = con.sql("SELECT count(*) FROM reads").fetchone()[0]
    con.close()
    return {"seconds": round(seconds, 3), "rows_per_s": round(rows / max(seconds, 1e-9)), "threads": workers}, answers


def run_pathway(python: Path, data: Path, query: str, args, out: Path) -> dict:
    cmd = [str(python), str(HERE / "pathway_queries.py"), "--data", str(data), "--query", query,
           "--batch-rows", str(args.batch_rows), "--workers", str(args.workers), "--out", str(out)]
    env = dict(os.environ, PATHWAY_MONITORING_LEVEL="none")
    figures, wall = run_process("pathway", cmd, args.timeout, env=env)
    figures["wall_s"] = round(wall, 3)
    return figures


def rows_of(table: pa.Table, view: str) -> list[tuple]:
    """The view's rows as sorted tuples of Python values, by column name."""
    names = COLUMNS[view]
    missing = [n for n in names if n not in table.column_names]
    if missing:
        raise SystemExit(f"FAILED: {view}: no column(s) {missing} in {table.column_names}")
    columns = []
    for n in names:
        col = table.column(n)
        if pa.types.is_integer(col.type):
            col = col.cast(pa.int64())
        elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type) or pa.types.is_string_view(col.type):
            col = col.cast(pa.string())
        columns.append(col.to_pylist())
    return sorted(zip(*columns), key=lambda r: tuple((v is None, v) for v in r))


def compare(view: str, answers: dict[str, list[tuple]]) -> dict:
    """Whether every system's rows equal borderflow's, as multisets."""
    reference = answers["borderflow"]
    result = {"rows": {system: len(rows) for system, rows in answers.items()}, "agree": True}
    for system, rows in answers.items():
        if system == "borderflow" or rows == reference:
            continue
        result["agree"] = False
        mine, theirs = collections.Counter(reference), collections.Counter(rows)
        result[f"only_borderflow_vs_{system}"] = [list(r) for r in list((mine - theirs).elements())[:5]]
        result[f"only_{system}"] = [list(r) for r in list((theirs - mine).elements())[:5]]
    return result


def ratio(a, b):
    return round(a / b, 4) if a and b else None


def main() -> int:
    parser = argparse.ArgumentParser(description="The crossing workload: borderflow replay vs DuckDB and Pathway; prints JSON lines.")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch-rows", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--profile", default="dev", help="cargo profile whose borderflow binary to run (dev, release, …)")
    parser.add_argument("--binary", type=Path, help="the borderflow binary (default: $CARGO_TARGET_DIR, else ~/.cache/borderflow/target, /debug/borderflow for --profile dev)")
    parser.add_argument("--skip-pathway", action="store_true")
    parser.add_argument("--queries", default="q1,q2,q3,all", help="comma-separated, of q1, q2, q3, all")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds each system may take per query")
    args = parser.parse_args()

    queries = [q.strip() for q in args.queries.split(",") if q.strip()]
    for q in queries:
        if q not in QUERIES:
            parser.error(f"--queries: {q!r} is not one of {', '.join(QUERIES)}")
    binary = args.binary or default_binary(args.profile)
    if not binary.exists():
        parser.error(f"{binary}: no borderflow binary (build it with `cargo build --bin borderflow`, or give --binary)")

    load_start = loadavg()
    data = data_file(args.rows, args.seed)
    rows = pq.ParquetFile(data).metadata.num_rows
    python = None if args.skip_pathway else pathway_python()
    pathway_version = None
    if python is not None:
        pathway_version = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('pathway'))"],
                                         capture_output=True, text=True, check=True).stdout.strip()

    results = []
    for query in queries:
        sql = HERE / f"{query}.sql"
        views = QUERIES[query]
        work = BENCH_DIR / "runs" / f"{query}-{rows}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        before = loadavg()

        bf = run_borderflow(binary, data, sql, args, work / "borderflow")
        duck, duck_answers = run_duckdb(data, sql, views, args.workers)
        pw_figures = None if python is None else run_pathway(python, data, query, args, work / "pathway")
        after = loadavg()

        agreement = {}
        for view in views:
            answers = {
                "borderflow": rows_of(pq.read_table(work / "borderflow" / f"{view}.parquet"), view),
                "duckdb": rows_of(duck_answers[view], view),
            }
            if pw_figures is not None:
                answers["pathway"] = rows_of(pq.read_table(work / "pathway" / f"{view}.parquet"), view)
            agreement[view] = compare(view, answers)
        agree = all(a["agree"] for a in agreement.values())

        line = {
            "query": query,
            "views": views,
            "rows": rows,
            "batch_rows": args.batch_rows,
            "workers": args.workers,
            "borderflow": {k: bf.get(k) for k in ("rows_per_s", "seconds", "wall_s", "commits", "commit_ms_p50", "commit_ms_p99", "peak_rss_mib", "workers")},
            "duckdb": duck,
            "pathway": pw_figures and {k: pw_figures.get(k) for k in ("rows_per_s", "seconds", "wall_s", "commits", "epochs_with_output", "threads")},
            "borderflow_vs_duckdb": ratio(bf.get("rows_per_s"), duck["rows_per_s"]),
            "borderflow_vs_pathway": ratio(bf.get("rows_per_s"), pw_figures and pw_figures.get("rows_per_s")),
            "result_rows": {v: a["rows"] for v, a in agreement.items()},
            "agree": agree,
            "loadavg_before": before,
            "loadavg_after": after,
        }
        if not agree:
            line["disagreement"] = {v: a for v, a in agreement.items() if not a["agree"]}
        print(json.dumps(line), flush=True)
        results.append(line)

    summary = {
        "summary": "crossing",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "rows": rows,
        "seed": args.seed,
        "batch_rows": args.batch_rows,
        "workers": args.workers,
        "binary": str(binary),
        "duckdb": duckdb.__version__,
        "pathway": pathway_version,
        "rows_per_s": {r["query"]: {"borderflow": r["borderflow"]["rows_per_s"], "duckdb": r["duckdb"]["rows_per_s"],
                                     "pathway": r["pathway"] and r["pathway"]["rows_per_s"]} for r in results},
        "borderflow_vs_duckdb": {r["query"]: r["borderflow_vs_duckdb"] for r in results},
        "borderflow_vs_pathway": {r["query"]: r["borderflow_vs_pathway"] for r in results},
        "all_agree": all(r["agree"] for r in results),
        "loadavg_start": load_start,
        "loadavg_end": loadavg(),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(summary), flush=True)
    if not summary["all_agree"]:
        bad = [f"{r['query']}:{v}" for r in results if not r["agree"] for v in r["disagreement"]]
        print(f"FAILED: the systems' answers differ for {', '.join(bad)} (see \"disagreement\" above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
