"""`segnas search --config experiments/NAME.py[:ARG] --workdir DIR [--storage URL] [--workers N]
[--config.a.b=v ...]`: run (or continue) an architecture search.

Re-running the same command continues the study up to `search.num_trials` architectures; a
candidate killed mid-training resumes from its checkpoint. `--workers N` starts N worker
processes of this same command on the same storage (logs in DIR/logs/) and shows their
progress; `--storage URL` points several machines at one database (see the README). The config
is an ml_collections config file, any field overridable as `--config.search.num_trials=20`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ml_collections import ConfigDict
from tqdm import tqdm

from nas.cli.common import Parser
from nas.cli.config import split_config_args
from nas.config import load_config
from nas.errors import UserError
from nas.io import atomic_write
from nas.search import driver as search
from nas.search import prepare, records, report
from nas.search.spec import planned_trials

SEARCH_JSON = "search.json"


def _parser(prog: str = "segnas search") -> Parser:
    p = Parser(prog=prog, description=__doc__.split("\n\n")[0])
    # Listed for --help only: --config and --config.* go to ml_collections (nas.cli.config).
    p.add_argument(
        "--config",
        metavar="FILE[:ARG]",
        help="experiment config with a `search` "
        "section; override any field with --config.a.b=value",
    )
    p.add_argument("--workdir", type=Path, required=True, help="the sweep's folder")
    p.add_argument(
        "--storage",
        help="Optuna storage URL shared by machines (default: $SEGNAS_STORAGE, else "
        "sqlite:///WORKDIR/study.db); journal:PATH for a journal file",
    )
    p.add_argument(
        "--storage-file",
        type=Path,
        help="a file whose first line is the storage URL (keeps a password off the command line)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="local worker processes (default: search.workers, else 1)",
    )
    # Set by the parent of `--workers N` on its children (which skip the final outputs).
    p.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    return p


def without_flag(argv: list[str], flag: str) -> list[str]:
    """argv minus `flag VALUE` / `flag=VALUE`."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == flag:
            skip = True
        elif not a.startswith(flag + "="):
            out.append(a)
    return out


def _print_header(ctx: prepare.Context, url: str, workers: int) -> None:
    spec = ctx.spec
    done = len(
        {
            r["arch_id"]
            for r in records.records(ctx.study)
            if r["state"] in ("complete", "pruned", "failed")
            and r["outcome"] not in ("killed", "duplicate")
        }
    )
    print(
        f"study {spec.study_name!r}: strategy {spec.strategy}, objectives "
        f"{', '.join(spec.objectives)}, {planned_trials(spec)} architectures "
        f"({done} already evaluated), {workers} worker(s)\nstorage {search.st.mask_url(url)}\n"
        f"workdir {ctx.workdir}",
        flush=True,
    )


def _finished(study) -> list:
    return [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state.is_finished() and not t.user_attrs.get("skipped") and "outcome" in t.user_attrs
    ]


def run_local(ctx: prepare.Context) -> None:
    """One in-process worker with a live display: a bar over trials and a line per trial."""
    bar = tqdm(
        total=planned_trials(ctx.spec), desc="search", unit="trial", position=0, dynamic_ncols=True
    )
    bar.update(min(len({t.user_attrs.get("arch_id") for t in _finished(ctx.study)}), bar.total))

    def on_trial(t) -> None:
        records.write_trials_jsonl(ctx.study, ctx.workdir)
        tqdm.write(records.trial_line(t, ctx.spec))
        if "reused_from" not in t.user_attrs:
            bar.update(1)

    try:
        search.run_worker(ctx, on_trial)
    finally:
        bar.close()


def split_cores(cores: list[int], workers: int) -> list[list[int]]:
    """Disjoint groups of `cores`, one per worker, as even as possible; with more workers than
    cores, workers share single cores round-robin (oversubscribed: the caller warns)."""
    if workers > len(cores):
        return [[cores[k % len(cores)]] for k in range(workers)]
    size, extra = divmod(len(cores), workers)
    out, start = [], 0
    for k in range(workers):
        n = size + (k < extra)
        out.append(cores[start : start + n])
        start += n
    return out


# XLA:CPU's older loop emitters for the workers' candidates. Measured on one core
# (MobileNetV3-Large + MLP U-Net, 64 px, batch 8, 20 steps; three runs without it, one with):
# compiling its init, train and eval steps took 50 s instead of 69-90 s, 20 steps 17.7 s
# instead of 24-33 s, and val/miou was the same to every digit; run side by side on the two
# cores at once, 85 s instead of 106 s, steps equal. Compiling is most of a short
# candidate's time on a CPU. XLA reads it from XLA_FLAGS only (a per-compile option is ignored).
TRAIN_XLA_FLAG = "--xla_cpu_use_fusion_emitters=false"


def worker_env(cores: list[int], storage: str | None = None) -> dict[str, str]:
    """The environment of a worker pinned to `cores`: thread pools sized to them, and
    `TRAIN_XLA_FLAG` added to XLA_FLAGS unless they set that option. XLA:CPU and
    Eigen size their pools from the process's CPU affinity (set by `run_children`); TF's
    tf.data and OpenMP / BLAS pools read these variables. `storage`: the study's URL, passed
    here rather than on the worker's command line (where `ps` would show a password)."""
    n = str(len(cores))
    xla = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_use_fusion_emitters" not in xla:  # the user's own setting wins
        xla = f"{xla} {TRAIN_XLA_FLAG}".strip()
    return {
        **os.environ,
        "XLA_FLAGS": xla,
        **({search.st.STORAGE_ENV: storage} if storage else {}),
        "TF_NUM_INTRAOP_THREADS": n,
        "TF_NUM_INTEROP_THREADS": "1",
        "OMP_NUM_THREADS": n,
        "OPENBLAS_NUM_THREADS": n,
    }


def run_children(
    ctx: prepare.Context, argv: list[str], workers: int, storage: str | None = None
) -> None:
    """N worker processes of this command on the same storage; the parent shows progress.

    Workers split the machine's cores: each is pinned (CPU affinity) to its own group, so N
    workers on C cores never run N thread pools of C threads each (two workers on two cores
    spent half their time in the kernel that way)."""
    logs = ctx.workdir / "logs"
    logs.mkdir(exist_ok=True)
    procs = []
    groups = split_cores(sorted(os.sched_getaffinity(0)), workers)
    if workers > len(os.sched_getaffinity(0)):
        print(
            f"warning: {workers} workers on {len(os.sched_getaffinity(0))} cores: workers share "
            "cores, and their candidates' training times are not comparable",
            file=sys.stderr,
        )
    for k in range(workers):
        cmd = [
            sys.executable,
            "-m",
            "nas.cli.main",
            "search",
            *argv,
            "--workers",
            "1",
            "--worker-index",
            str(k + 1),
        ]
        cores = groups[k]
        with open(logs / f"worker-{k + 1}.log", "ab") as log:
            procs.append(
                subprocess.Popen(
                    cmd,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=os.getcwd(),
                    env=worker_env(cores, storage),
                    preexec_fn=lambda cores=cores: os.sched_setaffinity(0, cores),
                )
            )
    print(
        f"started {workers} workers (pids {', '.join(str(p.pid) for p in procs)}; cores "
        f"{' | '.join(','.join(map(str, g)) for g in groups)}); logs in {logs}",
        flush=True,
    )
    seen = {t.number for t in _finished(ctx.study)}
    bar = tqdm(total=planned_trials(ctx.spec), desc="search", unit="trial", dynamic_ncols=True)
    bar.update(min(len(seen), bar.total))
    try:
        while True:
            alive = [p for p in procs if p.poll() is None]
            for t in sorted(_finished(ctx.study), key=lambda t: t.number):
                if t.number not in seen:
                    seen.add(t.number)
                    tqdm.write(records.trial_line(t, ctx.spec))
                    if "reused_from" not in t.user_attrs:
                        bar.update(1)
            if not alive:
                break
            # Reading the study costs CPU the workers need (~10 % of a core at one read per
            # second, measured on the quickstart); trials take minutes, so 5 s is plenty.
            for _ in range(25):
                if all(p.poll() is not None for p in procs):
                    break
                time.sleep(0.2)
    except KeyboardInterrupt:
        # Our own children only. A terminal's Ctrl-C reached them too; a SIGINT sent to the
        # parent alone did not: pass it on, so each saves a checkpoint and hands its trial back.
        _stop_children(procs)
        raise
    finally:
        bar.close()
    failed = [(k + 1, p.returncode) for k, p in enumerate(procs) if p.returncode]
    for k, rc in failed:
        tail = (logs / f"worker-{k}.log").read_text(errors="replace").strip().splitlines()[-3:]
        print(f"worker {k} exited with code {rc}: {' | '.join(tail)}", file=sys.stderr)


def _stop_children(procs: list[subprocess.Popen]) -> None:
    deadline = time.time() + 5
    while time.time() < deadline and any(p.poll() is None for p in procs):
        time.sleep(0.2)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    for p in procs:
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main(argv: list[str]) -> int:
    """`segnas search`: 0 when the sweep ended, 130 when interrupted (it can be continued)."""
    spec, overrides, rest = split_config_args(argv)
    args = _parser().parse_args(rest)
    if spec is None:
        raise UserError("--config: missing; allowed: --config experiments/NAME.py[:ARG]")
    config = load_config(spec, overrides)
    if args.workers is None:
        args.workers = (config.get("search") or {}).get("workers", 1)
    if isinstance(args.workers, bool) or not isinstance(args.workers, int) or args.workers < 1:
        raise UserError(
            f"--workers / search.workers: got {args.workers!r}; allowed: an integer >= 1"
        )
    child = args.worker_index is not None
    storage = search.st.storage_from(args.storage, args.storage_file)
    # A worker process never rebuilds latency tables (the parent did) nor writes final outputs.
    try:
        ctx = prepare.prepare(
            config,
            args.workdir,
            storage=storage,
            worker_index=args.worker_index or 0,
            build_tables=not child,
        )
    except KeyboardInterrupt:  # a latency table being built keeps what it measured
        print(
            "\ninterrupted before the first trial; run the same command again to continue",
            file=sys.stderr,
        )
        return 130
    url = search.st.resolve_url(storage, ctx.workdir)
    try:
        return _run(ctx, config, argv, args, url, child)
    except KeyboardInterrupt:
        records.write_trials_jsonl(ctx.study, ctx.workdir)
        print(
            "\ninterrupted: the running trial was handed back (its checkpoint is kept); run "
            "the same command again to continue",
            file=sys.stderr,
        )
        return 130


def _run(
    ctx: prepare.Context,
    config: ConfigDict,
    argv: list[str],
    args: argparse.Namespace,
    url: str,
    child: bool,
) -> int:
    if child:
        search.run_worker(ctx, lambda t: print(records.trial_line(t, ctx.spec), flush=True))
        records.write_trials_jsonl(ctx.study, ctx.workdir)
        return 0
    # What `segnas pareto --workdir DIR` needs to re-render the outputs without the config
    # file; the storage URL without its password (pareto asks for it when it is needed).
    saved = {"config": json.loads(config.to_json_best_effort()), "storage": search.st.mask_url(url)}
    atomic_write(ctx.workdir / SEARCH_JSON, json.dumps(saved, indent=2) + "\n")
    _print_header(ctx, url, args.workers)
    t0 = time.time()
    if args.workers == 1:
        run_local(ctx)
    else:
        argv = without_flag(
            without_flag(without_flag(argv, "--workers"), "--storage"), "--storage-file"
        )
        run_children(ctx, argv, args.workers, url)
    print(f"\nsearch finished in {time.time() - t0:.0f} s", flush=True)
    result = report.render(ctx.study, ctx.spec, ctx.workdir, wandb_cfg=config.get("wandb"))
    if result["wandb_dir"]:
        mode = str(config.wandb.get("mode", "offline"))
        if mode == "offline":
            print(
                f"W&B (offline): upload with `wandb sync {result['wandb_dir']}` and the "
                f"candidates' runs with `wandb sync {ctx.workdir}/trials/*/wandb/offline-run-*`"
            )
    return 0
