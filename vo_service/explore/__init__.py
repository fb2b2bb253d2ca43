"""The latent-space explorer: the page ``/explore`` and its JSON API.

``queries`` reads models, maps, sliders, spectra and nearest neighbours from the
database; ``explorer`` runs the encoder and decoder through the torch-free inference
runtime; ``page`` writes the HTML; ``routes`` is the HTTP edge; ``static/`` holds the
page's script and style sheet, served by latentvo itself (no CDN).
"""
