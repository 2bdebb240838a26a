"""tinySNN's Python API, in one import (docs/api.md)::

    import tinysnn as tsnn

    cfg = tsnn.Config().replace(n_neurons=50, train={"n_train": 300, "n_test": 100})
    data = tsnn.load_dataset(cfg)
    net = tsnn.build_network(cfg)
    tsnn.train(net, data, callbacks=[lambda step: ...])
    tsnn.assign(net, data)
    print(tsnn.evaluate(net, data)["accuracy"])

Every name here is the object the ``tinysnn`` commands use, from the core package
``tinysnn_core`` (its modules keep their names: ``tinysnn_core.train`` is the module, and
``tinysnn.train`` its function), so the API and the command line cannot drift apart.
"""

from tinysnn_core import QFormat, __version__, from_codes, hookimpl, quantize, to_codes
from tinysnn_core.api import deploy, explore, measure, quantize_network
from tinysnn_core.builtin.explore_commands import materialize
from tinysnn_core.config import Config
from tinysnn_core.data import Dataset
from tinysnn_core.errors import ConfigError, InputError, ModelFileError, PluginError, TinySNNError
from tinysnn_core.explore import read_results
from tinysnn_core.export import export_model
from tinysnn_core.intsim import from_network as integer_model
from tinysnn_core.intsim import run_integer
from tinysnn_core.log import TinySNNNote, TinySNNWarning
from tinysnn_core.modelfile import load_network, save_network
from tinysnn_core.monitors import Record, Recording, TrainingCurve, record_test_samples
from tinysnn_core.network import Network
from tinysnn_core.plots import (confusion_matrix, plot_assignments, plot_confusion, plot_membrane,
                                plot_raster, plot_theta, plot_traces, plot_training_curve)
from tinysnn_core.quant import QuantPlan
from tinysnn_core.registry import get_registry
from tinysnn_core.report import write_report
from tinysnn_core.select import Selection, select, select_by_cost, select_for_board
from tinysnn_core.stats import mcnemar_exact, mean_ci, paired_difference
from tinysnn_core.train import (TrainStep, assign, build_network, evaluate, get_backend,
                                load_dataset, run, stream_seed, train, warn_lost_decays)

__all__ = [
    # configuration, data, networks
    "Config", "Dataset", "Network", "QuantPlan", "load_dataset", "build_network", "get_backend",
    # training and evaluation
    "train", "TrainStep", "assign", "evaluate", "run", "warn_lost_decays",
    # monitors and plots
    "Record", "Recording", "record_test_samples", "TrainingCurve", "plot_raster",
    "plot_membrane", "plot_theta", "plot_traces", "confusion_matrix", "plot_confusion",
    "plot_assignments", "plot_training_curve",
    # model files and other formats
    "save_network", "load_network", "export_model",
    # statistics over seeds and on paired test samples
    "mean_ci", "paired_difference", "mcnemar_exact",
    # quantization, exploration, selection, report
    "quantize_network", "explore", "read_results", "select", "select_for_board",
    "select_by_cost", "Selection", "materialize", "write_report",
    # fixed point and integer inference (what a board runs)
    "QFormat", "quantize", "to_codes", "from_codes", "integer_model", "run_integer",
    "stream_seed",
    # boards, through the runner plugin's commands
    "deploy", "measure",
    # plugins, errors, warnings
    "hookimpl", "get_registry", "TinySNNError", "ConfigError", "InputError", "ModelFileError",
    "PluginError", "TinySNNWarning", "TinySNNNote", "__version__",
]
