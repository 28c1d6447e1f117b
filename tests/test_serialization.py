"""tg.save / tg.load: exact round trips of every dtype and of training state, atomic
writes, and clear errors for truncated, corrupt or mismatched checkpoints."""

import json
import os
import struct
from collections import OrderedDict

import numpy as np
import pytest
import torch

import tritongrad as tg
from tritongrad import nn, serialization
from tritongrad.serialization import CheckpointError, load, save

DEVICE = tg.device()


def test_top_level_api():
    assert tg.save is save and tg.load is load


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit-for-bit equality (NaN payloads and -0.0 included)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype == torch.bool:
        return torch.equal(a.cpu(), b.cpu())
    ints = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[a.element_size()]
    return torch.equal(a.cpu().contiguous().view(ints), b.cpu().contiguous().view(ints))


SPECIALS = [0.0, -0.0, 1.0, -2.5, float("inf"), float("-inf"), float("nan"), 1e-3, 3.0e38]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64,
                                   torch.int64, torch.int32, torch.int16, torch.int8,
                                   torch.uint8, torch.bool], ids=str)
def test_every_dtype_round_trips_bit_exactly(tmp_path, dtype):
    generator = torch.Generator().manual_seed(0)  # host data: "torch" round trips a CPU tensor
    if dtype.is_floating_point:
        values = torch.cat([torch.tensor(SPECIALS, device="cpu"),
                            torch.randn(40, generator=generator, device="cpu")])
        host = values.to(dtype)
    elif dtype == torch.bool:
        host = torch.rand(49, generator=generator, device="cpu") > 0.5
    else:
        info = torch.iinfo(dtype)
        host = torch.randint(info.min, info.max, (49,), generator=generator, dtype=dtype,
                             device="cpu")
    on_device = host.to(DEVICE)
    tensor = tg.from_torch(on_device.reshape(7, 7))
    obj = {"matrix": tensor, "transposed": tensor.T, "scalar": tg.from_torch(on_device[3]),
           "empty": tg.from_torch(on_device[:0].reshape(0, 7)), "torch": host.clone()}
    path = tmp_path / "x.tgckpt"
    save(obj, path)
    back = load(path)
    for key in ("matrix", "transposed", "scalar", "empty"):
        assert isinstance(back[key], tg.Tensor), key
        assert same_bits(back[key].torch(), obj[key].torch()), key
    assert isinstance(back["torch"], torch.Tensor) and same_bits(back["torch"], host)


def test_nested_structures_round_trip():
    obj = {
        "state": {0: {"step": 3, "exp_avg": tg.randn(2, 3)}, 1: {}},
        "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "params": [0, 1],
                          "nesterov": False, "name": None}],
        "floats": [float("nan"), float("inf"), -float("inf"), 0.1],
        "ordered": OrderedDict([("b", 1), ("a", 2)]),
        (1, "tuple key"): "value",
        "array": np.arange(6, dtype=np.float32).reshape(2, 3),
        "dtype": torch.bfloat16,
        "unicode": "ünïcode ✓",
    }
    back = serialization.load(serialization.dumps(obj))
    assert back["state"][0]["step"] == 3 and back["state"][1] == {}
    assert torch.equal(back["state"][0]["exp_avg"].torch(), obj["state"][0]["exp_avg"].torch())
    assert back["param_groups"] == obj["param_groups"]
    assert isinstance(back["param_groups"][0]["betas"], tuple)
    assert np.isnan(back["floats"][0]) and back["floats"][1:] == obj["floats"][1:]
    assert isinstance(back["ordered"], OrderedDict) and list(back["ordered"]) == ["b", "a"]
    assert back[(1, "tuple key")] == "value"
    assert isinstance(back["array"], np.ndarray) and np.array_equal(back["array"], obj["array"])
    assert back["dtype"] is torch.bfloat16 and back["unicode"] == obj["unicode"]


def test_format_is_documented_json_header_not_pickle(tmp_path):
    path = tmp_path / "m.tgckpt"
    save({"w": tg.ones(2, 2, dtype=torch.bfloat16)}, path)
    raw = path.read_bytes()
    assert raw[:8] == serialization.MAGIC and raw[-8:] == serialization.TRAILER
    (length,) = struct.unpack("<Q", raw[8:16])
    header = json.loads(raw[16:16 + length])
    assert header["format"] == "tritongrad-checkpoint" and header["version"] == 1
    (entry,) = header["tensors"]
    assert entry["dtype"] == "bfloat16" and entry["shape"] == [2, 2] and entry["nbytes"] == 8
    start = 16 + length + (-(16 + length) % 64) + entry["offset"]
    assert raw[start:start + 8] == b"\x80\x3f" * 4  # bf16 1.0 = 0x3F80, little-endian


def test_unsupported_objects_are_refused_before_writing(tmp_path):
    path = tmp_path / "bad.tgckpt"
    with pytest.raises(TypeError, match=r"cannot save object at /model/layer"):
        save({"model": {"layer": object()}}, path)
    with pytest.raises(TypeError, match="cannot save Linear"):
        save(nn.Linear(2, 2), path)  # save model.state_dict(), not the module
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_model_state_dict_round_trip(tmp_path):
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).to(torch.bfloat16)
    save(model.state_dict(), tmp_path / "model.tgckpt")
    tg.manual_seed(1)
    other = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).to(torch.bfloat16)
    other.load_state_dict(load(tmp_path / "model.tgckpt"))
    x = tg.randn(5, 4, dtype=torch.bfloat16)
    assert same_bits(model(x).torch(), other(x).torch())


def test_mismatched_checkpoint_names_the_keys(tmp_path):
    save(nn.Linear(4, 3).state_dict(), tmp_path / "linear.tgckpt")
    model = nn.Sequential(nn.Linear(4, 3))
    with pytest.raises(nn.StateDictError) as info:
        model.load_state_dict(load(tmp_path / "linear.tgckpt"))
    assert '"0.weight", "0.bias"' in str(info.value) and '"weight", "bias"' in str(info.value)
    with pytest.raises(nn.StateDictError, match=r"size mismatch for weight.*\[3, 4\].*\[3, 5\]"):
        nn.Linear(5, 3).load_state_dict(load(tmp_path / "linear.tgckpt"))


# --- atomic writes ----------------------------------------------------------------------------


@pytest.mark.parametrize("interruption", [RuntimeError("disk on fire"), KeyboardInterrupt()],
                         ids=["exception", "ctrl-c"])
def test_interrupted_save_keeps_the_old_file(tmp_path, monkeypatch, interruption):
    path = tmp_path / "ckpt.tgckpt"
    old = {"w": tg.ones(3), "step": 1}
    save(old, path)
    before = path.read_bytes()

    calls = []
    real_write = serialization._write_tensor

    def failing_write(out, array):
        calls.append(1)
        real_write(out, array)  # part of the new file is on disk when the failure comes
        if len(calls) == 2:
            raise interruption

    monkeypatch.setattr(serialization, "_write_tensor", failing_write)
    with pytest.raises(type(interruption)):
        save({"w": tg.zeros(3), "v": tg.zeros(1000), "x": tg.zeros(2), "step": 2}, path)
    assert len(calls) == 2
    assert path.read_bytes() == before
    assert load(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.tgckpt"]  # no temporary left


def test_save_fsyncs_then_renames(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync")
        real_fsync(fd)

    def replace(src, dst):
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    save({"a": tg.ones(2)}, tmp_path / "a.tgckpt")
    assert events[:2] == ["fsync", "rename"]


# --- bad files --------------------------------------------------------------------------------


@pytest.fixture
def good_file(tmp_path):
    path = tmp_path / "good.tgckpt"
    save({"weight": tg.randn(20, 30), "bias": tg.randn(30), "step": 7}, path)
    return path


@pytest.mark.parametrize("keep", ["4", "12", "header", "data", "trailer"])
def test_truncated_file_raises_clear_error(good_file, keep):
    raw = good_file.read_bytes()
    (length,) = struct.unpack("<Q", raw[8:16])
    cut = {"4": 4, "12": 12, "header": 16 + length // 2, "data": len(raw) - 500,
           "trailer": len(raw) - 3}[keep]
    good_file.write_bytes(raw[:cut])
    with pytest.raises(CheckpointError, match="truncated"):
        load(good_file)


def test_corrupt_data_names_the_tensor(good_file):
    raw = bytearray(good_file.read_bytes())
    raw[-20] ^= 0x01  # inside the last tensor's bytes
    good_file.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=r"data of tensor /bias fails its CRC-32"):
        load(good_file)


def test_not_a_checkpoint_and_bad_header(tmp_path, good_file):
    other = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, other)
    with pytest.raises(CheckpointError, match="not a tritongrad checkpoint"):
        load(other)
    raw = bytearray(good_file.read_bytes())
    raw[20] = 0xFF  # break the JSON header
    good_file.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="corrupt: unreadable header"):
        load(good_file)
    newer = bytearray(serialization.dumps({}))
    newer[7] = 2
    with pytest.raises(CheckpointError, match="format version 2"):
        serialization.load(bytes(newer))


# --- resuming training ------------------------------------------------------------------------


def make_training(seed: int):
    from tritongrad import optim

    tg.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    scheduler = optim.StepLR(optimizer, step_size=2, gamma=0.5)
    return model, optimizer, scheduler


def train_steps(model, optimizer, scheduler, data) -> list:
    losses = []
    for x, y in data:
        optimizer.zero_grad()
        loss = nn.CrossEntropyLoss()(model(x), y)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    return losses


def test_save_load_round_trip_resumes_training_exactly(tmp_path):
    """Model, optimizer, scheduler and RNG state (Dropout's masks) restore bit for bit."""
    generator = torch.Generator().manual_seed(0)
    data = [(tg.from_torch(torch.randn(5, 6, generator=generator).to(DEVICE)),
             tg.from_torch(torch.randint(0, 3, (5,), generator=generator).to(DEVICE)))
            for _ in range(6)]
    model, optimizer, scheduler = make_training(seed=0)
    train_steps(model, optimizer, scheduler, data[:3])
    path = tmp_path / "run.tgckpt"
    save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
          "scheduler": scheduler.state_dict(), "rng": tg.get_rng_state(), "step": 3}, path)
    expected = train_steps(model, optimizer, scheduler, data[3:])

    def resume(restore_rng: bool):
        fresh, fresh_optimizer, fresh_scheduler = make_training(seed=123)
        checkpoint = load(path)
        fresh.load_state_dict(checkpoint["model"])
        fresh_optimizer.load_state_dict(checkpoint["optimizer"])
        fresh_scheduler.load_state_dict(checkpoint["scheduler"])
        if restore_rng:
            tg.set_rng_state(checkpoint["rng"])
        assert checkpoint["step"] == 3
        return fresh, train_steps(fresh, fresh_optimizer, fresh_scheduler, data[3:])

    resumed_model, resumed = resume(restore_rng=True)
    assert resumed == expected  # exactly, step for step
    for (name, p), (_, q) in zip(resumed_model.named_parameters(), model.named_parameters()):
        assert same_bits(p.torch(), q.torch()), name
    _, without_rng = resume(restore_rng=False)
    assert without_rng != expected  # other Dropout masks: the RNG state is what made it exact
