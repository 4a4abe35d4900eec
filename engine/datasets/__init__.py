"""Training data: image folders with captions, and the built-in emoji data set builder."""
