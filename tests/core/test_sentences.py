"""Sentences a person reads (whyrec.sentences): each sentence against its numbers in English
and Chinese, the share threshold, plural forms, knowledge-graph paths, the catalogues, and
`whyrec explain --lang` on a toy run."""
from __future__ import annotations

import gettext
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import toyplugin
import whyrec.plugins
import whyrec_example_plugin
from whyrec import builtins
from whyrec.cli import cli
from whyrec.errors import WhyrecError
from whyrec.plugins import PluginHost
from whyrec.runner import run as run_pipeline
from whyrec.sentences import (LANGS, LOCALE_DIR, SENTENCE_SHARE, Words, add_text, domain_of, rec_sentences)

from core_helpers import TOY

SEQ = ["hist_0", "hist_1", "hist_2"]
CATS = {"genre_Action": "Action", "genre_Drama": "Drama"}
TITLES = {1: "Alien", 2: "Aliens", 3: "Heat", 4: "Ronin"}


def words(lang):
    return Words(lang)


def say(rec, lang, domain="video", values=None, **kw):
    return rec_sentences(rec, Words(lang), domain, sequence=SEQ, categories=CATS, values=values or {}, title=TITLES.get, **kw)


def ig_entry(attributions, fields, caution=None, method="integrated-gradients", additive=True):
    return {"method": method, "additive": additive, "caution": caution, "attributions": attributions,
            "field_attributions": fields, "reasons": []}


def rec_of(*entries, item=2, title="Aliens"):
    return {"item": item, "title": title, "rank": 1, "score": 0.9, "explanations": list(entries)}


# -- each sentence against its numbers -------------------------------------------------------------
def test_history_item_category_and_field_sentences_carry_their_numbers():
    # features: hist_0 0.4, genre_Action 0.3, age -0.2, hist_1 0.1 -> total |a| 1.0
    e = ig_entry({"hist_0": 0.4, "genre_Action": 0.3, "age": -0.2, "hist_1": 0.1},
                 {"history": 0.5, "item": 0.3, "user": -0.2, "cross": 0.0})
    values = {"hist_0": 1.0, "hist_1": 3.0, "genre_Action": 1.0}
    en, zh = say(rec_of(e), "en", values=values), say(rec_of(e), "zh", values=values)
    assert [s["text"] for s in en] == ["Because you watched Alien", "Because it is in the Action genre"]
    assert [s["text"] for s in zh] == ["因为您最近看了《Alien》", "因为它属于动作类型"]
    for s_en, s_zh in zip(en, zh):  # the same numbers behind both languages
        assert {k: v for k, v in s_en.items() if k != "text"} == {k: v for k, v in s_zh.items() if k != "text"}
    assert en[0] == {"text": "Because you watched Alien", "kind": "history-item", "method": "integrated-gradients",
                     "unit": "feature", "feature": "hist_0", "item": 1, "attribution": 0.4, "share": pytest.approx(0.4)}
    assert en[1]["feature"] == "genre_Action" and en[1]["value"] == 1.0
    assert en[1]["attribution"] == 0.3 and en[1]["share"] == pytest.approx(0.3)
    # history (the item named) and item (its genre named) are covered; user is negative: no field sentence


def test_field_sentences_in_order_of_attribution_per_domain():
    e = ig_entry({"age": 0.6, "price": 0.3}, {"user": 0.2, "cross": 0.5, "item": 0.3, "context": -0.1})
    # field shares: cross 0.5/1.1, item 0.3/1.1, user 0.2/1.1
    expected = {
        ("video", "en"): ["Because it matches your taste in films", "Because of the film itself", "It suits your profile"],
        ("video", "zh"): ["因为它符合您的观影口味", "因为这部影片本身", "它符合您的个人资料"],
        ("ecommerce", "en"): ["Because it matches what you usually buy", "Because of the product itself", "It suits your profile"],
        ("ecommerce", "zh"): ["因为它符合您的购物习惯", "因为这件商品本身", "它符合您的个人资料"],
        ("finance", "en"): ["Because it matches your investment preferences", "Because of the product itself",
                            "It suits your investor profile"],
        ("finance", "zh"): ["因为它符合您的投资偏好", "因为这款产品本身", "它符合您的投资者画像"],
        ("default", "en"): ["Because it matches your preferences", "Because of the item itself", "It suits your profile"],
        ("default", "zh"): ["因为它符合您的偏好", "因为这一项本身", "它符合您的个人资料"],
    }
    for (domain, lang), texts in expected.items():
        out = say(rec_of(e), lang, domain)
        assert [s["text"] for s in out] == texts, (domain, lang)
        assert [s["field"] for s in out] == ["cross", "item", "user"]
        assert [s["share"] for s in out] == pytest.approx([0.5 / 1.1, 0.3 / 1.1, 0.2 / 1.1])
        assert [s["attribution"] for s in out] == [0.5, 0.3, 0.2]


def test_counterfactual_plural_forms():
    cf1 = {"method": "history-counterfactual", "additive": False, "attributions": {"hist_0": 1.0, "hist_1": 0.0, "hist_2": 0.0}}
    cf3 = {"method": "history-counterfactual", "additive": False, "attributions": {"hist_0": 1.0, "hist_1": 1.0, "hist_2": 1.0}}
    values = {"hist_0": 1.0, "hist_1": 3.0, "hist_2": 4.0}
    (one_en,) = say(rec_of(cf1), "en", values=values)
    (one_zh,) = say(rec_of(cf1), "zh", values=values)
    (three_en,) = say(rec_of(cf3), "en", values=values)
    (three_zh,) = say(rec_of(cf3), "zh", values=values)
    assert one_en["text"] == "Had you not watched Alien, Aliens would not be in your top recommendations"
    assert three_en["text"] == ("Had you not watched these 3 films (Alien, Heat and Ronin), Aliens would not be in your top "
                                "recommendations")
    assert one_zh["text"] == "如果您没有看过《Alien》（共1部影片），《Aliens》就不会出现在您的首选推荐中"
    assert three_zh["text"] == "如果您没有看过《Alien》、《Heat》和《Ronin》（共3部影片），《Aliens》就不会出现在您的首选推荐中"
    assert three_en["features"] == ["hist_0", "hist_1", "hist_2"] and three_en["items"] == [1, 3, 4]
    assert three_en["share"] == pytest.approx(1 / 3) and one_en["share"] == 1.0
    (shop,) = say(rec_of(cf3), "en", "ecommerce", values=values)
    assert shop["text"].startswith("Had you not bought these 3 products (Alien, Heat and Ronin)")
    # the catalogues' own plural rules: English 1 vs many, Chinese one form
    assert Words("en").t.npgettext("video", "a", "b", 1) != Words("en").t.npgettext("video", "a", "b", 2)
    assert Words("zh").t.plural(1) == Words("zh").t.plural(7) == 0


def test_a_long_list_names_three_and_counts_the_rest_in_plural_forms():
    titles = {i: f"Film {i}" for i in range(1, 7)}
    for n, en_list in ((4, "Film 1, Film 2, Film 3 and 1 other"), (6, "Film 1, Film 2, Film 3 and 3 others")):
        cf = {"method": "history-counterfactual", "additive": False, "attributions": {f"hist_{j}": 1.0 for j in range(n)}}
        values = {f"hist_{j}": float(j + 1) for j in range(n)}
        (en,) = rec_sentences(rec_of(cf), Words("en"), "video", values=values, title=titles.get)
        (zh,) = rec_sentences(rec_of(cf), Words("zh"), "video", values=values, title=titles.get)
        assert en["text"] == f"Had you not watched these {n} films ({en_list}), Aliens would not be in your top recommendations"
        assert zh["text"] == f"如果您没有看过《Film 1》、《Film 2》、《Film 3》等（共{n}部影片），《Aliens》就不会出现在您的首选推荐中"
        assert en["items"] == list(range(1, n + 1)) and en["share"] == pytest.approx(1 / n)  # every item kept in the JSON


def test_no_counterfactual_sentence_when_nothing_was_removed():
    cf0 = {"method": "history-counterfactual", "additive": False, "attributions": {"hist_0": 0.0, "hist_1": 0.0}}
    assert say(rec_of(cf0), "en", values={"hist_0": 1.0}) == []


# -- the threshold ------------------------------------------------------------------------------------
def test_reasons_below_the_share_are_never_stated():
    # user 0.049 of the total: below 5%, never said; cross exactly at 5%: said
    e = ig_entry({"x": 1.0}, {"item": 0.901, "cross": 0.05, "user": 0.049})
    for lang in LANGS:
        out = say(rec_of(e), lang)
        assert [s["field"] for s in out] == ["item", "cross"]
        assert all(s["share"] >= SENTENCE_SHARE for s in out)
    # a history item carrying 4% of the attribution is not named, even as the largest history item
    e = ig_entry({"hist_0": 0.04, "price": 0.96}, {"history": 0.04, "item": 0.96})
    out = say(rec_of(e), "en", values={"hist_0": 1.0})
    assert [s["kind"] for s in out] == ["field"] and out[0]["field"] == "item"
    # a stricter threshold, passed by the caller, drops the 30% field too
    e = ig_entry({"x": 1.0}, {"item": 0.7, "cross": 0.3})
    assert [s["field"] for s in say(rec_of(e), "en", min_share=0.5)] == ["item"]


def test_a_method_with_a_caution_gives_way_and_its_caution_travels():
    bad = ig_entry({"hist_0": 1.0}, {"history": 1.0}, caution="judged unfaithful", method="attention-sum")
    good = ig_entry({"price": 1.0}, {"item": 1.0}, method="tree-shap")
    (s,) = say(rec_of(bad, good), "en", values={"hist_0": 1.0})
    assert s["method"] == "tree-shap" and "caution" not in s
    (s,) = say(rec_of(bad), "en", values={"hist_0": 1.0})
    assert s["method"] == "attention-sum" and s["caution"] == "judged unfaithful"
    cf = {"method": "history-counterfactual", "additive": False, "caution": "rests on a weak model",
          "attributions": {"hist_0": 1.0}}
    (s,) = say(rec_of(cf), "zh", values={"hist_0": 1.0})
    assert s["kind"] == "counterfactual" and s["caution"] == "rests on a weak model"


# -- knowledge-graph paths ----------------------------------------------------------------------------
def kg(*paths):
    return {"method": "kg-paths", "additive": False, "caution": None, "attributions": {}, "field_attributions": {},
            "reasons": [], "paths": list(paths)}


def path(history_item, title, relation, label, score, entity="m.1"):
    return {"history_item": history_item, "history_title": title, "relation": relation, "relation_label": label,
            "entity": entity, "item": 2, "score": score, "scoring": "leave-one-out"}


def test_kg_path_sentences():
    rec = rec_of(kg(path(1, "Alien", "film.film.directed_by", "director", 0.3),
                    path(3, "Heat", "film.film.edited_by", "film editor", 0.1),
                    path(4, "Ronin", "film.film.starring", "actor", -0.2)))
    en, zh = say(rec, "en"), say(rec, "zh")
    assert [s["text"] for s in en] == ["Because you watched Alien, which shares a director with Aliens",
                                       "Because you watched Heat, which is linked to Aliens (film editor)"]
    assert [s["text"] for s in zh] == ["因为您最近看了《Alien》，且它与《Aliens》导演相同",
                                       "因为您最近看了《Heat》，且它与《Aliens》相关（film editor）"]
    # shares of the total |path score| 0.6; the negative path (it lowers the score) is never said
    assert [s["share"] for s in en] == pytest.approx([0.5, 1 / 6])
    assert en[0] | {"text": None} == {"text": None, "kind": "kg-path", "method": "kg-paths", "unit": "path", "history_item": 1,
                                      "relation": "film.film.directed_by", "entity": "m.1", "attribution": 0.3,
                                      "share": pytest.approx(0.5), "scoring": "leave-one-out"}


def test_kg_path_below_share_and_history_item_not_repeated():
    rec = rec_of(kg(path(1, "Alien", "directed_by", "director", 0.97), path(3, "Heat", "starring", "actor", 0.03)),
                 ig_entry({"hist_0": 1.0}, {"history": 1.0}))
    out = say(rec, "en", values={"hist_0": 1.0})
    # the 3% path is not said; Alien, already named by the path, is not named again by the attributions
    assert [s["text"] for s in out] == ["Because you watched Alien, which shares a director with Aliens"]


def test_kg_direct_link_and_an_entry_without_paths():
    rec = rec_of(kg(dict(path(1, "Alien", "film.film.sequel", "sequel", 0.5), hops=1)))
    assert [s["text"] for s in say(rec, "en")] == ["Because you watched Alien, which is linked to Aliens (a sequel)"]
    assert [s["text"] for s in say(rec, "zh")] == ["因为您最近看了《Alien》，且它与《Aliens》相关（续集）"]
    # relations as the ml-100k graph names them, worded as what the two films share
    for relation, label, zh in (("film.film.actor", "actor", "演员"), ("film.film.production_companies", "production company", "出品公司"),
                                ("film.film.award_nomination", "award nomination", "奖项提名")):
        (s,) = say(rec_of(kg(path(1, "Alien", relation, label, 0.5))), "zh")
        assert s["text"] == f"因为您最近看了《Alien》，且它与《Aliens》{zh}相同"
    # a kg-paths entry with no path for this item (Shapley scoring makes it additive) is not the attribution entry
    e = kg()
    e.update(additive=True, attributions={"hist_0": 1.0}, field_attributions={"history": 1.0})
    assert say(rec_of(e), "en", values={"hist_0": 1.0}) == []


# -- catalogues ---------------------------------------------------------------------------------------
def po(lang):
    from babel.messages.pofile import read_po

    with open(LOCALE_DIR / lang / "LC_MESSAGES" / "whyrec.po", "rb") as f:
        return read_po(f)


def test_every_message_of_the_code_is_in_every_catalogue_and_translated():
    from babel.messages.extract import extract_from_file

    code = {(ctx, msg if isinstance(msg, str) else msg[0])
            for _, msg, _, ctx in extract_from_file("python", str(Path(__import__("whyrec.sentences").sentences.__file__)),
                                                    keywords={"N_": ((1, "c"), 2), "NP_": ((1, "c"), 2, 3)})}
    assert len(code) > 60
    for lang in LANGS:
        cat = po(lang)
        ids = {(m.context, m.id if isinstance(m.id, str) else m.id[0]) for m in cat if m.id}
        assert ids == code, f"{lang}: run the extract/update commands of docs/sentences.md"
        for m in cat:
            if not m.id:
                continue
            strings = m.string if isinstance(m.string, tuple) else (m.string,)
            assert all(strings) and not m.fuzzy, f"{lang}: {m.context}/{m.id} untranslated or fuzzy"
            want = set(re.findall(r"\{(\w+)\}", m.id if isinstance(m.id, str) else m.id[1]))
            for s in strings:  # a translation keeps the template's placeholders (zh may add the count)
                assert set(re.findall(r"\{(\w+)\}", s)) - {"n"} == want - {"n"}, (lang, m.id, s)
    zh = po("zh")
    assert zh.plural_forms == "nplurals=1; plural=0;"
    assert all("《" in m.string for m in zh if m.context == "item title")


def test_compiled_catalogues_agree_with_the_po_files():
    for lang in LANGS:
        with open(LOCALE_DIR / lang / "LC_MESSAGES" / "whyrec.mo", "rb") as f:
            mo = gettext.GNUTranslations(f)
        for m in po(lang):
            if not m.id:
                continue
            if isinstance(m.id, tuple):
                for n, s in ((1, m.string[0]), (2, m.string[-1])):
                    assert mo.npgettext(m.context, m.id[0], m.id[1], n) == s, (lang, m.id, n)
            else:
                assert mo.pgettext(m.context, m.id) == m.string, (lang, m.id)


def test_unknown_language_and_domains():
    with pytest.raises(WhyrecError, match=r"language 'fr' has no sentence catalogue; use one of: en, zh"):
        Words("fr")
    assert domain_of("movielens-100k", {"domain": "video"}) == "video"
    assert domain_of("table", {"domain": "finance"}) == "finance"
    assert domain_of("my-shop") == "default" and domain_of("my-shop", {"domain": "space"}) == "default"


# -- `whyrec explain --lang` on a toy run ------------------------------------------------------------
@pytest.fixture(scope="module")
def toy_run_dir(tmp_path_factory):
    host = PluginHost()
    host.add(builtins, "whyrec.builtins")
    host.add(whyrec_example_plugin, "example")
    host.add(toyplugin, "toyplugin")
    host.check()
    d = tmp_path_factory.mktemp("sentences")
    (d / "registry.toml").write_text(TOY + 'report = { enabled = false, lang = ["en", "zh"] }\n')
    return run_pipeline("toy", registry=d / "registry.toml", out=d / "runs", host=host)


@pytest.fixture
def toy_run(toy_run_dir, monkeypatch):
    monkeypatch.setattr(whyrec.plugins, "_host", toy_run_dir.host)
    return toy_run_dir


def explain(*args):
    return CliRunner().invoke(cli, ["explain", *map(str, args)])


def test_explain_lang_adds_text_tied_to_the_numbers(toy_run):
    plain = json.loads(explain(toy_run.path, "--user", "2", "-k", "3", "--format", "json").output)
    assert all("text" not in r for r in plain["recommendations"])  # the contract without --lang is unchanged
    for lang, item_words, user_words in (("en", "Because of the item itself", "It suits your profile"),
                                          ("zh", "因为这一项本身", "它符合您的个人资料")):
        res = explain(toy_run.path, "--user", "2", "-k", "3", "--format", "json", "--lang", lang)
        assert res.exit_code == 0, res.output
        out = json.loads(res.output)
        assert out["sentences"] == {"lang": lang, "domain": "default", "min_share": SENTENCE_SHARE, "min_peers": 10}
        assert [r["explanations"] for r in out["recommendations"]] == [r["explanations"] for r in plain["recommendations"]]
        for rec in out["recommendations"]:
            (e,) = rec["explanations"]
            fa = e["field_attributions"]
            total = sum(abs(v) for v in fa.values())
            want = [f for f in sorted(fa, key=lambda f: -fa[f]) if fa[f] > 0 and abs(fa[f]) / total >= SENTENCE_SHARE]
            assert want, "the toy's popularity term always supports the item"
            assert [s["field"] for s in rec["text"]] == want
            assert [s["text"] for s in rec["text"]] == [item_words if f == "item" else user_words for f in want]
            for s in rec["text"]:
                assert s["method"] == "popularity-reason" and s["attribution"] == fa[s["field"]]
                assert s["share"] == pytest.approx(abs(fa[s["field"]]) / total)
    text = explain(toy_run.path, "--user", "2", "-k", "3", "--lang", "zh").output
    assert "In words (zh, reasons carrying at least 5% of their method's attribution):" in text
    assert "因为这一项本身" in text


def test_explain_unknown_lang_is_one_line_naming_the_choices(toy_run):
    res = explain(toy_run.path, "--user", "2", "--lang", "fr")
    assert res.exit_code == 2
    assert "Invalid value for '--lang': 'fr' is not one of 'en', 'zh'." in res.output
    assert "Traceback" not in res.output


def test_add_text_is_callable_on_explain_users_json(toy_run):
    from whyrec.explain import explain_user

    out = explain_user(toy_run, 2, 2)
    assert add_text(out, toy_run.load_data(), "zh", domain="ecommerce") is out
    assert out["sentences"]["domain"] == "ecommerce"
    assert all(rec["text"] and rec["text"][0]["text"] == "因为这件商品本身" for rec in out["recommendations"])


def test_report_shows_the_sentences_in_each_asked_language(toy_run):
    import html as htmllib

    from whyrec.explain import explain_user
    from whyrec.report.sections import render_users

    page = render_users(toy_run).body  # the users section: the table where the reasons are shown
    assert "<th>in words (en)</th>" in page and "<th>in words (zh)</th>" in page
    for lang in LANGS:  # the report says what `whyrec explain --lang` says for the same pairs
        out = add_text(explain_user(toy_run, 2, 3), toy_run.load_data(), lang)
        for rec in out["recommendations"]:
            for s in rec["text"]:
                hover = f"popularity-reason: {s['field']}, share {s['share']:.0%} of the attribution"
                assert f'<li title="{htmllib.escape(hover)}">{htmllib.escape(s["text"])}</li>' in page


def test_lang_does_not_apply_to_why_above(capsys):
    from whyrec.cli import main

    with pytest.raises(SystemExit) as e:
        main(["explain", "/nonexistent-run", "--user", "1", "--why-above", "1", "2", "--lang", "zh"])
    assert e.value.code == 2
    assert "--lang adds sentences to recommendations; it does not apply to --why-above" in capsys.readouterr().err


# -- "people who ...": k-anonymous peer sentences ---------------------------------------------------
def test_peer_sentence_needs_at_least_min_peers_backers():
    e = ig_entry({"hist_0": 0.4, "genre_Action": 0.3}, {"history": 0.4, "item": 0.3})
    values = {"hist_0": 1.0, "genre_Action": 1.0}
    asked = []

    def peers(n):
        def count(a, b):
            asked.append((a, b))
            return n
        return count

    en = say(rec_of(e), "en", values=values, peers=peers(12), min_peers=10)
    zh = say(rec_of(e), "zh", values=values, peers=peers(12), min_peers=10)
    assert asked[0] == (1, 2)  # the credited history item (Alien) and the recommended item (Aliens)
    (p_en,) = [s for s in en if s["kind"] == "peers"]
    (p_zh,) = [s for s in zh if s["kind"] == "peers"]
    assert p_en["text"] == "12 people who watched Alien also watched Aliens"
    assert p_zh["text"] == "看过《Alien》的12位用户也看过《Aliens》"
    assert {k: v for k, v in p_en.items() if k != "text"} == {k: v for k, v in p_zh.items() if k != "text"} == {
        "kind": "peers", "method": "integrated-gradients", "unit": "feature", "feature": "hist_0", "item": 1,
        "users": 12, "min_users": 10, "attribution": 0.4, "share": pytest.approx(0.4 / 0.7)}
    assert [s for s in say(rec_of(e), "en", values=values, peers=peers(9), min_peers=10) if s["kind"] == "peers"] == []
    assert say(rec_of(e), "en", "ecommerce", values=values, peers=peers(1), min_peers=1)[1]["text"] == \
        "1 customer who bought Alien also bought Aliens"  # the singular form, where a threshold of 1 is asked


def test_co_likers_count_other_users_only(tmp_path):
    from whyrec.data import RecData
    from whyrec.schema import FeatureSchema
    from whyrec.sentences import co_likers

    inter = pd.DataFrame({"user": [1, 1, 2, 2, 3, 3, 4, 5], "item": [10, 20, 10, 20, 10, 20, 10, 20],
                          "label": [1, 1, 1, 1, 1, 0, 1, 1]})
    data = RecData(name="t", interactions=inter, users=pd.DataFrame(index=[1, 2, 3, 4, 5]),
                   items=pd.DataFrame(index=[10, 20]), schema=FeatureSchema([]), train=inter)
    both = co_likers(data, user=1)
    assert both(10, 20) == 1  # user 2 (user 1 is the one asking; user 3 did not like 20)
    assert co_likers(data, user=9)(10, 20) == 2 and both(10, None) == 0


def test_min_peers_is_a_privacy_setting():
    from whyrec.errors import RegistryError
    from whyrec.privacy import parse

    assert parse({"min_peers": 25}, "w")["min_peers"] == 25
    with pytest.raises(RegistryError, match="min_peers: 1 must be a whole number >= 2"):
        parse({"min_peers": 1}, "registry.toml: pipelines.p.privacy")
