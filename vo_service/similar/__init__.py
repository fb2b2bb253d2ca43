"""Similarity by uploaded spectrum (``/similar``): the archive spectra nearest to a file's
encoding in an autoencoder's latent space, with their labels."""
