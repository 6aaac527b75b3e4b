"""pytest fixtures for testing code that uses eks_async against the emulator.

Enable them in a ``conftest.py`` with ``pytest_plugins = ["eks_async.testing.pytest_plugin"]``
(or import the fixtures into a test module). Fixtures:

- ``eks_emulator_config`` -> ``EmulatorConfig`` (override it to change delays, faults, seed);
- ``eks_emulator_clock`` -> a ``ManualClock``: time moves only when the test says
  (``eks_emulator.advance(seconds)`` or ``eks_emulator.settle()``);
- ``eks_emulator`` -> an ``EKSEmulator`` built from the two;
- ``eks_client`` -> an ``EKSClient`` wired to it in-process with the test credentials.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from .._client import EKSClient
from ._clock import Clock, ManualClock
from ._config import EmulatorConfig
from ._emulator import EKSEmulator

__all__ = ["eks_client", "eks_emulator", "eks_emulator_clock", "eks_emulator_config"]


@pytest.fixture
def eks_emulator_config() -> EmulatorConfig:
    """The emulator's configuration (defaults: EKS-like delays, no faults, seed 0)."""
    return EmulatorConfig()


@pytest.fixture
def eks_emulator_clock() -> Clock:
    """The emulator's clock: a ``ManualClock`` (deterministic, moved by the test)."""
    return ManualClock()


@pytest.fixture
def eks_emulator(eks_emulator_config: EmulatorConfig, eks_emulator_clock: Clock) -> EKSEmulator:
    """A fresh emulator per test."""
    return EKSEmulator(eks_emulator_config, clock=eks_emulator_clock)


@pytest_asyncio.fixture
async def eks_client(eks_emulator: EKSEmulator) -> AsyncIterator[EKSClient]:
    """An ``EKSClient`` talking to ``eks_emulator`` in-process (region us-west-2)."""
    async with eks_emulator.client() as client:
        yield client
