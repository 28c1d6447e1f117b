"""tg.nn: the Module API against torch.nn's, Sequential's Linear+ReLU fusion, the
initialisers' statistics, Dropout against its mask, and the errors users see."""

import math
from collections import OrderedDict

import pytest
import torch

import tritongrad as tg
from tritongrad import nn
from tritongrad.autograd import function as autograd_function
from tritongrad.kernels._checks import ShapeError
from tritongrad.nn import functional as F
from tritongrad.ops.dropout import Dropout as DropoutFn
from tritongrad.testing import assert_close, assert_parity, reference_for

DEVICE = tg.device()


def torch_mlp(sizes=(6, 8, 4, 3)):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers).to(DEVICE)


def tg_mlp(sizes=(6, 8, 4, 3)):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def to_torch_state(model):
    return {k: v.torch().clone() for k, v in model.state_dict().items()}


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 5), nn.ReLU())
        self.head = nn.Linear(5, 2, bias=False)
        self.scale = nn.Parameter(tg.ones(2))
        self.register_buffer("steps", tg.zeros(1))
        self.register_buffer("scratch", tg.zeros(3), persistent=False)

    def forward(self, x):
        return self.head(self.body(x)) * self.scale


class TorchBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.ReLU())
        self.head = torch.nn.Linear(5, 2, bias=False)
        self.scale = torch.nn.Parameter(torch.ones(2))
        self.register_buffer("steps", torch.zeros(1))
        self.register_buffer("scratch", torch.zeros(3), persistent=False)

    def forward(self, x):
        return self.head(self.body(x)) * self.scale


# --- Module API -------------------------------------------------------------------------------


def test_module_tree_matches_torch():
    ours, theirs = Block(), TorchBlock()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert list(ours.state_dict()) == list(theirs.state_dict())  # scratch is not persistent
    assert len(list(ours.children())) == 2 and len(list(ours.modules())) == 5
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in ours.parameters())
    assert repr(ours) == repr(theirs).replace("TorchBlock", "Block")


def test_repr_matches_torch():
    ours = nn.Sequential(nn.Linear(10, 5), nn.ReLU(), nn.Dropout(0.25), nn.Flatten(),
                         nn.Linear(5, 1, bias=False))
    theirs = torch.nn.Sequential(torch.nn.Linear(10, 5), torch.nn.ReLU(), torch.nn.Dropout(0.25),
                                 torch.nn.Flatten(), torch.nn.Linear(5, 1, bias=False))
    assert repr(ours) == repr(theirs)
    assert repr(nn.MSELoss()) == repr(torch.nn.MSELoss())
    assert repr(nn.ReLU(inplace=True)) == repr(torch.nn.ReLU(inplace=True))


def test_shared_parameter_is_listed_once():
    layer = nn.Linear(3, 3)
    model = nn.Sequential(layer, nn.ReLU(), layer)
    assert len(list(model.parameters())) == 2
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_train_eval_and_zero_grad():
    model = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5))
    assert model.training and model[1].training
    assert model.eval() is model and not model[1].training
    model.train()
    assert model[1].training
    x = tg.randn(2, 4)
    model.eval()
    model(x).sum().backward()
    weight = model[0].weight
    assert weight.grad is not None
    model.zero_grad(set_to_none=False)
    assert weight.grad is not None and float(weight.grad.torch().abs().sum()) == 0.0
    model.zero_grad()
    assert weight.grad is None


def test_call_runs_forward_and_setattr_rules():
    model = Block()
    out = model(tg.randn(3, 4))
    assert tuple(out.shape) == (3, 2)
    with pytest.raises(TypeError, match="parameter 'scale'"):
        model.scale = tg.ones(2)  # a plain Tensor cannot replace a Parameter
    model.scale = None
    assert "scale" not in model.state_dict()
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        model.nothing  # noqa: B018


def test_state_dict_shares_storage_and_is_detached():
    layer = nn.Linear(3, 2)
    state = layer.state_dict()
    assert not state["weight"].requires_grad
    assert state["weight"].torch().data_ptr() == layer.weight.torch().data_ptr()
    assert layer.state_dict(keep_vars=True)["weight"] is layer.weight


def test_state_dict_round_trip_with_torch():
    """Our keys are torch's: a torch checkpoint loads into ours and back, one to one."""
    tg.manual_seed(1)
    theirs = torch_mlp()
    ours = tg_mlp()
    result = ours.load_state_dict(theirs.state_dict())  # torch tensors load directly
    assert result.missing_keys == [] and result.unexpected_keys == []
    x = torch.randn(5, 6, device=DEVICE)
    assert_close(ours(tg.from_torch(x)), theirs(x).detach(), dtype=torch.float32)

    again = tg_mlp()
    again.load_state_dict(ours.state_dict())
    for (k1, v1), (k2, v2) in zip(again.state_dict().items(), ours.state_dict().items()):
        assert k1 == k2 and torch.equal(v1.torch(), v2.torch())
    fresh_torch = torch_mlp()
    fresh_torch.load_state_dict(to_torch_state(again))
    assert_close(fresh_torch(x).detach(), theirs(x).detach(), dtype=torch.float32)


def test_load_state_dict_reports_every_problem():
    model = tg_mlp()
    state = dict(model.state_dict())
    del state["0.bias"]
    state["extra.weight"] = tg.zeros(2)
    state["2.weight"] = tg.zeros(5, 5)
    with pytest.raises(nn.StateDictError) as info:
        model.load_state_dict(state)
    message = str(info.value)
    assert 'Missing key(s) in state_dict: "0.bias"' in message
    assert 'Unexpected key(s) in state_dict: "extra.weight"' in message
    assert "size mismatch for 2.weight" in message and "[5, 5]" in message and "[4, 8]" in message
    assert isinstance(info.value, RuntimeError)


def test_load_state_dict_non_strict_and_dtypes():
    model = nn.Linear(3, 2)
    result = model.load_state_dict({"weight": tg.ones(2, 3), "junk": tg.zeros(1)}, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["junk"]
    assert float(model.weight.torch().sum()) == 6.0
    half = {"weight": tg.ones(2, 3, dtype=torch.float16), "bias": tg.zeros(2)}
    with pytest.raises(nn.StateDictError, match="dtype mismatch for weight"):
        model.load_state_dict(half)
    model.load_state_dict({"weight": tg.full((2, 3), 2.0, dtype=torch.float16),
                           "bias": tg.zeros(2)}, strict=False)  # non-strict casts
    assert model.weight.dtype == torch.float32 and float(model.weight.torch().sum()) == 12.0


def test_module_to_dtype_keeps_parameter_objects():
    model = tg_mlp()
    params = list(model.parameters())
    model.to(torch.bfloat16)
    assert list(model.parameters()) == params
    assert all(p.dtype == torch.bfloat16 for p in params)
    assert model(tg.randn(2, 6, dtype=torch.bfloat16)).dtype == torch.bfloat16


# --- Sequential fusion ------------------------------------------------------------------------


def record_functions(fn):
    seen = []

    def observer(node, args, outputs):
        seen.append(node.function_cls.__name__)

    autograd_function.apply_observers.append(observer)
    try:
        result = fn()
    finally:
        autograd_function.apply_observers.remove(observer)
    return seen, result


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_sequential_fuses_linear_relu_with_unfused_results(dtype):
    tg.manual_seed(3)
    model = tg_mlp((6, 8, 4, 3)).to(dtype)
    x = tg.randn(5, 6, dtype=dtype)

    def run(fuse):
        model.fuse = fuse
        model.zero_grad()
        seen, out = record_functions(lambda: model(x))
        out.backward(tg.ones(5, 3, dtype=dtype))
        return seen, out, [p.grad.torch().clone() for p in model.parameters()]

    fused_ops, fused_out, fused_grads = run(True)
    plain_ops, plain_out, plain_grads = run(False)
    assert fused_ops == ["LinearReLU", "LinearReLU", "Linear"]
    assert plain_ops == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert_close(fused_out, plain_out.torch(), dtype=dtype)
    for ours, ref in zip(fused_grads, plain_grads):
        assert_close(ours, ref, dtype=dtype)
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias",
                                        "4.weight", "4.bias"]


def test_sequential_fused_matches_torch_training_grads():
    tg.manual_seed(4)
    theirs = torch_mlp()
    ours = tg_mlp()
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(7, 6, device=DEVICE)
    theirs(x).square().sum().backward()
    out = ours(tg.from_torch(x))
    (out * out).sum().backward()
    for (name, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert_close(p.grad, q.grad, dtype=torch.float32, name=name)


def test_sequential_indexing_and_no_fusion_for_subclasses():
    class LoudReLU(nn.ReLU):
        def forward(self, x):
            return super().forward(x) * 2.0

    model = nn.Sequential(OrderedDict(fc=nn.Linear(3, 4), act=LoudReLU()))
    assert list(model.state_dict()) == ["fc.weight", "fc.bias"]
    seen, _ = record_functions(lambda: model(tg.randn(2, 3, requires_grad=True)))
    assert "LinearReLU" not in seen
    assert isinstance(model[0], nn.Linear) and isinstance(model[-1], LoudReLU)
    assert len(model[:1]) == 1 and len(model) == 2
    model.append(nn.Flatten())
    assert len(model) == 3


# --- initialisation ---------------------------------------------------------------------------


def stats(t):
    values = t.torch().double()
    return float(values.mean()), float(values.std()), float(values.min()), float(values.max())


def test_linear_default_init_matches_torch_bounds():
    tg.manual_seed(0)
    layer = nn.Linear(400, 300)
    bound = 1.0 / math.sqrt(400)  # kaiming_uniform_(a=sqrt(5)) -> 1/sqrt(fan_in)
    mean, std, low, high = stats(layer.weight)
    assert -bound <= low and high < bound
    assert abs(mean) < 0.01 * bound * 3 and abs(std - bound / math.sqrt(3)) < 0.01 * bound
    b_mean, b_std, b_low, b_high = stats(layer.bias)
    assert -bound <= b_low and b_high < bound and abs(b_std - bound / math.sqrt(3)) < 0.1 * bound
    assert not torch.equal(layer.weight.torch()[0], layer.weight.torch()[1])


def test_init_is_reproducible_under_manual_seed():
    tg.manual_seed(42)
    first = nn.Linear(5, 3).weight.torch().clone()
    tg.manual_seed(42)
    assert torch.equal(nn.Linear(5, 3).weight.torch(), first)
    tg.manual_seed(43)
    assert not torch.equal(nn.Linear(5, 3).weight.torch(), first)


@pytest.mark.parametrize("name,expected_std,uniform", [
    ("xavier_uniform_", math.sqrt(2.0 / (256 + 512)), True),
    ("xavier_normal_", math.sqrt(2.0 / (256 + 512)), False),
    ("kaiming_uniform_", math.sqrt(2.0) / math.sqrt(256), True),
    ("kaiming_normal_", math.sqrt(2.0) / math.sqrt(256), False),
    ("kaiming_normal_fan_out", math.sqrt(2.0) / math.sqrt(512), False),
])
def test_initialiser_statistics(name, expected_std, uniform):
    tg.manual_seed(0)
    w = tg.empty(512, 256)  # fan_in 256, fan_out 512; 131072 draws
    if name == "kaiming_normal_fan_out":
        nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    else:
        getattr(nn.init, name)(w)
    mean, std, low, high = stats(w)
    # std of the sample std is about std / sqrt(2n) = 0.2%; allow 2%
    assert abs(std - expected_std) < 0.02 * expected_std
    assert abs(mean) < 0.02 * expected_std
    if uniform:
        bound = math.sqrt(3.0) * expected_std
        assert -bound <= low and high <= bound and high > 0.99 * bound
    else:
        assert high > 3.5 * expected_std  # tails exist: not a clipped or uniform draw


def test_zeros_ones_constant_and_gain():
    w = tg.randn(3, 4)
    assert nn.init.zeros_(w) is w and float(w.torch().abs().sum()) == 0.0
    nn.init.ones_(w)
    assert torch.equal(w.torch(), torch.ones(3, 4))
    nn.init.constant_(w, 0.5)
    assert float(w.torch().sum()) == 6.0
    for nonlinearity, param in [("relu", None), ("tanh", None), ("leaky_relu", 0.2),
                                ("linear", None), ("selu", None)]:
        assert nn.init.calculate_gain(nonlinearity, param) == pytest.approx(
            torch.nn.init.calculate_gain(nonlinearity, param))
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        nn.init.xavier_uniform_(tg.empty(5))


def test_init_inside_no_grad_on_parameters_bumps_version():
    layer = nn.Linear(3, 3)
    before = layer.weight._version
    nn.init.xavier_uniform_(layer.weight)
    assert layer.weight._version > before and layer.weight.requires_grad


# --- Dropout ----------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_forward_and_backward_share_the_mask(p):
    tg.manual_seed(5)
    x_host = torch.rand(100, 101) + 0.5  # nonzero everywhere, so y == 0 exactly where dropped
    x = tg.from_torch(x_host.to(DEVICE).clone(), requires_grad=True)
    y = F.dropout(x, p, training=True)
    keep = y.torch() != 0
    kept_fraction = float(keep.double().mean())
    assert abs(kept_fraction - (1 - p)) < 0.02  # binomial sd <= 0.005 at n = 10100
    assert_close(y, torch.where(keep, x_host.to(DEVICE) / (1 - p), 0.0), dtype=torch.float32)
    grad_out = torch.randn(100, 101, device=DEVICE)
    y.backward(tg.from_torch(grad_out))
    assert_close(x.grad, torch.where(keep, grad_out / (1 - p), 0.0), dtype=torch.float32)


def test_dropout_masks_are_fresh_and_reproducible():
    x = tg.ones(64, 64)
    tg.manual_seed(11)
    first = F.dropout(x, 0.5).torch().clone()
    second = F.dropout(x, 0.5).torch().clone()
    assert not torch.equal(first, second)  # the generator advanced
    tg.manual_seed(11)
    assert torch.equal(F.dropout(x, 0.5).torch(), first)
    state = tg.get_rng_state()
    third = F.dropout(x, 0.5).torch().clone()
    tg.set_rng_state(state)
    assert torch.equal(F.dropout(x, 0.5).torch(), third)


def test_dropout_edge_cases_and_module():
    x = tg.randn(4, 5, requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    same = F.dropout(x, 0.0)
    assert torch.equal(same.torch(), x.torch())
    dropped = F.dropout(x, 1.0)
    assert float(dropped.torch().abs().sum()) == 0.0
    dropped.sum().backward()
    assert float(x.grad.torch().abs().sum()) == 0.0
    layer = nn.Dropout(0.5)
    layer.eval()
    assert layer(x) is x
    with pytest.raises(ValueError, match="between 0 and 1, but got 1.5"):
        nn.Dropout(1.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(x, -0.1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_dropout_function_parity_with_reference(dtype):
    """The Function is pure in (x, p, seed_offset); its reference reuses that mask."""
    seed_offset = torch.tensor([123, 4567], dtype=torch.int64, device=DEVICE)
    x = torch.randn(9, 33, device=DEVICE)
    assert_parity(DropoutFn.apply, reference_for(DropoutFn), x, 0.3, seed_offset, dtype=dtype)


def test_dropout_functional_uses_a_mask_the_reference_reproduces():
    tg.manual_seed(8)
    state = tg.get_rng_state().to(DEVICE)  # the [seed, offset] the next mask is drawn from
    x = torch.randn(6, 7, device=DEVICE)
    ours = F.dropout(tg.from_torch(x), 0.4)
    assert_close(ours, reference_for(DropoutFn)(x, 0.4, state), dtype=torch.float32)


# --- losses and errors ------------------------------------------------------------------------


CLASS_WEIGHT = [0.5, 2.0, 1.0, 3.0, 0.25]


@pytest.mark.parametrize("kwargs", [{}, {"reduction": "sum"}, {"reduction": "none"},
                                    {"ignore_index": 2, "label_smoothing": 0.1},
                                    {"weight": CLASS_WEIGHT},
                                    {"weight": CLASS_WEIGHT, "ignore_index": 2,
                                     "label_smoothing": 0.1, "reduction": "sum"}])
def test_cross_entropy_loss_module_options(kwargs):
    logits = torch.randn(6, 5, device=DEVICE, requires_grad=True)
    target = torch.tensor([0, 2, 4, 1, 2, 3], device=DEVICE)
    theirs_kwargs = dict(kwargs)
    if "weight" in kwargs:
        theirs_kwargs["weight"] = torch.tensor(kwargs["weight"], device=DEVICE)
        kwargs = {**kwargs, "weight": tg.from_torch(theirs_kwargs["weight"])}
    module = nn.CrossEntropyLoss(**kwargs)
    x = tg.from_torch(logits.detach(), requires_grad=True)
    ours = module(x, tg.from_torch(target))
    theirs = torch.nn.CrossEntropyLoss(**theirs_kwargs)(logits, target)
    assert_close(ours, theirs, dtype=torch.float32)
    ours.sum().backward()
    theirs.sum().backward()
    assert_close(x.grad, logits.grad, dtype=torch.float32)
    # the weight is a buffer, as torch's: saved and loaded with the module
    assert ("weight" in module.state_dict()) == ("weight" in kwargs)


def test_cross_entropy_weight_takes_no_gradient_and_legacy_flags():
    x, target = tg.randn(4, 3, requires_grad=True), tg.tensor([0, 1, 2, 1])
    with pytest.raises(tg.UnsupportedError, match="derivative for 'weight'"):
        F.cross_entropy(x, target, tg.ones(3, requires_grad=True))
    summed = F.cross_entropy(x, target, None, False)  # torch's size_average=False: 'sum'
    assert_close(summed, F.cross_entropy(x, target, reduction="sum"), dtype=torch.float32)


@pytest.mark.filterwarnings("ignore:size_average and reduce args will be deprecated")
@pytest.mark.parametrize("kwargs", [{}, {"reduction": "sum"}, {"reduction": "none"},
                                    {"size_average": False}])
def test_mse_loss_module_options(kwargs):
    a, b = torch.randn(4, 3, device=DEVICE), torch.randn(4, 3, device=DEVICE)
    ours = nn.MSELoss(**kwargs)(tg.from_torch(a), tg.from_torch(b))
    assert_close(ours, torch.nn.MSELoss(**kwargs)(a, b), dtype=torch.float32)


def test_linear_wrong_feature_size_names_both_sizes():
    layer = nn.Linear(10, 5)
    with pytest.raises(ShapeError, match=r"expected input with last dimension 10, got 7"):
        layer(tg.randn(4, 7))
    fused = nn.Sequential(nn.Linear(10, 5), nn.ReLU())
    with pytest.raises(ShapeError, match=r"last dimension 10, got 7 \(input shape \(4, 7\)\)"):
        fused(tg.randn(4, 7))


def test_loss_shape_mismatch_names_both_shapes():
    with pytest.raises(ShapeError, match=r"\(4, 3\).*\(4, 2\)"):
        nn.MSELoss()(tg.randn(4, 3), tg.randn(4, 2))
    with pytest.raises(ShapeError, match=r"batch_size \(4\).*batch_size \(3\)"):
        nn.CrossEntropyLoss()(tg.randn(4, 3), tg.tensor([0, 1, 2]))


def test_flatten_and_identity():
    x = tg.randn(2, 3, 4, requires_grad=True)
    out = nn.Flatten()(x)
    assert tuple(out.shape) == (2, 12)
    assert tuple(nn.Flatten(0, 1)(x).shape) == (6, 4)
    assert nn.Identity()(x) is x
