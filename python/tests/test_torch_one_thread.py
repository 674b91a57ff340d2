"""``relusv.torch._threads.one_torch_thread``: one intra-op thread inside, the caller's count restored after."""
from __future__ import annotations

import threading

import pytest

torch = pytest.importorskip("torch")

from relusv.torch._threads import one_torch_thread  # noqa: E402


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_nested_blocks_and_errors_restore_the_count(two_threads):
    with one_torch_thread():
        assert torch.get_num_threads() == 1
        with one_torch_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1   # the outer block still holds it
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError):
        with one_torch_thread():
            raise RuntimeError("inside")
    assert torch.get_num_threads() == 2


def test_concurrent_blocks_leave_the_count_restored_whatever_order_they_end(two_threads):
    first_in, second_in, release_first = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def first():
        with one_torch_thread():
            first_in.set()
            release_first.wait(10)
            seen.append(torch.get_num_threads())

    def second():
        first_in.wait(10)
        with one_torch_thread():
            second_in.set()
        seen.append(torch.get_num_threads())   # the first block is still open

    a, b = threading.Thread(target=first), threading.Thread(target=second)
    a.start()
    b.start()
    second_in.wait(10)
    b.join(10)
    release_first.set()
    a.join(10)
    assert seen == [1, 1]
    assert torch.get_num_threads() == 2


def test_native_calls_keep_to_one_thread_only_on_the_thread_inside_the_block():
    from relusv.torch._threads import native_threads

    assert native_threads() is None
    inside, seen = threading.Event(), []
    done = threading.Event()

    def other():
        inside.wait(10)
        seen.append(native_threads())   # another thread, while the main thread is inside
        done.set()

    t = threading.Thread(target=other)
    t.start()
    with one_torch_thread():
        assert native_threads() == 1
        inside.set()
        done.wait(10)
    t.join(10)
    assert seen == [None] and native_threads() is None
