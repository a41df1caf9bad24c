"""Datasets, paired transforms and loaders; importing this registers them all."""
from . import folder, oxford_pet, synthetic, transforms  # noqa: F401  (registration side effects)
from .build import TransformedDataset, build_dataloader, build_dataset
from .oxford_pet import OxfordPet
from .synthetic import SyntheticPets, generate_synthetic_pets
from .transforms import LAB_RECIPE, build_transforms, denormalize

__all__ = [
    "build_dataset", "build_dataloader", "build_transforms", "TransformedDataset", "OxfordPet",
    "SyntheticPets", "generate_synthetic_pets", "LAB_RECIPE", "denormalize",
]
