"""Lesson 07's exercise checkers pass the solutions and fail typical wrong answers with a useful hint."""

from helpers.attention import GPTConfig
from helpers.exercises import lesson07 as ex


def block_param_count(n_embd, bias):  # the solution
    d, b = n_embd, int(bias)
    return (3 * d * d + 3 * d * b) + (d * d + d * b) + (4 * d * d + 4 * d * b) + (4 * d * d + d * b) + 2 * (d + d * b)


def params(config: GPTConfig, tied: bool = True) -> int:
    d, b = config.n_embd, int(config.bias)
    head = 0 if tied else config.vocab_size * d
    return (config.vocab_size + config.block_size) * d + config.n_layer * block_param_count(d, config.bias) \
        + (d + d * b) + head


def not_attempted(*args):
    raise NotImplementedError


def test_block_param_count():
    assert ex.check_block_param_count(block_param_count)
    assert "not attempted" in str(ex.check_block_param_count(not_attempted))
    no_layernorms = lambda d, bias: block_param_count(d, bias) - 2 * (d + d * int(bias))
    assert "LayerNorms" in str(ex.check_block_param_count(no_layernorms))
    no_biases = lambda d, bias: 12 * d * d + 2 * d
    assert "one bias per output" in str(ex.check_block_param_count(no_biases))
    narrow_mlp = lambda d, bias: block_param_count(d, bias) - 6 * d * d - 3 * d * int(bias)
    assert "four times wider" in str(ex.check_block_param_count(narrow_mlp))
    one_projection = lambda d, bias: block_param_count(d, bias) - 2 * d * d - 2 * d * int(bias)
    assert "3·n_embd" in str(ex.check_block_param_count(one_projection))
    assert "should return an int" in str(ex.check_block_param_count(lambda d, bias: 12.0 * d * d))


def test_fp16_weight_bytes():
    assert ex.check_fp16_weight_bytes(lambda config: 2 * params(config))
    assert "4 bytes" in str(ex.check_fp16_weight_bytes(lambda config: 4 * params(config)))
    assert "tied" in str(ex.check_fp16_weight_bytes(lambda config: 2 * params(config, tied=False)))
    no_wpe = lambda config: 2 * (params(config) - config.block_size * config.n_embd)
    assert "position embeddings" in str(ex.check_fp16_weight_bytes(no_wpe))
    assert "multiply by 2" in str(ex.check_fp16_weight_bytes(params))
    assert "bytes, not GB" in str(ex.check_fp16_weight_bytes(lambda config: 2 * params(config) / 1e9))


def test_training_flops_per_token():
    solution = lambda n, n_layer, n_embd, seq_len: 6 * n + 12 * n_layer * n_embd * seq_len
    assert ex.check_training_flops_per_token(solution)
    assert "12·n_layer·n_embd·seq_len" in str(ex.check_training_flops_per_token(lambda n, L, d, T: 6 * n))
    forward_only = lambda n, L, d, T: 2 * n + 4 * L * d * T
    assert "forward pass only" in str(ex.check_training_flops_per_token(forward_only))
    half_attention = lambda n, L, d, T: 6 * n + 6 * L * d * T
    assert "q·kᵀ" in str(ex.check_training_flops_per_token(half_attention))
    assert "expected" in str(ex.check_training_flops_per_token(lambda n, L, d, T: 6 * n + 1))
