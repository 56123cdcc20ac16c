"""What admins see: /status, /export, retraining reports and progress, /models and /rollback."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.markup import esc, fit
from bot.texts.trust import annotator_list_lines, curve_line, review_line, source_name
from classifier.card_text import MIN_RELIABLE_ROWS, EvalSet, describe_eval

if TYPE_CHECKING:  # only for type hints: texts imports nothing of the bot at run time
    from bot.learning import results
    from bot.service import StatusReport


# --- /status -------------------------------------------------------------------------------------
def _metric(metrics: dict, key: str) -> str:
    value = metrics.get(key)
    return f"{value:.3f}" if isinstance(value, int | float) else "n/a"


def status_text(
    report: StatusReport,
    learning: results.LearningStatus | None = None,
    *,
    private: bool = True,
) -> str:
    """The admin /status text, with the learning loop's section when given (`private` False: in
    a group, where no Telegram id is shown)."""
    if report.model_version is None:
        lines = ["<b>Model:</b> none active"]
    else:
        m = report.metrics or {}
        lines = [
            f"<b>Model:</b> {esc(report.model_version)} ({esc(report.backbone or '?')})",
            f"macro-F1 {_metric(m, 'macro_f1')} · accuracy {_metric(m, 'accuracy')}"
            + (f" · n={m['n']}" if isinstance(m.get("n"), int) else ""),
            *(esc(line) for line in eval_set_lines(describe_eval(m, report.manifest))),
        ]
    lines += [
        "",
        f"<b>Messages:</b> {report.messages}",
        f"<b>Labels:</b> {report.labels} on {report.labelled_messages} message(s)",
        f"<b>Labels not yet trained on:</b> {report.untrained_labels}",
    ]
    if learning is not None:
        lines += ["", "<b>Learning</b>"]
        lines += [esc(line) for line in learning_lines(learning, private=private)]
    return fit("\n".join(lines))


def eval_set_lines(evalset: EvalSet | None) -> list[str]:
    """What the figures were measured on, and whether to trust them (plain lines)."""
    if evalset is None:
        return []
    parts = [f"{evalset.n or 0:,} rows", f"{evalset.user_rows:,} from this bot's users"]
    if evalset.bootstrap_rows and evalset.name != "bootstrap eval slice":
        parts.append(f"{evalset.bootstrap_rows:,} from the bootstrap corpus")
    if evalset.import_rows:
        parts.append(f"{evalset.import_rows:,} imported")
    lines = [f"Measured on the {evalset.name}: {', '.join(parts)}"]
    if not evalset.held_out:
        lines.append("⚠️ Unreliable: measured on the training data itself")
    elif not evalset.reliable:
        lines.append(f"⚠️ Unreliable: fewer than {MIN_RELIABLE_ROWS} rows")
    return lines


def learning_lines(status: results.LearningStatus, *, private: bool = True) -> list[str]:
    """The learning part of /status, as plain lines."""
    lines = ["a training run is in progress"] if status.training else []
    run = status.last_run
    if run is not None:
        when = f"{run.started_at:%Y-%m-%d %H:%M} UTC" if run.started_at else "?"
        cand = f" {run.candidate_version}" if run.candidate_version else ""
        lines.append(f"last training run: {when} ({run.trigger}){cand} {run.result}")
    lines.append(
        f"scheduled retraining every {status.interval_minutes:g} min with ≥ "
        f"{status.min_new_labels} new labels"
        if status.interval_minutes
        else "scheduled retraining is off (RETRAIN_INTERVAL_MINUTES=0)"
    )
    lines += [
        line
        for line in (curve_line(status.learning_curve), review_line(status.pending_reviews))
        if line
    ]
    if status.annotator_list is not None:
        lines += annotator_list_lines(status.annotator_list, private=private)
    if status.annotators is not None:
        lines += annotator_lines(status.annotators, private=private)
    return lines


def annotator_lines(report: results.AnnotatorReport, *, private: bool = True) -> list[str]:
    """Labels per person, then Cohen's kappa for each pair of annotators."""
    numbers = {uid: n for n, uid in enumerate(sorted(report.counts), 1)}

    def who(uid: int) -> str:  # @username, else first name (id), else the id (groups: no id)
        return source_name(str(uid), report.names, private=private, number=numbers.get(uid, 0))

    ranked = sorted(report.counts.items(), key=lambda kv: (-kv[1], kv[0]))
    lines = [
        f"labels per annotator: {', '.join(f'{who(u)}: {n}' for u, n in ranked) or 'none yet'}"
    ]
    for p in report.pairs:
        kappa = "n/a" if p.kappa is None else f"{p.kappa:.2f}"
        lines.append(
            f"agreement {who(p.annotator_a)} ↔ {who(p.annotator_b)}: Cohen's κ {kappa} "
            f"({kappa_words(p.kappa)}) on {p.n} shared items, {p.observed:.0%} identical"
        )
    return lines


KAPPA_WORDS = ((0.2, "slight"), (0.4, "fair"), (0.6, "moderate"), (0.8, "substantial"))


def kappa_words(kappa: float | None) -> str:
    """Landis & Koch's words for a kappa value (so /status reads without a statistics course)."""
    if kappa is None or kappa < 0:
        return "undefined" if kappa is None else "worse than chance"
    return next((word for limit, word in KAPPA_WORDS if kappa <= limit), "almost perfect")


EXPORT_CAPTION = "Labelled messages: {rows} row(s)."
EXPORT_EMPTY = "There are no labelled messages to export yet."
EXPORT_PRIVATE_ONLY = (
    "The export holds messages from every chat, private ones too: send /export in a private "
    "chat with me."
)


# --- retraining: /retrain, the schedule, `sentibot retrain` ---------------------------------------
RETRAIN_USAGE = "Usage: /retrain, or /retrain force to train even without new labels."
NO_NEW_LABELS = (
    "No new labels since the last training run, so there is nothing new to learn. "
    "/retrain force trains anyway."
)
RETRAIN_STARTING = "⏳ Starting a training run…"
PROGRESS = "⏳ {step}"  # the progress message, edited as the run goes
RETRAIN_HEADING = "Retraining"
SCHEDULED_HEADING = "Scheduled retraining"
RETRY_FOOTER = "The schedule tries again after {at:%Y-%m-%d %H:%M} UTC (or /retrain)."
IN_PROGRESS = "a training run is already in progress"
OUTCOME_ICONS = {"promoted": "✅", "rejected": "⛔", "failed": "❌", "skipped": "ℹ️"}


def progress_text(step: results.Progress) -> str:
    """One step of a training run, for the admin's progress message (plain text)."""
    name = step.version or "the candidate"
    if step.stage == "preparing":
        return f"Preparing the training data for {name}…"
    if step.stage == "training" and step.epoch == 0:
        rows = f" on {step.train_rows:,} rows" if step.train_rows else ""
        return f"Training {name}{rows}: starting…"
    if step.stage == "training":
        f1 = "" if step.dev_macro_f1 is None else f", dev macro-F1 {step.dev_macro_f1:.3f}"
        return f"Training {name}: epoch {step.epoch}/{step.epochs} done{f1}"
    if step.stage == "evaluating":
        return f"Evaluating {name} and the active model on the eval split…"
    if step.stage == "reviewing":
        return f"Looking for labels the data contradict (cross-validation) for {name}…"
    if step.stage == "curve":
        return f"Drawing the learning curve of {name} (25 / 50 / 75% of your labels)…"
    return f"Deciding whether to promote {name}…"


def retrain_summary(outcome: results.RetrainOutcome) -> list[str]:
    """A run's outcome as plain lines (the CLI prints them, `retrain_report` formats them)."""
    if outcome.status == "skipped":
        return [
            f"Only {outcome.new_labels} new label(s) since the last training run "
            f"({outcome.needed_labels} needed); force a run to train anyway "
            "(/retrain force, sentibot retrain --force)."
        ]
    if outcome.status == "failed":
        return [
            f"Training run {outcome.run_id} failed: {outcome.message}",
            f"The active model {outcome.active_version} is unchanged.",
        ]
    kept = f"; {outcome.active_version} stays active"
    lines = [
        f"Candidate {outcome.candidate_version} {outcome.status}"
        + (" (now active)" if outcome.promoted else kept),
        f"Trained on {outcome.train_rows:,} rows ({outcome.user_rows:,} from your labels, "
        f"weight ×{outcome.user_label_weight:g}); evaluated on {outcome.eval_rows:,} rows.",
    ]
    candidate, active = outcome.candidate_report or {}, outcome.active_report or {}
    if candidate:  # macro-F1 of both models, then recall per class (active → candidate)
        vs = f" vs {outcome.active_version or 'active'} {active['macro_f1']:.3f}" if active else ""
        lines.append(f"macro-F1: candidate {candidate['macro_f1']:.3f}{vs}")
    for label, stats in (candidate.get("per_class") or {}).items():
        if int(stats.get("support", 0)):
            before = (active.get("per_class") or {}).get(label, {}).get("recall")
            was = "" if before is None else f"{before:.3f} → "
            lines.append(f"recall {label}: {was}{stats['recall']:.3f} (n={stats['support']})")
    lines += [] if outcome.gate is None else ["Why: " + outcome.gate.reason]
    curve = curve_line(outcome.learning_curve)
    if curve:
        lines.append(curve[0].upper() + curve[1:])
    if outcome.suspects:
        lines.append(f"{outcome.suspects} label(s) the data contradict are waiting in /review.")
    return lines


def retrain_report(
    outcome: results.RetrainOutcome, heading: str = RETRAIN_HEADING, footer: str | None = None
) -> str:
    """The outcome as an HTML message (no user text in it, but escaped all the same)."""
    icon = OUTCOME_ICONS.get(outcome.status, "")
    lines = [f"{icon} <b>{esc(heading)}: {esc(outcome.status)}</b>"]
    lines += [esc(line) for line in retrain_summary(outcome)]
    if outcome.seconds and outcome.status != "skipped":
        lines.append(f"Took {outcome.seconds:.0f} s.")
    if footer:
        lines.append(esc(footer))
    return fit("\n".join(lines))


CONFUSION_TITLE = "{version} on the eval split ({rows} rows)"
CONFUSION_CAPTION = "Confusion matrix of {version}"


def sentence(text: object) -> str:
    """A refusal from the learning loop as an escaped sentence: `Capitalised.`"""
    return esc(str(text).capitalize() + ".")


# --- /models and /rollback -----------------------------------------------------------------------
ROLLBACK_USAGE = "Usage: /rollback (to the previous active version) or /rollback v0003."
ROLLBACK_REFUSED = "Can't roll back: {reason}."
# Why a rollback is refused (`RollbackError`, plain text).
ROLLBACK_WHILE_TRAINING = IN_PROGRESS + "; try again when it has finished"
ROLLBACK_NO_PREVIOUS = "there is no previously active version to go back to"
ROLLBACK_UNKNOWN = "there is no model version {version} (see /models)"
ROLLBACK_ALREADY_ACTIVE = "{version} is already the active model"
ROLLBACK_REJECTED = "{version} was rejected by the promotion gate ({reason})"
ROLLBACK_DOES_NOT_LOAD = "{version} does not load: {error}"
ROLLBACK_CANNOT_SCORE = "{version} cannot score the eval split: {error}"
ROLLBACK_NO_SCORES = "{version} did not produce usable scores on the eval split"


def models_text(models: list[results.ModelInfo]) -> str:
    if not models:
        return "No model versions yet."
    lines = ["<b>Model versions</b> (newest first)"]
    for m in models:
        created = f"{m.created_at:%Y-%m-%d %H:%M}" if m.created_at else "?"
        rows = "?" if m.train_rows is None else f"{m.train_rows:,}"
        f1 = "?" if m.eval_macro_f1 is None else f"{m.eval_macro_f1:.3f}"
        on = "" if m.eval_set is None else f" on {m.eval_set.short()}"
        status = f"<b>{m.status}</b>" if m.status == "active" else esc(m.status)
        lines.append(
            f"{esc(m.version)} · {esc(created)} · {status} · {rows} training rows"
            f" · macro-F1 {f1}{esc(on)}"
        )
    return fit("\n".join(lines))


MODELS_CHART_TITLE = "Macro-F1 by version"
MODELS_CHART_CAPTION = "Macro-F1 of each version; a dashed line marks a change of eval set."
# Why a version became active (`model_versions.reason`); who did it is in the audit log.
SWITCH_REASONS = {
    "rollback": "rolled back (see audit_log)",
    "activate": "activated by an operator (see audit_log)",
}


def rolled_back(done: results.RollbackOutcome, verb: str = "Rolled back") -> str:
    """After a rollback or activation (plain text)."""
    if done.macro_f1 is None:
        scored = "its labels are not the eval split's, so it was checked on a probe text only"
    else:
        scored = f"eval macro-F1 {done.macro_f1:.3f} on {done.eval_rows:,} rows"
    switch = (
        done.to_version
        if done.from_version is None
        else (f"{done.from_version} → {done.to_version}")
    )
    return f"↩️ {verb}: {switch} is now active ({scored})."
