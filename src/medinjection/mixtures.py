"""Training mixtures: fixed-size, seeded, share-weighted draws of records rendered as chats.

Counts per origin follow the shares by largest remainder (they sum exactly to the size); inside
an origin the count is spread over tasks in proportion to the task pools (largest remainder
again), and each (origin, task) draw is without replacement with a random.Random seeded by
sha256 of (seed, mixture, part, origin, task), so results never depend on Python's hash seed.
Validation, two modes. Own (default): drawn by the mixture's shares from its origins' validation
splits; an origin with no validation records at all (synthetic data is train-only by design) gets
its validation draw from its train records not drawn for training (the manifest lists such
origins). Shared (`validation_origins` given): every mixture gets the same validation set, drawn
with equal shares from those origins' validation splits and seeded without the mixture name, so
validation losses compare across mixtures and a train-only origin keeps its whole pool for
training (the study's SYN pool, 33,493 synthetic MCQs, is exactly the mixture size).
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from medinjection.records import ARROW_SCHEMA, ORIGINS, Record, from_row, table_rows
from medinjection.settings import MixturesSettings

LOG = logging.getLogger(__name__)
# What drawing and rendering a chat read: the long meta column (e.g. MedMCQA explanations) is
# left on disk, so drawn records carry meta {} and the record defaults for language/specialty.
POOL_COLUMNS: tuple[str, ...] = (
    "id", "origin", "source", "task", "split", "context", "question", "options", "answer",
)  # fmt: skip


def allocate(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Integer counts proportional to weights summing exactly to total (largest remainder)."""
    mass = sum(weights.values())
    if total < 0 or any(w < 0 for w in weights.values()) or (total > 0 and mass <= 0):
        raise ValueError(f"cannot allocate {total} items over weights {weights}")
    if total == 0:
        return dict.fromkeys(weights, 0)
    quotas = {key: total * w / mass for key, w in weights.items()}
    counts = {key: math.floor(q) for key, q in quotas.items()}
    by_remainder = sorted(quotas, key=lambda key: (-(quotas[key] - counts[key]), key))
    for key in by_remainder[: total - sum(counts.values())]:
        counts[key] += 1
    return counts


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()
    return random.Random(int(digest[:16], 16))


def _pools(files: list[Path], tasks: list[str], origins: set[str]) -> dict[str, pa.Table]:
    """Per origin, the records of the mixture's tasks as one table sorted by id (columnar)."""
    parts: dict[str, list[pa.Table]] = {origin: [] for origin in origins}
    for path in files:
        origin = Path(path).parent.name
        if origin not in ORIGINS:
            raise ValueError(f"{path}: parent folder {origin!r} is not an origin {ORIGINS}")
        if origin in origins:
            table = pq.read_table(path, columns=list(POOL_COLUMNS), schema=ARROW_SCHEMA)
            parts[origin].append(table.filter(pc.is_in(table["task"], pa.array(tasks))))
    empty = ARROW_SCHEMA.empty_table().select(list(POOL_COLUMNS))
    return {
        origin: (pa.concat_tables(tables) if tables else empty).sort_by("id")
        for origin, tables in parts.items()
    }


def _draw(
    tasks: list[str], rows: list[int], k: int, rng_parts: tuple[object, ...], label: str
) -> list[int]:
    """k row positions drawn from `rows` (id order), stratified by task, without replacement."""
    by_task: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        by_task[tasks[row]].append(row)
    if k > len(rows):
        sizes = {task: len(members) for task, members in sorted(by_task.items())}
        raise ValueError(f"{label}: needs {k} records but the pool has {len(rows)} {sizes}")
    per_task = allocate(k, {task: float(len(m)) for task, m in sorted(by_task.items())})
    drawn = []
    for task, n in per_task.items():
        drawn.extend(_rng(*rng_parts, task).sample(by_task[task], n))
    return drawn


def _shared_validation(
    files: list[Path], origins: list[str], size: int, seed: int, tasks: list[str]
) -> list[Record]:
    """The validation set every mixture shares: equal shares of `origins`' validation splits."""
    pools = _pools(files, tasks, set(origins))
    counts = allocate(size, dict.fromkeys(sorted(origins), 1.0))
    records: list[Record] = []
    for origin in sorted(origins):
        pool = pools[origin]
        label = f"shared validation, origin {origin!r}, tasks {tasks}"
        tasks_of = pool["task"].to_pylist()
        rows = _draw(
            tasks_of, list(range(pool.num_rows)), counts[origin], (seed, "shared", origin), label
        )
        records.extend(_records(pool, rows))
    return records


def _records(table: pa.Table, rows: list[int]) -> list[Record]:
    return [from_row(row) for row in table_rows(table.take(pa.array(rows, type=pa.int64())))]


def draw_mixture(
    name: str,
    shares: Mapping[str, float],
    train_files: list[Path],
    validation_files: list[Path],
    mixtures: MixturesSettings,
) -> tuple[list[Record], list[Record], list[str]]:
    """A mixture's train and validation records drawn by its shares (`mixtures`: size, seed,
    tasks, validation size and origins), and the origins whose validation came from train."""
    size, validation_size, seed = mixtures.size, mixtures.validation_size, mixtures.seed
    tasks: list[str] = list(mixtures.tasks)
    validation_origins: list[str] = list(mixtures.validation_origins or ())
    unknown = sorted((set(shares) | set(validation_origins)) - set(ORIGINS))
    if unknown:
        raise ValueError(f"mixture {name!r}: unknown origins {unknown}; valid: {list(ORIGINS)}")
    origins = set(shares)
    train_pools = _pools(train_files, tasks, origins)
    train_counts = allocate(size, {o: float(shares[o]) for o in sorted(origins)})
    train: list[Record] = []
    validation: list[Record] = []
    from_train: list[str] = []
    if validation_origins:
        validation = _shared_validation(
            validation_files, validation_origins, validation_size, seed, tasks
        )
    validation_pools = {} if validation_origins else _pools(validation_files, tasks, origins)
    validation_counts = allocate(validation_size, {o: float(shares[o]) for o in sorted(origins)})
    for origin in sorted(origins):
        label = f"mixture {name!r}, origin {origin!r}, tasks {tasks}"
        pool = train_pools[origin]
        pool_tasks = pool["task"].to_pylist()
        drawn = _draw(
            pool_tasks,
            list(range(pool.num_rows)),
            train_counts[origin],
            (seed, name, "train", origin),
            f"{label}, train",
        )
        train.extend(_records(pool, drawn))
        if validation_origins:
            continue
        vpool = validation_pools[origin]
        vtasks, vrows = vpool["task"].to_pylist(), list(range(vpool.num_rows))
        if not vrows and validation_counts[origin] > 0:
            taken = set(drawn)
            vpool, vtasks = pool, pool_tasks
            vrows = [row for row in range(pool.num_rows) if row not in taken]
            from_train.append(origin)
            LOG.info("%s: no validation records, validation drawn from undrawn train", label)
        vdrawn = _draw(
            vtasks,
            vrows,
            validation_counts[origin],
            (seed, name, "validation", origin),
            f"{label}, validation",
        )
        validation.extend(_records(vpool, vdrawn))
    return train, validation, from_train
