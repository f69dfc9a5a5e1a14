"""nas.search.strategies with the encoding of conditional dimensions: in a mixed-family sweep a
knob that only one family has is still modelled by the sampler, not drawn at random."""

from optuna.trial import TrialState

from nas.space.encoding import space_config
from nas.space.space import Space, resolutions
from nas.train.result import TrainResult
from tests.nas.search.fakes import run_sweep

STARTUP = 10


def _kind_matters(config, workdir, *, arch, on_eval=None):
    # Only the U-Net decoder has `kind`; its `mlp` stages score best, LR-ASPP in between.
    kind = arch.decoder.knobs().get("kind")
    miou = {"mlp": 0.9, "bilinear": 0.3, "channel_attention": 0.3, None: 0.5}[kind]
    miou += int(arch.id[:4], 16) / 0xFFFF / 100  # ties broken by the arch, deterministically
    return TrainResult("complete", 1, {"val/miou": miou})


def test_tpe_models_a_knob_only_one_family_has(config, tmp_path):
    space = Space.from_dict(
        {
            "encoder": {
                "name": ["mobilenet_v3_small", "mobilenet_v3_large"],
                "width": [0.5, 0.75, 1.0, 1.25],
                "depth": [0.5, 1.0],
            },
            "decoder": {
                "name": ["unet", "lraspp"],
                "kind": ["bilinear", "channel_attention", "mlp"],
            },
            "resolution": resolutions((32, 64)),
            "num_classes": 3,
        }
    )
    config.search.space = space_config(space)
    config.search.strategy = "tpe"
    config.search.objectives = ("val/miou",)
    config.search.startup_trials = STARTUP
    config.search.num_trials = 40
    ctx = run_sweep(config, tmp_path, evaluate=_kind_matters, render=False)
    trials = sorted(ctx.study.get_trials(deepcopy=False), key=lambda t: t.number)
    # every trial carries the conditional parameter, also those that drew LR-ASPP
    assert all("decoder.kind" in t.params for t in trials)
    late = [
        t
        for t in trials[STARTUP:]
        if t.state == TrialState.COMPLETE
        and t.params["decoder.name"] == "unet"
        and "fills_for" not in t.user_attrs  # the sampler's own proposals, not random fills
    ]
    share = sum(t.params["decoder.kind"] == "mlp" for t in late) / len(late)
    # uniform sampling would give 1/3; the modelled knob concentrates on the best kind
    assert len(late) >= 10 and share > 0.5, (len(late), share)  # measured: 17 of 29


def test_a_study_of_the_flat_schema_is_refused_by_name(config, tmp_path):
    import pytest

    from nas.errors import UserError
    from nas.search import prepare

    ctx = run_sweep(config, tmp_path, render=False)
    old = dict(ctx.study.user_attrs["segnas"])
    del old["schema"]  # what segnas wrote before archs had family configs
    ctx.study.set_user_attr("segnas", old)
    with pytest.raises(UserError, match=r"created by an older segnas \(arch schema 1"):
        prepare.prepare(config, tmp_path, evaluate=_kind_matters)
