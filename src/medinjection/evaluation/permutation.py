"""Option-shuffled copies of MCQ/MCQU records for the position-bias reruns.

Apart from the scoring (medinjection.evaluation.position_bias) so that the prediction code, which
writes the shuffled reruns, does not import the metrics: an edit of the scoring logic then leaves
every prediction up to date (medinjection.fingerprint).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import random
from collections.abc import Sequence

from medinjection.records import Record, join_letters

# One line per (permutation, record): "C,A,B,D" = position A shows original option C, ...
ORDER_SEPARATOR = ","


def option_orders(record_id: str, n_options: int, count: int, seed: int) -> list[tuple[int, ...]]:
    """`count` seeded orders of `n_options` options: never the identity, distinct while possible.

    ``order[j]`` is the index of the original option shown at position j.
    """
    key = hashlib.sha256(f"{seed}\x00{record_id}".encode()).digest()
    rng = random.Random(int.from_bytes(key[:8], "big"))
    identity = tuple(range(n_options))
    available = math.factorial(n_options) - 1  # non-identity orders
    orders: list[tuple[int, ...]] = []
    while len(orders) < count:
        if available == 0:  # one option: nothing to shuffle
            orders.append(identity)
            continue
        order = list(identity)
        rng.shuffle(order)
        candidate = tuple(order)
        fresh = candidate not in orders or len(set(orders)) >= available
        if candidate != identity and fresh:
            orders.append(candidate)
    return orders


def permute_record(record: Record, order: Sequence[int]) -> Record:
    """The record with its option texts in `order` and its gold letters remapped."""
    if record.options is None or sorted(order) != list(range(len(record.options))):
        raise ValueError(
            f"{record.id}: order {list(order)} is not a permutation of its "
            f"{len(record.options or ())} options"
        )
    letters = record.option_letters()
    new_position = {letters[original]: position for position, original in enumerate(order)}
    options = tuple(
        (letters[position], record.options[original][1]) for position, original in enumerate(order)
    )
    answer = join_letters(letters[new_position[gold]] for gold in record.answer_letters())
    return dataclasses.replace(record, options=options, answer=answer)


def order_string(record: Record, order: Sequence[int]) -> str:
    """The `option_order` column: original letters in their new positions ("C,A,B,D")."""
    letters = record.option_letters()
    return ORDER_SEPARATOR.join(letters[original] for original in order)


def permuted_records(records: Sequence[Record], permutations: int, seed: int) -> list[tuple]:
    """(permutation number 1..k, option order string, permuted record), permutation-major."""
    runs: list[list[tuple]] = [[] for _ in range(permutations)]
    for record in records:
        if record.task == "oeq":
            raise ValueError(f"{record.id}: open questions have no options to shuffle")
        orders = option_orders(record.id, len(record.options or ()), permutations, seed)
        for k, order in enumerate(orders):
            runs[k].append((k + 1, order_string(record, order), permute_record(record, order)))
    return [entry for run in runs for entry in run]
