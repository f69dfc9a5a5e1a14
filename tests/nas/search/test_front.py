"""nas.search.front (and the report's plots) on hand-made points with hand-computed fronts and
hypervolumes."""

import numpy as np
import pytest

from nas.search import front as pareto
from nas.search import report

# (mIoU: maximise, latency ms: minimise). C is dominated by A (worse on both), D by B (same
# latency, lower mIoU); A, B and E trade off.
MIXED = np.array(
    [
        [0.8, 10.0],  # A
        [0.6, 5.0],  # B
        [0.7, 12.0],  # C
        [0.5, 5.0],  # D
        [0.9, 20.0],
    ]
)  # E
MAX_MIN = [True, False]


def test_non_dominated_mixed_directions():
    assert pareto.non_dominated(MIXED, MAX_MIN).tolist() == [True, True, False, False, True]
    # Flipping the directions flips who wins: now low mIoU and high latency are good.
    assert pareto.non_dominated(MIXED, [False, True]).tolist() == [False, False, True, True, True]


def test_dominates_and_ties():
    assert pareto.dominates([0.8, 10], [0.7, 12], MAX_MIN)
    assert not pareto.dominates([0.7, 12], [0.8, 10], MAX_MIN)
    assert not pareto.dominates([0.8, 10], [0.8, 10], MAX_MIN)  # equal: no domination
    assert pareto.dominates([0.6, 5], [0.5, 5], MAX_MIN)  # equal latency, better mIoU
    same = np.array([[0.5, 1.0], [0.5, 1.0], [0.4, 2.0]])
    assert pareto.non_dominated(same, MAX_MIN).tolist() == [True, True, False]


def test_hypervolume_2d_hand_computed():
    # Reference (mIoU 0, 25 ms). Sweeping latency: [5, 10) best mIoU 0.6 -> 3.0;
    # [10, 20) 0.8 -> 8.0; [20, 25) 0.9 -> 4.5. Total 15.5; dominated points add nothing.
    assert pareto.hypervolume(MIXED, MAX_MIN, [0.0, 25.0]) == pytest.approx(15.5)
    assert pareto.hypervolume(MIXED[[0, 1, 4]], MAX_MIN, [0.0, 25.0]) == pytest.approx(15.5)
    # E (20 ms) is outside a 15 ms reference: [5,10) 3.0 + [10,15) 0.8*5 = 4.0 -> 7.0.
    assert pareto.hypervolume(MIXED, MAX_MIN, [0.0, 15.0]) == pytest.approx(7.0)
    # A point on the reference boundary or beyond adds nothing; nothing inside -> 0.
    assert pareto.hypervolume(np.array([[0.5, 25.0]]), MAX_MIN, [0.0, 25.0]) == 0.0
    assert pareto.hypervolume(np.zeros((0, 2)), MAX_MIN, [0.0, 25.0]) == 0.0


def test_hypervolume_3d_hand_computed():
    # Minimising in the unit cube: each point dominates a 1 x .5 x .5 box (0.25); every pair
    # and the triple overlap in [.5, 1]^3 (0.125). Inclusion-exclusion: 3*.25 - 3*.125 + .125.
    pts = np.array([[0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]])
    assert pareto.hypervolume(pts, [False] * 3, [1, 1, 1]) == pytest.approx(0.5)
    assert pareto.hypervolume_history(pts, [False] * 3, [1, 1, 1]) == pytest.approx(
        [0.25, 0.375, 0.5]
    )
    # The same set with the first objective maximised as 1 - x (reference 0) is the same volume.
    mixed = pts.copy()
    mixed[:, 0] = 1 - mixed[:, 0]
    assert pareto.hypervolume(mixed, [True, False, False], [0, 1, 1]) == pytest.approx(0.5)
    # A single box and a point that only touches the reference.
    assert pareto.hypervolume(np.array([[0.2, 0.4, 0.5]]), [False] * 3, [1, 1, 1]) == pytest.approx(
        0.8 * 0.6 * 0.5
    )


def test_hypervolume_matches_optunas_wfg_on_random_sets():
    wfg = pytest.importorskip("optuna._hypervolume.wfg")
    rng = np.random.default_rng(0)
    for k in (2, 3, 4):
        pts = rng.uniform(0, 1, (25, k))
        ours = pareto.hypervolume(pts, [False] * k, [1.1] * k)
        theirs = wfg.compute_hypervolume(pts, np.full(k, 1.1))
        assert ours == pytest.approx(theirs, rel=1e-9)


def test_shape_errors():
    with pytest.raises(ValueError, match=r"points: got shape \(3,\)"):
        pareto.non_dominated(np.ones(3), MAX_MIN)


def test_front_staircase():
    x, y = report.front_staircase(MIXED[:, 1], MIXED[:, 0], False, True)
    # Front sorted by latency: B (5, .6), A (10, .8), E (20, .9), joined by steps.
    assert x.tolist() == [5, 10, 10, 20, 20]
    assert y.tolist() == [0.6, 0.6, 0.8, 0.8, 0.9]


def test_plots_are_written(tmp_path):
    mask = pareto.non_dominated(MIXED, MAX_MIN)
    kw = dict(x_label="latency (ms)", y_label="mIoU", x_max=False, y_max=True, title="t")
    report.plot_png(tmp_path / "p.png", MIXED[:, 1], MIXED[:, 0], mask, labels=list("ABCDE"), **kw)
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report.plot_html(tmp_path / "p.html", MIXED[:, 1], MIXED[:, 0], mask, hover=list("ABCDE"), **kw)
    html = (tmp_path / "p.html").read_text()
    # Self-contained: plotly.js is inlined, no script is fetched from the network.
    assert '<script src="http' not in html and len(html) > 1_000_000
    assert "Pareto front" in html
