"""A reference job (``--pipeline NAME``): a named reference pipeline
(:mod:`mmbench.pipeline.references`) or a peer tool (:mod:`mmbench.peers`) on the dataset's
folds, with the same held-out scoring and decision rule as the suite's own pipeline."""

from __future__ import annotations

from mmbench.run.context import JobContext, Scored, refit_and_test, test_table


def reference_job(ctx: JobContext, name: str) -> Scored:
    """Reference ``name`` (a peer tool, or a named reference pipeline) cross-validated on the
    dataset's folds, and scored on its held-out rows when it has them."""
    from mmbench.peers import PEERS
    from mmbench.pipeline.references import evaluate_reference
    from mmbench.run.fixed import require_a_fold

    if name in PEERS:
        return _peer(ctx, name)
    ctx.reporter.info(f"{ctx.spec.name}: reference pipeline {name}")
    _, cv = evaluate_reference(
        name, ctx.table, ctx.folds, primary=ctx.spec.protocol.primary_metric, cache=ctx.cache
    )
    require_a_fold(cv)
    item = Scored(cv, name)
    if ctx.spec.test_source is not None:
        item.test_metrics, item.model_path = refit_and_test(ctx, cv, name)
    return item


def _peer(ctx: JobContext, name: str) -> Scored:
    """A peer tool on the same folds; its held-out model gets the job's whole time budget.

    Each CV fold gets ``timeout / folds``, so the CV costs about one budget, and the model
    refitted on all rows for the held-out score gets the full ``timeout``, like mmbench's job.
    Its labels, in CV and held out, are decided by the rule fitted on its own out-of-fold
    probabilities (:func:`mmbench.peers.cross_validate_peer`), as mmbench's pipelines' are.
    """
    from mmbench.evaluation import compute_metrics
    from mmbench.peers import cross_validate_peer, fit_peer, peer_frame
    from mmbench.run.fixed import require_a_fold

    spec, table = ctx.spec, ctx.table
    timeout = ctx.options.timeout or spec.budget.timeout_s
    primary = spec.protocol.primary_metric
    ctx.reporter.info(f"{spec.name}: peer {name}")
    frame = peer_frame(table)
    with ctx.reporter.task(f"{spec.name}: {name}", len(ctx.folds)) as advance:
        cv = cross_validate_peer(
            name,
            table,
            ctx.folds,
            time_limit_s=None if timeout is None else timeout / len(ctx.folds),
            metric=primary,
            frame=frame,
            on_fold=lambda r, i: advance(r),
        )
    require_a_fold(cv)
    item = Scored(cv, name)
    if spec.test_source is not None:  # decided by the rule of its own CV, as every row
        model = fit_peer(
            name, table, seed=ctx.suite.seed, time_limit_s=timeout, metric=primary, frame=frame
        )
        test = test_table(ctx)
        proba = model.predict_proba(peer_frame(test))
        weights = cv.decision.weights if cv.decision is not None else None
        item.test_metrics = compute_metrics(test.labels, proba, weights=weights)
    return item
