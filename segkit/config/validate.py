"""The ranges of config values, checked when a config is loaded, before anything runs.

Types are checked while merging (``segkit.config.merge_dict``); this module checks what a
value of the right type may be: a learning rate that is finite and positive, a mean per input
channel, a probability in [0, 1]. ``RULES`` is the table, one row per key (``[*]`` stands for
every item of a list, ``[name|other]`` for the items or component node whose NAME is one of
those; a key of a list item or component node matches in any case, as its keyword does), and
``RELATIONS`` the few checks between keys. Every problem is reported at once, each naming its
key, its value and what it may be.
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable, Iterator, List, Mapping, Optional, Sequence, Tuple

from .defaults import _C

__all__ = ["RULES", "RELATIONS", "MAX_INPUT_SIZE", "config_problems"]

# INPUT.SIZE at most this: every image is resized to SIZE x SIZE, so the data cache holds a
# SIZE² RGB array per image and a batch's activations grow with SIZE² (a UNet at 5000 px needs
# gigabytes per image). Larger photos are downscaled to it; crop or tile to go finer.
MAX_INPUT_SIZE = 2048
MIN_INPUT_SIZE = 16
# Sliding windows at most this large on a side (a window goes through the model whole).
MAX_WINDOW = 8192
# Datasets shipped with segkit: every image is read as RGB (utils.images.load_rgb).
RGB_DATASETS = ("oxford_pet", "synthetic", "folder", "camvid", "pascal_voc", "ade20k", "cityscapes")
# Both hook lists: keyword rules name the hooks shipped with segkit (a user's own hook may give
# its keywords other meanings).
HOOKS = "HOOKS|CUSTOM_HOOKS"

Check = Callable[[Any], Optional[str]]  # None when the value fits, else what it must be


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _interval(lo, hi, lo_open: bool, hi_open: bool) -> str:
    lo_text, hi_text = (x if isinstance(x, int) or x is None else f"{x:g}" for x in (lo, hi))
    if lo is not None and lo == hi:
        return f"equal to {lo_text}"
    if hi is None:
        return f"{'>' if lo_open else '>='} {lo_text}"
    if lo is None:
        return f"{'<' if hi_open else '<='} {hi_text}"
    return f"in {'(' if lo_open else '['}{lo_text}, {hi_text}{')' if hi_open else ']'}"


def number(lo=None, hi=None, lo_open: bool = False, hi_open: bool = False, unit: str = "") -> Check:
    """A finite int or float within the bounds (``None``: unbounded)."""
    expected = f"a finite number {_interval(lo, hi, lo_open, hi_open)}{unit}"

    def check(v):
        ok = (_is_number(v) and math.isfinite(v) and (lo is None or (v > lo if lo_open else v >= lo))
              and (hi is None or (v < hi if hi_open else v <= hi)))
        return None if ok else expected
    return check


def integer(lo=None, hi=None, unit: str = "") -> Check:
    expected = f"an integer {_interval(lo, hi, False, False)}{unit}"

    def check(v):
        ok = isinstance(v, int) and not isinstance(v, bool) and (lo is None or v >= lo) and (hi is None or v <= hi)
        return None if ok else expected
    return check


def one_of(*choices, any_case: bool = False) -> Check:
    expected = "one of " + ", ".join(map(repr, choices)) + (" (in any case)" if any_case else "")
    if any_case:
        return lambda v: None if isinstance(v, str) and v.lower() in choices else expected
    return lambda v: None if v in choices else expected


def matches(pattern: str, expected: str) -> Check:
    regex = re.compile(pattern)
    return lambda v: None if isinstance(v, str) and regex.fullmatch(v) else expected


def int_or_pair(lo: int, hi: int, note: str = "") -> Check:
    """An integer in [lo, hi] or an [h, w] pair of them."""
    expected = f"an integer in [{lo}, {hi}] or an [h, w] pair of them {note}".rstrip()

    def fits(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi

    return lambda v: None if fits(v) or (isinstance(v, (list, tuple)) and len(v) == 2 and all(map(fits, v))) \
        else expected


def number_pair(lo: float, hi: float, what: str) -> Check:
    """A [low, high] pair of finite numbers in [lo, hi], low <= high."""
    expected = f"a [low, high] pair of numbers in [{lo:g}, {hi:g}] with low <= high ({what})"
    inside = number(lo, hi)

    def check(v):
        ok = isinstance(v, (list, tuple)) and len(v) == 2 and not any(map(inside, v)) and v[0] <= v[1]
        return None if ok else expected
    return check


def int_pair(lo: int, hi: int, what: str) -> Check:
    expected = f"a pair of integers in [{lo}, {hi}] ({what})"
    inside = integer(lo, hi)
    return lambda v: None if isinstance(v, (list, tuple)) and len(v) == 2 and not any(map(inside, v)) else expected


def rgb(v) -> Optional[str]:
    inside = integer(0, 255)
    ok = isinstance(v, (list, tuple)) and len(v) == 3 and not any(map(inside, v))
    return None if ok else "an [r, g, b] colour of integers in [0, 255]"


CLASS_WEIGHT_RULES = ("median_frequency", "inverse_sqrt_frequency")


def class_weight(v) -> Optional[str]:
    if v in CLASS_WEIGHT_RULES or (isinstance(v, (list, tuple)) and v and not any(map(number(0), v)) and sum(v) > 0):
        return None
    return (f"a list of weights >= 0 (not all 0), one per class, or one of {', '.join(map(repr, CLASS_WEIGHT_RULES))} "
            "(computed from the training split's labels)")


def optional(check: Check) -> Check:
    """``check``, or null (the keyword's own default)."""
    return lambda v: None if v is None else (lambda why: why and f"{why}, or null")(check(v))


def text(what: str) -> Check:
    """A string with something besides blanks in it."""
    return matches(r"(?s).*\S.*", what)


def non_empty(what: str) -> Check:
    return lambda v: None if v else what


def component(v) -> Optional[str]:
    if isinstance(v, Mapping) and isinstance(v.get("NAME"), str) and v["NAME"]:
        return None
    return "a mapping with a NAME, like {NAME: <registered name>, <KEYWORD>: value}"


def file_name(v) -> Optional[str]:
    plain = isinstance(v, str) and v not in ("", ".", "..") and "/" not in v and "\\" not in v and "\0" not in v
    return None if plain else "a plain file or folder name (it is created inside OUTPUT_DIR)"


def inside_root(v) -> Optional[str]:
    parts = v.replace("\\", "/").split("/") if isinstance(v, str) else []
    ok = bool(parts) and v.strip() and not v.startswith(("/", "\\", "~")) and ".." not in parts and "\0" not in v
    return None if ok else "a relative folder inside DATA.ROOT, like 'images'"


PROBABILITY = number(0, 1)
# Names torch gives devices segkit can run on; "auto" picks cuda when there is one.
DEVICE = matches(r"auto|cpu|mps|(cuda|xpu)(:\d+)?", "'auto', 'cpu', 'cuda', 'cuda:N', 'mps' or 'xpu[:N]'")

# (key, check): every key of defaults.py whose value has a valid range, in its order there.
RULES: Sequence[Tuple[str, Check]] = (
    ("VERSION", integer(_C.VERSION, _C.VERSION, unit=" (the config format this segkit reads)")),
    ("CUSTOM_IMPORTS[*]", text("a module name or the path of a .py file")),
    ("OUTPUT_DIR", text("a folder path")),
    ("SEED", integer(0, 2**63 - 1)),
    ("DEVICE", DEVICE),
    ("DATA.DATASET", component),
    ("DATA.DATASET[oxford_pet|synthetic].BOUNDARY", one_of("foreground", "background", "ignore", "class")),
    ("DATA.DATASET[synthetic].NUM_TRAINVAL", integer(1, 100_000)),
    ("DATA.DATASET[synthetic].NUM_TEST", integer(0, 100_000)),
    ("DATA.DATASET[synthetic].IMAGE_SIZE", integer(16, MAX_INPUT_SIZE, unit=" pixels")),
    ("DATA.DATASET[synthetic].DATA_SEED", integer(0, 2**63 - 1)),
    ("DATA.DATASET[folder].TEST_FRACTION", number(0, 1, hi_open=True)),
    ("DATA.DATASET[folder].IMAGE_DIR", inside_root),
    ("DATA.DATASET[folder].MASK_DIR", inside_root),
    ("DATA.DATASET[folder].MASK_COLORS[*]",
     lambda v: None if v is None or (isinstance(v, (list, tuple)) and len(v) == 4 and not rgb(v[:3])
                                     and not integer(0, 254)(v[3]))
     else "an [r, g, b, class] list of integers: colour values in [0, 255], a class in [0, 254]"),
    ("DATA.DATASET[folder].IGNORE_COLOR", optional(rgb)),
    ("DATA.DATASET[pascal_voc].AUG", one_of(True, False)),
    ("DATA.DATASET[pascal_voc|ade20k].DOWNLOAD", one_of(True, False)),
    ("DATA.VAL_FRACTION", number(0, 1, hi_open=True, unit=" (1 would leave nothing to train on)")),
    ("DATA.IGNORE_INDEX", integer(0, 255, unit=" (masks are uint8)")),
    ("DATA.CLASSES[*]", text("a class name")),
    ("DATA.PALETTE[*]", rgb),
    ("DATA.NUM_WORKERS", integer(0, 256, unit=" (0 loads in the main process)")),
    ("DATA.CACHE", one_of("disk", "memory", "none")),
    ("INPUT.GEOMETRY", one_of("square", "keep_ratio")),
    ("INPUT.SIZE", integer(MIN_INPUT_SIZE, MAX_INPUT_SIZE, unit=" pixels (every image is resized to SIZE x SIZE: "
                                                                 "beyond that, memory and cache needs explode; crop "
                                                                 "or tile instead)")),
    ("INPUT.SCALE", int_pair(MIN_INPUT_SIZE, MAX_WINDOW, "the [long, short] edge bounds of the keep-ratio rescale")),
    ("INPUT.RATIO_RANGE", number_pair(0.05, 10, "the random rescale factors, e.g. [0.5, 2.0]")),
    ("INPUT.CROP_SIZE", int_or_pair(MIN_INPUT_SIZE, MAX_WINDOW, "(the training crop)")),
    ("INPUT.CAT_MAX_RATIO", number(0, 1, lo_open=True, unit=" (1.0 accepts every crop)")),
    ("INPUT.MEAN[*]", number(0, 1, unit=" (on a 0-1 scale, not 0-255)")),
    ("INPUT.STD[*]", number(0, 1, lo_open=True, unit=" (on a 0-1 scale; 0 divides by zero)")),
    ("INPUT.TRAIN_TRANSFORMS|TEST_TRANSFORMS[*]", component),
    ("INPUT.TRAIN_TRANSFORMS|TEST_TRANSFORMS[*].P", PROBABILITY),
    ("MODEL.NUM_CLASSES", integer(1, 255, unit=" (1: binary with a sigmoid)")),
    ("MODEL.IN_CHANNELS", integer(1)),
    ("MODEL.BACKBONE", component),
    ("MODEL.BACKBONE.FREEZE_AT", integer(0)),
    ("MODEL.DECODER", component),
    ("LOSS.TERMS", non_empty("at least one term, e.g. [{NAME: bce, WEIGHT: 1.0}]")),
    ("LOSS.TERMS[*]", component),
    ("LOSS.TERMS[*].WEIGHT", number(0)),
    ("LOSS.TERMS[bce].POS_WEIGHT", optional(number(0, lo_open=True))),
    ("LOSS.TERMS[bce|focal].CLASS_WEIGHT", optional(class_weight)),
    ("LOSS.TERMS[dice].ABSENT_CLASSES", one_of("keep", "drop")),
    ("LOSS.TERMS[dice|tversky|focal_tversky].SMOOTH", number(0)),
    ("LOSS.TERMS[focal].GAMMA", number(0)),
    ("LOSS.TERMS[focal].ALPHA", optional(PROBABILITY)),
    ("LOSS.TERMS[tversky|focal_tversky].ALPHA", number(0)),
    ("LOSS.TERMS[tversky|focal_tversky].BETA", number(0)),
    ("LOSS.DEEP_SUPERVISION_WEIGHTS[*]", number(0)),
    ("LOSS.OHEM.THRESH", number(0, 1, unit=" (0: keep exactly the MIN_KEPT hardest pixels per image)")),
    ("LOSS.OHEM.MIN_KEPT", integer(1)),
    ("SOLVER.EPOCHS", integer(1)),
    ("SOLVER.BATCH_SIZE", integer(1)),
    ("SOLVER.BASE_LR", number(0, None, lo_open=True)),
    ("SOLVER.WEIGHT_DECAY", number(0, 1)),
    ("SOLVER.OPTIMIZER", component),
    ("SOLVER.OPTIMIZER[*].MOMENTUM", number(0, 1, hi_open=True)),
    ("SOLVER.OPTIMIZER[*].BETAS[*]", number(0, 1, hi_open=True)),
    ("SOLVER.OPTIMIZER[*].EPS", number(0, lo_open=True)),
    ("SOLVER.SCHEDULER", component),
    ("SOLVER.SCHEDULER[*].ETA_MIN", number(0)),
    ("SOLVER.SCHEDULER[cosine_restarts].CYCLE_EPOCHS", number(0, lo_open=True)),
    ("SOLVER.SCHEDULER[cosine_restarts].CYCLE_MUL", number(0, lo_open=True)),
    ("SOLVER.SCHEDULER[cosine_restarts].CYCLE_DECAY", number(0, 1, lo_open=True)),
    ("SOLVER.SCHEDULER[poly].POWER", number(0, lo_open=True)),
    ("SOLVER.SCHEDULER[plateau].FACTOR", number(0, 1, lo_open=True, hi_open=True)),
    ("SOLVER.SCHEDULER[plateau].PATIENCE", integer(0)),
    ("SOLVER.SCHEDULER[plateau].MODE", one_of("min", "max")),
    ("SOLVER.SCHEDULER[onecycle].PCT_START", number(0, 1, lo_open=True, hi_open=True)),
    ("SOLVER.SCHEDULER[onecycle].MAX_LR", number(0, lo_open=True)),
    ("SOLVER.SCHEDULE_UNIT", one_of("epoch", "step")),
    ("SOLVER.WARMUP_EPOCHS", number(0)),
    ("SOLVER.WARMUP_FACTOR", number(0, 1, lo_open=True)),
    ("SOLVER.CLIP_GRAD_NORM", number(0, unit=" (0 disables clipping)")),
    ("SOLVER.ACCUM_STEPS", integer(1)),
    ("SOLVER.NONFINITE_LOSS", one_of("stop", "skip")),
    ("SOLVER.AMP.DTYPE", one_of("auto", "bfloat16", "bf16", "float16", "fp16", any_case=True)),
    ("TEST.BATCH_SIZE", integer(1)),
    ("TEST.THRESHOLD", PROBABILITY),
    ("TEST.RESOLUTION", one_of("network", "original", "both")),
    ("TEST.MODE", one_of("whole", "slide")),
    ("TEST.CROP_SIZE", int_or_pair(0, MAX_WINDOW, "(0: INPUT.SIZE)")),
    ("TEST.STRIDE", int_or_pair(0, MAX_WINDOW, "(0: two thirds of TEST.CROP_SIZE)")),
    ("TEST.SCALE", number(0.05, 8)),
    ("TEST.SLIDE_WEIGHT", one_of("uniform", "gaussian")),
    ("TEST.TTA.SCALES", non_empty("at least one scale ([1.0]: no rescaling)")),
    ("TEST.TTA.SCALES[*]", number(0.25, 4)),
    (f"{HOOKS}[*]", component),
    (f"{HOOKS}[evaluation|json_logger].PERIOD", integer(1)),
    (f"{HOOKS}[checkpoint|early_stopping].MODE", one_of("max", "min")),
    (f"{HOOKS}[checkpoint|early_stopping].MONITOR", text("a logged metric, e.g. 'val/dice'")),
    (f"{HOOKS}[checkpoint].KEEP_LAST", integer(0)),
    (f"{HOOKS}[early_stopping].PATIENCE", integer(0, unit=" (0: off)")),
    (f"{HOOKS}[early_stopping].MIN_DELTA", number(0)),
    (f"{HOOKS}[tensorboard].MAX_IMAGES", integer(0)),
    (f"{HOOKS}[ema].DECAY", number(0, 1, hi_open=True)),
    (f"{HOOKS}[text_logger|json_logger].FILENAME", file_name),
    (f"{HOOKS}[tensorboard].SUBDIR", file_name),
)


def _channels(cfg, key: str) -> Optional[str]:
    values, n = cfg.INPUT[key], cfg.MODEL.IN_CHANNELS
    if isinstance(n, int) and len(values) != n:
        return (f"INPUT.{key} has {len(values)} values {list(values)} but MODEL.IN_CHANNELS is {n}: give one "
                f"per input channel")
    return None


def _rgb(cfg) -> Optional[str]:
    if cfg.DATA.DATASET.get("NAME") in RGB_DATASETS and cfg.MODEL.IN_CHANNELS != 3:
        return (f"MODEL.IN_CHANNELS is {cfg.MODEL.IN_CHANNELS!r} but DATA.DATASET '{cfg.DATA.DATASET.NAME}' "
                f"reads every image as RGB: it must be 3")
    return None


def _ignore_index(cfg) -> Optional[str]:
    labels = max(2, cfg.MODEL.NUM_CLASSES) if isinstance(cfg.MODEL.NUM_CLASSES, int) else 2
    if isinstance(cfg.DATA.IGNORE_INDEX, int) and 0 <= cfg.DATA.IGNORE_INDEX < labels:
        return (f"DATA.IGNORE_INDEX is {cfg.DATA.IGNORE_INDEX} but that is a class label (0..{labels - 1} with "
                f"MODEL.NUM_CLASSES {cfg.MODEL.NUM_CLASSES}): it must be in [{labels}, 255]")
    return None


def _boundary_class(cfg) -> Optional[str]:
    if (cfg.DATA.DATASET.get("NAME") in ("oxford_pet", "synthetic") and cfg.DATA.DATASET.get("BOUNDARY") == "class"
            and cfg.MODEL.NUM_CLASSES != 3):
        return (f"DATA.DATASET.BOUNDARY 'class' makes 3 labels (background, pet, boundary) but MODEL.NUM_CLASSES "
                f"is {cfg.MODEL.NUM_CLASSES!r}: it must be 3")
    return None


def _labels(cfg) -> int:
    return 2 if cfg.MODEL.NUM_CLASSES == 1 else cfg.MODEL.NUM_CLASSES


def _class_names(cfg) -> Optional[str]:
    k, problems = _labels(cfg), []
    binary = " (a binary model has 2: background and foreground)" if cfg.MODEL.NUM_CLASSES == 1 else ""
    for key in ("CLASSES", "PALETTE"):
        given = list(cfg.DATA[key])
        if given and len(given) != k:
            problems.append(f"DATA.{key} has {len(given)} entries but MODEL.NUM_CLASSES {cfg.MODEL.NUM_CLASSES} "
                            f"means {k} labels{binary}: give one per label, or none for the dataset's own")
    names = [str(c) for c in cfg.DATA.CLASSES]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        problems.append(f"DATA.CLASSES names {twice} more than once: every label needs a name of its own")
    return "; ".join(problems) or None


def _class_weights(cfg) -> Optional[str]:
    """POS_WEIGHT weighs a binary model's foreground, CLASS_WEIGHT a multi-class model's classes:
    each is refused where it would be ignored, naming the other."""
    n, problems = cfg.MODEL.NUM_CLASSES, []
    for i, term in enumerate(cfg.LOSS.TERMS):
        if not isinstance(term, Mapping):
            continue
        pos, weights = (term.get(_key_in(term, k) or k) for k in ("POS_WEIGHT", "CLASS_WEIGHT"))
        where = f"LOSS.TERMS[{i}] ({term.get('NAME')})"
        if pos is not None and n > 1:
            problems.append(f"{where} has POS_WEIGHT {pos!r} but MODEL.NUM_CLASSES is {n}: POS_WEIGHT weighs the "
                            f"foreground of a binary model only; weigh the classes with CLASS_WEIGHT (a list of {n} "
                            f"weights, median_frequency or inverse_sqrt_frequency)")
        if weights is not None and n == 1:
            other = "ALPHA" if term.get("NAME") == "focal" else "POS_WEIGHT"
            problems.append(f"{where} has CLASS_WEIGHT {weights!r} but MODEL.NUM_CLASSES is 1 (binary, one output): "
                            f"weigh the foreground with {other} instead")
        elif isinstance(weights, (list, tuple)) and len(weights) != n:
            problems.append(f"{where} has CLASS_WEIGHT with {len(weights)} weights but MODEL.NUM_CLASSES is {n}: "
                            f"give one weight per class")
    return "; ".join(problems) or None


def _warmup(cfg) -> Optional[str]:
    s, name = cfg.SOLVER, cfg.SOLVER.SCHEDULER.get("NAME")
    if name == "onecycle" and s.WARMUP_EPOCHS:
        return (f"SOLVER.WARMUP_EPOCHS is {s.WARMUP_EPOCHS!r} but the onecycle schedule warms up by itself: it "
                f"must be 0 (lengthen SOLVER.SCHEDULER.PCT_START instead)")
    if name in ("cosine", "poly") and s.WARMUP_EPOCHS >= s.EPOCHS:
        return (f"SOLVER.WARMUP_EPOCHS is {s.WARMUP_EPOCHS!r} but SOLVER.EPOCHS is {s.EPOCHS!r}: the warm-up must "
                f"end before the run does, leaving room for the {name} decay")
    return None


def _slide(cfg) -> Optional[str]:
    t = cfg.TEST
    if any(isinstance(v, list) and 0 in v for v in (t.CROP_SIZE, t.STRIDE)):
        return "TEST.CROP_SIZE and TEST.STRIDE pairs must be [h, w] of positive sizes (0 alone means the default)"
    crop, stride = ([v, v] if isinstance(v, int) else list(v) for v in (t.CROP_SIZE or cfg.INPUT.SIZE, t.STRIDE))
    if t.STRIDE and any(s > c for s, c in zip(stride, crop)):
        return (f"TEST.STRIDE is {t.STRIDE!r} but TEST.CROP_SIZE is {t.CROP_SIZE or cfg.INPUT.SIZE!r}: a stride "
                f"larger than the window leaves pixels between windows unscored; it must be <= the crop size")
    return None


def _keep_ratio_slide(cfg) -> Optional[str]:
    if cfg.INPUT.GEOMETRY == "keep_ratio" and cfg.TEST.MODE == "slide" and cfg.TEST.SCALE != 1.0:
        return (f"TEST.SCALE is {cfg.TEST.SCALE!r} but INPUT.GEOMETRY is keep_ratio, whose windows slide over the "
                f"image rescaled to INPUT.SCALE: leave TEST.SCALE at 1.0 and set INPUT.SCALE instead")
    return None


def _eta_min(cfg) -> Optional[str]:
    eta = cfg.SOLVER.SCHEDULER.get("ETA_MIN")
    if _is_number(eta) and eta > cfg.SOLVER.BASE_LR:
        return (f"SOLVER.SCHEDULER.ETA_MIN is {eta!r} but SOLVER.BASE_LR is {cfg.SOLVER.BASE_LR!r}: the schedule "
                f"decays to ETA_MIN, so it must be <= BASE_LR")
    return None


# (keys involved, check): each check runs only once every key it reads passed RULES.
RELATIONS: Sequence[Tuple[Tuple[str, ...], Callable[[Any], Optional[str]]]] = (
    (("INPUT.MEAN", "MODEL.IN_CHANNELS"), lambda cfg: _channels(cfg, "MEAN")),
    (("INPUT.STD", "MODEL.IN_CHANNELS"), lambda cfg: _channels(cfg, "STD")),
    (("MODEL.IN_CHANNELS", "DATA.DATASET"), _rgb),
    (("DATA.IGNORE_INDEX", "MODEL.NUM_CLASSES"), _ignore_index),
    (("DATA.DATASET", "MODEL.NUM_CLASSES"), _boundary_class),
    (("DATA.CLASSES", "DATA.PALETTE", "MODEL.NUM_CLASSES"), _class_names),
    (("LOSS.TERMS", "MODEL.NUM_CLASSES"), _class_weights),
    (("SOLVER.WARMUP_EPOCHS", "SOLVER.EPOCHS", "SOLVER.SCHEDULER"), _warmup),
    (("SOLVER.SCHEDULER", "SOLVER.BASE_LR"), _eta_min),
    (("TEST.CROP_SIZE", "TEST.STRIDE", "INPUT.SIZE"), _slide),
    (("INPUT.GEOMETRY", "TEST.MODE", "TEST.SCALE"), _keep_ratio_slide),
)


def _key_in(node: Mapping, name: str) -> Optional[str]:
    """``name`` as spelt in ``node``: exactly, or in any case (component keywords are lower-cased)."""
    if name in node:
        return name
    return next((k for k in node if isinstance(k, str) and k.upper() == name), None)


def _segments(path: str) -> Iterator[Tuple[List[str], Optional[List[str]]]]:
    for part in re.findall(r"[^.\[]+(?:\[[^\]]*\])?", path):
        names, _, selector = part.partition("[")
        yield names.split("|"), (selector.rstrip("]").split("|") if selector else None)


def _selected(item: Any, names: List[str]) -> bool:
    return names == ["*"] or (isinstance(item, Mapping) and item.get("NAME") in names)


def find(cfg: Mapping, path: str) -> List[Tuple[str, Any]]:
    """(key as shown to the user, value) of every value ``path`` (a RULES key) picks out of ``cfg``."""
    found: List[Tuple[str, Any]] = [("", cfg)]
    for names, selector in _segments(path):
        step = []
        for shown, node in found:
            if not isinstance(node, Mapping):
                continue
            for name in names:
                key = _key_in(node, name)
                if key is None:
                    continue
                value, where = node[key], f"{shown}.{key}" if shown else key
                if selector is None:
                    step.append((where, value))
                elif isinstance(value, (list, tuple)):
                    step += [(f"{where}[{i}]", item) for i, item in enumerate(value) if _selected(item, selector)]
                elif _selected(value, selector):
                    step.append((where, value))
        found = step
    return found


def config_problems(cfg) -> List[Tuple[Tuple[str, ...], str]]:
    """(keys involved, message) for every value of the merged ``cfg`` outside its range; empty when all fit."""
    problems: List[Tuple[Tuple[str, ...], str]] = []
    for path, check in RULES:
        failed = [(key, value, expected) for key, value in find(cfg, path) for expected in [check(value)] if expected]
        lists = dict(find(cfg, path[:-3])) if path.endswith("[*]") else {}
        for key, value, expected in failed:
            whole = key.rpartition("[")[0]
            siblings = [f for f in failed if f[0].rpartition("[")[0] == whole] if whole in lists else [None]
            if len(siblings) == 1:
                problems.append(((key,), f"{key} is {value!r}, but it must be {expected}"))
            elif siblings[0][0] == key:  # several items of one list: one message for the list
                problems.append(((whole,), f"{whole} is {lists[whole]!r}, but each item must be {expected}"))
    bad = [key for keys, _ in problems for key in keys]
    for keys, check in RELATIONS:
        if any(b == k or b.startswith((k + ".", k + "[")) for k in keys for b in bad):
            continue  # a value already reported; comparing it would only repeat the message
        message = check(cfg)
        if message:
            problems.append((keys, message))
    return problems
