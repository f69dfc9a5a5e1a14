"""Hardware latency: block decomposition, micro-benchmarks, JSON tables and the predictor.

The search driver needs only:

    from nas.latency import load_table, predict, missing_signatures
    table = load_table("latency_tables/litert-cpu_t1.json")
    ms = predict(arch, table)             # UserError listing unmeasured blocks, and the command
    missing_signatures(arch, table)       # [] when the table covers arch

`build_table_for_space(space, target, out)` measures a table for a whole space (what
`segnas latency build` does). Modules: `blocks` (decomposition and signatures), `measure`
(the one timing protocol and clock), `context` (a lone model timed among others), `table`
(JSON + environment), `fit` (whole models from blocks), `predictor`, `build`, `validate`,
`bench_export` (phones), `cli` (`segnas latency`).

How a prediction is made, and why this way. Blocks timed alone miss the whole model by an
amount that depends on the kind of block (per-call cost, data handed over in cache, layouts
changed across borders): on the development VM the plain block sum put only a quarter of the
whole models within ±10 %. Candidate corrections were fitted on k random models of the default
table's 200 measured whole models (its 100 calibration points and 100 validation models) and
scored on the others, 30 splits each (experiments/benchmarks/latency_predictors.py;
experiments/benchmarks/results/latency_predictors.json):

    form                                  k = 100: ±10 %, ±5 %     k = 24: ±10 %, ±5 %
    block sum, no fit                              25 %,   0 %             26 %,   0 %
    one scale + offset (segnas before)             99.8 %, 83 %            99.1 %, 82 %
    + a cost per block call                        99.8 %, 83 %            98.5 %, 80 %
    + MACs                                         99.5 %, 85 %            98.5 %, 83 %
    one scale per block kind + offset              100 %,  96 %            99.3 %, 91 %
    the same with a ridge toward one scale         100 %,  96 %            100 %,  95 %   <- fit.py

The ridge matters with few calibration models (a search's own small space). All figures are
on the reference scale (`measure` docstring, "Drift"); without it, drift between the moment a
table is built and the moment a model is timed moved every error by a few percent.
"""

from nas.latency.build import build_table, build_table_for_space
from nas.latency.predictor import missing_signatures, predict
from nas.latency.table import LatencyTable, load_table

__all__ = [
    "LatencyTable",
    "build_table",
    "build_table_for_space",
    "load_table",
    "missing_signatures",
    "predict",
]
