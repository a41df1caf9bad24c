"""TensorBoard: scalars each epoch, the model graph once, and a picture of the first val batch."""
import logging
import os
import warnings

import numpy as np
import torch
from torchvision.utils import make_grid

from ...data import dataset_meta, input_size
from ...data.transforms import denormalize
from ...registry import HOOKS
from ...utils.palette import generic_palette
from ..checkpoint import unwrap
from .base import HookBase

logger = logging.getLogger(__name__)

# epoch_metrics keys → TensorBoard tags; other keys are title-cased ("val/iou" → "Val/Iou").
_TAGS = {"train/loss": "Train/Loss", "train/dice": "Train/Dice", "val/loss": "Val/Loss",
         "val/dice": "Val/Dice", "lr": "LR"}


def _tag(key: str) -> str:
    """"val/iou" → "Val/Iou"; mmseg's mixed-case names stay as written ("val/mIoU" → "Val/mIoU",
    "val/IoU/road" → "Val/IoU/road": the class name as the dataset spells it)."""
    if key in _TAGS:
        return _TAGS[key]
    head, *rest = key.split("/")
    if rest and rest[0] != rest[0].lower():  # mixed case: leave the rest alone
        return "/".join([head[:1].upper() + head[1:], *rest])
    return "/".join(p[:1].upper() + p[1:] for p in key.split("/"))


def prediction_grid(batch: dict, mean, std, threshold: float = 0.5, ignore_index: int = 255,
                    palette=None) -> torch.Tensor:
    """One row per image: denormalised image | ground truth | probability | predicted mask.

    Binary models: ground truth and mask in black and white, ignored pixels mid grey. With several
    classes, ground truth and mask are painted in the dataset's ``palette`` (ignored pixels grey)
    and the probability column shows the confidence of the predicted class.
    """
    images = denormalize(batch["image"].float(), mean, std)
    masks, probs = batch["mask"], batch["prob"].float()
    ignored = (masks == ignore_index).unsqueeze(1)
    if probs.shape[1] == 1:
        conf, label = probs[:, 0], (probs[:, 0] > threshold).float()
        gt = masks.float().clamp(0, 1).unsqueeze(1).expand(-1, 3, -1, -1)
        pred = label.unsqueeze(1).expand(-1, 3, -1, -1)
    else:
        conf, label = probs.max(1)
        colours = torch.as_tensor(np.asarray(palette if palette is not None else generic_palette(probs.shape[1])),
                                  dtype=torch.float32) / 255.0
        k = colours.shape[0] - 1
        gt = colours[masks.long().clamp(0, k)].permute(0, 3, 1, 2)
        pred = colours[label.long().clamp(0, k)].permute(0, 3, 1, 2)
    gt = torch.where(ignored, torch.full_like(gt, 0.5), gt)
    rows = []
    for i in range(images.shape[0]):
        rows += [images[i], gt[i], conf[i].unsqueeze(0).expand(3, -1, -1), pred[i]]
    return make_grid(torch.stack(rows), nrow=4, padding=2)


@HOOKS.register(name="tensorboard")
class TensorBoardHook(HookBase):
    """Writes ``OUTPUT_DIR/tensorboard``: every numeric epoch metric (Train/Loss, Train/Dice,
    Val/Loss, Val/Dice, LR, …) per epoch, the model graph once (``log_graph``), and each epoch
    the image / ground truth / probability / mask grid of up to ``max_images`` val images.
    """

    main_process_only = True

    def __init__(self, log_graph: bool = True, max_images: int = 4, subdir: str = "tensorboard"):
        self.log_graph, self.max_images, self.subdir = log_graph, int(max_images), subdir
        self.writer = None

    def before_train(self) -> None:
        from torch.utils.tensorboard import SummaryWriter  # import here: it is slow to load

        t = self.trainer
        # Epoch n is logged at step n; a resumed run drops what a killed run logged past its checkpoint.
        self.writer = SummaryWriter(os.path.join(t.output_dir, self.subdir),
                                    purge_step=t.start_epoch + 1 if t.iter else None)
        if self.log_graph and not t.iter:
            self._add_graph()

    def _add_graph(self) -> None:
        t = self.trainer
        model = unwrap(t.model)
        example = torch.zeros(1, t.cfg.MODEL.IN_CHANNELS, *input_size(t.cfg), device=t.device)
        was_training = model.training
        model.eval()
        try:
            with warnings.catch_warnings():  # tracing warns about every python-side shape check
                warnings.simplefilter("ignore")
                self.writer.add_graph(model, example)
        except Exception as e:  # tracing can fail for exotic user models; never stop training for it
            logger.warning("tensorboard: could not trace the model graph (%s); skipping it", e)
        finally:
            model.train(was_training)

    def after_epoch(self) -> None:
        t = self.trainer
        for key, value in t.epoch_metrics.items():
            if isinstance(value, (int, float)):
                self.writer.add_scalar(_tag(key), value, t.epoch + 1)
        batch = getattr(t, "val_first_batch", None)
        if batch is not None and self.max_images > 0:
            batch = {k: v[: self.max_images] for k, v in batch.items()}
            grid = prediction_grid(batch, t.cfg.INPUT.MEAN, t.cfg.INPUT.STD, t.cfg.TEST.THRESHOLD,
                                   t.cfg.DATA.IGNORE_INDEX, palette=dataset_meta(t.cfg).palette)
            self.writer.add_image("Val/Image_GT_Prob_Mask", grid, t.epoch + 1)
        self.writer.flush()

    def after_train(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
