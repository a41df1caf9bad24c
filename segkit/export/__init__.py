"""Deployable models: ONNX (run by onnxruntime) and TorchScript files made from a checkpoint.

``segkit export CONFIG CHECKPOINT --format onnx|torchscript`` (tools/export.py) writes the
file and checks it against the PyTorch model; ``OnnxRuntimeModel`` runs an exported .onnx
wherever a segkit model is expected (the Predictor uses it for .onnx checkpoints).
"""
from .exporters import EXPORTERS, FORMATS, ExportWrapper, export_model, export_onnx, export_torchscript, load_exported, max_abs_diff
from ..engine.onnx_model import OnnxRuntimeModel, require
from .check import export_and_check

__all__ = ["ExportWrapper", "export_model", "export_onnx", "export_torchscript", "load_exported", "max_abs_diff",
           "OnnxRuntimeModel", "require", "export_and_check", "EXPORTERS", "FORMATS"]
