"""Running an exported ONNX model (fp32 or INT8) with onnxruntime behind the interface of a
torch model, so evaluation, ``segkit test``/``infer`` and the Predictor take a ``.onnx`` file
wherever they take a checkpoint. Here in the engine, below the exporters, because evaluation
runs it."""
from __future__ import annotations

import importlib
import os
from typing import Optional, Sequence

import numpy as np
import torch

__all__ = ["OnnxRuntimeModel", "require", "session_options", "CONFIG_METADATA_KEY"]

INSTALL_HINT = 'pip install -e ".[export]"'
# The ONNX metadata entry holding the merged config the model was exported with (segkit export
# writes it), so a file served with another config is refused as a .pth would be.
CONFIG_METADATA_KEY = "segkit.config"


def require(module: str, why: str):
    """Import an optional dependency, or fail with the one command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ModuleNotFoundError(f"{why} needs the '{module}' package, which is not installed; "
                                  f"install the export extras with: {INSTALL_HINT}") from e


def session_options(ort, threads: Optional[int] = None):
    """Settings for throughput: every graph optimisation (QDQ pairs fused into integer kernels for
    INT8 files), one intra-op thread per core torch uses (onnxruntime's own default counts
    logical CPUs, hyper-threads included), operators run one after another (a segmentation
    graph is a chain: parallel branches would only compete for the same cores)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = int(threads or torch.get_num_threads())
    options.inter_op_num_threads = 1
    return options


class OnnxRuntimeModel:
    """An exported ``.onnx`` file that is called like the segkit model it came from.

    ``model(images)`` takes a float32 NCHW tensor and returns float32 logits as a tensor on
    the same device, so code written for a ``torch.nn.Module`` (the Predictor, the
    evaluator) runs it unchanged; ``eval()``, ``train(False)`` and ``to(...)`` are accepted
    and do nothing, since an inference session has no training mode and picks its device
    from ``providers`` (default: every provider this onnxruntime build offers, best first).
    """

    training = False

    def __init__(self, path: str, providers: Optional[Sequence[str]] = None, threads: Optional[int] = None):
        ort = require("onnxruntime", "running an .onnx model")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"ONNX model '{path}' does not exist")
        self.path = path
        try:
            self.session = ort.InferenceSession(path, sess_options=session_options(ort, threads),
                                                providers=list(providers or ort.get_available_providers()))
        except Exception as e:  # onnxruntime raises its own exception types for bad files
            raise ValueError(f"onnxruntime could not load '{path}': {e}") from e
        inp = self.session.get_inputs()[0]
        self.input_name, self.input_shape = inp.name, list(inp.shape)
        self.output_name = self.session.get_outputs()[0].name
        metadata = self.session.get_modelmeta().custom_metadata_map
        # The config it was exported with (None for a file segkit did not write).
        self.config_text: Optional[str] = metadata.get(CONFIG_METADATA_KEY)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4:
            raise ValueError(f"OnnxRuntimeModel: expected an NCHW batch, got shape {tuple(images.shape)}")
        fixed = [(i, want) for i, want in enumerate(self.input_shape) if isinstance(want, int)]
        wrong = [i for i, want in fixed if images.shape[i] != want]
        if wrong:
            raise ValueError(f"ONNX model '{self.path}' was exported for input shape {self.input_shape} and got "
                             f"{list(images.shape)}; export it with --dynamic to accept any batch and size")
        array = np.ascontiguousarray(images.detach().float().cpu().numpy())
        logits = self.session.run([self.output_name], {self.input_name: array})[0]
        return torch.from_numpy(logits).to(images.device)

    forward = __call__

    def eval(self) -> "OnnxRuntimeModel":
        return self

    def train(self, mode: bool = True) -> "OnnxRuntimeModel":
        if mode:
            raise ValueError(f"ONNX model '{self.path}' is inference-only and cannot be trained")
        return self

    def to(self, *args, **kwargs) -> "OnnxRuntimeModel":
        return self

    def __repr__(self) -> str:
        return f"OnnxRuntimeModel('{self.path}', providers={self.session.get_providers()})"
