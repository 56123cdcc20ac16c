"""The learning loop: labeling queue, retraining in a worker process, promotion gate, hot swap,
model versions and rollback. It never imports `telegram`; docs/learning.md has the long version.

Everything it decides is recorded: `training_runs` (trigger, who, status, error, candidate,
decision, reason), `model_versions` (candidate → active / rejected, retired on replacement) and
`audit_log` (admin retrains and rollbacks).

- `service`: `LearningService`, the parts below wired over one database and one training lock
- `queue`: `LabelQueue`, the /label queue and the annotators' agreement
- `retrainer`: `Retrainer`, triggers ("enough new labels?"), run records, the decision, hot swap;
  `recipe` (version name, labels, training config), `data` (rows, `LearningOptions`), `runner`
  (the parent's side of the worker), `worker` (`python -m bot.learning.worker SPEC`), `gate`
- `versions`: `ModelVersions`, /models, rollback, following the database's active model
- `served`: `ServedModel`, the bot's `Predictor` (hot swap, re-scoring the queue)
- `agreement` (Cohen's kappa), `errors`, `results` (what callers catch and get back)
"""
