"""One batched forward pass of the span model: start and end logits as numpy arrays (serving and validation)."""

from __future__ import annotations

import numpy as np
import torch


def forward_logits(model, input_ids, mask, types, device: str, bf16: bool) -> tuple[np.ndarray, np.ndarray]:
    with torch.inference_mode():
        ids = torch.from_numpy(input_ids).to(device)
        am = torch.from_numpy(mask).to(device)
        tt = torch.from_numpy(types).to(device)
        with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
            out = model(input_ids=ids, attention_mask=am, token_type_ids=tt)
        return out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()
