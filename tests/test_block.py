"""Lesson 05: Block against PyTorch's TransformerEncoderLayer and HF's GPT2Block, the cache hook, bad inputs."""

import pytest
import torch
from torch import nn

from helpers.attention import GPTConfig
from helpers.block import Block

# nn.TransformerEncoderLayer's parameter name -> ours
TO_TORCH = {
    "norm1.weight": "ln_1.weight", "norm1.bias": "ln_1.bias",
    "self_attn.in_proj_weight": "attn.c_attn.weight", "self_attn.in_proj_bias": "attn.c_attn.bias",
    "self_attn.out_proj.weight": "attn.c_proj.weight", "self_attn.out_proj.bias": "attn.c_proj.bias",
    "norm2.weight": "ln_2.weight", "norm2.bias": "ln_2.bias",
    "linear1.weight": "mlp.c_fc.weight", "linear1.bias": "mlp.c_fc.bias",
    "linear2.weight": "mlp.c_proj.weight", "linear2.bias": "mlp.c_proj.bias",
}


def config(**overrides) -> GPTConfig:
    sizes = dict(vocab_size=64, block_size=16, n_layer=1, n_head=4, n_embd=32)
    return GPTConfig(**(sizes | overrides))


def random_block(cfg: GPTConfig, seed: int = 0) -> Block:
    """A block in eval mode whose every parameter (LayerNorms included) is random."""
    torch.manual_seed(seed)
    block = Block(cfg).eval()
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(0.0, 0.2)
    return block


def torch_layer(block: Block) -> nn.TransformerEncoderLayer:
    c = block.config
    layer = nn.TransformerEncoderLayer(
        d_model=c.n_embd, nhead=c.n_head, dim_feedforward=4 * c.n_embd, dropout=0.0,
        activation="gelu", batch_first=True, norm_first=True, bias=c.bias,
    )
    ours = block.state_dict()
    theirs = {name: ours[TO_TORCH[name]] for name in layer.state_dict()}
    layer.load_state_dict(theirs)  # strict: every one of the layer's tensors comes from our block
    return layer.eval()


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("n_head", [4, 3])  # an odd head count keeps nn's layer off its fast path
def test_matches_transformer_encoder_layer(bias, n_head):
    block = random_block(config(bias=bias, n_head=n_head, n_embd=48))
    layer = torch_layer(block)
    x = torch.randn(3, 16, 48)
    mask = nn.Transformer.generate_square_subsequent_mask(16)
    ours = block(x)
    slow = layer(x, src_mask=mask, is_causal=True)  # gradients enabled: the Python path
    with torch.no_grad():
        fast = layer(x, src_mask=mask, is_causal=True)  # eval + no_grad: the fused path where it applies
    torch.testing.assert_close(ours, slow, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours, fast, atol=1e-5, rtol=1e-5)


def test_causal_mask_matters():
    """Without the mask the reference differs: so the parity above really tests causality."""
    block = random_block(config())
    layer = torch_layer(block)
    x = torch.randn(2, 8, 32)
    with torch.no_grad():
        assert not torch.allclose(block(x), layer(x), atol=1e-3)


def test_state_dict_names_match_hf_gpt2_block():
    from transformers import GPT2Config
    from transformers.models.gpt2.modeling_gpt2 import GPT2Block

    cfg = config(n_embd=48, n_head=3)
    hf = GPT2Block(GPT2Config(n_embd=48, n_head=3, n_positions=16))
    ours = {k: tuple(v.shape) for k, v in Block(cfg).state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in hf.state_dict().items() if k not in ("attn.bias", "attn.masked_bias")}
    assert list(ours) == list(theirs)
    for name, shape in ours.items():
        # HF's Conv1D stores (in, out), nn.Linear (out, in): the 2-D weights are transposed
        assert shape == (theirs[name][::-1] if len(shape) == 2 else theirs[name]), name


def test_matches_hf_gpt2_block_with_tanh_gelu():
    """GPT-2's own block (tanh GELU, Conv1D weights) gives the same output after transposing the weights."""
    from transformers import GPT2Config
    from transformers.models.gpt2.modeling_gpt2 import GPT2Block

    block = random_block(config(n_embd=48, n_head=3, gelu_approximate="tanh"))
    hf_config = GPT2Config(n_embd=48, n_head=3, n_positions=16, activation_function="gelu_new",
                           resid_pdrop=0.0, attn_pdrop=0.0, embd_pdrop=0.0)
    hf_config._attn_implementation = "eager"  # a standalone block gets no mask from the model: pass it below
    hf = GPT2Block(hf_config).eval()
    hf.load_state_dict({k: (v.t() if v.dim() == 2 else v) for k, v in block.state_dict().items()}, strict=False)
    x = torch.randn(2, 16, 48)
    causal = torch.full((16, 16), float("-inf")).triu(1)[None, None]  # additive: -inf above the diagonal
    with torch.no_grad():
        theirs = hf(x, attention_mask=causal)
    theirs = theirs[0] if isinstance(theirs, tuple) else theirs
    torch.testing.assert_close(block(x), theirs, atol=1e-5, rtol=1e-5)


def test_parameter_count_matches_reference_layer():
    for bias in (True, False):
        block = Block(config(bias=bias))
        assert sum(p.numel() for p in block.parameters()) == sum(p.numel() for p in torch_layer(block).parameters())


class ConcatCache:
    def __init__(self):
        self.k = self.v = None
        self.calls = 0

    def update(self, k, v):
        self.calls += 1
        self.k = k if self.k is None else torch.cat([self.k, k], dim=2)
        self.v = v if self.v is None else torch.cat([self.v, v], dim=2)
        return self.k, self.v


def test_kv_cache_one_token_at_a_time_equals_full_forward():
    cfg = config(n_embd=48, n_head=3)
    block = random_block(cfg)
    x = torch.randn(2, 12, 48)
    cache = ConcatCache()
    with torch.no_grad():
        full = block(x)
        steps = torch.cat([block(x[:, t : t + 1], kv_cache=cache) for t in range(12)], dim=1)
    assert cache.calls == 12
    assert cache.k.shape == (2, 3, 12, 16)
    torch.testing.assert_close(steps, full, atol=1e-5, rtol=1e-5)


def test_kv_cache_in_chunks_equals_full_forward():
    block = random_block(config())
    x = torch.randn(2, 11, 32)
    cache = ConcatCache()
    with torch.no_grad():
        full = block(x)
        chunks = torch.cat([block(x[:, :5], kv_cache=cache), block(x[:, 5:9], kv_cache=cache),
                            block(x[:, 9:], kv_cache=cache)], dim=1)
    torch.testing.assert_close(chunks, full, atol=1e-5, rtol=1e-5)


def test_residual_identity_when_projections_are_zero():
    block = random_block(config())
    with torch.no_grad():
        for layer in (block.attn.c_proj, block.mlp.c_proj):
            layer.weight.zero_()
            layer.bias.zero_()
    x = torch.randn(2, 8, 32)
    torch.testing.assert_close(block(x), x)


@pytest.mark.parametrize("shape", [(2, 8, 32), (1, 1, 32), (3, 16, 32)])
def test_shapes_and_determinism(shape):
    cfg = config(n_layer=3)
    torch.manual_seed(0)
    stack = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)]).eval()
    x = torch.randn(shape)
    outs = []
    for _ in range(2):
        h = x
        for block in stack:
            h = block(h)
        outs.append(h)
    assert outs[0].shape == shape
    assert torch.equal(outs[0], outs[1])


def test_train_mode_dropout_is_random_eval_is_not():
    block = Block(config(dropout=0.5))
    x = torch.randn(2, 8, 32)
    block.train()
    assert not torch.equal(block(x), block(x))
    block.eval()
    assert torch.equal(block(x), block(x))


def test_bad_inputs_raise_clear_value_errors():
    block = Block(config())
    with pytest.raises(ValueError, match=r"got \(8, 32\); add a batch dimension with x\[None\]"):
        block(torch.randn(8, 32))  # no batch dimension: the message names the shape it got
    with pytest.raises(ValueError, match=r"last dimension of the input is 33, but n_embd=32; embed tokens to n_embd first"):
        block(torch.randn(2, 8, 33))
    with pytest.raises(ValueError, match=r"sequence length 17 .* block_size=16; crop the input to the last 16 tokens"):
        block(torch.randn(2, 17, 32))


def test_layernorm_and_gelu_use_the_fused_kernels_by_default():
    from helpers.layers import GELU, LayerNorm

    assert LayerNorm.use_fused is True and GELU.use_fused is True
