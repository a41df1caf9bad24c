"""Datasets, paired transforms and loaders; importing this registers them all."""
from . import ade20k, camvid, cityscapes, folder, oxford_pet, synthetic, transforms, voc  # noqa: F401  (registration)
from .build import TransformedDataset, build_dataloader, build_dataset
from .folder import ColourTable, FolderDataset
from .oxford_pet import OxfordPet
from .paired import LabelledPairs, SplitFolders, ValueTable
from .preflight import check_data, preflight
from .problems import DataError, DataReport, Problem
from .synthetic import SyntheticPets, generate_synthetic_pets
from .transforms import LAB_RECIPE, build_transforms, denormalize

__all__ = [
    "build_dataset", "build_dataloader", "build_transforms", "TransformedDataset", "OxfordPet",
    "SyntheticPets", "generate_synthetic_pets", "LAB_RECIPE", "denormalize", "check_data", "preflight",
    "DataError", "DataReport", "Problem", "FolderDataset", "LabelledPairs", "SplitFolders",
    "ValueTable", "ColourTable",
]

from .classes import DatasetMeta, dataset_meta, num_labels  # noqa: E402
from .geometry import PadCollate, input_size, pad_batch  # noqa: E402

__all__ += ["DatasetMeta", "dataset_meta", "num_labels", "PadCollate", "input_size", "pad_batch"]
