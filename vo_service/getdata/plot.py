"""The PNG preview of a spectrum, drawn with matplotlib: run only in preview worker processes.

Nothing in the web service imports this module. :mod:`vo_service.getdata.previews`
names it as a string and its worker processes (started with ``spawn``) import it,
so matplotlib (about 0.4 s and 40 MB to import) is loaded by those workers and
never by a web process.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from vo_service.archive.spectrum import Spectrum
from vo_service.getdata.convert import read_stored


def png_bytes(spectrum: Spectrum, title: str) -> bytes:
    """Flux against wavelength (pixels with no valid flux left blank), as PNG bytes."""
    fig = Figure(figsize=(8, 3), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    good = spectrum.ivar > 0
    flux = np.where(good, spectrum.flux, np.nan)
    ax.plot(spectrum.wavelength, flux, lw=0.5, color="black")
    frame = "air" if spectrum.meta.spec_frame == "air" else "vacuum"
    ax.set_xlabel(f"wavelength ({frame}) [Angstrom]")
    ax.set_ylabel(f"flux [{spectrum.meta.flux_unit}]" if spectrum.meta.flux_unit else "flux")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def render_file(source: str, title: str) -> bytes:
    """The preview of the stored file at ``source`` (what a worker is asked to do)."""
    return png_bytes(read_stored(source), title)
