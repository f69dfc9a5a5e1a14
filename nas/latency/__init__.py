"""Hardware latency: block decomposition, micro-benchmarks, JSON tables and the predictor.

The search driver needs only:

    from nas.latency import load_table, predict, missing_signatures
    table = load_table("latency_tables/litert-cpu_t1.json")
    ms = predict(arch, table)             # UserError listing unmeasured blocks, and the command
    missing_signatures(arch, table)       # [] when the table covers arch

`build_table_for_space(space, target, out)` measures a table for a whole space (what
`segnas latency build` does). Modules: `blocks` (decomposition and signatures), `measure`
(timing), `table` (JSON + environment), `predictor`, `build`, `validate`, `bench_export`
(phones), `cli` (`segnas latency`).
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
