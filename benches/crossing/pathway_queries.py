#!/usr/bin/env python3
"""The crossing workload's queries in Pathway, fed as a stream. Run by run.py
under the Pathway environment (.local/venv-pathway), never imported by it.

How it feeds: the reads are loaded from the Parquet file and sorted by t
(then read_id, the order borderflow replay feeds) *before* the clock
starts; then a `pw.io.python.ConnectorSubject` pushes them one `next()`
per row from its own thread and calls `commit()` after every --batch-rows
rows, with autocommit off (`autocommit_duration_ms=None`), so each batch
is one Pathway epoch, as each batch is one commit in borderflow. The clock
covers `pw.run()`: feeding, incremental computation of every epoch, and
writing every epoch's changes to a JSON Lines file per view (Pathway needs
a sink to compute anything; the file is how the answers come out). The
final answer of a view is the sum of the diffs of its change log, written
to OUT/<view>.parquet after the clock stops.

The SQL (q1.sql, q2.sql, q3.sql) in Pathway's Python API:
  matches  - pw.temporal.interval_join of exits with entries on plate and
             crossing, entry.t - exit.t in [0, 3600], then country <> country
  hourly   - matches grouped by crossing and exit_t // 3600: count, max transit
  frequent - exits grouped by plate, count, kept when > 3

Prints one JSON line last: {"rows", "seconds", "rows_per_s", "commits",
"epochs_with_output" (per view, how many distinct Pathway times its
change log holds: evidence that the batches were processed one by one),
"threads", "pathway"}.
"""

import argparse
import collections
import json
import os
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq

VIEWS = {"q1": ["matches"], "q2": ["hourly"], "q3": ["frequent"], "all": ["matches", "hourly", "frequent"]}
COLUMNS = {
    "matches": [("plate", pa.string()), ("crossing", pa.string()), ("exit_id", pa.string()),
                ("entry_id", pa.string()), ("exit_t", pa.int64()), ("entry_t", pa.int64())],
    "hourly": [("crossing", pa.string()), ("hour", pa.int64()), ("matches", pa.int64()),
               ("max_transit_s", pa.int64())],
    "frequent": [("plate", pa.string()), ("exits", pa.int64())],
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--query", choices=list(VIEWS), required=True)
    parser.add_argument("--batch-rows", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    # Pathway reads its thread count from the environment when pw.run starts.
    os.environ["PATHWAY_THREADS"] = str(args.workers)
    import pathway as pw

    table = pq.read_table(args.data).sort_by([("t", "ascending"), ("read_id", "ascending")])
    names = ["read_id", "post", "country", "crossing", "direction", "t", "plate"]
    rows = list(zip(*(table.column(n).to_pylist() for n in names)))
    batch_rows = args.batch_rows

    class Reads(pw.Schema):
        read_id: str
        post: str
        country: str
        crossing: str
        direction: str
        t: int
        plate: str

    commits = 0

    class Feed(pw.io.python.ConnectorSubject):
        def run(self) -> None:
            nonlocal commits
            for start in range(0, len(rows), batch_rows):
                for r in rows[start:start + batch_rows]:
                    self.next(read_id=r[0], post=r[1], country=r[2], crossing=r[3],
                              direction=r[4], t=r[5], plate=r[6])
                self.commit()
                commits += 1

    reads = pw.io.python.read(Feed(), schema=Reads, autocommit_duration_ms=None)
    exits = reads.filter(reads.direction == "exit")
    entries = reads.filter(reads.direction == "entry")

    def matches():
        joined = pw.temporal.interval_join(
            exits, entries, exits.t, entries.t, pw.temporal.interval(0, 3600),
            exits.plate == entries.plate, exits.crossing == entries.crossing,
        ).select(
            plate=pw.left.plate, crossing=pw.left.crossing,
            exit_id=pw.left.read_id, entry_id=pw.right.read_id,
            exit_t=pw.left.t, entry_t=pw.right.t,
            exit_country=pw.left.country, entry_country=pw.right.country,
        )
        joined = joined.filter(joined.exit_country != joined.entry_country)
        return joined.select(joined.plate, joined.crossing, joined.exit_id, joined.entry_id,
                             joined.exit_t, joined.entry_t)

    def hourly(m):
        m = m.with_columns(hour=m.exit_t // 3600, transit=m.entry_t - m.exit_t)
        return m.groupby(m.crossing, m.hour).reduce(
            m.crossing, m.hour, matches=pw.reducers.count(), max_transit_s=pw.reducers.max(m.transit),
        )

    def frequent():
        counted = exits.groupby(exits.plate).reduce(exits.plate, exits=pw.reducers.count())
        return counted.filter(counted.exits > 3)

    wanted = VIEWS[args.query]
    outputs = {}
    if "matches" in wanted or "hourly" in wanted:
        m = matches()
        if "matches" in wanted:
            outputs["matches"] = m
        if "hourly" in wanted:
            outputs["hourly"] = hourly(m)
    if "frequent" in wanted:
        outputs["frequent"] = frequent()

    os.makedirs(args.out, exist_ok=True)
    logs = {}
    for name, t in outputs.items():
        logs[name] = os.path.join(args.out, f"{name}.changes.jsonl")
        pw.io.jsonlines.write(t, logs[name])

    started = time.perf_counter()
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    seconds = time.perf_counter() - started

    # The final state of each view: the change log's diffs summed per row.
    epochs = {}
    for name, path in logs.items():
        cols = [c for c, _ in COLUMNS[name]]
        state: collections.Counter = collections.Counter()
        times = set()
        with open(path) as f:
            for line in f:
                change = json.loads(line)
                state[tuple(change[c] for c in cols)] += change["diff"]
                times.add(change["time"])
        epochs[name] = len(times)
        if any(n < 0 for n in state.values()):
            raise SystemExit(f"{name}: a row retracted more often than inserted")
        final = [row for row, n in state.items() for _ in range(n)]
        arrays = [pa.array([row[i] for row in final], typ) for i, (_, typ) in enumerate(COLUMNS[name])]
        pq.write_table(pa.Table.from_arrays(arrays, names=cols), os.path.join(args.out, f"{name}.parquet"))
        os.remove(path)

    print(json.dumps({
        "rows": len(rows),
        "seconds": round(seconds, 3),
        "rows_per_s": round(len(rows) / max(seconds, 1e-9)),
        "commits": commits,
        "epochs_with_output": epochs,
        "threads": args.workers,
        "pathway": pw.__version__,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
