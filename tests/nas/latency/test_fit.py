"""The predictor's fit: per-kind scales, the ridge, cross-fitting, and the error figures."""

from __future__ import annotations

import pytest

from nas.errors import UserError
from nas.latency import fit

# Models made of two block kinds, measured exactly as 0.8 * A + 1.2 * B + 0.5 ms.
SUMS = [
    {"A": 1.0, "B": 2.0},
    {"A": 4.0, "B": 1.0},
    {"A": 2.0, "B": 6.0},
    {"A": 8.0, "B": 3.0},
    {"A": 5.0},
    {"B": 7.0},
]
MEASURED = [3.7, 4.9, 9.3, 10.5, 4.5, 8.9]  # by hand from the line above


def test_an_exact_per_kind_line_is_recovered_without_the_ridge():
    f = fit.fit(SUMS, MEASURED, ridge=0.0)
    assert f["coef"] == {"A": pytest.approx(0.8, abs=1e-6), "B": pytest.approx(1.2, abs=1e-6)}
    assert f["offset_ms"] == pytest.approx(0.5, abs=1e-6)
    assert fit.apply(f, {"A": 10.0, "B": 10.0}) == pytest.approx(20.5, abs=1e-5)
    # a kind the fit never saw is scaled by the common scale
    assert fit.apply(f, {"C": 1.0}) == pytest.approx(f["scale"] + f["offset_ms"], abs=1e-9)


def test_the_ridge_pulls_the_kinds_toward_one_scale():
    loose = fit.fit(SUMS, MEASURED, ridge=0.0)["coef"]
    tight = fit.fit(SUMS, MEASURED, ridge=1e6)
    assert loose["B"] - loose["A"] == pytest.approx(0.4, abs=1e-5)
    assert abs(tight["coef"]["B"] - tight["coef"]["A"]) < 1e-3
    assert tight["coef"]["A"] == pytest.approx(tight["scale"], abs=1e-3)


def test_one_point_is_its_ratio_and_bad_input_is_refused():
    assert fit.fit([{"A": 2.0}], [3.0]) == {"scale": 1.5, "coef": {"A": 1.5}, "offset_ms": 0.0}
    with pytest.raises(UserError, match="got 0 block sums and 0 measurements"):
        fit.fit([], [])
    with pytest.raises(UserError, match="got 2 block sums and 1 measurements"):
        fit.fit([{"A": 1.0}, {"A": 2.0}], [1.0])
    with pytest.raises(UserError, match="non-positive latency"):
        fit.fit([{"A": 1.0}, {"A": 2.0}], [1.0, 0.0])


def test_cross_fitting_predicts_each_point_without_it():
    ids = [f"m{i}" for i in range(6)]
    measured = list(MEASURED)
    measured[5] = 2 * 8.9  # an outlier: the fit that predicts m5 must not have seen it
    cal = fit.calibrate(ids, SUMS, measured, folds=6, seed=0, ridge=0.0)
    assert cal["n"] == 6 and len(cal["folds"]) == 6
    assert sorted(i for f in cal["folds"] for i in f["ids"]) == ids
    own = fit.fit_for(cal, "m5")
    assert own["ids"] == ["m5"]
    assert fit.apply(own, SUMS[5]) == pytest.approx(8.9, abs=1e-4)  # the clean line's value
    assert fit.fit_for(cal, "not-a-point") is cal
    # out of fold: m5 is off by -50 %; every other point is predicted with m5 in its fit
    assert cal["heldout"]["n"] == 6 and cal["heldout"]["max_abs_pct_error"] >= 50.0
    assert fit.calibrate(["x"], [{"A": 1.0}], [2.0])["folds"] == []


def test_error_figures_by_hand():
    # errors: +10 %, -4 %, +25 %, 0 %
    e = fit.errors([1.1, 0.96, 2.5, 3.0], [1.0, 1.0, 2.0, 3.0])
    assert e == {
        "n": 4,
        "within_5pct": 0.5,
        "within_10pct": 0.75,
        "median_abs_pct_error": 7.0,
        "max_abs_pct_error": 25.0,
    }
