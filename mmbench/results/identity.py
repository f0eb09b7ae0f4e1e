"""What a result's pipeline is, in words, and what to keep in mind about its score.

A leaderboard row named ``search`` or ``ensemble`` says how a pipeline was found, not what it
is. :func:`identify` reads a result file and names its per-modality encoders, its fusion head
with the parameters that matter, an ensemble's members with their weights and heads, its fit and
predict cost, the decision rule its label metrics were counted with, and caveats: an ensemble
of one member (it *is* that trial), a CV score chosen on the folds it is reported on
(optimistic), a search the time budget confined to a subsample of the training rows (its scores
are not those of the full data). The leaderboard, the report and MLflow all show this one
description, so the three always agree.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from typing import Any

from mmbench.config import PeerSpec, PipelineSpec
from mmbench.results.schema import RunResult

KEY_TRAINING = ("lr", "dropout", "loss")
"""Training options named in a torch head's description (the ones a search varies most)."""


@dataclass
class Identity:
    """One result's pipeline, described; every field is plain text (or seconds)."""

    summary: str
    """One line: ``<head> on <encoders>``, or the ensemble's members."""
    encoders: str
    """``image=timm/test_resnet text=tfidf ...``; an ensemble's when all members share them."""
    head: str
    """``xgboost(depth=6, lr=0.1)``; ``ensemble`` for a blend."""
    short: str = ""
    """A terminal-width version of :attr:`summary`: head and encoder names, or members."""
    members: str = ""
    """An ensemble's members: ``trial 3 xgboost(...) × 0.60; trial 5 early(...) × 0.40``."""
    caveats: list[str] = field(default_factory=list)
    decision: str = ""
    """The decision rule of its label metrics, in a few words (``arg-max``, ``tuned
    1.00/0.45``); empty for files older than schema 4, which did not record it."""
    fit_s: float | None = None
    """Seconds of encoding and fitting over the CV folds (an ensemble: its members' trials)."""
    predict_ms: float | None = None
    """Milliseconds per predicted row (an ensemble: its members' sum)."""


def _value(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def head_text(spec: PipelineSpec) -> str:
    """The fusion head and the parameters that matter: its options and, for a torch head, the
    learning rate, dropout and loss."""
    from mmbench.fusion import FUSIONS

    name = spec.fusion.name
    opts = dict(sorted(spec.fusion.options.items()))
    if name not in FUSIONS or FUSIONS.meta(name).torch:
        training = spec.training.model_dump()
        opts.update({k: training[k] for k in KEY_TRAINING if k not in opts})
    inner = ", ".join(f"{k}={_value(v)}" for k, v in opts.items())
    return f"{name}({inner})" if inner else name


def encoders_text(spec: PipelineSpec) -> str:
    """``modality=encoder(options)`` per modality, in the spec's order."""
    return " ".join(f"{m}={e.key()}" for m, e in spec.encoders.items())


def short_text(spec: PipelineSpec) -> str:
    """``xgboost on pixels, minilm, tabular, mfcc``: names only."""
    names = ", ".join(e.name for e in spec.encoders.values())
    return f"{spec.fusion.name} on {names}" if names else spec.fusion.name


def describe(spec: PipelineSpec | PeerSpec) -> str:
    """One line for a pipeline spec: ``<head> on <encoders>`` (a peer: its name and options)."""
    if isinstance(spec, PeerSpec):
        opts = ", ".join(f"{k}={_value(v)}" for k, v in sorted(spec.options.items()))
        return f"peer {spec.peer}" + (f"({opts})" if opts else "")
    encoders = encoders_text(spec)
    return f"{head_text(spec)} on {encoders}" if encoders else head_text(spec)


def identify(result: RunResult) -> Identity:
    """The description of ``result``'s pipeline, its cost and its caveats (a budget subsample's
    first: it qualifies every score of the row)."""
    ident = _identify_pipeline(result)
    note = subsample_caveat(result.dataset.subsample)
    if note is not None:
        ident.caveats.insert(0, note)
    return ident


def subsample_caveat(subsample: dict[str, Any] | None) -> str | None:
    """``searched on a budget subsample: 1,200 of 9,000 training rows (<reason>)``, for a result
    whose search the time budget confined to a stratified subsample (``rows`` of ``of``); None
    otherwise. A suite's own ``max_rows`` is no caveat: every row of that dataset shares it."""
    if not subsample or "of" not in subsample:
        return None
    count = lambda v: f"{v:,}" if isinstance(v, int) else str(v)  # noqa: E731
    counted = f"{count(subsample.get('rows', '?'))} of {count(subsample['of'])}"
    reason = textwrap.shorten(str(subsample.get("reason", "")), 100, placeholder=" …")
    return f"searched on a budget subsample: {counted} training rows" + (
        f" ({reason})" if reason else ""
    )


def _identify_pipeline(result: RunResult) -> Identity:
    """What the pipeline is and the caveats of how it was chosen."""
    spec = result.pipeline
    fit = result.durations.get("total")
    predict = result.durations.get("predict_ms_per_row")
    decision = result.decision.short() if result.decision is not None else ""
    if isinstance(spec, PeerSpec):
        line = describe(spec)
        return Identity(
            line, "", line, short=line, decision=decision, fit_s=fit, predict_ms=predict
        )
    ident = Identity(describe(spec), encoders_text(spec), head_text(spec), short_text(spec))
    ident.decision = decision
    ident.fit_s = fit
    ident.predict_ms = predict
    if result.ensemble is not None:
        _ensemble(ident, result)
    elif result.search is not None and (scored := _scored_trials(result.search)) > 1:
        ident.caveats.append(f"optimistic CV: best of {scored} trials chosen on these folds")
    return ident


def _scored_trials(search: Any) -> int:
    """Trials the best was chosen among: the complete ones (declined, pruned, failed and
    duplicate trials have no CV score to choose by)."""
    if search.history:
        return sum(1 for p in search.history if p.state == "complete")
    return int(search.states.get("complete", search.n_trials))


def _ensemble(ident: Identity, result: RunResult) -> None:
    """An ensemble's members, shared encoders, cost from its members' trials, caveats."""
    ens = result.ensemble
    assert ens is not None
    members = ens.members
    ident.head = "ensemble"
    ident.members = "; ".join(
        f"trial {m.trial} {head_text(m.pipeline)} × {m.weight:.2f}" for m in members
    )
    shared = {encoders_text(m.pipeline) for m in members}
    ident.encoders = shared.pop() if len(shared) == 1 else "per member"
    stacked = ens.combiner == "stack"
    if stacked:  # the weights are the blend's; a logistic regression combines them instead
        ident.head = "stacked ensemble"
        ident.members = "; ".join(f"trial {m.trial} {head_text(m.pipeline)}" for m in members)
    ident.summary = f"{ident.head} of {len(members)}: {ident.members}"
    ident.short = f"{len(members)} member{'s' if len(members) > 1 else ''}: " + ", ".join(
        f"t{m.trial} {m.pipeline.fusion.name}" + ("" if stacked else f" {m.weight:.2f}")
        for m in members
    )
    if stacked:
        ident.short = "stacked, " + ident.short
    if len(members) == 1:
        ident.summary += f" on {ident.encoders}"
        same = "recalibrated" if stacked else "the same pipeline as"
        ident.caveats.append(f"one member: {same} trial {members[0].trial}")
    if stacked:  # its stackers were chosen and fitted inside each fold, its candidates were not
        ident.caveats.append(
            "optimistic CV: candidate trials searched on these folds "
            "(stacker inputs, fit and rule chosen inside each fold)"
        )
    else:
        ident.caveats.append("optimistic CV: members and weights chosen on these folds")
    if ens.dropped:
        ident.caveats.append(f"{len(ens.dropped)} member(s) dropped by the budget")
    undefined = int(ens.nested.get("undefined_folds", 0))
    if undefined:
        ident.caveats.append(f"blend vs stacker: {undefined} fold(s) undefined, left out")
    history = {p.number: p.seconds for p in (result.search.history if result.search else [])}
    seconds = [history.get(m.trial) for m in members]
    if ident.fit_s in (None, 0.0) and seconds and all(s is not None for s in seconds):
        ident.fit_s = float(sum(s for s in seconds if s is not None))


def seconds_text(value: float | None) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.1f}"
