"""The Ray backend's `ParameterChannel`: the learner's parameters through the object store, with a version.

The learner publishes into its local `PublishedParams` at every update (the evaluator, on the
learner's machine, reads that), and at most every `publish_seconds` puts a numpy copy of the state into
the object store and hands its reference to a `ParamStore` actor. An actor asks the store for what is
newer than the version it holds and fetches the parameters only then. The store keeps one reference,
so each publication frees the one before once no actor is still reading it: nothing accumulates.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import ray
import torch
from torch import nn

from common.distributed.params import PublishedParams
from common.distributed.ray_replay import ANSWER_SECONDS, answers_within


class ParamStore:
    """A Ray actor holding the newest published parameters: (version, [object ref])."""

    def __init__(self) -> None:
        self.version, self.ref = -1, None

    def put(self, version: int, wrapped: list[Any]) -> None:
        """`wrapped`: [ref], in a list so that Ray passes the reference and not the object it names."""
        if version > self.version:
            self.version, self.ref = version, wrapped[0]

    def newer_than(self, version: int) -> tuple[int, list[Any]]:
        """(the current version, [its ref]) if it differs from `version`, else (version, [])."""
        if self.version == version or self.ref is None:
            return version, []
        return self.version, [self.ref]


def state_arrays(model: nn.Module) -> dict[str, np.ndarray]:
    return {name: tensor.detach().cpu().numpy().copy() for name, tensor in model.state_dict().items()}


class RayParams:
    """The learner's side: local publication every update, the object store's at most every `publish_seconds`."""

    def __init__(self, model: nn.Module, store: Any, publish_seconds: float):
        self.local = PublishedParams(model)
        self.store, self.publish_seconds = store, publish_seconds
        self.last_put = -float("inf")
        self.pending: Any = None  # the store's answer to the last put: one in flight at most
        self._put(int(self.local.version))  # actors start from the learner's parameters, as locally

    @property
    def model(self) -> nn.Module:
        """The shared CPU copy the evaluator reads."""
        return self.local.model

    def publish(self, model: nn.Module) -> int:
        version = self.local.publish(model)
        now = time.monotonic()
        if now - self.last_put >= self.publish_seconds:
            self._put(version)
        return version

    def _put(self, version: int) -> None:
        if self.pending is not None:
            answers_within(self.pending, ANSWER_SECONDS, "the parameter store for a put")
        self.pending = self.store.put.remote(version, [ray.put(state_arrays(self.local.model))])
        self.last_put = time.monotonic()

    def poll(self, into: nn.Module, have_version: int) -> int:
        return self.local.poll(into, have_version)


class StoreReader:
    """An actor's side: asks the store, fetches only a version it does not hold."""

    def __init__(self, store: Any):
        self.store = store

    def publish(self, model: nn.Module) -> int:
        raise RuntimeError("actors read parameters; only the learner publishes them")

    def poll(self, into: nn.Module, have_version: int) -> int:
        version, wrapped = ray.get(self.store.newer_than.remote(have_version))
        if not wrapped:
            return have_version
        state = ray.get(wrapped[0])  # read-only arrays in the object store: copied below
        into.load_state_dict({name: torch.from_numpy(array.copy()) for name, array in state.items()})
        return version
