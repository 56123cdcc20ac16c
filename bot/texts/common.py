"""Shared pieces: label emoji and buttons, percentages, the generic answers, the command menu."""

from __future__ import annotations

LABEL_EMOJI = {"negative": "😞", "neutral": "😐", "positive": "😊"}


def emoji(label: str) -> str:
    return LABEL_EMOJI.get(label, "🏷")


def percent(confidence: float) -> str:
    return f"{round(confidence * 100)}%"


def label_button(label: str) -> str:
    return f"{emoji(label)} {label}"


TEXT_ONLY = "I read text only: send me a text message and I'll score its sentiment."
GENERIC_ERROR = "Sorry, something went wrong on my side. Please try again in a moment."
ADMINS_ONLY = "Sorry, that command is for admins only."
ANNOTATORS_ONLY = "Sorry, that command is for annotators only."
UNKNOWN_COMMAND = "I don't know that command. /help lists what I can do."


# --- the command menu (and /help) ----------------------------------------------------------------
COMMAND_DESCRIPTIONS = {
    "start": "start, and opt back in after /forget",
    "help": "what I do and what I store",
    "mood": "this chat's mood (add 24h or 7d)",
    "forget": "delete everything I stored about you",
    "status": "model, metrics and counts",
    "export": "labelled data as CSV",
    "label": "label queued messages",
    "retrain": "retrain the model now",
    "models": "model versions",
    "rollback": "go back to an earlier model",
    "review": "check labels the data contradict",
    "annotator": "label sources: list, exclude, include",
}
