"""TensorBoard: scalars each epoch, the model graph once, and a picture of the first val batch."""
import logging
import os
import warnings

import torch
from torchvision.utils import make_grid

from ...data.transforms import denormalize
from ...registry import HOOKS
from ..checkpoint import unwrap
from .base import HookBase

logger = logging.getLogger(__name__)

# epoch_metrics keys → TensorBoard tags; other keys are title-cased ("val/iou" → "Val/Iou").
_TAGS = {"train/loss": "Train/Loss", "train/dice": "Train/Dice", "val/loss": "Val/Loss",
         "val/dice": "Val/Dice", "lr": "LR"}


def _tag(key: str) -> str:
    return _TAGS.get(key) or "/".join(p[:1].upper() + p[1:] for p in key.split("/"))


def prediction_grid(batch: dict, mean, std, threshold: float = 0.5, ignore_index: int = 255) -> torch.Tensor:
    """One row per image: denormalised image | ground truth | probability | binary mask.

    Ignored ground-truth pixels show as mid grey. With several classes, the probability column
    shows the foreground (1 − background) probability and the mask column the argmax label.
    """
    images = denormalize(batch["image"].float(), mean, std)
    masks, probs = batch["mask"], batch["prob"].float()
    if probs.shape[1] == 1:
        fg, label = probs[:, 0], (probs[:, 0] > threshold).float()
        gt = masks.float().clamp(0, 1)
    else:
        n = probs.shape[1] - 1
        fg, label = 1 - probs[:, 0], probs.argmax(1).float() / n
        gt = masks.float().clamp(0, n) / n
    gt = torch.where(masks == ignore_index, torch.full_like(gt, 0.5), gt)
    rows = []
    for i in range(images.shape[0]):
        rows += [images[i]] + [m[i].unsqueeze(0).expand(3, -1, -1) for m in (gt, fg, label)]
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
        size = t.cfg.INPUT.SIZE
        example = torch.zeros(1, t.cfg.MODEL.IN_CHANNELS, size, size, device=t.device)
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
                                   t.cfg.DATA.IGNORE_INDEX)
            self.writer.add_image("Val/Image_GT_Prob_Mask", grid, t.epoch + 1)
        self.writer.flush()

    def after_train(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
