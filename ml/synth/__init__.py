"""Synthetic stellar spectra and a reproducible synthetic archive to demonstrate latentvo.

``draw_population`` draws stars and observations, ``render_spectrum``/``render_batch``
turn labels into noisy spectra, ``write_archive`` writes them in the four supported
file formats with truth and reference labels, ``write_corrupt_examples`` writes broken
files for ingest tests.
"""

from ml.synth.archive import ArchiveSummary, write_archive
from ml.synth.corrupt import write_corrupt_examples
from ml.synth.instruments import INSTRUMENTS, Instrument
from ml.synth.model import normalised_flux, render_batch, render_spectrum
from ml.synth.population import draw_population

__all__ = [
    "INSTRUMENTS",
    "ArchiveSummary",
    "Instrument",
    "draw_population",
    "normalised_flux",
    "render_batch",
    "render_spectrum",
    "write_archive",
    "write_corrupt_examples",
]
