"""Which of the FFN's weights a mixed recipe gives more bits (see :data:`~.options.LAST_LAYER_BITS`):
found by building each decoder layer as the converter does and naming its projections, so
the keys match the weights of the traced parts."""

from __future__ import annotations

from anechat.engines.coreml.convert.palettize import weight_key
from anechat.engines.modeling.spec import ModelSpec

#: the projections whose weights take the "down" role: the MLP's down projections, and the
#: attention's k and v projections, which cost the most quality per byte at 4 bits (see
#: :data:`~.options.DOWN_PROJECTION_BITS`)
DOWN_ROLE_PROJECTIONS = ("mlp.down_proj", "self_attn.k_proj", "self_attn.v_proj")


def projection_roles(spec: ModelSpec, weights: dict) -> dict[str, str]:
    """:func:`weight_key` -> "last" for every projection of the last layer, "down" for every
    other projection of :data:`DOWN_ROLE_PROJECTIONS` (the rest are not listed: they take the FFN's own bits)."""
    import torch

    from anechat.engines.coreml.convert.ane_llama import ConvLinear
    from anechat.engines.modeling.decoder import DecoderLayer

    roles: dict[str, str] = {}
    last = spec.num_layers - 1
    for i in range(spec.num_layers):
        layer = DecoderLayer(spec, weights, i, ConvLinear, torch.float32)
        for name, module in layer.named_modules():
            if isinstance(module, torch.nn.Conv2d):
                role = "last" if i == last else "down" if name.rsplit(".", 1)[0] in DOWN_ROLE_PROJECTIONS else None
                if role:
                    roles[weight_key(module.weight.detach().numpy())] = role
        del layer
    return roles
