"""One run driver for every generation verb.

``run_to_folder`` owns what a run of ``sample``, ``inpaint`` or ``sample3d`` has in common: the
output folder (refused when it holds something, unless overwriting; locked while a run writes
into it), the run record and ``--resume`` against it, the items shared out over processes
(torchrun / accelerate: process r takes items r, r + W, ...; the same files as one process),
the progress bar, the batches (a batch whose items are all complete is skipped, and the others
keep an uninterrupted run's composition, so resumed files are identical), each item's record,
the check that a result is finite, and the result object. What is specific to a verb is its
``producer`` (items -> arrays, generation) and its ``writer`` (array -> files): generation yields
batches, writing is separate.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

import torch
from torch import Tensor

from ..core.errors import GenerationError, MicrodiffError, UsageError, setting
from .records import Item


class Producer(Protocol):
    batch_size: int                   # items per call
    units: int                        # progress units per item (1 per image; steps per volume)
    label: str                        # what the progress bar says

    def prepare(self) -> None: ...                            # once, before the first batch it makes (untimed)

    def __call__(self, items: Sequence[Item], tick: Callable[[], None]) -> Tensor: ...

    def annotate(self, item: Item, array: Tensor, seconds: float) -> dict: ...


class Writer(Protocol):
    def complete(self, out_dir: Path, item: Item) -> bool: ...

    def write(self, out_dir: Path, item: Item, array: Tensor, record: dict) -> list[Path]: ...


@dataclass
class GenerationResult:
    """What a call wrote (diffusers' pipeline outputs are the model): ``items`` and their ``files``,
    the ``seconds`` each took to generate, and the complete items it found and kept (``skipped``)."""
    out_dir: Path
    items: list[Item] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    skipped: int = 0

    @property
    def count(self) -> int:
        """Items written by this call (each complete with its record)."""
        return len(self.items)

    @property
    def folders(self) -> list[Path]:
        """Each volume's folder (volume runs)."""
        return [self.out_dir / it.key for it in self.items]


def run_to_folder(pipe, run, out_dir: Path, producer: Producer, writer: Writer, overwrite: bool = False,
                  resume: bool = False, show_progress: bool = True) -> GenerationResult:
    """The items of ``run`` (a run record: ``records.SampleRun`` or ``VolumeRun``) into ``out_dir``."""
    from ..core.launch import distributed_state
    out_dir = Path(out_dir)
    state = distributed_state()
    main = state is None or state.is_main_process
    lock, done = None, False
    if resume and overwrite:
        raise UsageError(f"give either {setting('resume')} (continue the run in {out_dir}) or {setting('overwrite')} "
                         "(replace it), not both")
    try:
        refused = None
        if main:
            created = not out_dir.exists()
            try:
                lock = _lock(out_dir)
                prepare_folder(out_dir, run, overwrite, resume)
            except MicrodiffError as e:            # refused: leave the folder as it was
                refused = e
                if lock is not None:
                    lock.close(remove=True)
                    lock = None
                if created and out_dir.is_dir() and not any(out_dir.iterdir()):
                    out_dir.rmdir()
        _agree(state, refused)                     # the folder is ready (or refused) before any process writes
        rank, world = (state.process_index, state.num_processes) if state is not None else (0, 1)
        result = _produce(run, run.items(pipe, rank, world), out_dir, producer, writer, show_progress and rank == 0)
        if state is not None:
            state.wait_for_everyone()
        done = True
        return result
    finally:
        if lock is not None:
            lock.close(remove=done)


def _agree(state, refused: BaseException | None) -> None:
    """Every process learns whether the main one refused the folder: it raises the error, the
    others stop quietly (``Refused``), so none waits forever."""
    if state is not None:
        import torch.distributed as dist
        box = [None if refused is None else refused.render()]
        dist.broadcast_object_list(box, src=0)
        if refused is None and box[0] is not None:
            raise Refused(box[0])
        state.wait_for_everyone()
    if refused is not None:
        raise refused


class Refused(MicrodiffError):
    """The main process refused the run (and said why); another process stops without a word."""
    quiet = True


def _lock(out_dir: Path):
    from ..core.errors import OutputError
    from ..core.files import RunLock
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir} is a file, not a folder; choose another {setting('out')}")
    try:
        return RunLock(out_dir, "sampling run")
    except OSError as e:
        raise OutputError(out_dir, e) from None


def prepare_folder(out_dir: Path, run, overwrite: bool, resume: bool) -> None:
    """Check (and when overwriting, clear) the output folder and record the run in it (``run.FILE``);
    ``resume`` continues a folder made with the same settings."""
    from ..core.files import check_output_free, clear_folder, write_text_atomic
    path = out_dir / run.FILE
    if resume:
        if not path.is_file():
            raise UsageError(f"{out_dir} holds no interrupted sampling run ({run.FILE} is missing); "
                             f"start without {setting('resume')}")
        try:
            old = type(run).from_json(json.loads(path.read_text()))
        except (ValueError, TypeError, KeyError) as e:
            raise UsageError(f"{path} is unreadable ({e}); sample again with {setting('overwrite')}") from None
        said = old.mismatch(run)
        if said:
            raise UsageError(f"{out_dir} was sampled with other settings ({said}); resume with the same ones, or "
                             f"sample again with {setting('overwrite')}")
        return
    if check_output_free(out_dir, overwrite, "a sampling run", f"pass {setting('resume')} to continue an interrupted run",
                         marker=run.FILE):
        clear_folder(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, run.to_json())


def _produce(run, items: list[Item], out_dir: Path, producer: Producer, writer: Writer, show: bool) -> GenerationResult:
    from tqdm.auto import tqdm
    result = GenerationResult(out_dir)
    with tqdm(total=len(items) * producer.units, desc=producer.label, unit="img" if producer.units == 1 else "step",
              disable=not show) as bar:                     # closed also when a batch fails: the error on its own line
        _batches(run, items, out_dir, producer, writer, bar, result)
    return result


def _batches(run, items: list[Item], out_dir: Path, producer: Producer, writer: Writer, bar,
             result: GenerationResult) -> None:
    for start in range(0, len(items), producer.batch_size):
        chunk = items[start:start + producer.batch_size]
        todo = [not writer.complete(out_dir, it) for it in chunk]
        result.skipped += len(chunk) - sum(todo)
        ticked = [0]

        def tick() -> None:
            ticked[0] += 1
            bar.update(1)
        if any(todo):
            producer.prepare()
            begin = time.perf_counter()
            arrays = producer(chunk, tick)
            seconds = (time.perf_counter() - begin) / len(chunk)
            _write(run, chunk, todo, arrays, seconds, out_dir, producer, writer, result)
        bar.update(max(0, len(chunk) * producer.units - ticked[0]))


def _write(run, chunk, todo, arrays: Tensor, seconds: float, out_dir: Path, producer, writer,
           result: GenerationResult) -> None:
    """The finite items of a batch written; then one error naming those that are not."""
    bad = []
    for item, array, needed in zip(chunk, arrays, todo):
        if not needed:
            continue
        if not bool(torch.isfinite(array).all()):
            bad.append(item)
            continue
        record = {**run.item_record(item), **producer.annotate(item, array, seconds)}
        result.files += writer.write(out_dir, item, array, record)
        result.items.append(item)
        result.seconds.append(seconds)
    if bad:
        names = ", ".join(it.key for it in bad[:4]) + (" ..." if len(bad) > 4 else "")
        raise GenerationError(f"{out_dir}: {len(bad)} sample(s) came out not finite (NaN or infinite values: {names}) "
                              "and were not written; the samples before them are complete. With targets, lower "
                              f"{setting('target_strength')} or check the target files; otherwise the model itself "
                              "gives non-finite predictions (retrain it)")
