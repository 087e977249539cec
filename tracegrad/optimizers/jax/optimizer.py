"""``JaxOptimizer``: real gradient steps (optax) on array and number parameters.

The loop users know::

    opt = JaxOptimizer([weights, scale], optax.adam(1e-2))
    for batch in data:
        loss = pipeline(batch)          # traced forward pass
        opt.zero_feedback()
        opt.backward(loss)              # the scalar loss node
        report = opt.step()             # value_and_grad of the replayed trace + optax update

``step()`` replays the trace as a jitted pure function (see ``replay``), cached by the
graph's structure: a loop that records the same graph every step compiles once, a
changed graph compiles anew (up to ``cache_size`` structures are kept, least recently
used first out). A committed step consumes the losses it used (like the feedback of
any optimizer): the next ``step()`` needs a new ``backward(loss)``. ``fit(n)`` runs
``n`` compiled steps on the registered losses, else on those of the last step.
A copy (``copy.deepcopy``) has its own optax state and registered losses (the same
loss nodes at first), the same parameters, and shares the compiled replays.

Parameters: float ``Array`` parameters (shape and dtype are kept) and ``Number``
parameters (as 0-d arrays of the default float dtype; written back as floats). Bounds
are enforced by projection: after each update, values are clipped into ``[low,
high]``. A non-finite result (NaN loss or gradient) is rejected: the step raises
``InvalidValueError`` and nothing changes. Other parameters in the graph are inputs
(arrays, floats) or constants, not differentiated.

Checkpoints: ``state_dict()`` holds the optax state as JSON data;
``opt.save(path, module)`` / ``opt.load(path, module)`` write and read the module's
parameters and this state together, atomically.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from tracegrad.errors import InvalidValueError, TracegradError
from tracegrad.llm.settings import checked_keywords
from tracegrad.nodes.kinds import Number
from tracegrad.nodes.module import Module
from tracegrad.optimizers.base import Optimizer, Proposal, StepReport, is_loss_value
from tracegrad.optimizers.jax.compile import check_differentiable, current_values
from tracegrad.optimizers.jax.progress import FitProgress
from tracegrad.optimizers.jax.replay import Analysis, Program, ReplayCache, analyze, build_program
from tracegrad.optimizers.jax.state import tree_from_json, tree_to_json
from tracegrad.trace import Node, ParameterNode

_MAX_SCANS = 4
_norm = getattr(getattr(optax, "tree", None), "norm", None) or optax.global_norm


def _make_step(
    pure: Any, transform: optax.GradientTransformation, bounds: Mapping[str, tuple], *, checked: bool
) -> Any:
    """One optimization step as a pure function (jitted by the caller).

    Returns ``(new_params, new_state, stats)``. ``checked``: ``stats = [loss, grad_norm,
    finite]`` in one small array (what ``step()`` reports); else ``stats = loss``, exactly
    the work of a hand-written step (``fit`` checks only its last step: NaN sticks).
    """
    value_and_grad = jax.value_and_grad(pure)

    def step(params: dict[str, Any], state: Any, inputs: tuple) -> tuple:
        loss, grads = value_and_grad(params, inputs)
        updates, state = transform.update(grads, state, params)
        new = _project(optax.apply_updates(params, updates), bounds)
        if not checked:
            return new, state, loss
        grad_norm = _norm(grads)
        return new, state, _stats(loss, grad_norm, new)

    return step


def _project(params: dict[str, Any], bounds: Mapping[str, tuple]) -> dict[str, Any]:
    if not bounds:
        return params
    return {k: jnp.clip(v, *bounds[k]) if k in bounds else v for k, v in params.items()}


def _stats(loss: Any, grad_norm: Any, params: Mapping[str, Any]) -> Any:
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    for v in params.values():
        finite = finite & jnp.all(jnp.isfinite(v))
    return jnp.stack([loss.astype(jnp.float32), grad_norm.astype(jnp.float32), finite.astype(jnp.float32)])


class _Entry:
    """A cached program with its jitted steps (and ``fit`` loops by length)."""

    __slots__ = ("program", "step", "lean_step", "chained_step", "_checked", "_lean", "_scans")

    def __init__(self, program: Program, transform: optax.GradientTransformation, bounds: Mapping[str, tuple]):
        self.program = program
        self._checked = _make_step(program.fn, transform, bounds, checked=True)
        self._lean = _make_step(program.fn, transform, bounds, checked=False)
        self.step = jax.jit(self._checked)
        self.lean_step = jax.jit(self._lean)
        # For steps whose parameters and state came out of the previous step: their
        # buffers are reused in place (the caller's own arrays are never donated).
        self.chained_step = jax.jit(self._lean, donate_argnums=(0, 1))
        self._scans: dict[int, Any] = {}

    def scan(self, steps: int) -> Any:
        """``steps - 1`` lean steps in a ``jax.lax.scan``, then one checked step: one dispatch."""
        fn = self._scans.get(steps)
        if fn is None:
            lean, checked = self._lean, self._checked

            def run(params: dict[str, Any], state: Any, inputs: tuple) -> tuple:
                def body(carry: tuple, _: Any) -> tuple:
                    p, s, loss = lean(*carry, inputs)
                    return (p, s), loss

                (p, s), losses = jax.lax.scan(body, (params, state), None, length=steps - 1)
                p, s, stats = checked(p, s, inputs)
                return p, s, losses, stats

            fn = self._scans[steps] = jax.jit(run)
            while len(self._scans) > _MAX_SCANS:
                self._scans.pop(next(iter(self._scans)))
        return fn


class JaxOptimizer(Optimizer):
    """Gradient descent on the trace: ``value_and_grad`` of the replayed graph + an optax update.

    ``transform`` is any ``optax.GradientTransformation`` (``optax.adam(1e-2)``,
    chains with clipping, schedules ...). ``cache_size`` bounds the number of graph
    structures whose compiled step is kept.
    """

    takes_loss = True  # Hybrid gives it the numeric loss node rather than text feedback
    # compiled replays and the optax transform are shared by copies; the optax state is
    # never changed in place (a step replaces it), so a copy can start from the same one
    _shared_on_copy = frozenset({"transform", "cache", "opt_state"})
    _listed_on_copy = frozenset({"_unreached", "_losses", "_last_losses"})

    @checked_keywords()
    def __init__(
        self,
        parameters: Iterable[ParameterNode] | Module,
        transform: optax.GradientTransformation,
        *,
        cache_size: int = 16,
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(parameters, log_path=log_path)
        if not (hasattr(transform, "init") and hasattr(transform, "update")):
            raise TypeError(f"transform must be an optax.GradientTransformation, got {type(transform).__name__}")
        check_differentiable(self.parameters, type(self).__name__)
        self.transform = transform
        self._named = dict(self.names)
        self._ids = {id(p): name for name, p in self._named.items()}
        self._bounds = {
            name: (p.kind.low, p.kind.high)
            for name, p in self._named.items()
            if getattr(p.kind, "low", None) is not None or getattr(p.kind, "high", None) is not None
        }
        self.cache = ReplayCache(cache_size)
        self._losses: list[Node] = []
        self._last_losses: list[Node] = []  # the losses of the last committed step, for fit()
        self.opt_state = transform.init(current_values(self._named))

    # -- the feedback loop -------------------------------------------------------------
    def zero_feedback(self) -> None:
        """Forget the registered losses (those of the last step too) and the feedback the
        parameters received."""
        super().zero_feedback()
        self._losses = []
        self._last_losses = []

    def _consume_feedback(self) -> None:
        super()._consume_feedback()
        self._losses = []

    def backward(self, output: Node, feedback: Any = None) -> None:
        """Register ``output`` (a scalar loss node) for the next ``step()``.

        Losses of several calls add up until a step commits (or ``zero_feedback()``).
        ``feedback``, when given, is also propagated to the parameters as usual (e.g. text
        for an LLM optimizer).
        """
        if not isinstance(output, Node):
            raise TypeError(f"backward() needs the loss node, got {type(output).__name__}")
        _check_scalar(output)
        self._losses.append(output)
        if feedback is not None:
            output.backward(feedback)
        self._note_reach(output)

    def _loss_nodes(self) -> tuple[Node, ...]:
        """The losses to differentiate that depend on a parameter; empty when there is
        neither a loss nor feedback (or none of them reaches a parameter)."""
        if self._losses:
            unreached = {id(n) for n in self._unreached}
            return tuple(n for n in self._losses if id(n) not in unreached)
        # no backward(loss) on this optimizer: use numeric outputs that gave feedback
        outputs: dict[int, Node] = {}
        for p in self.parameters:
            for entry in p.feedback:
                outputs.setdefault(id(entry.output), entry.output)
        numeric = [o for o in outputs.values() if is_loss_value(o.value)]
        if outputs and not numeric:
            raise TracegradError(
                f"{type(self).__name__} has no loss to differentiate: the outputs given feedback are not "
                "numbers; call backward(loss) with a scalar loss node"
            )
        return tuple(numeric)

    def _entry(self, losses: tuple[Node, ...]) -> tuple[_Entry, Analysis]:
        analysis = analyze(losses, self._ids)
        entry = self.cache.get(analysis.key)
        if entry is None:
            entry = _Entry(build_program(analysis, losses), self.transform, self._bounds)
            self.cache.put(analysis.key, entry)
        return entry, analysis

    def _run(self, entry: _Entry, analysis: Analysis, fn: Any, *args: Any) -> Any:
        before = entry.program.traces
        try:
            return fn(*args)
        except BaseException:
            if entry.program.traces > before:  # failed while compiling: do not keep a broken entry
                self.cache.discard(analysis.key)
            raise

    def propose(self, *, sample: int = 0) -> Proposal:
        """One gradient step on the recorded graph, as a proposal (nothing changes); a
        gradient step is deterministic, so every ``sample`` is the same proposal.

        Raises ``InvalidValueError`` when the loss, the gradient or a new value is not
        finite; no proposal is made then.
        """
        losses = self._loss_nodes()
        if not losses:  # nothing to learn from: like the LLM optimizers, change nothing
            return self._idle_proposal()
        entry, analysis = self._entry(losses)
        traces = entry.program.traces
        params = current_values(self._named)
        new, state, stats = self._run(entry, analysis, entry.step, params, self.opt_state, tuple(analysis.inputs))
        loss, grad_norm, finite = np.asarray(stats).tolist()
        if not finite:
            self._reject(new, float(loss), float(grad_norm))
        details = {
            "loss": float(loss),
            "grad_norm": float(grad_norm),
            "compiled": entry.program.traces > traces,
            "cache": self.cache.info(),
        }
        return self._proposal(self._values(new), self._report("updated", details=details), (state, losses))

    def fit(self, steps: int, *, scan: bool = False, quiet: bool = False) -> StepReport:
        """Run ``steps`` compiled steps on the registered losses, else on those of the last
        committed step (same inputs each step).

        The parameters and the optimizer state stay on the device between steps and are
        written back once at the end, all or nothing: if a loss or the final values are
        not finite, ``InvalidValueError`` is raised and nothing changes. ``scan=True``
        runs the loop as one ``jax.lax.scan`` (one dispatch; compiled once per number of
        steps). Returns one report counting ``steps`` steps: ``details["losses"]`` holds
        the loss before each step; ``details["loss"]`` and ``["grad_norm"]`` are those of
        the last step (as ``step()`` reports them: at the values before its update).
        A progress bar on stderr shows the steps and the loss, unless ``quiet``.
        """
        proposal = self.propose_fit(steps, scan=scan, quiet=quiet)
        self._announce(proposal)
        return self.apply(proposal)

    def propose_fit(self, steps: int, *, scan: bool = False, quiet: bool = False) -> Proposal:
        """``fit(steps)`` as a proposal: the values and state after ``steps`` steps."""
        if steps < 1:
            raise ValueError("fit() needs at least one step")
        losses = self._loss_nodes() or tuple(self._last_losses)
        if not losses:
            raise TracegradError(f"{type(self).__name__}.fit() needs a loss: call backward(loss) first")
        entry, analysis = self._entry(losses)
        traces = entry.program.traces
        params, state, inputs = current_values(self._named), self.opt_state, tuple(analysis.inputs)
        bar = FitProgress(steps, quiet=quiet)
        try:
            if scan:
                p, s, history, stats = self._run(entry, analysis, entry.scan(steps), params, state, inputs)
            else:  # lean steps (the work of a hand-written step), the last one checked
                p, s, history = params, state, []
                if steps > 1:
                    p, s, loss = self._run(entry, analysis, entry.lean_step, p, s, inputs)
                    history.append(loss)
                    bar.step(loss)
                    chained = entry.chained_step
                    for _ in range(steps - 2):
                        p, s, loss = chained(p, s, inputs)
                        history.append(loss)
                        bar.step(loss)
                p, s, stats = self._run(entry, analysis, entry.step, p, s, inputs)
            history, stats = jax.device_get((history, stats))
            bar.close(float(stats[0]))
        finally:
            bar.close()
        last_loss, grad_norm, finite = (float(v) for v in stats)
        loss_h = np.append(np.asarray(history, dtype=np.float64).reshape(-1), last_loss)
        if not (finite and np.isfinite(loss_h).all()):
            bad = int(np.argmin(np.isfinite(loss_h))) if not np.isfinite(loss_h).all() else steps - 1
            self._reject(p, float(loss_h[bad]), grad_norm, f" at step {bad + 1} of {steps}")
        details = {
            "steps": steps,
            "loss": last_loss,
            "grad_norm": grad_norm,
            "losses": loss_h.tolist(),
            "compiled": entry.program.traces > traces,
            "cache": self.cache.info(),
        }
        return self._proposal(self._values(p), self._report("updated", details=details), (s, losses), steps=steps)

    def _reject(self, new: Mapping[str, Any], loss: float, grad_norm: float, where: str = "") -> None:
        bad = [k for k, v in new.items() if not np.all(np.isfinite(np.asarray(v)))]
        name = bad[0] if bad else None
        raise InvalidValueError(
            f"the update{where} is not finite (loss={loss}, gradient norm={grad_norm}); "
            "the parameters and the optimizer state are unchanged",
            name=name,
        )

    def _values(self, new: Mapping[str, Any]) -> dict[str, Any]:
        """The new values as the parameters store them (numbers as floats clipped into
        their bounds); finite, of the kept shape and dtype."""
        values = {}
        for name, p in self._named.items():
            value = new[name]
            if isinstance(p.kind, Number):
                low, high = p.kind.low, p.kind.high
                value = float(value)
                value = value if low is None else max(value, low)
                value = value if high is None else min(value, high)
            values[name] = value
        return values

    def _take_state(self, state: Any) -> None:
        self.opt_state, losses = state
        self._last_losses = list(losses)

    # -- compile statistics ---------------------------------------------------------------
    @property
    def compile_count(self) -> int:
        """How many graph structures were compiled (cache misses): 1 for a loop whose graph
        keeps its structure."""
        return self.cache.misses

    @property
    def trace_count(self) -> int:
        """How many times JAX traced a cached replay (``step``, ``fit`` and ``fit(scan=True)``
        each trace it once per structure)."""
        return sum(entry.program.traces for entry in self.cache._entries.values())

    def cache_info(self) -> dict[str, int]:
        return self.cache.info()

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Step count, the parameters' shapes and dtypes, and the optax state as JSON data."""
        state = super().state_dict()
        state["parameters"] = {
            name: {"shape": list(np.shape(v)), "dtype": str(jnp.result_type(v))}
            for name, v in current_values(self._named).items()
        }
        state["opt_state"] = tree_to_json(self.opt_state)
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore ``state_dict()``'s data: checked completely before anything changes."""
        count = self._checked_step_count(state)
        saved = state.get("parameters")
        if saved is not None and (not isinstance(saved, Mapping) or sorted(saved) != sorted(self._named)):
            found = sorted(saved) if isinstance(saved, Mapping) else saved
            raise TracegradError(
                f"the saved optimizer state is for parameters {found}, this optimizer has {sorted(self._named)}"
            )
        opt_state = tree_from_json(state.get("opt_state"), self.transform.init(current_values(self._named)))
        self.step_count = count
        self.opt_state = opt_state


def _check_scalar(node: Node) -> None:
    value = node.value
    if not is_loss_value(value):
        has_shape = hasattr(value, "shape")
        what = f"shape {tuple(value.shape)}, dtype {value.dtype}" if has_shape else f"a {type(value).__name__}"
        raise TypeError(
            f"backward() needs a floating-point scalar loss; {node.name} holds {what}. Reduce it to a scalar "
            "(e.g. with jnp.mean in a bundled function); text feedback goes to an LLM optimizer or Hybrid"
        )


__all__ = ["JaxOptimizer"]
