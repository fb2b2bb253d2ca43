"""Neural networks on preprocessed spectra (see ``ml.preprocess`` for their input)."""
