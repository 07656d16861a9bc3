"""What training asks of every model."""

from __future__ import annotations

from torch import nn


class Model(nn.Module):
    """Images (B, 3, S, S) -> logits (B, 2). `backbone`, where a model has one, trains at the
    backbone's learning rate and everything else at the head's."""

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        module = getattr(self, "backbone", None)  # a class attribute would hide the submodule
        backbone = list(module.parameters()) if module is not None else []
        ids = {id(p) for p in backbone}
        return {"backbone": backbone, "head": [p for p in self.parameters() if id(p) not in ids]}
