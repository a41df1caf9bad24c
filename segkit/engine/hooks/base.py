"""The hook protocol: everything training does besides stepping the model lives in a hook."""
from __future__ import annotations

import weakref
from typing import Iterable, List

from ...registry import HOOKS, node_kwargs

__all__ = ["HookBase", "build_hooks"]


class HookBase:
    """Base class for hooks; override any of the five points. The trainer calls them so::

        hook.before_train()
        for epoch in range(start_epoch, max_epochs):
            hook.before_epoch()
            for batch in train_loader:
                trainer.run_step(batch)          # forward, loss, backward, optimizer step
                hook.after_step()                # trainer.step_outputs holds this step's numbers
            hook.after_epoch()                   # trainer.epoch_metrics holds this epoch's numbers
        hook.after_train()                       # also after an exception, so files get closed

    Hooks read ``self.trainer`` (a weak proxy, to avoid a reference cycle) and never own the
    loop. ``after_step`` runs every step: keep it cheap. Hooks run in list order at each point;
    a hook adding to ``trainer.epoch_metrics`` must come before those that read it.

    Under DDP every process runs the loop. A hook with ``main_process_only = True`` (the
    writers: logs, TensorBoard, checkpoints, progress bar) is called on rank 0 only; the
    others run everywhere, so a hook that makes a collective call or a decision all ranks
    must share (evaluation, schedules, early stopping) stays in step. Hooks of your own
    that write files should set it.
    """

    trainer = None
    main_process_only = False

    def before_train(self) -> None:
        pass

    def before_epoch(self) -> None:
        pass

    def after_step(self) -> None:
        pass

    def after_epoch(self) -> None:
        pass

    def after_train(self) -> None:
        pass

    def state_dict(self) -> dict:
        """State that a resumed run needs (best score so far, counters); saved in checkpoints."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def build_hooks(nodes: Iterable, trainer) -> List[HookBase]:
    """Build hook nodes in order and attach each to ``trainer``; ``None`` entries are dropped."""
    hooks: List[HookBase] = []
    for i, node in enumerate(nodes):
        if node is None:
            continue
        try:
            hook = HOOKS.build({"NAME": node.get("NAME"), **node_kwargs(node)})
        except (KeyError, TypeError) as e:
            raise type(e)(f"hook #{i} ({node.get('NAME')}): {e.args[0] if e.args else e}") from e
        if not isinstance(hook, HookBase):
            raise TypeError(f"Hook '{node.get('NAME')}' built a {type(hook).__name__}, not a HookBase")
        hook.trainer = weakref.proxy(trainer)
        hooks.append(hook)
    return hooks

