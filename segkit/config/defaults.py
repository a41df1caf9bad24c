"""Every option segkit reads, with its default and meaning: the one catalogue to look things up in.

Component nodes (``MODEL.BACKBONE``, ``MODEL.DECODER``, ``DATA.DATASET``, ``SOLVER.OPTIMIZER``,
``SOLVER.SCHEDULER``) and the items of component lists (``LOSS.TERMS``,
``INPUT.TRAIN_TRANSFORMS``, ``INPUT.TEST_TRANSFORMS``, ``HOOKS``, ``CUSTOM_HOOKS``) hold a
``NAME`` from a registry plus free keyword arguments for it, so a newly registered class needs
no edit here. When a config changes a component node's NAME, the node is replaced rather than
merged, so arguments meant for the old class never reach the new one.

Every value with a valid range (below: "at least 1", "0-1 scale", …) is checked when a config
is loaded, against the table in ``segkit.config.validate``: a value outside it stops the
command with one line naming the key, the value and the range, before anything runs.
"""
from yacs.config import CfgNode as CN

_C = CN()

# Bump when a key is renamed, so old configs can be upgraded instead of misread.
_C.VERSION = 1

# Python modules (dotted names or paths to .py files) imported before anything is built,
# so classes they register can be named in this config.
_C.CUSTOM_IMPORTS = []

# Where the run writes its config dump, logs, TensorBoard events and checkpoints.
_C.OUTPUT_DIR = "work_dirs/default"

# Seed for python, numpy and torch (data order, augmentation, initialisation).
_C.SEED = 42

# Ask torch for deterministic kernels (slower; bit-identical runs on CPU).
_C.DETERMINISTIC = False

# "auto" picks cuda when available, else cpu; or name one ("cpu", "cuda", "cuda:1").
_C.DEVICE = "auto"

# Linux/glibc: keep the memory tensors free inside the process rather than returning it to the
# kernel after every step, so CPU training stops faulting its activations in afresh (a step
# about 10 % faster on 2 cores, a whole run about 4 %; the process then holds its peak memory
# until it exits). Skipped when MALLOC_* tunables are set or another allocator (jemalloc,
# tcmalloc) is preloaded.
_C.MALLOC_KEEP_FREED = True

# ---------------------------------------------------------------------------- #
# DATA
# ---------------------------------------------------------------------------- #
_C.DATA = CN()

# Dataset root. For oxford_pet: the folder holding images/ and annotations/.
_C.DATA.ROOT = ""

# Which dataset class reads ROOT (a DATASETS registry name) and its own arguments.
_C.DATA.DATASET = CN(new_allowed=True)
_C.DATA.DATASET.NAME = "oxford_pet"
# Oxford trimap value 3 (the pet's outline): "foreground" (the classic binary setup),
# "background", "ignore" (left out of loss and metrics), or "class" (the outline is class 2:
# background 0, pet 1, boundary 2; train it with MODEL.NUM_CLASSES 3).
_C.DATA.DATASET.BOUNDARY = "foreground"
# Fetch the dataset into ROOT when it is missing (needs internet; tests never do).
_C.DATA.DATASET.DOWNLOAD = False

# Fraction of the trainval list held out (seeded by SEED) as the validation split.
_C.DATA.VAL_FRACTION = 0.1

# Mask value meaning "not labelled": excluded from every loss and metric.
_C.DATA.IGNORE_INDEX = 255

# Names of the labels 0..K-1 (K = MODEL.NUM_CLASSES, or 2 for a binary model: background and
# foreground), shown in every table, log and served answer. Empty: the dataset's own names (each
# registered dataset declares them; its _base_/datasets/*.yaml repeats them), else "class_<i>".
_C.DATA.CLASSES = []
# One [r, g, b] colour (0-255) per label, for colour masks, overlays and TensorBoard. Empty: the
# dataset's own palette, else segkit's generic one.
_C.DATA.PALETTE = []

# Data-loader worker processes; 0 loads in the main process.
_C.DATA.NUM_WORKERS = 2

# Decode and resize each sample once and keep the uint8 result at INPUT.SIZE (random
# augmentation still runs per sample and epoch, after it): "disk" (.npz files under CACHE_DIR,
# shared by workers and later runs), "memory" (per loading process) or "none". Entries are
# keyed by each file's path, mtime and size, so edited files are read again.
_C.DATA.CACHE = "disk"
# Folder for DATA.CACHE "disk"; empty: $SEGKIT_CACHE_DIR, else ~/.cache/segkit. Safe to delete.
_C.DATA.CACHE_DIR = ""
# Let libjpeg decode JPEGs at 1/2, 1/4 or 1/8 scale when that still covers INPUT.SIZE (much
# less work for large photos, nearly identical pixels after the resize).
_C.DATA.JPEG_DRAFT = True

# Scan the whole dataset before training starts and report every bad file at once
# (``segkit check-data CONFIG`` runs the same scan on its own).
_C.DATA.CHECK = True

# What to do with the bad samples the scan finds: False stops with the list; True leaves them
# out with a warning that names each one.
_C.DATA.SKIP_BAD = False

# ---------------------------------------------------------------------------- #
# INPUT: resizing, normalisation and augmentation
# ---------------------------------------------------------------------------- #
_C.INPUT = CN()

# How an image meets the network. "square": resized to SIZE x SIZE, aspect ratio not kept (the
# lab report's pipeline; its configs keep it). "keep_ratio" (mmseg's pipeline, for street scenes,
# indoor scenes, tiles …): rescaled keeping the aspect ratio to SCALE; in training then rescaled
# again by a random factor from RATIO_RANGE, cropped to CROP_SIZE (retrying crops that
# CAT_MAX_RATIO refuses) and padded to CROP_SIZE with IGNORE_INDEX; in evaluation the whole
# rescaled image is scored at its original size.
_C.INPUT.GEOMETRY = "square"

# GEOMETRY square: images and masks are resized to SIZE x SIZE pixels before the network sees them
# (16 to 2048: larger sizes need more memory and data cache than is sane; crop or tile instead).
_C.INPUT.SIZE = 256

# GEOMETRY keep_ratio: [long edge, short edge] bounds of the rescale (mmseg's ``scale`` with
# keep_ratio): each image is scaled by min(long / its long side, short / its short side), so
# one side meets its bound and neither exceeds it. [2048, 1024] keeps a Cityscapes frame as it is.
_C.INPUT.SCALE = [2048, 512]
# GEOMETRY keep_ratio, training: the random factor range applied on top of SCALE (mmseg's
# RandomResize ratio_range); [1.0, 1.0] turns the random rescale off.
_C.INPUT.RATIO_RANGE = [0.5, 2.0]
# GEOMETRY keep_ratio, training: [h, w] of the random crop (an int for a square); smaller
# images are padded to it with DATA.IGNORE_INDEX (left out of loss and metrics).
_C.INPUT.CROP_SIZE = [512, 512]
# GEOMETRY keep_ratio, training: draw the crop again (up to 10 times) while one class covers
# more than this share of its labelled pixels (mmseg's cat_max_ratio); 1.0 accepts any crop.
_C.INPUT.CAT_MAX_RATIO = 0.75

# Per-channel mean and std (on a 0-1 scale) used to normalise images; ImageNet's by default.
# One value per MODEL.IN_CHANNELS; every STD > 0.
_C.INPUT.MEAN = [0.485, 0.456, 0.406]
_C.INPUT.STD = [0.229, 0.224, 0.225]

# Augmentations applied, in order, to training pairs after the resize and before
# normalisation: a list of {NAME: <albumentations or segkit transform>, <kwarg>: value}.
# Empty: no augmentation. configs/_base_/augment/lab.yaml holds the lab report's recipe.
_C.INPUT.TRAIN_TRANSFORMS = []

# The same for evaluation (validation and test); usually empty.
_C.INPUT.TEST_TRANSFORMS = []

# ---------------------------------------------------------------------------- #
# MODEL
# ---------------------------------------------------------------------------- #
_C.MODEL = CN()

# Output channels: 1 for binary segmentation (sigmoid + BCE), N > 1 for N classes (softmax).
_C.MODEL.NUM_CLASSES = 1

# Input image channels.
_C.MODEL.IN_CHANNELS = 3

# Encoder: a BACKBONES registry name ("unet", "resnet34", ...) and its arguments.
_C.MODEL.BACKBONE = CN(new_allowed=True)
_C.MODEL.BACKBONE.NAME = "unet"
# A local state dict (torchvision or timm key layout, classifier keys are dropped) loaded into
# the encoder: ImageNet weights without internet. Empty: the encoder's own initialisation.
_C.MODEL.BACKBONE.WEIGHTS = ""
# Freeze the parameters that produce the encoder's first N feature maps (ResNet34: 1 = stem,
# 2 = stem + layer1, …, 5 = all). 0 freezes nothing.
_C.MODEL.BACKBONE.FREEZE_AT = 0
# Keep every BatchNorm of the encoder in eval mode with frozen affine weights (fine-tuning
# with small batches). Frozen stages' BatchNorms are kept in eval mode in any case.
_C.MODEL.BACKBONE.FROZEN_BN = False

# Decoder: a DECODERS registry name ("unet", ...) and its arguments.
_C.MODEL.DECODER = CN(new_allowed=True)
_C.MODEL.DECODER.NAME = "unet"

# Path of a checkpoint whose model weights initialise training (fine-tuning). Empty: none.
_C.MODEL.WEIGHTS = ""

# Store weights and activations as NHWC (channels_last): the layout oneDNN (CPU) and tensor
# cores (GPU) convolve fastest, in fp32 as well as bf16/fp16. False keeps NCHW.
_C.MODEL.CHANNELS_LAST = True

# Under torchrun on GPUs: BatchNorm normalises with the statistics of the whole global batch
# (SyncBatchNorm) instead of each process's share. Needs CUDA; no effect in one process.
_C.MODEL.SYNC_BN = False

# ---------------------------------------------------------------------------- #
# LOSS
# ---------------------------------------------------------------------------- #
_C.LOSS = CN()

# Weighted sum of named terms: a list of {NAME: <LOSSES name>, WEIGHT: w, <kwarg>: value}.
# Class imbalance: cross-entropy terms (bce, focal) of a multi-class model take CLASS_WEIGHT, a
# weight per class or "median_frequency" / "inverse_sqrt_frequency", computed once from the
# training split's labels (logged and kept in the run as class_weights.json); a binary model
# weighs its foreground with POS_WEIGHT instead. dice takes ABSENT_CLASSES: "keep" scores a class
# missing from a batch's labels too (segkit's default), "drop" leaves it out (smp's convention).
_C.LOSS.TERMS = [{"NAME": "bce", "WEIGHT": 1.0}]

# Online hard example mining (mmseg's OHEMPixelSampler), training only: each batch keeps the
# labelled pixels whose probability of their true class is below THRESH, and at least MIN_KEPT
# per image of the hardest ones (THRESH 0: exactly those); the other pixels count as ignored in
# every loss term. Evaluation always scores every pixel. mmseg's 100000 suits its 512x1024 crops;
# a crop of fewer pixels than MIN_KEPT keeps them all, so scale it with the crop (e.g. a fifth).
_C.LOSS.OHEM = CN()
_C.LOSS.OHEM.ENABLED = False
_C.LOSS.OHEM.THRESH = 0.7
_C.LOSS.OHEM.MIN_KEPT = 100000

# Deep supervision (models such as u2net return [main, side1, …] while training): the weight of
# each output in the loss, main first. Empty: 1.0 for every output (as in the U²-Net paper).
_C.LOSS.DEEP_SUPERVISION_WEIGHTS = []

# ---------------------------------------------------------------------------- #
# SOLVER
# ---------------------------------------------------------------------------- #
_C.SOLVER = CN()

# Number of passes over the training split.
_C.SOLVER.EPOCHS = 50

# Images per optimisation step.
_C.SOLVER.BATCH_SIZE = 8

# Learning rate at the start of the schedule.
_C.SOLVER.BASE_LR = 1e-4

# L2 weight decay handed to the optimizer; 0 disables it.
_C.SOLVER.WEIGHT_DECAY = 0.0

# Optimizer: an OPTIMIZERS registry name ("adam", "adamw", "sgd") and its arguments.
_C.SOLVER.OPTIMIZER = CN(new_allowed=True)
_C.SOLVER.OPTIMIZER.NAME = "adam"

# Leave normalisation weights and biases out of weight decay (the usual choice for AdamW).
_C.SOLVER.NO_DECAY_NORM_BIAS = False

# LR schedule: a SCHEDULERS name ("cosine", "cosine_restarts", "plateau", "poly", "onecycle",
# "none") and its arguments (see ``segkit list schedulers``).
_C.SOLVER.SCHEDULER = CN(new_allowed=True)
_C.SOLVER.SCHEDULER.NAME = "cosine"

# Advance the schedule once per "epoch" or once per optimizer "step" (smoother, same shape).
_C.SOLVER.SCHEDULE_UNIT = "epoch"

# Linear warm-up in front of any schedule: epochs (fractions allowed) rising from
# BASE_LR * WARMUP_FACTOR to BASE_LR. 0 disables it.
_C.SOLVER.WARMUP_EPOCHS = 0.0
_C.SOLVER.WARMUP_FACTOR = 0.001

# Clip the global gradient norm to this value before each optimizer step; 0 disables it.
_C.SOLVER.CLIP_GRAD_NORM = 0.0

# Accumulate gradients over this many batches per optimizer step (effective batch =
# BATCH_SIZE * ACCUM_STEPS); 1 steps after every batch.
_C.SOLVER.ACCUM_STEPS = 1

# On a NaN or infinite loss: "stop" (with the step and the last good checkpoint named) or
# "skip" the batch with a warning. Checkpoints are never written from non-finite weights.
_C.SOLVER.NONFINITE_LOSS = "stop"

# Mixed precision: autocast the forward pass to DTYPE. "auto" picks per device: bf16 on a CPU
# with native bf16 (Intel AMX / AVX512-BF16, Arm BF16) or a CUDA GPU that has it, fp16 with
# loss scaling on older CUDA GPUs, fp32 elsewhere (emulated bf16 is slower than fp32).
# "bfloat16" / "float16" force a dtype; ENABLED False always trains and evaluates in fp32.
_C.SOLVER.AMP = CN()
_C.SOLVER.AMP.ENABLED = True
_C.SOLVER.AMP.DTYPE = "auto"

# ---------------------------------------------------------------------------- #
# TEST: evaluation after each epoch and in tools/test.py
# ---------------------------------------------------------------------------- #
_C.TEST = CN()

# Images per evaluation batch.
_C.TEST.BATCH_SIZE = 8

# Probability above which a pixel counts as foreground (binary models).
_C.TEST.THRESHOLD = 0.5

# Where metrics are taken: "network" (logits vs the mask resized to INPUT.SIZE; cheap, used by
# default), "original" (logits resized back bilinearly to each image's own size, compared with
# the untouched mask: the number a user gets) or "both" (original ones under orig_* keys).
_C.TEST.RESOLUTION = "network"

# How an image meets the network in evaluation, ``segkit test``/``infer`` and the Predictor:
# "whole" resizes it to INPUT.SIZE; "slide" scores it at its own pixels (after TEST.SCALE)
# with overlapping CROP_SIZE windows STRIDE apart, their logits averaged, windows batched
# TEST.BATCH_SIZE at a time. Slide mode always scores at each image's own size, whatever
# TEST.RESOLUTION says: use it for photos, slides or tiles much larger than INPUT.SIZE.
_C.TEST.MODE = "whole"
# Window size: an int for square windows or an [h, w] pair; a multiple of the model's output
# stride, no larger than the (scaled) images. 0: INPUT.SIZE.
_C.TEST.CROP_SIZE = 0
# Step between windows: an int or an [h, w] pair, at most CROP_SIZE. 0: two thirds of CROP_SIZE.
_C.TEST.STRIDE = 0
# Resize each image by this factor before sliding (1.0: native pixels; 0.5: half size).
_C.TEST.SCALE = 1.0
# How overlapping windows are averaged: "uniform", or "gaussian" (window centres weigh more,
# so window borders do not show as seams).
_C.TEST.SLIDE_WEIGHT = "uniform"

# Test-time augmentation for evaluation and the Predictor: logits averaged over the listed
# input scales, each also horizontally flipped when FLIP. FLIP False and SCALES [1.0]: off.
_C.TEST.TTA = CN()
_C.TEST.TTA.FLIP = False
_C.TEST.TTA.SCALES = [1.0]

# ---------------------------------------------------------------------------- #
# HOOKS: everything the training loop does besides stepping the model
# ---------------------------------------------------------------------------- #
# The standard hooks, in the order they run at each hook point. Evaluation comes first so
# the schedule, checkpointer and writers see this epoch's validation metrics; the
# checkpointer comes before the writers so a failing writer cannot lose a checkpoint.
# Remove one to switch it off.
# The JSON log is written before the checkpoint, so a run killed in between logs that epoch
# twice at worst, and the resumed run drops the extra lines; early stopping comes before the
# checkpoint so its counters are saved with the epoch they belong to.
# Early stopping is off while PATIENCE is 0. KEEP_LAST keeps that many epoch_NNNN.pth files
# beside last.pth and best.pth (0: none).
_C.HOOKS = [
    {"NAME": "evaluation", "PERIOD": 1},
    {"NAME": "lr_scheduler"},
    {"NAME": "json_logger", "PERIOD": 20},
    {"NAME": "early_stopping", "MONITOR": "val/dice", "MODE": "max", "PATIENCE": 0, "MIN_DELTA": 0.0},
    {"NAME": "checkpoint", "MONITOR": "val/dice", "MODE": "max", "KEEP_LAST": 0},
    {"NAME": "text_logger"},
    {"NAME": "tensorboard", "LOG_GRAPH": True, "MAX_IMAGES": 4},
    {"NAME": "progress_bar"},
]

# Hooks of your own, run after the standard ones: {NAME: <HOOKS name>, <kwarg>: value}.
_C.CUSTOM_HOOKS = []


# Keys that take an int or an [h, w] pair (the type check accepts either, whatever the default).
INT_OR_PAIR_KEYS = ("TEST.CROP_SIZE", "TEST.STRIDE", "INPUT.CROP_SIZE")


def get_default_config() -> CN:
    """A fresh copy of the defaults; the module-level node is never handed out."""
    return _C.clone()
