"""Focal, Lovász, Tversky and focal-Tversky on hand-made cases; weighted sums; deep supervision."""
import math

import pytest
import torch
import torch.nn.functional as F

from segkit.config.defaults import get_default_config
from segkit.losses import WeightedLoss, build_loss
from segkit.losses.dice import DiceLoss
from segkit.losses.focal import FocalLoss
from segkit.losses.lovasz import LovaszLoss
from segkit.losses.tversky import FocalTverskyLoss, TverskyLoss

BIG = 30.0  # a logit this large is a probability of 1 to float precision
LN2 = math.log(2.0)


def row(values):
    """(1, 1, 1, N) logits or (1, 1, N) labels from a list."""
    t = torch.tensor(values)
    return t.float().view(1, 1, 1, -1) if t.is_floating_point() else t.view(1, 1, -1)


# ---------------------------------------------------------------------------- focal

def test_focal_known_values_binary_and_multiclass():
    logits, target = row([0.0, 0.0]), row([1, 0])
    # p_t = 0.5 everywhere: (1 - 0.5)^2 · ln 2
    assert FocalLoss(gamma=2.0)(logits, target).item() == pytest.approx(0.25 * LN2)
    # alpha 0.25 weighs the foreground pixel 0.25 and the background one 0.75: mean 0.5
    assert FocalLoss(gamma=2.0, alpha=0.25)(logits, target).item() == pytest.approx(0.5 * 0.25 * LN2)
    two = torch.zeros(1, 2, 1, 2)
    assert FocalLoss(gamma=2.0)(two, target).item() == pytest.approx(0.25 * LN2)
    # a confident right pixel costs (1 - p)^2 · CE ≈ 0; gamma 0 is plain BCE
    x = torch.randn(2, 1, 5, 7)
    t = torch.randint(0, 2, (2, 5, 7))
    assert FocalLoss(gamma=0.0)(x, t).item() == pytest.approx(
        F.binary_cross_entropy_with_logits(x[:, 0], t.float()).item(), rel=1e-5)
    with pytest.raises(ValueError, match="alpha"):
        FocalLoss(alpha=0.25)(torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))


def test_focal_ignores_pixels_and_reduces_per_image():
    loss = FocalLoss(gamma=2.0, ignore_index=255)
    logits = torch.tensor([0.0, 0.0, -BIG, BIG]).view(2, 1, 1, 2)
    target = torch.tensor([1, 255, 1, 1]).view(2, 1, 2)  # image 2: one very wrong, one right pixel
    per_image = loss.per_image(logits, target)
    assert per_image[0].item() == pytest.approx(0.25 * LN2)  # the ignored pixel does not count
    assert per_image[1].item() == pytest.approx(BIG / 2, rel=1e-4)  # (1-0)^2 · 30 over 2 pixels
    assert loss(logits, target).item() == pytest.approx((0.25 * LN2 + BIG) / 3, rel=1e-4)


# ---------------------------------------------------------------------------- Lovász

def test_lovasz_hinge_known_value():
    # errors 1 - logit·sign = [-1, 0, 1.5]; sorted gt [0, 0, 1]; Jaccard gradient [0.5, 1/6, 1/3]
    loss = LovaszLoss()
    assert loss(row([2.0, -1.0, 0.5]), row([1, 0, 0])).item() == pytest.approx(0.75)
    # right with margin everywhere: zero; an ignored pixel changes nothing
    assert loss(row([2.0, -3.0, 1.5]), row([1, 0, 1])).item() == 0.0
    assert loss(row([2.0, -1.0, 0.5, -9.0]), row([1, 0, 0, 255])).item() == pytest.approx(0.75)


def test_lovasz_softmax_known_value_and_per_image():
    loss = LovaszLoss()
    # two classes, probabilities 0.5 everywhere, one pixel of each: 0.5 for each class
    assert loss(torch.zeros(1, 2, 1, 2), row([0, 1])).item() == pytest.approx(0.5)
    perfect = torch.tensor([[BIG, -BIG], [-BIG, BIG]]).T.reshape(1, 2, 1, 2)
    assert loss(perfect, row([0, 1])).item() == pytest.approx(0.0, abs=1e-6)
    logits = torch.cat([row([2.0, -1.0, 0.5]), row([2.0, -3.0, 1.5])])
    target = torch.cat([row([1, 0, 0]), row([1, 0, 1])])
    assert loss.per_image(logits, target).tolist() == pytest.approx([0.75, 0.0])


def test_lovasz_gradients_flow():
    logits = torch.randn(2, 1, 6, 5, requires_grad=True)
    LovaszLoss()(logits, torch.randint(0, 2, (2, 6, 5))).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


# ---------------------------------------------------------------------------- Tversky

def test_tversky_known_values():
    logits = row([BIG, BIG, BIG, -BIG])
    target = row([1, 0, 0, 0])  # TP 1, FP 2, FN 0
    assert TverskyLoss(alpha=0.3, beta=0.7, smooth=0.0)(logits, target).item() == pytest.approx(1 - 1 / 1.6)
    target = row([1, 1, 1, 1])  # TP 3, FP 0, FN 1
    assert TverskyLoss(alpha=0.3, beta=0.7, smooth=0.0)(logits, target).item() == pytest.approx(1 - 3 / 3.7)
    ft = FocalTverskyLoss(alpha=0.3, beta=0.7, smooth=0.0, gamma=0.75)
    assert ft(logits, target).item() == pytest.approx((1 - 3 / 3.7) ** 0.75)
    assert FocalTverskyLoss(gamma=1.0)(logits, target).item() == pytest.approx(TverskyLoss()(logits, target).item())


@pytest.mark.parametrize("channels", [1, 3])
def test_tversky_with_equal_weights_is_dice(channels):
    """α = β = ½ gives (2TP + 2s)/(2TP + FP + FN + 2s): Dice with twice the smoothing."""
    torch.manual_seed(0)
    logits = torch.randn(3, channels, 6, 7)
    target = torch.randint(0, max(channels, 2), (3, 6, 7))
    target[0, :2] = 255
    tv, dice = TverskyLoss(alpha=0.5, beta=0.5, smooth=0.5), DiceLoss(smooth=1.0)
    assert tv(logits, target).item() == pytest.approx(dice(logits, target).item(), rel=1e-5)
    assert torch.allclose(tv.per_image(logits, target), dice.per_image(logits, target), rtol=1e-5)


def test_all_ignored_is_finite():
    target = torch.full((2, 4, 4), 255)
    logits = torch.randn(2, 1, 4, 4, requires_grad=True)
    for loss in (FocalLoss(), LovaszLoss(), TverskyLoss(), FocalTverskyLoss()):
        value = loss(logits, target)
        assert torch.isfinite(value) and torch.isfinite(loss.per_image(logits, target)).all()
        value.backward()


# ---------------------------------------------------------------------------- config: sums and deep supervision

def _cfg(terms, ds_weights=()):
    cfg = get_default_config()
    cfg.LOSS.TERMS = terms
    cfg.LOSS.DEEP_SUPERVISION_WEIGHTS = list(ds_weights)
    return cfg


def test_weighted_combination_from_config():
    loss = build_loss(_cfg([{"NAME": "focal", "WEIGHT": 2.0, "GAMMA": 2.0}, {"NAME": "lovasz", "WEIGHT": 0.5},
                            {"NAME": "focal_tversky", "WEIGHT": 1.0, "ALPHA": 0.3, "BETA": 0.7, "SMOOTH": 0.0}]))
    logits, target = row([2.0, -1.0, 0.5]), row([1, 0, 0])
    total, terms = loss(logits, target)
    # By hand, with σ the sigmoid. Focal: p_t = σ(2), σ(1), σ(-0.5); (1 - p_t)² · -ln p_t is
    # 0.0018036, 0.0226581, 0.3774116; mean 0.1339577.
    # Focal-Tversky (γ 0.75): TP = σ(2) = 0.8807971, FP = σ(-1) + σ(0.5) = 0.8914008,
    # FN = 1 - σ(2) = 0.1192029; index TP / (TP + 0.3 FP + 0.7 FN) = 0.7151304; (1 - 0.7151304)^0.75 = 0.3899281.
    # Lovász: 0.75 (test_lovasz_hinge_known_value).
    assert set(terms) == {"focal", "lovasz", "focal_tversky"}
    assert terms["focal"] == pytest.approx(0.1339577, rel=1e-5)
    assert terms["lovasz"] == pytest.approx(0.75)
    assert terms["focal_tversky"] == pytest.approx(0.3899281, rel=1e-5)
    assert total.item() == pytest.approx(2 * 0.1339577 + 0.5 * 0.75 + 0.3899281, rel=1e-5)  # 1.0328436


def test_deep_supervision_sums_outputs_with_configured_weights():
    main, side = row([2.0, -1.0, 0.5]), row([0.0, 0.0, 0.0])
    target = row([1, 0, 0])
    bce = lambda x: F.binary_cross_entropy_with_logits(x[:, 0], target.float()).item()  # noqa: E731
    equal = build_loss(_cfg([{"NAME": "bce"}]))
    assert equal([main, side], target)[0].item() == pytest.approx(bce(main) + bce(side))
    weighted = build_loss(_cfg([{"NAME": "bce"}, {"NAME": "lovasz", "WEIGHT": 2.0}], [1.0, 0.25]))
    total, terms = weighted([main, side], target)
    # Logit 0 on the side output: every hinge error is 1, and the Lovász weights of the sorted
    # errors add up to the Jaccard loss with all of them counted (1 - 0/1), so its loss is 1.
    lov_side = 1.0
    assert terms["lovasz"] == pytest.approx(0.75 + 0.25 * lov_side)
    assert total.item() == pytest.approx(bce(main) + 0.25 * bce(side) + 2 * (0.75 + 0.25 * lov_side))
    # per_image (evaluation) scores the main output only
    assert weighted.per_image([main, side], target).item() == pytest.approx(bce(main) + 2 * 0.75)
    with pytest.raises(ValueError, match="DEEP_SUPERVISION_WEIGHTS has 2 weights .* returned 3 outputs"):
        weighted([main, side, side], target)
    # a plain tensor ignores the deep-supervision weights
    assert isinstance(weighted, WeightedLoss)
    assert weighted(main, target)[0].item() == pytest.approx(bce(main) + 2 * 0.75)
