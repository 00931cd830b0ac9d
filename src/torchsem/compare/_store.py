"""Recorded PyTorch outputs, shipped in the package as one ``.npz`` file per scenario family."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ._outputs import Outputs

RECORDED_DIR = Path(__file__).with_name("recorded")
_META = "__meta__"
_SEP = "::"


def recorded_dir() -> Path:
    """Where recorded outputs are read from: ``$TORCHSEM_RECORDED_DIR`` or the package's folder."""
    override = os.environ.get("TORCHSEM_RECORDED_DIR")
    return Path(override) if override else RECORDED_DIR


class RecordingMissing(LookupError):
    """The recorded outputs do not contain a scenario (run ``torchsem record``)."""


def _family_path(directory: Path, family: str) -> Path:
    return directory / f"{family}.npz"


def save_family(directory: Path, family: str, recordings: dict[str, Outputs], torch_version: str) -> Path:
    """Write every scenario of one family to ``<directory>/<family>.npz``.

    None outputs are listed in the metadata; strings are stored as numpy unicode arrays, so
    the file loads without pickle.
    """
    directory.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    none_keys: list[str] = []
    string_keys: list[str] = []
    order: dict[str, list[str]] = {}
    for scenario_name, outputs in recordings.items():
        order[scenario_name] = list(outputs)
        for output_name, value in outputs.items():
            key = f"{scenario_name}{_SEP}{output_name}"
            if value is None:
                none_keys.append(key)
            elif isinstance(value, str):
                string_keys.append(key)
                arrays[key] = np.array(value)
            else:
                arrays[key] = np.asarray(value)
    meta = {"torch_version": torch_version, "none": none_keys, "strings": string_keys, "order": order}
    arrays[_META] = np.array(json.dumps(meta, sort_keys=True))
    path = _family_path(directory, family)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
    return path


class RecordedStore:
    """Read-only access to recorded outputs, loading each family file once."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else recorded_dir()
        self._families: dict[str, tuple[dict, dict[str, Outputs]]] = {}

    def _load(self, family: str) -> tuple[dict, dict[str, Outputs]]:
        if family not in self._families:
            path = _family_path(self.directory, family)
            if not path.exists():
                raise RecordingMissing(f"no recorded outputs for family {family!r} at {path}; run `torchsem record`")
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data[_META]))
                none_keys = set(meta["none"])
                string_keys = set(meta["strings"])
                scenarios: dict[str, Outputs] = {}
                for scenario_name, output_names in meta["order"].items():
                    outputs: Outputs = {}
                    for output_name in output_names:
                        key = f"{scenario_name}{_SEP}{output_name}"
                        if key in none_keys:
                            outputs[output_name] = None
                        elif key in string_keys:
                            outputs[output_name] = str(data[key])
                        else:
                            outputs[output_name] = np.array(data[key])
                    scenarios[scenario_name] = outputs
            self._families[family] = (meta, scenarios)
        return self._families[family]

    def outputs(self, scenario_name: str) -> Outputs:
        """The recorded outputs of one scenario."""
        family = scenario_name.split("/", 1)[0]
        _, scenarios = self._load(family)
        if scenario_name not in scenarios:
            raise RecordingMissing(f"the recording of family {family!r} has no scenario {scenario_name!r}; run `torchsem record`")
        return scenarios[scenario_name]

    def torch_version(self, family: str) -> str:
        """The torch version that produced a family's recording."""
        meta, _ = self._load(family)
        return str(meta["torch_version"])

    def families(self) -> list[str]:
        """Every family that has a recording in this directory."""
        return sorted(p.name[: -len(".npz")] for p in self.directory.glob("*.npz"))

    def torch_versions(self, families: Iterable[str] | None = None) -> set[str]:
        """The distinct torch versions behind the given (default: all) recorded families."""
        return {self.torch_version(f) for f in (families if families is not None else self.families())}
