"""compare_gradients and format_table."""

import numpy as np
import pytest

from derive.numeric.compare import compare_gradients, format_table
from derive.numeric.random_data import random_classes, random_inputs, random_params


def reference():
    return {
        "W": np.array([[1.0, -2.0, 3.0], [4.0, -5.0, 6.0]]),
        "b": np.array([[0.0], [1e-3]]),
    }


def test_finds_planted_worst_entry_and_documented_errors():
    ref = reference()
    cand = {name: a.copy() for name, a in ref.items()}
    cand["W"][1, 2] += 3e-6      # largest absolute error in W
    cand["W"][0, 0] += 1e-6      # largest relative error in W
    cand["b"][0, 0] = 1e-12      # reference entry 0: the floor applies
    rows = compare_gradients(ref, cand)
    assert [r.name for r in rows] == ["W", "b"]
    w, b = rows
    assert w.n_entries == 6 and b.n_entries == 2
    assert w.worst_index == (1, 2)
    assert w.reference_value == 6.0 and w.candidate_value == pytest.approx(6.0 + 3e-6)
    assert w.max_abs_error == pytest.approx(3e-6, rel=1e-9)
    assert w.max_rel_error == pytest.approx(1e-6 / 1.0, rel=1e-9)
    # |a - b| / max(|b|, s), s = max(1e-8 * max|b_j|, 1e-300) = 1e-11
    assert b.worst_index == (0, 0)
    assert b.max_abs_error == pytest.approx(1e-12)
    assert b.max_rel_error == pytest.approx(1e-12 / 1e-11, rel=1e-9)


def test_all_zero_reference_uses_the_absolute_floor():
    rows = compare_gradients({"z": np.zeros((2, 2))}, {"z": np.zeros((2, 2))})
    assert rows[0].max_abs_error == 0.0 and rows[0].max_rel_error == 0.0
    rows = compare_gradients({"z": np.zeros((1, 1))}, {"z": np.full((1, 1), 1e-200)})
    assert rows[0].max_rel_error == pytest.approx(1e-200 / 1e-300)


def test_selected_entries():
    ref = reference()
    flat = [5, 1]
    cand = {"W": ref["W"].reshape(-1)[flat] + np.array([0.0, 2e-4]), "b": ref["b"]}
    w, b = compare_gradients(ref, cand, entries={"W": flat})
    assert w.n_entries == 2 and b.n_entries == 2
    assert w.worst_index == (0, 1)
    assert w.reference_value == -2.0
    assert w.max_rel_error == pytest.approx(1e-4, rel=1e-9)
    assert b.max_abs_error == 0.0


def test_empty_selection():
    (row, _) = compare_gradients(reference(), {"W": np.array([]), "b": reference()["b"]},
                                 entries={"W": []})
    assert row.n_entries == 0 and row.worst_index is None


def test_shape_and_name_errors():
    ref = reference()
    with pytest.raises(ValueError, match="no entry 'b'"):
        compare_gradients(ref, {"W": ref["W"]})
    with pytest.raises(ValueError, match=r"candidate\['W'\] has shape \(3, 2\)"):
        compare_gradients(ref, {"W": ref["W"].T, "b": ref["b"]})
    with pytest.raises(ValueError, match="one value per listed entry"):
        compare_gradients(ref, {"W": np.zeros(3), "b": ref["b"]}, entries={"W": [0, 1]})


def test_format_table_is_aligned():
    ref = reference()
    cand = {name: a.copy() for name, a in ref.items()}
    cand["W"][1, 2] += 3e-6
    text = format_table(compare_gradients(ref, cand))
    lines = text.splitlines()
    assert lines[0].split() == ["parameter", "entries", "max", "abs", "err", "max", "rel",
                                "err", "worst", "entry"]
    assert set(lines[1]) <= {"-", " "}
    assert len(lines) == 4
    assert "3.00e-06" in lines[2] and "5.00e-07" in lines[2] and "(1, 2)" in lines[2]
    assert "0.00e+00" in lines[3]
    # the columns start at the same offsets on every line
    starts = [lines[1].index("-", i) for i in range(len(lines[1])) if
              lines[1][i] == "-" and (i == 0 or lines[1][i - 1] == " ")]
    assert lines[2].index("W") == starts[0]
    assert lines[2].index("(1, 2)") == starts[4] == lines[3].index("(0, 0)")


def test_random_data_is_reproducible_and_scaled():
    shapes = {"A": (200, 400), "b": (3, 1)}
    p = random_params(shapes, seed=4)
    q = random_params(shapes, seed=4)
    assert list(p) == ["A", "b"]
    assert p["A"].dtype == np.float64 and p["b"].shape == (3, 1)
    np.testing.assert_array_equal(p["A"], q["A"])
    assert np.std(p["A"]) == pytest.approx(0.5 / np.sqrt(400), rel=0.02)
    c = random_classes(6, 2, 5, 0)
    assert c.shape == (6, 2) and c.dtype == np.int64 and 0 <= c.min() and c.max() < 5
    x = random_inputs((3, 2, 4), np.random.default_rng(1))
    assert x.shape == (3, 2, 4) and x.dtype == np.float64
