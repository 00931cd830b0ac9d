"""Recorded PyTorch outputs, shipped in the package as one ``.npz`` file per scenario family."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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


_FORMAT = 2


def save_family(directory: Path, family: str, recordings: dict[str, Outputs], torch_version: str) -> Path:
    """Write every scenario of one family to ``<directory>/<family>.npz``.

    Arrays are packed: every array of one dtype is concatenated into one blob, and the JSON
    metadata holds each output's dtype, shape and offset, the strings, and which outputs are
    None. One zip entry per dtype instead of one per output keeps the file small (a module
    case has a dozen small outputs) and lets deflate see the whole family at once; the file
    loads without pickle.
    """
    directory.mkdir(parents=True, exist_ok=True)
    blobs: dict[str, list[np.ndarray]] = {}
    sizes: dict[str, int] = {}
    scenarios: dict[str, dict[str, object]] = {}
    for scenario_name, outputs in recordings.items():
        entries: dict[str, object] = {}
        for output_name, value in outputs.items():
            if _SEP in output_name:
                raise ValueError(f"output names may not contain {_SEP!r}: {output_name!r}")
            if value is None:
                entries[output_name] = None
            elif isinstance(value, str):
                entries[output_name] = {"text": value}
            else:
                array = np.asarray(value)  # (np.ascontiguousarray would make a 0-d array 1-d)
                dtype = array.dtype.str
                offset = sizes.get(dtype, 0)
                blobs.setdefault(dtype, []).append(array.reshape(-1))
                sizes[dtype] = offset + array.size
                entries[output_name] = {"dtype": dtype, "shape": list(array.shape), "offset": offset}
        scenarios[scenario_name] = entries
    dtypes = sorted(blobs)
    meta = {"format": _FORMAT, "torch_version": torch_version, "blobs": dtypes, "scenarios": scenarios}
    arrays = {f"blob{index}": np.concatenate(blobs[dtype]) for index, dtype in enumerate(dtypes)}
    arrays[_META] = np.array(json.dumps(meta))
    path = _family_path(directory, family)
    tmp = path.with_suffix(".tmp.npz")
    # ignore: numpy's stub lets **arrays bind allow_pickle: bool; the keys are blobN and the meta entry.
    np.savez_compressed(tmp, **arrays)  # type: ignore[arg-type]
    os.replace(tmp, path)
    return path


def _unpack(data: Any, meta: dict) -> dict[str, Outputs]:
    scenarios: dict[str, Outputs] = {}
    blobs: dict[str, np.ndarray] = {}
    for scenario_name, entries in meta["scenarios"].items():
        outputs: Outputs = {}
        for output_name, entry in entries.items():
            if entry is None:
                outputs[output_name] = None
            elif "text" in entry:
                outputs[output_name] = str(entry["text"])
            else:
                dtype = entry["dtype"]
                if dtype not in blobs:
                    blobs[dtype] = data[f"blob{meta['blobs'].index(dtype)}"]
                count = int(np.prod(entry["shape"], dtype=np.int64))
                flat = blobs[dtype][entry["offset"] : entry["offset"] + count]
                outputs[output_name] = np.array(flat.reshape(entry["shape"]), copy=True)
        scenarios[scenario_name] = outputs
    return scenarios


def _unpack_format_1(data: Any, meta: dict) -> dict[str, Outputs]:
    """The first landing's layout: one zip entry per output."""
    none_keys, string_keys = set(meta["none"]), set(meta["strings"])
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
    return scenarios


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
                scenarios = (_unpack if meta.get("format") == _FORMAT else _unpack_format_1)(data, meta)
            self._families[family] = (meta, scenarios)
        return self._families[family]

    def outputs(self, scenario_name: str) -> Outputs:
        """The recorded outputs of one scenario."""
        family = scenario_name.split("/", 1)[0]
        _, scenarios = self._load(family)
        if scenario_name not in scenarios:
            raise RecordingMissing(
                f"the recording of family {family!r} has no scenario {scenario_name!r}; run `torchsem record`"
            )
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
