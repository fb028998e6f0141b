#!/usr/bin/env python3
"""Plate photos per second: `borderflow eval-images` against rapidocr, the
same photos, the same machine, back to back in one run.

For each labelled set (default: ../shared/data/us with --country US and
../shared/data/ua/oneline with --country UA):
  - borderflow: `borderflow [--workers W] eval-images DIR --country CC`
    (W: the machine's cores unless --workers), its images/s and exact-plate
    accuracy (O/0 and I/1 folded) from its summary, the photos and their
    labels from its per-image CSV;
  - rapidocr (rapidocr_read.py under .local/venv-ocr, its default models
    and ONNX Runtime threads), the same photos in the same order; its
    plate is the most confident text it reads that is plate-shaped
    (4 to 9 letters and digits with at least one digit, no time stamp
    or telephone-number punctuation), scored with the same folding.
Prints one JSON object per set (images/s and accuracy of both, the ratio,
the load average before and after), one per line.

rapidocr lives in its own virtual environment, .local/venv-ocr, installed
from benches/photos/requirements.txt when missing or changed.
"""

import argparse
import csv
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
VENV = ROOT / ".local" / "venv-ocr"
REQUIREMENTS = HERE / "requirements.txt"
SETS = {"us": ("us", "US"), "ua": ("ua/oneline", "UA")}

# Cyrillic letters of Ukrainian plates, as the engine folds them.
CYRILLIC = str.maketrans("АВЕІЇКМНОРСТХУавеіїкмнорстху", "ABEIIKMHOPCTXYABEIIKMHOPCTXY")


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def ensure_venv() -> Path:
    python = VENV / "bin" / "python"
    stamp = VENV / ".requirements.sha256"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return python
    print(f"preparing {VENV} (rapidocr, benchmark only)", file=sys.stderr)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(REQUIREMENTS)], check=True)
    stamp.write_text(digest + "\n")
    return python


def norm(text: str) -> str:
    return "".join(c for c in text.translate(CYRILLIC).upper() if c.isascii() and c.isalnum())


def fold(text: str) -> str:
    return text.replace("O", "0").replace("I", "1")


def plate_shaped(raw: str) -> bool:
    """A text a plate reader would offer as a plate: 4-9 letters and digits
    with a digit, not a clock, a date or a telephone number."""
    if re.search(r"\d[:/]\d|\d{4}-\d\d-\d\d|\d{3}-\d{3}-\d{4}", raw):
        return False
    key = norm(raw)
    return 4 <= len(key) <= 9 and any(c.isdigit() for c in key)


def borderflow(binary: str, directory: Path, country: str, workers: int | None, limit: int | None) -> tuple[dict, list[tuple[str, list[str]]]]:
    with tempfile.TemporaryDirectory() as tmp:
        out_csv = Path(tmp) / "eval.csv"
        command = [binary] + (["--workers", str(workers)] if workers else []) + ["eval-images", str(directory), "--country", country, "--csv", str(out_csv)]
        command += ["--limit", str(limit)] if limit else []
        started = time.perf_counter()
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - started
        summary = done.stdout
        rows = list(csv.DictReader(out_csv.open()))
    field = lambda pattern: re.search(pattern, summary)
    folded = field(r"folded\s+([\d.]+)% \((\d+)/(\d+)\)")
    per_s = field(r"images per second\s+([\d.]+) \((\d+) worker")
    photos = [(str(directory / r["file"]), r["truth"].split("|")) for r in rows]
    result = {
        "images_per_s": float(per_s.group(1)),
        "workers": int(per_s.group(2)),
        "exact_folded_pct": float(folded.group(1)),
        "exact_folded": int(folded.group(2)),
        "wall_s_with_model_loading": round(wall, 1),
    }
    return result, photos


def rapidocr(python: Path, photos: list[tuple[str, list[str]]]) -> dict:
    done = subprocess.run([str(python), str(HERE / "rapidocr_read.py")] + [p for p, _ in photos], check=True, capture_output=True, text=True)
    lines = [json.loads(l) for l in done.stdout.splitlines() if l.startswith("{")]
    per_photo, summary = lines[:-1], lines[-1]
    truths = dict(photos)
    exact = 0
    for row in per_photo:
        candidates = [(s, norm(t)) for t, s in zip(row["texts"], row["scores"]) if plate_shaped(t)]
        best = max(candidates, default=(0.0, ""))[1]
        exact += any(fold(best) == fold(t) for t in truths[row["file"]])
    return {
        "images_per_s": round(summary["images_per_s"], 3),
        "threads": "ONNX Runtime default",
        "exact_folded_pct": round(100.0 * exact / len(per_photo), 1),
        "exact_folded": exact,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"), help="the labelled sets' folder")
    parser.add_argument("--sets", default="us,ua", help="comma-separated: us, ua")
    parser.add_argument("--workers", type=int, help="borderflow's readers (default: the machine's cores)")
    parser.add_argument("--limit", type=int, help="the first N photos of each set")
    parser.add_argument("--binary", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/borderflow/target")), "debug", "borderflow"))
    args = parser.parse_args()
    python = ensure_venv()
    for name in args.sets.split(","):
        sub, country = SETS[name]
        directory = Path(args.data) / sub
        before = loadavg()
        ours, photos = borderflow(args.binary, directory, country, args.workers, args.limit)
        theirs = rapidocr(python, photos)
        print(json.dumps({
            "set": name,
            "images": len(photos),
            "country": country,
            "borderflow": ours,
            "rapidocr": theirs,
            "speed_ratio": round(ours["images_per_s"] / theirs["images_per_s"], 2),
            "cores": os.cpu_count(),
            "loadavg_before": before,
            "loadavg_after": loadavg(),
            "date": time.strftime("%Y-%m-%d"),
        }), flush=True)


if __name__ == "__main__":
    main()
