"""The training engine (helpers.engine, helpers.checkpoint, helpers.distributed): configs and profiles,
the run folder, checkpoints that resume bit for bit, Ctrl-C, NaN, DDP setup, threads."""

import dataclasses
import math

import pytest
import torch

from helpers.attention import GPTConfig
from helpers.checkpoint import CHECKPOINT, CheckpointError, load_checkpoint, load_trained
from helpers.engine import METRICS, PROFILES, NonFiniteLossError, TrainConfig, profile, train
from helpers.model import GPT

TINY = GPTConfig(vocab_size=65, block_size=16, n_layer=1, n_head=2, n_embd=16, dropout=0.0)


def tiny_train(tmp_path, name="run", **overrides) -> TrainConfig:
    settings = dict(out_dir=str(tmp_path / name), max_iters=6, batch_size=4, learning_rate=3e-3, min_lr=3e-4,
                    warmup_iters=2, lr_decay_iters=12, eval_interval=3, eval_iters=2, log_interval=1,
                    num_threads=1, progress=False, device="cpu")
    return TrainConfig(**{**settings, **overrides})


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
    model, config = profile("cpu")  # the CPU recipe is the preset "cpu" and TrainConfig's defaults
    assert model == GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0)
    assert config == TrainConfig()
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
    from helpers import distributed

    calls = []
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(distributed.torch.cuda, "set_device", lambda index: calls.append(("set_device", index)))
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda backend: calls.append(("init", backend)))
    monkeypatch.setattr(distributed.dist, "get_rank", lambda: 1)
    monkeypatch.setattr(distributed.dist, "get_world_size", lambda: 2)
    ddp = distributed.setup_distributed("cuda")
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
    from helpers.engine import profile_for

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


def test_cpu_threads_leave_out_the_cores_other_programs_keep_busy(monkeypatch):
    from helpers import engine

    monkeypatch.setattr(engine.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # pytest-xdist's workers set it
    snapshots = iter([{0: (1000, 500), 1: (1000, 500), 2: (0, 0)},  # cpu2 is not ours: ignored
                      {0: (1100, 500), 1: (1100, 600), 2: (100, 0)}])  # cpu0 fully busy, cpu1 idle
    assert engine.busy_cores(seconds=0, read=lambda: next(snapshots)) == pytest.approx(1.0)
    assert engine.cpu_threads(busy=1.0) == 1 and engine.cpu_threads(busy=0.2) == 2
    assert engine.cpu_threads(processes=2, busy=0.0) == 1 and engine.cpu_threads(busy=5.0) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # a cap set on purpose (pytest-xdist workers, a shared server)
    assert engine.cpu_threads(busy=0.0) == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(engine.os, "getloadavg", lambda: (1.6, 0.0, 0.0), raising=False)
    assert engine.busy_cores(read=dict) == 1.6  # no /proc/stat (macOS): the load average



def test_the_engine_refuses_a_config_it_cannot_build(tmp_path):
    @dataclasses.dataclass
    class MambaConfig:
        vocab_size: int = 65

    with pytest.raises(ValueError, match="unknown model config 'MambaConfig'"):
        train(MambaConfig(), tiny_train(tmp_path))
    with pytest.raises(ValueError, match="must be a GPTConfig"):
        train("cpu", tiny_train(tmp_path))
    train(TINY, tiny_train(tmp_path, max_iters=1))
    assert load_checkpoint(tmp_path / "run")["model_kind"] == "GPTConfig"


@pytest.mark.parametrize("tokenizer", ["char", "bpe"])
def test_train_on_any_text_file(tmp_path, monkeypatch, tokenizer):
    monkeypatch.setenv("GPTFS_DATA_DIR", str(tmp_path / "data"))  # the token files go there
    text = tmp_path / "stories.txt"
    stories = [f"Once upon a time there was a {animal} who liked {food}.\n" * 3 for animal, food in
               [("cat", "milk"), ("dog", "bones"), ("fox", "grapes"), ("owl", "mice")]]
    text.write_text("<|endoftext|>".join(stories * 30), encoding="utf-8")
    settings = dict(dataset=str(text), tokenizer=tokenizer, bpe_vocab_size=300)
    model_config, _ = profile("cpu", **settings)
    if tokenizer == "char":
        with pytest.raises(ValueError, match="set vocab_size to at least"):  # a file's characters are counted first
            train(dataclasses.replace(TINY, vocab_size=5), tiny_train(tmp_path, "small", **settings))
    else:
        assert model_config.vocab_size == 320  # 300 tokens, padded to a multiple of 64
    config = dataclasses.replace(TINY, vocab_size=320)
    _, history = train(config, tiny_train(tmp_path, **settings))
    assert len(history.steps) == 6 and history.eval_val
    model, tokenizer_back = load_trained(tmp_path / "run")
    assert tokenizer_back.decode(tokenizer_back.encode("Once upon a time")) == "Once upon a time"


def test_a_dataset_that_is_not_a_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="the path of a UTF-8 text file that exists"):
        TrainConfig(dataset=str(tmp_path / "missing.txt"))
    with pytest.raises(ValueError, match="TrainConfig.tokenizer='sentencepiece'"):
        TrainConfig(tokenizer="sentencepiece")
