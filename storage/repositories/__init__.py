"""Repository functions: `from storage import repositories as repo`.

Every function takes an `AsyncSession` first and never commits; the caller owns the unit of work:

    async with sessionmaker.begin() as session:
        rec = await repo.record_scored_message(session, chat_id=..., ...)

Modules: messages (users, chats, messages, predictions), batch (many scored messages at once),
labels, queue, dataset, versions, runs, audit, stats, users (forget), csvio (export/import).
See docs/schema.md for the tables.
"""

from storage.repositories.audit import add_audit, list_audit
from storage.repositories.batch import ScoredMessage, record_scored_messages
from storage.repositories.csvio import (
    EXPORT_COLUMNS,
    ImportResult,
    export_labels_csv,
    import_labels,
    import_labels_csv,
    read_import_csv,
    write_export_csv,
)
from storage.repositories.dataset import (
    EVAL_FRACTION,
    LabelledExample,
    count_new_resolved_labels,
    labelled_examples,
    split_of,
)
from storage.repositories.labels import (
    LabelChange,
    UndoneLabel,
    count_labels,
    get_label,
    label_history,
    labels_for_message,
    majority,
    remove_label,
    resolved_label,
    resolved_labels,
    set_label,
    undo_last_label,
)
from storage.repositories.messages import (
    RecordedMessage,
    add_prediction,
    find_message,
    get_message,
    is_opted_out,
    latest_prediction,
    record_scored_message,
    set_opted_out,
    top_margin,
    upsert_chat,
    upsert_user,
)
from storage.repositories.queue import (
    QueueItem,
    most_uncertain,
    next_queue_item,
    queue_eligible,
    queue_remaining,
    skip_queue_item,
)
from storage.repositories.runs import (
    fail_stale_runs,
    finish_training_run,
    get_training_run,
    last_trained_at,
    last_training_run,
    list_training_runs,
    new_labels_since_last_run,
    recent_failures,
    running_training_run,
    start_training_run,
)
from storage.repositories.stats import (
    LabelPair,
    Totals,
    annotator_counts,
    annotator_pairs,
    mood_counts,
    totals,
)
from storage.repositories.users import ForgetReport, forget_user
from storage.repositories.versions import (
    activate_model_version,
    get_active_model_version,
    get_model_version,
    list_model_versions,
    next_version_name,
    register_model_version,
    set_model_status,
)

__all__ = [
    "EVAL_FRACTION",
    "EXPORT_COLUMNS",
    "ForgetReport",
    "ImportResult",
    "LabelChange",
    "LabelPair",
    "LabelledExample",
    "QueueItem",
    "RecordedMessage",
    "ScoredMessage",
    "Totals",
    "UndoneLabel",
    "activate_model_version",
    "add_audit",
    "add_prediction",
    "annotator_counts",
    "annotator_pairs",
    "count_labels",
    "count_new_resolved_labels",
    "export_labels_csv",
    "write_export_csv",
    "fail_stale_runs",
    "find_message",
    "finish_training_run",
    "forget_user",
    "get_active_model_version",
    "get_label",
    "get_message",
    "get_model_version",
    "get_training_run",
    "import_labels",
    "import_labels_csv",
    "is_opted_out",
    "label_history",
    "labelled_examples",
    "labels_for_message",
    "last_trained_at",
    "last_training_run",
    "latest_prediction",
    "list_audit",
    "list_model_versions",
    "list_training_runs",
    "majority",
    "mood_counts",
    "new_labels_since_last_run",
    "recent_failures",
    "most_uncertain",
    "next_queue_item",
    "queue_eligible",
    "next_version_name",
    "queue_remaining",
    "read_import_csv",
    "record_scored_message",
    "record_scored_messages",
    "register_model_version",
    "remove_label",
    "resolved_label",
    "resolved_labels",
    "running_training_run",
    "set_label",
    "set_model_status",
    "set_opted_out",
    "skip_queue_item",
    "split_of",
    "start_training_run",
    "top_margin",
    "totals",
    "undo_last_label",
    "upsert_chat",
    "upsert_user",
]
