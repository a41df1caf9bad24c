"""Datasets, paired transforms and loaders; importing this registers them all."""
from . import folder, oxford_pet, synthetic, transforms  # noqa: F401  (registration side effects)
from .build import TransformedDataset, build_dataloader, build_dataset
from .oxford_pet import OxfordPet
from .preflight import check_data, preflight
from .problems import DataError, DataReport, Problem
from .synthetic import SyntheticPets, generate_synthetic_pets
from .transforms import LAB_RECIPE, build_transforms, denormalize

__all__ = [
    "build_dataset", "build_dataloader", "build_transforms", "TransformedDataset", "OxfordPet",
    "SyntheticPets", "generate_synthetic_pets", "LAB_RECIPE", "denormalize", "check_data", "preflight",
    "DataError", "DataReport", "Problem",
]
