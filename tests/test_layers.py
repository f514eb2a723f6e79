"""Lesson 04's layers against PyTorch's references: LayerNorm, GELU and the position-wise MLP."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers.attention import GPTConfig
from helpers.layers import GELU, MLP, LayerNorm, gelu

SHAPES = [(7,), (3, 5), (2, 4, 16), (2, 3, 2, 8)]
DTYPES = [torch.float32, torch.float64]


@pytest.fixture(autouse=True, params=[False, True], ids=["ours", "fused"])
def use_fused(request, monkeypatch):
    """Run every test twice: on our own arithmetic, and on the fused kernels the modules use by default."""
    monkeypatch.setattr(LayerNorm, "use_fused", request.param)
    monkeypatch.setattr(GELU, "use_fused", request.param)
    return request.param


def tolerances(dtype: torch.dtype) -> dict:
    return {"atol": 1e-5, "rtol": 1e-4} if dtype == torch.float32 else {"atol": 1e-10, "rtol": 1e-8}


def randomise(module: nn.Module, seed: int = 0) -> nn.Module:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.add_(0.3 * torch.randn(param.shape, generator=generator, dtype=param.dtype))
    return module


def forward_backward(module: nn.Module, x: torch.Tensor, upstream: torch.Tensor):
    """The output, and the gradients w.r.t. the input and every parameter (by name)."""
    x = x.detach().clone().requires_grad_()
    out = module(x)
    (out * upstream).sum().backward()
    return out.detach(), x.grad, {name: p.grad for name, p in module.named_parameters()}


# --- LayerNorm ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
def test_layernorm_matches_nn_layernorm_forward_and_backward(shape, dtype, bias):
    torch.manual_seed(1)
    ndim = shape[-1]
    ours = randomise(LayerNorm(ndim, bias=bias).to(dtype))
    reference = nn.LayerNorm(ndim, bias=bias).to(dtype)
    reference.load_state_dict(ours.state_dict())
    x = 3.0 + 2.0 * torch.randn(shape, dtype=dtype)
    upstream = torch.randn(shape, dtype=dtype)

    out, x_grad, grads = forward_backward(ours, x, upstream)
    ref_out, ref_x_grad, ref_grads = forward_backward(reference, x, upstream)

    assert out.dtype == dtype
    torch.testing.assert_close(out, ref_out, **tolerances(dtype))
    torch.testing.assert_close(x_grad, ref_x_grad, **tolerances(dtype))
    assert set(grads) == set(ref_grads) == ({"weight", "bias"} if bias else {"weight"})
    for name in grads:
        torch.testing.assert_close(grads[name], ref_grads[name], **tolerances(dtype))


def test_layernorm_normalises_each_position_over_its_features():
    torch.manual_seed(2)
    x = 5.0 + 10.0 * torch.randn(4, 6, 32, dtype=torch.float64)
    with torch.no_grad():
        y = LayerNorm(32)(x)
    torch.testing.assert_close(y.mean(-1), torch.zeros(4, 6, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close(y.var(-1, correction=0), torch.ones(4, 6, dtype=torch.float64), atol=1e-6, rtol=0)


def test_layernorm_constant_input_is_finite_and_custom_eps_matches_reference():
    x = torch.full((2, 8), 3.0)
    with torch.no_grad():
        assert torch.equal(LayerNorm(8)(x), torch.zeros(2, 8))
        y = torch.randn(3, 8) * 1e-3
        torch.testing.assert_close(LayerNorm(8, eps=1e-2)(y), F.layer_norm(y, (8,), eps=1e-2))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_layernorm_half_precision_keeps_dtype_and_is_accurate(dtype):
    torch.manual_seed(3)
    x = (100.0 + torch.randn(4, 64)).to(dtype)  # a large mean: statistics in half precision would lose it
    ours = randomise(LayerNorm(64))
    reference = nn.LayerNorm(64)
    reference.load_state_dict(ours.state_dict())
    with torch.no_grad():
        y = ours(x)
        want = reference(x.float())
    assert y.dtype == dtype
    torch.testing.assert_close(y.float(), want, atol=0.05, rtol=0.02)


def test_layernorm_state_dict_names_match_nn_layernorm_both_ways():
    for bias in (True, False):
        ours, reference = LayerNorm(16, bias=bias), nn.LayerNorm(16, bias=bias)
        assert list(ours.state_dict()) == list(reference.state_dict())
        ours.load_state_dict(randomise(nn.LayerNorm(16, bias=bias)).state_dict())
        reference.load_state_dict(randomise(LayerNorm(16, bias=bias), seed=5).state_dict())
    assert LayerNorm(16, bias=False).bias is None


def test_layernorm_starts_as_pure_normalisation():
    ln = LayerNorm(10)
    assert torch.equal(ln.weight.detach(), torch.ones(10)) and torch.equal(ln.bias.detach(), torch.zeros(10))


def test_layernorm_wrong_width_names_both_numbers():
    with pytest.raises(ValueError, match=r"ndim=32.*\(4, 32, 8\).*last dimension is 8"):
        LayerNorm(32)(torch.randn(4, 32, 8))
    with pytest.raises(ValueError, match="ndim=3"):
        LayerNorm(3)(torch.tensor(1.0))


@pytest.mark.parametrize("ndim", [0, -4, 2.5, True, "8"])
def test_layernorm_bad_ndim(ndim):
    with pytest.raises(ValueError, match=r"ndim=.*must be a positive int, the size of the last dimension"):
        LayerNorm(ndim)


@pytest.mark.parametrize("eps", [0.0, -1e-5])
def test_layernorm_bad_eps(eps):
    with pytest.raises(ValueError, match="eps"):
        LayerNorm(4, eps=eps)


# --- GELU --------------------------------------------------------------------------------------


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu_matches_f_gelu_values_and_gradients(approximate, dtype):
    torch.manual_seed(4)
    x = torch.cat([torch.linspace(-10, 10, 800, dtype=dtype), 3 * torch.randn(200, dtype=dtype)]).view(10, 100)
    upstream = torch.randn_like(x)
    out, x_grad, _ = forward_backward(GELU(approximate), x, upstream)
    xr = x.clone().requires_grad_()
    ref = F.gelu(xr, approximate=approximate)
    (ref * upstream).sum().backward()
    torch.testing.assert_close(out, ref.detach(), **tolerances(dtype))
    torch.testing.assert_close(x_grad, xr.grad, **tolerances(dtype))
    torch.testing.assert_close(gelu(x, approximate), nn.GELU(approximate=approximate)(x), **tolerances(dtype))


def test_gelu_forms_differ_a_little():
    x = torch.linspace(-6, 6, 1201, dtype=torch.float64)
    difference = (gelu(x) - gelu(x, "tanh")).abs().max().item()
    assert 1e-5 < difference < 1e-3


def test_gelu_default_is_exact():
    x = torch.linspace(-3, 3, 61, dtype=torch.float64)
    assert GELU().approximate == "none"
    torch.testing.assert_close(GELU()(x), F.gelu(x))


@pytest.mark.parametrize("approximate", ["fast", "erf", "", None, True])
def test_gelu_bad_approximate(approximate):
    with pytest.raises(ValueError, match=r"approximate=.*must be one of \('none', 'tanh'\): 'none' for the exact form"):
        GELU(approximate)
    with pytest.raises(ValueError, match="approximate"):
        gelu(torch.zeros(3), approximate)


# --- MLP ---------------------------------------------------------------------------------------


def small_config(**overrides) -> GPTConfig:
    return GPTConfig(**{"vocab_size": 100, "block_size": 16, "n_layer": 2, "n_head": 4, "n_embd": 32, **overrides})


@pytest.mark.parametrize("bias", [True, False])
def test_mlp_parameter_names_and_shapes(bias):
    config = small_config(bias=bias)
    shapes = {name: tuple(p.shape) for name, p in MLP(config).named_parameters()}
    want = {"c_fc.weight": (128, 32), "c_proj.weight": (32, 128)}
    if bias:
        want |= {"c_fc.bias": (128,), "c_proj.bias": (32,)}
    assert shapes == want
    assert sum(p.numel() for p in MLP(config).parameters()) == 8 * 32 * 32 + (5 * 32 if bias else 0)


def test_mlp_submodules():
    mlp = MLP(small_config(dropout=0.25, gelu_approximate="tanh"))
    assert isinstance(mlp.c_fc, nn.Linear) and isinstance(mlp.c_proj, nn.Linear)
    assert isinstance(mlp.gelu, GELU) and mlp.gelu.approximate == "tanh"
    assert isinstance(mlp.dropout, nn.Dropout) and mlp.dropout.p == 0.25


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("shape", [(32,), (5, 32), (2, 7, 32)])
def test_mlp_matches_composition_of_torch_pieces(approximate, shape):
    torch.manual_seed(5)
    mlp = MLP(small_config(gelu_approximate=approximate)).double()
    x = torch.randn(shape, dtype=torch.float64)
    with torch.no_grad():
        out = mlp(x)
        hidden = F.gelu(F.linear(x, mlp.c_fc.weight, mlp.c_fc.bias), approximate=approximate)
        want = F.linear(hidden, mlp.c_proj.weight, mlp.c_proj.bias)
    assert out.shape == shape
    torch.testing.assert_close(out, want)


def test_mlp_is_position_wise():
    torch.manual_seed(6)
    mlp = MLP(small_config()).double()
    x = torch.randn(3, 9, 32, dtype=torch.float64)
    perm = torch.randperm(9)
    with torch.no_grad():
        out = mlp(x)
        torch.testing.assert_close(mlp(x[:, perm]), out[:, perm])
        for t in range(9):  # each position alone gives the same output as in the sequence
            torch.testing.assert_close(mlp(x[:, t]), out[:, t])
        changed = x.clone()
        changed[:, 4] += 1.0
        new = mlp(changed)
    torch.testing.assert_close(new[:, :4], out[:, :4])
    torch.testing.assert_close(new[:, 5:], out[:, 5:])
    assert not torch.allclose(new[:, 4], out[:, 4])


def test_mlp_dropout_only_in_training():
    torch.manual_seed(7)
    mlp = MLP(small_config(dropout=0.5))
    x = torch.randn(4, 8, 32)
    with torch.no_grad():
        zeroed = (mlp(x) == 0).float().mean().item()
        mlp.eval()
        clean = mlp(x)
        reference = mlp.c_proj(F.gelu(mlp.c_fc(x)))
    assert 0.35 < zeroed < 0.65
    torch.testing.assert_close(clean, reference)


def test_mlp_wrong_width():
    with pytest.raises(ValueError, match=r"n_embd = 32"):
        MLP(small_config())(torch.randn(2, 5, 16))
    with pytest.raises(ValueError, match="n_embd"):
        MLP(small_config())(torch.tensor(1.0))


def test_the_modules_use_the_fused_kernels_by_default_and_our_arithmetic_when_asked(use_fused, monkeypatch):
    calls = []
    monkeypatch.setattr(F, "layer_norm", lambda *args, **kwargs: calls.append("layer_norm") or args[0])
    monkeypatch.setattr(F, "gelu", lambda x, **kwargs: calls.append("gelu") or x)
    x = torch.randn(2, 8)
    LayerNorm(8)(x)
    GELU()(x)
    assert calls == (["layer_norm", "gelu"] if use_fused else [])
