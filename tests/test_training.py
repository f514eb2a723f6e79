"""Lesson 08's taught pieces: the loss, the optimizer groups, the schedule, the train step and estimate_loss
(helpers.training), each checked against PyTorch's own."""

import copy
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from helpers.attention import GPTConfig
from helpers.engine import load_data
from helpers.model import GPT
from helpers.training import configure_optimizer, cross_entropy, estimate_loss, get_lr, log_softmax, train_step

TINY = GPTConfig(vocab_size=65, block_size=16, n_layer=1, n_head=2, n_embd=16, dropout=0.0)


# --- the loss -----------------------------------------------------------------------------------

def test_log_softmax_and_cross_entropy_match_pytorch():
    torch.manual_seed(0)
    logits = torch.randn(50, 65) * 5
    targets = torch.randint(65, (50,))
    assert torch.allclose(log_softmax(logits), F.log_softmax(logits, dim=-1), atol=1e-6)
    assert torch.allclose(cross_entropy(logits, targets), F.cross_entropy(logits, targets), atol=1e-6)


def test_cross_entropy_is_stable_for_huge_logits():
    logits = torch.tensor([[1000.0, 0.0, -1000.0]])
    loss = cross_entropy(logits, torch.tensor([0]))
    assert torch.isfinite(loss) and torch.allclose(loss, F.cross_entropy(logits, torch.tensor([0])))


def test_uniform_guess_costs_log_vocab_size():
    loss = cross_entropy(torch.zeros(8, 65), torch.randint(65, (8,)))
    assert math.isclose(loss.item(), math.log(65), rel_tol=1e-6)


# --- optimizer and schedule ---------------------------------------------------------------------

def test_weight_decay_only_on_2d_weights():
    model = GPT(TINY)
    optimizer = configure_optimizer(model, 0.1, 1e-3, (0.9, 0.99), "cpu")
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}  # the tied lm_head weight appears once
    assert all(p.dim() == 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(names)
    assert "transformer.wte.weight" in {names[id(p)] for p in decay["params"]}
    assert sum(p.numel() for g in optimizer.param_groups for p in g["params"]) == sum(p.numel() for p in model.parameters())


def test_lr_schedule_warmup_then_cosine_to_floor():
    lr = lambda s: get_lr(s, 1e-3, 1e-4, 10, 110)  # noqa: E731
    assert 0 < lr(0) < lr(5) < lr(9) == pytest.approx(1e-3)
    assert lr(60) == pytest.approx((1e-3 + 1e-4) / 2)  # half way through the cosine
    decay = [lr(s) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(decay, decay[1:]))
    assert lr(110) == pytest.approx(1e-4) and lr(500) == 1e-4


def test_gradient_accumulation_equals_one_big_batch():
    torch.manual_seed(0)
    model = GPT(TINY)
    x, y = torch.randint(65, (8, 16)), torch.randint(65, (8, 16))
    model(x, y)[1].backward()
    big = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    for xs, ys in zip(x.chunk(4), y.chunk(4)):
        (model(xs, ys)[1] / 4).backward()
    assert all(torch.allclose(a, p.grad, atol=1e-6) for a, p in zip(big, model.parameters()))


def test_estimate_loss_restores_mode_and_repeats(tmp_path):
    data = load_data("shakespeare_char")
    model = GPT(dataclasses.replace(TINY, dropout=0.1)).train()
    first = estimate_loss(model, {"train": data.train, "val": data.val}, 16, 4, 3)
    second = estimate_loss(model, {"train": data.train, "val": data.val}, 16, 4, 3)
    assert model.training and first == second  # same batches, no dropout in eval mode
    assert all(abs(v - math.log(65)) < 0.5 for v in first.values())  # untrained: near the uniform guess


# --- the train step -------------------------------------------------------------------------------

def reference_step(model, x, y, grad_clip, settings):
    """One step written with PyTorch's own pieces: F.cross_entropy, backward, clip_grad_norm_, AdamW.step."""
    optimizer = configure_optimizer(model, **settings)
    logits, _ = model(x)
    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.item(), norm.item()


@pytest.mark.parametrize("micro_batches", [1, 2, 4])
def test_train_step_matches_pytorch_whatever_the_accumulation(micro_batches):
    torch.manual_seed(0)
    ours = GPT(TINY)
    reference = copy.deepcopy(ours)
    x, y = torch.randint(65, (8, 16)), torch.randint(65, (8, 16))
    settings = dict(weight_decay=0.1, learning_rate=1e-2, betas=(0.9, 0.99), device_type="cpu")
    batches = list(zip(x.chunk(micro_batches), y.chunk(micro_batches)))
    loss, norm = train_step(ours, configure_optimizer(ours, **settings), batches, grad_clip=0.5).tolist()
    reference_loss, reference_norm = reference_step(reference, x, y, 0.5, settings)
    assert loss == pytest.approx(reference_loss, abs=1e-5) and norm == pytest.approx(reference_norm, rel=1e-4)
    assert norm > 0.5  # clipping acted
    # Adam divides by the gradient's size: rounding in a tiny gradient moves its weight by up to ~lr * 1e-4
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(ours.parameters(), reference.parameters()))
    assert all(p.grad is None for p in ours.parameters())  # zeroed for the next step


def test_train_step_without_clipping_and_with_a_scaler():
    torch.manual_seed(0)
    model = GPT(TINY)
    before = [p.detach().clone() for p in model.parameters()]
    x, y = torch.randint(65, (4, 16)), torch.randint(65, (4, 16))
    optimizer = configure_optimizer(model, 0.0, 1e-3, (0.9, 0.99), "cpu")
    scaler = torch.amp.GradScaler("cpu", enabled=True, init_scale=1024.0)  # the fp16 path, on the CPU
    loss, norm = train_step(model, optimizer, [(x, y)], grad_clip=0.0, scaler=scaler).tolist()
    assert math.isfinite(loss) and norm > 0  # the norm of the unscaled gradients
    assert norm < 100  # not multiplied by the scale of 1024
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_train_step_skips_ddp_sync_except_on_the_last_micro_batch():
    synced = []

    class FakeDDP(torch.nn.Module):  # records, like DistributedDataParallel, whether backward would sync
        def __init__(self, module):
            super().__init__()
            self.module, self.sync = module, True

        def forward(self, x, y):
            synced.append(self.sync)
            return self.module(x, y)

        def no_sync(self):
            import contextlib

            @contextlib.contextmanager
            def off():
                self.sync = False
                yield
                self.sync = True
            return off()

    model = FakeDDP(GPT(TINY))
    x, y = torch.randint(65, (6, 16)), torch.randint(65, (6, 16))
    train_step(model, configure_optimizer(model, 0.1, 1e-3, (0.9, 0.99), "cpu"), list(zip(x.chunk(3), y.chunk(3))))
    assert synced == [False, False, True]
