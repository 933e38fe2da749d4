"""Model versions on disk.

    root/
      CURRENT                 name of the version in use (replaced atomically)
      20261123-1/model.joblib
      20261123-1/meta.json    metrics, training fingerprint, n examples, created_at
"""
from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import joblib

# Bump when features or the saved model change shape: versions saved in another format
# are not loaded (they would compute wrong features), and the default model is retrained.
MODEL_FORMAT = 2

MODEL_FILE = "model.joblib"
META_FILE = "meta.json"
CURRENT_FILE = "CURRENT"
MAX_F1_DROP = 0.01


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class ModelStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _new_version_dir(self) -> tuple[str, Path]:
        """Next free `YYYYMMDD-N`; mkdir is the lock between concurrent savers."""
        self.root.mkdir(parents=True, exist_ok=True)
        day = datetime.now(timezone.utc).strftime("%Y%m%d")
        n = 1 + max(
            (int(p.name.split("-", 1)[1]) for p in self.root.glob(f"{day}-*")
             if p.name.split("-", 1)[1].isdigit()),
            default=0,
        )
        while True:
            path = self.root / f"{day}-{n}"
            try:
                path.mkdir()
                return path.name, path
            except FileExistsError:
                n += 1

    def save(self, trained_model, metrics: dict, fingerprint: str) -> str:
        version, path = self._new_version_dir()
        joblib.dump(trained_model, path / MODEL_FILE, compress=3)
        meta = {
            "version": version,
            "format": MODEL_FORMAT,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "fingerprint": fingerprint,
            "n_examples": getattr(trained_model, "n_examples", None),
            "config": getattr(trained_model, "config", {}),
            "p0_threshold": getattr(trained_model, "p0_threshold", None),
            "p1_threshold": getattr(trained_model, "p1_threshold", None),
            "p0_review_threshold": getattr(trained_model, "p0_review_threshold", None),
            "metrics": metrics,
        }
        # meta.json last: a version without it is an interrupted save, ignored.
        _atomic_write(path / META_FILE, json.dumps(meta, ensure_ascii=False, indent=2))
        return version

    def compatible(self, version: str) -> bool:
        """Whether this code can use the version (its features are built the way it was trained)."""
        return self.meta(version).get("format") == MODEL_FORMAT

    def meta(self, version: str) -> dict:
        return json.loads((self.root / version / META_FILE).read_text(encoding="utf-8"))

    def versions(self) -> list[dict]:
        """Complete versions, oldest first, each its meta plus `current`."""
        if not self.root.is_dir():
            return []
        current = self.current()
        out = []
        for path in self.root.iterdir():
            if path.is_dir() and (path / META_FILE).is_file() and (path / MODEL_FILE).is_file():
                meta = self.meta(path.name)
                meta["current"] = path.name == current
                out.append(meta)

        def order(m):
            day, _, n = m["version"].partition("-")
            return (day, int(n) if n.isdigit() else 0)

        return sorted(out, key=order)

    def current(self) -> str | None:
        try:
            version = (self.root / CURRENT_FILE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return version or None

    def use(self, version: str) -> None:
        if not (self.root / version / META_FILE).is_file():
            raise KeyError(f"no model version {version!r} in {self.root}")
        _atomic_write(self.root / CURRENT_FILE, version + "\n")

    def model_path(self, version: str) -> Path:
        return self.root / version / MODEL_FILE

    def load_model(self, version: str):
        return joblib.load(self.model_path(version))

    def promote_if_not_worse(self, new_version: str, old_version: str | None,
                             old_metrics: dict | None = None) -> tuple[bool, str]:
        """Use `new_version` unless it is worse than `old_version` on the
        held-out metrics stored with each: category or urgency macro-F1 lower
        by more than 0.01, or any loss of P0 recall. `old_metrics` replaces
        the old version's stored metrics when those came from another split."""
        new = self.meta(new_version)["metrics"]
        if old_version is None:
            self.use(new_version)
            return True, "no current model"
        old = old_metrics if old_metrics is not None else self.meta(old_version)["metrics"]
        problems = []
        for key in ("category_macro_f1", "urgency_macro_f1"):
            if new[key] < old[key] - MAX_F1_DROP:
                problems.append(f"{key} {new[key]:.3f} < {old[key]:.3f} - {MAX_F1_DROP}")
        if new["p0_recall"] < old["p0_recall"]:
            problems.append(f"p0_recall {new['p0_recall']:.3f} < {old['p0_recall']:.3f}")
        if problems:
            return False, "; ".join(problems)
        self.use(new_version)
        return True, (
            f"category_macro_f1 {new['category_macro_f1']:.3f} (was {old['category_macro_f1']:.3f}), "
            f"urgency_macro_f1 {new['urgency_macro_f1']:.3f} (was {old['urgency_macro_f1']:.3f}), "
            f"p0_recall {new['p0_recall']:.3f} (was {old['p0_recall']:.3f})"
        )
