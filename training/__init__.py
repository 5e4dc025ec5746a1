"""Training code for GAM-Depth (data, losses, trainer, synthetic data). Imports the runtime package;
the runtime package never imports this one. Not installed on robots: run it from the repository."""
