"""Serving a trained model: ``Predictor`` turns any image into a mask at the image's own size."""
from ..utils.images import to_rgb
from .predictor import Prediction, Predictor

__all__ = ["Predictor", "Prediction", "to_rgb"]
