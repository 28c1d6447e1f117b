"""``tg.nn.utils``: ``clip_grad_norm_`` (one fused multi-tensor launch pair)."""

from ..nn_utils_clip import clip_grad_norm_

__all__ = ["clip_grad_norm_"]
