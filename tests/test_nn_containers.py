"""tg.nn.ModuleList/ModuleDict/ParameterList/ParameterDict against torch.nn's: the same
edits give the same names, state-dict keys and repr; a torch checkpoint loads and the
forward matches; the tree walks (train/eval, zero_grad, to) reach every entry. Also
tg.nn.utils.clip_grad_value_ and parameters_to_vector/vector_to_parameters against torch."""

from collections import OrderedDict

import pytest
import torch

import tritongrad as tg
from tritongrad import nn
from tritongrad.testing import assert_close
from tests.test_nn import to_torch_state

DEVICE = tg.device()
FLOAT_DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def both(build):
    """The same structure built from tg.nn and from torch.nn (on tritongrad's device)."""
    return build(nn, tg.ones), build(torch.nn, lambda *s: torch.ones(*s)).to(DEVICE)


def names(module):
    return [name for name, _ in module.named_parameters()]


def assert_same_tree(ours, theirs):
    assert names(ours) == names(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert repr(ours) == repr(theirs)


def make_net(m, ones):
    class Net(m.Module):
        def __init__(self):
            super().__init__()
            self.blocks = m.ModuleList([m.Linear(5, 5) for _ in range(3)])
            self.blocks.append(m.ReLU())
            self.heads = m.ModuleDict({"cls": m.Linear(5, 3), "aux": m.Linear(5, 1, bias=False)})
            self.scales = m.ParameterList([m.Parameter(ones(3)), ones(1)])
            self.offsets = m.ParameterDict({"z": ones(3), "a": ones(1)})

        def forward(self, x):
            for block in self.blocks[:-1]:
                x = self.blocks[-1](block(x))
            cls = self.heads["cls"](x) * self.scales[0] + self.offsets["z"]
            aux = self.heads["aux"](x) * self.scales[1] + self.offsets["a"]
            return cls, aux

    return Net()


def test_names_state_dict_and_repr_equal_torch():
    ours, theirs = both(make_net)
    assert_same_tree(ours, theirs)
    assert names(ours)[:2] == ["blocks.0.weight", "blocks.0.bias"]
    assert "scales.1" in names(ours) and "offsets.a" in names(ours)
    assert isinstance(ours.scales[1], nn.Parameter)  # a plain tensor became a Parameter
    assert ours.scales[1].requires_grad
    assert "(0-2): 3 x Linear(in_features=5, out_features=5, bias=True)" in repr(ours)


def test_torch_checkpoint_loads_and_forward_and_grads_match():
    ours, theirs = both(make_net)
    with torch.no_grad():
        for p in theirs.parameters():
            p.uniform_(-0.5, 0.5)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(4, 5)
    out, ref = ours(tg.from_torch(x.clone())), theirs(x)
    for o, r in zip(out, ref):
        assert_close(o, r, dtype=torch.float32)
    (out[0].sum() + out[1].sum()).backward()
    (ref[0].sum() + ref[1].sum()).backward()
    for (name, p), tp in zip(ours.named_parameters(), theirs.parameters()):
        assert_close(p.grad, tp.grad, dtype=torch.float32, name=name)
    # and back: ours saved, torch loads it
    theirs.load_state_dict(to_torch_state(ours))


def test_tree_walks_reach_every_entry():
    ours, _ = both(make_net)
    ours.eval()
    assert not any(m.training for m in ours.modules())
    ours.train()
    assert all(m.training for m in ours.modules())
    out = ours(tg.randn(2, 5))
    (out[0].sum() + out[1].sum()).backward()
    params = list(ours.parameters())
    assert len(params) == 3 * 2 + 2 + 1 + 2 + 2 and all(p.grad is not None for p in params)
    ours.zero_grad()
    assert all(p.grad is None for p in ours.parameters())
    ours.to(torch.float16)
    assert all(p.dtype == torch.float16 for p in ours.parameters())
    assert all(p is q for p, q in zip(params, ours.parameters()))  # the same objects


def test_module_list_edits_as_torch():
    ours, theirs = both(lambda m, _: m.ModuleList([m.Linear(2, 2), m.Tanh(), m.Linear(2, 3)]))
    for module_list, m in ((ours, nn), (theirs, torch.nn)):
        module_list.insert(1, m.Linear(2, 4))
        module_list.extend([m.ReLU(), m.Linear(3, 1)])
        module_list += [m.Sigmoid()]
        module_list[0] = m.Linear(2, 5)
        del module_list[2]
        popped = module_list.pop(-2)
        assert type(popped).__name__ == "Linear"
        del module_list[::3]
    theirs.to(DEVICE)
    assert_same_tree(ours, theirs)
    assert [type(x).__name__ for x in ours] == [type(x).__name__ for x in theirs]
    assert len(ours) == len(theirs) == 3
    assert isinstance(ours[1:], nn.ModuleList) and len(ours[1:]) == 2
    assert ours[-1] is list(ours)[-1]
    joined = ours + ours[:1]
    assert isinstance(joined, nn.ModuleList) and len(joined) == 4 and joined[3] is ours[0]
    assert names(joined) == names(theirs + theirs[:1])
    with pytest.raises(IndexError, match="index 3 is out of range"):
        ours[3]
    with pytest.raises(TypeError):
        ours["0"]
    with pytest.raises(TypeError, match="extend should be called with an iterable"):
        ours.extend(nn.ReLU())
    assert repr(nn.ModuleList()) == repr(torch.nn.ModuleList()) == "ModuleList()"
    with pytest.raises(NotImplementedError):
        ours(tg.ones(2))


def test_module_dict_as_torch():
    ours, theirs = both(lambda m, _: m.ModuleDict({"b": m.Linear(2, 2), "a": m.ReLU()}))
    for module_dict, m in ((ours, nn), (theirs, torch.nn)):
        module_dict["c"] = m.Linear(2, 1)
        module_dict.update([("d", m.Tanh()), ("b", m.Linear(2, 7))])
        module_dict.update(OrderedDict(e=m.Linear(1, 1)))
        assert type(module_dict.pop("a")).__name__ == "ReLU"
        del module_dict["d"]
    theirs.to(DEVICE)
    assert_same_tree(ours, theirs)
    assert list(ours.keys()) == list(theirs.keys()) == ["b", "c", "e"]
    assert list(ours) == ["b", "c", "e"] and len(ours) == 3
    assert "c" in ours and "a" not in ours
    assert [type(v).__name__ for v in ours.values()] == ["Linear"] * 3
    assert [k for k, _ in ours.items()] == ["b", "c", "e"]
    assert ours["b"].out_features == 7
    with pytest.raises(KeyError, match="attribute 'keys' already exists"):
        ours["keys"] = nn.ReLU()
    with pytest.raises(TypeError, match="should be Iterable"):
        ours.update([1])
    with pytest.raises(ValueError, match="has length 3; 2 is required"):
        ours.update([("x", nn.ReLU(), 1)])
    ours.clear()
    assert len(ours) == 0 and names(ours) == []


def test_parameter_list_as_torch():
    ours = nn.ParameterList([tg.zeros(2), nn.Parameter(tg.ones(3, 1), requires_grad=False)])
    theirs = torch.nn.ParameterList([torch.zeros(2),
                                     torch.nn.Parameter(torch.ones(3, 1), requires_grad=False)])
    for plist, ones in ((ours, tg.ones), (theirs, torch.ones)):
        plist.append(ones(4))
        plist.extend([ones(1, 2)])
        plist += [ones(5)]
        plist[0] = ones(6)
        plist.append("not a tensor")
    assert_same_tree(ours, theirs)
    assert len(ours) == 6 and ours[-1] == "not a tensor"
    assert [tuple(p.shape) for p in ours[:-1]] == [tuple(p.shape) for p in theirs[:-1]]
    assert not ours[1].requires_grad
    part = ours[1:5:2]
    assert isinstance(part, nn.ParameterList) and names(part) == ["0", "1"]
    assert part[1] is ours[3]
    with pytest.raises(TypeError, match="should be called with an iterable"):
        ours.extend(tg.ones(2))
    with pytest.raises(IndexError):
        ours[6]
    with pytest.raises(RuntimeError, match="should not be called"):
        ours()
    ours.half()
    assert ours[0].dtype == torch.float16


def test_parameter_dict_as_torch():
    ours = nn.ParameterDict({"w": tg.ones(2), "b": tg.zeros(1)})  # a plain dict: sorted
    theirs = torch.nn.ParameterDict({"w": torch.ones(2), "b": torch.zeros(1)})
    for pdict, ones in ((ours, tg.ones), (theirs, torch.ones)):
        pdict["c"] = ones(3, 2)
        pdict.update([("a", ones(1)), ("w", ones(4))])
        pdict.setdefault("d", ones(2))
        assert tuple(pdict.pop("b").shape) == (1,)
        assert pdict.popitem()[0] == "d"
    assert_same_tree(ours, theirs)
    assert list(ours) == list(theirs) == ["w", "c", "a"]
    assert list(reversed(ours)) == ["a", "c", "w"]
    assert "c" in ours and ours.get("zz", 5) == 5
    assert [tuple(v.shape) for v in ours.values()] == [(4,), (3, 2), (1,)]
    assert ours.copy()["c"] is ours["c"]
    merged = ours | nn.ParameterDict(OrderedDict(e=tg.ones(1)))
    assert list(merged) == ["w", "c", "a", "e"] and len(ours) == 3
    assert list(ours.fromkeys(["x", "y"])) == ["x", "y"]
    with pytest.raises(TypeError, match="not a string"):
        ours[1] = tg.ones(1)
    with pytest.raises(KeyError, match="attribute 'keys' already exists"):
        ours["keys"] = tg.ones(1)
    # torch's register_parameter: a dotted or empty name would make an unloadable state_dict
    with pytest.raises(KeyError, match=r'contain "\."'):
        ours["a.b"] = tg.ones(1)
    with pytest.raises(KeyError, match="be empty string"):
        ours[""] = tg.ones(1)
    assert list(ours) == ["w", "c", "a"]
    ours.clear()
    assert len(ours) == 0 and names(ours) == []


def test_sequential_keeps_fusing_inside_a_module_list():
    # Sequential's Linear+ReLU fusion is untouched by being held in a container
    ours = nn.ModuleList([nn.Sequential(nn.Linear(3, 4), nn.ReLU())])
    theirs = torch.nn.ModuleList([torch.nn.Sequential(torch.nn.Linear(3, 4),
                                                      torch.nn.ReLU())]).to(DEVICE)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 3)
    assert_close(ours[0](tg.from_torch(x.clone())), theirs[0](x), dtype=torch.float32)
    assert names(ours) == ["0.0.weight", "0.0.bias"]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_clip_grad_value_matches_torch(dtype):
    grads = [torch.randn(7, 3).to(dtype) * 3, torch.randn(5).to(dtype),
             torch.randn(4, 6).to(dtype).t()]  # a transposed (non-contiguous) grad
    grads[1][2] = float("nan")
    ours = [nn.Parameter(tg.zeros(*g.shape, dtype=dtype)) for g in grads]
    theirs = [torch.nn.Parameter(torch.zeros(g.shape, dtype=dtype)) for g in grads]
    for p, t, g in zip(ours, theirs, grads):
        p.grad, t.grad = tg.from_torch(g.clone()), g.clone()
    skipped = nn.Parameter(tg.zeros(2))  # no grad: skipped
    assert nn.utils.clip_grad_value_(ours + [skipped], 1.25) is None
    torch.nn.utils.clip_grad_value_(theirs, 1.25, foreach=False)
    for p, t in zip(ours, theirs):
        assert_close(p.grad, t.grad, dtype=dtype)  # NaN where torch has NaN
        torch.testing.assert_close(p.grad.torch(), t.grad, rtol=0, atol=0, equal_nan=True)
    assert skipped.grad is None
    nn.utils.clip_grad_value_(ours[0], 0.5)  # a single tensor
    assert float(tg.amax(ours[0].grad.abs())) == 0.5


def test_parameters_vector_round_trip_as_torch():
    ours, theirs = both(lambda m, _: m.Sequential(m.Linear(3, 4), m.Linear(4, 2)))
    ours.load_state_dict(theirs.state_dict())
    vec = nn.utils.parameters_to_vector(ours.parameters())
    tvec = torch.nn.utils.parameters_to_vector(theirs.parameters())
    assert_close(vec, tvec.detach(), dtype=torch.float32)
    (vec * tg.arange(vec.numel()).float()).sum().backward()
    (tvec * torch.arange(tvec.numel()).float()).sum().backward()
    for p, t in zip(ours.parameters(), theirs.parameters()):
        assert_close(p.grad, t.grad, dtype=torch.float32)
    new = torch.randn(vec.numel() + 3)  # a longer vector is fine, as torch's
    target = tg.from_torch(new.clone())
    nn.utils.vector_to_parameters(target, ours.parameters())
    torch.nn.utils.vector_to_parameters(new, theirs.parameters())
    for p, t in zip(ours.parameters(), theirs.parameters()):
        assert_close(p, t.detach(), dtype=torch.float32)
    target.fill_(2.0)  # the parameters are views of the vector, as torch's
    assert float(tg.amin(ours[0].weight)) == 2.0
    with pytest.raises(TypeError, match="expected Tensor"):
        nn.utils.vector_to_parameters([1.0], ours.parameters())
