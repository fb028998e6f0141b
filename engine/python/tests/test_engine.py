"""The Python module `borderflow` end to end: Otaci's example post opened with
its storage in a temporary folder, a watchlist entry, reads pushed as pyarrow
tables, a subscription to `risk_flags`, ad-hoc SQL, a standard view checked
against DuckDB over the same rows, and shutdown writing the post's files.

Built and installed into .local/venv by scripts/python-module; run with
`.local/venv/bin/python -m pytest engine/python/tests` (`make test` does).
"""

import datetime
import pathlib
import re

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import borderflow

ROOT = pathlib.Path(__file__).resolve().parents[3]
CONFIG = ROOT / "examples" / "otaci-md.toml"
DWELL_TIMES_SQL = ROOT / "queries" / "sql" / "dwell_times.sql"

START_MS = 1_764_662_400_000  # 2025-12-02 08:00 UTC
MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS

TIMESTAMP = pa.timestamp("ms", tz="UTC")
# The plate read contract, spelled out as an analyst would: the test fails if
# the engine's schema drifts from it.
READS_SCHEMA = pa.schema(
    [
        pa.field("read_id", pa.string(), nullable=False),
        pa.field("post_id", pa.string(), nullable=False),
        pa.field("camera_id", pa.string(), nullable=False),
        pa.field("country", pa.string(), nullable=False),
        pa.field("lane", pa.uint16(), nullable=False),
        pa.field("direction", pa.string(), nullable=False),
        pa.field("point", pa.string(), nullable=False),
        pa.field("captured_at", TIMESTAMP, nullable=False),
        pa.field("plate_text", pa.string(), nullable=False),
        pa.field("plate_norm", pa.string(), nullable=False),
        pa.field("plate_country", pa.string()),
        pa.field("confidence", pa.float32(), nullable=False),
        pa.field("frames", pa.uint16(), nullable=False),
        pa.field(
            "bbox",
            pa.struct([pa.field(name, pa.float32(), nullable=False) for name in "xywh"]),
        ),
        pa.field("crop_uri", pa.string()),
    ]
)


def read(n, plate, captured_at_ms, lane=1, direction="entry", point="arrival"):
    """A read by Otaci's camera of that lane, direction and point."""
    return {
        "read_id": f"01JPYTEST{n:017d}",
        "post_id": "otaci",
        "camera_id": f"otaci-{direction}-{point}-{lane}",
        "country": "MD",
        "lane": lane,
        "direction": direction,
        "point": point,
        "captured_at": captured_at_ms,
        "plate_text": plate,
        "plate_norm": plate.replace(" ", "").upper(),
        "plate_country": None,
        "confidence": 0.93,
        "frames": 12,
        "bbox": None,
        "crop_uri": None,
    }


def reads_table(rows):
    return pa.Table.from_pylist(rows, schema=READS_SCHEMA)


def watchlist_table(plate, reason="stolen vehicle report", severity=3):
    return pa.table(
        {
            "plate": [plate],
            "reason": [reason],
            "severity": pa.array([severity], pa.uint8()),
            "valid_from": pa.array([START_MS - 24 * HOUR_MS], TIMESTAMP),
            "valid_to": pa.array([None], TIMESTAMP),
        }
    )


# Three vehicles enter Moldova at lane 1; the second is watchlisted.
ENTRIES = [read(i, plate, START_MS + (i + 1) * MINUTE_MS) for i, plate in enumerate(["KL 4521 AB", "ABC 123", "MDA 777"])]


@pytest.fixture
def storage(tmp_path):
    return tmp_path / "otaci"


@pytest.fixture
def engine(storage):
    engine = borderflow.Engine.open(str(CONFIG), storage=str(storage))
    yield engine
    engine.shutdown()


def watchlist_hits(batches):
    """The plates of `watchlist_hit` rows added in these risk_flags changes."""
    plates = []
    for batch in batches:
        rows = batch.to_pylist()
        plates += [row["plate_norm"] for row in rows if row["rule"] == "watchlist_hit" and row["_diff"] == 1]
    return sorted(plates)


def test_the_module_speaks_the_read_contract():
    assert borderflow.reads_schema().equals(READS_SCHEMA), borderflow.reads_schema()
    assert borderflow.watchlist_schema().names == ["plate", "reason", "severity", "valid_from", "valid_to"]


def test_a_watchlisted_plate_is_flagged_to_subscribers(engine):
    assert {"risk_flags", "dwell_times", "cross_border_matches"} <= set(engine.view_names())
    assert {"reads", "watchlist", "posts"} <= set(engine.table_names())
    flags = engine.subscribe("risk_flags")
    assert flags.poll() == []

    engine.upsert_watchlist(watchlist_table("ABC123"), at_ms=START_MS)
    assert engine.push_reads(reads_table(ENTRIES), at_ms=START_MS + 5 * MINUTE_MS) == 3
    assert engine.last_commit_ms == START_MS + 5 * MINUTE_MS

    changes = list(flags)
    assert changes and all(isinstance(change, pa.RecordBatch) for change in changes)
    assert {"rule", "plate_norm", "_diff", "_time"} <= set(changes[0].schema.names)
    assert watchlist_hits(changes) == ["ABC123"]
    # Iteration drained the changes: nothing until the next commit.
    assert list(flags) == []
    assert flags.wait(0.01) is None

    # A read of a plate on nobody's list adds no watchlist hit.
    engine.push_reads(reads_table([read(9, "ZX 0001", START_MS + 6 * MINUTE_MS)]), at_ms=START_MS + 7 * MINUTE_MS)
    assert watchlist_hits(flags.poll()) == []

    hits = engine.sql("SELECT plate_norm, severity, detail FROM risk_flags WHERE rule = 'watchlist_hit'")
    assert isinstance(hits, pa.Table)
    assert hits.to_pylist() == [{"plate_norm": "ABC123", "severity": 3, "detail": "watchlisted: stolen vehicle report"}]


def test_sql_answers_and_pushing_again_is_deduplicated(engine):
    assert engine.push_reads(reads_table(ENTRIES), at_ms=START_MS + 5 * MINUTE_MS) == 3
    # The same reads again, as a RecordBatch this time: nothing new.
    assert engine.push_reads(reads_table(ENTRIES).to_batches()[0], at_ms=START_MS + 6 * MINUTE_MS) == 0
    # Two known reads and one new one: only the new one counts.
    departure = read(3, "ABC 123", START_MS + 20 * MINUTE_MS, point="departure")
    assert engine.push_reads(reads_table(ENTRIES[:2] + [departure]), at_ms=START_MS + 21 * MINUTE_MS) == 1

    answer = engine.sql(
        "SELECT direction, point, count(*) AS reads FROM reads GROUP BY direction, point ORDER BY direction, point"
    )
    assert answer.to_pylist() == [
        {"direction": "entry", "point": "arrival", "reads": 3},
        {"direction": "entry", "point": "departure", "reads": 1},
    ]
    assert engine.table("reads").num_rows == 4
    with pytest.raises(borderflow.QueryError):
        engine.sql("SELECT nope FROM reads")
    with pytest.raises(borderflow.Error, match="no_such_view"):
        engine.snapshot("no_such_view")


def test_a_malformed_table_is_refused_naming_the_column(engine):
    table = reads_table(ENTRIES)
    with pytest.raises(borderflow.InputError, match="plate_norm"):
        engine.push_reads(table.drop_columns(["plate_norm"]), at_ms=START_MS + MINUTE_MS * 5)
    lanes_as_text = table.set_column(table.schema.get_field_index("lane"), "lane", pa.array(["1", "1", "1"]))
    with pytest.raises(borderflow.InputError, match="lane"):
        engine.push_reads(lanes_as_text, at_ms=START_MS + MINUTE_MS * 6)
    with pytest.raises(TypeError, match="pyarrow"):
        engine.push_reads({"read_id": ["x"]})
    # Nothing was applied; the engine still takes good reads.
    assert engine.sql("SELECT count(*) AS n FROM reads").column("n").to_pylist() == [0]
    assert engine.push_reads(table, at_ms=START_MS + MINUTE_MS * 7) == 3


def test_a_commit_time_must_move_forward(engine):
    engine.push_reads(reads_table(ENTRIES[:1]), at_ms=START_MS + 5 * MINUTE_MS)
    with pytest.raises(borderflow.InputError, match="not after the last commit"):
        engine.push_reads(reads_table(ENTRIES[1:]), at_ms=START_MS)


def test_pushing_at_the_wall_clock(engine):
    now_ms = int(datetime.datetime.now(datetime.timezone.utc).timestamp() * 1000)
    assert engine.push_reads(reads_table([read(1, "KL 4521 AB", now_ms - MINUTE_MS)])) == 1
    assert engine.last_commit_ms >= now_ms


def arrow_of(relation):
    """A DuckDB relation's rows as a pyarrow Table, whatever the duckdb release returns."""
    result = relation.arrow()
    return result.read_all() if isinstance(result, pa.RecordBatchReader) else result


def rows(table):
    """A table's rows, timestamps as epoch milliseconds, sorted."""
    columns = {}
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_timestamp(column.type):
            column = pc.cast(pc.cast(column, pa.timestamp("ms", tz="UTC")), pa.int64())
        columns[name] = column.to_pylist()
    records = [tuple(columns[name][i] for name in table.column_names) for i in range(table.num_rows)]
    return sorted(records, key=repr)


def duckdb_dwell_times(reads, posts):
    """`dwell_times` as DuckDB computes it from the view's own SQL (queries/sql/dwell_times.sql).

    Two spellings differ between DataFusion and DuckDB: the `plate_fuzzy`
    UDF becomes a macro (the same confusion folding, on keys already
    normalised), and a timestamp's milliseconds are `epoch_ms` (DuckDB casts
    no timestamp to BIGINT; `//` is its integer division).
    """
    text = DWELL_TIMES_SQL.read_text()
    view = re.search(r"CREATE VIEW dwell_times AS\n(.*?);", text, re.S)
    assert view, "dwell_times.sql has no `CREATE VIEW dwell_times`"
    query, substitutions = re.subn(
        r"\(CAST\(([\w.]+) AS BIGINT\) - CAST\(([\w.]+) AS BIGINT\)\) / 1000",
        r"(epoch_ms(\1) - epoch_ms(\2)) // 1000",
        view.group(1),
    )
    assert substitutions == 1, "dwell_s is no longer spelled as this test expects"
    con = duckdb.connect()
    con.register("reads", reads)
    con.register("posts", posts)
    con.execute("CREATE MACRO plate_fuzzy(p) AS translate(p, 'ODQIBSZ', '0001852')")
    return arrow_of(con.sql(query))


def test_dwell_times_equal_duckdb_over_the_same_reads(engine):
    t = START_MS
    passages = [
        # A passage: arrival, then departure 20 minutes later.
        read(1, "KL 4521 AB", t, lane=1),
        read(2, "KL 4521 AB", t + 20 * MINUTE_MS, lane=1, point="departure"),
        # Two departures: the arrival pairs with the first.
        read(3, "MDA 777", t + 5 * MINUTE_MS, lane=1),
        read(4, "MDA 777", t + 15 * MINUTE_MS, lane=1, point="departure"),
        read(5, "MDA 777", t + 40 * MINUTE_MS, lane=1, point="departure"),
        # Read O/0 differently at the two cameras: the same vehicle.
        read(6, "OB5 123", t + 2 * MINUTE_MS, lane=2),
        read(7, "0B5 123", t + 32 * MINUTE_MS, lane=2, point="departure"),
        # Two arrivals, one departure: the departure pairs with the latest.
        read(8, "RR 1234", t, lane=3),
        read(9, "RR 1234", t + 10 * MINUTE_MS, lane=3),
        read(10, "RR 1234", t + 30 * MINUTE_MS, lane=3, point="departure"),
        # Leaving Moldova.
        read(11, "EX 4040", t + MINUTE_MS, lane=1, direction="exit"),
        read(12, "EX 4040", t + 9 * MINUTE_MS + 500, lane=1, direction="exit", point="departure"),
        # No passage: departure over 12 hours later, or at another lane.
        read(13, "XY 1000", t, lane=2),
        read(14, "XY 1000", t + 13 * HOUR_MS, lane=2, point="departure"),
        read(15, "ZZ 9999", t, lane=1),
        read(16, "ZZ 9999", t + 10 * MINUTE_MS, lane=2, point="departure"),
    ]
    reads = reads_table(passages)
    assert engine.push_reads(reads, at_ms=t + 14 * HOUR_MS) == len(passages)

    ours = engine.snapshot("dwell_times")
    theirs = duckdb_dwell_times(reads, engine.table("posts"))
    assert ours.column_names == theirs.column_names
    assert rows(ours) == rows(theirs)
    passages_found = sorted(zip(ours.column("plate_norm").to_pylist(), ours.column("dwell_s").to_pylist()))
    assert passages_found == [("EX4040", 480), ("KL4521AB", 1200), ("MDA777", 600), ("OB5123", 1800), ("RR1234", 1200)]


def test_shutdown_writes_the_post_files_and_a_reopen_recovers(storage):
    with borderflow.Engine.open(str(CONFIG), storage=str(storage)) as engine:
        engine.upsert_watchlist(watchlist_table("ABC123"), at_ms=START_MS)
        engine.push_reads(reads_table(ENTRIES), at_ms=START_MS + 5 * MINUTE_MS)
        assert not engine.closed
    assert engine.closed
    with pytest.raises(borderflow.Error, match="shut down"):
        engine.sql("SELECT 1")
    engine.shutdown()  # a second shutdown does nothing

    written = sorted(str(path.relative_to(storage)) for path in storage.rglob("*") if path.is_file())
    assert "views/risk_flags/snapshot.parquet" in written
    assert any(name.startswith("reads/otaci/") and name.endswith(".parquet") for name in written), written
    flags = pq.read_table(storage / "views" / "risk_flags" / "snapshot.parquet")
    assert [row["plate_norm"] for row in flags.to_pylist() if row["rule"] == "watchlist_hit"] == ["ABC123"]
    history = pa.concat_tables(pq.read_table(storage / name) for name in written if name.startswith("reads/"))
    assert sorted(history.column("plate_norm").to_pylist()) == ["ABC123", "KL4521AB", "MDA777"]

    # The log holds the reads: a new engine on the same storage has them, and
    # pushing them again adds nothing.
    with borderflow.Engine.open(str(CONFIG), storage=str(storage)) as again:
        assert again.recovery()["reads"] == 3
        assert again.push_reads(reads_table(ENTRIES), at_ms=START_MS + 10 * MINUTE_MS) == 0
        assert again.sql("SELECT count(*) AS n FROM reads").column("n").to_pylist() == [3]


def test_a_bad_config_names_its_file_and_field(tmp_path):
    config = tmp_path / "broken.toml"
    config.write_text(CONFIG.read_text().replace('country = "MD"', 'country = 7', 1))
    with pytest.raises(borderflow.ConfigError, match=r"broken\.toml:\d+:\d+: post\.country"):
        borderflow.Engine.open(str(config), storage=str(tmp_path / "store"))
    with pytest.raises(borderflow.ConfigError, match="missing.toml"):
        borderflow.Engine.open(str(tmp_path / "missing.toml"))
