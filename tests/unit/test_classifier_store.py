import json

import pytest

from classifier import ModelStore


def metrics(cat=0.7, urg=0.75, p0=0.9):
    return {"category_macro_f1": cat, "urgency_macro_f1": urg, "p0_recall": p0,
            "p0_precision": 0.6, "n": 10}


def test_save_creates_versions_with_meta(tmp_path):
    store = ModelStore(tmp_path)
    v1 = store.save({"model": 1}, metrics(), "abc")
    v2 = store.save({"model": 2}, metrics(), "def")
    assert v1 != v2
    assert [m["version"] for m in store.versions()] == [v1, v2]
    meta = json.loads((tmp_path / v1 / "meta.json").read_text())
    assert meta["fingerprint"] == "abc" and meta["metrics"]["n"] == 10 and meta["created_at"]
    assert store.load_model(v2) == {"model": 2}


def test_current_is_none_until_use(tmp_path):
    store = ModelStore(tmp_path)
    v = store.save({}, metrics(), "x")
    assert store.current() is None
    store.use(v)
    assert store.current() == v
    assert [m["current"] for m in store.versions()] == [True]


def test_use_unknown_version_raises(tmp_path):
    with pytest.raises(KeyError):
        ModelStore(tmp_path).use("20990101-1")


def test_first_model_is_promoted(tmp_path):
    store = ModelStore(tmp_path)
    v = store.save({}, metrics(), "x")
    assert store.promote_if_not_worse(v, None)[0]
    assert store.current() == v


@pytest.mark.parametrize("new, promoted", [
    (metrics(), True),
    (metrics(cat=0.695, urg=0.745), True),   # within 0.01
    (metrics(cat=0.685), False),             # category dropped by more than 0.01
    (metrics(urg=0.735), False),             # urgency dropped by more than 0.01
    (metrics(p0=0.89), False),               # any P0 recall loss
    (metrics(cat=0.9, urg=0.9, p0=0.95), True),
])
def test_promotion_rule(tmp_path, new, promoted):
    store = ModelStore(tmp_path)
    old = store.save({}, metrics(), "x")
    store.use(old)
    candidate = store.save({}, new, "y")
    ok, reason = store.promote_if_not_worse(candidate, old)
    assert ok is promoted, reason
    assert store.current() == (candidate if promoted else old)


def test_interrupted_save_is_ignored(tmp_path):
    store = ModelStore(tmp_path)
    store.save({}, metrics(), "x")
    (tmp_path / "20000101-1").mkdir()  # no meta.json: a crash mid-save
    assert len(store.versions()) == 1


def test_a_model_saved_in_another_format_is_refused_and_the_default_retrained(model_dir, tmp_path):
    import json
    import shutil

    import pytest

    from classifier import Classifier, ModelStore, ensure_default_model
    root = tmp_path / "models"
    shutil.copytree(model_dir, root)
    store = ModelStore(root)
    old = store.current()
    meta_path = root / old / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["format"] = 1
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ValueError, match="another format"):
        Classifier.load(root)
    new = ensure_default_model(root)
    assert new != old and ModelStore(root).current() == new
    assert Classifier.load(root).suggest("快递没到").category
