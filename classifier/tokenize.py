"""jieba word tokens for the models, one tokenizer per process.

jieba's full dictionary takes ~0.6 s to load even from its cache. We load a
trimmed copy instead (`data/jieba_words.txt`: the words of jieba's own
dictionary that occur in our complaint texts and review corpora, with
jieba's frequencies) and keep jieba's total frequency, so word
probabilities and therefore the cuts are those of the full dictionary for
every word we know. Unknown words fall back to jieba's HMM, as usual.
"""
from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Iterable

with warnings.catch_warnings():  # jieba 0.42 imports the deprecated pkg_resources
    warnings.simplefilter("ignore")
    import jieba

from .normalize import normalize

DATA = Path(__file__).resolve().parent / "data"
WORDS_FILE = DATA / "jieba_words.txt"
USER_DICT_FILE = DATA / "user_dict.txt"
STOPWORDS_FILE = DATA / "stopwords.txt"
JIEBA_TOTAL = 60101967  # sum of frequencies in jieba 0.42's dict.txt

_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None
_stopwords: frozenset[str] | None = None


def _read_lines(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("# ")]


def _build() -> jieba.Tokenizer:
    tok = jieba.Tokenizer()
    freq: dict[str, int] = {}
    for line in _read_lines(WORDS_FILE):
        word, count = line.split(" ")[:2]
        freq[word] = int(count)
        for i in range(1, len(word)):  # prefixes tell jieba's DAG to keep scanning
            freq.setdefault(word[:i], 0)
    tok.FREQ, tok.total, tok.initialized = freq, JIEBA_TOTAL, True
    for line in _read_lines(USER_DICT_FILE):
        word, count = line.split(" ")[:2]
        tok.add_word(word, int(count))
    return tok


def tokenizer() -> jieba.Tokenizer:
    """The process-wide jieba tokenizer (built on first use, ~0.1 s)."""
    global _tokenizer, _stopwords
    if _tokenizer is None:
        with _lock:
            if _tokenizer is None:
                _stopwords = frozenset(_read_lines(STOPWORDS_FILE))
                _tokenizer = _build()
    return _tokenizer


def words(normalized: str) -> list[str]:
    """Word tokens of already normalised text, stop words and spaces dropped."""
    tok = tokenizer()
    stop = _stopwords
    return [w for w in tok.lcut(normalized, HMM=True) if not w.isspace() and w not in stop]


def tokenize(text: object) -> list[str]:
    """Normalise then cut: what the word features are built from."""
    return words(normalize(text))


def build_words_file(texts: Iterable[str], out: Path = WORDS_FILE) -> int:
    """Write the trimmed dictionary: jieba words occurring in `texts`.

    Run once when the corpora change (see data/PROVENANCE.md)."""
    dict_path = Path(jieba.__file__).resolve().parent / "dict.txt"
    entries = []
    for line in dict_path.read_text(encoding="utf-8").splitlines():
        word, count = line.split(" ")[:2]
        entries.append((word, count))
    seen: set[str] = set()
    longest = max(len(w) for w, _ in entries)
    for text in texts:
        text = normalize(text)
        for i in range(len(text)):
            for j in range(i + 1, min(len(text), i + longest) + 1):
                seen.add(text[i:j])
    kept = [f"{w} {c}" for w, c in entries if w in seen]
    out.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return len(kept)
