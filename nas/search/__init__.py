"""The architecture search: the sweep spec read from a config, samplers, the ask -> train -> tell
driver over an Optuna study, its storage and workers, trial records, the Pareto front, winners
and the report.

Trial outcomes (`outcome` in trials.jsonl; the code is `nas.search.outcomes`): complete
(trained to its full step budget), timeout (the wall-clock safety net `train.max_minutes`
stopped it first), diverged (non-finite loss or gradient), failed (an exception, out of
memory), pruned (the median rule stopped it), killed (its worker died: heartbeat or pid gone),
infeasible (broke a constraint, so it was not trained), duplicate (an arch an earlier trial of
the study holds). "Counts" is toward `search.num_trials`; "population" is what the sampler
(NSGA-II / TPE) learns from, with the values it is told.

| outcome    | retried          | counts | population (values told)              | front, winner |
|------------|------------------|--------|---------------------------------------|---------------|
| complete   | no               | yes    | yes: val/miou, latency, costs         | yes           |
| timeout    | no               | yes    | no (Optuna FAIL)                      | no            |
| diverged   | no               | yes    | no (Optuna FAIL)                      | no            |
| failed     | no               | yes    | no (Optuna FAIL)                      | no            |
| pruned     | no               | yes    | no (Optuna PRUNED)                    | no            |
| killed     | yes¹             | no     | no (Optuna FAIL)                      | no            |
| infeasible | no               | yes    | yes, as infeasible: val/miou 0, its   | no            |
|            |                  |        | latency / costs, violations (> 0)     |               |
| duplicate  | no               | no     | no (Optuna FAIL): each arch once      | no²           |

¹ at once, up to `search.max_retry` (default 10) times per arch; the retry resumes from the
killed trial's checkpoint (the trainer saves one every `train.checkpoint_minutes`, default 1)
and stands for the arch. Past that the arch is free again: the sampler may propose it anew, and
its training resumes from the same checkpoint. A kill never counts as the candidate's failure.
² its earlier trial can be.

Infeasible trials are Optuna COMPLETE trials with constraint values (`trial.set_constraint`), so
constrained NSGA-II ranks them below every feasible trial by total violation and constrained TPE
keeps them out of its "good" set; their placeholder val/miou is never written to pareto.json,
the hypervolume, trials.jsonl's scores or W&B. `timeout`, `diverged` and `failed` are genuine
failures: after `search.max_failures` of them the search ends with a message (a space where
everything diverges must not run forever). After 10 duplicates in a row, the slot goes to the
nearest arch the study does not hold (a one-dimension neighbour when one is free, else any; a
converged TPE proposes one point again and again); the search ends with a message when the space
has no such arch left, or after `search.max_duplicates` trials in a row that trained nothing.
Such fills are not in NSGA-II's generations (Optuna assigns those only to its own children); TPE
learns from them like from any complete trial.
"""
