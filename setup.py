"""segkit: semantic segmentation from one config file."""
import re
import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
CONFIG_SUFFIXES = (".yaml", ".yml")


class BuildWithConfigs(build_py):
    """Copy the top-level ``configs/`` into the built package as ``segkit/configs/`` (as detectron2
    does with its model zoo): a wheel then carries the configs that ``segkit train NAME`` finds,
    while git holds one copy. Editable installs read ``configs/`` beside the package instead."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        source = HERE / "configs"
        target = Path(self.build_lib) / "segkit" / "configs"
        if target.exists():
            shutil.rmtree(target)  # a config deleted from the repo leaves no stale copy behind
        for path in sorted(source.rglob("*")):
            if path.is_file() and path.suffix in CONFIG_SUFFIXES:
                out = target / path.relative_to(source)
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, out)


version = re.search(r'__version__ = "([^"]+)"', (HERE / "segkit" / "__init__.py").read_text()).group(1)
readme = HERE / "README.md"
DOCS = ["mkdocs>=1.6", "mkdocs-material>=9.5", "mkdocstrings[python]>=0.26"]
EXPORT = ["onnx>=1.16", "onnxruntime>=1.18", "onnxscript>=0.3"]
SEARCH = ["optuna>=4.0"]

setup(
    name="segkit",
    version=version,
    description="Train, evaluate and serve semantic-segmentation models from one yacs config.",
    long_description=readme.read_text(encoding="utf-8") if readme.exists() else "",
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
    # docs: the MkDocs site (mkdocs build --strict), API pages from docstrings.
    # search: segkit tune (Optuna; its SQLite storage needs nothing more, a server database its driver).
    # dev: the tests, the layer contracts (lint-imports), coverage.py, build (the wheel test), and the
    # export, docs and search packages so CI runs those tests and builds the site.
    extras_require={"dev": ["pytest>=7", "import-linter>=2.1", "coverage>=7", "build>=1.0"] + EXPORT + DOCS + SEARCH,
                    "search": SEARCH,
                    "export": EXPORT,
                    "docs": DOCS,
                    # benchmark --peer smp: the library users compare segkit with
                    "bench": ["segmentation-models-pytorch>=0.3"]},
    entry_points={"console_scripts": ["segkit=segkit.commands:main"]},
    cmdclass={"build_py": BuildWithConfigs},
)
