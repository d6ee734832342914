"""Files shipped with the package: the embedded model."""
