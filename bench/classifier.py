"""Classifier throughput on one core against bare jieba in the same run.

    .venv/bin/python bench/classifier.py

Prints human lines, then one line of JSON.
"""
from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"  # before numpy is imported: measure one core

import csv
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO / ".." / "shared" / "data"

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import jieba

from classifier import Classifier, ensure_default_model  # noqa: E402

N_TEXTS = 5000
N_SINGLE = 500


def corpus_texts(n: int) -> list[str]:
    texts = []
    for name, column in (("waimai_10k.csv", "review"), ("online_shopping_10_cats.csv", "review")):
        with open(DATA / "corpora" / name, encoding="utf-8-sig", newline="") as fh:
            texts += [row[column] for row in csv.DictReader(fh) if row[column]]
    step = max(1, len(texts) // n)
    return texts[::step][:n]


def main() -> None:
    texts = corpus_texts(N_TEXTS)
    with tempfile.TemporaryDirectory() as root:
        t = time.perf_counter()
        ensure_default_model(root)
        train_s = time.perf_counter() - t
        clf = Classifier.load(root)
        load_s = clf.load_seconds

        jieba.initialize()
        jieba.lcut(texts[0])
        t = time.perf_counter()
        for text in texts:
            jieba.lcut(text)
        jieba_per_s = len(texts) / (time.perf_counter() - t)

        clf.suggest_many(texts[:50])  # warm caches
        t = time.perf_counter()
        for i in range(0, len(texts), 256):
            clf.suggest_many(texts[i:i + 256])
        texts_per_s = len(texts) / (time.perf_counter() - t)

        lat = []
        for text in texts[:N_SINGLE]:
            t = time.perf_counter()
            clf.suggest(text)
            lat.append((time.perf_counter() - t) * 1000)
        lat.sort()

    result = {
        "texts_per_s": round(texts_per_s, 1),
        "jieba_per_s": round(jieba_per_s, 1),
        "ratio": round(texts_per_s / jieba_per_s, 3),
        "p50_ms": round(statistics.median(lat), 3),
        "p99_ms": round(lat[int(0.99 * (len(lat) - 1))], 3),
        "load_s": round(load_s, 3),
        "train_s": round(train_s, 1),
        "n_texts": len(texts),
        "mean_chars": round(statistics.mean(len(t) for t in texts), 1),
    }
    print(f"train default model: {train_s:.1f} s, load: {load_s:.3f} s")
    print(f"suggest_many: {texts_per_s:.0f} texts/s over {len(texts)} corpus texts (batches of 256)")
    print(f"bare jieba.lcut: {jieba_per_s:.0f} texts/s; ratio {result['ratio']:.2f} (aim >= 0.6)")
    print(f"single suggest: p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
