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
changed across borders): on the development VM block sums were 0.89-1.11x the measured
latency of 162 whole models. Candidate corrections, each fitted on a random 100 of those
models and scored on the other 62 (mean of 30 splits; experiments/benchmarks/
latency_predictors.py writes the same comparison for any table to
experiments/benchmarks/results/latency_predictors.json):

    block sum, no fit                           see the result file
    one scale + offset (segnas before)          97.1 % within ±10 %, 73 % within ±5 %
    + a cost per block call                     96.9 %, 74 %
    + MACs                                      97.2 %, 74 %
    one scale per block kind + offset           99.4 %, 77 %
    the same with a ridge toward one scale      99.4 %, 79 %   <- segnas (fit.py)

With 24 calibration models the ridge keeps the per-kind fit at 98 % where the plain
per-kind fit fell to 96 %. The ±5 % column is bounded by the machine, not the fit: the same
models timed twice agree within ±5 % only 71 % of the time (`measure` docstring).
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
