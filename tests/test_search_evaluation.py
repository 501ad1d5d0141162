"""The search evaluation tool: nDCG by hand, the file formats, and the CLI on a tiny labelled set."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from orchestration.cli import app
from serving.search.documents import ProductDocument
from serving.search.evaluation import FileProblem, ndcg, read_labelled_set, recall
from serving.search.labelled_export import structure_set


def test_ndcg_matches_a_hand_computed_value():
    judged = {"a": 1, "b": 0, "c": 3, "d": 2}
    # DCG@3 of a, b, c = (2^1-1)/log2(2) + 0 + (2^3-1)/log2(4) = 1 + 3.5
    # ideal c, d, a   = 7/log2(2) + 3/log2(3) + 1/log2(4) = 7 + 1.8927893 + 0.5
    assert ndcg(["a", "b", "c"], judged, 3) == pytest.approx(4.5 / (7 + 3 / math.log2(3) + 0.5))
    assert ndcg(["c", "d", "a"], judged, 3) == pytest.approx(1.0)
    assert ndcg(["x"], {"b": 0}, 10) is None  # nothing relevant: undefined, skipped
    assert recall(["c", "x"], judged, 100) == pytest.approx(1 / 3)


def test_structure_queries_grade_by_what_they_name():
    def product(product_id, brand, category, colour):
        return ProductDocument(product_id, f"{brand} {category}", brand=brand, category=f"shoes/{category}",
                               category_names=("Shoes", category.title()), attributes=(f"colour {colour}",))

    products = [product("r1", "Swift", "running", "red"), product("r2", "Peak", "running", "blue"),
                product("r3", "Swift", "running", "blue"), product("b1", "Peak", "boots", "red"),
                product("b2", "Peak", "boots", "red"), product("b3", "Peak", "boots", "black")]
    queries, judgments = structure_set(products, max_queries=100)
    graded = {}
    for judgment in judgments:
        text = next(q["text"] for q in queries if q["id"] == judgment["query_id"])
        graded.setdefault(text, {})[judgment["product_id"]] = judgment["grade"]
    assert graded["running"] == {"r1": 2, "r2": 2, "r3": 2, "b1": 1, "b2": 1, "b3": 1}
    by_id = {p.id: p for p in products}
    brand_query = next(text for text in graded if text in ("swift running", "peak running"))
    brand = brand_query.split()[0]
    assert graded[brand_query] == {pid: 3 if by_id[pid].brand.lower() == brand else 1 for pid in ("r1", "r2", "r3")}
    colour_query = next(text for text in graded if text in ("red boots", "black boots"))
    assert graded[colour_query]["b3"] == (3 if colour_query == "black boots" else 1)

def test_a_bad_record_is_named(tmp_path):
    (tmp_path / "products.csv").write_text("id,title,price\np1,Kettle,not-a-price\n")
    (tmp_path / "queries.csv").write_text("id,text\nq1,kettle\n")
    (tmp_path / "judgments.csv").write_text("query_id,product_id,grade\nq1,p1,1\n")
    with pytest.raises(FileProblem, match=r"products.csv: record 1: ValueError"):
        read_labelled_set(tmp_path / "products.csv", tmp_path / "queries.csv", tmp_path / "judgments.csv")


@pytest.mark.slow
def test_evaluate_search_scores_every_mode_on_a_tiny_labelled_set(tmp_path):
    products = [
        {"id": "p1", "title": "Kettle", "description": "", "category": "", "brand": "", "price": 20},
        {"id": "p2", "title": "Large steel kettle", "description": "", "category": "", "brand": "", "price": 30},
        {"id": "p3", "title": "Red running shoe", "description": "", "category": "Shoes > Running", "brand": "Swift",
         "price": 80},
        {"id": "p4", "title": "Desk lamp", "description": "", "category": "Home > Lighting", "brand": "", "price": 40},
    ]
    (tmp_path / "products.jsonl").write_text("\n".join(json.dumps(p) for p in products))
    (tmp_path / "queries.csv").write_text("id,text,user\nq1,kettle,\nq2,nothing judged,\n")
    (tmp_path / "judgments.csv").write_text("query_id,product_id,grade\nq1,p2,3\nq1,p1,0\n")
    output = tmp_path / "scores.json"
    result = CliRunner().invoke(app, [
        "evaluate-search", "--products", str(tmp_path / "products.jsonl"), "--queries", str(tmp_path / "queries.csv"),
        "--judgments", str(tmp_path / "judgments.csv"), "--output", str(output),
    ])
    assert result.exit_code == 0, result.output
    scores = {score["mode"]: score for score in json.loads(output.read_text())}
    assert list(scores) == ["bm25", "semantic", "hybrid", "hybrid+rerank", "hybrid+personalised"]
    # BM25 puts the shorter title first: the grade-0 "Kettle", then the grade-3 product at rank 2,
    # so nDCG@10 = (7 / log2(3)) / 7.
    assert scores["bm25"]["ndcg"] == pytest.approx(1 / math.log2(3))
    assert scores["bm25"]["recall"] == 1.0
    assert all(score["queries"] == 1 for score in scores.values())
