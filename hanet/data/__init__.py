"""Data in memory: the sequence record, its Arrow form, normalisation, windows, splits."""
