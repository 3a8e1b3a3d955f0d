"""Exact match and token F1 on hand-made cases whose scores are known by hand."""

from __future__ import annotations

import pytest

from qa_console.ops.training.evaluate import exact_match, normalize_answer, score, token_f1


def test_normalisation_is_squad_style() -> None:
    assert normalize_answer("  The Lantern Prize, for   Fiction! ") == "lantern prize for fiction"
    assert normalize_answer("An apple a day") == "apple day"
    assert normalize_answer("") == ""


def test_exact_match_ignores_case_articles_and_punctuation() -> None:
    assert exact_match("the Lantern Prize", "Lantern prize.")
    assert not exact_match("Lantern Prize for Fiction", "Lantern Prize")
    assert not exact_match("1935", "1936")


def test_token_f1_counts_overlapping_tokens() -> None:
    # 2 of 4 predicted tokens are right (precision 1/2), both expected ones found (recall 1).
    assert token_f1("Lantern Prize for Fiction", "Lantern Prize") == pytest.approx(2 / 3)
    # Repeated tokens count once per occurrence on each side.
    assert token_f1("oslo oslo", "oslo") == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert token_f1("", "") == 1.0
    assert token_f1("", "Oslo") == 0.0
    assert token_f1("Bergen", "Oslo") == 0.0


def test_score_of_known_predictions() -> None:
    predictions = ["1935", "the Lantern Prize", "Oslo Norway", "", "Marlow Culinary Academy"]
    references = ["1935", "Lantern Prize", "Oslo", "Bergen", "Marlow Academy"]
    em, f1 = score(predictions, references)
    # EM: right, right, wrong, wrong, wrong -> 2/5.
    assert em == pytest.approx(40.0)
    # F1: 1 + 1 + 2/3 + 0 + (P 2/3, R 1 -> 4/5) over 5.
    assert f1 == pytest.approx(100 * (1 + 1 + 2 / 3 + 0 + 0.8) / 5)


def test_score_refuses_mismatched_lengths() -> None:
    with pytest.raises(ValueError):
        score(["a"], ["a", "b"])
