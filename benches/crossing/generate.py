#!/usr/bin/env python3
"""Deterministic plate reads for the crossing workload, written as one Parquet file.

A vehicle passage is an exit read at one country's post of a crossing at
time t and an entry read at the other country's post of the same crossing
at t + uniform(60, 1800) s; 5 % of passages lose their entry read. Both
directions (MD->UA and UA->MD). Plates come from a small pool of commuters
(2 % of the plates, about 40 % of the passages, mostly at a home crossing)
and a large pool of occasional travellers. Traffic is about 10 000
passages a day over the five crossings, with a daytime peak, so N rows
span N / 19 500 days.

Columns: read_id (Utf8, unique), post, country ('MD'/'UA'), crossing,
direction ('exit'/'entry'), t (Int64, seconds since the start), plate.
Rows are sorted by t (then read_id); the same --rows and --seed give the
same file, byte for byte.

    python benches/crossing/generate.py --rows 1000000 --seed 7 --out reads.parquet
"""

import argparse
import random
import sys

import pyarrow as pa
import pyarrow.parquet as pq

# crossing -> (MD post, UA post)
CROSSINGS = {
    "criva-mamalyha": ("md-criva", "ua-mamalyha"),
    "otaci-mohyliv-podilskyi": ("md-otaci", "ua-mohyliv-podilskyi"),
    "tudora-starokazachie": ("md-tudora", "ua-starokazachie"),
    "vulcanesti-vinogradovca": ("md-vulcanesti", "ua-vinogradovca"),
    "palanca-maiaki-udobnoe": ("md-palanca", "ua-maiaki-udobnoe"),
}
# Share of the traffic at each crossing (Palanca and Otaci are the busiest).
CROSSING_WEIGHTS = [0.15, 0.25, 0.15, 0.10, 0.35]

PASSAGES_PER_DAY = 10_000
UNMATCHED = 0.05          # passages whose entry read is missing
COMMUTER_PLATES = 0.02    # share of the plate population that commutes
COMMUTER_PASSAGES = 0.40  # share of the passages made by commuters
HOME_CROSSING = 0.90      # a commuter's passages at its home crossing
TRAVELLER_TRIPS = 1.5     # passages per occasional traveller, on average
# Relative traffic per hour of the day (a daytime peak, a quiet night).
HOUR_WEIGHTS = [2, 1, 1, 1, 2, 3, 5, 7, 9, 10, 10, 10, 9, 9, 10, 10, 9, 8, 7, 6, 5, 4, 3, 2]

MD_LETTERS = "ABCDEFGHIJKLMNOPRSTUVXZ"
UA_LETTERS = "ABCEHIKMOPTX"  # the Cyrillic-lookalike Latin letters Ukrainian plates use
UA_REGIONS = ["AA", "KA", "AB", "BC", "BH", "BI", "AX", "BT", "CE", "AI", "BK", "AE"]


def plate(rng: random.Random) -> str:
    """A Moldovan 'ABC123' or a Ukrainian 'AA1234BB' plate."""
    if rng.random() < 0.5:
        return "".join(rng.choice(MD_LETTERS) for _ in range(3)) + f"{rng.randrange(1000):03d}"
    return rng.choice(UA_REGIONS) + f"{rng.randrange(10000):04d}" + rng.choice(UA_LETTERS) + rng.choice(UA_LETTERS)


def generate(rows: int, seed: int) -> pa.Table:
    rng = random.Random(seed)
    passages = max(1, round(rows / (2 - UNMATCHED)))
    days = max(1, round(passages / PASSAGES_PER_DAY))
    travellers = max(1, round(passages * (1 - COMMUTER_PASSAGES) / TRAVELLER_TRIPS))
    commuters = max(1, round(travellers * COMMUTER_PLATES / (1 - COMMUTER_PLATES)))

    seen: set[str] = set()

    def pool(n: int) -> list[str]:
        out = []
        while len(out) < n:
            p = plate(rng)
            if p not in seen:
                seen.add(p)
                out.append(p)
        return out

    commuter_plates = pool(commuters)
    traveller_plates = pool(travellers)
    names = list(CROSSINGS)
    home = [rng.choices(names, CROSSING_WEIGHTS)[0] for _ in commuter_plates]
    hours = list(range(24))

    reads: list[tuple[int, str, str, str, str, str]] = []  # (t, post, country, crossing, direction, plate)
    while len(reads) < rows:
        if rng.random() < COMMUTER_PASSAGES:
            i = rng.randrange(commuters)
            p = commuter_plates[i]
            crossing = home[i] if rng.random() < HOME_CROSSING else rng.choice(names)
        else:
            p = rng.choice(traveller_plates)
            crossing = rng.choices(names, CROSSING_WEIGHTS)[0]
        md_post, ua_post = CROSSINGS[crossing]
        t = rng.randrange(days) * 86_400 + rng.choices(hours, HOUR_WEIGHTS)[0] * 3_600 + rng.randrange(3_600)
        if rng.random() < 0.5:   # MD -> UA
            exit_read = (md_post, "MD")
            entry_read = (ua_post, "UA")
        else:                    # UA -> MD
            exit_read = (ua_post, "UA")
            entry_read = (md_post, "MD")
        reads.append((t, exit_read[0], exit_read[1], crossing, "exit", p))
        missing = rng.random() < UNMATCHED
        if not missing and len(reads) < rows:
            reads.append((t + rng.randint(60, 1800), entry_read[0], entry_read[1], crossing, "entry", p))

    reads.sort()  # by t, then the other columns: deterministic
    width = len(str(rows))
    return pa.table(
        {
            "read_id": pa.array([f"r{i:0{width}d}" for i in range(len(reads))], pa.string()),
            "post": pa.array([r[1] for r in reads], pa.string()),
            "country": pa.array([r[2] for r in reads], pa.string()),
            "crossing": pa.array([r[3] for r in reads], pa.string()),
            "direction": pa.array([r[4] for r in reads], pa.string()),
            "t": pa.array([r[0] for r in reads], pa.int64()),
            "plate": pa.array([r[5] for r in reads], pa.string()),
        }
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", required=True, help="the Parquet file to write")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows: at least 1")
    table = generate(args.rows, args.seed)
    pq.write_table(table, args.out, compression="zstd", row_group_size=128 * 1024)
    print(f"{args.out}: {table.num_rows} reads", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
