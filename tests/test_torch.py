"""mfc.backends.torch: the same program on PyTorch. Every op's value and gradient (torch's
autograd) equal mfc's own; whole runs of every spec, optimizer and sampling equal the
numpy backend's losses; the model file it saves is any other; missing devices say so."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import CASES, case_ids, op_spec
import mfc
from mfc.backends import generated
from mfc.ops import LEAF_KINDS, OPS
from mfc.settings import OPTIMIZERS, SAMPLINGS

torch = pytest.importorskip("torch")
from mfc.backends import torch as torch_backend  # noqa: E402  (after the skip)

torch.set_num_threads(1)  # these networks are small: threads only wait for each other

SPECS = sorted(Path(__file__).parent.parent.joinpath("specs").glob("*.mf"))
SPEC = {p.stem: p for p in SPECS}
# specs/regressor.mf is chaotic (unstandardised targets, a large step, resampled
# batches): a change of 1e-15 in its params grows to 2% by epoch 6 on numpy itself
# (test_the_regressor_is_chaotic_on_numpy_alone), so two engines that round differently
# cannot agree to 1e-9 over its 100 epochs. It is compared over 2 whole epochs, and
# step by step over 25 (test_torch_steps_equal_numpy_steps_...).
EPOCHS = {"regressor": 2}


def runs(spec, **settings):
    """(numpy's losses, torch's losses, numpy's model, torch's model)."""
    models = {b: mfc.load(spec, backend=b) for b in ("numpy", "torch")}
    settings.setdefault("epochs", EPOCHS.get(Path(spec).stem, models["numpy"].settings.epochs))
    epochs = {b: [] for b in models}
    for backend, model in models.items():
        model.train(on_epoch=epochs[backend].append, **settings)
    return epochs["numpy"], epochs["torch"], models["numpy"], models["torch"]


def assert_same(a, b, rtol=1e-9):
    for ea, eb in zip(a, b, strict=True):
        for field in ("loss", "validation_loss", "accuracy"):
            va, vb = getattr(ea, field), getattr(eb, field)
            assert (va is None) == (vb is None)
            if va is not None:
                assert vb == pytest.approx(va, rel=rtol, abs=0), (field, ea, eb)


# ---------------------------------------------------------------- the lowering table


def test_every_op_has_a_torch_lowering():
    missing = [name for name, op in OPS.items()
               if op.kind not in LEAF_KINDS and type(op) not in torch_backend.LOWERINGS]
    assert missing == [], "add a row to mfc.backends.torch.LOWERINGS for each new op"


@pytest.mark.parametrize("name,index", case_ids())
def test_every_op_computes_what_numpy_computes_and_autograd_gives_its_gradient(name, index):
    text, params, feed, value = op_spec(name, CASES[name][index], np.random.default_rng(index))
    models = {b: mfc.compile(text, backend=b) for b in ("numpy", "torch")}
    for model in models.values():
        for key, array in params.items():
            model.params[key] = array
    values = {b: m.forward(feed) for b, m in models.items()}
    np.testing.assert_allclose(values["torch"]["v"], value, rtol=1e-12, atol=1e-300)
    assert values["torch"].keys() == values["numpy"].keys()
    grads = {b: m.gradients(feed) for b, m in models.items()}
    for key in params:
        np.testing.assert_allclose(grads["torch"][key], grads["numpy"][key], rtol=1e-9,
                                   atol=1e-12, err_msg=f"{name} case {index}: d/d{key}")


def test_a_param_exponent_gets_mfcs_gradient_where_the_base_is_negative():
    model = mfc.compile("a = Param(3)\nb = Param(1, init=2)\ncost = Sum(a ** b)\n",
                        backend="torch")
    model.params["a"] = [-2.0, 0.0, 3.0]
    grads = model.gradients()
    np.testing.assert_allclose(grads["b"], [9.0 * np.log(3.0)])  # 0 where a ≤ 0, not NaN
    np.testing.assert_allclose(grads["a"], [-4.0, 0.0, 6.0])


# ---------------------------------------------------------------- whole runs


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.name)
def test_every_spec_trains_to_the_numpy_backends_losses(spec):
    numpy_epochs, torch_epochs, numpy_model, torch_model = runs(spec)
    assert_same(numpy_epochs, torch_epochs)
    for name, value in numpy_model.params.items():  # relative to the param's largest
        np.testing.assert_allclose(torch_model.params[name], value, rtol=1e-7,
                                   atol=1e-7 * np.max(np.abs(value)))


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_every_optimizer_and_sampling_equals_numpy(optimizer, sampling):
    numpy_epochs, torch_epochs, _, _ = runs(SPEC["iris"], optimizer=optimizer,
                                            sampling=sampling, epochs=3)
    assert_same(numpy_epochs, torch_epochs)


def test_other_settings_equal_numpy():
    settings = dict(epochs=3, batch_size=1, validation=0.3, seed=4)
    assert_same(*runs(SPEC["iris"], **settings)[:2])


def test_dropout_draws_its_noise_as_numpy_does():
    text = SPEC["iris"].read_text().replace("h = Tanh(Linear(X, W1, b1))",
                                            "h = Dropout(Tanh(Linear(X, W1, b1)), 0.3)")
    models = {b: mfc.compile(text, backend=b) for b in ("numpy", "torch")}
    epochs = {b: [] for b in models}
    for backend, model in models.items():
        model.train(on_epoch=epochs[backend].append, epochs=4)
    assert_same(epochs["numpy"], epochs["torch"])
    assert epochs["torch"][0].loss != runs(SPEC["iris"], epochs=1)[1][0].loss  # it dropped


def test_the_regressor_is_chaotic_on_numpy_alone():
    """Why specs/regressor.mf is compared over 2 epochs: numpy against itself, from
    params 1e-15 apart, is 1e-2 apart within 10 epochs."""
    a, b = (mfc.load(SPEC["regressor"]) for _ in range(2))
    theta = b.network().theta
    theta *= 1 + 1e-15 * np.random.default_rng(0).standard_normal(theta.shape)
    losses_a, losses_b = np.array(a.train(epochs=10)), np.array(b.train(epochs=10))
    assert np.max(np.abs(losses_a - losses_b) / losses_a) > 1e-3


def test_torch_steps_equal_numpy_steps_along_the_regressor_run():
    """Every step of a quarter of the regressor's run (25 epochs, well past where it
    parts from itself), from the same params and batch: the same loss and gradients to
    1e-9 (numpy's update carries both on)."""
    from mfc.train.loop import Trainer

    models = {b: mfc.load(SPEC["regressor"], backend=b) for b in ("numpy", "torch")}
    settings, prepared = models["numpy"]._prepared({}, None)
    numpy_net, torch_net = (models[b].network() for b in ("numpy", "torch"))
    trainer = Trainer(numpy_net, settings, prepared)
    torch_slots = {n.name: n for n in torch_net.inputs}
    for _ in range(25 * trainer.steps):
        trainer.sample()
        for slot in trainer.sample.nodes:  # numpy's slots: X with a column of ones
            torch_slots[slot.name].value = slot.value[:, :-1] \
                if isinstance(slot, generated.WithOnes) else slot.value
        torch_net.theta[...] = numpy_net.theta
        numpy_net.ready()
        loss = numpy_net.loss_and_gradients()
        assert torch_net.loss_and_gradients() == pytest.approx(loss, rel=1e-9)
        np.testing.assert_allclose(torch_net.grad, numpy_net.grad, rtol=1e-9, atol=1e-9)
        trainer.optimizer.update()


def test_float32_trains_close_to_numpy():
    numpy_epochs, torch_epochs, _, _ = runs(SPEC["iris"], dtype="float32", epochs=3)
    assert_same(numpy_epochs, torch_epochs, rtol=1e-4)


def test_params_start_as_numpy_initialises_them():
    for spec in SPECS:
        a, b = mfc.load(spec), mfc.load(spec, backend="torch")
        for name, value in a.params.items():
            np.testing.assert_array_equal(b.params[name], value)


def test_the_module_is_a_torch_module_with_the_specs_param_names():
    model = mfc.load(SPEC["iris"], backend="torch")
    module = model.network().module
    assert isinstance(module, torch.nn.Module)
    assert [name for name, _ in module.named_parameters()] == ["W1", "b1", "W2", "b2"]
    module.W1.data[0, 0] = 5.0  # the params are the network's own memory, on the CPU
    assert model.params["W1"][0, 0] == 5.0


def test_a_torch_trained_model_file_predicts_on_numpy(tmp_path):
    trained = mfc.load(SPEC["iris"], backend="torch")
    trained.train(epochs=2)
    trained.save(tmp_path / "m.npz")
    loaded = mfc.load(SPEC["iris"])
    loaded.restore(tmp_path / "m.npz")
    X = np.random.default_rng(0).normal(5, 2, (9, 4))
    np.testing.assert_array_equal(loaded.predict(X), trained.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), trained.predict_proba(X), rtol=1e-12)


def test_predictions_and_values_equal_numpys():
    models = {b: mfc.load(SPEC["breast_cancer"], backend=b) for b in ("numpy", "torch")}
    for model in models.values():
        model.train(epochs=1)
    X = np.random.default_rng(1).normal(0, 1, (7, 30)) * models["numpy"].preprocessing.std \
        + models["numpy"].preprocessing.mean
    np.testing.assert_array_equal(models["torch"].predict(X), models["numpy"].predict(X))
    feed = {"X": np.ones((3, 30))}
    assert models["torch"].forward(feed).keys() == models["numpy"].forward(feed).keys()


# ---------------------------------------------------------------- devices


def test_a_missing_device_is_one_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(torch_backend.Unavailable, match="no CUDA GPU"):
        mfc.load(SPEC["iris"], backend="torch", device="cuda").params
    with pytest.raises(torch_backend.Unavailable, match="unknown device 'tpu'"):
        mfc.load(SPEC["iris"], backend="torch", device="tpu").params


def test_options_of_another_backend_are_refused():
    with pytest.raises(ValueError, match="numpy backend takes no option 'device'"):
        mfc.load(SPEC["iris"], device="cpu")


def test_params_copied_to_and_from_a_device_train_as_shared_ones(monkeypatch):
    """What a GPU does (params copied to the device before each step, gradients back
    after it), tried on the CPU: the same losses and params as numpy."""
    monkeypatch.setattr(torch_backend, "shares_memory", lambda device: False)
    numpy_epochs, torch_epochs, numpy_model, torch_model = runs(SPEC["iris"], epochs=3)
    assert not torch_model.network().shared
    assert_same(numpy_epochs, torch_epochs)
    for name, value in numpy_model.params.items():
        np.testing.assert_allclose(torch_model.params[name], value, rtol=1e-9)
    X = np.random.default_rng(0).normal(5, 2, (4, 4))
    np.testing.assert_array_equal(torch_model.predict(X), numpy_model.predict(X))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
def test_cuda_trains_as_the_cpu_does():  # pragma: no cover - no GPU here
    numpy_epochs = runs(SPEC["iris"], epochs=2)[0]
    model = mfc.load(SPEC["iris"], backend="torch", device="cuda")
    epochs = []
    model.train(on_epoch=epochs.append, epochs=2)
    assert_same(numpy_epochs, epochs, rtol=1e-9)


def test_a_program_with_outputs_replaced_still_lowers():
    """The backend reads only the program (a replaced one too: what the tests of the
    export build)."""
    model = mfc.load(SPEC["iris"])
    program = replace(model.program, outputs=("h",))
    network = torch_backend.lower(program)
    assert set(network.params) == {"W1", "b1", "W2", "b2"}
