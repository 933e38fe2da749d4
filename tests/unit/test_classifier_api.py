import json
import math

import numpy as np
import pytest

from classifier import (
    CATEGORIES, URGENCIES, Classifier, Example, ModelStore, Suggestion, evaluate,
    evaluate_version, fingerprint, heldout_split, load_base_examples,
    train_and_maybe_promote,
)
from classifier.features import prepare_many
from classifier.train import load_more_examples, training_examples
from tests.unit.classifier_fixtures import clf, model_root  # noqa: F401 (fixtures)

BAD_INPUTS = ["", "   \n\t", "😀😀🙏", "！！！。。。？？", "!!!...", None]


@pytest.mark.parametrize("text", BAD_INPUTS)
def test_empty_like_input_is_non_complaint_for_review(clf, text):
    s = clf.suggest(text)
    assert s.category == "non_complaint"
    assert s.needs_review


@pytest.mark.parametrize("text", [
    "差" * 100_000,
    "My order 订单 never arrived, 快递太慢了!!!",
    "快遞一直沒送到，客服電話打不通",
    "退款\udc80没到账",
    "退款一直没到账".encode("utf-8"),
    b"\xff\xfe\x81\x00",
])
def test_odd_input_never_raises(clf, text):
    s = clf.suggest(text)
    assert s.category in CATEGORIES and s.urgency in URGENCIES
    assert 0.0 <= s.category_confidence <= 1.0


def test_suggestion_fields_and_json(clf):
    s = clf.suggest("外卖送了两个小时，饭都凉了")
    assert isinstance(s, Suggestion)
    d = s.to_dict()
    json.dumps(d, ensure_ascii=False)
    assert d["category_label"] and d["urgency_label"]
    assert d["model_version"] == clf.version
    assert len(s.reasons) <= 5


def test_suggest_many_agrees_with_suggest(clf):
    texts = [e.text for e in load_base_examples()[:40]] + ["", "宽带断网三天"]
    assert clf.suggest_many(texts) == [clf.suggest(t) for t in texts]
    assert clf.suggest_many([]) == []


def test_default_model_has_a_dedicated_p0_model(clf):
    assert clf.model.p0_model is not None
    assert 0.0 < clf.model.p0_threshold < 1.0


def test_p0_rule_forces_p0_and_shows_reason(clf):
    s = clf.suggest("味道还行，但是吃完全家都拉肚子了")
    assert s.urgency == "P0"
    assert any(r.startswith("规则:身体不适") for r in s.reasons)


@pytest.mark.parametrize("text, category", [
    ("快递太慢了，一个星期才到，包装还压坏了", "logistics"),
    ("刚买就降价了，要求退差价，不给退款", "price_refund"),
    ("宽带又断网了，网络一直连不上", "system_fault"),
    ("客服态度恶劣，爱理不理，打了很多次电话没人管", "service"),
])
def test_clear_cases_get_their_category(clf, text, category):
    assert clf.suggest(text).category == category


def test_reasons_are_terms_from_the_text(clf):
    s = clf.suggest("退款申请了半个月还没到账")
    terms = [r for r in s.reasons if not r.startswith("规则:")]
    assert terms and all(t in "退款申请了半个月还没到账" for t in terms)


def test_review_threshold_is_configurable(model_root):
    strict = Classifier.load(model_root, review_threshold=1.01)
    assert strict.suggest("菜太咸了").needs_review
    lenient = Classifier.load(model_root, review_threshold=0.0)
    assert not lenient.suggest("菜太咸了").needs_review


def test_heldout_split_is_fixed_disjoint_and_stratified():
    examples = load_base_examples()
    train1, test1 = heldout_split(examples)
    train2, test2 = heldout_split(examples)
    assert test1 == test2 and train1 == train2
    assert len(test1) == math.ceil(0.2 * len(examples))
    assert not {e.text for e in train1} & {e.text for e in test1}
    assert sum(e.urgency == "P0" for e in test1) >= 30


def _key(text: str) -> str:
    return "".join(text.split())[:60]


def test_later_labelled_texts_only_train_and_never_repeat_a_heldout_text():
    more = load_more_examples()
    assert len(more) > 1000
    _, heldout = heldout_split(load_base_examples())
    assert not {_key(e.text) for e in more} & {_key(e.text) for e in heldout}
    assert len({_key(e.text) for e in more}) == len(more)
    assert {e.source for e in more} <= {e.source for e in load_base_examples()}
    assert set(more) <= set(training_examples())
    # Itching after use is P0 in the base labels and the rules; texts labelled
    # otherwise by the later labellers were left out rather than mixed in.
    from classifier.features import prepare
    itching = [e for e in more if any(h.name == "皮肤反应" for h in prepare(e.text).hits)]
    assert all(e.urgency == "P0" for e in itching)


def test_fingerprint_ignores_order_but_not_labels():
    a = [Example("甲", "service", "P2"), Example("乙", "logistics", "P1")]
    assert fingerprint(a) == fingerprint(a[::-1])
    assert fingerprint(a) != fingerprint([a[0], Example("乙", "logistics", "P0")])


def test_example_rejects_unknown_labels():
    with pytest.raises(ValueError):
        Example("x", "spam", "P2")


def test_evaluate_reports_all_keys(clf):
    _, test = heldout_split(load_base_examples())
    m = evaluate(clf, test[:100])
    assert {"category_macro_f1", "urgency_macro_f1", "p0_recall", "p0_precision", "n",
            "per_class"} <= m.keys()
    assert m["n"] == 100
    assert set(m["per_class"]["category"]) == set(CATEGORIES)
    assert set(m["per_class"]["urgency"]["P0"]) == {"precision", "recall", "f1", "support"}


def test_default_model_reaches_floors_on_heldout(model_root):
    m = evaluate_version(model_root)
    assert m["n"] == 708
    # Floors a little below what the shipped configuration measures (RESULTS.md).
    assert m["category_macro_f1"] > 0.67
    assert m["urgency_macro_f1"] > 0.71
    assert m["p0_recall"] > 0.67
    assert m["p0_precision"] > 0.5
    # With the review queue (the P0 watch band): 0.912 of P0 texts seen first, 30 % of texts in it.
    assert m["p0_recall_with_review"] > 0.88
    assert m["review_share"] < 0.35


def test_review_figures_follow_the_review_threshold(model_root):
    shares = [evaluate_version(model_root, review_threshold=t)["review_share"] for t in (0.0, 0.5, 0.9)]
    assert 0.0 < shares[0] < shares[1] < shares[2]       # at 0.0 only the watch band remains


def test_evaluate_version_on_a_csv(model_root, tmp_path):
    csv = tmp_path / "x.csv"
    csv.write_text("text,category,urgency\n吃出虫子了,product_quality,P0\n快递太慢,logistics,P2\n",
                   encoding="utf-8")
    m = evaluate_version(model_root, csv_path=csv)
    assert m["n"] == 2 and m["p0_recall"] == 1.0


def test_train_and_maybe_promote_refuses_a_worse_model(model_root, tmp_path):
    # Copy the store so the session's model stays current for other tests.
    import shutil
    root = tmp_path / "models"
    shutil.copytree(model_root, root)
    old = ModelStore(root).current()
    # Poisoned corrections: half the training texts again, all labelled other/P2.
    train_part, _ = heldout_split(load_base_examples())
    poison = [Example(e.text, "other", "P2") for e in train_part[::2]]
    # No threshold tuning: the refusal comes from category F1, and this keeps the test quick.
    result = train_and_maybe_promote(root, poison, progress=False, config={"tune": False})
    json.dumps(result, ensure_ascii=False)
    assert result["previous"] == old and result["version"] != old
    assert result["promoted"] is False
    assert "category_macro_f1" in result["reason"]
    assert ModelStore(root).current() == old
    assert len(ModelStore(root).versions()) == 2


def test_p0_threshold_keeps_precision_even_when_the_rules_alone_miss_it():
    from classifier.train import tune_p0_threshold

    # 10 P0 texts scoring 0.5-0.9 among 300 others scoring 0-0.6.
    y = np.array([True] * 10 + [False] * 300)
    score = np.r_[np.linspace(0.5, 0.9, 10), np.linspace(0.0, 0.6, 300)]
    # Rules fire on 42 texts of which 2 are P0: rule precision alone is 0.05.
    forced = np.zeros(310, bool)
    forced[[0, 1, *range(10, 50)]] = True
    t = tune_p0_threshold(y, score, forced)
    # The most precise threshold, not the one reaching the recall target by
    # flagging the 50 ordinary texts above 0.5 as well.
    assert t > 0.55
    assert (forced | (score >= t)).sum() < 60
    # Without the rule noise: the most recall at precision >= 0.5, as before.
    t = tune_p0_threshold(y, score, np.zeros(310, bool))
    assert 0.6 < t < 0.7


def test_p0_watch_band_reaches_the_recall_target_within_its_review_budget():
    from classifier.train import MAX_P0_WATCH_SHARE, tune_p0_watch

    # 1 000 texts, 40 P0: 30 suggested P0 (score >= 0.3), 10 missed ones scoring
    # 0.06-0.25; of the 960 others 900 score under 0.05 and 60 spread up to 0.3.
    y = np.array([True] * 40 + [False] * 960)
    score = np.r_[np.linspace(0.3, 0.9, 30), np.linspace(0.06, 0.25, 10),
                  np.linspace(0.0, 0.05, 900), np.linspace(0.05, 0.3, 60)]
    suggested = score >= 0.3
    low = np.zeros(1000, bool)

    def seen_share(t, low):
        band = ~suggested & (score >= t)
        return ((suggested | low | band) & y).sum() / y.sum(), (band & ~low).mean()

    t = tune_p0_watch(y, suggested, low, score, 0.3)
    recall, extra = seen_share(t, low)
    assert recall >= 0.95 and extra <= MAX_P0_WATCH_SHARE
    assert seen_share(t + 0.01, low)[0] < 0.95        # the highest threshold that gets there
    # P0s already in the review queue for low confidence: the band can start higher.
    low[score < 0.1] = True
    t_low = tune_p0_watch(y, suggested, low, score, 0.3)
    assert t_low > t and seen_share(t_low, low)[0] >= 0.95


def test_p0_watch_band_stays_within_budget_when_the_target_is_out_of_reach():
    from classifier.train import MAX_P0_WATCH_SHARE, tune_p0_watch

    # The P0s the suggestion misses score like everything else: the recall target
    # would need most of the inbox; the band takes what its budget allows.
    y = np.array([True] * 20 + [False] * 980)
    score = np.r_[np.full(10, 0.8), np.linspace(0.0, 0.29, 10), np.linspace(0.0, 0.29, 980)]
    suggested = score >= 0.3
    t = tune_p0_watch(y, suggested, np.zeros(1000, bool), score, 0.3)
    band = ~suggested & (score >= t)
    assert 0 < band.sum() <= MAX_P0_WATCH_SHARE * 1000
    # Nothing at all within budget (every text scores just under the threshold): no band.
    flat = np.full(1000, 0.29)
    assert tune_p0_watch(y, flat >= 0.3, np.zeros(1000, bool), flat, 0.3) == 1.0


def test_watched_texts_need_review_and_are_not_suggested_p0(clf):
    texts = [e.text for e in load_base_examples()[:400]]
    watch_from = clf.model.p0_review_threshold
    assert 0.0 < watch_from < clf.model.p0_threshold    # the shipped model has a band
    suggestions = clf.suggest_many(texts)
    scores = clf.model.decide(prepare_many(texts))[0].p0_score
    watched = [s for s in suggestions if s.p0_watch]
    assert watched, "some of 400 real complaints should fall in the band"
    for s, score in zip(suggestions, scores):
        if s.p0_watch:
            assert s.urgency != "P0" and s.needs_review and watch_from <= score
        elif s.urgency != "P0":
            assert score < watch_from
    assert all(s.to_dict()["p0_watch"] is s.p0_watch for s in suggestions)


def test_old_models_without_a_band_watch_nothing(clf):
    import copy

    old = copy.copy(clf.model)
    del old.__dict__["p0_review_threshold"]      # as unpickled from a model saved before the band
    texts = [e.text for e in load_base_examples()[:100]]
    d, _ = old.decide(prepare_many(texts))
    assert not d.p0_watch.any()


def test_evaluate_reports_p0_recall_with_review(clf):
    _, held = heldout_split(load_base_examples())
    r = evaluate(clf, held)
    assert r["p0_recall"] <= r["p0_recall_with_review"] <= 1.0
    assert 0.0 < r["review_share"] < 1.0
