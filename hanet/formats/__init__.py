"""Every on-disk pose format, its reader and its writer side by side."""
