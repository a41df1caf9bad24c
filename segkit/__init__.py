"""segkit: train, evaluate and serve semantic-segmentation models from one yacs config."""
__version__ = "0.1.0"
