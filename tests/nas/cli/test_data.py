"""`segnas data store`: a user's folder stored as a dataset, and one-line errors with exit 2."""

from pathlib import Path

import numpy as np
from PIL import Image

from nas.cli.main import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _folder(root: Path) -> None:
    """One 12x16 image + mask in train/ and in validation/ (the layout of data/own.py)."""
    for split in ("train", "validation"):
        for kind in ("images", "masks"):
            (root / split / kind).mkdir(parents=True)
        Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(root / split / "images" / "a.png")
        Image.fromarray(np.ones((12, 16), np.uint8)).save(root / split / "masks" / "a.png")


def test_store_prints_the_config_to_use(tmp_path, capsys):
    _folder(tmp_path / "mine")
    code, out, err = run(
        capsys,
        "data",
        "store",
        str(tmp_path / "mine"),
        "--name",
        "cli_seg",
        "--out",
        str(tmp_path / "out"),
    )
    assert code == 0, err
    assert f"use data.name='cli_seg' data.data_dir={str(tmp_path / 'out')!r}" in out
    assert (tmp_path / "out" / "cli_seg" / "1.0.0").is_dir()


def test_bad_arguments_are_one_line(tmp_path, capsys):
    code, out, err = run(capsys, "data", "store", str(tmp_path), "--out", str(tmp_path / "o"))
    assert code == 2 and out == ""
    assert err.startswith("segnas data: error: ") and "required: --name" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run(
        capsys,
        "data",
        "store",
        str(tmp_path / "nowhere"),
        "--name",
        "x",
        "--out",
        str(tmp_path / "o"),
    )
    assert code == 2 and "is not a folder" in err
