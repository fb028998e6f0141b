"""Reads every photo of a labelled set with rapidocr (its defaults) and
prints one JSON line per photo (file, texts, scores, ms) and, last, one
summary line (images, seconds, images_per_s).

Run by benches/photos/run.py under .local/venv-ocr; benchmark-only.
Usage: rapidocr_read.py FILE... (the files in the order to read them)
"""

import json
import sys
import time

from rapidocr import RapidOCR


def main() -> None:
    files = sys.argv[1:]
    engine = RapidOCR()
    # One photo first so model loading and the first run's allocations are
    # not in the timing (borderflow's readers are built before its clock too).
    engine(files[0])
    started = time.perf_counter()
    for path in files:
        t0 = time.perf_counter()
        result = engine(path)
        ms = (time.perf_counter() - t0) * 1e3
        texts = list(result.txts or ())
        scores = [float(s) for s in (result.scores or ())]
        print(json.dumps({"file": path, "texts": texts, "scores": scores, "ms": ms}), flush=True)
    seconds = time.perf_counter() - started
    print(json.dumps({"images": len(files), "seconds": seconds, "images_per_s": len(files) / seconds}), flush=True)


if __name__ == "__main__":
    main()
