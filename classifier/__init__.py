"""Sentibot classifier: pure torch sentiment model, training, evaluation, model folders, Predictor.

Importing this package is cheap; import submodules (`classifier.training`, …) for the heavy parts.
"""
