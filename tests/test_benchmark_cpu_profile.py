"""benchmarks/cpu_profile.py: the CPU profile's benchmark, walked with a few steps of a tiny run."""

import torch

from benchmarks import cpu_profile
from helpers.model import GPT, GPTConfig


def test_a_short_run_reports_its_losses_and_the_verdict(shakespeare, tmp_path, capsys):
    assert cpu_profile.main(["--max_iters", "4", "--eval_interval", "2", "--eval_iters", "1", "--num_threads", "1",
                             "--out_dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "step     4: train " in out and "after 4 steps" in out
    whole = float(out.split("the whole validation split")[1].split("loss ")[1].split()[0])
    assert 3.0 < whole < 4.5  # four steps from ln(65) = 4.17: far from trained, not broken
    assert "target (val loss <= 1.65 within 180 s of training): missed by the engine's estimate; missed on" in out
    assert (tmp_path / "ckpt.pt").exists()


def test_the_whole_split_loss_is_the_mean_over_every_position():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, block_size=4, n_layer=1, n_head=1, n_embd=8))
    tokens = torch.randint(11, (23,)).numpy()  # 5 windows of 4, and 2 tokens left over
    expected = torch.stack([model(torch.from_numpy(tokens[i:i + 4]).long()[None],
                                  torch.from_numpy(tokens[i + 1:i + 5]).long()[None])[1] for i in range(0, 20, 4)])
    assert abs(cpu_profile.whole_split_loss(model, tokens, 4, batch_size=2) - expected.mean().item()) < 1e-6
    assert model.training  # its mode is given back
