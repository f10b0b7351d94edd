"""Where bytes live: locations (local or S3), file operations, staged output folders."""
