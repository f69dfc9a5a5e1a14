"""nas.space.space: a Space's grid, size, dict round trip and validation."""

import pytest

from nas.space.presets import SPACES
from nas.space.space import Space


def test_space_grid_size_and_validation():
    sp = SPACES["seed000"]
    assert sp.size() == 3 * 3 * 2 * 3 * 4 == len(list(sp.grid()))
    assert Space.from_dict(sp.to_dict()) == sp
    with pytest.raises(ValueError, match=r"^space.encoder: got 'vgg'"):
        Space(encoder=("vgg",)).validate()
    with pytest.raises(ValueError, match=r"^space.resolution: got \[100, 100\]"):
        Space(resolution=((100, 100),)).validate()
    with pytest.raises(ValueError, match=r"^space.width: empty"):
        Space(width=()).validate()
    with pytest.raises(ValueError, match=r"^space: got 'colour'"):
        Space.from_dict({"colour": ["red"]})
