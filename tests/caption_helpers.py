"""Shared fixtures of the captioning tests."""
import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Several torch threads on the shared test CPU are ~30x slower for these tiny models."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
