"""Lesson 08: the loss, the optimizer groups, the schedule, and the training engine (helpers.training)."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from helpers.attention import GPTConfig
from helpers.model import GPT
from helpers.training import (
    CHECKPOINT,
    METRICS,
    PROFILES,
    CheckpointError,
    NonFiniteLossError,
    TrainConfig,
    configure_optimizer,
    cross_entropy,
    estimate_loss,
    get_lr,
    load_checkpoint,
    load_data,
    load_trained,
    log_softmax,
    profile,
    train,
)

TINY = GPTConfig(vocab_size=65, block_size=16, n_layer=1, n_head=2, n_embd=16, dropout=0.0)


def tiny_train(tmp_path, name="run", **overrides) -> TrainConfig:
    settings = dict(out_dir=str(tmp_path / name), max_iters=6, batch_size=4, learning_rate=3e-3, min_lr=3e-4,
                    warmup_iters=2, lr_decay_iters=12, eval_interval=3, eval_iters=2, log_interval=1,
                    num_threads=1, progress=False, device="cpu")
    return TrainConfig(**{**settings, **overrides})


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


# --- configs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("field, value", [("learning_rate", 0.0), ("learning_rate", -1e-3), ("batch_size", 0),
                                          ("min_lr", 1.0), ("beta2", 1.0), ("dataset", "wikipedia"),
                                          ("dtype", "int8"), ("grad_clip", -1.0)])
def test_bad_train_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_profiles():
    model, config = profile("gpu")
    assert (model.n_layer, model.n_head, model.n_embd, model.block_size, model.dropout) == (6, 6, 384, 256, 0.2)
    assert (config.max_iters, config.batch_size, config.learning_rate, config.min_lr, config.warmup_iters,
            config.beta2) == (5000, 64, 1e-3, 1e-4, 100, 0.99)
    model, config = profile("cpu", dataset="shakespeare_gpt2", n_layer=2, max_iters=7)
    assert model.vocab_size >= 50257 and model.n_layer == 2 and config.max_iters == 7
    assert TrainConfig.for_profile("cpu") == profile("cpu")[1]
    assert set(PROFILES) == {"cpu", "gpu"}
    with pytest.raises(ValueError, match="unknown profile"):
        profile("tpu")
    with pytest.raises(ValueError, match="n_layers"):
        profile("cpu", n_layers=3)


# --- the engine ---------------------------------------------------------------------------------

def test_same_seed_same_losses(tmp_path):
    _, first = train(TINY, tiny_train(tmp_path, "a"))
    _, second = train(TINY, tiny_train(tmp_path, "b"))
    assert first.train_loss == second.train_loss and len(first.train_loss) == 6
    assert first.eval_steps == [3, 6] and first.eval_val == second.eval_val
    _, other = train(TINY, tiny_train(tmp_path, "c", seed=7))
    assert other.train_loss != first.train_loss


def test_loss_goes_down_and_files_are_written(tmp_path):
    config = tiny_train(tmp_path, max_iters=30, eval_interval=30, learning_rate=1e-2, lr_decay_iters=None)
    model, history = train(TINY, config)
    assert history.eval_val[-1] < math.log(65) - 0.5
    assert (tmp_path / "run" / CHECKPOINT).is_file() and (tmp_path / "run" / METRICS).is_file()
    state = torch.load(tmp_path / "run" / CHECKPOINT, weights_only=True)  # tensors and plain values only
    assert state["step"] == 30 and state["model_config"] == dataclasses.asdict(TINY)
    loaded, tokenizer = load_trained(tmp_path / "run")
    x = torch.tensor([tokenizer.encode("ROMEO:\nWhat")])
    assert torch.equal(loaded(x)[0], model.eval()(x)[0])
    assert tokenizer.decode(tokenizer.encode("Hello")) == "Hello"


def test_resume_continues_bit_for_bit(tmp_path):
    _, straight = train(TINY, tiny_train(tmp_path, "straight", max_iters=8, eval_interval=4))
    train(TINY, tiny_train(tmp_path, "split", max_iters=4, eval_interval=4))
    _, resumed = train(TINY, tiny_train(tmp_path, "split", max_iters=8, eval_interval=4, resume=True))
    assert resumed.steps == list(range(8))
    assert resumed.train_loss == straight.train_loss  # exactly equal, not just close
    assert resumed.eval_val == straight.eval_val


def test_dropout_run_resumes_bit_for_bit(tmp_path):
    model = dataclasses.replace(TINY, dropout=0.2)  # dropout draws from torch's RNG: it must be restored too
    _, straight = train(model, tiny_train(tmp_path, "straight", max_iters=6))
    train(model, tiny_train(tmp_path, "split", max_iters=3))
    _, resumed = train(model, tiny_train(tmp_path, "split", max_iters=6, resume=True))
    assert resumed.train_loss == straight.train_loss


def test_keyboard_interrupt_saves_and_returns(tmp_path, capsys):
    def stop_at_step_4(history):
        if history.steps and history.steps[-1] >= 3:
            raise KeyboardInterrupt

    model, history = train(TINY, tiny_train(tmp_path, max_iters=20, eval_interval=100), callback=stop_at_step_4)
    assert history.interrupted and len(history.steps) == 4
    assert "Interrupted at step 4" in capsys.readouterr().out
    state = load_checkpoint(tmp_path / "run")
    assert state["step"] == 4
    assert all(torch.equal(state["model"][k], v) for k, v in model.state_dict().items())
    _, straight = train(TINY, tiny_train(tmp_path, "straight", max_iters=8, eval_interval=100))
    _, resumed = train(TINY, tiny_train(tmp_path, max_iters=8, eval_interval=100, resume=True))
    assert resumed.train_loss == straight.train_loss and not resumed.interrupted


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    calls = {"n": 0}
    real_loss = GPT.loss

    def poisoned(logits, targets):
        calls["n"] += 1
        loss = real_loss(logits, targets)
        return loss * float("nan") if calls["n"] == 5 else loss  # the 5th training forward: step 4

    monkeypatch.setattr(GPT, "loss", staticmethod(poisoned))
    with pytest.raises(NonFiniteLossError, match="at step 4") as error:
        train(TINY, tiny_train(tmp_path, max_iters=10, eval_interval=100, eval_iters=1, checkpoint_interval=2))
    assert "last good checkpoint" in str(error.value)
    state = load_checkpoint(tmp_path / "run")
    assert state["step"] == 4  # written at step 4 (after steps 0-3), before the NaN step was found
    assert all(torch.isfinite(t).all() for t in state["model"].values())


def test_output_folder_with_a_run_needs_resume_or_overwrite(tmp_path):
    config = tiny_train(tmp_path, max_iters=2)
    train(TINY, config)
    with pytest.raises(ValueError, match="already holds a run.*--resume.*--overwrite"):
        train(TINY, config)
    _, history = train(TINY, dataclasses.replace(config, overwrite=True))
    assert history.steps == [0, 1]
    with pytest.raises(ValueError, match="holds no ckpt.pt"):
        train(TINY, tiny_train(tmp_path, "empty", resume=True))


def test_resume_with_a_different_config_names_the_fields(tmp_path):
    train(TINY, tiny_train(tmp_path, max_iters=2))
    with pytest.raises(CheckpointError, match=r"n_embd: 16 -> 32.*batch_size: 4 -> 8"):
        train(dataclasses.replace(TINY, n_embd=32), tiny_train(tmp_path, max_iters=4, batch_size=8, resume=True))


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_checkpoint_is_a_clear_error(tmp_path, damage):
    train(TINY, tiny_train(tmp_path, max_iters=2))
    path = tmp_path / "run" / CHECKPOINT
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not a checkpoint" * 100)
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_trained(path)
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        train(TINY, tiny_train(tmp_path, max_iters=4, resume=True))


def test_batch_or_context_longer_than_the_data(tmp_path):
    with pytest.raises(ValueError, match="block_size"):
        train(dataclasses.replace(TINY, block_size=200_000), tiny_train(tmp_path))
    with pytest.raises(ValueError, match="batch_size=1000000"):
        train(TINY, tiny_train(tmp_path, batch_size=1_000_000))
    with pytest.raises(ValueError, match="vocab_size"):
        train(dataclasses.replace(TINY, vocab_size=10), tiny_train(tmp_path))


# --- paths off the CPU: resume on a GPU, DDP setup, schedules, threads ---------------------------

def test_checkpoint_random_states_stay_on_the_cpu_whatever_the_device(tmp_path):
    """torch.set_rng_state and Generator.set_state take CPU tensors only: loading for a GPU must not move them.
    The meta device stands in for cuda or mps here: tensors mapped to it are not CPU tensors either."""
    train(TINY, tiny_train(tmp_path, max_iters=2))
    state = load_checkpoint(tmp_path / "run", device="meta")
    assert all(t.device.type == "meta" for t in state["model"].values())
    rng = state["rng_ranks"][0]
    for tensor in (rng["torch"], rng["data"], state["rng"]["torch"]):
        assert tensor.device.type == "cpu" and tensor.dtype == torch.uint8
    torch.Generator().set_state(rng["data"])  # accepted as is
    torch.set_rng_state(rng["torch"])


def test_setup_distributed_puts_each_process_on_its_own_gpu(monkeypatch):
    from helpers import training

    calls = []
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(training.torch.cuda, "set_device", lambda index: calls.append(("set_device", index)))
    monkeypatch.setattr(training.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(training.dist, "init_process_group", lambda backend: calls.append(("init", backend)))
    monkeypatch.setattr(training.dist, "get_rank", lambda: 1)
    monkeypatch.setattr(training.dist, "get_world_size", lambda: 2)
    ddp = training.setup_distributed("cuda")
    assert calls == [("set_device", 1), ("init", "nccl")]  # the device first: nccl binds to the current one
    assert (ddp.rank, ddp.local_rank, ddp.world_size) == (1, 1, 2)


def test_resume_refuses_to_move_the_end_of_the_schedule(tmp_path):
    train(TINY, tiny_train(tmp_path, max_iters=4, lr_decay_iters=None))  # the cosine ends at max_iters=4
    longer = tiny_train(tmp_path, max_iters=8, lr_decay_iters=None, resume=True)
    with pytest.raises(CheckpointError, match=r"from step 4 to 8.*--lr_decay_iters 4"):
        train(TINY, longer)
    _, history = train(TINY, dataclasses.replace(longer, lr_decay_iters=4))  # extended on purpose
    assert history.steps == list(range(8))
    assert history.lr[4:] == [3e-4] * 4  # past the schedule's end: min_lr
    assert load_checkpoint(tmp_path / "run")["schedule"] == {"lr_decay_iters": 4}


def test_a_nan_before_any_checkpoint_says_there_is_none(tmp_path, monkeypatch):
    real_loss = GPT.loss
    monkeypatch.setattr(GPT, "loss", staticmethod(lambda logits, targets: real_loss(logits, targets) * float("nan")))
    with pytest.raises(NonFiniteLossError, match="at step 0") as error:
        train(TINY, tiny_train(tmp_path, max_iters=4))
    assert "No checkpoint had been written yet" in str(error.value) and "None" not in str(error.value)


def test_train_gives_back_the_thread_count(tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        train(TINY, tiny_train(tmp_path, max_iters=2, num_threads=1))
        assert torch.get_num_threads() == 2  # the caller's later work keeps its threads
    finally:
        torch.set_num_threads(before)


def test_an_out_dir_that_is_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("not a folder")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        train(TINY, tiny_train(tmp_path, "notes.txt"))


def test_profile_for_follows_the_device_unless_gptfs_profile_says_otherwise(monkeypatch):
    from helpers.device import Capabilities, choose_device
    from helpers.training import profile_for

    monkeypatch.delenv("GPTFS_PROFILE", raising=False)
    monkeypatch.delenv("GPTFS_DEVICE", raising=False)
    cpu = choose_device(caps=Capabilities())
    t4 = choose_device(caps=Capabilities(cuda=True, cuda_name="Tesla T4", cuda_capability=(7, 5), cuda_count=1,
                                         cuda_arch_list=("sm_75",)))
    assert (profile_for(cpu), profile_for(t4)) == ("cpu", "gpu")
    monkeypatch.setenv("GPTFS_PROFILE", "gpu")  # a patient CPU learner
    assert profile_for(cpu) == "gpu"
    monkeypatch.setenv("GPTFS_PROFILE", "cpu")  # a hurried GPU learner
    assert profile_for(t4) == "cpu"
    monkeypatch.setenv("GPTFS_PROFILE", "tpu")
    with pytest.raises(ValueError, match="GPTFS_PROFILE='tpu' is not a profile; set it to one of cpu, gpu"):
        profile_for(cpu)
