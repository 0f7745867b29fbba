"""Generation to a target (issue 11): the soft descriptors' gradients against finite
differences, strength 0 = unguided bit for bit, bad targets as one-line errors, and the shipped
demo model steered to a volume fraction between its classes."""
import json

import numpy as np
import pytest
import torch

from microdiff.cli import main
from microdiff.data.io import save_png
from microdiff.demo import shipped_model_dir
from microdiff.core.errors import UsageError
from microdiff.metrics.descriptors import radial_s2, two_point_radial, volume_fraction
from microdiff.metrics.segmentation import Segmentation
from microdiff.targets import (Descriptor, Targets, TwoPoint, VolumeFraction, hard_phase, make_targets, soft_phase)


def _field(seed=0, size=32):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2, size, size, generator=g, dtype=torch.float64)
    return torch.nn.functional.avg_pool2d(x[:, None], 5, 1, 2, count_include_pad=False)[:, 0]   # smooth, in (0, 1)


def _check_gradient(loss, x, n=12, eps=1e-6, seed=1):
    """d loss.sum() / dx at n random pixels against central differences (thresholds held fixed)."""
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(xg).sum(), xg)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, x.numel(), (n,), generator=g)
    for i in idx.tolist():
        e = torch.zeros(x.numel(), dtype=x.dtype)
        e[i] = eps
        e = e.view_as(x)
        fd = (loss(x + e).sum() - loss(x - e).sum()) / (2 * eps)
        assert float(fd) == pytest.approx(float(grad.flatten()[i]), rel=1e-4, abs=1e-7)


def test_soft_descriptors_have_the_gradients_of_finite_differences():
    x = _field()
    seg = "threshold:0.5"      # a fixed threshold: Otsu's is recomputed on the detached field and held fixed
    _check_gradient(VolumeFraction(segment=seg, value=0.4).loss, x)
    ref = _field(seed=3)
    s2 = TwoPoint(segment=seg, curve=tuple(two_point_radial(ref[:1], threshold=0.5)[0].tolist()))
    _check_gradient(s2.loss, x)


def test_correlation_descriptor_gradient_matches_finite_differences():
    x = _field(size=32)[:1]
    from microdiff.metrics.descriptors import correlations
    ref = correlations(_field(seed=5, size=32)[:1].float()).double().numpy().reshape(-1)
    t = Descriptor(array=ref.astype(np.float32), descriptor="correlations")
    _check_gradient(t.loss, x, n=4)


def test_soft_phase_is_the_hard_labels_in_the_limit_and_soft_s2_is_two_point_radial():
    x = _field()
    for spec in ("otsu", "multiotsu:3", "threshold:0.4,0.6"):
        seg = Segmentation.parse(spec)
        soft = sum(soft_phase(x, seg, k) for k in range(seg.phases))
        assert torch.allclose(soft, torch.ones_like(x))               # the phases partition every pixel
        hard = np.stack([seg.labels(im)[0] for im in x.numpy()])
        top = soft_phase(x, seg, seg.phases - 1).numpy()
        assert np.mean((top > 0.5) == (hard == seg.phases - 1)) > 0.99
    m = (x > 0.5).double()
    assert torch.equal(radial_s2(m), two_point_radial(m, threshold=0.5))
    vf = VolumeFraction(segment="otsu", value=0.3)
    assert vf.measure(x[0].numpy())["achieved"] == pytest.approx(float(volume_fraction(x[:1])[0]))


@pytest.fixture(scope="module")
def pipe():
    from microdiff.generate.pipeline import load_pipeline
    return load_pipeline(shipped_model_dir())


def test_strength_zero_is_unguided_bit_for_bit(pipe):
    kw = dict(num=2, steps=4, sampler="dpmpp", guidance=1.5, seed=3)
    plain = pipe(["FVC50"], **kw)
    zero = pipe(["FVC50"], targets={"vf": 0.55}, target_strength=0.0, **kw)
    assert torch.equal(plain, zero)
    steered = pipe(["FVC50"], targets={"vf": 0.55}, target_strength=3.0, **kw)
    assert not torch.equal(plain, steered)
    assert torch.equal(plain, pipe(["FVC50"], targets={"vf": 0.55, "mix": "all"}, target_strength=0.0, **kw))


def test_x0_descent_lowers_the_loss_and_stays_out_of_the_last_steps():
    """X0Guidance (the S2 steering): the predicted x_0 moves downhill on the loss, epsilon stays
    consistent with it, and below min_sigma (and at step 0) the output is untouched."""
    from microdiff.denoise.denoiser import GaussianDenoiser
    from microdiff.diffusion import Diffusion
    from microdiff.denoise.guidance import X0Guidance
    base = Diffusion.from_config("linear", 1000)
    den = GaussianDenoiser(base, 0.0, 0.5)
    ref = TwoPoint(curve=tuple(np.linspace(0.5, 0.25, 16)), tol=0.002)
    goal = Targets((ref,), 3.0)
    x = torch.randn(2, 1, 32, 32, dtype=torch.float64)
    y = torch.zeros(2, dtype=torch.long)
    for t, moved in ((600, True), (5, False)):
        tt = torch.full((2,), t)
        plain = den(x, tt, y)
        out = X0Guidance(den, goal.loss, 0.1, 6, min_sigma=0.2)(x, tt, y)
        if moved:
            assert (goal.loss(out.x0) < goal.loss(plain.x0)).all()
            assert torch.allclose(den.predict_x0(x, tt, out.eps), out.x0)
        else:
            assert torch.equal(out.x0, plain.x0) and torch.equal(out.eps, plain.eps)
    assert torch.equal(X0Guidance(den, goal.loss, 0.0)(x, tt, y).eps, plain.eps)
    assert isinstance(Targets((ref,), 3.0).guide(den), X0Guidance)


def test_samples_record_targets_and_what_they_achieved(pipe, tmp_path):
    from microdiff.generate import sample_to_folder
    ref = tmp_path / "ref.png"
    save_png(ref, _field(size=64)[0].numpy())
    res = sample_to_folder(pipe, tmp_path / "out", classes=["FVC40"], num=2, steps=3, sampler="dpmpp",
                           targets=[VolumeFraction(value=0.45), TwoPoint.from_image(ref, weight=0.5)], show_progress=False)
    rec = json.loads((res.out_dir / "FVC40" / "0001.json").read_text())
    vf, s2 = rec["targets"]
    assert vf["kind"] == "vf" and vf["value"] == 0.45 and 0 <= vf["achieved"] <= 1
    img = np.load(res.out_dir / "FVC40" / "0001.npy")
    assert vf["achieved"] == pytest.approx(float(volume_fraction(torch.from_numpy(img)[None])[0]), abs=1e-6)
    assert s2["kind"] == "s2" and s2["weight"] == 0.5 and s2["rmse"] >= 0 and s2["image"] == str(ref)
    run = json.loads((res.out_dir / "sample.json").read_text())
    assert run["targets"]["strength"] == 3.0 and len(run["targets"]["targets"]) == 2


def test_bad_targets_are_one_line_errors(tmp_path, capsys):
    big = tmp_path / "big.png"
    save_png(big, np.random.default_rng(0).random((128, 128)))
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((3, 4)))
    model = str(shipped_model_dir())
    cases = {("--target-vf", "1.5"): "--target-vf",
             ("--target-vf", "-0.1"): "--target-vf",
             ("--target-s2", str(big)): "set --size",
             ("--target-descriptor", str(wrong), "--descriptor", "correlations"): "wrong.npy",
             ("--target-descriptor", str(wrong)): "--descriptor",
             ("--target-vf", "0.5", "--target-weight", "s2=1"): "--target-weight",
             ("--target-vf", "0.5", "--target-phase", "2"): "--target-phase",
             ("--target-vf", "0.5", "--target-mix", "FVC70"): "FVC70",
             ("--target-mix", "FVC60"): "--target-vf",
             ("--target-vf", "0.5", "--target-mix", ","): "--target-mix"}
    for flags, word in cases.items():
        rc = main(["sample", "--model", model, "--num", "1", "--steps", "2", "--out", str(tmp_path / "o"),
                   "--overwrite", *flags])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and word in err and len(err.splitlines()) == 1, (flags, err)
    with pytest.raises(UsageError, match="^targets = 'vff': not a target"):
        make_targets({"vff": 0.5})
    with pytest.raises(UsageError, match="^targets.mix = 'all': a class mixture reaches targets.vf"):
        make_targets({"mix": "all"})


def test_bracket_weights_interpolate_the_measure_to_the_target():
    """Weights sum to one and the weighted value is the target: inside the candidates' range by
    the two that bracket it, beyond it extrapolated up to ``reach`` spacings, then clamped."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from microdiff.denoise.guidance import bracket_weights

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.floats(0.05, 0.95), min_size=2, max_size=5, unique=True), st.floats(0.0, 1.0))
    def check(values, target):
        v = torch.tensor(values, dtype=torch.float64)[:, None]
        w = bracket_weights(v, target, reach=1.0)[:, 0]
        assert float(w.sum()) == pytest.approx(1.0)
        assert int((w != 0).sum()) <= 2
        vs = sorted(values)
        lo_reach, hi_reach = vs[0] - (vs[1] - vs[0]), vs[-1] + (vs[-1] - vs[-2])
        expect = min(max(target, lo_reach), hi_reach)
        assert float((w * v[:, 0]).sum()) == pytest.approx(expect, abs=1e-9)
        inside = bracket_weights(v, target, reach=0.0)[:, 0]
        assert (inside >= 0).all() and float((inside * v[:, 0]).sum()) == pytest.approx(
            min(max(target, vs[0]), vs[-1]), abs=1e-9)
    check()
    assert torch.equal(bracket_weights(torch.tensor([[0.3, 0.7]]), 0.5), torch.ones(1, 2))


def test_class_mixture_meets_the_measure_and_one_class_is_the_plain_denoiser():
    """Classes whose predicted x_0 are constant fields of different levels: the mixture's x_0 has
    the target level in every sample; mixing the sample's own class only is the denoiser bit for bit."""
    from microdiff.denoise.denoiser import DenoiserBase
    from microdiff.diffusion import Diffusion
    from microdiff.denoise.guidance import ClassMixture

    class Levels(DenoiserBase):
        diffusion = Diffusion.from_config("linear", 1000)
        null_label = 3

        def __call__(self, x, t, y):
            level = (y.to(x.dtype) - 1) * 0.5                      # classes 0, 1, 2 -> x_0 = -0.5, 0, 0.5
            return self.output_from_x0(x, t, level.view(-1, 1, 1, 1).expand_as(x).clone())

    den = Levels()
    x, t = torch.randn(3, 1, 8, 8, dtype=torch.float64), torch.full((3,), 500)
    y = torch.tensor([0, 1, 2])
    mean = lambda x0: x0.flatten(1).mean(1)                       # noqa: E731
    for target in (-0.2, 0.1, 0.4):
        mix = ClassMixture(den, [0, 1, 2], mean, target, reach=0.0)
        out = mix(x, t, y)
        assert torch.allclose(mean(out.x0), torch.full((3,), target, dtype=torch.float64))
        assert torch.allclose(mix.last_weights.sum(1), torch.ones(3, dtype=torch.float64))
    assert mix.candidates.shape == (3, 3)
    alone = ClassMixture(den, [1], mean, 0.4)(x, t, torch.tensor([1, 1, 1]))
    plain = den(x, t, torch.tensor([1, 1, 1]))
    assert torch.equal(alone.eps, plain.eps) and torch.equal(alone.x0, plain.x0)
    own = ClassMixture(den, [2], mean, 0.25, reach=0.0)(x, t, torch.tensor([0, 0, 0]))   # own class joins
    assert torch.allclose(mean(own.x0), torch.full((3,), 0.25, dtype=torch.float64))


def test_target_mix_reaches_a_fraction_and_is_recorded(pipe, tmp_path):
    from microdiff.generate import sample_to_folder
    from microdiff.targets import MIX_REACH
    res = sample_to_folder(pipe, tmp_path / "out", classes=["FVC50"], num=2, steps=3, sampler="dpmpp",
                           targets={"vf": 0.55, "mix": "all"}, show_progress=False)
    rec = json.loads((res.out_dir / "FVC50" / "0000.json").read_text())
    (vf,) = rec["targets"]
    assert vf["mix"] == ["all"] and vf["reach"] == MIX_REACH and 0 <= vf["achieved"] <= 1
    goal = make_targets({"vf": 0.55, "mix": ["FVC60"]}, class_names=pipe.class_names)
    assert goal.mixed().mix_labels(pipe.class_names) == (pipe.class_names.index("FVC60"),)
    assert goal.guide(goal.mixture(pipe.denoiser())).__class__.__name__ == "ClassMixture"  # no pixel guidance
    img = np.load(res.out_dir / "FVC50" / "0000.npy")
    assert vf["achieved"] == pytest.approx(float(volume_fraction(torch.from_numpy(img)[None])[0]), abs=1e-6)
    # inside the window machinery, on a periodic canvas: the fraction moves towards the target
    kw = dict(num=2, steps=4, size=(64, 96), periodic=True, targets={"vf": 0.65, "mix": ["FVC60"]})
    wide, plain = pipe(["FVC50"], **kw), pipe(["FVC50"], **kw, target_strength=0.0)
    assert wide.shape == (2, 1, 64, 96) and torch.isfinite(wide).all()
    moved, unguided = (np.abs(volume_fraction(x[:, 0]).numpy() - 0.65) for x in (wide, plain))
    assert (moved < unguided).all(), (moved, unguided)


@pytest.mark.slow
def test_demo_model_reaches_a_volume_fraction_between_its_classes(pipe):
    """Between (0.55 from FVC50) and beyond (0.35 from FVC40) the training classes, 8 samples each."""
    for cls, target in (("FVC50", 0.55), ("FVC40", 0.35)):
        x = pipe([cls], num=8, steps=20, sampler="dpmpp", guidance=1.0, targets={"vf": target})
        vf = volume_fraction(x[:, 0]).numpy()
        assert np.mean(np.abs(vf - target) <= 0.015) >= 7 / 8, (cls, target, vf)
    assert isinstance(make_targets({"vf": 0.5}), Targets)


def test_candidates_keep_the_draw_nearest_the_targets(pipe):
    """--target-candidates K: each sample is the best of K guided draws, candidate 0 being the
    sample's own seed. Checked against each candidate drawn alone: the kept image is the one of
    least penalty, and a sample does not depend on the others in its batch (to float32 BLAS's
    batch-shape rounding, as for plain samples)."""
    from microdiff.core.seeding import candidate_seeds, sample_seed
    from microdiff.denoise import Canvas
    from microdiff.generate import generate, sampling_settings
    kw = dict(sampling=sampling_settings(pipe.microdiff_config, 3, "dpmpp", 1.0))
    goal = make_targets({"vf": 0.45, "candidates": 3}, 3.0, (64, 64), pipe.class_names)
    one = make_targets({"vf": 0.45}, 3.0, (64, 64), pipe.class_names)
    label = pipe.class_index("FVC40")
    seeds = [sample_seed(0, label, i) for i in range(2)]
    kept = generate(pipe, [label, label], seeds, targets=goal, canvas=Canvas((64, 64)), **kw)
    for i, seed in enumerate(seeds):
        alone = [generate(pipe, [label], [c], targets=one, **kw)[0] for c in candidate_seeds(seed, 3)]
        penalties = [goal.penalty(a[0].numpy()) for a in alone]
        torch.testing.assert_close(kept[i], alone[int(np.argmin(penalties))], rtol=0, atol=1e-4)
        assert goal.penalty(kept[i][0].numpy()) <= penalties[0]              # never worse than the sample itself
    torch.testing.assert_close(generate(pipe, [label], seeds[1:], targets=goal, **kw)[0], kept[1], rtol=0, atol=1e-4)
    assert candidate_seeds(seeds[0], 3)[0] == seeds[0] and len(set(candidate_seeds(seeds[0], 3))) == 3
    assert goal.record()["candidates"] == 3 and "candidates" not in one.record()


def test_penalty_is_the_loss_form_on_the_hard_descriptors():
    img = _field(size=64)[0].numpy()
    vf = VolumeFraction(weight=2.0, value=0.3)
    got = float(hard_phase(img, Segmentation.parse("otsu"), 1).mean())
    assert vf.penalty(img) == pytest.approx(2.0 * (got - 0.3) ** 2 / (2 * 0.005 ** 2))
    s2 = TwoPoint(curve=tuple(np.linspace(0.5, 0.25, 32)), tol=0.002)
    assert s2.penalty(img) == pytest.approx(s2.measure(img)["rmse"] ** 2 / (2 * 0.002 ** 2), rel=1e-4)
    assert Targets((vf, s2)).penalty(img) == pytest.approx(vf.penalty(img) + s2.penalty(img))
    cols = np.arange(64)[None, :].repeat(64, 0)
    half, near = (torch.from_numpy(np.where(cols < c, 0.9, 0.1))[None].float() for c in (32, 19))  # vf 0.5, 0.297
    got = Targets((vf,)).penalties(torch.stack([half, near]))
    assert got.shape == (2,) and got[1] < got[0]
    assert got[1] == pytest.approx(vf.penalty(near[0].numpy()))


def test_bad_candidates_are_one_line_errors(pipe, tmp_path, capsys):
    model = str(shipped_model_dir())
    for flags, word in ((("--target-candidates", "0"), "--target-candidates"),
                        (("--target-candidates", "3"), "--target-candidates")):
        rc = main(["sample", "--model", model, "--num", "1", "--steps", "2", "--out", str(tmp_path / "o"),
                   "--overwrite", *flags])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and word in err and len(err.splitlines()) == 1, (flags, err)
    with pytest.raises(UsageError, match="^target_candidates = 100"):
        make_targets({"vf": 0.5, "candidates": 100})
    with pytest.raises(UsageError, match="^target_candidates: it goes beside a target"):
        make_targets({"candidates": 4})
    with pytest.raises(UsageError, match="no target given"):
        make_targets({})
    from microdiff.generate import sample3d_to_folder
    with pytest.raises(UsageError, match="volume fraction .vf. only, not candidates"):
        sample3d_to_folder(pipe, tmp_path / "v", class_name="FVC50", targets={"vf": 0.5, "candidates": 2})


def test_pooled_loss_steers_a_batch_as_one_field():
    """Targets.pooled_loss: B identical images pool to each one's own loss (one threshold, one
    fraction), and the pooled push on each image is the one it gets alone; images of different
    fractions share one push, set by their mean."""
    goal = Targets((VolumeFraction(value=0.3),), 3.0)
    one = _field(size=32)[:1, None] * 2 - 1                          # (1, 1, 32, 32) in [-1, 1]
    same = one.repeat(3, 1, 1, 1).clone().requires_grad_(True)
    pooled = goal.pooled_loss(same)
    assert pooled.shape == (3,) and torch.allclose(pooled, goal.loss(one).expand(3))
    (g_pooled,) = torch.autograd.grad(pooled.sum(), same)
    alone = one.clone().requires_grad_(True)
    (g_alone,) = torch.autograd.grad(goal.loss(alone).sum(), alone)
    torch.testing.assert_close(g_pooled, g_alone.expand(3, -1, -1, -1))
    mixed = torch.cat([one, -one])                                    # fractions f and about 1 - f
    stacked = goal.items[0].fraction((torch.cat([one[0, 0], -one[0, 0]])[None] + 1) / 2)   # (1, 64, 32)
    torch.testing.assert_close(goal.pooled_loss(mixed), ((stacked - 0.3) ** 2 / (2 * 0.005 ** 2)).expand(2))


def test_a_descriptor_file_becomes_a_target_of_that_descriptor(tmp_path):
    """``Descriptor.from_file`` on what ``characterize`` writes: the same values, name, weight and digest."""
    import hashlib
    img = (np.random.default_rng(0).random((40, 40)) > 0.5).astype(np.float64)
    save_png(tmp_path / "r.png", img)
    out = tmp_path / "c.npy"
    assert main(["characterize", str(tmp_path / "r.png"), "--descriptor", "correlations", "--out", str(out)]) == 0
    t = Descriptor.from_file(out, "correlations", 0.5)
    assert (t.descriptor, t.weight, t.labels, t.source, t.kind) == ("correlations", 0.5, 0, str(out), "descriptor")
    np.testing.assert_array_equal(t.array, np.load(out).astype(np.float32).reshape(-1))
    assert t.record()["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert make_targets({"correlations": str(out)}, size=(64, 64)).items[0].array.size == t.array.size
