"""Trainers for the GAN and VAE families (`aigc train gan|vae`)."""
