"""Evaluation without downloaded Inception weights: a locally trained judge, Fréchet
distance, precision/recall, conditioning accuracy and novelty in its feature space."""
