"""Class imbalance: weighted cross-entropy and focal, class weights from label counts, OHEM, Dice's absent classes."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segkit.config.defaults import get_default_config
from segkit.losses import ClassStats, OhemSampler, build_loss, class_weights
from segkit.losses.bce import CrossEntropy
from segkit.losses.dice import DiceLoss
from segkit.losses.focal import FocalLoss

IGN = 255
WEIGHTS = [0.5, 2.0, 0.0, 1.3]


def _batch(seed=0, channels=4):
    """Random logits and labels with ignored pixels; image 2 holds only weight-0 class 2 and ignored pixels."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, channels, 5, 6, generator=g) * 2
    target = torch.randint(0, max(channels, 2), (3, 5, 6), generator=g)
    target[0, :2] = IGN
    target[1, :, 0] = IGN
    target[2] = 2 if channels > 2 else 0
    target[2, 0] = IGN
    return logits, target


def _cfg(terms, num_classes=4, ohem=None):
    cfg = get_default_config()
    cfg.MODEL.NUM_CLASSES = num_classes
    cfg.LOSS.TERMS = terms
    if ohem is not None:
        cfg.LOSS.OHEM.ENABLED, cfg.LOSS.OHEM.THRESH, cfg.LOSS.OHEM.MIN_KEPT = True, *ohem
    return cfg


# ---------------------------------------------------------------------------- weighted cross-entropy

def test_weighted_cross_entropy_equals_torch_batch_and_per_image():
    logits, target = _batch()
    term = CrossEntropy(ignore_index=IGN, class_weight=WEIGHTS)
    w = torch.tensor(WEIGHTS)
    ref = nn.CrossEntropyLoss(weight=w, ignore_index=IGN)
    assert term(logits, target).item() == pytest.approx(ref(logits, target).item(), rel=1e-6)
    per_image = term.per_image(logits, target)
    for i in range(2):
        assert per_image[i].item() == pytest.approx(ref(logits[i:i + 1], target[i:i + 1]).item(), rel=1e-6)
    assert per_image[2].item() == 0.0  # only weight-0 and ignored pixels (torch would give nan)
    # the weights change the value: the test above cannot pass with the weights dropped
    assert abs(term(logits, target).item() - nn.CrossEntropyLoss(ignore_index=IGN)(logits, target).item()) > 1e-3


def test_unweighted_values_match_torch():
    logits, target = _batch(seed=1)
    assert CrossEntropy()(logits, target).item() == pytest.approx(
        nn.CrossEntropyLoss(ignore_index=IGN)(logits, target).item(), rel=1e-6)
    x, t = torch.randn(2, 1, 7, 5), torch.randint(0, 2, (2, 7, 5))
    assert CrossEntropy()(x, t).item() == pytest.approx(nn.BCEWithLogitsLoss()(x[:, 0], t.float()).item(), rel=1e-6)
    pw = torch.tensor(3.0)
    assert CrossEntropy(pos_weight=3.0)(x, t).item() == pytest.approx(
        nn.BCEWithLogitsLoss(pos_weight=pw)(x[:, 0], t.float()).item(), rel=1e-6)
    # the plain mean over labelled pixels, bit for bit as before class weights existed
    t[0, 0] = IGN
    valid = (t != IGN).float()
    pixel = F.binary_cross_entropy_with_logits(x[:, 0], (t == 1).float(), reduction="none")
    assert torch.equal(CrossEntropy()(x, t), (pixel * valid).sum() / valid.sum().clamp_min(1.0))
    assert torch.equal(CrossEntropy().per_image(x, t), (pixel * valid).sum((1, 2)) / valid.sum((1, 2)).clamp_min(1.0))


def test_weighted_focal():
    logits, target = _batch(seed=2)
    w = torch.tensor(WEIGHTS)
    # gamma 0: weighted cross-entropy
    assert FocalLoss(gamma=0.0, class_weight=WEIGHTS)(logits, target).item() == pytest.approx(
        nn.CrossEntropyLoss(weight=w, ignore_index=IGN)(logits, target).item(), rel=1e-6)
    # gamma 2: focal term of the unweighted p_t, times w[label], over Σ w[label]
    ce = F.cross_entropy(logits, target, ignore_index=IGN, reduction="none")
    focal = (1 - torch.exp(-ce)) ** 2 * ce
    pix_w = torch.where(target == IGN, torch.zeros(()), w[target.clamp_max(3)])
    term = FocalLoss(gamma=2.0, class_weight=WEIGHTS)
    assert term(logits, target).item() == pytest.approx(((focal * pix_w).sum() / pix_w.sum()).item(), rel=1e-6)
    expected = (focal * pix_w).sum((1, 2)) / pix_w.sum((1, 2)).clamp_min(1e-12)
    assert term.per_image(logits, target).tolist() == pytest.approx(expected.tolist(), rel=1e-6)


def test_weights_follow_the_logits_device_and_dtype():
    logits, target = _batch()
    term = CrossEntropy(class_weight=torch.tensor(WEIGHTS, dtype=torch.float64))
    assert term.class_weight == tuple(WEIGHTS)
    assert term(logits.half(), target).dtype == torch.float32


# ---------------------------------------------------------------------------- errors

def test_class_weight_errors():
    logits, target = _batch()
    with pytest.raises(ValueError, match="class_weight has 3 weights but the model has 4 output channels"):
        CrossEntropy(class_weight=[1, 1, 1])(logits, target)
    with pytest.raises(ValueError, match=r"focal: class_weight has 5 weights but the model has 4"):
        FocalLoss(class_weight=[1, 1, 1, 1, 1]).per_image(logits, target)
    with pytest.raises(ValueError, match=r">= 0.*\[1.0, -0.5, 1.0, 1.0\]"):
        CrossEntropy(class_weight=[1, -0.5, 1, 1])
    with pytest.raises(ValueError, match="all zeros"):
        CrossEntropy(class_weight=[0, 0, 0, 0])
    binary = torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long)
    with pytest.raises(ValueError, match="1 output channel.*POS_WEIGHT"):
        CrossEntropy(class_weight=[1.0, 2.0])(*binary)
    with pytest.raises(ValueError, match="1 output channel.*ALPHA"):
        FocalLoss(class_weight=[1.0, 2.0])(*binary)
    with pytest.raises(ValueError, match="pos_weight weighs the foreground of a binary model.*has 4.*CLASS_WEIGHT"):
        CrossEntropy(pos_weight=2.0)(logits, target)
    with pytest.raises(ValueError, match="pos_weight.*CLASS_WEIGHT"):
        CrossEntropy(pos_weight=2.0).per_image(logits, target)
    for rule in ("median_frequency", "inverse_sqrt_frequency"):
        with pytest.raises(ValueError, match=rf"'{rule}' is a rule.*training split's labels.*class_stats="):
            CrossEntropy(class_weight=rule)
    with pytest.raises(ValueError, match="median_frequency, inverse_sqrt_frequency; got 'median'"):
        FocalLoss(class_weight="median")


# ---------------------------------------------------------------------------- weights from label counts

STATS = ClassStats(pixels=(60, 30, 10, 0), image_pixels=(100, 60, 40, 0))


def test_median_frequency_hand_computed():
    # freq = 60/100, 30/60, 10/40 = 0.6, 0.5, 0.25; median 0.5; class 3 never occurs
    assert class_weights("median_frequency", STATS) == pytest.approx([0.5 / 0.6, 1.0, 2.0, 0.0])
    even = ClassStats(pixels=(10, 20, 40, 80), image_pixels=(100, 100, 100, 100))  # median of .1 .2 .4 .8 = .3
    assert class_weights("median_frequency", even) == pytest.approx([3.0, 1.5, 0.75, 0.375])


def test_inverse_sqrt_frequency_hand_computed():
    # shares 0.6, 0.3, 0.1 of 100 pixels; 1/sqrt scaled to mean 1 over the three that occur
    raw = [1 / math.sqrt(0.6), 1 / math.sqrt(0.3), 1 / math.sqrt(0.1)]
    mean = sum(raw) / 3
    got = class_weights("inverse_sqrt_frequency", STATS)
    assert got == pytest.approx([r / mean for r in raw] + [0.0])
    assert got == pytest.approx([0.6168, 0.8723, 1.5109, 0.0], abs=1e-4)
    assert sum(got[:3]) / 3 == pytest.approx(1.0)


def test_class_stats_counting_and_checks():
    masks = [torch.tensor([[0, 0], [1, IGN]]), torch.tensor([[2, 2], [2, 0]]).numpy()]
    stats = ClassStats.from_masks(masks, num_classes=4, ignore_index=IGN)
    assert stats == ClassStats((3, 1, 3, 0), (7, 3, 4, 0))
    assert stats.missing == (3,) and stats.num_classes == 4
    assert stats + stats == ClassStats((6, 2, 6, 0), (14, 6, 8, 0))
    with pytest.raises(ValueError, match=r"labels \[7\] lie outside 0..3"):
        ClassStats.from_masks([torch.tensor([[7, 0]])], num_classes=4)
    with pytest.raises(ValueError, match="image_pixels < pixels"):
        ClassStats((5, 1), (4, 1))
    with pytest.raises(ValueError, match="unknown; known rules"):
        class_weights("inverse_frequency", STATS)
    with pytest.raises(ValueError, match="no labelled pixel"):
        class_weights("median_frequency", ClassStats((0, 0), (0, 0)))


def test_build_loss_resolves_rules_from_stats():
    stats = ClassStats((60, 30, 10, 5), (100, 60, 40, 50))
    cfg = _cfg([{"NAME": "bce", "CLASS_WEIGHT": "median_frequency"},
                {"NAME": "focal", "GAMMA": 0.0, "CLASS_WEIGHT": [1.0, 1.0, 2.0, 0.5]}, {"NAME": "dice"}])
    loss = build_loss(cfg, class_stats=stats)
    expected = class_weights("median_frequency", stats)
    assert loss.class_weights == {0: pytest.approx(expected), 1: [1.0, 1.0, 2.0, 0.5]}
    logits, target = _batch(seed=3)
    _, terms = loss(logits, target)
    ref = nn.CrossEntropyLoss(weight=torch.tensor(expected), ignore_index=IGN)(logits, target)
    assert terms["bce"] == pytest.approx(ref.item(), rel=1e-6)
    assert build_loss(_cfg([{"NAME": "bce"}])).class_weights == {}


def test_build_loss_without_stats_names_term_and_rule():
    cfg = _cfg([{"NAME": "dice"}, {"NAME": "focal", "CLASS_WEIGHT": "inverse_sqrt_frequency"}])
    with pytest.raises(ValueError, match=r"LOSS.TERMS\[1\] \(focal\): CLASS_WEIGHT 'inverse_sqrt_frequency'.*"
                                         r"class_stats"):
        build_loss(cfg)
    with pytest.raises(ValueError, match=r"LOSS.TERMS\[1\].*class_stats count 2 classes but MODEL.NUM_CLASSES is 4"):
        build_loss(cfg, class_stats=ClassStats((1, 1), (2, 2)))
    bad = _cfg([{"NAME": "bce", "CLASS_WEIGHT": [1.0, -1.0, 1.0, 1.0]}])
    with pytest.raises(ValueError, match=r"LOSS.TERMS\[0\]: bce: class_weight must hold finite weights >= 0"):
        build_loss(bad)


# ---------------------------------------------------------------------------- OHEM

PROBS = [0.1, 0.3, 0.5, 0.8, 0.95]  # true-class probabilities of five labelled pixels; a sixth is ignored


def _multiclass_row():
    """(1, 2, 1, 6) logits whose softmax gives each pixel's label the probability in PROBS."""
    target = torch.tensor([[[1, 0, 1, 0, 1, IGN]]])
    p = torch.tensor(PROBS + [0.5])
    true, other = p.log(), (1 - p).log()
    labels = target[0, 0].clamp_max(1)
    logits = torch.stack([torch.where(labels == 0, true, other), torch.where(labels == 1, true, other)])
    return logits.view(1, 2, 1, 6), target


def _binary_row():
    """(1, 1, 1, 6) logits: sigmoid(x) = p for label 1, 1 − sigmoid(x) = p for label 0."""
    target = torch.tensor([[[1, 0, 1, 0, 1, IGN]]])
    p = torch.tensor(PROBS + [0.5])
    x = torch.where(target[0, 0] == 1, torch.logit(p), -torch.logit(p))
    return x.view(1, 1, 1, 6), target


def _kept(sampler, logits, target):
    return (sampler(logits, target) != IGN).view(-1).tolist()


@pytest.mark.parametrize("row", [_multiclass_row, _binary_row])
def test_ohem_threshold_and_min_kept(row):
    logits, target = row()
    # thresh path: the 2nd smallest (0.3) is below 0.7, so p < 0.7 stays
    assert _kept(OhemSampler(0.7, 1, IGN), logits, target) == [True, True, True, False, False, False]
    # min_kept path: 4 must stay, so the threshold rises to the 5th smallest (0.95)
    assert _kept(OhemSampler(0.7, 4, IGN), logits, target) == [True, True, True, True, False, False]
    # thresh 0 keeps exactly the hardest min_kept
    assert _kept(OhemSampler(0.0, 2, IGN), logits, target) == [True, True, False, False, False, False]
    # no more labelled pixels than min_kept: all stay
    assert _kept(OhemSampler(0.0, 5, IGN), logits, target) == [True, True, True, True, True, False]
    out = OhemSampler(0.7, 1, IGN)(logits, target)
    assert out.dtype == target.dtype and out[0, 0, :3].tolist() == [1, 0, 1]


def test_ohem_min_kept_counts_per_image_of_the_batch():
    logits, target = _multiclass_row()
    two = torch.cat([logits, logits.flip(-1)]), torch.cat([target, target.flip(-1)])
    kept = OhemSampler(0.0, 1, IGN)(*two) != IGN  # k = 1 × 2 images: the two 0.1 pixels
    assert kept.sum().item() == 2 and kept[0, 0, 0] and kept[1, 0, 5]


def test_ohem_in_the_loss_training_only():
    logits, target = _multiclass_row()
    plain = build_loss(_cfg([{"NAME": "bce"}, {"NAME": "dice"}], num_classes=2))
    ohem = build_loss(_cfg([{"NAME": "bce"}, {"NAME": "dice"}], num_classes=2, ohem=(0.7, 1)))
    hard = target.clone()
    hard[0, 0, 3:] = IGN
    total, terms = ohem(logits, target)
    ref_total, ref_terms = plain(logits, hard)
    assert terms == pytest.approx(ref_terms) and total.item() == pytest.approx(ref_total.item())
    assert terms["bce"] == pytest.approx(-sum(math.log(p) for p in PROBS[:3]) / 3)
    # evaluation scores every pixel
    assert torch.equal(ohem.per_image(logits, target), plain.per_image(logits, target))
    # deep supervision: the side output is scored on the pixels chosen from the main output
    side = logits.flip(1)
    ds_total, _ = ohem([logits, side], target)
    assert ds_total.item() == pytest.approx((plain(logits, hard)[0] + plain(side, hard)[0]).item())
    # gradients flow through the loss, not the selection
    x = logits.clone().requires_grad_(True)
    ohem(x, target)[0].backward()
    assert x.grad[..., 3:].abs().sum() == 0 and x.grad[..., :3].abs().sum() > 0


def test_ohem_config_reading():
    cfg = _cfg([{"NAME": "bce"}], num_classes=1, ohem=(0.6, 7))
    cfg.DATA.IGNORE_INDEX = 254
    sampler = build_loss(cfg).ohem
    assert (sampler.thresh, sampler.min_kept, sampler.ignore_index) == (0.6, 7, 254)
    assert build_loss(_cfg([{"NAME": "bce"}], num_classes=1)).ohem is None
    old = _cfg([{"NAME": "bce"}], num_classes=1)
    del old.LOSS["OHEM"]  # a config from before LOSS.OHEM
    assert build_loss(old).ohem is None
    with pytest.raises(ValueError, match="THRESH"):
        OhemSampler(1.5, 1)


# ---------------------------------------------------------------------------- Dice: absent classes

def smp_dice(logits, target, smooth, eps=1e-7, ignore_index=IGN):
    """segmentation_models_pytorch's DiceLoss (from_logits, ignore_index; multiclass or binary mode),
    re-written inline: dims (0, 2), classes with no true pixel zeroed, mean over all classes."""
    bs, c = target.size(0), logits.size(1)
    mask = target.view(bs, -1) != ignore_index
    if c == 1:
        y_pred = F.logsigmoid(logits).exp().view(bs, 1, -1) * mask.unsqueeze(1)
        y_true = (target.view(bs, 1, -1) * mask.unsqueeze(1)).float()
    else:
        y_pred = logits.log_softmax(dim=1).exp().view(bs, c, -1) * mask.unsqueeze(1)
        y_true = F.one_hot((target.view(bs, -1) * mask).long(), c).permute(0, 2, 1) * mask.unsqueeze(1)
        y_true = y_true.float()
    inter = (y_pred * y_true).sum((0, 2))
    card = (y_pred + y_true).sum((0, 2))
    loss = 1.0 - (2.0 * inter + smooth) / (card + smooth).clamp_min(eps)
    return (loss * (y_true.sum((0, 2)) > 0).float()).mean()


@pytest.mark.parametrize("smooth", [0.0, 1.0])
def test_dice_drop_matches_smp_and_keep_differs(smooth):
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(2, 4, 5, 5, generator=g)
    target = torch.randint(0, 3, (2, 5, 5), generator=g)  # class 3 absent from the batch
    target[1, 0] = 3  # … but present in image 1
    target[0, 0, :2] = IGN
    drop = DiceLoss(smooth=smooth, absent_classes="drop")
    assert drop(logits, target).item() == pytest.approx(smp_dice(logits, target, smooth).item(), rel=1e-6)
    per_image = [smp_dice(logits[i:i + 1], target[i:i + 1], smooth).item() for i in range(2)]
    assert drop.per_image(logits, target).tolist() == pytest.approx(per_image, rel=1e-6)
    # image 0 lacks class 3: "keep" adds 1 − s/(Σp + s) for it, "drop" adds 0, both divide by 4
    keep = DiceLoss(smooth=smooth)
    p3 = torch.softmax(logits, 1)[0, 3][target[0] != IGN].sum().item()
    gap = (1 - smooth / (p3 + smooth)) / 4
    assert keep.per_image(logits, target)[0].item() - drop.per_image(logits, target)[0].item() == pytest.approx(gap)
    assert keep.per_image(logits, target)[1].item() == pytest.approx(drop.per_image(logits, target)[1].item())


def test_dice_drop_binary_and_bad_option():
    logits = torch.randn(2, 1, 4, 4)
    target = torch.zeros(2, 4, 4, dtype=torch.long)
    target[0, 1, 1] = 1
    drop = DiceLoss(absent_classes="drop")
    assert drop(logits, target).item() == pytest.approx(smp_dice(logits, target, 1.0).item(), rel=1e-6)
    assert drop.per_image(logits, target)[1].item() == 0.0  # no foreground in image 1
    assert DiceLoss().per_image(logits, target)[1].item() > 0.0
    loss = build_loss(_cfg([{"NAME": "dice", "ABSENT_CLASSES": "drop"}], num_classes=1))
    assert loss.terms[0].absent_classes == "drop"
    with pytest.raises(ValueError, match="absent_classes must be one of keep, drop"):
        DiceLoss(absent_classes="ignore")
