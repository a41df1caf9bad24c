"""segkit: semantic segmentation from one config file."""
import re
from pathlib import Path

from setuptools import find_packages, setup

version = re.search(r'__version__ = "([^"]+)"', Path("segkit/__init__.py").read_text()).group(1)

setup(
    name="segkit",
    version=version,
    description="Train, evaluate and serve semantic-segmentation models from one yacs config.",
    long_description=Path("README.md").read_text(encoding="utf-8") if Path("README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["segkit", "segkit.*"]),
    install_requires=[
        # torch and torchvision are released in lock-step: install them together.
        "torch==2.14.1",
        "torchvision==0.29.1",
        "timm>=1.0",
        "albumentations>=2.0",
        "yacs>=0.1.8",
        "tensorboard>=2.10",
        "numpy",
        "opencv-python-headless",  # albumentations brings it; segkit imports cv2 directly too
        "pillow",
        "matplotlib",  # the report's curves and the best/worst grids (Agg backend: no display needed)
        "tqdm",
        "pyyaml",
    ],
    # export: ONNX files (onnxscript for the dynamo exporter) and running them in onnxruntime.
    # dev: the tests, the layer contracts (lint-imports), coverage.py, and export's packages so CI runs
    # the export tests.
    extras_require={"dev": ["pytest>=7", "import-linter>=2.1", "coverage>=7", "onnx>=1.16", "onnxruntime>=1.18",
                            "onnxscript>=0.3"],
                    "export": ["onnx>=1.16", "onnxruntime>=1.18", "onnxscript>=0.3"],
                    # benchmark --peer smp: the library users compare segkit with
                    "bench": ["segmentation-models-pytorch>=0.3"]},
    entry_points={"console_scripts": ["segkit=segkit.commands:main"]},
)
