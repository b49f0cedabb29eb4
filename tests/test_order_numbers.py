"""Order numbers (``zbmc.billing.orders.OrderNumbers``): numeric strings in the order they were
made, so that the orders' primary key grows at its right edge, and never repeated."""

from __future__ import annotations

import os
import threading
import time
import warnings

import pytest

from zbmc.billing import orders


def test_numbers_are_22_digits_and_strictly_increasing_within_a_process() -> None:
    make = orders.OrderNumbers()
    numbers = [make() for _ in range(20_000)]  # many within one microsecond
    assert all(len(n) == 22 and n.isdigit() for n in numbers)
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == len(numbers)
    assert {n[-6:] for n in numbers} == {numbers[0][-6:]}  # one per-process part


def test_a_clock_that_steps_back_does_not_repeat_or_reorder_numbers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make = orders.OrderNumbers()
    later = make()
    monkeypatch.setattr(time, "time_ns", lambda: 1_000_000_000_000_000)  # 2001
    earlier_clock = [make() for _ in range(3)]
    assert [later, *earlier_clock] == sorted({later, *earlier_clock})


def test_threads_making_orders_at_once_get_distinct_numbers() -> None:
    make = orders.OrderNumbers()
    made: list[list[str]] = [[] for _ in range(4)]

    def run(into: list[str]) -> None:
        into.extend(make() for _ in range(5_000))

    threads = [threading.Thread(target=run, args=(into,)) for into in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [n for into in made for n in into]
    assert len(set(every)) == len(every) == 20_000
    assert all(into == sorted(into) for into in made)


def test_a_forked_child_draws_its_own_per_process_part() -> None:
    parent = orders.new_order_number()[-6:]
    read, write = os.pipe()
    with warnings.catch_warnings():  # Python 3.12+ warns about fork() beside other threads
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: report its part and leave at once
        os.write(write, orders.new_order_number()[-6:].encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    assert os.waitpid(pid, 0)[1] == 0
    assert len(child) == 6
    assert child.isdigit()
    assert child != parent  # fails once in a million runs: the two draws are random
