"""The comparison layer: PyTorch behaviours and their JAX counterparts, run side by side.

A :class:`Scenario` pairs a PyTorch program with a JAX program over the same inputs; an
oracle supplies PyTorch's outputs (live, or recorded in the package); :func:`run_scenario`
judges the JAX outputs against them. The report (``torchsem compare``, :func:`run_catalogue`
and the ``render_*`` functions) and the pytest parity suite both read the same catalogue.
:func:`check_port` runs a user's own PyTorch module and its Flax port side by side.
"""

from ._authoring import error_outputs as error_outputs
from ._authoring import jitted as jitted
from ._document_net import document_start as document_start
from ._format import format_like_torch as format_like_torch
from ._format import format_value as format_value
from ._module_case import ErrorCase as ErrorCase
from ._module_case import Input as Input
from ._module_case import ModuleCase as ModuleCase
from ._module_case import register_module_cases as register_module_cases
from ._oracle import LiveOracle as LiveOracle
from ._oracle import RecordedOracle as RecordedOracle
from ._oracle import check_recording as check_recording
from ._oracle import get_oracle as get_oracle
from ._oracle import oracle_mode_from_env as oracle_mode_from_env
from ._oracle import record as record
from ._oracle import torch_available as torch_available
from ._outputs import Outputs as Outputs
from ._outputs import as_outputs as as_outputs
from ._port_check import check_port as check_port
from ._port_names import PortNames as PortNames
from ._port_report import PortCheck as PortCheck
from ._port_report import PortQuantity as PortQuantity
from ._render import render_json as render_json
from ._render import render_markdown as render_markdown
from ._render import render_table as render_table
from ._report import Entry as Entry
from ._report import PlainJax as PlainJax
from ._report import Report as Report
from ._report import run_catalogue as run_catalogue
from ._result import OutputComparison as OutputComparison
from ._result import ScenarioResult as ScenarioResult
from ._result import compare_output as compare_output
from ._result import drift_distance as drift_distance
from ._result import judge as judge
from ._result import run_scenario as run_scenario
from ._scenario import Scenario as Scenario
from ._scenario import Tolerance as Tolerance
from ._scenario import catalogue as catalogue
from ._scenario import get as get
from ._scenario import register as register
from ._store import RecordedStore as RecordedStore
from ._store import RecordingMissing as RecordingMissing

__all__ = [
    "Entry",
    "ErrorCase",
    "Input",
    "LiveOracle",
    "ModuleCase",
    "OutputComparison",
    "Outputs",
    "PlainJax",
    "PortCheck",
    "PortNames",
    "PortQuantity",
    "RecordedOracle",
    "RecordedStore",
    "RecordingMissing",
    "Report",
    "Scenario",
    "ScenarioResult",
    "Tolerance",
    "as_outputs",
    "catalogue",
    "check_port",
    "check_recording",
    "compare_output",
    "document_start",
    "drift_distance",
    "error_outputs",
    "format_like_torch",
    "format_value",
    "get",
    "get_oracle",
    "jitted",
    "judge",
    "oracle_mode_from_env",
    "record",
    "register",
    "register_module_cases",
    "render_json",
    "render_markdown",
    "render_table",
    "run_catalogue",
    "run_scenario",
    "torch_available",
]
