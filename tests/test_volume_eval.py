"""`evaluate` on volumes (issue 23): generated volumes against true ones and against 2D sections,
every number beside the real-vs-real spread; its bad inputs as one-line errors."""

import numpy as np
import pytest

from microdiff.cli import main
from microdiff.data.synth3d import grf_volume


def _volumes(folder, seeds, size=24, fraction=0.4):
    folder.mkdir(parents=True, exist_ok=True)
    for s in seeds:
        np.save(folder / f"{s:04d}_labels.npy", grf_volume(np.random.default_rng(s), size, fraction).labels)
    return folder


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("veval")
    return root, _volumes(root / "gen", range(3)), _volumes(root / "truth", range(10, 14))


def test_volumes_against_truth_numbers_and_report(sets):
    from microdiff.evaluate.volumes import VolumeEvalSettings, evaluate_volumes
    root, gen, truth = sets
    res = evaluate_volumes(gen, truth, root / "ev", VolumeEvalSettings(transport=False))
    names = {j.name for j in res.judged}
    assert {"vf", "surface", "cluster", "percolation", "s2", "chord_lengths", "pore_sizes"} <= names
    vf = next(j for j in res.judged if j.name == "vf")
    want = [np.load(f).mean() for f in sorted(gen.glob("*.npy"))]
    np.testing.assert_allclose(vf.generated, want)                 # the indicator of phase 1, per volume
    s2 = [j for j in res.judged if j.name == "s2"]
    assert [j.axis for j in s2] == ["z", "y", "x"] and all(len(j.truth) == 4 for j in s2)
    t = np.stack([res.values["truth"][i]["s2"][0] for i in range(4)])     # the floor: leave-one-out distances
    others = (t.sum(0) - t[0]) / 3
    assert s2[0].truth[0] == pytest.approx(np.sqrt(((t[0] - others) ** 2).mean()))
    rows = (root / "ev" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 + 4 and rows[0].startswith("source,file,vf")
    assert "verdict" in (root / "ev" / "summary.csv").read_text().splitlines()[0]
    html = (root / "ev" / "report.html").read_text()
    assert "Verdicts" in html and html.count("<img") >= 4 and 'data-kind="s2"' in html


def test_a_set_against_itself_is_within(sets):
    from microdiff.evaluate.volumes import VolumeEvalSettings, evaluate_volumes
    root, _, truth = sets
    res = evaluate_volumes(truth, truth, root / "self", VolumeEvalSettings(transport=False), report=False)
    assert all(j.verdict == "within" for j in res.judged if j.kind == "scalar")


def test_volumes_against_sections(sets, tmp_path):
    from microdiff.data.synth3d import synth_3d
    from microdiff.evaluate.volumes import VolumeEvalSettings, evaluate_against_sections
    root, gen, _ = sets
    data = synth_3d(tmp_path / "d", "grf", 24, per_class=40, volumes=0, seed=3, overwrite=True, show_progress=False)
    res = evaluate_against_sections(gen, data / "slices", tmp_path / "ev", VolumeEvalSettings(transport=False),
                                    report=False)
    assert {j.name for j in res.judged} == {"vf", "surface", "s2", "chord_lengths", "mean_chord"}
    from microdiff.data.io import list_class_images, read_image
    from microdiff.metrics.descriptors import volume_fraction
    import torch
    files = [f for fs in list_class_images(data / "slices").values() for f in fs]
    every = np.mean([float(volume_fraction(torch.from_numpy(read_image(f))[None])[0]) for f in files])
    vf = next(j for j in res.judged if j.name == "vf")
    assert len(vf.truth) == 16 and abs(np.median(vf.truth) - every) < 0.02     # groups of 24 sections, Otsu's phase
    s2 = next(j for j in res.judged if j.name == "s2" and j.axis == "z")
    assert np.isfinite(s2.truth).all() and np.isfinite(s2.generated).all()


def test_bad_volume_inputs_are_one_line(sets, tmp_path, capsys):
    root, gen, truth = sets
    big = _volumes(tmp_path / "big", [1], size=32)
    flat = tmp_path / "flat"
    _volumes(flat, [2])
    np.save(flat / "image.npy", np.zeros((24, 24)))
    cases = [(["--truth", str(big)], "differ"), (["--truth", str(flat)], "image.npy"),
             (["--truth", str(truth), "--phase", "3"], "--phase"), ([], "--truth")]
    for extra, needle in cases:
        rc = main(["evaluate", "--generated", str(gen), "--out", str(tmp_path / "o"), "--no-report", *extra])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and needle in err and len(err.splitlines()) == 1, (extra, err)
    assert not (tmp_path / "o").exists()


def test_volumes_described_in_two_processes_as_in_one(sets):
    """N processes = 1 process: the same numbers, in the same order, to the byte of metrics.csv
    (TauFactor included, solved in the workers)."""
    from microdiff.evaluate.volumes import VolumeEvalSettings, evaluate_volumes
    root, gen, truth = sets
    for n in (1, 2):
        evaluate_volumes(gen, truth, root / f"w{n}", VolumeEvalSettings(workers=n), report=False)
    one, two = ((root / f"w{n}" / "metrics.csv").read_text() for n in (1, 2))
    assert one == two and "tortuosity_z" in one.splitlines()[0] and len(one.splitlines()) == 1 + 3 + 4


def test_errors_cross_processes_whole():
    """A setting's error raised in a worker reads the same in the parent (its setting, value,
    problem, and a missing value stays missing; `evaluate --phase 3` above raises it in a worker),
    and a bad worker count is one setting's error."""
    import pickle
    from microdiff.core.errors import NO_VALUE, SettingError
    from microdiff.core.launch import resolve_workers
    for value in (3, NO_VALUE, None):
        e = pickle.loads(pickle.dumps(SettingError("phase", value, "holds phases 0..1")))
        assert type(e) is SettingError and e.setting == "phase" and e.problem == "holds phases 0..1"
        assert (e.value is NO_VALUE) == (value is NO_VALUE) and str(e) == str(SettingError("phase", value,
                                                                                         "holds phases 0..1"))
    with pytest.raises(SettingError, match="workers = -1"):
        resolve_workers(-1, 4)
    assert resolve_workers(5, 2) == 2 and resolve_workers(0, 1) == 1


def test_a_worker_that_dies_is_one_settings_error():
    """A worker process killed without an answer (here it exits at once, as one killed for memory
    would) is an error of the worker count, which names the fix, not a pool's traceback."""
    import os
    from microdiff.cli.flags import flag_of
    from microdiff.core.errors import SettingError
    from microdiff.core.launch import process_map
    with pytest.raises(SettingError) as err:
        process_map(os._exit, [3, 3], workers=2)
    assert err.value.setting == "workers" and "fewer" in str(err.value) and "workers 1" in str(err.value)
    assert err.value.render(flag_of).startswith("--workers 2: ") and "--workers 1" in err.value.render(flag_of)
