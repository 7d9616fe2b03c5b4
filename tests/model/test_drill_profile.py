"""Drill profiles: the shipped one loads; a wrong field or value is a ConfigError naming file, field and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.model.drill_profile import load_drill_profile


def test_the_shipped_drill_profile_loads_with_the_reference_gates() -> None:
    profile = load_drill_profile("drill")
    assert profile.drill.fault == "kill" and profile.drill.synchronous_commit
    assert profile.gates.rto_s == 30 and profile.gates.rpo_messages == 0


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('[drill]\nfault = "flood"\n', ["drill.fault", "flood"]),
        ("[load]\nwriters = 0\n", ["load.writers", "0"]),
        ("[gates]\nrto = 30\n", ["gates.rto", "Extra inputs"]),
        ("[drill\n", ["not valid TOML"]),
    ],
)
def test_bad_profiles_name_what_is_wrong(tmp_path: Path, text: str, names: list[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_drill_profile(str(path))
    assert str(path) in str(caught.value)
    for name in names:
        assert name in str(caught.value)


def test_a_missing_profile_names_where_it_looked() -> None:
    with pytest.raises(ConfigError, match="drill profile 'nope' not found"):
        load_drill_profile("nope")
