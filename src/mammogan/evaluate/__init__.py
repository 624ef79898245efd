"""Evaluation of trained models (`mammogan evaluate`)."""
