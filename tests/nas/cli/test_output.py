"""`--json`: stdout holds the JSON only, whatever else is printed meanwhile."""

from __future__ import annotations

import json

from nas.cli.main import main
from nas.cli.output import emit_json, json_mode


def test_json_mode_sends_every_other_print_to_stderr(capsys):
    with json_mode(True):
        print("Downloading and preparing dataset toy_scenes ...")
        emit_json({"b": 1, "a": [2]})
    out, err = capsys.readouterr()
    assert out == '{"a": [2], "b": 1}\n'
    assert err == "Downloading and preparing dataset toy_scenes ...\n"
    with json_mode(False):  # without --json nothing is moved
        print("plain")
    assert capsys.readouterr().out == "plain\n"


def test_a_command_that_prints_on_the_way_still_emits_clean_json(capsys, monkeypatch):
    import nas.cli.cost as cost_cli

    real = cost_cli.cost

    def noisy(arch):
        print("a library's notice, printed to stdout")
        return real(arch)

    monkeypatch.setattr(cost_cli, "cost", noisy)
    assert main(["cost", "--preset", "lraspp_mobilenet_v3_large", "--json"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["arch"]["encoder"]["name"] == "mobilenet_v3_large" and report["params"] > 0
    assert "a library's notice" in err
