"""The training jobs end to end at tiny size (CPU), and the PGD attack against exact answers."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from bregman_kernels.jobs import cifar, common, digits, robust, two_spiral
from bregman_kernels.jobs.cifar_data import CifarMissing, augment, load_cifar10, write_cifar10
from bregman_kernels.jobs.pgd import parse_fraction, pgd

ROOT = Path(__file__).resolve().parents[1]
HAS_MPL = importlib.util.find_spec("matplotlib") is not None


# ---------------------------------------------------------------- two-spiral


def test_spirals_match_the_seed_recipe():
    x, y = two_spiral.make_spirals(1000, torch.Generator().manual_seed(0))
    x2, y2 = two_spiral.make_spirals(1000, torch.Generator().manual_seed(0))
    assert x.shape == (1000, 2) and y.shape == (1000,)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert int(y.sum()) == 500
    # x / ceil(max|x|) ∈ [−1, 1] mapped onto [−1.57, 1.57], inside atan's range (−π/2, π/2)
    assert x.abs().max() <= 1.57 + 1e-6
    assert x.abs().max() > 1.0
    # the two arms are point reflections of each other: their means are near opposite
    assert torch.allclose(x[y == 0].mean(0), -x[y == 1].mean(0), atol=0.15)


def test_two_spiral_job(tmp_path):
    res = two_spiral.main(["--epochs", "3", "--depths", "2", "6", "--train-size", "200", "--test-size", "100",
                           "--lr", "0.1", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["runs"] == res["runs"]
    assert [(r["version"], r["depth"]) for r in res["runs"]] == [("standard", 2), ("bregman", 2), ("standard", 6),
                                                                 ("bregman", 6)]
    for r in res["runs"]:
        assert len(r["train_loss"]) == 3 and all(np.isfinite(r["train_loss"]))
        assert 0.0 <= r["test_accuracy"] <= 1.0
    assert all(r["train_loss"][-1] < r["train_loss"][0] for r in res["runs"] if r["version"] == "bregman")
    if HAS_MPL:
        assert res["plots"] == ["loss.png", "regions.png"]
        assert (tmp_path / "regions.png").read_bytes()[:4] == b"\x89PNG"


def _spiral_impl(tmp_path, impl, *extra):
    return two_spiral.main(["--epochs", "2", "--depths", "3", "--train-size", "120", "--test-size", "40", "--lr",
                            "0.1", "--no-plots", "--impl", impl, "--out", str(tmp_path / impl), *extra])["runs"]


def test_two_spiral_impls_train_alike(tmp_path):
    """The default (fused training step, when the C++ extension is built) follows the autograd module's losses."""
    fused, module = _spiral_impl(tmp_path, "auto"), _spiral_impl(tmp_path, "module")
    from bregman_kernels import fused_mlp

    expected = "module" if fused_mlp._why_no_kernel("cpu") else "fused-step"
    assert [r["impl"] for r in fused] == [expected] * 2 and [r["impl"] for r in module] == ["module"] * 2
    for a, b in zip(fused, module, strict=True):
        np.testing.assert_allclose(a["train_loss"], b["train_loss"], rtol=1e-5)
        assert a["parameters"] == b["parameters"]
    # another elementwise backend asks for the module: auto falls back to it
    assert [r["impl"] for r in _spiral_impl(tmp_path, "auto", "--backend", "eager")] == ["module"] * 2


@pytest.mark.skipif(importlib.util.find_spec("bregmanet") is None, reason="bregmanet (the seed library) not installed")
def test_two_spiral_on_bregmanet(tmp_path):
    runs = _spiral_impl(tmp_path, "bregmanet")
    assert [r["impl"] for r in runs] == ["bregmanet"] * 2
    assert all(np.isfinite(r["train_loss"]).all() and 0.0 <= r["test_accuracy"] <= 1.0 for r in runs)


def test_plots_are_skipped_without_matplotlib(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    res = digits.main(["--epochs", "1", "--versions", "standard", "--out", str(tmp_path)])
    assert res["plots"] == [] and not (tmp_path / "loss.png").exists()
    assert "matplotlib is not installed" in capsys.readouterr().out


# ---------------------------------------------------------------- digits


def test_bundled_digits():
    images, labels = digits.load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == torch.uint8 and int(images.max()) == 16
    assert torch.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    x = digits.scale_into_range(images, "sigmoid")
    assert x.shape == (1797, 64)
    assert float(x.min()) == pytest.approx(1e-5) and float(x.max()) == pytest.approx(1 - 1e-5)
    x = digits.scale_into_range(images, "tanh")
    assert float(x.min()) == pytest.approx(-1 + 1e-5) and float(x.max()) == pytest.approx(1 - 1e-5)


def test_digits_job(tmp_path):
    res = digits.main(["--epochs", "3", "--out", str(tmp_path), "--no-plots"])
    assert res["train_size"] + res["test_size"] == 1797
    standard, bregman = res["runs"]
    assert standard["train_loss"][-1] < standard["train_loss"][0]
    assert bregman["test_accuracy"] > 0.5, bregman  # chance is 0.1: the Bregman MLP learns within 3 epochs


def test_training_loop_keeps_offset_maps_on_the_simplex():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(64, 12, generator=gen) * 0.9 + 0.05
    y = torch.randint(0, 3, (64,), generator=gen)
    from bregman_kernels.nn import BregmanMLP

    model = BregmanMLP("sigmoid", "bregman", hidden_dim=[5], input_dim=12, output_dim=3)
    offset = model.reparametrization[0].weight
    before = offset.detach().clone()
    common.fit_classifier(model, x, y, epochs=2, lr=0.5, batch_size=8, generator=gen)
    assert not torch.equal(offset.detach(), before)  # the map trains
    assert (offset >= 0).all()
    torch.testing.assert_close(offset.sum(1), torch.ones(5), atol=1e-6, rtol=0)


# ---------------------------------------------------------------- CIFAR-10


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    """16 training images (2 batches of 8) and 8 test images in the real cifar-10-batches-py format."""
    root = tmp_path_factory.mktemp("cifar")
    rng = np.random.default_rng(0)
    write_cifar10(root, (rng.integers(0, 256, (16, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, 16)),
                  (rng.integers(0, 256, (8, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, 8)))
    return root


def _cifar_args(data, out, epochs, *extra):
    return ["--data", str(data), "--out", str(out), "--epochs", str(epochs), "--batch-size", "8", "--device", "cpu",
            "--milestones", "1", *extra]


@pytest.fixture(scope="module")
def cifar_run(cifar_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("cifar_run")
    first = cifar.main(_cifar_args(cifar_dir, out, 1))
    return out, first


def test_cifar_reader_and_missing_data(cifar_dir, tmp_path):
    x, y = load_cifar10(cifar_dir, train=True)
    assert x.shape == (16, 3, 32, 32) and x.dtype == torch.uint8 and y.shape == (16,)
    with pytest.raises(CifarMissing, match=r"data_batch_1.*--download"):
        load_cifar10(tmp_path, train=True)


def test_augment_crops_and_flips():
    x = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8)
    a = augment(x, pad=0)  # without padding a crop is the image itself: only flips remain
    ref = x.float() / 255
    same = (a == ref).flatten(1).all(1)
    flipped = (a == ref.flip(3)).flatten(1).all(1)
    assert (same | flipped).all() and same.any() and flipped.any()
    b = augment(x, pad=2)
    assert b.shape == (64, 3, 8, 8) and 0 <= float(b.min()) and float(b.max()) <= 1
    assert (b == 0).any()  # some crops reach into the zero padding


def test_cifar_one_epoch_then_resume(cifar_dir, cifar_run, tmp_path):
    out, first = cifar_run
    assert first["epochs_done"] == 1 and len(first["history"]) == 1
    row = first["history"][0]
    assert row["test_images"] == 8 and row["images_per_s"] > 0 and np.isfinite(row["train_loss"])
    assert cifar.load_checkpoint(out / "checkpoint.pt")["epoch"] == 1
    resumed = cifar.main(_cifar_args(cifar_dir, out, 2, "--resume"))
    assert [r["epoch"] for r in resumed["history"]] == [1, 2]
    assert resumed["history"][0] == row  # epoch 1 was restored, not retrained
    assert resumed["history"][1]["lr"] == pytest.approx(0.01)  # the scheduler state came back too
    straight = cifar.main(_cifar_args(cifar_dir, tmp_path, 2))
    assert resumed["history"][1]["train_loss"] == pytest.approx(straight["history"][1]["train_loss"], rel=1e-5)


def test_cifar_resume_rejects_another_model(cifar_dir, cifar_run):
    out, _ = cifar_run
    with pytest.raises(ValueError, match="holds"):
        cifar.main(_cifar_args(cifar_dir, out, 2, "--resume", "--activation", "tanh"))


def test_cifar_bf16_channels_last(cifar_dir, tmp_path):
    res = cifar.main(_cifar_args(cifar_dir, tmp_path, 1, "--amp", "bf16", "--channels-last", "--limit-train-batches",
                                 "1", "--limit-test-images", "4"))
    row = res["history"][0]
    assert np.isfinite(row["train_loss"]) and row["test_images"] == 4
    assert res["config"]["amp"] == "bf16"


def test_cifar_torchrun_two_processes_gloo(cifar_dir, tmp_path):
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=path)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "bregman_kernels.jobs.cifar", *_cifar_args(cifar_dir, tmp_path, 1)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["world_size"] == 2
    assert res["history"][0]["test_images"] == 8  # the two shards of the test set add up
    assert "2 process(es)" in proc.stdout


# ---------------------------------------------------------------- PGD and robust accuracy


def _linear_model(seed=0, n_in=3 * 4 * 4, classes=2):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(n_in, classes)).eval()


@pytest.mark.parametrize("norm,eps", [("linf", 8 / 255), ("l2", 0.5)])
def test_pgd_stays_in_budget_and_below_clean(norm, eps):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10)).eval()
    x = torch.rand(64, 3, 8, 8)
    x[:8] = x[:8].round()  # pixels at 0 and 1: the box constraint binds
    y = torch.randint(0, 10, (64,))
    x_adv, ok = pgd(model, x, y, norm=norm, eps=eps, steps=7, step_size=eps / 2,
                    generator=torch.Generator().manual_seed(0))
    d = (x_adv - x).flatten(1)
    assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1
    if norm == "linf":
        assert float(d.abs().max()) <= eps * (1 + 1e-6)
    else:
        assert float(d.norm(dim=1).max()) <= eps * (1 + 1e-5)
    clean = model(x).argmax(1) == y
    assert not (ok & ~clean).any()  # robust only where clean is right: robust accuracy ≤ clean accuracy
    assert int(ok.sum()) <= int(clean.sum())


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_finds_the_exact_worst_case_of_a_linear_model(norm):
    # f(x) = W x + b; the worst margin of class y over the ε-ball is m − ε‖w_y − w_o‖_q (q = 1 for ℓ∞, 2 for ℓ2)
    model = _linear_model()
    x = 0.3 + 0.4 * torch.rand(256, 3, 4, 4, generator=torch.Generator().manual_seed(2))  # box never binds
    y = torch.randint(0, 2, (256,), generator=torch.Generator().manual_seed(3))
    w = model[1].weight.detach()
    dw = (w[y] - w[1 - y])
    margin = model(x).gather(1, y[:, None])[:, 0] - model(x).gather(1, (1 - y)[:, None])[:, 0]
    eps = 0.06 if norm == "linf" else 0.3
    worst = margin - eps * dw.norm(p=1 if norm == "linf" else 2, dim=1)
    _, ok = pgd(model, x, y, norm=norm, eps=eps, steps=20, step_size=eps / 4, rand_init=False)
    clear = worst.abs() > 1e-4
    assert torch.equal(ok[clear], (worst > 0)[clear])
    assert 0 < int(ok.sum()) < int((margin > 0).sum())  # the case is not trivial


def test_parse_fraction():
    assert parse_fraction("8/255") == pytest.approx(8 / 255)
    assert parse_fraction("0.5") == 0.5


def test_robust_job(cifar_dir, cifar_run):
    out, _ = cifar_run
    res = robust.main(["--checkpoint", str(out / "checkpoint.pt"), "--data", str(cifar_dir), "--device", "cpu",
                       "--steps", "2", "--batch-size", "4"])
    saved = json.loads((out / "robust.json").read_text())
    assert saved["images"] == 8 and set(saved["attacks"]) == {"linf", "l2"}
    assert saved["attacks"]["linf"]["eps"] == pytest.approx(8 / 255)
    for a in res["attacks"].values():
        assert 0 <= a["accuracy"] <= res["clean_accuracy"]
